//! Benchmark: from a record's fetch to its webhook accepted, while the monitor ingests a steady
//! stream of drop records.
//!
//! ```text
//! cargo run --release -p dropwatch-cli --example fetch_to_webhook -- \
//!     [--seconds 20] [--rate 10000] [--new-victim-every 20] [--database-url postgres://...]
//! ```
//!
//! On loopback: a drop that appends synthetic panel reports (JSON lines, the generator's
//! institutions and record layout) at `--rate` records per second and serves them with
//! `Range`; the real `Monitor` polling it every 20 ms; the real `Deliverer`; the testkit's
//! verifying receiver. One record in `--new-victim-every` is a new victim (so an alert); the
//! others are further records of known victims (stored, deduplicated into the victim, no alert).
//!
//! Per alert, the latency is the receiver's acceptance time minus the `record_fetched_at` the
//! store keeps for the alert (when the monitor's poll returned the record). The store is SQLite
//! in a temporary directory unless `--database-url` is given: give it a scratch database
//! (`createdb dropwatch_bench`), since the example creates its tables there and leaves them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use dropwatch_deliver::{Deliverer, DeliveryConfig};
use dropwatch_masks::InstitutionIndex;
use dropwatch_model::{Institution, PanelReport};
use dropwatch_monitor::{Monitor, MonitorConfig, MonitorTotals, KIND_HTTP_JSONL};
use dropwatch_records::{RecordAnalyzer, SecretKey};
use dropwatch_store::{now_micros, Store};
use dropwatch_testkit::{generate, receiver, GenerateOptions};
use tokio::sync::{watch, Notify};

struct Options {
    seconds: u64,
    rate: u64,
    new_victim_every: u64,
    database_url: Option<String>,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        seconds: 20,
        rate: 10_000,
        new_victim_every: 20,
        database_url: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => o.seconds = value()?.parse()?,
            "--rate" => o.rate = value()?.parse()?,
            "--new-victim-every" => o.new_victim_every = value()?.parse::<u64>()?.max(1),
            "--database-url" => o.database_url = Some(value()?),
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    Ok(o)
}

/// The drop: an append-only JSON-lines file in memory, served with `Range: bytes=N-`.
#[derive(Default)]
struct DropFile {
    body: RwLock<Vec<u8>>,
}

async fn serve_drop(State(drop): State<Arc<DropFile>>, headers: HeaderMap) -> Response {
    let start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let (status, chunk, len) = {
        let body = drop.body.read().unwrap_or_else(|e| e.into_inner());
        let len = body.len();
        if start >= len && start > 0 {
            (StatusCode::RANGE_NOT_SATISFIABLE, Vec::new(), len)
        } else {
            let status = if start > 0 {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            };
            (status, body[start.min(len)..].to_vec(), len)
        }
    };
    let mut res = Response::builder().status(status);
    if status == StatusCode::PARTIAL_CONTENT {
        res = res.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", len - 1),
        );
    }
    res.body(Body::from(chunk)).unwrap_or_default()
}

/// Synthesises the `n`th panel report: victim `n / every` of one of the institutions, with a
/// password that differs on every record (so every record is distinct).
fn report_line(n: u64, every: u64, institutions: &[Institution]) -> String {
    let victim = n / every;
    let inst = &institutions[(victim % institutions.len() as u64) as usize];
    let domain = inst.domains.first().map_or("bank.example", String::as_str);
    let field = inst
        .account_fields
        .first()
        .map_or("account", String::as_str);
    let url = format!("https://ib.{domain}/login.do");
    let account = format!("{:03}-{:07}", victim % 997, victim);
    // A per-record value that looks random (splitmix64), never a real secret.
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let password = format!("Pw{:012x}", z >> 16);
    let report = PanelReport {
        id: n + 1,
        bot_id: format!("PC-BENCH_{:08X}", victim),
        botnet: "bench".into(),
        report_type: 12,
        path_source: url.clone(),
        context: format!(
            "{url}\nReferer: https://ib.{domain}/\nUser input: {account}\t{password}\nPOST data:\n\n{field}={account}\npassword={password}\n"
        ),
        ipv4: "198.51.100.7".into(),
        country: "JP".into(),
        rtime: now_micros() / 1_000_000,
    };
    serde_json::to_string(&report).unwrap_or_default()
}

fn pct(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let opts = options()?;
    let generated = generate(&GenerateOptions {
        seed: 2014,
        drop_base: "http://127.0.0.1:1".into(),
    });
    let institutions: Vec<Institution> = generated.registry.institutions.clone();

    // Store.
    let tmp = tempfile::tempdir()?;
    let store = match &opts.database_url {
        Some(url) => {
            Store::connect(url)
                .await?
                .with_seal_key(dropwatch_store::seal_key_file(tmp.path())?)
                .await?
        }
        None => Store::open_data_dir(tmp.path()).await?,
    };
    let backend = format!("{:?}", store.backend());
    for inst in &institutions {
        store.upsert_institution(inst).await?;
    }

    // Receiver, one secret per institution.
    let secrets: HashMap<String, String> = institutions
        .iter()
        .map(|i| (i.id.clone(), hex::encode(rand::random::<[u8; 32]>())))
        .collect();
    let recv = receiver::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        secrets.clone(),
    )?;
    for (id, secret) in &secrets {
        store.set_webhook(id, &recv.url_for(id), secret).await?;
    }

    // The drop, filling at a steady rate.
    let drop = Arc::new(DropFile::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let drop_url = format!("http://{}/bench/gate.php", listener.local_addr()?);
    let app = Router::new()
        .route("/bench/gate.php", get(serve_drop))
        .with_state(drop.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    store
        .add_monitor_source(None, KIND_HTTP_JSONL, &drop_url)
        .await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let run_for = Duration::from_secs(opts.seconds);
    let started = Instant::now();
    let appender = tokio::spawn({
        let drop = drop.clone();
        let institutions = institutions.clone();
        let (rate, every) = (opts.rate, opts.new_victim_every);
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let mut written = 0u64;
            while started.elapsed() < run_for {
                tick.tick().await;
                let due = (started.elapsed().min(run_for).as_secs_f64() * rate as f64) as u64;
                let mut chunk = String::new();
                for n in written..due {
                    chunk.push_str(&report_line(n, every, &institutions));
                    chunk.push('\n');
                }
                written = due;
                drop.body
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(chunk.as_bytes());
            }
            written
        }
    });

    // The real chain.
    let index = InstitutionIndex::new(store.list_institutions().await?);
    let analyzer = Arc::new(RecordAnalyzer::new(
        index,
        SecretKey::from_bytes(rand::random()),
    ));
    let wake = Arc::new(Notify::new());
    let monitor = Monitor::new(
        store.clone(),
        analyzer,
        MonitorConfig {
            poll_interval: Duration::from_millis(20),
            jitter: 0.0,
            allow_private: true,
            ..MonitorConfig::default()
        },
        wake.clone(),
    )?;
    let deliverer = Deliverer::new(
        store.clone(),
        DeliveryConfig {
            base_backoff: Duration::from_millis(100),
            idle_poll: Duration::from_millis(50),
            ..DeliveryConfig::default()
        },
    )?;
    let monitor_task = tokio::spawn({
        let (monitor, rx) = (monitor.clone(), stop_rx.clone());
        async move { monitor.run(rx).await }
    });
    let deliver_task = tokio::spawn({
        let (wake, rx) = (wake.clone(), stop_rx.clone());
        async move { deliverer.run(wake, rx).await }
    });

    // Progress once a second: how far ingestion is behind the drop.
    let mut max_backlog = 0u64;
    let totals = monitor.totals();
    while started.elapsed() < run_for {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let appended = (started.elapsed().min(run_for).as_secs_f64() * opts.rate as f64) as u64;
        let read = MonitorTotals::get(&totals.lines);
        max_backlog = max_backlog.max(appended.saturating_sub(read));
        eprintln!(
            "{:>4.1} s: appended {appended:>7}, read {read:>7}, alerts {:>6}, webhooks {:>6}",
            started.elapsed().as_secs_f64(),
            MonitorTotals::get(&totals.alerts),
            recv.received().len()
        );
    }
    let written = appender.await?;
    let ingest_secs = started.elapsed().as_secs_f64();
    let read_at_end = MonitorTotals::get(&totals.lines);

    // Drain: everything appended is read and every alert delivered (bounded).
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = store.stats().await?;
        if MonitorTotals::get(&totals.lines) >= written && stats.alerts_pending == 0 {
            break;
        }
        if Instant::now() > drain_deadline {
            eprintln!("warning: not drained after 60 s");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained_after = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let _ = tokio::join!(monitor_task, deliver_task);

    // Per alert: receiver acceptance − record fetch.
    let fetched: HashMap<i64, i64> = store
        .list_alerts(None, i64::MAX)
        .await?
        .into_iter()
        .map(|a| (a.id, a.record_fetched_at))
        .collect();
    let received = recv.received();
    recv.stop().await;
    let mut first_accept: HashMap<i64, i64> = HashMap::new();
    let mut invalid = 0;
    for r in &received {
        if !r.valid {
            invalid += 1;
            continue;
        }
        let payload: dropwatch_model::AlertPayload = serde_json::from_str(&r.body)?;
        let at = first_accept
            .entry(payload.alert_id)
            .or_insert(r.received_at);
        *at = (*at).min(r.received_at);
    }
    let mut lat: Vec<i64> = first_accept
        .iter()
        .filter_map(|(id, at)| fetched.get(id).map(|f| at - f))
        .collect();
    lat.sort_unstable();
    let stats = store.stats().await?;

    println!(
        "fetch_to_webhook ({backend}, {} s at {} records/s, one new victim per {} records)",
        opts.seconds, opts.rate, opts.new_victim_every
    );
    println!(
        "  records appended       {written} ({:.0}/s)",
        written as f64 / ingest_secs
    );
    println!(
        "  records ingested       {read_at_end} during the run ({:.0}/s), all {} after {:.1} s; max backlog {max_backlog} lines",
        read_at_end as f64 / ingest_secs,
        MonitorTotals::get(&totals.lines),
        drained_after
    );
    println!(
        "  records stored         {} new, {} duplicates, {} unattributed, {} malformed",
        MonitorTotals::get(&totals.new_records),
        MonitorTotals::get(&totals.duplicate_records),
        MonitorTotals::get(&totals.unattributed),
        MonitorTotals::get(&totals.bad_lines)
    );
    println!(
        "  alerts                 {} ({} delivered, {} pending, {} dead); {} webhooks received, {invalid} invalid",
        stats.alerts, stats.alerts_delivered, stats.alerts_pending, stats.alerts_dead, received.len()
    );
    println!(
        "  fetch -> webhook       p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} alerts",
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        lat.last().map_or(f64::NAN, |&m| m as f64 / 1000.0),
        lat.len()
    );
    store.close().await;
    Ok(())
}
