//! `/images/*` and `/distribution/*`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use corral_core::ImageRecord;
use corral_engine::{Credentials, ImageDeleted, Progress};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::containers::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::filters::Filters;
use crate::AppState;

fn flag(v: &Option<String>) -> bool {
    crate::filters::query_bool(v.as_deref(), false)
}

/// Decodes `X-Registry-Auth` (base64url JSON, padded or not); a bad header is ignored, as
/// dockerd does, so anonymous pulls still work.
pub(crate) fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(raw) = headers.get("X-Registry-Auth").and_then(|v| v.to_str().ok()) else {
        return Credentials::default();
    };
    let raw = raw.trim().trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw));
    let Ok(bytes) = bytes else {
        return Credentials::default();
    };
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Credentials {
        username: s("username"),
        password: s("password"),
        identity_token: s("identitytoken"),
        server_address: s("serveraddress"),
    }
}

fn image_labels(img: &ImageRecord) -> BTreeMap<String, String> {
    img.config
        .pointer("/config/Labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

// === list ===

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    filters: Option<String>,
}

/// Matches `reference=` patterns: `name`, `name:tag`, with `*` globs, as dockerd does.
fn reference_matches(pattern: &str, img: &ImageRecord) -> bool {
    img.repo_tags.iter().any(|t| {
        let (name, _) = t.rsplit_once(':').unwrap_or((t, ""));
        glob(pattern, t) || glob(pattern, name)
    })
}

fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((pre, rest)) => {
            if !s.starts_with(pre) {
                return false;
            }
            let tail = &s[pre.len()..];
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let f = Filters::parse(q.filters.as_deref())?;
    f.validate(&[
        "dangling",
        "label",
        "label!",
        "reference",
        "before",
        "since",
        "until",
    ])?;
    let mut images = st.engine.images().await?;
    images.sort_by_key(|i| std::cmp::Reverse(i.created));
    let mut out = Vec::new();
    for img in &images {
        let dangling = img.repo_tags.is_empty();
        if !f.any("dangling", |v| (v == "true" || v == "1") == dangling) {
            continue;
        }
        if !f.any("reference", |p| reference_matches(p, img)) {
            continue;
        }
        if !f.labels_match(&image_labels(img)) {
            continue;
        }
        out.push(summary_json(img, -1, -1));
    }
    Ok(Json(Value::Array(out)))
}

/// An image as the image list shows it; `shared_size` and `containers` are -1 when not
/// computed (the list), real counts in `/system/df`.
pub(crate) fn summary_json(img: &ImageRecord, shared_size: i64, containers: i64) -> Value {
    json!({
        "Id": img.id,
        "ParentId": "",
        "RepoTags": img.repo_tags,
        "RepoDigests": img.repo_digests,
        "Created": img.created.timestamp(),
        "Size": img.size,
        "VirtualSize": img.size,
        "SharedSize": shared_size,
        "Labels": image_labels(img),
        "Containers": containers,
    })
}

// === inspect, history ===

/// The `docker image inspect` document.
pub(crate) fn inspect_json(img: &ImageRecord) -> Value {
    let c = &img.config;
    let mut config = json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false,
        "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "", "Entrypoint": null,
        "OnBuild": null, "Labels": null,
    });
    if let (Some(dst), Some(src)) = (
        config.as_object_mut(),
        c.get("config").and_then(Value::as_object),
    ) {
        for (k, v) in src {
            dst.insert(k.clone(), v.clone());
        }
    }
    let diff_ids: Vec<&str> = img.layers.iter().map(|l| l.diff_id.as_str()).collect();
    json!({
        "Id": img.id,
        "RepoTags": img.repo_tags,
        "RepoDigests": img.repo_digests,
        "Parent": "",
        "Comment": c.get("comment").cloned().unwrap_or(json!("")),
        "Created": rfc3339(Some(img.created)),
        "DockerVersion": c.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": c.get("author").cloned().unwrap_or(json!("")),
        "Config": config,
        "Architecture": c.get("architecture").cloned().unwrap_or(json!("amd64")),
        "Variant": c.get("variant").cloned(),
        "Os": c.get("os").cloned().unwrap_or(json!("linux")),
        "Size": img.size,
        "VirtualSize": img.size,
        "GraphDriver": {"Name": "overlay2", "Data": null},
        "RootFS": {"Type": "layers", "Layers": diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    })
}

pub(crate) async fn get_dispatch(
    State(st): State<AppState>,
    Path(rest): Path<String>,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        let img = st.engine.image(name).await?;
        return Ok(Json(inspect_json(&img)).into_response());
    }
    if let Some(name) = rest.strip_suffix("/history") {
        let h = st.engine.image_history(name).await?;
        let out: Vec<Value> = h
            .into_iter()
            .map(|e| {
                json!({"Id": e.id, "Created": e.created, "CreatedBy": e.created_by, "Tags": e.tags,
                       "Size": e.size, "Comment": e.comment})
            })
            .collect();
        return Ok(Json(Value::Array(out)).into_response());
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save(&st, vec![name.to_owned()]).await;
    }
    Err(ApiError::not_found("page not found"))
}

async fn save(st: &AppState, names: Vec<String>) -> ApiResult<Response> {
    let r = st.engine.save_images(&names).await?;
    let mut resp = Body::from_stream(tokio_util::io::ReaderStream::new(r)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(resp)
}

pub(crate) async fn save_many(State(st): State<AppState>, req: Request) -> ApiResult<Response> {
    let names: Vec<String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "names")
        .map(|(_, v)| percent_decode(v))
        .collect();
    if names.is_empty() {
        return Err(ApiError::bad_request("no images specified"));
    }
    save(&st, names).await
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// === pull, import ===

#[derive(Deserialize)]
pub(crate) struct CreateQuery {
    #[serde(rename = "fromImage")]
    from_image: Option<String>,
    #[serde(rename = "fromSrc")]
    from_src: Option<String>,
    repo: Option<String>,
    tag: Option<String>,
    message: Option<String>,
    platform: Option<String>,
}

/// One JSON progress line as dockerd writes it.
pub(crate) fn progress_line(p: &Progress) -> String {
    let mut v = json!({"status": p.status});
    if !p.id.is_empty() {
        v["id"] = json!(p.id);
    }
    if let Some((cur, total)) = p.current {
        v["progressDetail"] = json!({"current": cur, "total": total});
        v["progress"] = json!(progress_bar(cur, total));
    } else if !p.id.is_empty() {
        v["progressDetail"] = json!({});
    }
    format!("{v}\r\n")
}

fn progress_bar(cur: u64, total: u64) -> String {
    let width = 50u64;
    let filled = (cur.min(total) * width).checked_div(total).unwrap_or(0);
    let filled = usize::try_from(filled).unwrap_or(0);
    let mut bar = "=".repeat(filled.saturating_sub(1));
    if filled > 0 {
        bar.push('>');
    }
    format!("[{bar:<50}] {}/{}", human_size(cur), human_size(total))
}

fn human_size(n: u64) -> String {
    const U: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.3}{}", U[i]).replace(".000", "")
}

fn error_line(msg: &str) -> String {
    format!(
        "{}\r\n",
        json!({"errorDetail": {"message": msg}, "error": msg})
    )
}

/// Streams progress from a background operation. Errors before the first line are returned
/// as a plain HTTP error (what clients show as "Error response from daemon"); after it they
/// arrive inside the 200 stream, as dockerd does.
async fn progress_response<F>(fut: F, mut rx: mpsc::Receiver<Progress>) -> ApiResult<Response>
where
    F: std::future::Future<Output = Result<Vec<Progress>, corral_engine::Error>> + Send + 'static,
{
    let task = tokio::spawn(fut);
    let first = rx.recv().await;
    let Some(first) = first else {
        // The operation ended without progress: report its outcome directly.
        return match task.await {
            Ok(Ok(tail)) => {
                let body: String = tail.iter().map(progress_line).collect();
                Ok(json_stream_response(Body::from(body)))
            }
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(ApiError::from(corral_engine::Error::Internal(
                e.to_string(),
            ))),
        };
    };
    let head = futures::stream::iter(vec![progress_line(&first)]);
    let rest = tokio_stream::wrappers::ReceiverStream::new(rx).map(|p| progress_line(&p));
    let tail = futures::stream::once(async move {
        match task.await {
            Ok(Ok(tail)) => tail.iter().map(progress_line).collect::<String>(),
            Ok(Err(e)) => error_line(&e.to_string()),
            Err(e) => error_line(&e.to_string()),
        }
    });
    let body = head.chain(rest).chain(tail).map(Ok::<_, std::io::Error>);
    Ok(json_stream_response(Body::from_stream(body)))
}

fn json_stream_response(body: Body) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub(crate) async fn create(
    State(st): State<AppState>,
    Query(q): Query<CreateQuery>,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<Response> {
    if let Some(p) = q.platform.as_deref().filter(|p| !p.is_empty()) {
        let host = format!("linux/{}", crate::system::go_arch());
        if p != host && p != "linux" {
            return Err(ApiError::bad_request(format!(
                "platform {p} is not supported on this host ({host})"
            )));
        }
    }
    if let Some(src) = q.from_src.as_deref() {
        let uri = req.uri().clone();
        if src != "-" {
            return Err(ApiError::bad_request(
                "importing from a URL is not supported; use fromSrc=-",
            ));
        }
        let body = req
            .into_body()
            .into_data_stream()
            .map(|r| r.map_err(std::io::Error::other));
        let mut reader = tokio_util::io::StreamReader::new(body);
        let reference = match (
            q.repo.as_deref().filter(|r| !r.is_empty()),
            q.tag.as_deref(),
        ) {
            (Some(r), Some(t)) if !t.is_empty() => Some(format!("{r}:{t}")),
            (Some(r), _) => Some(r.to_owned()),
            _ => None,
        };
        let mut config = serde_json::Map::new();
        if let Some(m) = q.message.filter(|m| !m.is_empty()) {
            config.insert("comment".into(), json!(m));
        }
        // dockerd's `BuildFromConfig` on an empty config.
        let changes = crate::filters::changes_in(&uri);
        if !changes.is_empty() {
            match corral_engine::build::changes::apply_changes(serde_json::Map::new(), &changes) {
                Ok(c) => {
                    config.insert("config".into(), Value::Object(c));
                }
                Err(e) => {
                    // Read the upload before answering: a client still writing it would
                    // otherwise see a broken pipe instead of the error.
                    let _ = tokio::io::copy(&mut reader, &mut tokio::io::sink()).await;
                    return Err(ApiError::bad_request(e.message));
                }
            }
        }
        let config = (!config.is_empty()).then_some(Value::Object(config));
        let id = st
            .engine
            .import_image(Box::pin(reader), reference.as_deref(), config)
            .await?;
        return Ok(json_stream_response(Body::from(format!(
            "{}\r\n",
            json!({"status": id})
        ))));
    }
    let image = q.from_image.unwrap_or_default();
    if image.is_empty() {
        return Err(ApiError::bad_request("fromImage or fromSrc is required"));
    }
    let reference = match q.tag.as_deref().filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
        Some(t) => format!("{image}:{t}"),
        None => image,
    };
    let creds = credentials(&headers);
    let (tx, rx) = mpsc::channel(64);
    let engine = st.engine.clone();
    progress_response(
        async move {
            engine.pull_image(&reference, creds, tx).await?;
            Ok(Vec::new())
        },
        rx,
    )
    .await
}

// === tag, push, delete ===

#[derive(Deserialize, Default)]
pub(crate) struct TagQuery {
    repo: Option<String>,
    tag: Option<String>,
}

/// dockerd's `RepoTagReference`: without a `tag` parameter the tag may ride on `repo`
/// (`repo=name:tag`, as docker-py's `Image.tag("name:tag")` sends it); else `latest`.
fn repo_and_tag<'a>(repo: &'a str, tag: Option<&'a str>) -> (&'a str, &'a str) {
    if let Some(t) = tag.filter(|t| !t.is_empty()) {
        return (repo, t);
    }
    let last_slash = repo.rfind('/').map_or(0, |i| i + 1);
    match repo[last_slash..].rfind(':') {
        Some(i) => (&repo[..last_slash + i], &repo[last_slash + i + 1..]),
        None => (repo, "latest"),
    }
}

pub(crate) async fn post_dispatch(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<Response> {
    let query = req.uri().query().unwrap_or("").to_owned();
    if let Some(name) = rest.strip_suffix("/tag") {
        let q: TagQuery = serde_urlencoded_lite(&query);
        let repo = q.repo.unwrap_or_default();
        if repo.is_empty() {
            return Err(ApiError::bad_request(
                "repository name must have at least one component",
            ));
        }
        let (repo, tag) = repo_and_tag(&repo, q.tag.as_deref());
        st.engine.tag_image(name, repo, tag).await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = rest.strip_suffix("/push") {
        let q: TagQuery = serde_urlencoded_lite(&query);
        let reference = match q.tag.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => format!("{name}:{t}"),
            None => name.to_owned(),
        };
        let creds = credentials(&headers);
        let (tx, rx) = mpsc::channel(64);
        let engine = st.engine.clone();
        return progress_response(
            async move {
                let p = engine.push_image(&reference, creds, tx).await?;
                Ok(vec![Progress {
                    id: String::new(),
                    status: format!("{}: digest: {} size: {}", p.tag, p.digest, p.size),
                    current: None,
                }])
            },
            rx,
        )
        .await;
    }
    Err(ApiError::not_found("page not found"))
}

/// Decodes a query string into `T` through axum's own extractor rules.
fn serde_urlencoded_lite<T: serde::de::DeserializeOwned + Default>(q: &str) -> T {
    let uri: axum::http::Uri = match format!("/?{q}").parse() {
        Ok(u) => u,
        Err(_) => return T::default(),
    };
    Query::<T>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

#[derive(Deserialize)]
pub(crate) struct RemoveQuery {
    force: Option<String>,
}

fn deleted_json(items: &[ImageDeleted]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|d| match d {
                ImageDeleted::Untagged(r) => json!({"Untagged": r}),
                ImageDeleted::Deleted(id) => json!({"Deleted": id}),
            })
            .collect(),
    )
}

pub(crate) async fn remove(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<Json<Value>> {
    let items = st.engine.remove_image(&name, flag(&q.force)).await?;
    Ok(Json(deleted_json(&items)))
}

#[derive(Deserialize)]
pub(crate) struct PruneQuery {
    filters: Option<String>,
}

pub(crate) async fn prune(
    State(st): State<AppState>,
    Query(q): Query<PruneQuery>,
) -> ApiResult<Json<Value>> {
    let f = Filters::parse(q.filters.as_deref())?;
    f.validate(&["dangling", "label", "until"])?;
    let all = f
        .get("dangling")
        .is_some_and(|v| v.iter().any(|x| x == "false" || x == "0"));
    let (items, freed) = st.engine.prune_images(all).await?;
    Ok(Json(
        json!({"ImagesDeleted": deleted_json(&items), "SpaceReclaimed": freed}),
    ))
}

pub(crate) async fn load(State(st): State<AppState>, req: Request) -> ApiResult<Response> {
    let body = req
        .into_body()
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other));
    let reader = tokio_util::io::StreamReader::new(body);
    let loaded = st.engine.load_images(Box::pin(reader)).await?;
    let out: String = loaded
        .iter()
        .map(|r| {
            let what = if r.starts_with("sha256:") {
                "Loaded image ID"
            } else {
                "Loaded image"
            };
            format!("{}\r\n", json!({"stream": format!("{what}: {r}\n")}))
        })
        .collect();
    Ok(json_stream_response(Body::from(out)))
}

pub(crate) async fn distribution(Path(_rest): Path<String>) -> ApiError {
    ApiError::from(corral_engine::Error::Unsupported("distribution inspect"))
}

#[cfg(test)]
mod tests {

    #[test]
    fn tag_may_ride_on_the_repo_parameter() {
        assert_eq!(repo_and_tag("a/b", Some("t")), ("a/b", "t"));
        assert_eq!(repo_and_tag("a/b:t", None), ("a/b", "t"));
        assert_eq!(repo_and_tag("a/b:t", Some("")), ("a/b", "t"));
        assert_eq!(
            repo_and_tag("127.0.0.1:5000/b", None),
            ("127.0.0.1:5000/b", "latest")
        );
        assert_eq!(
            repo_and_tag("127.0.0.1:5000/b:v1", None),
            ("127.0.0.1:5000/b", "v1")
        );
    }

    use super::*;

    #[test]
    fn decodes_registry_auth_header_in_both_alphabets() {
        let json = r#"{"username":"u","password":"p?>","serveraddress":"r"}"#;
        for enc in [
            base64::engine::general_purpose::URL_SAFE.encode(json),
            base64::engine::general_purpose::STANDARD.encode(json),
        ] {
            let mut h = HeaderMap::new();
            h.insert("X-Registry-Auth", enc.parse().unwrap());
            let c = credentials(&h);
            assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>"));
        }
        assert_eq!(credentials(&HeaderMap::new()), Credentials::default());
    }

    #[test]
    fn globs_match_reference_filters() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("*box:latest", "busybox:latest"));
        assert!(!glob("busy", "busybox"));
    }

    #[test]
    fn progress_lines_look_like_dockerd() {
        let l = progress_line(&Progress {
            id: "abc".into(),
            status: "Downloading".into(),
            current: Some((5, 10)),
        });
        let v: Value = serde_json::from_str(l.trim()).unwrap();
        assert_eq!(v["progressDetail"]["total"], 10);
        assert!(v["progress"].as_str().unwrap().starts_with("[="));
        assert_eq!(percent_decode("a%2Fb%3Ac"), "a/b:c");
    }
}
