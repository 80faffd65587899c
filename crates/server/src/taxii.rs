//! The TAXII 2.1 server: how CERTs, police and other vendors pull dropwatch's STIX
//! indicators with their own tools (taxii2-client, OpenCTI, MISP's TAXII connector...).
//!
//! One API root, `/taxii2/api1/`, read-only:
//!
//! | route | what |
//! | --- | --- |
//! | `GET /taxii2/` | discovery (`api_roots`, `default`) |
//! | `GET /taxii2/api1/` | API root information |
//! | `GET /taxii2/api1/collections/` | every collection |
//! | `GET /taxii2/api1/collections/{id}/` | one collection (id or alias) |
//! | `GET /taxii2/api1/collections/{id}/objects/` | objects, paged; `added_after`, `limit`, `next`, `match[id\|type\|version\|spec_version]` |
//! | `GET /taxii2/api1/collections/{id}/objects/{object_id}/` | one object's versions (`match[version]`, default `last`) |
//! | `GET /taxii2/api1/collections/{id}/objects/{object_id}/versions/` | the object's version timestamps |
//! | `GET /taxii2/api1/collections/{id}/manifest/` | manifest records, paged like objects |
//! | `GET /taxii2/api1/status/{id}/` | always 404: nothing is ever posted, so there is no status |
//!
//! `POST .../objects/` answers 415 for a wrong `Content-Type` and otherwise 405: partners do
//! not add objects (every collection says `can_write: false`); `DELETE` of an object is 405.
//!
//! **Authentication:** an analyst or partner token, as `Authorization: Bearer <token>` or as
//! the password of HTTP Basic (taxii2-client and most TAXII tools speak Basic; the user name
//! is ignored). No or a bad token: 401 with `WWW-Authenticate` (Basic and Bearer);
//! institution tokens: 403 (institutions use `/api/v1`). Every request is audited exactly as
//! the institution API's are ([`crate::auth`]).
//!
//! **Media types:** every answer is `application/taxii+json;version=2.1`; a request whose
//! `Accept` admits neither that, `application/taxii+json`, `application/*` nor `*/*` gets 406
//! (no `Accept` header admits anything). Errors are TAXII error messages (`title`,
//! `description`, `http_status`) and never carry internals.
//!
//! **Paging:** pages are read from the store by keyset on `(date_added, row id)`
//! ([`Store::objects_page`]): a collection is never loaded whole, and `next` stays valid however
//! long the client waits and whatever is published meanwhile (new versions appear at the end).
//! `limit` defaults to [`DEFAULT_PAGE`] and is capped at [`MAX_PAGE`]; a client asking for more
//! gets a shorter page with `more: true`, which taxii2-client's `as_pages` handles.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use base64::Engine as _;
use dropwatch_store::{
    format_timestamp, parse_timestamp, Collection, ManifestEntry, ObjectFilter, Page, PageCursor,
    SharingError, Store, TokenScope, VersionMatch,
};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::AppState;

/// The TAXII 2.1 media type: of every response, and what `Accept` must admit.
pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
/// The media type of the STIX content of every collection.
pub const STIX_MEDIA_TYPE: &str = "application/stix+json;version=2.1";
/// The one API root.
pub const API_ROOT: &str = "/taxii2/api1/";
/// Page size when the request gives no `limit`.
pub const DEFAULT_PAGE: u32 = 100;
/// Largest page: a larger `limit` is served as this many (`more` tells there is more).
pub const MAX_PAGE: u32 = 1000;

/// Every TAXII route: method and path template (the audit log's action is one of these).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/taxii2/"),
    ("GET", "/taxii2/api1/"),
    ("GET", "/taxii2/api1/collections/"),
    ("GET", "/taxii2/api1/collections/{id}/"),
    ("GET", "/taxii2/api1/collections/{id}/objects/"),
    ("POST", "/taxii2/api1/collections/{id}/objects/"),
    ("GET", "/taxii2/api1/collections/{id}/objects/{object_id}/"),
    (
        "GET",
        "/taxii2/api1/collections/{id}/objects/{object_id}/versions/",
    ),
    ("GET", "/taxii2/api1/collections/{id}/manifest/"),
    ("GET", "/taxii2/api1/status/{id}/"),
];

/// The TAXII routes, each behind authentication, the `Accept` check and the audit.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/taxii2/", get(discovery).fallback(method_not_allowed))
        .route("/taxii2/api1/", get(api_root).fallback(method_not_allowed))
        .route(
            "/taxii2/api1/collections/",
            get(collections).fallback(method_not_allowed),
        )
        .route(
            "/taxii2/api1/collections/{id}/",
            get(collection).fallback(method_not_allowed),
        )
        .route(
            "/taxii2/api1/collections/{id}/objects/",
            get(objects).post(add_objects).fallback(method_not_allowed),
        )
        .route(
            "/taxii2/api1/collections/{id}/objects/{object_id}/",
            get(object).fallback(method_not_allowed),
        )
        .route(
            "/taxii2/api1/collections/{id}/objects/{object_id}/versions/",
            get(versions).fallback(method_not_allowed),
        )
        .route(
            "/taxii2/api1/collections/{id}/manifest/",
            get(manifest).fallback(method_not_allowed),
        )
        .route(
            "/taxii2/api1/status/{id}/",
            get(status).fallback(method_not_allowed),
        )
        .route(
            "/taxii2/{*rest}",
            any(|| async { TaxiiError::not_found("no such TAXII resource") }),
        )
        .layer(middleware::from_fn_with_state(
            state,
            authenticate_and_audit,
        ))
}

/// A TAXII error message (TAXII 2.1 §3.6.1). The texts are ours: never input, never internals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxiiError {
    pub status: StatusCode,
    pub title: &'static str,
    pub description: &'static str,
}

impl TaxiiError {
    fn new(status: StatusCode, title: &'static str, description: &'static str) -> TaxiiError {
        TaxiiError {
            status,
            title,
            description,
        }
    }

    fn not_found(description: &'static str) -> TaxiiError {
        TaxiiError::new(StatusCode::NOT_FOUND, "Not Found", description)
    }

    fn bad_request(description: &'static str) -> TaxiiError {
        TaxiiError::new(StatusCode::BAD_REQUEST, "Bad Request", description)
    }
}

impl From<SharingError> for TaxiiError {
    fn from(e: SharingError) -> TaxiiError {
        tracing::error!(error = %e, "TAXII request failed in the store");
        TaxiiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Error",
            "the server could not answer",
        )
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = json!({
            "title": self.title,
            "description": self.description,
            "http_status": self.status.as_u16().to_string(),
        });
        let mut res = taxii_response(self.status, body.to_string());
        if self.status == StatusCode::UNAUTHORIZED {
            let h = res.headers_mut();
            h.append(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"dropwatch TAXII\", charset=\"UTF-8\""),
            );
            h.append(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dropwatch TAXII\""),
            );
        }
        res
    }
}

fn taxii_response(status: StatusCode, body: String) -> Response {
    let mut res = (status, Body::from(body)).into_response();
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TAXII_MEDIA_TYPE));
    res
}

fn taxii_json(value: &Value) -> Response {
    taxii_response(StatusCode::OK, value.to_string())
}

/// The token of `Authorization: Bearer <token>` or the password of `Authorization: Basic`.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return (!rest.is_empty()).then(|| rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_user, password) = text.split_once(':')?;
        return (!password.is_empty()).then(|| password.to_string());
    }
    None
}

/// Whether an `Accept` header admits TAXII 2.1 (absent: anything is acceptable).
fn accepts_taxii(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return true;
    }
    values
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut version = None;
            let mut q_zero = false;
            for p in parts {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "version" => version = Some(v.to_string()),
                    "q" => q_zero = v.parse::<f32>().is_ok_and(|q| q <= 0.0),
                    _ => {}
                }
            }
            !q_zero
                && match media.as_str() {
                    "*/*" | "application/*" => true,
                    "application/taxii+json" => version.is_none_or(|v| v == "2.1"),
                    _ => false,
                }
        })
}

/// Authenticates (analyst and partner tokens), checks `Accept`, runs the handler, audits.
async fn authenticate_and_audit(
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
    let token = match presented_token(req.headers()) {
        None => Ok(None),
        Some(t) => state.store.authenticate_api_token(&t).await,
    };
    let (actor, response) = match token {
        Ok(Some(token)) => {
            let caller = Caller(token);
            let actor = caller.actor();
            let response = if matches!(caller.0.scope, TokenScope::Institution(_)) {
                TaxiiError::new(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "institution tokens use /api/v1; TAXII is for analyst and partner tokens",
                )
                .into_response()
            } else if !accepts_taxii(req.headers()) {
                TaxiiError::new(
                    StatusCode::NOT_ACCEPTABLE,
                    "Not Acceptable",
                    "this server answers application/taxii+json;version=2.1 only",
                )
                .into_response()
            } else {
                req.extensions_mut().insert(caller);
                next.run(req).await
            };
            (actor, response)
        }
        Ok(None) => (
            "unauthenticated".to_string(),
            TaxiiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "a partner or analyst token is required (Bearer, or as the Basic password)",
            )
            .into_response(),
        ),
        Err(e) => (
            "unauthenticated".to_string(),
            TaxiiError::from(SharingError::Store(e)).into_response(),
        ),
    };
    let subject = format!("{path} status={}", response.status().as_u16());
    match state.store.audit(&actor, &action, &subject).await {
        Ok(()) => response,
        Err(e) => TaxiiError::from(SharingError::Store(e)).into_response(),
    }
}

async fn method_not_allowed() -> TaxiiError {
    TaxiiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed",
        "this TAXII server is read-only: use GET",
    )
}

async fn discovery(_caller: Caller) -> Response {
    taxii_json(&json!({
        "title": "dropwatch TAXII 2.1",
        "description": "Indicators of banking-trojan infrastructure (C2 gates, config hosts, drops, ATS panels) from dropwatch. No personal data.",
        "default": API_ROOT,
        "api_roots": [API_ROOT],
    }))
}

async fn api_root(_caller: Caller) -> Response {
    taxii_json(&json!({
        "title": "dropwatch indicators",
        "description": "Read-only: collections of STIX 2.1 objects published by dropwatch.",
        "versions": [TAXII_MEDIA_TYPE],
        // Nothing may be posted here.
        "max_content_length": 0,
    }))
}

fn collection_json(c: &Collection) -> Value {
    let mut v = json!({
        "id": c.id,
        "title": c.title,
        "description": c.description,
        "can_read": c.can_read,
        "can_write": c.can_write,
        "media_types": c.media_types,
    });
    if let Some(alias) = &c.alias {
        v["alias"] = json!(alias);
    }
    v
}

async fn collections(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Response, TaxiiError> {
    let all = state.store.collections().await?;
    let list: Vec<Value> = all.iter().map(collection_json).collect();
    Ok(taxii_json(&json!({ "collections": list })))
}

/// The collection of a path, readable by the caller.
async fn readable_collection(store: &Store, id: &str) -> Result<Collection, TaxiiError> {
    let c = store
        .collection(id)
        .await?
        .ok_or(TaxiiError::not_found("no such collection"))?;
    if !c.can_read {
        return Err(TaxiiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "this collection cannot be read",
        ));
    }
    Ok(c)
}

async fn collection(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, TaxiiError> {
    let c = state
        .store
        .collection(&id)
        .await?
        .ok_or(TaxiiError::not_found("no such collection"))?;
    Ok(taxii_json(&collection_json(&c)))
}

/// Which query parameters an endpoint honours (the others are ignored, as TAXII allows).
#[derive(Debug, Clone, Copy)]
struct Allowed {
    id_and_type: bool,
    version: bool,
}

/// The paging and filter parameters of a request.
#[derive(Debug)]
struct Params {
    filter: ObjectFilter,
    limit: u32,
    next: Option<PageCursor>,
}

fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn parse_params(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    allowed: Allowed,
) -> Result<Params, TaxiiError> {
    let Query(pairs) =
        query.map_err(|_| TaxiiError::bad_request("the query string is malformed"))?;
    let mut params = Params {
        filter: ObjectFilter::default(),
        limit: DEFAULT_PAGE,
        next: None,
    };
    for (key, value) in &pairs {
        match key.as_str() {
            "added_after" => {
                params.filter.added_after =
                    Some(parse_timestamp(value.trim()).ok_or(TaxiiError::bad_request(
                        "added_after is not a timestamp (YYYY-MM-DDTHH:MM:SS[.s]Z)",
                    ))?);
            }
            "limit" => {
                let n: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| TaxiiError::bad_request("limit must be a positive integer"))?;
                if n <= 0 {
                    return Err(TaxiiError::bad_request("limit must be a positive integer"));
                }
                params.limit = n.min(i64::from(MAX_PAGE)) as u32;
            }
            "next" => {
                params.next = Some(PageCursor::parse(value.trim()).ok_or(
                    TaxiiError::bad_request("next is not a token this server gave"),
                )?);
            }
            "match[id]" if allowed.id_and_type => params.filter.ids.extend(list(value)),
            "match[type]" if allowed.id_and_type => params.filter.types.extend(list(value)),
            "match[spec_version]" => params.filter.spec_versions.extend(list(value)),
            "match[version]" if allowed.version => {
                for v in list(value) {
                    params.filter.versions.push(VersionMatch::parse(&v).ok_or(
                        TaxiiError::bad_request(
                            "match[version] takes first, last, all or timestamps",
                        ),
                    )?);
                }
            }
            _ => {}
        }
    }
    Ok(params)
}

/// `{"more":..,"next":..,<key>:[..]}` from already-serialised items, with the date-added
/// headers of the page.
fn envelope<T>(key: &str, page: &Page<T>, items: impl Iterator<Item = String>) -> Response {
    let mut body = String::with_capacity(64 + page.objects.len() * 512);
    body.push_str("{\"more\":");
    body.push_str(if page.more { "true" } else { "false" });
    if let Some(next) = &page.next {
        body.push_str(",\"next\":\"");
        body.push_str(&next.token());
        body.push('"');
    }
    if !page.objects.is_empty() {
        body.push_str(",\"");
        body.push_str(key);
        body.push_str("\":[");
        for (i, item) in items.enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&item);
        }
        body.push(']');
    }
    body.push('}');
    let mut res = taxii_response(StatusCode::OK, body);
    for (name, value) in [
        ("x-taxii-date-added-first", page.first_added),
        ("x-taxii-date-added-last", page.last_added),
    ] {
        if let Some(v) = value.and_then(|t| HeaderValue::from_str(&format_timestamp(t)).ok()) {
            res.headers_mut().insert(name, v);
        }
    }
    res
}

async fn objects(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, TaxiiError> {
    let c = readable_collection(&state.store, &id).await?;
    let p = parse_params(
        query,
        Allowed {
            id_and_type: true,
            version: true,
        },
    )?;
    let page = state
        .store
        .objects_page(&c.id, &p.filter, p.limit, p.next)
        .await?;
    Ok(envelope(
        "objects",
        &page,
        page.objects.iter().map(|o| o.json.clone()),
    ))
}

async fn add_objects(_caller: Caller, headers: HeaderMap) -> TaxiiError {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.replace(' ', "").to_ascii_lowercase());
    if content_type.as_deref() != Some(TAXII_MEDIA_TYPE) {
        return TaxiiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            "a TAXII envelope is application/taxii+json;version=2.1",
        );
    }
    TaxiiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed",
        "collections are read-only (can_write is false): dropwatch publishes, partners read",
    )
}

async fn object(
    State(state): State<AppState>,
    _caller: Caller,
    Path((id, object_id)): Path<(String, String)>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, TaxiiError> {
    let c = readable_collection(&state.store, &id).await?;
    let mut p = parse_params(
        query,
        Allowed {
            id_and_type: false,
            version: true,
        },
    )?;
    p.filter.ids = vec![object_id.clone()];
    let page = state
        .store
        .objects_page(&c.id, &p.filter, p.limit, p.next)
        .await?;
    if page.objects.is_empty() && !state.store.has_object(&c.id, &object_id).await? {
        return Err(TaxiiError::not_found("no such object in this collection"));
    }
    Ok(envelope(
        "objects",
        &page,
        page.objects.iter().map(|o| o.json.clone()),
    ))
}

async fn versions(
    State(state): State<AppState>,
    _caller: Caller,
    Path((id, object_id)): Path<(String, String)>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, TaxiiError> {
    let c = readable_collection(&state.store, &id).await?;
    let p = parse_params(
        query,
        Allowed {
            id_and_type: false,
            version: false,
        },
    )?;
    let page = state
        .store
        .object_versions(&c.id, &object_id, &p.filter, p.limit, p.next)
        .await?;
    if page.objects.is_empty() && !state.store.has_object(&c.id, &object_id).await? {
        return Err(TaxiiError::not_found("no such object in this collection"));
    }
    Ok(envelope(
        "versions",
        &page,
        page.objects
            .iter()
            .map(|e| format!("\"{}\"", format_timestamp(e.version))),
    ))
}

fn manifest_json(e: &ManifestEntry) -> String {
    json!({
        "id": e.id,
        "date_added": format_timestamp(e.date_added),
        "version": format_timestamp(e.version),
        "media_type": format!("application/stix+json;version={}", e.spec_version),
    })
    .to_string()
}

async fn manifest(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, TaxiiError> {
    let c = readable_collection(&state.store, &id).await?;
    let p = parse_params(
        query,
        Allowed {
            id_and_type: true,
            version: true,
        },
    )?;
    let page = state
        .store
        .manifest_page(&c.id, &p.filter, p.limit, p.next)
        .await?;
    Ok(envelope(
        "objects",
        &page,
        page.objects.iter().map(manifest_json),
    ))
}

async fn status(_caller: Caller) -> TaxiiError {
    TaxiiError::not_found("no such status: this server accepts no objects")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: axum::http::HeaderName, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn accept_admits_taxii_21_and_wildcards_only() {
        for ok in [
            &[][..],
            &["application/taxii+json;version=2.1"],
            &["application/taxii+json; version=2.1"],
            &["application/taxii+json"],
            &["*/*"],
            &["application/*"],
            &["text/html, application/taxii+json;version=2.1;q=0.5"],
            &["text/html", "*/*;q=0.1"],
        ] {
            assert!(accepts_taxii(&headers(ACCEPT, ok)), "{ok:?}");
        }
        for bad in [
            &["application/taxii+json;version=2.0"][..],
            &["application/vnd.oasis.taxii+json"],
            &["application/json"],
            &["text/html"],
            &["application/taxii+json;version=2.1;q=0"],
            &["*/*;q=0"],
        ] {
            assert!(!accepts_taxii(&headers(ACCEPT, bad)), "{bad:?}");
        }
    }

    #[test]
    fn tokens_come_from_bearer_or_the_basic_password() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let h = |v: &str| headers(AUTHORIZATION, &[v]);
        assert_eq!(presented_token(&h("Bearer dw_x")).as_deref(), Some("dw_x"));
        assert_eq!(
            presented_token(&h(&format!("Basic {}", b64("partner:dw_y")))).as_deref(),
            Some("dw_y")
        );
        assert_eq!(
            presented_token(&h(&format!("basic {}", b64(":dw_z:with:colons")))).as_deref(),
            Some("dw_z:with:colons")
        );
        assert_eq!(
            presented_token(&h(&format!("Basic {}", b64("user:")))),
            None
        );
        assert_eq!(
            presented_token(&h(&format!("Basic {}", b64("nocolon")))),
            None
        );
        assert_eq!(presented_token(&h("Basic !!!")), None);
        assert_eq!(presented_token(&h("Bearer ")), None);
        assert_eq!(presented_token(&h("Digest abc")), None);
        assert_eq!(presented_token(&HeaderMap::new()), None);
    }
}
