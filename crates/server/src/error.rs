//! The one error type of the API. Its responses say what class of failure happened and
//! nothing more: no database text, no hint that a resource exists elsewhere.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dropwatch_store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No token, an unknown one or a revoked one. The body says nothing else.
    #[error("unauthorized")]
    Unauthorized,
    /// The token's role may not use this route at all (never used to hide another
    /// institution's data: that is [`ApiError::NotFound`]).
    #[error("forbidden")]
    Forbidden,
    /// Does not exist, or exists outside the caller's scope.
    #[error("not found")]
    NotFound,
    /// The request is malformed; the message is ours, never echoed input.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Anything the store could not do; logged, answered as a bare 500.
    #[error("store error: {0}")]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Unauthorized => serde_json::json!({ "error": "unauthorized" }),
            ApiError::Forbidden => serde_json::json!({ "error": "forbidden" }),
            ApiError::NotFound => serde_json::json!({ "error": "not_found" }),
            ApiError::BadRequest(msg) => {
                serde_json::json!({ "error": "bad_request", "message": msg })
            }
            ApiError::Store(e) => {
                tracing::error!(error = %e, "API request failed in the store");
                serde_json::json!({ "error": "internal" })
            }
        };
        let mut res = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}
