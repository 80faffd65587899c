//! The institution API: how banks pull their alerts and victims, acknowledge alerts, and ask
//! whether a customer is among the victims without naming the customer.
//!
//! Every route lives under `/api/v1` and needs `Authorization: Bearer <token>`:
//!
//! | route | analyst | institution | partner |
//! | --- | --- | --- | --- |
//! | `GET /alerts?since=&limit=` | all | its own | 403 |
//! | `GET /victims` | all | its own | 403 |
//! | `GET /victims/{id}/timeline` | any | its own, else 404 | 403 |
//! | `POST /alerts/{id}/ack` | 403 | its own, else 404 | 403 |
//! | `GET /lookup/{prefix5}` | all | its own | 403 |
//! | `GET /audit?limit=&before=&actor=` | yes | 403 | 403 |
//! | `GET /metrics` | yes | 403 | 403 |
//! | `GET /openapi.json` | yes | yes | yes |
//!
//! Without a valid token every route (and every unknown path) answers 401 with
//! `{"error":"unauthorized"}` and nothing else. Another institution's alert or victim is
//! indistinguishable from one that does not exist (404). Every request is audited
//! ([`auth`]); reads of personal data are audited again by the store.
//!
//! The TAXII 2.1 server for partners ([`taxii`]: `/taxii2/`, analyst and partner tokens,
//! Bearer or HTTP Basic, TAXII error bodies) is mounted beside it; its routes are
//! [`taxii::ROUTES`], documented in `docs/taxii.md`, not in the OpenAPI document.

pub mod auth;
mod error;
mod metrics;
mod openapi;
pub mod taxii;

use std::future::Future;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use dropwatch_store::{AckStatus, AuditQuery, HashPrefix, Store, TokenScope};
use serde::Deserialize;
use serde_json::{json, Value};

pub use auth::Caller;
pub use error::ApiError;
pub use openapi::openapi;

/// Largest page of alerts or audit entries one request returns.
pub const MAX_LIMIT: i64 = 1000;
/// Page size when the request gives none.
pub const DEFAULT_LIMIT: i64 = 100;
/// Longest acknowledgement note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Every route: method and path. The OpenAPI document and the tests are checked against it.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/alerts"),
    ("POST", "/api/v1/alerts/{id}/ack"),
    ("GET", "/api/v1/victims"),
    ("GET", "/api/v1/victims/{id}/timeline"),
    ("GET", "/api/v1/lookup/{prefix}"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/metrics"),
    ("GET", "/api/v1/openapi.json"),
];

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    store: Store,
}

impl AppState {
    pub fn new(store: Store) -> AppState {
        AppState { store }
    }
}

/// The API as a router: every route behind authentication and audit.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}/ack", post(ack_alert))
        .route("/api/v1/victims", get(list_victims))
        .route("/api/v1/victims/{id}/timeline", get(victim_timeline))
        .route("/api/v1/lookup/{prefix}", get(lookup))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi_json))
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate_and_audit,
        ))
        .merge(taxii::router(state.clone()))
        .with_state(state)
}

/// Serves the API on a listener until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::BadRequest("limit must be between 1 and 1000")),
    }
}

/// A numeric id from the path; anything else is a resource that does not exist.
fn path_id(path: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let Path(text) = path.map_err(|_| ApiError::NotFound)?;
    text.parse::<i64>().map_err(|_| ApiError::NotFound)
}

#[derive(Debug, Deserialize)]
struct AlertsParams {
    since: Option<i64>,
    limit: Option<i64>,
}

async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<AlertsParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.personal_data_scope()?;
    let Query(params) =
        params.map_err(|_| ApiError::BadRequest("since and limit must be integers"))?;
    let since = params.since.unwrap_or(0);
    if since < 0 {
        return Err(ApiError::BadRequest("since must not be negative"));
    }
    let limit = page_limit(params.limit)?;
    let alerts = state
        .store
        .alerts_since(&caller.actor(), scope, since, limit)
        .await?;
    let next_since = alerts.last().map_or(since, |a| a.id);
    Ok(Json(json!({ "alerts": alerts, "next_since": next_since })))
}

async fn list_victims(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.personal_data_scope()?;
    let victims = state.store.list_victims(&caller.actor(), scope).await?;
    Ok(Json(json!({ "victims": victims })))
}

async fn victim_timeline(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.personal_data_scope()?;
    let id = path_id(id)?;
    let timeline = state
        .store
        .victim_timeline(&caller.actor(), scope, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(json!(timeline)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    status: AckStatus,
    #[serde(default)]
    note: String,
}

async fn ack_alert(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<AckBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    // Acknowledging is what an institution does about its own alerts.
    let TokenScope::Institution(institution) = &caller.0.scope else {
        return Err(ApiError::Forbidden);
    };
    let id = path_id(id)?;
    let Json(body) = body.map_err(|_| {
        ApiError::BadRequest(
            "body must be {\"status\": acknowledged|frozen|false_positive|not_our_customer, \"note\": string}",
        )
    })?;
    if body.note.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::BadRequest("note is longer than 2000 characters"));
    }
    let ack = state
        .store
        .ack_alert(&caller.actor(), institution, id, body.status, &body.note)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(ack)))
}

async fn lookup(
    State(state): State<AppState>,
    caller: Caller,
    prefix: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.personal_data_scope()?;
    let prefix = prefix
        .ok()
        .and_then(|Path(p)| HashPrefix::parse(&p))
        .ok_or(ApiError::BadRequest(
            "the prefix is the first 5 hex digits of SHA-256 of the normalised account",
        ))?;
    let suffixes = state
        .store
        .victim_suffixes_for_prefix(&caller.actor(), scope, &prefix)
        .await?;
    Ok(Json(
        json!({ "prefix": prefix.as_str(), "suffixes": suffixes }),
    ))
}

#[derive(Debug, Deserialize)]
struct AuditParams {
    limit: Option<i64>,
    before: Option<i64>,
    actor: Option<String>,
}

async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require_analyst()?;
    let Query(params) = params.map_err(|_| ApiError::BadRequest("invalid query"))?;
    let entries = state
        .store
        .query_audit(&AuditQuery {
            actor: params.actor,
            before_id: params.before,
            limit: page_limit(params.limit)?,
        })
        .await?;
    Ok(Json(json!({ "entries": entries })))
}

async fn metrics(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_analyst()?;
    let m = state.store.alert_metrics().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&m),
    ))
}

async fn openapi_json(_caller: Caller) -> Json<Value> {
    Json(openapi())
}
