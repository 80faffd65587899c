//! The Python verification example in `docs/webhooks.md` verifies real webhooks: the block
//! marked `doc-example: verify-webhook` is extracted and run with `python3` against an alert
//! body taken from the store's outbox and signed by `dropwatch_deliver::sign`, exactly as the
//! deliverer sends it. It must accept the real body and reject tampered, stale, mis-keyed and
//! malformed ones, agreeing with `dropwatch_deliver::verify` on every case.

use std::process::Command;

use dropwatch_deliver::{sign, verify, DEFAULT_TOLERANCE_SECS};
use dropwatch_model::{AnalyzedRecord, Institution, MaskedSecret, SecretKind, Urgency};
use dropwatch_store::{IngestBatch, Store};
use serde_json::json;

const DOC: &str = include_str!("../../../docs/webhooks.md");
const MARKER: &str = "<!-- doc-example: verify-webhook";

/// The Python block that follows the marker.
fn python_example() -> &'static str {
    let after = &DOC[DOC.find(MARKER).expect("marker in docs/webhooks.md")..];
    let start = after
        .find("```python\n")
        .expect("a python block after the marker")
        + 10;
    let len = after[start..].find("\n```").expect("the block ends");
    &after[start..start + len + 1]
}

/// A real alert body: what the outbox holds for a freshly ingested victim.
async fn real_body(secret: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    store
        .upsert_institution(&Institution {
            id: "jp-example".into(),
            name: "例示銀行".into(),
            country: "JP".into(),
            domains: vec!["bank.example".into()],
            url_masks: vec![],
            account_fields: vec![],
        })
        .await
        .unwrap();
    store
        .set_webhook("jp-example", "http://127.0.0.1:9/hook", secret)
        .await
        .unwrap();
    store
        .ingest(&IngestBatch {
            fetched_at: 1,
            source_server: Some("http://drop.example/gate.php".into()),
            records: vec![AnalyzedRecord {
                fingerprint: "fp1".into(),
                external_id: Some("7".into()),
                bot_id: "WIN-7_0123".into(),
                botnet: "jpnet".into(),
                url: "https://bank.example/login".into(),
                institution_id: Some("jp-example".into()),
                account: Some("0123-4567890".into()),
                account_norm: Some("01234567890".into()),
                secrets: vec![MaskedSecret {
                    kind: SecretKind::OneTimeCode,
                    field: "otp".into(),
                    length: 6,
                    hmac: "00".repeat(32),
                }],
                other_fields: vec![],
                urgency: Urgency::Critical,
                mule_accounts: vec![],
            }],
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    let due = store.due_alerts(i64::MAX, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    store.close().await;
    due[0].payload.clone()
}

#[tokio::test]
async fn the_documented_python_example_verifies_real_webhooks() {
    let secret = "3b1f5c0e9a7d4f2b8c6e1a0d9f8b7c6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a";
    let body = real_body(secret).await;
    assert!(body.contains("例示銀行") && body.contains("0123-4567890"));
    let now: i64 = 1_795_000_000;
    let header = sign(secret.as_bytes(), now, body.as_bytes());
    let tampered = body.replace("0123-4567890", "0123-4567891");
    assert_ne!(tampered, body);
    let other_header = sign(b"another secret", now, body.as_bytes());
    let sig_of = |h: &str| h.split_once(",v1=").unwrap().1.to_string();

    // (name, secret, header, body, now, accept?)
    let cases: Vec<(&str, &str, String, &str, i64, bool)> = vec![
        ("real", secret, header.clone(), &body, now, true),
        (
            "real, 299 s later",
            secret,
            header.clone(),
            &body,
            now + 299,
            true,
        ),
        (
            "tampered body",
            secret,
            header.clone(),
            &tampered,
            now,
            false,
        ),
        (
            "wrong secret",
            "not the secret",
            header.clone(),
            &body,
            now,
            false,
        ),
        (
            "signed with another secret",
            secret,
            other_header.clone(),
            &body,
            now,
            false,
        ),
        (
            "stale",
            secret,
            header.clone(),
            &body,
            now + DEFAULT_TOLERANCE_SECS + 1,
            false,
        ),
        (
            "from the future",
            secret,
            header.clone(),
            &body,
            now - DEFAULT_TOLERANCE_SECS - 1,
            false,
        ),
        (
            "rotation: two v1, one good",
            secret,
            format!(
                "t={now},v1={},v1={}",
                sig_of(&other_header),
                sig_of(&header)
            ),
            &body,
            now,
            true,
        ),
        (
            "timestamp moved",
            secret,
            header.replace(&format!("t={now}"), &format!("t={}", now + 1)),
            &body,
            now,
            false,
        ),
        (
            "no timestamp",
            secret,
            format!("v1={}", sig_of(&header)),
            &body,
            now,
            false,
        ),
        (
            "no signature",
            secret,
            format!("t={now}"),
            &body,
            now,
            false,
        ),
        ("empty header", secret, String::new(), &body, now, false),
    ];
    for (name, s, h, b, t, want) in &cases {
        assert_eq!(
            verify(s.as_bytes(), h, b.as_bytes(), *t, DEFAULT_TOLERANCE_SECS).is_ok(),
            *want,
            "the Rust verifier disagrees on {name}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cases.json");
    let cases_json: Vec<_> = cases
        .iter()
        .map(|(_, s, h, b, t, _)| json!({ "secret": s, "header": h, "body": b, "now": t }))
        .collect();
    std::fs::write(&input, serde_json::to_vec(&cases_json).unwrap()).unwrap();
    let script = dir.path().join("verify.py");
    std::fs::write(
        &script,
        format!(
            "{}\n\nimport json, sys\nresults = [\n    verify_webhook(c['secret'].encode(), c['header'], c['body'].encode(), now=c['now'])\n    for c in json.load(open(sys.argv[1], encoding='utf-8'))\n]\nprint(json.dumps(results))\n",
            python_example()
        ),
    )
    .unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg(&input)
        .output()
        .expect("python3 runs (it is needed to test the documented example)");
    assert!(
        out.status.success(),
        "the example failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<bool> = serde_json::from_slice(&out.stdout).unwrap();
    for ((name, .., want), got) in cases.iter().zip(&got) {
        assert_eq!(got, want, "the documented example is wrong on {name}");
    }
    assert_eq!(got.len(), cases.len());
}

#[test]
fn the_example_is_found_and_self_contained() {
    let code = python_example();
    assert!(code.starts_with("import hashlib"));
    assert!(code.contains("def verify_webhook("));
    assert!(code.contains("compare_digest"), "constant-time comparison");
    assert!(!code.contains("```"));
}
