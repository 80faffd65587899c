//! The store's API half (tokens, scoped reads, acknowledgements, lookup, audit, metrics).
//! Every test runs on SQLite and on PostgreSQL, as in `suite.rs`.
//!
//! PostgreSQL is reached at `DROPWATCH_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test gets a fresh database that is dropped
//! afterwards. Without a server the PostgreSQL half is skipped with a message, except under
//! `CI=true`, where a missing server fails the suite.

use dropwatch_model::{AnalyzedRecord, MaskedSecret, SecretKind, Urgency};
use dropwatch_store::{
    account_hash, AckStatus, Attempt, AttemptNext, AuditQuery, HashPrefix, IngestBatch, Store,
    StoreError, TokenScope, TokenSecret,
};
use dropwatch_testkit::fixtures::bank;
use dropwatch_testkit::on_every_backend;

/// Runs one test body on every backend.
fn record(fp: &str, inst: &str, account: &str, kinds: &[SecretKind]) -> AnalyzedRecord {
    AnalyzedRecord {
        fingerprint: fp.into(),
        external_id: None,
        bot_id: "BOT_1".into(),
        botnet: "net".into(),
        url: format!("https://ib.{inst}.example/login"),
        institution_id: Some(inst.into()),
        account: Some(account.into()),
        account_norm: Some(account.replace('-', "")),
        urgency: Urgency::from_exposed(kinds),
        secrets: kinds
            .iter()
            .map(|&kind| MaskedSecret {
                kind,
                field: kind.as_str().into(),
                length: 6,
                hmac: format!("{fp}{kind}"),
            })
            .collect(),
        other_fields: vec![],
        mule_accounts: vec![],
    }
}

/// Two banks: `a` with victims 111-1111 (password, then a one-time code) and 222-2222,
/// `b` with 333-3333. Four alerts: a, a, b, a (by id).
async fn two_banks(s: &Store) {
    s.upsert_institution(&bank("a")).await.unwrap();
    s.upsert_institution(&bank("b")).await.unwrap();
    let batch = |fetched_at, records| IngestBatch {
        fetched_at,
        records,
        ..IngestBatch::default()
    };
    s.ingest(&batch(
        1_000,
        vec![
            record("r1", "a", "111-1111", &[SecretKind::Password]),
            record("r2", "a", "222-2222", &[]),
            record("r3", "b", "333-3333", &[SecretKind::Pin]),
        ],
    ))
    .await
    .unwrap();
    s.ingest(&batch(
        2_000,
        vec![record("r4", "a", "111-1111", &[SecretKind::OneTimeCode])],
    ))
    .await
    .unwrap();
}

fn secret(n: u8) -> TokenSecret {
    TokenSecret::from_bytes([n; 32])
}

on_every_backend!(tokens_authenticate_until_revoked, |s: Store| async move {
    s.upsert_institution(&bank("a")).await.unwrap();
    let (ta, ti, tp) = (secret(1), secret(2), secret(3));
    let analyst = s
        .create_api_token(&ta, &TokenScope::Analyst, "soc")
        .await
        .unwrap();
    let inst = s
        .create_api_token(&ti, &TokenScope::Institution("a".into()), "bank a")
        .await
        .unwrap();
    let partner = s
        .create_api_token(&tp, &TokenScope::Partner, "cert")
        .await
        .unwrap();
    assert_eq!(inst.scope.institution_id(), Some("a"));
    assert_eq!(inst.last_used_at, None);
    assert!(matches!(
        s.create_api_token(&secret(4), &TokenScope::Institution("zz".into()), "x")
            .await,
        Err(StoreError::UnknownInstitution(id)) if id == "zz"
    ));
    // The same token text twice is refused (the hash is unique).
    assert!(s
        .create_api_token(&ta, &TokenScope::Partner, "dup")
        .await
        .is_err());

    for (text, want) in [(&ta, &analyst), (&ti, &inst), (&tp, &partner)] {
        let got = s
            .authenticate_api_token(text.expose())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (got.id, &got.scope, &got.label),
            (want.id, &want.scope, &want.label)
        );
        assert!(got.last_used_at.is_some(), "use is noted");
    }
    assert_eq!(s.authenticate_api_token("dw_nope").await.unwrap(), None);
    assert_eq!(s.authenticate_api_token("").await.unwrap(), None);
    // A prefix of a real token is not the token.
    assert_eq!(
        s.authenticate_api_token(&ti.expose()[..20]).await.unwrap(),
        None
    );

    assert!(s.revoke_api_token(inst.id).await.unwrap());
    assert!(
        !s.revoke_api_token(inst.id).await.unwrap(),
        "already revoked"
    );
    assert!(!s.revoke_api_token(9_999).await.unwrap());
    assert_eq!(s.authenticate_api_token(ti.expose()).await.unwrap(), None);
    let all = s.list_api_tokens().await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all
        .iter()
        .find(|t| t.id == inst.id)
        .unwrap()
        .revoked_at
        .is_some());
    assert!(all
        .iter()
        .filter(|t| t.id != inst.id)
        .all(|t| t.revoked_at.is_none()));
});

#[tokio::test]
async fn token_text_is_never_written_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_data_dir(dir.path()).await.unwrap();
    let t = secret(7);
    let tok = s
        .create_api_token(&t, &TokenScope::Analyst, "soc")
        .await
        .unwrap();
    s.authenticate_api_token(t.expose()).await.unwrap().unwrap();
    s.close().await;
    let mut seen_hash = false;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(!hay.contains(t.expose()), "token text on disk");
        assert!(!hay.contains(&t.expose()[3..]), "token hex on disk");
        seen_hash |= hay.contains(&dropwatch_store::token_hash(t.expose()));
    }
    assert!(seen_hash, "the hash of token {} is stored", tok.id);
}

on_every_backend!(alerts_are_read_through_a_scope, |s: Store| async move {
    two_banks(&s).await;
    let all = s.alerts_since("analyst", None, 0, 100).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|a| a.institution_id.as_str())
            .collect::<Vec<_>>(),
        ["a", "a", "b", "a"]
    );
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let a = s.alerts_since("bank-a", Some("a"), 0, 100).await.unwrap();
    assert_eq!(a.len(), 3);
    assert!(a
        .iter()
        .all(|x| x.institution_id == "a" && x.payload.institution_id == "a"));
    assert!(a.iter().all(|x| x.payload.account != "333-3333"));
    assert_eq!(a[0].payload.alert_id, a[0].id);
    // The cursor and the limit.
    let after_first = s
        .alerts_since("bank-a", Some("a"), a[0].id, 1)
        .await
        .unwrap();
    assert_eq!(after_first.len(), 1);
    assert_eq!(after_first[0].id, a[1].id);
    assert!(s
        .alerts_since("bank-a", Some("a"), a[2].id, 100)
        .await
        .unwrap()
        .is_empty());
    let b = s.alerts_since("bank-b", Some("b"), 0, 100).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].payload.account, "333-3333");
    assert!(s
        .alerts_since("x", Some("nobody"), 0, 100)
        .await
        .unwrap()
        .is_empty());
    // Every read was audited, with its actor.
    let audit = s
        .query_audit(&AuditQuery {
            actor: Some("bank-a".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 3);
    assert!(audit.iter().all(|e| e.action == "read_alerts"));
    assert_eq!(s.audit_count().await.unwrap(), 6);
});

on_every_backend!(
    timelines_and_acks_stay_within_the_institution,
    |s: Store| async move {
        two_banks(&s).await;
        let victims = s.list_victims("t", Some("a")).await.unwrap();
        let v = victims.iter().find(|v| v.account == "111-1111").unwrap();
        let b_victim = s.list_victims("t", Some("b")).await.unwrap()[0].clone();

        let tl = s
            .victim_timeline("bank-a", Some("a"), v.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tl.victim, *v);
        assert_eq!(
            tl.records
                .iter()
                .map(|r| (r.fetched_at, r.exposed.clone()))
                .collect::<Vec<_>>(),
            vec![
                (1_000, vec![SecretKind::Password]),
                (2_000, vec![SecretKind::OneTimeCode])
            ]
        );
        assert_eq!(
            tl.alerts
                .iter()
                .map(|a| a.reason.as_str())
                .collect::<Vec<_>>(),
            ["new_victim", "new_exposure"]
        );
        assert!(tl.acks.is_empty());
        // Another institution's victim does not exist for a; an analyst sees it.
        assert_eq!(
            s.victim_timeline("bank-a", Some("a"), b_victim.id)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.victim_timeline("bank-a", Some("a"), 9_999).await.unwrap(),
            None
        );
        assert!(s
            .victim_timeline("soc", None, b_victim.id)
            .await
            .unwrap()
            .is_some());

        let b_alert = s.alerts_since("soc", Some("b"), 0, 10).await.unwrap()[0].id;
        let a_alert = tl.alerts[1].id;
        assert_eq!(
            s.ack_alert("bank-a", "a", b_alert, AckStatus::Frozen, "x")
                .await
                .unwrap(),
            None,
            "a cannot acknowledge b's alert"
        );
        assert_eq!(
            s.ack_alert("bank-a", "a", 9_999, AckStatus::Frozen, "x")
                .await
                .unwrap(),
            None
        );
        let ack = s
            .ack_alert(
                "bank-a",
                "a",
                a_alert,
                AckStatus::Acknowledged,
                "calling the customer",
            )
            .await
            .unwrap()
            .unwrap();
        s.ack_alert("bank-a", "a", a_alert, AckStatus::Frozen, "frozen 10:02")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (ack.alert_id, ack.status, ack.institution_id.as_str()),
            (a_alert, AckStatus::Acknowledged, "a")
        );
        let tl = s
            .victim_timeline("bank-a", Some("a"), v.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            tl.acks
                .iter()
                .map(|k| (k.status, k.note.as_str(), k.actor.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (AckStatus::Acknowledged, "calling the customer", "bank-a"),
                (AckStatus::Frozen, "frozen 10:02", "bank-a")
            ]
        );
        // b's victim's timeline has no ack from a.
        let tb = s
            .victim_timeline("soc", None, b_victim.id)
            .await
            .unwrap()
            .unwrap();
        assert!(tb.acks.is_empty());
        let actions: Vec<String> = s
            .query_audit(&AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions
                .iter()
                .filter(|a| *a == "read_victim_timeline")
                .count(),
            6
        );
    }
);

on_every_backend!(lookup_returns_own_suffixes_only, |s: Store| async move {
    two_banks(&s).await;
    let h_a = account_hash("1111111");
    let h_b = account_hash("3333333");
    let prefix = |h: &str| HashPrefix::parse(&h[..5]).unwrap();
    let got = s
        .victim_suffixes_for_prefix("bank-a", Some("a"), &prefix(&h_a))
        .await
        .unwrap();
    assert!(got.contains(&h_a[5..].to_string()), "{got:?}");
    assert!(got.iter().all(|x| x.len() == 59));
    // b's victim is invisible to a, even by its exact prefix; visible to b and to an analyst.
    let got = s
        .victim_suffixes_for_prefix("bank-a", Some("a"), &prefix(&h_b))
        .await
        .unwrap();
    assert!(!got.contains(&h_b[5..].to_string()));
    let got = s
        .victim_suffixes_for_prefix("bank-b", Some("b"), &prefix(&h_b))
        .await
        .unwrap();
    assert_eq!(got, vec![h_b[5..].to_string()]);
    let got = s
        .victim_suffixes_for_prefix("soc", None, &prefix(&h_b))
        .await
        .unwrap();
    assert!(got.contains(&h_b[5..].to_string()));
    // Uppercase prefixes mean the same.
    let upper = HashPrefix::parse(&h_a[..5].to_uppercase()).unwrap();
    assert_eq!(
        s.victim_suffixes_for_prefix("bank-a", Some("a"), &upper)
            .await
            .unwrap(),
        s.victim_suffixes_for_prefix("bank-a", Some("a"), &prefix(&h_a))
            .await
            .unwrap()
    );
    let audit = s
        .query_audit(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audit[0].action, "lookup_victims");
    assert!(audit[0].subject.contains(&h_a[..5]));
});

on_every_backend!(audit_pages_newest_first, |s: Store| async move {
    for i in 0..5 {
        s.audit(if i % 2 == 0 { "x" } else { "y" }, "act", &i.to_string())
            .await
            .unwrap();
    }
    let page1 = s
        .query_audit(&AuditQuery {
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page1.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>(),
        ["4", "3"]
    );
    let page2 = s
        .query_audit(&AuditQuery {
            before_id: Some(page1[1].id),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page2.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>(),
        ["2", "1", "0"]
    );
    let xs = s
        .query_audit(&AuditQuery {
            actor: Some("x".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        xs.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>(),
        ["4", "2", "0"]
    );
    assert_eq!(s.audit_count().await.unwrap(), 5);
});

on_every_backend!(metrics_follow_the_outbox_and_acks, |s: Store| async move {
    let empty = s.alert_metrics().await.unwrap();
    assert!(empty.alerts_by_status.is_empty() && empty.detected_to_delivered_us.is_empty());
    two_banks(&s).await;
    let alerts = s.alerts_since("soc", None, 0, 10).await.unwrap();
    let at = |t| Attempt {
        at: t,
        http_status: Some(500),
        error: Some("HTTP 500".into()),
        duration_us: 1,
        next: AttemptNext::RetryAt(t + 1),
    };
    s.record_attempt(alerts[0].id, &at(1_500)).await.unwrap();
    s.record_attempt(
        alerts[0].id,
        &Attempt {
            at: 1_700,
            http_status: Some(200),
            error: None,
            duration_us: 1,
            next: AttemptNext::Delivered,
        },
    )
    .await
    .unwrap();
    s.record_attempt(
        alerts[2].id,
        &Attempt {
            next: AttemptNext::Dead,
            ..at(1_800)
        },
    )
    .await
    .unwrap();
    s.ack_alert("bank-a", "a", alerts[0].id, AckStatus::Frozen, "")
        .await
        .unwrap()
        .unwrap();
    let m = s.alert_metrics().await.unwrap();
    assert_eq!(
        m.alerts_by_status,
        vec![
            ("dead".to_string(), 1),
            ("delivered".to_string(), 1),
            ("pending".to_string(), 2)
        ]
    );
    assert_eq!((m.delivery_attempts, m.delivery_failures), (3, 2));
    assert_eq!(m.detected_to_delivered_us, vec![700]);
    assert_eq!(m.detected_to_ack_us.len(), 1);
    assert_eq!(m.detected_to_ack_us[0].0, AckStatus::Frozen);
    assert!(m.detected_to_ack_us[0].1 > 0);
});

/// Victims stored before `account_hash` existed get it when the store opens, and the lookup
/// (a range scan on that column) finds them.
#[tokio::test]
async fn lookup_hashes_are_filled_in_for_older_rows() {
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_data_dir(dir.path()).await.unwrap();
    two_banks(&s).await;
    s.close().await;
    // As a store from before the column: no hashes.
    let url = format!("sqlite://{}", dir.path().join("dropwatch.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    conn.execute("UPDATE victims SET account_hash = NULL")
        .await
        .unwrap();
    conn.close().await.unwrap();

    let s = Store::open_data_dir(dir.path()).await.unwrap();
    let h = account_hash("1111111");
    let got = s
        .victim_suffixes_for_prefix("bank-a", Some("a"), &HashPrefix::parse(&h[..5]).unwrap())
        .await
        .unwrap();
    assert_eq!(got, vec![h[5..].to_string()]);
    s.close().await;
}
