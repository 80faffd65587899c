//! End-to-end ingest rate into SQLite and PostgreSQL, and the latency from a fetch completing
//! to its alert rows committed.
//!
//! The data: the testkit generator's drops for many seeds joined into one JSON-lines drop of
//! about 20k records (several thousand victims). It is fed to the monitor the way polls of a
//! live drop deliver it: chunks of `CHUNK` bytes, each taking the path a poll takes after its
//! read completes (`Monitor::ingest_formatted`: parse, analyse, one store transaction with
//! the records, victims, alerts and cursor). The fetch time is taken when the chunk is in
//! hand; the latency of each alert is the time from then to its transaction's commit.
//!
//! ```text
//! cargo run --release -p dropwatch-monitor --example ingest_rate
//! ```
//! PostgreSQL is reached at `DROPWATCH_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); a temporary database is created and
//! dropped. Without a server, only SQLite is measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dropwatch_masks::InstitutionIndex;
use dropwatch_model::Registry;
use dropwatch_monitor::{ByteCursor, DropFormat, Monitor, MonitorConfig};
use dropwatch_records::{RecordAnalyzer, SecretKey};
use dropwatch_store::{now_micros, Store};
use dropwatch_testkit::{generate, GenerateOptions};
use sqlx::{Connection, Executor};
use tokio::sync::Notify;

const TARGET_LINES: usize = 20_000;
const CHUNK: usize = 64 << 10;

fn drop_data() -> (Vec<u8>, usize, Registry) {
    let mut body = String::new();
    let mut lines = 0;
    let mut registry = None;
    let mut seed = 0;
    while lines < TARGET_LINES {
        let g = generate(&GenerateOptions {
            seed: 50_000 + seed,
            drop_base: "http://127.0.0.1:18080".into(),
        });
        seed += 1;
        registry.get_or_insert(g.registry);
        for d in g.drops {
            for l in d.lines {
                body.push_str(&l);
                body.push('\n');
                lines += 1;
            }
        }
    }
    (body.into_bytes(), lines, registry.unwrap_or_default())
}

struct Run {
    lines: u64,
    records: u64,
    victims: u64,
    alerts: u64,
    elapsed: Duration,
    latencies_us: Vec<i64>,
}

async fn run(store: &Store, registry: &Registry, data: &[u8]) -> Run {
    for inst in &registry.institutions {
        store.upsert_institution(inst).await.expect("institution");
    }
    let index = InstitutionIndex::new(store.list_institutions().await.expect("institutions"));
    let analyzer = Arc::new(RecordAnalyzer::new(index, SecretKey::from_bytes([8; 32])));
    let monitor = Monitor::new(
        store.clone(),
        analyzer,
        MonitorConfig::default(),
        Arc::new(Notify::new()),
    )
    .expect("monitor");
    let id = store
        .add_monitor_source(
            None,
            dropwatch_monitor::KIND_FILE_JSONL,
            "bench://drop.jsonl",
        )
        .await
        .expect("source");
    let mut source = store
        .list_monitor_sources()
        .await
        .expect("sources")
        .into_iter()
        .find(|s| s.id == id)
        .expect("source");
    let mut cursor = ByteCursor::default();
    let (mut lines, mut records, mut victims, mut alerts) = (0, 0, 0, 0);
    let mut latencies_us = Vec::new();
    let started = Instant::now();
    while (cursor.offset as usize) < data.len() {
        let at = cursor.offset as usize;
        let chunk = &data[at..(at + CHUNK).min(data.len())];
        let fetched_at = now_micros();
        let out = monitor
            .ingest_formatted(
                Some(&source),
                DropFormat::JsonLines,
                &cursor,
                chunk,
                chunk.len() == CHUNK,
                fetched_at,
            )
            .await
            .expect("ingest");
        let committed = now_micros();
        latencies_us.extend(std::iter::repeat_n(
            committed - fetched_at,
            out.ingest.alerts as usize,
        ));
        lines += out.lines;
        records += out.ingest.new_records;
        victims += out.ingest.new_victims;
        alerts += out.ingest.alerts;
        source.cursor = store
            .list_monitor_sources()
            .await
            .expect("sources")
            .into_iter()
            .find(|s| s.id == id)
            .and_then(|s| s.cursor);
        let next = ByteCursor::parse(source.cursor.as_deref());
        assert!(next.offset > cursor.offset, "no progress");
        cursor = next;
    }
    Run {
        lines,
        records,
        victims,
        alerts,
        elapsed: started.elapsed(),
        latencies_us,
    }
}

fn report(backend: &str, r: &mut Run) {
    r.latencies_us.sort_unstable();
    let pct = |p: f64| {
        let i = ((r.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        r.latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!(
        "{backend:<10} {} lines, {} records, {} victims, {} alerts in {:.2?}: {:.0} records/s ({:.0} lines/s); fetch→alert commit p50 {:.1} ms, p99 {:.1} ms",
        r.lines,
        r.records,
        r.victims,
        r.alerts,
        r.elapsed,
        r.records as f64 / r.elapsed.as_secs_f64(),
        r.lines as f64 / r.elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
    );
}

#[tokio::main]
async fn main() {
    let (data, lines, registry) = drop_data();
    println!(
        "{lines} lines, {} bytes, fed in {} KiB chunks",
        data.len(),
        CHUNK >> 10
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_data_dir(dir.path())
        .await
        .expect("sqlite store");
    let mut r = run(&store, &registry, &data).await;
    store.close().await;
    report("SQLite", &mut r);

    let admin = std::env::var("DROPWATCH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            println!("PostgreSQL skipped: {admin} unreachable: {e}");
            return;
        }
    };
    let name = format!("dropwatch_ingest_rate_{}", std::process::id());
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create database");
    let url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("bad PostgreSQL URL {admin}"),
    };
    let store = Store::connect(&url).await.expect("postgres store");
    let mut r = run(&store, &registry, &data).await;
    store.close().await;
    report("PostgreSQL", &mut r);
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .expect("drop database");
}
