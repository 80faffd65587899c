//! Bearer-token authentication and the audit of every request.
//!
//! The middleware runs around every route and the fallback: it resolves the
//! `Authorization: Bearer <token>` header to an [`ApiToken`] (or answers 401), runs the
//! handler, and writes one audit entry per request (actor = token id and label, never the
//! token; action = method and route template; subject = path and status). If the audit entry
//! cannot be written the answer is replaced by a 500: no request goes unrecorded.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dropwatch_store::{ApiToken, TokenScope};

use crate::error::ApiError;
use crate::AppState;

/// The authenticated caller, put in the request's extensions by the middleware.
#[derive(Debug, Clone)]
pub struct Caller(pub ApiToken);

impl Caller {
    pub fn actor(&self) -> String {
        self.0.actor()
    }

    /// The scope of reads of personal data: `None` for all institutions (analysts),
    /// `Some(id)` for one institution; partners may not read personal data at all.
    pub fn personal_data_scope(&self) -> Result<Option<&str>, ApiError> {
        match &self.0.scope {
            TokenScope::Analyst => Ok(None),
            TokenScope::Institution(id) => Ok(Some(id)),
            TokenScope::Partner => Err(ApiError::Forbidden),
        }
    }

    /// Only analysts.
    pub fn require_analyst(&self) -> Result<(), ApiError> {
        match self.0.scope {
            TokenScope::Analyst => Ok(()),
            _ => Err(ApiError::Forbidden),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

/// The token of an `Authorization: Bearer ...` header (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Authenticates, runs the handler, audits. See the module documentation.
pub async fn authenticate_and_audit(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let action = format!(
        "{} {}",
        req.method(),
        req.extensions()
            .get::<MatchedPath>()
            .map_or("(no route)", MatchedPath::as_str)
    );
    let path = req.uri().path().to_string();
    let token = match bearer(req.headers()) {
        None => Ok(None),
        Some(t) => state.store.authenticate_api_token(t).await,
    };
    let (actor, response) = match token {
        Ok(Some(token)) => {
            let caller = Caller(token);
            let actor = caller.actor();
            req.extensions_mut().insert(caller);
            (actor, next.run(req).await)
        }
        Ok(None) => (
            "unauthenticated".to_string(),
            ApiError::Unauthorized.into_response(),
        ),
        Err(e) => (
            "unauthenticated".to_string(),
            ApiError::from(e).into_response(),
        ),
    };
    let subject = format!("{path} status={}", response.status().as_u16());
    match state.store.audit(&actor, &action, &subject).await {
        Ok(()) => response,
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_tokens_are_read_strictly() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(bearer(&h("Bearer dw_x")), Some("dw_x"));
        assert_eq!(bearer(&h("bearer  dw_x ")), Some("dw_x"));
        assert_eq!(bearer(&h("Basic dw_x")), None);
        assert_eq!(bearer(&h("Bearer ")), None);
        assert_eq!(bearer(&h("dw_x")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
