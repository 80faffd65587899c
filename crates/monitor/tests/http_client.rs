//! How a monitor talks to drop servers over HTTP.
//!
//! Conditional polling: a drop that sends `ETag` / `Last-Modified` is asked again with
//! `If-None-Match` / `If-Modified-Since`; while it is unchanged it answers 304, nothing is read
//! or parsed, and the cursor stays; when it changes, the new records (and only those) arrive.
//! A validator that is too long or not plain ASCII is never stored or sent back.
//!
//! A proxy (police and CERTs watch drops through Tor or their own egress) carries every
//! request, and a per-host rate limit spaces requests to one server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dropwatch_masks::InstitutionIndex;
use dropwatch_monitor::{Monitor, MonitorConfig, KIND_HTTP_JSON, KIND_HTTP_JSONL};
use dropwatch_records::{RecordAnalyzer, SecretKey};
use dropwatch_store::{MonitorSource, Store};
use dropwatch_testkit::fixtures::{a_bank, store_with_a_bank};
use tokio::sync::Notify;

fn report(n: u32) -> serde_json::Value {
    serde_json::json!({
        "id": n, "bot_id": format!("WIN7_{n:08X}"), "botnet": "bn1", "type": 12,
        "path_source": "https://ib.a-bank.example/login.do",
        "context": format!("https://ib.a-bank.example/login.do\nPOST data:\n\nkouza_no=100-{n:04}\npassword=Pw{n}xQ%21z\n"),
    })
}

/// The drop's current content and how it was asked for.
#[derive(Default)]
struct Drop {
    body: Mutex<Vec<u8>>,
    version: AtomicUsize,
    /// The validator the server sends (with `{v}` replaced by the version).
    etag_template: Mutex<String>,
    full: AtomicUsize,
    not_modified: AtomicUsize,
    /// Requests in absolute form for the fictional host: they came through a proxy.
    proxied: AtomicUsize,
    conditional: AtomicUsize,
}

impl Drop {
    fn set(&self, body: Vec<u8>) {
        *self.body.lock().unwrap() = body;
        self.version.fetch_add(1, Ordering::SeqCst);
    }
}

async fn serve_drop(
    State(d): State<Arc<Drop>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    if uri.host() == Some("drop.invalid") {
        d.proxied.fetch_add(1, Ordering::SeqCst);
    }
    let etag = d
        .etag_template
        .lock()
        .unwrap()
        .replace("{v}", &d.version.load(Ordering::SeqCst).to_string());
    let last_modified = format!(
        "Wed, 21 Oct 2015 07:{:02}:00 GMT",
        d.version.load(Ordering::SeqCst) % 60
    );
    let inm = headers.get(header::IF_NONE_MATCH);
    let ims = headers.get(header::IF_MODIFIED_SINCE);
    if inm.is_some() || ims.is_some() {
        d.conditional.fetch_add(1, Ordering::SeqCst);
    }
    let unchanged = match (inm, ims) {
        (Some(v), _) => v.as_bytes() == etag.as_bytes(),
        (None, Some(v)) => v.as_bytes() == last_modified.as_bytes(),
        (None, None) => false,
    };
    if unchanged {
        d.not_modified.fetch_add(1, Ordering::SeqCst);
        return StatusCode::NOT_MODIFIED.into_response();
    }
    d.full.fetch_add(1, Ordering::SeqCst);
    let mut res = d.body.lock().unwrap().clone().into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        res.headers_mut().insert(header::LAST_MODIFIED, v);
    }
    res
}

async fn start(d: Arc<Drop>) -> String {
    let app = Router::new().route("/drop", get(serve_drop)).with_state(d);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/drop")
}

async fn setup(dir: &std::path::Path) -> (Store, Monitor) {
    setup_with(dir, MonitorConfig::default()).await
}

async fn setup_with(dir: &std::path::Path, config: MonitorConfig) -> (Store, Monitor) {
    let store = store_with_a_bank(dir).await;
    let analyzer = Arc::new(RecordAnalyzer::new(
        InstitutionIndex::new(vec![a_bank()]),
        SecretKey::from_bytes([3; 32]),
    ));
    let config = MonitorConfig {
        poll_interval: Duration::from_secs(3600),
        allow_private: true,
        ..config
    };
    let m = Monitor::new(store.clone(), analyzer, config, Arc::new(Notify::new())).unwrap();
    (store, m)
}

async fn source(store: &Store, id: i64) -> MonitorSource {
    store
        .monitor_source(id)
        .await
        .unwrap()
        .expect("the source exists")
}

fn json_array(n: u32) -> Vec<u8> {
    serde_json::to_vec(&(1..=n).map(report).collect::<Vec<_>>()).unwrap()
}

#[tokio::test]
async fn an_unchanged_snapshot_answers_304_and_a_changed_one_brings_only_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let (store, m) = setup(dir.path()).await;
    let d = Arc::new(Drop::default());
    *d.etag_template.lock().unwrap() = "\"v{v}\"".into();
    d.set(json_array(3));
    let url = start(d.clone()).await;
    let id = store
        .add_monitor_source(None, KIND_HTTP_JSON, &url)
        .await
        .unwrap();

    let first = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(first.ingest.new_records, 3);
    for _ in 0..3 {
        let again = m.poll(&source(&store, id).await).await.unwrap();
        assert_eq!(
            (again.bytes, again.lines),
            (0, 0),
            "nothing read while unchanged"
        );
    }
    assert_eq!(d.full.load(Ordering::SeqCst), 1);
    assert_eq!(d.not_modified.load(Ordering::SeqCst), 3);

    d.set(json_array(5));
    let changed = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(
        (changed.ingest.new_records, changed.ingest.duplicate_records),
        (2, 3)
    );
    assert_eq!(d.full.load(Ordering::SeqCst), 2);
    let unchanged = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(unchanged.bytes, 0);
    assert_eq!(store.stats().await.unwrap().records, 5);
    store.close().await;
}

#[tokio::test]
async fn an_append_only_drop_is_asked_conditionally_too() {
    let dir = tempfile::tempdir().unwrap();
    let (store, m) = setup(dir.path()).await;
    let d = Arc::new(Drop::default());
    *d.etag_template.lock().unwrap() = "W/\"{v}\"".into();
    let lines = |n: u32| -> Vec<u8> {
        (1..=n)
            .map(|i| format!("{}\n", report(i)))
            .collect::<String>()
            .into_bytes()
    };
    d.set(lines(2));
    let url = start(d.clone()).await;
    let id = store
        .add_monitor_source(None, KIND_HTTP_JSONL, &url)
        .await
        .unwrap();
    assert_eq!(
        m.poll(&source(&store, id).await)
            .await
            .unwrap()
            .ingest
            .new_records,
        2
    );
    let cursor_before = source(&store, id).await.cursor;
    assert_eq!(m.poll(&source(&store, id).await).await.unwrap().bytes, 0);
    assert_eq!(
        source(&store, id).await.cursor,
        cursor_before,
        "a 304 keeps the cursor"
    );
    d.set(lines(4));
    // This server ignores Range: the monitor skips what it has read and takes the rest.
    let more = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(
        (more.ingest.new_records, more.ingest.duplicate_records),
        (2, 0)
    );
    assert_eq!(d.not_modified.load(Ordering::SeqCst), 1);
    store.close().await;
}

#[tokio::test]
async fn hostile_validators_are_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (store, m) = setup(dir.path()).await;
    let d = Arc::new(Drop::default());
    // Too long to keep: every poll is a full read, never a conditional one.
    *d.etag_template.lock().unwrap() = format!("\"{}{{v}}\"", "x".repeat(500));
    d.set(json_array(2));
    let url = start(d.clone()).await;
    let id = store
        .add_monitor_source(None, KIND_HTTP_JSON, &url)
        .await
        .unwrap();
    for _ in 0..3 {
        m.poll(&source(&store, id).await).await.unwrap();
    }
    let cursor = source(&store, id).await.cursor.unwrap_or_default();
    assert!(
        !cursor.contains("xxxx"),
        "the long ETag is not stored: {cursor}"
    );
    // Only Last-Modified (short, plain) was kept and sent back.
    assert_eq!(d.full.load(Ordering::SeqCst), 1);
    assert_eq!(d.not_modified.load(Ordering::SeqCst), 2);
    store.close().await;
}

#[tokio::test]
async fn a_proxy_carries_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = Arc::new(Drop::default());
    *d.etag_template.lock().unwrap() = "\"{v}\"".into();
    d.set(json_array(3));
    let direct = start(d.clone()).await;
    // The drop server doubles as the proxy: it answers absolute-form requests by path.
    let proxy = direct.trim_end_matches("/drop").to_string();
    let (store, m) = setup_with(
        dir.path(),
        MonitorConfig {
            proxy: Some(proxy),
            ..MonitorConfig::default()
        },
    )
    .await;
    // The name does not resolve: only the proxy can reach it.
    let id = store
        .add_monitor_source(None, KIND_HTTP_JSON, "http://drop.invalid/drop")
        .await
        .unwrap();
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(out.ingest.new_records, 3);
    assert_eq!(d.proxied.load(Ordering::SeqCst), 1);
    store.close().await;
}

#[tokio::test]
async fn requests_to_one_host_are_spaced_by_the_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = Arc::new(Drop::default());
    d.set(json_array(1));
    let url = start(d.clone()).await;
    let (store, m) = setup_with(
        dir.path(),
        MonitorConfig {
            max_requests_per_host_per_sec: Some(20.0),
            ..MonitorConfig::default()
        },
    )
    .await;
    let id = store
        .add_monitor_source(None, KIND_HTTP_JSON, &url)
        .await
        .unwrap();
    let src = source(&store, id).await;
    let started = std::time::Instant::now();
    for _ in 0..6 {
        m.poll(&src).await.unwrap();
    }
    // Six requests at 20 per second: the last starts no earlier than 250 ms after the first.
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(d.full.load(Ordering::SeqCst), 6);
    store.close().await;
}

/// A drop panel's JSON API: `/api?page=N`, `PAGE` reports a page, a `next` link while there
/// are more. `next_override` replaces the link on every page (a hostile panel).
#[derive(Default)]
struct Listing {
    reports: Mutex<Vec<serde_json::Value>>,
    next_override: Mutex<Option<String>>,
    requests: AtomicUsize,
}

const PAGE: usize = 100;

async fn serve_listing(
    State(l): State<Arc<Listing>>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, usize>>,
) -> Response {
    l.requests.fetch_add(1, Ordering::SeqCst);
    let page = q.get("page").copied().unwrap_or(0);
    let reports = l.reports.lock().unwrap();
    let items: Vec<_> = reports
        .iter()
        .skip(page * PAGE)
        .take(PAGE)
        .cloned()
        .collect();
    let next = match &*l.next_override.lock().unwrap() {
        Some(n) => Some(n.clone()),
        None => (reports.len() > (page + 1) * PAGE).then(|| format!("/api?page={}", page + 1)),
    };
    axum::Json(serde_json::json!({ "data": items, "links": { "next": next } })).into_response()
}

async fn start_listing(l: Arc<Listing>) -> String {
    let app = Router::new()
        .route("/api", get(serve_listing))
        .with_state(l);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api")
}

#[tokio::test]
async fn a_paged_listing_is_followed_and_resumed_at_its_last_page() {
    let dir = tempfile::tempdir().unwrap();
    let (store, m) = setup_with(
        dir.path(),
        MonitorConfig {
            max_pages_per_poll: 2,
            ..MonitorConfig::default()
        },
    )
    .await;
    let l = Arc::new(Listing::default());
    *l.reports.lock().unwrap() = (1..=250).map(report).collect();
    let url = start_listing(l.clone()).await;
    let id = store
        .add_monitor_source(None, dropwatch_monitor::KIND_HTTP_JSON_PAGES, &url)
        .await
        .unwrap();
    // Two pages a poll: 200 reports, then the last page's 50.
    let first = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(first.ingest.new_records, 200);
    let second = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(second.ingest.new_records, 50);
    // The last page is read again: nothing new, nothing lost.
    let third = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(
        (third.ingest.new_records, third.ingest.duplicate_records),
        (0, 50)
    );
    // The panel grows: the last page fills up and a new one appears.
    l.reports.lock().unwrap().extend((251..=330).map(report));
    let fourth = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(fourth.ingest.new_records, 80);
    assert_eq!(store.stats().await.unwrap().records, 330);
    assert_eq!(l.requests.load(Ordering::SeqCst), 2 + 1 + 1 + 2);
    store.close().await;
}

#[tokio::test]
async fn next_links_off_the_origin_or_in_a_loop_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, m) = setup(dir.path()).await;
    let l = Arc::new(Listing::default());
    *l.reports.lock().unwrap() = (1..=5).map(report).collect();
    *l.next_override.lock().unwrap() = Some("http://10.0.0.1/admin/dump".into());
    let url = start_listing(l.clone()).await;
    let id = store
        .add_monitor_source(None, dropwatch_monitor::KIND_HTTP_JSON_PAGES, &url)
        .await
        .unwrap();
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(out.ingest.new_records, 5);
    assert_eq!(out.bad_lines.len(), 1, "the foreign next link is counted");
    assert_eq!(l.requests.load(Ordering::SeqCst), 1);
    let cursor = source(&store, id).await.cursor.unwrap();
    assert!(!cursor.contains("10.0.0.1"), "{cursor}");

    // A next link back to the same page ends the poll.
    *l.next_override.lock().unwrap() = Some("/api".into());
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(out.ingest.duplicate_records, 5);
    assert_eq!(l.requests.load(Ordering::SeqCst), 2);
    store.close().await;
}
