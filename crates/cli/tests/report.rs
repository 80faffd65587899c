//! `dropwatch report` on a store whose timings are known: records fetched, webhooks delivered
//! and alerts acknowledged or frozen at chosen times, then the figures checked.
//!
//! Detection and delivery times are set exactly (the batch's `fetched_at`, the attempt's `at`).
//! Acknowledgements are stamped by the store with the clock, so the test brackets them
//! (`acks_from..=acks_to`) and checks that each figure lies within that bracket.

use std::process::Command;
use std::time::Duration;

use dropwatch_model::{AnalyzedRecord, MaskedSecret, SecretKind, Urgency};
use dropwatch_store::{now_micros, AckStatus, Attempt, AttemptNext, IngestBatch, Store};
use dropwatch_testkit::fixtures::bank;
use serde_json::Value;

const SEC: i64 = 1_000_000;
const MS: i64 = 1_000;

/// Ingests one new victim of `inst` whose record was fetched at `fetched_at`; returns its alert.
async fn alert_fetched_at(store: &Store, inst: &str, n: usize, fetched_at: i64) -> i64 {
    let fp = format!("{inst}-{n}");
    let record = AnalyzedRecord {
        fingerprint: fp.clone(),
        external_id: None,
        bot_id: "BOT".into(),
        botnet: "net".into(),
        url: format!("https://{inst}.example/login"),
        institution_id: Some(inst.into()),
        account: Some(format!("{n:06}")),
        account_norm: Some(format!("{n:06}")),
        secrets: vec![MaskedSecret {
            kind: SecretKind::Password,
            field: "pass".into(),
            length: 8,
            hmac: fp,
        }],
        other_fields: vec![],
        urgency: Urgency::High,
        mule_accounts: vec![],
    };
    let out = store
        .ingest(&IngestBatch {
            fetched_at,
            records: vec![record],
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(out.alerts, 1);
    let alerts = store.list_alerts(None, 1).await.unwrap();
    alerts[0].id
}

async fn attempt(store: &Store, alert: i64, at: i64, next: AttemptNext) {
    let ok = next == AttemptNext::Delivered;
    store
        .record_attempt(
            alert,
            &Attempt {
                at,
                http_status: Some(if ok { 204 } else { 503 }),
                error: (!ok).then(|| "HTTP 503".to_string()),
                duration_us: 1_000,
                next,
            },
        )
        .await
        .unwrap();
}

fn us(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("expected microseconds, got {v}"))
}

/// Asserts that a step's count and exact percentiles are as expected.
fn assert_exact(step: &Value, count: u64, p50: i64, p90: i64, p99: i64, max: i64) {
    assert_eq!(step["count"], count, "{step}");
    assert_eq!(
        [
            &step["p50_us"],
            &step["p90_us"],
            &step["p99_us"],
            &step["max_us"]
        ]
        .map(us),
        [p50, p90, p99, max],
        "{step}"
    );
}

/// Asserts that a figure is `base` plus some time within the acknowledgement bracket.
fn assert_within(v: &Value, lo: i64, hi: i64) {
    let v = us(v);
    assert!((lo..=hi).contains(&v), "{v} not in {lo}..={hi}");
}

fn dropwatch(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dropwatch"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("DROPWATCH_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dropwatch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn report_gives_counts_and_percentiles_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    for id in ["a", "b"] {
        store.upsert_institution(&bank(id)).await.unwrap();
    }
    let t0 = now_micros();

    // Bank a: ten alerts, fetched (i+1) min before t0, delivered (i+1) s after their fetch.
    let mut a = Vec::new();
    for i in 0..10i64 {
        let fetched = t0 - (i + 1) * 60 * SEC;
        let id = alert_fetched_at(&store, "a", i as usize, fetched).await;
        attempt(&store, id, fetched + (i + 1) * SEC, AttemptNext::Delivered).await;
        a.push(id);
    }
    // Bank b: delivered after 250 ms and 750 ms (one failed attempt first), one dead, one
    // pending.
    let b_fetched = t0 - 30 * SEC;
    for (n, delay) in [(0, 250 * MS), (1, 750 * MS)] {
        let id = alert_fetched_at(&store, "b", n, b_fetched).await;
        if n == 1 {
            attempt(&store, id, b_fetched + 100 * MS, AttemptNext::RetryAt(0)).await;
        }
        attempt(&store, id, b_fetched + delay, AttemptNext::Delivered).await;
    }
    let dead = alert_fetched_at(&store, "b", 2, b_fetched).await;
    attempt(&store, dead, b_fetched + SEC, AttemptNext::Dead).await;
    alert_fetched_at(&store, "b", 3, b_fetched).await;

    // Bank a answers: alerts 0..=5 acknowledged; then, at least 200 ms later, alerts 0..=2
    // frozen, and alert 9 frozen without an acknowledgement first.
    let acks_from = now_micros();
    for &id in &a[0..6] {
        store
            .ack_alert("token:1:a", "a", id, AckStatus::Acknowledged, "seen")
            .await
            .unwrap()
            .unwrap();
    }
    let acks_done = now_micros();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let freezes_from = now_micros();
    for &id in [&a[0..3], &a[9..10]].concat().iter() {
        store
            .ack_alert("token:1:a", "a", id, AckStatus::Frozen, "frozen")
            .await
            .unwrap()
            .unwrap();
    }
    // Bank a cannot acknowledge bank b's alerts: they stay unacknowledged.
    assert!(store
        .ack_alert("token:1:a", "a", dead, AckStatus::Frozen, "")
        .await
        .unwrap()
        .is_none());
    let freezes_to = now_micros();
    store.close().await;

    let report: Value =
        serde_json::from_str(&dropwatch(dir.path(), &["report", "--json"])).unwrap();
    let (all, ra, rb) = (
        &report["overall"],
        &report["institutions"]["a"],
        &report["institutions"]["b"],
    );
    let counts = |t: &Value| {
        [
            "alerts",
            "delivered",
            "acknowledged",
            "frozen",
            "dead",
            "pending",
        ]
        .map(|k| t[k].clone())
    };
    assert_eq!(counts(all), [14, 12, 7, 4, 1, 1].map(Value::from));
    assert_eq!(counts(ra), [10, 10, 7, 4, 0, 0].map(Value::from));
    assert_eq!(counts(rb), [4, 2, 0, 0, 1, 1].map(Value::from));
    assert_eq!(
        report["institutions"].as_object().unwrap().len(),
        2,
        "{report}"
    );

    // Detected → delivered is exact. a: 1..=10 s. b: 250 ms, 750 ms. All twelve:
    // 0.25, 0.75, 1, ..., 10 s, so p50 is the 6th (4 s), p90 the 11th (9 s), p99 the 12th.
    assert_exact(
        &ra["detected_to_delivered"],
        10,
        5 * SEC,
        9 * SEC,
        10 * SEC,
        10 * SEC,
    );
    assert_exact(
        &rb["detected_to_delivered"],
        2,
        250 * MS,
        750 * MS,
        750 * MS,
        750 * MS,
    );
    assert_exact(
        &all["detected_to_delivered"],
        12,
        4 * SEC,
        9 * SEC,
        10 * SEC,
        10 * SEC,
    );

    // Delivered → acknowledged, for a's alerts 0..=5 and 9 (whose first answer was the freeze):
    // alert i was delivered (i+1)·59 s before t0, so the step is that plus (ack time − t0).
    // Sorted: 59, 118, 177, 236, 295, 354, 590 s; p50 is the 4th, p90 and p99 the 7th.
    let step = &all["delivered_to_acknowledged"];
    assert_eq!(step["count"], 7);
    let (lo, hi) = (acks_from - t0, freezes_to - t0);
    assert_within(
        &step["p50_us"],
        236 * SEC + lo,
        236 * SEC + (acks_done - t0),
    );
    assert_within(
        &step["p90_us"],
        590 * SEC + (freezes_from - t0),
        590 * SEC + hi,
    );
    assert_within(
        &step["p99_us"],
        590 * SEC + (freezes_from - t0),
        590 * SEC + hi,
    );
    assert_eq!(step["max_us"], step["p99_us"]);
    assert_eq!(ra["delivered_to_acknowledged"], *step);
    assert_eq!(rb["delivered_to_acknowledged"]["count"], 0);
    assert_eq!(rb["delivered_to_acknowledged"]["p50_us"], Value::Null);

    // Acknowledged → frozen: 0 for alert 9, at least the 200 ms pause for alerts 0..=2.
    let step = &all["acknowledged_to_frozen"];
    assert_eq!(step["count"], 4);
    assert_within(
        &step["p50_us"],
        freezes_from - acks_done,
        freezes_to - acks_from,
    );
    assert_within(
        &step["max_us"],
        freezes_from - acks_done,
        freezes_to - acks_from,
    );
    assert!(us(&step["p50_us"]) >= 200 * MS);

    // Detected → frozen for alerts 0, 1, 2 and 9: 60, 120, 180, 600 s plus (freeze − t0).
    let step = &all["detected_to_frozen"];
    assert_eq!(step["count"], 4);
    let (flo, fhi) = (freezes_from - t0, freezes_to - t0);
    assert_within(&step["p50_us"], 120 * SEC + flo, 120 * SEC + fhi);
    assert_within(&step["p90_us"], 600 * SEC + flo, 600 * SEC + fhi);
    assert_within(&step["max_us"], 600 * SEC + flo, 600 * SEC + fhi);

    // The text report carries the same figures, overall and per institution.
    let text = dropwatch(dir.path(), &["report"]);
    assert!(
        text.contains(
            "all institutions: 14 alerts, 12 delivered, 7 acknowledged, 4 frozen, 1 dead, 1 pending"
        ),
        "{text}"
    );
    assert!(text.contains("\na: 10 alerts, 10 delivered"), "{text}");
    assert!(text.contains("\nb: 4 alerts, 2 delivered"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("detected -> delivered"))
        .unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        &cols[3..],
        ["12", "4000.0", "ms", "9000.0", "ms", "10.0", "s", "10.0", "s"]
    );

    // `alerts list` shows the outbox by status; a dead alert can be queued again.
    let listed: Value = serde_json::from_str(&dropwatch(
        dir.path(),
        &["alerts", "list", "--status", "dead", "--json"],
    ))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], dead);
    assert_eq!(listed[0]["last_error"], "HTTP 503");
    let out = dropwatch(dir.path(), &["alerts", "redeliver", &dead.to_string()]);
    assert!(out.contains("queued for re-delivery"), "{out}");
    let audit = dropwatch(dir.path(), &["audit", "--json"]);
    assert!(
        audit.contains(&format!("alert={dead} previous=dead")),
        "{audit}"
    );
    let pending: Value = serde_json::from_str(&dropwatch(
        dir.path(),
        &["alerts", "list", "--status", "pending", "--json"],
    ))
    .unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 2);
    assert!(pending
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == dead && p["attempts"] == 1));
}
