//! Every drop format the monitor reads, against the generator's ground truth: the testkit's
//! drop data as JSON lines, a JSON array, CSV and ZeuS `reports.txt` blocks, read from files,
//! over HTTP (with `Range` resumption and a small read limit, so records are split across
//! polls) and from a MariaDB panel (`botnet_reports_YYMMDD` day tables), each into a fresh
//! store, must give exactly the ground-truth victims: institution, account, exposed kinds and
//! urgency.
//!
//! MariaDB is reached at `DROPWATCH_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306`);
//! each run creates its own database and drops it. Without a server the panel test is skipped
//! with a `SKIPPED:` message, except under `CI=true`, where it fails.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use dropwatch_masks::InstitutionIndex;
use dropwatch_model::PanelReport;
use dropwatch_monitor::{Monitor, MonitorConfig, PanelDbLimits, PollOutcome, KIND_PANEL_MYSQL};
use dropwatch_records::{RecordAnalyzer, SecretKey};
use dropwatch_store::{MonitorSource, Store};
use dropwatch_testkit::formats::{self, DropFormat};
use dropwatch_testkit::{generate, GenerateOptions, Generated};
use sqlx::mysql::MySqlConnection;
use sqlx::{Connection, Executor};
use tokio::sync::Notify;

const SEEDS: [u64; 3] = [1, 7, 2014];

type Victim = dropwatch_testkit::VictimKey;

fn generated(seed: u64) -> Generated {
    generate(&GenerateOptions {
        seed,
        drop_base: "http://127.0.0.1:18080".into(),
    })
}

fn expected_victims(g: &Generated) -> Vec<Victim> {
    g.truth.victim_keys()
}

/// A fresh store that knows the generated registry.
async fn fresh_store(g: &Generated) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    for inst in &g.registry.institutions {
        store.upsert_institution(inst).await.unwrap();
    }
    (dir, store)
}

/// A monitor as `dropwatch monitor run` builds it, with a read limit of `max_body_bytes`.
async fn monitor(store: &Store, max_body_bytes: usize) -> Monitor {
    let index = InstitutionIndex::new(store.list_institutions().await.unwrap());
    let analyzer = Arc::new(RecordAnalyzer::new(index, SecretKey::from_bytes([11; 32])));
    let config = MonitorConfig {
        allow_private: true,
        max_body_bytes,
        panel_db: PanelDbLimits {
            max_rows: 16,
            ..PanelDbLimits::default()
        },
        ..MonitorConfig::default()
    };
    Monitor::new(store.clone(), analyzer, config, Arc::new(Notify::new())).unwrap()
}

async fn source(store: &Store, id: i64) -> MonitorSource {
    store
        .monitor_source(id)
        .await
        .unwrap()
        .expect("the source exists")
}

/// Polls a source until it has nothing new (a snapshot format: once), as the scheduler would.
async fn drain(m: &Monitor, store: &Store, id: i64, snapshot: bool) -> Vec<PollOutcome> {
    let mut outs = Vec::new();
    loop {
        let s = source(store, id).await;
        let out = m
            .poll(&s)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", s.url));
        let done = snapshot || out.lines == 0;
        outs.push(out);
        if done {
            return outs;
        }
        assert!(outs.len() < 10_000, "{} never ran dry", s.url);
    }
}

/// Checks the store against the ground truth, and the bad records counted against the
/// malformed records written.
async fn assert_truth(
    store: &Store,
    g: &Generated,
    outs: &[PollOutcome],
    bad_expected: usize,
    what: &str,
) {
    let found = dropwatch_testkit::fixtures::stored_victim_keys(store).await;
    assert_eq!(found, expected_victims(g), "{what}: victims");
    let stats = store.stats().await.unwrap();
    assert_eq!(
        stats.records as usize, g.truth.distinct_reports,
        "{what}: every distinct report once"
    );
    let bad: usize = outs.iter().map(|o| o.bad_lines.len()).sum();
    assert_eq!(bad, bad_expected, "{what}: bad records counted");
    for s in store.list_monitor_sources().await.unwrap() {
        assert_eq!(s.last_error, None, "{what}: {}", s.url);
    }
}

/// Read limit: small for the append-only formats, so records straddle polls; a snapshot must
/// fit whole.
fn read_limit(format: DropFormat) -> usize {
    match format {
        DropFormat::JsonArray => 4 << 20,
        _ => 3000,
    }
}

#[tokio::test]
async fn every_format_from_files_gives_the_ground_truth() {
    for seed in SEEDS {
        let g = generated(seed);
        let dir = tempfile::tempdir().unwrap();
        let files = formats::write_drop_formats(&g, dir.path()).unwrap();
        for format in DropFormat::ALL {
            let (data, store) = fresh_store(&g).await;
            let m = monitor(&store, read_limit(format)).await;
            let mut outs = Vec::new();
            for f in files.iter().filter(|f| f.format == format) {
                let path = f.file.display().to_string();
                let id = store
                    .add_monitor_source(None, format.source_kind(false), &path)
                    .await
                    .unwrap();
                outs.extend(drain(&m, &store, id, format == DropFormat::JsonArray).await);
                // An append-only source's cursor ends at the end of the file.
                if format != DropFormat::JsonArray {
                    let cursor = dropwatch_monitor::ByteCursor::parse(
                        source(&store, id).await.cursor.as_deref(),
                    );
                    assert_eq!(cursor.offset, std::fs::metadata(&f.file).unwrap().len());
                }
            }
            let what = format!("seed {seed}, file, {format:?}");
            assert_truth(&store, &g, &outs, g.truth.malformed_lines, &what).await;
            store.close().await;
            // `dropwatch monitor list` shows each drop's one malformed record.
            let list = monitor_list(data.path());
            assert_eq!(list.lines().count(), g.drops.len(), "{list}");
            for line in list.lines() {
                assert!(line.contains(" bad=1 "), "{what}: {line}");
                assert!(line.contains("(last bad record at "), "{what}: {line}");
            }
        }
    }
}

/// Raw form-grab text (the contexts alone, as a drop script dumps them, ended by a separator
/// line): the same victims as the ground truth. Records may be fewer than the truth's distinct
/// reports, since raw text carries no bot id: identical grabs of two bots are one record.
#[tokio::test]
async fn raw_form_grab_text_gives_the_ground_truth_victims() {
    for seed in SEEDS {
        let g = generated(seed);
        let dir = tempfile::tempdir().unwrap();
        let (_data, store) = fresh_store(&g).await;
        let m = monitor(&store, 3000).await;
        let mut outs = Vec::new();
        for (n, drop) in g.drops.iter().enumerate() {
            let mut text = String::new();
            for r in formats::drop_reports(drop) {
                text.push_str(r.context.trim_end_matches('\n'));
                text.push_str("\n\n");
            }
            text.push_str(&format!("{}\n", "=".repeat(40)));
            let path = dir.path().join(format!("grabs-{n}.txt"));
            std::fs::write(&path, &text).unwrap();
            let id = store
                .add_monitor_source(
                    None,
                    dropwatch_monitor::KIND_FILE_GRABS_TXT,
                    &path.display().to_string(),
                )
                .await
                .unwrap();
            outs.extend(drain(&m, &store, id, false).await);
            let cursor =
                dropwatch_monitor::ByteCursor::parse(source(&store, id).await.cursor.as_deref());
            assert_eq!(
                cursor.offset,
                text.len() as u64,
                "seed {seed}: read to the end"
            );
        }
        let found = dropwatch_testkit::fixtures::stored_victim_keys(&store).await;
        assert_eq!(found, expected_victims(&g), "seed {seed}: victims");
        let records = store.stats().await.unwrap().records as usize;
        assert!(records > 0 && records <= g.truth.distinct_reports);
        let bad: usize = outs.iter().map(|o| o.bad_lines.len()).sum();
        assert_eq!(bad, 0, "seed {seed}: only grabs were written");
        store.close().await;
    }
}

/// The output of `dropwatch monitor list` on a data directory.
fn monitor_list(data: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dropwatch"))
        .arg("--data-dir")
        .arg(data)
        .args(["monitor", "list"])
        .env_remove("DROPWATCH_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A loopback drop host serving fixed bodies by path, honouring `Range: bytes=N-`.
async fn serve(bodies: HashMap<String, Vec<u8>>) -> (String, tokio::task::JoinHandle<()>) {
    async fn handle(
        State(bodies): State<Arc<HashMap<String, Vec<u8>>>>,
        uri: Uri,
        headers: HeaderMap,
    ) -> Response {
        let Some(body) = bodies.get(uri.path()) else {
            return Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Body::empty())
                .unwrap();
        };
        let start = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.strip_suffix('-'))
            .and_then(|v| v.parse::<usize>().ok());
        match start {
            None => Response::new(Body::from(body.clone())),
            Some(n) if n >= body.len() => Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .body(Body::empty())
                .unwrap(),
            Some(n) => Response::builder()
                .status(StatusCode::PARTIAL_CONTENT)
                .header(
                    header::CONTENT_RANGE,
                    format!("bytes {n}-{}/{}", body.len() - 1, body.len()),
                )
                .body(Body::from(body[n..].to_vec()))
                .unwrap(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(Arc::new(bodies));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), task)
}

#[tokio::test]
async fn every_format_over_http_gives_the_ground_truth() {
    for seed in SEEDS {
        let g = generated(seed);
        let mut bodies = HashMap::new();
        for drop in &g.drops {
            for format in DropFormat::ALL {
                let path = format!("{}.{}", drop.path, format.extension());
                bodies.insert(path, formats::encode(format, drop).unwrap());
            }
        }
        let (base, server) = serve(bodies).await;
        for format in DropFormat::ALL {
            let (_data, store) = fresh_store(&g).await;
            let m = monitor(&store, read_limit(format)).await;
            let mut outs = Vec::new();
            for drop in &g.drops {
                let url = format!("{base}{}.{}", drop.path, format.extension());
                let id = store
                    .add_monitor_source(None, format.source_kind(true), &url)
                    .await
                    .unwrap();
                let polled = drain(&m, &store, id, format == DropFormat::JsonArray).await;
                if format != DropFormat::JsonArray {
                    assert!(polled.len() > 2, "{url}: read in several ranged polls");
                }
                outs.extend(polled);
            }
            let what = format!("seed {seed}, HTTP, {format:?}");
            assert_truth(&store, &g, &outs, g.truth.malformed_lines, &what).await;
            store.close().await;
        }
        server.abort();
    }
}

use dropwatch_testkit::panel_schema::{
    mysql_admin_url as admin_url, ZEUS_REPORTS_TEMPLATE as ZEUS_TEMPLATE,
};

/// The panel's day table for a report time: `botnet_reports_YYMMDD` (UTC).
fn day_table(rtime: i64) -> String {
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = rtime.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("botnet_reports_{:02}{m:02}{d:02}", y % 100)
}

#[test]
fn day_tables_are_utc_days() {
    assert_eq!(day_table(1_385_856_000), "botnet_reports_131201");
    assert_eq!(day_table(1_385_856_000 + 86_399), "botnet_reports_131201");
    assert_eq!(day_table(1_385_856_000 - 1), "botnet_reports_131130");
    assert_eq!(day_table(951_782_400), "botnet_reports_000229");
}

/// Inserts one report as the gate does. Names are qualified with the database: the connection
/// caches prepared statements by their text, and an unqualified one would still point into
/// the previous seed's (dropped) database.
async fn insert_report(admin: &mut MySqlConnection, db: &str, r: &PanelReport) {
    let table = format!("`{db}`.`{}`", day_table(r.rtime));
    admin
        .execute(format!("CREATE TABLE IF NOT EXISTS {table} LIKE `{db}`.botnet_reports").as_str())
        .await
        .unwrap();
    sqlx::query(&format!(
        "INSERT INTO {table} (bot_id, botnet, bot_version, path_source, path_dest, os_version,
           process_name, process_user, type, context, ipv4, country, rtime)
         VALUES (?, ?, 33556745, ?, '', '', 'iexplore.exe', '', ?, ?, ?, ?, ?)"
    ))
    .bind(&r.bot_id)
    .bind(&r.botnet)
    .bind(&r.path_source)
    .bind(r.report_type)
    .bind(&r.context)
    .bind(&r.ipv4)
    .bind(&r.country)
    .bind(r.rtime)
    .execute(&mut *admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_mariadb_panel_gives_the_ground_truth() {
    let admin_url = admin_url();
    let mut admin = match MySqlConnection::connect(&admin_url).await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("MariaDB is required in CI but {admin_url} is unreachable: {e}");
            }
            eprintln!(
                "SKIPPED: a_mariadb_panel_gives_the_ground_truth ({admin_url} unreachable: {e})"
            );
            return;
        }
    };
    for seed in SEEDS {
        let g = generated(seed);
        let db = format!(
            "dropwatch_truth_test_{}_{seed}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        admin
            .execute(format!("CREATE DATABASE `{db}` CHARACTER SET utf8mb4").as_str())
            .await
            .unwrap();
        admin.execute(format!("USE `{db}`").as_str()).await.unwrap();
        admin.execute("SET time_zone = '+00:00'").await.unwrap();
        admin.execute(ZEUS_TEMPLATE).await.unwrap();
        // One panel holds every botnet's reports; rows arrive drop by drop, in order.
        for drop in &g.drops {
            for r in formats::drop_reports(drop) {
                insert_report(&mut admin, &db, &r).await;
            }
        }
        let (_data, store) = fresh_store(&g).await;
        let m = monitor(&store, 1 << 20).await;
        let url = format!("{}/{db}", admin_url.trim_end_matches('/'));
        let id = store
            .add_monitor_source(None, KIND_PANEL_MYSQL, &url)
            .await
            .unwrap();
        let outs = drain(&m, &store, id, false).await;
        assert!(outs.len() > 2, "read in several polls of at most 16 rows");
        let rows: u64 = outs.iter().map(|o| o.lines).sum();
        let valid = g.truth.report_lines - g.truth.malformed_lines;
        assert_eq!(rows as usize, valid, "seed {seed}: every row read once");
        let what = format!("seed {seed}, MariaDB panel");
        assert_truth(&store, &g, &outs, 0, &what).await;
        store.close().await;
        admin
            .execute(format!("DROP DATABASE IF EXISTS `{db}`").as_str())
            .await
            .unwrap();
    }
    let _ = admin.close().await;
}
