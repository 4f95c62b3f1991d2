//! Errors as dockerd returns them: a status code and `{"message": …}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use corral_core::{error::Classify, ErrorKind};
use serde_json::json;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// A 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The one mapping from Corral's error classification to HTTP statuses.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::Unavailable => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<corral_engine::Error> for ApiError {
    fn from(e: corral_engine::Error) -> Self {
        let status = status_of(e.kind());
        if status.is_server_error() {
            tracing::warn!(error = %e, "request failed");
        }
        Self {
            status,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::NOT_MODIFIED {
            // 304 carries no body (RFC 9110 §15.4.5).
            return self.status.into_response();
        }
        (self.status, Json(json!({ "message": self.message }))).into_response()
    }
}

/// Unknown routes: dockerd answers `page not found` with 404.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("page not found")
}

/// Result alias for handlers.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
