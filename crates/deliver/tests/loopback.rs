//! Delivery over loopback: the real `Deliverer` and store (SQLite, and PostgreSQL when
//! reachable) against the testkit's verifying webhook receiver.
//!
//! PostgreSQL is reached at `DROPWATCH_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) with a fresh database per test. Without a
//! server the PostgreSQL half is skipped with a message, except under `CI=true`, where a missing
//! server fails.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use dropwatch_deliver::{Deliverer, DeliveryConfig, IDEMPOTENCY_HEADER, SIGNATURE_HEADER};
use dropwatch_model::{AlertPayload, AnalyzedRecord, MaskedSecret, SecretKind, Urgency};
use dropwatch_store::delivery_ops::Redelivery;
use dropwatch_store::{now_micros, IngestBatch, Store};
use dropwatch_testkit::fixtures::bank;
use dropwatch_testkit::on_every_backend;
use dropwatch_testkit::receiver::{self, Received, ReceiverHandle};
use tokio::sync::{watch, Notify};

// ---- backends ----

// ---- fixtures ----

/// A synthetic analysed record: a new victim of `inst` with a password exposed.
fn record(fp: &str, inst: &str, account: &str) -> AnalyzedRecord {
    AnalyzedRecord {
        fingerprint: fp.into(),
        external_id: None,
        bot_id: "BOT_1".into(),
        botnet: "net".into(),
        url: format!("https://ib.{inst}.example/login"),
        institution_id: Some(inst.into()),
        account: Some(account.into()),
        account_norm: Some(account.replace('-', "")),
        secrets: vec![MaskedSecret {
            kind: SecretKind::Password,
            field: "pass".into(),
            length: 8,
            hmac: format!("hmac-{fp}"),
        }],
        other_fields: vec![],
        urgency: Urgency::from_exposed(&[SecretKind::Password]),
        mule_accounts: vec![],
    }
}

/// Ingests `n` new victims of `inst` (one alert each); returns how many alerts were written.
async fn ingest_victims(store: &Store, inst: &str, tag: &str, n: usize) -> u64 {
    let records = (0..n)
        .map(|i| record(&format!("{inst}-{tag}-{i}"), inst, &format!("{tag}-{i:04}")))
        .collect();
    let out = store
        .ingest(&IngestBatch {
            fetched_at: now_micros(),
            source_server: Some("http://drop.example/gate.php".into()),
            records,
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(out.alerts, n as u64);
    out.alerts
}

/// Short backoffs so that a test sees many attempts within a second.
fn fast_config(max_attempts: u32) -> DeliveryConfig {
    DeliveryConfig {
        max_attempts,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(80),
        request_timeout: Duration::from_secs(2),
        idle_poll: Duration::from_millis(10),
    }
}

/// The deliverer's worker, running until dropped or stopped.
struct Worker {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn start(store: &Store, config: DeliveryConfig) -> Worker {
        let deliverer = Deliverer::new(store.clone(), config).unwrap();
        let wake = Arc::new(Notify::new());
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn({
            let wake = wake.clone();
            async move { deliverer.run(wake, rx).await }
        });
        Worker { wake, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        self.wake.notify_one();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the worker stops")
            .unwrap();
    }
}

/// Polls `cond` until it holds; fails the test after `limit`.
async fn wait_for<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn start_receiver(secrets: &[(&str, &str)]) -> ReceiverHandle {
    let secrets: HashMap<String, String> = secrets
        .iter()
        .map(|(i, s)| (i.to_string(), s.to_string()))
        .collect();
    receiver::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        secrets,
    )
    .unwrap()
}

/// Payload of every alert in the store, by idempotency key.
async fn payloads_by_key(store: &Store) -> BTreeMap<String, AlertPayload> {
    store
        .alerts_since("test", None, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.payload.idempotency_key.clone(), a.payload))
        .collect()
}

async fn count_status(store: &Store, status: &str) -> usize {
    store.list_alerts(Some(status), 10_000).await.unwrap().len()
}

// ---- a receiver that accepts but answers 500 the first time ----

/// Sits in front of the testkit receiver and forwards every webhook. The first time the
/// receiver accepts a given idempotency key, the proxy tells the sender 500 instead: the bank
/// got the alert but the sender cannot know, so it must send it again.
struct LostFirstAnswer {
    upstream: String,
    client: reqwest::Client,
    answered_500: Mutex<HashSet<String>>,
}

async fn lossy_hook(
    State(p): State<Arc<LostFirstAnswer>>,
    Path(institution): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut req = p
        .client
        .post(format!("{}/hook/{institution}", p.upstream))
        .body(body);
    for name in ["content-type", SIGNATURE_HEADER, IDEMPOTENCY_HEADER] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v);
        }
    }
    let status = match req.send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => return StatusCode::BAD_GATEWAY,
    };
    let key = headers
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let accepted = (200..300).contains(&status);
    if accepted && p.answered_500.lock().unwrap().insert(key) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY)
}

async fn start_lossy_proxy(receiver: &ReceiverHandle) -> String {
    let state = Arc::new(LostFirstAnswer {
        upstream: format!("http://{}", receiver.addr),
        client: reqwest::Client::new(),
        answered_500: Mutex::new(HashSet::new()),
    });
    let app = Router::new()
        .route("/hook/{institution}", post(lossy_hook))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn by_key(received: &[Received]) -> BTreeMap<String, Vec<&Received>> {
    let mut m: BTreeMap<String, Vec<&Received>> = BTreeMap::new();
    for r in received {
        m.entry(r.idempotency_key.clone()).or_default().push(r);
    }
    m
}

// ---- the tests ----

on_every_backend!(
    a_receiver_that_is_down_then_returns_gets_every_alert,
    |store: Store| async move {
        // Bank "a" answers through the proxy (each alert's first accepted answer is lost);
        // bank "b" is reached directly.
        let receiver = start_receiver(&[("a", "secret-a"), ("b", "secret-b")]).await;
        let proxy = start_lossy_proxy(&receiver).await;
        for id in ["a", "b"] {
            store.upsert_institution(&bank(id)).await.unwrap();
        }
        store
            .set_webhook("a", &format!("{proxy}/hook/a"), "secret-a")
            .await
            .unwrap();
        store
            .set_webhook("b", &receiver.url_for("b"), "secret-b")
            .await
            .unwrap();

        receiver.set_down(true);
        let mut n = ingest_victims(&store, "a", "early", 8).await;
        n += ingest_victims(&store, "b", "early", 8).await;
        let worker = Worker::start(&store, fast_config(1_000));
        // Every alert is tried, and refused, several times while the receiver is down...
        wait_for(
            "retries while the receiver is down",
            Duration::from_secs(5),
            || async {
                let alerts = store.list_alerts(None, 1_000).await.unwrap();
                alerts.len() == n as usize && alerts.iter().all(|a| a.attempts >= 3)
            },
        )
        .await;
        // ...and more arrive meanwhile.
        n += ingest_victims(&store, "a", "late", 4).await;
        n += ingest_victims(&store, "b", "late", 4).await;
        worker.wake.notify_one();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            receiver.received().is_empty(),
            "a down receiver keeps nothing"
        );
        assert_eq!(count_status(&store, "delivered").await, 0);
        assert_eq!(count_status(&store, "dead").await, 0);

        receiver.set_down(false);
        wait_for("every alert delivered", Duration::from_secs(8), || async {
            count_status(&store, "delivered").await == n as usize
        })
        .await;
        worker.stop().await;

        // None lost: every alert in the store reached the bank, with a valid signature, and
        // nothing else did.
        let expected = payloads_by_key(&store).await;
        assert_eq!(expected.len(), n as usize);
        let received = receiver.received();
        assert!(received.iter().all(|r| r.valid), "every signature verifies");
        let got = by_key(&received);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>()
        );
        for (key, copies) in &got {
            let payload = &expected[key];
            // Bank a's first accepted copy was answered 500, so it came twice; b's once.
            let want = if payload.institution_id == "a" { 2 } else { 1 };
            assert_eq!(
                copies.len(),
                want,
                "copies of {key} ({})",
                payload.institution_id
            );
            for c in copies {
                assert_eq!(&c.idempotency_key, key);
                assert_eq!(c.institution, payload.institution_id);
                assert_eq!(c.body, copies[0].body, "every copy carries the same body");
                let body: AlertPayload = serde_json::from_str(&c.body).unwrap();
                assert_eq!(&body, payload);
            }
        }

        // The outbox kept every attempt: refusals while down (503), then, for bank a, the lost
        // answer (500), then the delivery.
        let mut refused_while_down = 0;
        for alert in store.list_alerts(None, 1_000).await.unwrap() {
            let attempts = store.alert_deliveries(alert.id).await.unwrap();
            assert_eq!(attempts.len() as i64, alert.attempts);
            assert_eq!(
                attempts.iter().map(|d| d.attempt).collect::<Vec<_>>(),
                (1..=alert.attempts).collect::<Vec<_>>()
            );
            let (last, failed) = attempts.split_last().unwrap();
            assert!(last.error.is_none() && last.http_status.is_some_and(|s| s < 300));
            assert!(failed.iter().all(|d| d.error.is_some()));
            let statuses: Vec<i64> = failed.iter().filter_map(|d| d.http_status).collect();
            assert_eq!(statuses.len(), failed.len());
            let (down, lost) =
                statuses.split_at(statuses.len() - usize::from(alert.institution_id == "a"));
            assert!(down.iter().all(|&s| s == 503), "{statuses:?}");
            assert!(lost.iter().all(|&s| s == 500), "{statuses:?}");
            if down.len() >= 3 {
                refused_while_down += 1;
            }
        }
        // The 16 alerts written before the receiver came back were each refused at least 3 times.
        assert!(refused_while_down >= 16, "{refused_while_down}");
        receiver.stop().await;
    }
);

on_every_backend!(
    a_receiver_that_never_accepts_gets_the_alert_dead_lettered,
    |store: Store| async move {
        // Bank "a"'s receiver is down for good (503); bank "b"'s has rotated its secret, so it
        // refuses every signature (401).
        let down = start_receiver(&[("a", "secret-a")]).await;
        down.set_down(true);
        let rotated = start_receiver(&[("b", "new-secret-b")]).await;
        for (id, url) in [("a", down.url_for("a")), ("b", rotated.url_for("b"))] {
            store.upsert_institution(&bank(id)).await.unwrap();
            store
                .set_webhook(id, &url, &format!("secret-{id}"))
                .await
                .unwrap();
        }
        ingest_victims(&store, "a", "x", 2).await;
        ingest_victims(&store, "b", "x", 2).await;
        let max_attempts = 4;
        let worker = Worker::start(&store, fast_config(max_attempts));
        wait_for("every alert dead", Duration::from_secs(5), || async {
            count_status(&store, "dead").await == 4
        })
        .await;
        // A dead letter is not retried.
        tokio::time::sleep(Duration::from_millis(200)).await;
        worker.stop().await;

        for alert in store.list_alerts(None, 100).await.unwrap() {
            assert_eq!(alert.status, "dead");
            assert_eq!(alert.attempts, i64::from(max_attempts));
            assert_eq!(alert.delivered_at, None);
            let attempts = store.alert_deliveries(alert.id).await.unwrap();
            assert_eq!(
                attempts.iter().map(|d| d.attempt).collect::<Vec<_>>(),
                (1..=i64::from(max_attempts)).collect::<Vec<_>>()
            );
            let want = if alert.institution_id == "a" {
                503
            } else {
                401
            };
            for d in &attempts {
                assert_eq!(d.http_status, Some(want));
                assert_eq!(
                    d.error.as_deref().map(|e| e.starts_with("HTTP ")),
                    Some(true)
                );
            }
            assert!(attempts.windows(2).all(|w| w[0].at <= w[1].at));
            assert_eq!(alert.last_error, attempts.last().unwrap().error);
        }
        let stats = store.stats().await.unwrap();
        assert_eq!((stats.alerts_dead, stats.alerts_delivered), (4, 0));
        assert_eq!(stats.delivery_attempts, 4 * i64::from(max_attempts));
        // The down receiver kept nothing; the other saw b's webhooks and refused them.
        assert!(down.received().is_empty());
        let received = rotated.received();
        assert!(received.iter().all(|r| r.institution == "b" && !r.valid));
        assert_eq!(received.len(), 2 * max_attempts as usize);
        down.stop().await;
        rotated.stop().await;
    }
);

on_every_backend!(
    a_dead_alert_redelivered_reaches_a_receiver_that_is_up_again,
    |store: Store| async move {
        let receiver = start_receiver(&[("a", "secret-a")]).await;
        receiver.set_down(true);
        store.upsert_institution(&bank("a")).await.unwrap();
        store
            .set_webhook("a", &receiver.url_for("a"), "secret-a")
            .await
            .unwrap();
        ingest_victims(&store, "a", "x", 2).await;
        let max_attempts = 3;
        let worker = Worker::start(&store, fast_config(max_attempts));
        wait_for("both alerts dead", Duration::from_secs(5), || async {
            count_status(&store, "dead").await == 2
        })
        .await;
        let alerts = store.list_alerts(None, 10).await.unwrap();
        let (dead, other) = (alerts[0].clone(), alerts[1].clone());

        receiver.set_down(false);
        // Nothing happens by itself: dead letters wait for an operator.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(receiver.received().is_empty());

        assert_eq!(
            store.redeliver_alert(dead.id).await.unwrap(),
            Redelivery::Queued {
                previous: "dead".into()
            }
        );
        worker.wake.notify_one();
        wait_for("the redelivered alert", Duration::from_secs(5), || async {
            store.outbox_alert(dead.id).await.unwrap().unwrap().status == "delivered"
        })
        .await;
        let after = store.outbox_alert(dead.id).await.unwrap().unwrap();
        assert_eq!(
            after.attempts,
            i64::from(max_attempts) + 1,
            "attempts are kept"
        );
        assert!(after.delivered_at.is_some());
        let attempts = store.alert_deliveries(dead.id).await.unwrap();
        assert_eq!(attempts.len(), max_attempts as usize + 1);
        assert_eq!(attempts.last().unwrap().error, None);
        // The other dead alert was left alone.
        let untouched = store.outbox_alert(other.id).await.unwrap().unwrap();
        assert_eq!(
            (untouched.status.as_str(), untouched.attempts),
            ("dead", i64::from(max_attempts))
        );

        let payloads = payloads_by_key(&store).await;
        let key = payloads
            .values()
            .find(|p| p.alert_id == dead.id)
            .unwrap()
            .idempotency_key
            .clone();
        let received = receiver.received();
        assert_eq!(received.len(), 1);
        assert!(received[0].valid);
        assert_eq!(received[0].idempotency_key, key);

        // A delivered alert can be sent again on demand: same key, same body.
        assert_eq!(
            store.redeliver_alert(dead.id).await.unwrap(),
            Redelivery::Queued {
                previous: "delivered".into()
            }
        );
        worker.wake.notify_one();
        wait_for("the second copy", Duration::from_secs(5), || async {
            receiver.received().len() == 2
        })
        .await;
        let received = receiver.received();
        assert_eq!(received[1].idempotency_key, key);
        assert_eq!(received[1].body, received[0].body);
        assert!(received[1].valid);
        wait_for("delivered again", Duration::from_secs(5), || async {
            store.outbox_alert(dead.id).await.unwrap().unwrap().status == "delivered"
        })
        .await;
        worker.stop().await;

        // What cannot be redelivered says so.
        ingest_victims(&store, "a", "y", 1).await;
        let pending = store.list_alerts(Some("pending"), 10).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            store.redeliver_alert(pending[0].id).await.unwrap(),
            Redelivery::AlreadyPending
        );
        assert_eq!(
            store.redeliver_alert(999_999).await.unwrap(),
            Redelivery::NotFound
        );
        receiver.stop().await;
    }
);
