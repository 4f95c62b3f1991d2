//! `/containers/{id}/exec` and `/exec/*`.

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use corral_engine::ExecSpec;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::containers::ResizeQuery;
use crate::error::{ApiError, ApiResult};
use crate::hijack;
use crate::version::ApiVersion;
use crate::AppState;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ExecCreateBody {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    tty: bool,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    privileged: bool,
    user: String,
    working_dir: String,
    /// docker-py sends `detachKeys`; Go's JSON decoding (dockerd) ignores the case.
    #[serde(alias = "detachKeys")]
    detach_keys: String,
}

pub(crate) async fn create(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let b: ExecCreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let cmd = b.cmd.unwrap_or_default();
    if cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    // dockerd's wording for exec differs from attach's ("detach keys").
    hijack::parse_detach_keys(&b.detach_keys).map_err(|_| {
        ApiError::bad_request(format!("Invalid escape keys ({}) provided", b.detach_keys))
    })?;
    let exec_id = st
        .engine
        .exec_create(
            &id,
            ExecSpec {
                cmd,
                env: b.env.unwrap_or_default(),
                working_dir: Some(b.working_dir).filter(|s| !s.is_empty()),
                user: Some(b.user).filter(|s| !s.is_empty()),
                tty: b.tty,
                attach_stdin: b.attach_stdin,
                attach_stdout: b.attach_stdout,
                attach_stderr: b.attach_stderr,
                privileged: b.privileged,
                detach_keys: Some(b.detach_keys).filter(|k| !k.is_empty()),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": exec_id}))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ExecStartBody {
    detach: bool,
}

pub(crate) async fn start(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Extension(version): Extension<ApiVersion>,
    req: Request,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading body: {e}")))?;
    let b: ExecStartBody = if bytes.is_empty() {
        ExecStartBody::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    if b.detach {
        st.engine.exec_start(&id, true).await?;
        return Ok(StatusCode::OK.into_response());
    }
    // Unknown or already-run sessions are plain HTTP errors; the process itself starts
    // after the hijack (see `hijack::respond_deferred`).
    let state = st.engine.exec_inspect(&id).await?;
    if state.running || state.exit_code.is_some() {
        return Err(ApiError::from(corral_engine::Error::Conflict(format!(
            "Error: Exec command {id} has already run"
        ))));
    }
    let keys = hijack::parse_detach_keys(state.detach_keys.as_deref().unwrap_or(""))?;
    let req = Request::from_parts(parts, axum::body::Body::empty());
    let engine = st.engine.clone();
    Ok(hijack::respond_deferred(
        req,
        state.tty,
        version,
        Some(keys),
        async move {
            engine
                .exec_start(&id, false)
                .await?
                .ok_or_else(|| corral_engine::Error::Internal("exec session has no streams".into()))
        },
    ))
}

pub(crate) async fn resize(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ResizeQuery>,
) -> ApiResult<StatusCode> {
    st.engine
        .exec_resize(&id, q.h.unwrap_or(0), q.w.unwrap_or(0))
        .await?;
    Ok(StatusCode::OK)
}

pub(crate) async fn inspect(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let e = st.engine.exec_inspect(&id).await?;
    Ok(Json(json!({
        "ID": e.id,
        "ContainerID": e.container_id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "Pid": e.pid,
        "OpenStdin": e.open_stdin,
        "OpenStdout": true,
        "OpenStderr": true,
        "CanRemove": false,
        "DetachKeys": "",
        "ProcessConfig": {"tty": e.tty, "entrypoint": e.cmd.first(), "arguments": e.cmd.get(1..).unwrap_or(&[]), "privileged": false},
    })))
}
