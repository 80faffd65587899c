//! `dropwatch config extract` and `dropwatch ingest` of its report, on the public ZeuS 2.0.8.9
//! config.bin (built with the key `secret key`; see `crates/config/tests/data/README.md`).
//!
//! The analysis-machine workflow: extract to JSON on one machine, carry the report, ingest it
//! into the production store, where it must land exactly as `config extract --store` lands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dropwatch_model::ServerRole;
use dropwatch_store::Store;
use serde_json::Value;

fn corpus_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/tests/data/config.bin")
}

fn dropwatch(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dropwatch"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run dropwatch")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn store(dir: &Path) -> Store {
    Store::open_data_dir(dir).await.unwrap()
}

#[tokio::test]
async fn a_carried_report_lands_like_extract_store() {
    let work = tempfile::tempdir().unwrap();
    let config = corpus_config();
    let config = config.to_str().unwrap();

    // On the analysis machine: the report, with its sample's hash.
    let analysis = work.path().join("analysis");
    let out = dropwatch(
        &analysis,
        &[
            "config",
            "extract",
            config,
            "--key-text",
            "secret key",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let samples = report["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0]["kind"], "config_bin");
    assert_eq!(samples[0]["name"], "config.bin");
    let sha = samples[0]["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha.len(), 64);
    let c2: Vec<String> = report["c2_urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(!c2.is_empty(), "the corpus config names a C2 gate");
    let report_file = work.path().join("report.json");
    std::fs::write(&report_file, &out.stdout).unwrap();

    // In production: ingest the report. Twice: the second time it is already known.
    let prod = work.path().join("prod");
    let first = dropwatch(&prod, &["ingest", report_file.to_str().unwrap()]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("(new;"),
        "{}",
        text(&first.stdout)
    );
    let again = dropwatch(&prod, &["ingest", report_file.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("already known"));

    // The same config stored directly, in a third store.
    let direct = work.path().join("direct");
    let out = dropwatch(
        &direct,
        &[
            "config",
            "extract",
            config,
            "--key-text",
            "secret key",
            "--store",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let (p, d) = (store(&prod).await, store(&direct).await);
    let (pc, dc) = (
        p.list_configs().await.unwrap(),
        d.list_configs().await.unwrap(),
    );
    assert_eq!(pc.len(), 1);
    assert_eq!(dc.len(), 1);
    assert_eq!(pc[0].canonical_hash, dc[0].canonical_hash);
    let servers = |rows: Vec<dropwatch_store::ServerRow>| {
        let mut v: Vec<(String, ServerRole, Vec<String>)> = rows
            .into_iter()
            .map(|s| (s.url, s.role, s.sources))
            .collect();
        v.sort();
        v
    };
    let ps = servers(p.list_servers().await.unwrap());
    assert_eq!(ps, servers(d.list_servers().await.unwrap()));
    for url in &c2 {
        assert!(
            ps.iter()
                .any(|(u, r, _)| u == url && *r == ServerRole::C2Gate),
            "C2 gate {url} stored"
        );
    }
    let stats = (p.stats().await.unwrap(), d.stats().await.unwrap());
    assert_eq!(stats.0.injects, stats.1.injects);
    assert!(stats.0.injects > 0, "the corpus config carries injects");
    p.close().await;
    d.close().await;
}

#[test]
fn a_bad_report_or_key_is_one_line_and_exit_2() {
    let work = tempfile::tempdir().unwrap();
    let config = corpus_config();
    let out = dropwatch(
        work.path(),
        &[
            "config",
            "extract",
            config.to_str().unwrap(),
            "--key-text",
            "wrong key",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    // A report whose sample hash is not a SHA-256 is refused, not stored.
    let out = dropwatch(
        work.path(),
        &[
            "config",
            "extract",
            config.to_str().unwrap(),
            "--key-text",
            "secret key",
            "--format",
            "json",
        ],
    );
    let mut report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["samples"][0]["sha256"] = Value::from("not-a-hash");
    let bad = work.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&report).unwrap()).unwrap();
    let out = dropwatch(work.path(), &["ingest", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not a SHA-256"));
}
