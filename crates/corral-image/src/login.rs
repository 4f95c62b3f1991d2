//! Checking registry credentials as `docker login` does: `GET /v2/`, answer the
//! registry's challenge (HTTP basic, or a bearer token fetched from its realm with the
//! credentials), and require `200 OK`.
//!
//! Nothing is stored: keeping credentials is the client's job.

use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;

use crate::error::{Error, Result};
use crate::pull::{error_chain, RegistryAuth};

/// Docker Hub's v1 index host, as `docker login` sends it for the default registry.
const DOCKER_HUB_INDEX: &str = "index.docker.io";

/// Where Docker Hub's v2 API lives.
const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";

/// A `WWW-Authenticate` challenge (RFC 7235), reduced to what registries send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm="…"`.
    Basic,
    /// `Bearer realm="…",service="…",scope="…"` (the distribution token spec).
    Bearer {
        /// Token endpoint.
        realm: String,
        /// `service` parameter, if any.
        service: Option<String>,
        /// `scope` parameter, if any.
        scope: Option<String>,
    },
}

/// The registry host of a `docker login` server address: `http://h:5000/v2/` → `h:5000`,
/// `https://index.docker.io/v1/` (or empty) → Docker Hub's registry host.
pub fn login_registry(server_address: &str) -> String {
    let s = server_address.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or_default();
    match host {
        "" | DOCKER_HUB_INDEX | "docker.io" | "registry-1.docker.io" => {
            DOCKER_HUB_REGISTRY.to_owned()
        }
        h => h.to_owned(),
    }
}

/// Checks `auth` against `registry` (`host[:port]`), over plain HTTP when `insecure`.
///
/// # Errors
/// [`Error::LoginFailed`] with dockerd's wording when the registry answers `/v2/` with
/// anything but `200` after the challenge was answered; [`Error::Unauthorized`] when the
/// token endpoint refuses the credentials; [`Error::Unavailable`] when the registry cannot
/// be reached in `timeout`.
pub async fn check_login(
    registry: &str,
    auth: &RegistryAuth,
    insecure: bool,
    timeout: Duration,
) -> Result<()> {
    let scheme = if insecure { "http" } else { "https" };
    let url = format!("{scheme}://{registry}/v2/");
    let unavailable = |e: reqwest::Error| Error::Unavailable {
        registry: registry.to_owned(),
        message: error_chain(&e),
    };
    let client = reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| Error::Registry {
            registry: registry.to_owned(),
            message: format!("building HTTP client: {}", error_chain(&e)),
        })?;
    let first = client.get(&url).send().await.map_err(unavailable)?;
    let status = first.status();
    if status == StatusCode::OK {
        return Ok(());
    }
    let failed = |status: StatusCode| Error::LoginFailed {
        url: url.clone(),
        status: status.to_string(),
        unauthorized: matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
    };
    if status != StatusCode::UNAUTHORIZED {
        return Err(failed(status));
    }
    let challenge = first
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|h| h.to_str().ok())
        .and_then(parse_challenge);
    let authorization = match (challenge, auth) {
        (_, RegistryAuth::Anonymous) => return Err(failed(status)),
        (Some(Challenge::Bearer { .. }) | None, RegistryAuth::RegistryToken(t)) => {
            format!("Bearer {t}")
        }
        (Some(Challenge::Basic) | None, RegistryAuth::Basic { username, password }) => {
            basic(username, password)
        }
        (Some(Challenge::Basic), RegistryAuth::RegistryToken(_)) => return Err(failed(status)),
        (
            Some(Challenge::Bearer { realm, service, .. }),
            RegistryAuth::Basic { username, password },
        ) => {
            let token = fetch_token(
                &client,
                registry,
                &realm,
                service.as_deref(),
                username,
                password,
            )
            .await?;
            format!("Bearer {token}")
        }
    };
    let header = HeaderValue::from_str(&authorization).map_err(|_| Error::LoginFailed {
        url: url.clone(),
        status: "credentials contain characters not allowed in a header".into(),
        unauthorized: true,
    })?;
    let second = client
        .get(&url)
        .header(AUTHORIZATION, header)
        .send()
        .await
        .map_err(unavailable)?;
    match second.status() {
        StatusCode::OK => Ok(()),
        s => Err(failed(s)),
    }
}

/// Asks a token server for a token with basic credentials, as dockerd's login does
/// (`offline_token=true&client_id=docker`, no scope).
async fn fetch_token(
    client: &reqwest::Client,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    username: &str,
    password: &str,
) -> Result<String> {
    let mut query = vec![("client_id", "docker"), ("offline_token", "true")];
    if let Some(s) = service {
        query.push(("service", s));
    }
    let url = reqwest::Url::parse_with_params(realm, &query).map_err(|e| Error::Registry {
        registry: registry.to_owned(),
        message: format!("invalid token realm {realm:?}: {e}"),
    })?;
    let resp = client
        .get(url)
        .header(AUTHORIZATION, basic(username, password))
        .send()
        .await
        .map_err(|e| Error::Unavailable {
            registry: registry.to_owned(),
            message: error_chain(&e),
        })?;
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    if status != StatusCode::OK {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/errors/0/message")
                    .or_else(|| v.get("details"))
                    .and_then(|m| m.as_str().map(str::to_owned))
            })
            .unwrap_or_else(|| status.to_string());
        return Err(Error::Unauthorized {
            reference: registry.to_owned(),
            message,
        });
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| Error::Registry {
        registry: registry.to_owned(),
        message: format!("decoding token response: {e}"),
    })?;
    v.get("token")
        .or_else(|| v.get("access_token"))
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::Registry {
            registry: registry.to_owned(),
            message: "token response has no token".into(),
        })
}

fn basic(username: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

/// Parses the first challenge of a `WWW-Authenticate` value.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let params = parse_params(params);
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
            };
            Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            })
        }
        _ => None,
    }
}

/// `a="x, y",b=z` → `[(a, "x, y"), (b, z)]`.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.push((name, value));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_core::error::Classify;
    use corral_core::ErrorKind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn parses_basic_and_bearer_challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="corral-test""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn normalises_server_addresses() {
        assert_eq!(login_registry("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            login_registry("http://127.0.0.1:5000/v2/"),
            "127.0.0.1:5000"
        );
        assert_eq!(
            login_registry("https://index.docker.io/v1/"),
            DOCKER_HUB_REGISTRY
        );
        assert_eq!(login_registry(""), DOCKER_HUB_REGISTRY);
    }

    /// A registry on loopback that wants `Authorization: Basic base64(u:p)` on `/v2/`.
    async fn basic_registry(user: &str, pass: &str) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let want = basic(user, pass);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let want = want.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = sock.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    let req = String::from_utf8_lossy(&got).to_lowercase();
                    let ok = req.contains(&format!("authorization: {}", want.to_lowercase()));
                    let resp = if ok {
                        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
                            .to_owned()
                    } else {
                        "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Basic realm=\"t\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
                    };
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn basic_auth_login_accepts_good_and_rejects_bad_credentials() {
        let (addr, task) = basic_registry("e2e", "pa55word").await;
        let t = Duration::from_secs(10);
        let good = RegistryAuth::Basic {
            username: "e2e".into(),
            password: "pa55word".into(),
        };
        check_login(&addr, &good, true, t).await.unwrap();
        let bad = RegistryAuth::Basic {
            username: "e2e".into(),
            password: "wrong".into(),
        };
        let err = check_login(&addr, &bad, true, t).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("login attempt to http://{addr}/v2/ failed with status: 401 Unauthorized")
        );
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
        let anon = check_login(&addr, &RegistryAuth::Anonymous, true, t)
            .await
            .unwrap_err();
        assert_eq!(anon.kind(), ErrorKind::Unauthorized);
        task.abort();
    }

    #[tokio::test]
    async fn unreachable_registry_is_unavailable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = check_login(
            &format!("127.0.0.1:{port}"),
            &RegistryAuth::Anonymous,
            true,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    }
}
