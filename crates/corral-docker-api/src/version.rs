//! API version negotiation: `/v1.NN/` prefixes, `/_ping` and `/version`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use crate::AppState;

/// The newest API version served (Docker 27.x). docker CLI 28 negotiates down to it.
pub const API_VERSION: &str = "1.47";
/// The oldest API version accepted: low enough for docker-compose v1 and docker-py.
pub const MIN_API_VERSION: &str = "1.24";
/// The Docker engine version Corral reports, for clients that gate features on it.
pub(crate) const API_VERSION_ENGINE: &str = "27.5.1";

/// The API version a request asked for (the server's own when unversioned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ApiVersion(pub(crate) u32, pub(crate) u32);

impl ApiVersion {
    fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        Some(Self(a.parse().ok()?, b.parse().ok()?))
    }

    fn max() -> Self {
        // The constant is well formed; the fallback keeps this total.
        Self::parse(API_VERSION).unwrap_or(Self(1, 47))
    }

    fn min() -> Self {
        Self::parse(MIN_API_VERSION).unwrap_or(Self(1, 24))
    }

    /// True when the request's version is at least `major.minor`.
    pub(crate) fn at_least(self, major: u32, minor: u32) -> bool {
        self >= Self(major, minor)
    }
}

/// Splits `/v1.NN/rest` into the version and `/rest`.
fn split_prefix(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let slash = rest.find('/')?;
    let (v, tail) = rest.split_at(slash);
    if v.contains('.') && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        Some((v, tail))
    } else {
        None
    }
}

/// Middleware outside routing: strips the version prefix, refuses versions out of range,
/// records the version for handlers and adds dockerd's headers to every response.
pub(crate) async fn negotiate(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut version = ApiVersion::max();
    if let Some((v, rest)) = split_prefix(&path) {
        let Some(asked) = ApiVersion::parse(v) else {
            return ApiError::bad_request(format!("invalid API version {v:?}")).into_response();
        };
        if asked > ApiVersion::max() {
            return ApiError::bad_request(format!(
                "client version {v} is too new. Maximum supported API version is {API_VERSION}"
            ))
            .into_response();
        }
        if asked < ApiVersion::min() {
            return ApiError::bad_request(format!(
                "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
            ))
            .into_response();
        }
        version = asked;
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_owned(),
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = pq.parse().ok();
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(version);
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        header::SERVER,
        HeaderValue::from_static("Docker/27.5.1 (linux)"),
    );
    resp
}

/// `GET|HEAD /_ping`.
pub(crate) async fn ping() -> Response {
    let mut resp = (StatusCode::OK, "OK").into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// `GET /version`.
pub(crate) async fn version(State(st): State<AppState>) -> Response {
    let info = st.engine.info().await.ok();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let runtime = info.map(|i| i.default_runtime).unwrap_or_default();
    Json(json!({
        "Platform": {"Name": "Corral"},
        "Components": [
            {"Name": "Engine", "Version": API_VERSION_ENGINE, "Details": {
                "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                "GitCommit": "corral", "GoVersion": "n/a", "Os": "linux",
                "Arch": crate::system::go_arch(), "KernelVersion": kernel, "Experimental": "false",
                "BuildTime": "", "CorralVersion": env!("CARGO_PKG_VERSION")}},
            {"Name": "corral", "Version": env!("CARGO_PKG_VERSION"), "Details": {"DefaultRuntime": runtime}}
        ],
        "Version": API_VERSION_ENGINE,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "corral",
        "GoVersion": "n/a",
        "Os": "linux",
        "Arch": crate::system::go_arch(),
        "KernelVersion": kernel,
        "BuildTime": "",
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_version_prefix_only_when_numeric() {
        assert_eq!(
            split_prefix("/v1.41/containers/json"),
            Some(("1.41", "/containers/json"))
        );
        assert_eq!(split_prefix("/volumes"), None);
        assert_eq!(split_prefix("/version"), None);
        assert_eq!(split_prefix("/vx.1/a"), None);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(ApiVersion::parse("1.9").unwrap() < ApiVersion::parse("1.24").unwrap());
        assert!(ApiVersion::parse("1.47").unwrap().at_least(1, 44));
        assert!(ApiVersion::min() < ApiVersion::max());
    }
}
