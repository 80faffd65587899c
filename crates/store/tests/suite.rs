//! The store test suite. Every test runs on SQLite and on PostgreSQL.
//!
//! PostgreSQL is reached at `DROPWATCH_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test gets a fresh database that is dropped
//! afterwards. Without a server the PostgreSQL half is skipped with a message, except under
//! `CI=true`, where a missing server fails the suite.

use dropwatch_model::{
    AlertPayload, AnalyzedRecord, Inject, InjectBlock, MaskedSecret, SecretKind, ServerRole,
    Urgency,
};
use dropwatch_store::{
    canonical_hash, Attempt, AttemptNext, Backend, IngestBatch, NewConfig, Store, StoreError,
    EVENT_TARGETS_ADDED,
};
use dropwatch_testkit::fixtures::bank;
use dropwatch_testkit::on_every_backend;

/// Runs one test body on every backend.
fn record(
    fp: &str,
    inst: Option<&str>,
    account: Option<&str>,
    kinds: &[SecretKind],
) -> AnalyzedRecord {
    let secrets: Vec<MaskedSecret> = kinds
        .iter()
        .map(|&kind| MaskedSecret {
            kind,
            field: kind.as_str().into(),
            length: 6,
            hmac: format!("{fp}{}", kind.as_str()),
        })
        .collect();
    AnalyzedRecord {
        fingerprint: fp.into(),
        external_id: Some("1".into()),
        bot_id: "BOT_1".into(),
        botnet: "net".into(),
        url: "https://ib.a.example/login".into(),
        institution_id: inst.map(String::from),
        account: account.map(String::from),
        account_norm: account.map(|a| a.replace('-', "")),
        urgency: Urgency::from_exposed(kinds),
        secrets,
        other_fields: vec![],
        mule_accounts: vec![],
    }
}

on_every_backend!(institutions_round_trip, |s: Store| async move {
    s.upsert_institution(&bank("a")).await.unwrap();
    s.upsert_institution(&bank("b")).await.unwrap();
    let mut a = bank("a");
    a.domains.push("a-direct.example".into());
    s.upsert_institution(&a).await.unwrap();
    let all = s.list_institutions().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], a);
    s.set_webhook("a", "http://127.0.0.1:1/hook", "k")
        .await
        .unwrap();
    assert!(matches!(
        s.set_webhook("zz", "u", "k").await,
        Err(StoreError::UnknownInstitution(_))
    ));
});

on_every_backend!(servers_and_sources_are_idempotent, |s: Store| async move {
    let id1 = s
        .upsert_server(
            "http://x.example/gate.php",
            "x.example",
            ServerRole::Drop,
            "sample:aa",
        )
        .await
        .unwrap();
    let id2 = s
        .upsert_server(
            "http://x.example/gate.php",
            "x.example",
            ServerRole::Drop,
            "sample:bb",
        )
        .await
        .unwrap();
    assert_eq!(id1, id2);
    let id3 = s
        .upsert_server(
            "http://x.example/gate.php",
            "x.example",
            ServerRole::C2Gate,
            "sample:aa",
        )
        .await
        .unwrap();
    assert_ne!(id1, id3);
    let servers = s.list_servers().await.unwrap();
    assert_eq!(servers.len(), 2);
    assert_eq!(
        servers[0].sources,
        vec!["sample:aa".to_string(), "sample:bb".to_string()]
    );
    let m1 = s
        .add_monitor_source(Some(id1), "http_jsonl", "http://x.example/gate.php")
        .await
        .unwrap();
    let m2 = s
        .add_monitor_source(None, "http_jsonl", "http://x.example/gate.php")
        .await
        .unwrap();
    assert_eq!(m1, m2);
    assert!(s.set_monitor_state(m1, "paused").await.unwrap());
    let sources = s.list_monitor_sources().await.unwrap();
    assert_eq!(
        (
            sources.len(),
            sources[0].server_id,
            sources[0].state.as_str()
        ),
        (1, Some(id1), "paused")
    );
});

on_every_backend!(injects_are_stored_once, |s: Store| async move {
    s.upsert_institution(&bank("a")).await.unwrap();
    let sample = s
        .upsert_sample("ab".repeat(32).as_str(), "webinjects", Some("w.txt"))
        .await
        .unwrap();
    assert_eq!(
        s.upsert_sample("ab".repeat(32).as_str(), "webinjects", None)
            .await
            .unwrap(),
        sample
    );
    let inj = Inject {
        url_mask: "https://*.a.example/*".into(),
        flags: "GP".into(),
        blocks: vec![InjectBlock {
            before: b"<form>".to_vec(),
            inject: b"<script>x</script>".to_vec(),
            after: vec![],
        }],
        line: Some(1),
        ..Inject::default()
    };
    let items = vec![(inj.clone(), Some("a".to_string())), (inj, None)];
    assert_eq!(s.insert_injects(sample, &items).await.unwrap(), 2);
    assert_eq!(s.insert_injects(sample, &items).await.unwrap(), 0);
    assert_eq!(s.stats().await.unwrap().injects, 2);
});

on_every_backend!(
    ingest_makes_victims_alerts_and_moves_the_cursor,
    |s: Store| async move {
        s.upsert_institution(&bank("a")).await.unwrap();
        let src = s
            .add_monitor_source(None, "http_jsonl", "http://d.example/r")
            .await
            .unwrap();
        let batch = IngestBatch {
            source_id: Some(src),
            cursor: Some("120".into()),
            fetched_at: 1_000,
            source_server: Some("http://d.example/r".into()),
            records: vec![
                record("f1", Some("a"), Some("123-4567"), &[SecretKind::Password]),
                record("f1", Some("a"), Some("123-4567"), &[SecretKind::Password]),
                record("f2", None, Some("bob"), &[SecretKind::Password]),
            ],
            ..IngestBatch::default()
        };
        let out = s.ingest(&batch).await.unwrap();
        assert_eq!(
            (
                out.new_records,
                out.duplicate_records,
                out.unattributed,
                out.new_victims,
                out.alerts
            ),
            (2, 1, 1, 1, 1)
        );
        // The same batch again: all duplicates, nothing new.
        let again = s.ingest(&batch).await.unwrap();
        assert_eq!(
            (again.new_records, again.duplicate_records, again.alerts),
            (0, 3, 0)
        );
        // A later record adds a one-time code: the victim escalates, one more alert.
        let later = IngestBatch {
            source_id: Some(src),
            cursor: Some("240".into()),
            fetched_at: 2_000,
            source_server: None,
            records: vec![
                record("f3", Some("a"), Some("1234567"), &[SecretKind::OneTimeCode]),
                record("f4", Some("a"), Some("1234567"), &[SecretKind::Password]),
            ],
            ..IngestBatch::default()
        };
        let out = s.ingest(&later).await.unwrap();
        assert_eq!((out.new_records, out.new_victims, out.alerts), (2, 0, 1));
        assert_eq!(
            s.list_monitor_sources().await.unwrap()[0].cursor.as_deref(),
            Some("240")
        );

        let victims = s.list_victims("analyst:test", None).await.unwrap();
        assert_eq!(victims.len(), 1);
        let v = &victims[0];
        assert_eq!(
            (v.account.as_str(), v.account_norm.as_str(), v.n_records),
            ("123-4567", "1234567", 3)
        );
        assert_eq!(
            v.exposed,
            vec![SecretKind::Password, SecretKind::OneTimeCode]
        );
        assert_eq!(v.urgency, Urgency::Critical);
        assert!(s
            .list_victims("inst:b", Some("b"))
            .await
            .unwrap()
            .is_empty());
        let audit = s.list_audit(10).await.unwrap();
        assert_eq!(audit.len(), 2);
        assert_eq!(
            (audit[0].actor.as_str(), audit[0].action.as_str()),
            ("inst:b", "read_victims")
        );

        // Without a webhook nothing is due for push delivery; with one, both alerts are.
        assert!(s.due_alerts(i64::MAX, 10).await.unwrap().is_empty());
        s.set_webhook("a", "http://127.0.0.1:9/hook", "k")
            .await
            .unwrap();
        let due = s.due_alerts(i64::MAX, 10).await.unwrap();
        assert_eq!(due.len(), 2);
        let p0: AlertPayload = serde_json::from_str(&due[0].payload).unwrap();
        let p1: AlertPayload = serde_json::from_str(&due[1].payload).unwrap();
        assert_eq!(
            (p0.alert_id, p0.account.as_str(), p0.urgency),
            (due[0].id, "123-4567", Urgency::High)
        );
        assert_eq!(p0.source_server.as_deref(), Some("http://d.example/r"));
        assert_eq!((p1.exposed.len(), p1.urgency), (2, Urgency::Critical));
        assert_ne!(p0.idempotency_key, p1.idempotency_key);
    }
);

on_every_backend!(a_failed_batch_changes_nothing, |s: Store| async move {
    s.upsert_institution(&bank("a")).await.unwrap();
    let src = s
        .add_monitor_source(None, "http_jsonl", "http://d.example/r")
        .await
        .unwrap();
    let batch = IngestBatch {
        source_id: Some(src),
        cursor: Some("99".into()),
        fetched_at: 1,
        source_server: None,
        // The second record names an institution the store does not know: the batch must fail whole.
        records: vec![
            record("g1", Some("a"), Some("1"), &[]),
            record("g2", Some("nope"), Some("2"), &[]),
        ],
        ..IngestBatch::default()
    };
    assert!(s.ingest(&batch).await.is_err());
    let stats = s.stats().await.unwrap();
    assert_eq!((stats.records, stats.victims, stats.alerts), (0, 0, 0));
    assert_eq!(s.list_monitor_sources().await.unwrap()[0].cursor, None);
});

on_every_backend!(delivery_bookkeeping, |s: Store| async move {
    s.upsert_institution(&bank("a")).await.unwrap();
    s.set_webhook("a", "http://127.0.0.1:9/hook", "sekret")
        .await
        .unwrap();
    let batch = IngestBatch {
        fetched_at: 10,
        records: vec![
            record("h1", Some("a"), Some("1"), &[]),
            record("h2", Some("a"), Some("2"), &[]),
        ],
        ..IngestBatch::default()
    };
    s.ingest(&batch).await.unwrap();
    let due = s.due_alerts(i64::MAX, 10).await.unwrap();
    assert_eq!(due[0].webhook_secret.as_deref(), Some("sekret"));
    let fail = |next| Attempt {
        at: 50,
        http_status: Some(503),
        error: Some("unavailable".into()),
        duration_us: 5,
        next,
    };
    s.record_attempt(due[0].id, &fail(AttemptNext::RetryAt(i64::MAX - 1)))
        .await
        .unwrap();
    let now_due = s
        .due_alerts(dropwatch_store::now_micros(), 10)
        .await
        .unwrap();
    assert_eq!(
        now_due.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![due[1].id],
        "the retried alert waits"
    );
    s.record_attempt(
        due[0].id,
        &Attempt {
            at: 110,
            http_status: Some(204),
            error: None,
            duration_us: 5,
            next: AttemptNext::Delivered,
        },
    )
    .await
    .unwrap();
    s.record_attempt(due[1].id, &fail(AttemptNext::Dead))
        .await
        .unwrap();
    let stats = s.stats().await.unwrap();
    assert_eq!(
        (
            stats.alerts_delivered,
            stats.alerts_dead,
            stats.alerts_pending,
            stats.delivery_attempts
        ),
        (1, 1, 0, 3)
    );
    assert_eq!(s.delivery_latencies().await.unwrap(), vec![100]);
    assert!(s.due_alerts(i64::MAX, 10).await.unwrap().is_empty());
});

#[tokio::test]
async fn rejects_unknown_urls() {
    assert!(matches!(
        Store::connect("mysql://x").await,
        Err(StoreError::UnsupportedUrl(_))
    ));
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_data_dir(dir.path()).await.unwrap();
    assert_eq!(s.backend(), Backend::Sqlite);
    // Migrations are idempotent: opening again is fine.
    s.close().await;
    Store::open_data_dir(dir.path())
        .await
        .unwrap()
        .close()
        .await;
}

fn new_config(
    botnet: Option<&str>,
    version: &str,
    body: serde_json::Value,
    targets: &[&str],
) -> NewConfig {
    NewConfig {
        sample_id: None,
        family: "zeus".into(),
        version: Some(version.into()),
        botnet: botnet.map(String::from),
        body,
        targets: targets.iter().map(|t| t.to_string()).collect(),
    }
}

on_every_backend!(configs_dedupe_by_canonical_hash, |s: Store| async move {
    let sample = s
        .upsert_sample("cd".repeat(32).as_str(), "pe", Some("bot.exe"))
        .await
        .unwrap();
    let body = serde_json::json!({
        "family": "zeus", "botnet": "net1", "c2_urls": ["http://c2.example/gate.php"],
        "injects": [{"url_mask": "https://a.example/*", "flags": "GP"},
                    {"url_mask": "https://b.example/*", "flags": "G"}],
    });
    let mut cfg = new_config(
        Some("net1"),
        "2.0.8.9",
        body,
        &["https://a.example/*", "https://b.example/*"],
    );
    cfg.sample_id = Some(sample);
    let first = s.insert_config(&cfg).await.unwrap();
    assert!(first.is_new);
    assert_eq!(
        first.event, None,
        "the first version of a botnet is no event"
    );
    // Same content, keys and list items in another order: the same config.
    let reordered = serde_json::json!({
        "injects": [{"flags": "G", "url_mask": "https://b.example/*"},
                    {"flags": "GP", "url_mask": "https://a.example/*"}],
        "c2_urls": ["http://c2.example/gate.php"], "botnet": "net1", "family": "zeus",
    });
    let again = s
        .insert_config(&new_config(
            Some("net1"),
            "2.0.8.9",
            reordered,
            &["https://b.example/*"],
        ))
        .await
        .unwrap();
    assert_eq!((again.id, again.is_new), (first.id, false));
    assert_eq!(again.canonical_hash, first.canonical_hash);
    assert_eq!(again.canonical_hash, canonical_hash(&cfg.body));
    let rows = s.list_configs().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].sample_id, Some(sample));
    assert_eq!(rows[0].botnet.as_deref(), Some("net1"));
    assert_eq!(
        s.config_targets(first.id).await.unwrap(),
        vec!["https://a.example/*", "https://b.example/*"]
    );
    assert!(s.config_events().await.unwrap().is_empty());
});

on_every_backend!(
    a_new_version_that_adds_targets_is_an_event,
    |s: Store| async move {
        let v1 = s
            .insert_config(&new_config(
                Some("net1"),
                "1.0.0.0",
                serde_json::json!({"v": 1}),
                &["https://a.example/*", "https://b.example/*"],
            ))
            .await
            .unwrap();
        // Another botnet and a config without botnet: no comparison with net1.
        let other = s
            .insert_config(&new_config(
                Some("net2"),
                "1.0.0.0",
                serde_json::json!({"v": 2}),
                &["https://z.example/*"],
            ))
            .await
            .unwrap();
        assert_eq!(other.event, None);
        let anon = s
            .insert_config(&new_config(
                None,
                "1.0.0.0",
                serde_json::json!({"v": 3}),
                &["https://y.example/*"],
            ))
            .await
            .unwrap();
        assert_eq!(anon.event, None);
        // net1 v2 drops b and adds c and d (given twice): one event with c, d.
        let v2 = s
            .insert_config(&new_config(
                Some("net1"),
                "1.0.0.1",
                serde_json::json!({"v": 4}),
                &[
                    "https://d.example/*",
                    "https://a.example/*",
                    "https://c.example/*",
                    "https://c.example/*",
                ],
            ))
            .await
            .unwrap();
        let ev = v2.event.clone().expect("targets were added");
        assert_eq!(ev.previous_config_id, Some(v1.id));
        assert_eq!(ev.config_id, v2.id);
        assert_eq!(
            (ev.family.as_str(), ev.botnet.as_str(), ev.kind.as_str()),
            ("zeus", "net1", EVENT_TARGETS_ADDED)
        );
        assert_eq!(
            ev.targets,
            vec!["https://c.example/*", "https://d.example/*"]
        );
        // v3 only removes targets: no event. v4 re-adds b relative to v3: an event.
        let v3 = s
            .insert_config(&new_config(
                Some("net1"),
                "1.0.0.2",
                serde_json::json!({"v": 5}),
                &["https://a.example/*"],
            ))
            .await
            .unwrap();
        assert_eq!(v3.event, None);
        let v4 = s
            .insert_config(&new_config(
                Some("net1"),
                "1.0.0.3",
                serde_json::json!({"v": 6}),
                &["https://a.example/*", "https://b.example/*"],
            ))
            .await
            .unwrap();
        assert_eq!(
            v4.event.as_ref().map(|e| e.previous_config_id),
            Some(Some(v3.id))
        );
        // Storing v2 again changes nothing.
        let again = s
            .insert_config(&new_config(
                Some("net1"),
                "1.0.0.1",
                serde_json::json!({"v": 4}),
                &["https://x.example/*"],
            ))
            .await
            .unwrap();
        assert_eq!((again.id, again.is_new, again.event), (v2.id, false, None));
        let events = s.config_events().await.unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0], ev);
        assert_eq!(events[1].targets, vec!["https://b.example/*"]);
        assert_eq!(s.list_configs().await.unwrap().len(), 6);
    }
);
