//! Workers and leases, on SQLite and on PostgreSQL: claim, renew, release, expiry and the fence
//! on every write made under a lease; `EXPLAIN` of the hot queries on PostgreSQL; a schema newer
//! than the binary is refused.
//!
//! Every instant is passed explicitly, so expiry is tested without sleeping.

use dropwatch_model::{AnalyzedRecord, MaskedSecret, SecretKind, Urgency};
use dropwatch_store::{
    Attempt, AttemptNext, Backend, IngestBatch, LeaseFence, Store, StoreError, WorkerInfo,
    HOT_QUERIES,
};
use dropwatch_testkit::backends::pg_admin_url;
use dropwatch_testkit::fixtures::bank;
use dropwatch_testkit::on_every_backend;
use sqlx::{Connection, Executor};

const TTL: i64 = 10_000_000;

fn record(fp: &str, inst: &str, account: &str) -> AnalyzedRecord {
    AnalyzedRecord {
        fingerprint: fp.into(),
        external_id: None,
        bot_id: "BOT_1".into(),
        botnet: "net".into(),
        url: format!("https://ib.{inst}.example/login"),
        institution_id: Some(inst.into()),
        account: Some(account.into()),
        account_norm: Some(account.into()),
        urgency: Urgency::High,
        secrets: vec![MaskedSecret {
            kind: SecretKind::Password,
            field: "password".into(),
            length: 8,
            hmac: format!("{fp}-pw"),
        }],
        other_fields: vec![],
        mule_accounts: vec![],
    }
}

fn worker(id: &str) -> WorkerInfo {
    WorkerInfo {
        id: id.into(),
        host: "test".into(),
        pid: 1,
        roles: vec!["monitor".into(), "deliver".into()],
        lease_ttl_us: TTL,
    }
}

fn ok_attempt(at: i64) -> Attempt {
    Attempt {
        at,
        http_status: Some(204),
        error: None,
        duration_us: 1,
        next: AttemptNext::Delivered,
    }
}

on_every_backend!(
    source_leases_claim_renew_release_expire_and_fence,
    |s: Store| async move {
        let t0 = 1_000_000_000_000;
        s.upsert_institution(&bank("a")).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                s.add_monitor_source(None, "http_jsonl", &format!("http://d.example/{i}"))
                    .await
                    .unwrap(),
            );
        }
        let paused = s
            .add_monitor_source(None, "http_jsonl", "http://d.example/paused")
            .await
            .unwrap();
        s.set_monitor_state(paused, "paused").await.unwrap();
        assert!(s.register_worker(&worker("w1"), t0).await.unwrap());
        assert!(s.register_worker(&worker("w2"), t0).await.unwrap());
        // A live worker's id cannot be taken.
        assert!(!s.register_worker(&worker("w1"), t0 + 1).await.unwrap());

        // Claims split the due sources; none twice, paused ones never.
        let c1 = s.claim_sources("w1", t0, TTL, 3).await.unwrap();
        let c2 = s.claim_sources("w2", t0, TTL, 10).await.unwrap();
        assert_eq!(c1.len(), 3);
        assert_eq!(c2.len(), 2);
        let mut all: Vec<i64> = c1.iter().chain(&c2).map(|c| c.source.id).collect();
        all.sort();
        assert_eq!(all, ids);
        assert!(c1.iter().all(|c| c.lease
            == LeaseFence {
                owner: "w1".into(),
                epoch: 1
            }));
        assert!(s
            .claim_sources("w2", t0 + 1, TTL, 10)
            .await
            .unwrap()
            .is_empty());

        // An ingest under a held lease commits and moves the cursor.
        let a = &c1[0];
        let batch = |lease: &LeaseFence, cursor: &str, fp: &str| IngestBatch {
            source_id: Some(a.source.id),
            cursor: Some(cursor.into()),
            fetched_at: t0,
            source_server: None,
            records: vec![record(fp, "a", fp)],
            lease: Some(lease.clone()),
            ..IngestBatch::default()
        };
        s.ingest(&batch(&a.lease, "100", "r1")).await.unwrap();

        // Renewal keeps leases past the original expiry.
        let r = s.heartbeat("w1", t0 + TTL / 2, TTL).await.unwrap();
        assert_eq!(r.sources.len(), 3);
        assert!(s
            .claim_sources("w2", t0 + TTL + 1, TTL, 10)
            .await
            .unwrap()
            .iter()
            .all(|c| c.lease.owner == "w2" && !c1.iter().any(|x| x.source.id == c.source.id)));

        // w1 stalls: its leases expire and w3 takes them over with a new epoch, with the cursor
        // the last committed ingest left.
        assert!(s.register_worker(&worker("w3"), t0).await.unwrap());
        let t1 = t0 + TTL / 2 + TTL + 1;
        let c3 = s.claim_sources("w3", t1, TTL, 10).await.unwrap();
        let taken: Vec<_> = c3.iter().filter(|c| c.source.id == a.source.id).collect();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].lease.epoch, 2);
        assert_eq!(taken[0].source.cursor.as_deref(), Some("100"));

        // The stale holder's writes are all refused and change nothing.
        let before = s.stats().await.unwrap();
        match s.ingest(&batch(&a.lease, "999", "r2")).await {
            Err(StoreError::LeaseLost { source_id }) => assert_eq!(source_id, a.source.id),
            other => panic!("expected LeaseLost, got {other:?}"),
        }
        assert_eq!(s.stats().await.unwrap(), before);
        assert!(!s.release_source(a.source.id, &a.lease, t1).await.unwrap());
        let src = s.list_monitor_sources().await.unwrap();
        assert_eq!(
            src.iter()
                .find(|x| x.id == a.source.id)
                .unwrap()
                .cursor
                .as_deref(),
            Some("100")
        );
        // …and its heartbeat tells it what it lost.
        let r = s.heartbeat("w1", t1, TTL).await.unwrap();
        assert!(r.sources.iter().all(|(id, _)| *id != a.source.id));

        // The new holder writes, releases with a next poll time, and the source waits until then.
        s.ingest(&batch(&taken[0].lease, "200", "r3"))
            .await
            .unwrap();
        assert!(s
            .release_source(a.source.id, &taken[0].lease, t1 + 5_000_000)
            .await
            .unwrap());
        let again = |t| {
            let s = s.clone();
            async move {
                s.claim_sources("w2", t, TTL, 100)
                    .await
                    .unwrap()
                    .into_iter()
                    .any(|c| c.source.id == a.source.id)
            }
        };
        assert!(!again(t1 + 4_000_000).await);
        assert!(again(t1 + 5_000_000).await);

        // A clean stop gives back what the worker holds; then its id can be reused.
        let held = s.heartbeat("w2", t1 + 5_000_001, TTL).await.unwrap();
        let released = s.release_worker_leases("w2").await.unwrap();
        assert_eq!(released.sources as usize, held.sources.len());
        s.stop_worker("w2", t1 + 6_000_000).await.unwrap();
        assert!(s
            .heartbeat("w2", t1 + 6_000_000, TTL)
            .await
            .unwrap()
            .sources
            .is_empty());
        let st = s.cluster_status(t1 + 6_000_000).await.unwrap();
        let w2 = st.workers.iter().find(|w| w.id == "w2").unwrap();
        assert!(!w2.alive && w2.sources_held == 0);
        assert!(s
            .register_worker(&worker("w2"), t1 + 7_000_000)
            .await
            .unwrap());
    }
);

on_every_backend!(alert_leases_fence_attempts, |s: Store| async move {
    let t0 = dropwatch_store::now_micros() + 1_000_000;
    s.upsert_institution(&bank("a")).await.unwrap();
    s.upsert_institution(&bank("b")).await.unwrap();
    s.set_webhook("a", "http://127.0.0.1:9/hook/a", "k")
        .await
        .unwrap();
    let out = s
        .ingest(&IngestBatch {
            fetched_at: 1,
            records: (0..4)
                .map(|i| record(&format!("f{i}"), "a", &format!("acct{i}")))
                .chain([record("fb", "b", "acctb")])
                .collect(),
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(out.alerts, 5);

    // Only alerts with a webhook, each to one claimer.
    let c1 = s.claim_alerts("w1", t0, TTL, 1).await.unwrap();
    let c2 = s.claim_alerts("w2", t0, TTL, 10).await.unwrap();
    assert_eq!((c1.len(), c2.len()), (1, 3));
    assert!(c1.iter().chain(&c2).all(|c| c.alert.webhook_url.is_some()));
    assert!(!c2.iter().any(|c| c.alert.id == c1[0].alert.id));
    assert!(s.claim_alerts("w3", t0, TTL, 10).await.unwrap().is_empty());

    // An attempt is recorded only by the holder, and gives the lease back.
    let x = &c1[0];
    assert!(!s
        .record_attempt_fenced(x.alert.id, &c2[0].lease, &ok_attempt(t0))
        .await
        .unwrap());
    assert!(s
        .record_attempt_fenced(x.alert.id, &x.lease, &ok_attempt(t0))
        .await
        .unwrap());
    // Delivered: never claimed again, and a second record is refused.
    assert!(!s
        .record_attempt_fenced(x.alert.id, &x.lease, &ok_attempt(t0))
        .await
        .unwrap());
    assert!(s
        .claim_alerts("w3", t0 + 10 * TTL, TTL, 10)
        .await
        .unwrap()
        .iter()
        .all(|c| c.alert.id != x.alert.id));

    // A holder that stalls past its lease loses the alert to the next claimer; only the new
    // holder's attempt is recorded, so the alert has one delivery recorded.
    let t1 = t0 + 20 * TTL;
    let y = s.claim_alerts("w1", t1, TTL, 1).await.unwrap().remove(0);
    let y2 = s.claim_alerts("w2", t1 + TTL + 1, TTL, 10).await.unwrap();
    let y2 = y2.into_iter().find(|c| c.alert.id == y.alert.id).unwrap();
    assert_eq!(y2.lease.epoch, y.lease.epoch + 1);
    assert!(!s
        .record_attempt_fenced(y.alert.id, &y.lease, &ok_attempt(t1))
        .await
        .unwrap());
    assert!(s
        .record_attempt_fenced(y.alert.id, &y2.lease, &ok_attempt(t1))
        .await
        .unwrap());
    let attempts = s.alert_deliveries(y.alert.id).await.unwrap();
    assert_eq!(attempts.len(), 1);

    // A failed attempt sets the next try; the alert is claimable again only then.
    let t2 = t1 + 5 * TTL;
    let z = s.claim_alerts("w1", t2, TTL, 1).await.unwrap().remove(0);
    let retry = Attempt {
        next: AttemptNext::RetryAt(t2 + 1_000),
        http_status: Some(503),
        error: Some("HTTP 503".into()),
        ..ok_attempt(t2)
    };
    assert!(s
        .record_attempt_fenced(z.alert.id, &z.lease, &retry)
        .await
        .unwrap());
    assert!(s
        .claim_alerts("w2", t2 + 999, TTL, 10)
        .await
        .unwrap()
        .iter()
        .all(|c| c.alert.id != z.alert.id));
    let again = s.claim_alerts("w2", t2 + 1_000, TTL, 10).await.unwrap();
    let again = again.iter().find(|c| c.alert.id == z.alert.id).unwrap();
    assert_eq!(again.alert.attempts, 1);
    // Released without an attempt: claimable at once.
    assert!(s.release_alert(again.alert.id, &again.lease).await.unwrap());
    assert!(s
        .claim_alerts("w3", t2 + 1_001, TTL, 10)
        .await
        .unwrap()
        .iter()
        .any(|c| c.alert.id == z.alert.id));
    let st = s.cluster_status(t2 + 1_002).await.unwrap();
    assert_eq!(
        st.alerts_pending,
        5 - 2,
        "two delivered, one without a webhook"
    );
    assert!(st.alerts_leased >= 1);
    assert_eq!(st.alerts_dead, 0);
});

/// A fresh PostgreSQL database of its own (the test needs raw SQL next to the store), or None
/// when PostgreSQL is unreachable outside CI.
async fn fresh_pg(tag: &str) -> Option<(String, String)> {
    let admin = pg_admin_url();
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("PostgreSQL is required in CI: {e}");
            }
            eprintln!("SKIPPED: {tag}: PostgreSQL unreachable ({e})");
            return None;
        }
    };
    let name = format!(
        "dropwatch_{tag}_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    Some((format!("{base}/{name}"), name))
}

async fn drop_pg(name: &str) {
    let mut conn = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
}

/// The hot queries of the lease protocol use their indexes on a realistically large table
/// (50k sources, 200k alerts, a few of them due or leased): the plans are printed.
#[tokio::test]
async fn hot_queries_use_indexes_on_postgres() {
    let Some((url, name)) = fresh_pg("explain").await else {
        return;
    };
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let now = dropwatch_store::now_micros();
    for sql in [
        "INSERT INTO institutions (id, name, country, domains, url_masks, account_fields, webhook_url, webhook_secret, created_at)
         SELECT 'i' || g, 'I', 'JP', '[]', '[]', '[]', 'http://127.0.0.1:9/h', 'k', 0 FROM generate_series(1, 50) g".to_string(),
        // Most sources were polled recently and are due later; 20 are due now; 30 leased.
        format!("INSERT INTO monitor_sources (kind, url, created_at, next_poll_at, lease_owner, lease_until)
         SELECT 'http_jsonl', 'http://d.example/' || g, 0,
                CASE WHEN g % 2500 = 0 THEN {now} - 1 ELSE {now} + g * 1000 END,
                CASE WHEN g % 1700 = 0 THEN 'w' END, CASE WHEN g % 1700 = 0 THEN {now} + 10000000 END
         FROM generate_series(1, 50000) g"),
        "INSERT INTO victims (institution_id, account_norm, account, exposed, urgency, first_seen, last_seen, n_records)
         SELECT 'i' || (1 + g % 50), 'a' || g, 'a' || g, 'password', 'high', 0, 0, 1 FROM generate_series(1, 200000) g".to_string(),
        // Almost every alert is delivered; 100 pending, 40 of them leased.
        format!("INSERT INTO alerts (victim_id, institution_id, reason, payload, idempotency_key, status, next_attempt_at, record_fetched_at, created_at, lease_owner, lease_until)
         SELECT g, 'i' || (1 + g % 50), 'new_victim', '{{}}', 'k' || g,
                CASE WHEN g % 2000 = 0 THEN 'pending' ELSE 'delivered' END, {now} - 1, 0, 0,
                CASE WHEN g % 5000 = 0 THEN 'w' END, CASE WHEN g % 5000 = 0 THEN {now} + 10000000 END
         FROM generate_series(1, 200000) g"),
        "ANALYZE".to_string(),
    ] {
        conn.execute(sql.as_str()).await.unwrap();
    }
    let plans = store.explain_hot_queries().await.unwrap();
    assert_eq!(plans.len(), HOT_QUERIES.len());
    for (name, plan) in &plans {
        eprintln!("-- {name}\n{plan}\n");
        let index = match *name {
            "claim_sources" => "monitor_sources_due",
            "claim_alerts" => "alerts_pending_due",
            "renew_sources" => "monitor_sources_lease_owner",
            _ => "alerts_lease_owner",
        };
        assert!(plan.contains(index), "{name} does not use {index}:\n{plan}");
        assert!(plan.contains("Index"), "{name}: {plan}");
    }
    store.close().await;
    drop(conn);
    drop_pg(&name).await;
}

/// SQLite plans too: the claims search the partial indexes rather than scanning.
#[tokio::test]
async fn hot_queries_use_indexes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    for (name, plan) in store.explain_hot_queries().await.unwrap() {
        eprintln!("-- {name}\n{plan}\n");
        assert!(plan.contains("INDEX"), "{name}: {plan}");
    }
}

/// A worker refuses a database whose schema is newer than the binary knows: sqlx finds an
/// applied migration it does not have and `Store::connect` fails, changing nothing.
#[tokio::test]
async fn a_newer_schema_is_refused() {
    let Some((url, name)) = fresh_pg("newer").await else {
        return;
    };
    Store::connect(&url).await.unwrap().close().await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    conn.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99991231000001, 'from the future', TRUE, '\\x00', 0)",
    )
    .await
    .unwrap();
    let err = Store::connect(&url).await.unwrap_err();
    eprintln!("refused: {err}");
    assert!(matches!(err, StoreError::Migrate(_)), "{err:?}");
    drop(conn);
    drop_pg(&name).await;
}
