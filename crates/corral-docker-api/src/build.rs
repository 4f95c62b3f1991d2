//! `POST /build`: the classic builder. The request's query and body (the context tar) are
//! turned into [`BuildOptions`]; the engine's builder does the work and its messages are
//! rendered as dockerd's JSON stream (`stream`, `status`, `aux`, `errorDetail`).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use corral_engine::build::{self, BuildError, BuildMessage, BuildOptions};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::filters::query_bool;
use crate::AppState;

fn line(m: &BuildMessage) -> String {
    let v = match m {
        BuildMessage::Stream(s) => json!({ "stream": s }),
        BuildMessage::Status { id, status } if id.is_empty() => json!({ "status": status }),
        BuildMessage::Status { id, status } => json!({ "status": status, "id": id }),
        BuildMessage::Aux(id) => json!({ "aux": { "ID": id } }),
    };
    format!("{v}\r\n")
}

fn error_line(e: &BuildError) -> String {
    let detail = match e.code {
        Some(c) => json!({ "code": c, "message": e.message }),
        None => json!({ "message": e.message }),
    };
    format!(
        "{}\r\n",
        json!({ "errorDetail": detail, "error": e.message })
    )
}

fn string_map(raw: Option<&String>, what: &str) -> ApiResult<BTreeMap<String, Option<String>>> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: BTreeMap<String, Option<Value>> = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid {what} JSON: {e}")))?;
    Ok(v.into_iter()
        .map(|(k, v)| {
            let v = v.map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
            (k, v)
        })
        .collect())
}

/// `POST /build`.
pub(crate) async fn build(State(st): State<AppState>, req: Request) -> ApiResult<Response> {
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(req.uri())
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let get = |k: &str| pairs.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v);
    if let Some(r) = get("remote").filter(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "building from a remote context ({r}) is not supported by corral; send the context as a tar"
        )));
    }
    if let Some(p) = get("platform") {
        build::check_platform(p).map_err(|e| ApiError::bad_request(e.message))?;
    }
    let version = get("version").map_or("1", String::as_str);
    if version == "2" {
        return Err(ApiError::bad_request(
            "BuildKit (version=2) is not supported by corral; use the classic builder (DOCKER_BUILDKIT=0)",
        ));
    }
    let opts = BuildOptions {
        tags: pairs
            .iter()
            .filter(|(k, v)| k == "t" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
        dockerfile: get("dockerfile").cloned().unwrap_or_default(),
        build_args: string_map(get("buildargs"), "buildargs")?,
        labels: string_map(get("labels"), "labels")?
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
        remove: query_bool(get("rm").map(String::as_str), true),
        force_remove: query_bool(get("forcerm").map(String::as_str), false),
        quiet: query_bool(get("q").map(String::as_str), false),
        target: get("target").cloned().filter(|t| !t.is_empty()),
        pull: query_bool(get("pull").map(String::as_str), false),
        network_mode: get("networkmode").cloned(),
        creds: corral_engine::Credentials::default(),
    };
    let body = req
        .into_body()
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other));
    let reader = Box::pin(tokio_util::io::StreamReader::new(body));
    let (tx, mut rx) = mpsc::channel::<BuildMessage>(64);
    let engine = st.engine.clone();
    let task = tokio::spawn(async move {
        let dir = build::unpack_context(reader).await?;
        let res = build::build(engine, dir.path(), opts, tx).await;
        drop(dir);
        res
    });
    let Some(first) = rx.recv().await else {
        // Ended before any output: the error is the HTTP response, as dockerd answers.
        return match task.await {
            Ok(Ok(_)) => Ok(json_response(Body::empty())),
            Ok(Err(e)) if e.invalid => Err(ApiError::bad_request(e.message)),
            Ok(Err(e)) => Err(ApiError::from(corral_engine::Error::Refused(e.message))),
            Err(e) => Err(ApiError::from(corral_engine::Error::Internal(
                e.to_string(),
            ))),
        };
    };
    let head = futures::stream::iter(vec![line(&first)]);
    let rest = tokio_stream::wrappers::ReceiverStream::new(rx).map(|m| line(&m));
    let tail = futures::stream::once(async move {
        match task.await {
            Ok(Ok(_)) => String::new(),
            Ok(Err(e)) => error_line(&e),
            Err(e) => error_line(&BuildError::failed(e.to_string())),
        }
    });
    let body = head
        .chain(rest)
        .chain(tail)
        .filter(|s| futures::future::ready(!s.is_empty()))
        .map(Ok::<_, std::io::Error>);
    Ok(json_response(Body::from_stream(body)))
}

fn json_response(body: Body) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
