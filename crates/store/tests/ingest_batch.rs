//! Batched ingestion against an independent model of what it must do, on SQLite and PostgreSQL:
//! batches far larger than one statement's parameter limit, duplicates inside and across
//! batches, many records per victim, concurrent writers sharing victims, and the lease fence.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dropwatch_model::{
    AlertPayload, AlertReason, AnalyzedRecord, MaskedSecret, SecretKind, Urgency,
};
use dropwatch_store::{BadRecords, IngestBatch, LeaseFence, Store, StoreError, MAX_PARAMS};
use dropwatch_testkit::backends::Backends;
use dropwatch_testkit::fixtures::bank;
use rand::{Rng, SeedableRng};

const BANKS: [&str; 3] = ["a", "b", "c"];

/// `n` records over a few hundred victims of three banks; some unattributed, some repeated.
fn records(seed: u64, n: usize) -> Vec<AnalyzedRecord> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out: Vec<AnalyzedRecord> = Vec::with_capacity(n);
    for i in 0..n {
        if i > 0 && rng.random_bool(0.05) {
            // A duplicate of an earlier record (the same stolen data served twice).
            let j = rng.random_range(0..out.len());
            out.push(out[j].clone());
            continue;
        }
        let attributed = rng.random_bool(0.9);
        let bank = BANKS[rng.random_range(0..BANKS.len())];
        let account = format!(
            "{:03}-{:04}",
            rng.random_range(0..3),
            rng.random_range(0..150)
        );
        let kinds: BTreeSet<SecretKind> = (0..rng.random_range(0..3))
            .map(|_| SecretKind::ALL[rng.random_range(0..SecretKind::ALL.len())])
            .collect();
        let kinds: Vec<SecretKind> = kinds.into_iter().collect();
        let fp = format!("s{seed}-r{i}");
        out.push(AnalyzedRecord {
            secrets: kinds
                .iter()
                .map(|&kind| MaskedSecret {
                    kind,
                    field: kind.as_str().into(),
                    length: 6,
                    hmac: format!("{fp}{}", kind.as_str()),
                })
                .collect(),
            fingerprint: fp,
            external_id: Some(i.to_string()),
            bot_id: format!("BOT_{}", i % 17),
            botnet: "net".into(),
            url: format!("https://ib.{bank}.example/login"),
            institution_id: attributed.then(|| bank.to_string()),
            account_norm: attributed.then(|| account.replace('-', "")),
            account: attributed.then_some(account),
            urgency: Urgency::from_exposed(&kinds),
            other_fields: vec![],
            mule_accounts: vec![],
        });
    }
    out
}

/// What ingesting `records` in this order must produce, computed the simple way.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    new_records: u64,
    duplicates: u64,
    unattributed: u64,
    /// (institution, account_norm) → (n_records, exposed)
    victims: BTreeMap<(String, String), (i64, Vec<SecretKind>)>,
    /// (institution, account_norm, reason) → count
    alerts: BTreeMap<(String, String, &'static str), u64>,
}

fn model(batches: &[&[AnalyzedRecord]]) -> Expected {
    let mut e = Expected::default();
    let mut seen = BTreeSet::new();
    for batch in batches {
        for r in *batch {
            if !seen.insert(r.fingerprint.clone()) {
                e.duplicates += 1;
                continue;
            }
            e.new_records += 1;
            let (Some(inst), Some(norm)) = (&r.institution_id, &r.account_norm) else {
                e.unattributed += 1;
                continue;
            };
            let key = (inst.clone(), norm.clone());
            let reason = match e.victims.get_mut(&key) {
                None => {
                    e.victims.insert(key.clone(), (1, r.exposed()));
                    Some(AlertReason::NewVictim)
                }
                Some((n, exposed)) => {
                    *n += 1;
                    let before = exposed.len();
                    exposed.extend(r.exposed());
                    exposed.sort();
                    exposed.dedup();
                    (exposed.len() > before).then_some(AlertReason::NewExposure)
                }
            };
            if let Some(reason) = reason {
                *e.alerts.entry((key.0, key.1, reason.as_str())).or_default() += 1;
            }
        }
    }
    e
}

/// What the store holds, in the model's terms.
async fn observed(s: &Store, outcome: (u64, u64, u64)) -> Expected {
    let mut e = Expected {
        new_records: outcome.0,
        duplicates: outcome.1,
        unattributed: outcome.2,
        ..Expected::default()
    };
    for v in s.list_victims("analyst:test", None).await.unwrap() {
        e.victims.insert(
            (v.institution_id.clone(), v.account_norm.clone()),
            (v.n_records, v.exposed.clone()),
        );
    }
    for b in BANKS {
        s.set_webhook(b, "http://127.0.0.1:9/hook", "k")
            .await
            .unwrap();
    }
    let due = s.due_alerts(i64::MAX, 1_000_000).await.unwrap();
    let mut ids = BTreeSet::new();
    for a in &due {
        let p: AlertPayload = serde_json::from_str(&a.payload).unwrap();
        assert_eq!(p.alert_id, a.id, "the payload carries its own alert's id");
        assert!(ids.insert(p.idempotency_key.clone()));
        let norm = p.account.replace('-', "");
        *e.alerts
            .entry((p.institution_id.clone(), norm, p.reason.as_str()))
            .or_default() += 1;
    }
    e
}

async fn setup(s: &Store) {
    for b in BANKS {
        s.upsert_institution(&bank(b)).await.unwrap();
    }
}

fn batch(records: &[AnalyzedRecord]) -> IngestBatch {
    IngestBatch {
        fetched_at: 1,
        records: records.to_vec(),
        ..IngestBatch::default()
    }
}

#[tokio::test]
async fn batches_larger_than_a_statement_match_the_model() {
    let b = Backends::new("ingest batch").await;
    // 14 parameters per record: this many records needs several statements per batch.
    let n = MAX_PARAMS / 14 * 2 + 321;
    for s in &b.stores {
        eprintln!("{:?}", s.backend());
        setup(s).await;
        let recs = records(11, n);
        let (first, second) = recs.split_at(n * 2 / 3);
        let mut totals = (0, 0, 0);
        for part in [first, second, first] {
            let out = s.ingest(&batch(part)).await.unwrap();
            totals.0 += out.new_records;
            totals.1 += out.duplicate_records;
            totals.2 += out.unattributed;
        }
        let expected = model(&[first, second, first]);
        assert!(expected.victims.len() > 300, "the data must share victims");
        assert!(
            expected.alerts.keys().any(|k| k.2 == "new_exposure"),
            "the data must escalate some victims"
        );
        assert_eq!(observed(s, totals).await, expected);
    }
    b.finish().await;
}

#[tokio::test]
async fn one_record_per_batch_and_one_batch_agree() {
    let b = Backends::new("ingest batch").await;
    for s in &b.stores {
        setup(s).await;
        let recs = records(5, 400);
        let mut totals = (0, 0, 0);
        for r in &recs {
            let out = s.ingest(&batch(std::slice::from_ref(r))).await.unwrap();
            totals.0 += out.new_records;
            totals.1 += out.duplicate_records;
            totals.2 += out.unattributed;
        }
        assert_eq!(observed(s, totals).await, model(&[&recs]));
    }
    b.finish().await;
}

#[tokio::test]
async fn concurrent_writers_sharing_victims_lose_nothing() {
    let b = Backends::new("ingest batch").await;
    for s in &b.stores {
        eprintln!("{:?}", s.backend());
        setup(s).await;
        // Eight writers, disjoint records, the same few hundred victims.
        let all: Vec<Vec<AnalyzedRecord>> = (0..8).map(|w| records(100 + w, 600)).collect();
        let mut tasks = Vec::new();
        for recs in all.clone() {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut t = (0u64, 0u64, 0u64);
                for chunk in recs.chunks(150) {
                    let out = s.ingest(&batch(chunk)).await.unwrap();
                    t.0 += out.new_records;
                    t.1 += out.duplicate_records;
                    t.2 += out.unattributed;
                }
                t
            }));
        }
        let mut totals = (0, 0, 0);
        for t in tasks {
            let t = t.await.unwrap();
            totals.0 += t.0;
            totals.1 += t.1;
            totals.2 += t.2;
        }
        let got = observed(s, totals).await;
        let slices: Vec<&[AnalyzedRecord]> = all.iter().map(|v| v.as_slice()).collect();
        let want = model(&slices);
        // Interleaving decides which record escalates a victim, not what the victims are.
        assert_eq!(
            (got.new_records, got.duplicates, got.unattributed),
            (want.new_records, want.duplicates, want.unattributed)
        );
        assert_eq!(got.victims, want.victims);
        let new_victim_alerts: HashMap<_, _> = got
            .alerts
            .iter()
            .filter(|(k, _)| k.2 == "new_victim")
            .map(|(k, n)| ((k.0.clone(), k.1.clone()), *n))
            .collect();
        assert_eq!(new_victim_alerts.len(), want.victims.len());
        assert!(
            new_victim_alerts.values().all(|&n| n == 1),
            "one new-victim alert per victim"
        );
        for ((inst, norm, reason), n) in &got.alerts {
            if *reason == "new_exposure" {
                let exposed = &want.victims[&(inst.clone(), norm.clone())].1;
                assert!(
                    (*n as usize) <= exposed.len(),
                    "an escalation adds a kind of secret"
                );
            }
        }
    }
    b.finish().await;
}

#[tokio::test]
async fn a_batch_without_the_lease_writes_nothing() {
    let b = Backends::new("ingest batch").await;
    for s in &b.stores {
        setup(s).await;
        let src = s
            .add_monitor_source(None, "http_jsonl", "http://d.example/r")
            .await
            .unwrap();
        let mut fenced = batch(&records(3, 50));
        fenced.source_id = Some(src);
        fenced.cursor = Some("4096".into());
        fenced.lease = Some(LeaseFence {
            owner: "worker-that-never-claimed".into(),
            epoch: 1,
        });
        fenced.bad_records = BadRecords {
            count: 3,
            last_position: Some(777),
            replace: false,
        };
        match s.ingest(&fenced).await {
            Err(StoreError::LeaseLost { source_id }) => assert_eq!(source_id, src),
            other => panic!("expected LeaseLost, got {other:?}"),
        }
        let stats = s.stats().await.unwrap();
        assert_eq!((stats.records, stats.victims, stats.alerts), (0, 0, 0));
        assert_eq!(s.list_monitor_sources().await.unwrap()[0].cursor, None);
        let bad = |s: Store| async move {
            let c = s.monitor_error_counts().await.unwrap()[0];
            (c.bad_records, c.last_bad_position)
        };
        assert_eq!(
            bad(s.clone()).await,
            (0, None),
            "no count without the lease"
        );
        // Without a fence the same batch goes in, with its bad-record count.
        fenced.lease = None;
        assert!(s.ingest(&fenced).await.unwrap().new_records > 0);
        assert_eq!(bad(s.clone()).await, (3, Some(777)));
        // A snapshot's count replaces the last one.
        fenced.bad_records = BadRecords {
            count: 1,
            last_position: Some(5),
            replace: true,
        };
        s.ingest(&fenced).await.unwrap();
        assert_eq!(bad(s.clone()).await, (1, Some(5)));
    }
    b.finish().await;
}

#[tokio::test]
async fn alerts_carry_the_mule_accounts_of_their_record() {
    let b = Backends::new("ingest batch").await;
    for s in &b.stores {
        setup(s).await;
        let mut recs = records(21, 30);
        recs.retain(|r| r.institution_id.is_some());
        recs.truncate(1);
        recs[0].mule_accounts = vec!["DE89370400440532013000".into()];
        assert_eq!(s.ingest(&batch(&recs)).await.unwrap().alerts, 1);
        for bank in BANKS {
            s.set_webhook(bank, "http://127.0.0.1:9/hook", "k")
                .await
                .unwrap();
        }
        let due = s.due_alerts(i64::MAX, 10).await.unwrap();
        let p: AlertPayload = serde_json::from_str(&due[0].payload).unwrap();
        assert_eq!(p.mule_accounts, vec!["DE89370400440532013000".to_string()]);
        // Without a mule the payload has no such key at all (v1 receivers see no change).
        let mut plain = records(22, 30);
        plain.retain(|r| r.institution_id.is_some() && r.institution_id != recs[0].institution_id);
        plain.truncate(1);
        s.ingest(&batch(&plain)).await.unwrap();
        let due = s.due_alerts(i64::MAX, 10).await.unwrap();
        assert!(due.iter().any(|a| !a.payload.contains("mule_accounts")));
    }
    b.finish().await;
}
