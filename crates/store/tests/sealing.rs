//! Secrets at rest: webhook keys and drop passwords are sealed under the deployment's seal key,
//! never in the database in clear; a process with another key is refused. SQLite and PostgreSQL.

use dropwatch_model::{AnalyzedRecord, Urgency};
use dropwatch_store::{IngestBatch, SealError, SealKey, Store, StoreError, CREDENTIAL_UNOPENABLE};
use dropwatch_testkit::backends::Backends;
use dropwatch_testkit::fixtures::bank;
use sqlx::{AnyConnection, Connection, Executor, Row};

const WEBHOOK_KEY: &str = "whsec-3f9a1c77d2e04b8b";
const PANEL_PASSWORD: &str = "pAnel-pw-77";

async fn raw(url: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(url).await.unwrap()
}

async fn scalar(conn: &mut AnyConnection, sql: &str) -> String {
    conn.fetch_one(sql).await.unwrap().try_get(0).unwrap()
}

/// Every text column of the tables that hold secrets, as one string.
async fn dump(conn: &mut AnyConnection) -> String {
    let mut out = String::new();
    for sql in [
        "SELECT id || ' ' || COALESCE(webhook_url, '') || ' ' || COALESCE(webhook_secret, '') FROM institutions",
        "SELECT kind || ' ' || url || ' ' || COALESCE(credential, '') FROM monitor_sources",
    ] {
        for row in conn.fetch_all(sql).await.unwrap() {
            out.push_str(&row.try_get::<String, _>(0).unwrap());
            out.push('\n');
        }
    }
    out
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_open_for_use() {
    let b = Backends::new("sealing").await;
    for (s, url) in b.stores.iter().zip(&b.urls) {
        eprintln!("{:?}", s.backend());
        s.upsert_institution(&bank("bank-a")).await.unwrap();
        s.set_webhook("bank-a", "https://hooks.a.example/dw", WEBHOOK_KEY)
            .await
            .unwrap();
        let panel = format!("mysql://root:{PANEL_PASSWORD}@203.0.113.7:3306/cit_panel");
        let id = s
            .add_monitor_source(None, "panel_db", &panel)
            .await
            .unwrap();

        // In use, the secrets are there.
        assert_eq!(
            s.webhook("bank-a").await.unwrap(),
            Some((
                "https://hooks.a.example/dw".to_string(),
                WEBHOOK_KEY.to_string()
            ))
        );
        let source = s.monitor_source(id).await.unwrap().unwrap();
        assert_eq!(source.connect_url(), panel);
        assert_eq!(source.url, "mysql://root@203.0.113.7:3306/cit_panel");
        assert!(!format!("{source:?}").contains(PANEL_PASSWORD));
        assert!(!serde_json::to_string(&source)
            .unwrap()
            .contains(PANEL_PASSWORD));
        assert_eq!(
            s.list_monitor_sources().await.unwrap()[0].connect_url(),
            panel
        );

        // At rest, they are not.
        let mut conn = raw(url).await;
        let rows = dump(&mut conn).await;
        assert!(!rows.contains(WEBHOOK_KEY), "{rows}");
        assert!(!rows.contains(PANEL_PASSWORD), "{rows}");
        assert!(
            rows.contains("mysql://root@203.0.113.7:3306/cit_panel"),
            "{rows}"
        );
        assert!(scalar(&mut conn, "SELECT webhook_secret FROM institutions")
            .await
            .starts_with("sealed:v1:"));

        // Adding the same source again, with a new password: one source, the new password.
        let moved = "mysql://root:n3w-pw@203.0.113.7:3306/cit_panel".to_string();
        assert_eq!(
            s.add_monitor_source(None, "panel_db", &moved)
                .await
                .unwrap(),
            id
        );
        assert_eq!(
            s.monitor_source(id).await.unwrap().unwrap().connect_url(),
            moved
        );
        // ...and without one: the password stays.
        assert_eq!(
            s.add_monitor_source(None, "panel_db", "mysql://root@203.0.113.7:3306/cit_panel")
                .await
                .unwrap(),
            id
        );
        assert_eq!(
            s.monitor_source(id).await.unwrap().unwrap().connect_url(),
            moved
        );

        // A sealed value moved to another row does not open there.
        s.upsert_institution(&bank("bank-b")).await.unwrap();
        conn.execute(
            "UPDATE institutions SET webhook_url = 'https://hooks.b.example/dw',
               webhook_secret = (SELECT webhook_secret FROM institutions WHERE id = 'bank-a')
             WHERE id = 'bank-b'",
        )
        .await
        .unwrap();
        let err = s.webhook("bank-b").await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Seal {
                    source: SealError::WrongKey,
                    ..
                }
            ),
            "{err:?}"
        );
        // A source whose sealed password does not open (moved from another row) is shown as
        // such and left out of polling; the other sources are listed as before.
        let other = s
            .add_monitor_source(None, "panel_db", "mysql://u:pw2@198.51.100.9/q")
            .await
            .unwrap();
        conn.execute(
            format!(
                "UPDATE monitor_sources SET credential = (SELECT credential FROM monitor_sources WHERE id = {id}) WHERE id = {other}"
            )
            .as_str(),
        )
        .await
        .unwrap();
        let listed = s.list_monitor_sources().await.unwrap();
        let bad = listed.iter().find(|x| x.id == other).unwrap();
        assert_eq!(bad.state, CREDENTIAL_UNOPENABLE);
        assert_eq!(bad.credential, None);
        let good = listed.iter().find(|x| x.id == id).unwrap();
        assert_eq!(good.state, "active");
        conn.close().await.unwrap();
    }
    b.finish().await;
}

#[tokio::test]
async fn another_seal_key_is_refused_and_no_key_seals_nothing() {
    let b = Backends::new("sealing keys").await;
    for (s, url) in b.stores.iter().zip(&b.urls) {
        eprintln!("{:?}", s.backend());
        // The deployment's key is recorded; a process with another key is refused.
        let other = Store::connect(url)
            .await
            .unwrap()
            .with_seal_key(SealKey::from_bytes([0xEE; 32]))
            .await
            .unwrap_err();
        assert!(
            matches!(&other, StoreError::KeyMismatch { purpose, .. } if purpose == "seal"),
            "{other:?}"
        );
        // The HMAC key is checked the same way, by its fingerprint.
        s.check_key("hmac", "aaaa").await.unwrap();
        s.check_key("hmac", "aaaa").await.unwrap();
        assert!(matches!(
            s.check_key("hmac", "bbbb").await,
            Err(StoreError::KeyMismatch { .. })
        ));

        // A store without a seal key writes no secret at all.
        let keyless = Store::connect(url).await.unwrap();
        keyless.upsert_institution(&bank("bank-a")).await.unwrap();
        let err = keyless
            .set_webhook("bank-a", "https://hooks.a.example/dw", WEBHOOK_KEY)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Seal {
                    source: SealError::NoKey,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(keyless
            .add_monitor_source(None, "panel_db", "mysql://root:pw@203.0.113.7/p")
            .await
            .is_err());
        keyless.close().await;
    }
    b.finish().await;
}

#[tokio::test]
async fn secrets_written_in_clear_before_sealing_are_sealed_on_open() {
    let b = Backends::new("sealing legacy").await;
    for (s, url) in b.stores.iter().zip(&b.urls) {
        eprintln!("{:?}", s.backend());
        s.upsert_institution(&bank("bank-a")).await.unwrap();
        // As a store from before sealing left them: the key and the password in clear.
        let mut conn = raw(url).await;
        conn.execute(
            format!(
                "UPDATE institutions SET webhook_url = 'https://hooks.a.example/dw', webhook_secret = '{WEBHOOK_KEY}'"
            )
            .as_str(),
        )
        .await
        .unwrap();
        conn.execute(
            format!(
                "INSERT INTO monitor_sources (kind, url, created_at)
                 VALUES ('panel_db', 'mysql://root:{PANEL_PASSWORD}@203.0.113.7/p', 0)"
            )
            .as_str(),
        )
        .await
        .unwrap();
        // The same panel added again after its password changed: a second, newer legacy row.
        conn.execute(
            "INSERT INTO monitor_sources (kind, url, created_at)
             VALUES ('panel_db', 'mysql://root:n3w-pAnel-pw@203.0.113.7/p', 0)",
        )
        .await
        .unwrap();
        // An alert written then names the source, password and all.
        let alerting = AnalyzedRecord {
            fingerprint: "fp-legacy".into(),
            external_id: None,
            bot_id: "BOT".into(),
            botnet: "net".into(),
            url: "https://ib.a.example/login".into(),
            institution_id: Some("bank-a".into()),
            account: Some("1234567".into()),
            account_norm: Some("1234567".into()),
            secrets: vec![],
            other_fields: vec![],
            urgency: Urgency::High,
            mule_accounts: vec![],
        };
        let out = s
            .ingest(&IngestBatch {
                fetched_at: 1,
                source_server: Some(format!("mysql://root:{PANEL_PASSWORD}@203.0.113.7/p")),
                records: vec![alerting],
                ..IngestBatch::default()
            })
            .await
            .unwrap();
        assert_eq!(out.alerts, 1);
        assert!(dump(&mut conn).await.contains(WEBHOOK_KEY));

        // The next process that opens it with the deployment's key seals them.
        let key = b.seal_key();
        let reopened = Store::connect(url)
            .await
            .unwrap()
            .with_seal_key(key)
            .await
            .unwrap();
        let rows = dump(&mut conn).await;
        assert!(!rows.contains(WEBHOOK_KEY), "{rows}");
        assert!(!rows.contains(PANEL_PASSWORD), "{rows}");
        assert!(!rows.contains("n3w-pAnel-pw"), "{rows}");
        let payloads = scalar(&mut conn, "SELECT payload FROM alerts").await;
        assert!(!payloads.contains(PANEL_PASSWORD), "{payloads}");
        assert!(
            payloads.contains("mysql://root@203.0.113.7/p"),
            "{payloads}"
        );
        assert_eq!(
            reopened.webhook("bank-a").await.unwrap().unwrap().1,
            WEBHOOK_KEY
        );
        // The newer password keeps the plain URL; the older row is renamed with a fragment and
        // paused, its password sealed too.
        let sources = reopened.list_monitor_sources().await.unwrap();
        assert_eq!(sources[1].url, "mysql://root@203.0.113.7/p");
        assert_eq!(
            sources[1].connect_url(),
            "mysql://root:n3w-pAnel-pw@203.0.113.7/p"
        );
        assert_eq!(
            sources[0].url,
            format!("mysql://root@203.0.113.7/p#source-{}", sources[0].id)
        );
        assert_eq!(sources[0].state, "paused");
        assert_eq!(
            sources[0].connect_url(),
            format!(
                "mysql://root:{PANEL_PASSWORD}@203.0.113.7/p#source-{}",
                sources[0].id
            )
        );
        reopened.close().await;
        conn.close().await.unwrap();
    }
    b.finish().await;
}
