//! `Store::intel_snapshot` on SQLite and PostgreSQL: the aggregates the sharing exports read,
//! checked against data whose counts are known, and checked to carry no victim data.

use dropwatch_model::{AnalyzedRecord, Inject, MaskedSecret, SecretKind, ServerRole, Urgency};
use dropwatch_store::{IngestBatch, NewConfig, Store};
use dropwatch_testkit::backends::Backends;
use dropwatch_testkit::fixtures::bank;

fn record(
    fp: &str,
    inst: Option<&str>,
    account: Option<&str>,
    bot: &str,
    botnet: &str,
) -> AnalyzedRecord {
    AnalyzedRecord {
        fingerprint: fp.into(),
        external_id: None,
        bot_id: bot.into(),
        botnet: botnet.into(),
        url: format!("https://ib.{}.example/login", inst.unwrap_or("mail")),
        institution_id: inst.map(String::from),
        account: account.map(String::from),
        account_norm: account.map(String::from),
        secrets: vec![MaskedSecret {
            kind: SecretKind::Password,
            field: "pw".into(),
            length: 9,
            hmac: format!("hmac-{fp}"),
        }],
        other_fields: vec![],
        urgency: Urgency::High,
        mule_accounts: vec![],
    }
}

fn inject(mask: &str) -> Inject {
    Inject {
        url_mask: mask.into(),
        ..Inject::default()
    }
}

async fn populate(s: &Store) {
    for id in ["aka", "ao", "kiiro"] {
        s.upsert_institution(&bank(id)).await.unwrap();
    }
    // A webinjects file targeting aka and ao reveals a drop.
    let sample = s
        .upsert_sample(&"ab".repeat(32), "webinjects", Some("net7.txt"))
        .await
        .unwrap();
    s.insert_injects(
        sample,
        &[
            (inject("https://ib.aka.example/*"), Some("aka".into())),
            (inject("https://ib.ao.example/*"), Some("ao".into())),
            (inject("https://mail.example/*"), None),
        ],
    )
    .await
    .unwrap();
    let provenance = format!("webinjects:{}", "ab".repeat(32));
    let drop = s
        .upsert_server(
            "http://drop.example/gate.php",
            "drop.example",
            ServerRole::Drop,
            &provenance,
        )
        .await
        .unwrap();
    s.upsert_server(
        "http://drop.example/js/a.js",
        "drop.example",
        ServerRole::ScriptHost,
        &provenance,
    )
    .await
    .unwrap();
    let source = s
        .add_monitor_source(Some(drop), "http_jsonl", "http://drop.example/gate.php")
        .await
        .unwrap();
    // Records: aka x3 (2 victims), ao x1, one unattributed webmail grab.
    let batch = |records: Vec<AnalyzedRecord>, at: i64| IngestBatch {
        source_id: Some(source),
        fetched_at: at,
        records,
        ..IngestBatch::default()
    };
    s.ingest(&batch(
        vec![
            record(
                "f1",
                Some("aka"),
                Some("ACCT-AKA-1"),
                "BOT-SECRET-1",
                "net7",
            ),
            record(
                "f2",
                Some("aka"),
                Some("ACCT-AKA-1"),
                "BOT-SECRET-1",
                "net7",
            ),
            record("f3", Some("ao"), Some("ACCT-AO-1"), "BOT-SECRET-2", "net7"),
        ],
        1_000_000,
    ))
    .await
    .unwrap();
    s.ingest(&batch(
        vec![
            record(
                "f4",
                Some("aka"),
                Some("ACCT-AKA-2"),
                "BOT-SECRET-3",
                "net7",
            ),
            record("f5", None, None, "BOT-SECRET-4", "net7"),
        ],
        5_000_000,
    ))
    .await
    .unwrap();
    // A config of the same botnet names the family and a C2 gate.
    let cfg_sample = s
        .upsert_sample(&"cd".repeat(32), "config_bin", Some("cfg.bin"))
        .await
        .unwrap();
    let cfg = s
        .insert_config(&NewConfig {
            sample_id: Some(cfg_sample),
            family: "zeus".into(),
            version: Some("2.0.8.9".into()),
            botnet: Some("net7".into()),
            body: serde_json::json!({"botnet": "net7"}),
            targets: vec!["https://ib.kiiro.example/*".into()],
        })
        .await
        .unwrap();
    s.upsert_server(
        "http://203.0.113.5/gate.php",
        "203.0.113.5",
        ServerRole::C2Gate,
        &format!("config:{}", cfg.canonical_hash),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn intel_snapshot_aggregates_without_victim_data() {
    let b = Backends::new("intel suite").await;
    for s in &b.stores {
        eprintln!(
            "intel_snapshot_aggregates_without_victim_data: {:?}",
            s.backend()
        );
        populate(s).await;
        let snap = s.intel_snapshot("test").await.unwrap();

        assert_eq!(snap.servers.len(), 3);
        let drop = snap
            .servers
            .iter()
            .find(|x| x.server.role == ServerRole::Drop)
            .unwrap();
        assert_eq!(drop.records.n_records, 5);
        assert_eq!(drop.records.n_victims, 3);
        assert_eq!(drop.records.first_at, Some(1_000_000));
        assert_eq!(drop.records.last_at, Some(5_000_000));
        let script = snap
            .servers
            .iter()
            .find(|x| x.server.role == ServerRole::ScriptHost)
            .unwrap();
        assert_eq!(
            script.records.n_records, 0,
            "no source watches the script host"
        );

        let per_inst: Vec<(&str, i64, i64)> = snap
            .server_institutions
            .iter()
            .map(|h| {
                (
                    h.institution_id.as_str(),
                    h.records.n_records,
                    h.records.n_victims,
                )
            })
            .collect();
        assert_eq!(per_inst, vec![("aka", 3, 2), ("ao", 1, 1)]);

        let mut targets: Vec<(i64, &str)> = snap
            .server_targets
            .iter()
            .map(|t| (t.server_id, t.institution_id.as_str()))
            .collect();
        targets.sort();
        assert_eq!(
            targets,
            vec![
                (drop.server.id, "aka"),
                (drop.server.id, "ao"),
                (script.server.id, "aka"),
                (script.server.id, "ao")
            ]
        );

        let c2 = snap
            .servers
            .iter()
            .find(|x| x.server.role == ServerRole::C2Gate)
            .unwrap();
        let botnets: Vec<(i64, Option<&str>, Option<&str>, i64)> = snap
            .server_botnets
            .iter()
            .map(|x| {
                (
                    x.server_id,
                    x.family.as_deref(),
                    x.botnet.as_deref(),
                    x.n_records,
                )
            })
            .collect();
        assert!(
            botnets.contains(&(drop.server.id, None, Some("net7"), 5)),
            "{botnets:?}"
        );
        assert!(
            botnets.contains(&(c2.server.id, Some("zeus"), Some("net7"), 0)),
            "{botnets:?}"
        );

        assert_eq!(snap.configs.len(), 1);
        assert_eq!(
            (snap.configs[0].family.as_str(), snap.configs[0].n_configs),
            ("zeus", 1)
        );
        let kinds: Vec<(&str, Option<&str>)> = snap
            .samples
            .iter()
            .map(|x| (x.kind.as_str(), x.family.as_deref()))
            .collect();
        assert!(kinds.contains(&("webinjects", None)));
        assert!(kinds.contains(&("config_bin", Some("zeus"))));

        let inst: Vec<(&str, i64, i64, i64)> = snap
            .institutions
            .iter()
            .map(|i| {
                (
                    i.institution.id.as_str(),
                    i.n_injects,
                    i.n_victims,
                    i.records.n_records,
                )
            })
            .collect();
        assert_eq!(
            inst,
            vec![("aka", 1, 2, 3), ("ao", 1, 1, 1), ("kiiro", 0, 0, 0)]
        );
        assert!(snap
            .institutions
            .iter()
            .all(|i| i.institution.account_fields.is_empty()));

        // No victim data: no account, bot id or secret hash anywhere in what was read.
        let text = serde_json::to_string(&snap).unwrap();
        for needle in ["ACCT-", "BOT-SECRET", "hmac-", "ib.aka.example/login"] {
            assert!(!text.contains(needle), "{needle} in the snapshot");
        }
        // The read is audited.
        let audit = s.list_audit(5).await.unwrap();
        assert!(audit
            .iter()
            .any(|a| a.action == "read_intel" && a.actor == "test"));
    }
    b.finish().await;
}

#[tokio::test]
async fn intel_snapshot_of_an_empty_store() {
    let b = Backends::new("intel suite empty").await;
    for s in &b.stores {
        let snap = s.intel_snapshot("test").await.unwrap();
        assert!(snap.servers.is_empty() && snap.samples.is_empty() && snap.configs.is_empty());
        assert!(snap.institutions.is_empty());
    }
    b.finish().await;
}
