//! End-to-end: the `dropwatch` binary runs the whole chain and is checked against the
//! generator's ground truth, the receiver's webhooks and a search for leaked secrets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dropwatch_model::{AlertPayload, ServerRole};
use dropwatch_store::Store;
use dropwatch_testkit::receiver::Received;
use dropwatch_testkit::GroundTruth;

fn dropwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dropwatch"))
}

struct DemoRun {
    data: tempfile::TempDir,
    testkit: tempfile::TempDir,
    output: Output,
}

impl DemoRun {
    fn demo_dir(&self) -> PathBuf {
        self.data.path().join("demo")
    }

    fn truth(&self) -> GroundTruth {
        serde_json::from_slice(
            &std::fs::read(self.testkit.path().join("ground-truth.json")).unwrap(),
        )
        .unwrap()
    }

    fn webhooks(&self) -> Vec<Received> {
        let text =
            std::fs::read_to_string(self.demo_dir().join("receiver/webhooks.jsonl")).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn run_demo(seed: u64, env: &[(&str, &str)]) -> DemoRun {
    let data = tempfile::tempdir().unwrap();
    let testkit = tempfile::tempdir().unwrap();
    let mut cmd = dropwatch();
    cmd.arg("--data-dir")
        .arg(data.path())
        .arg("demo")
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--testkit-dir")
        .arg(testkit.path())
        .arg("--json");
    cmd.env_remove("DROPWATCH_DATABASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().unwrap();
    assert!(
        output.status.success(),
        "demo failed for seed {seed}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    DemoRun {
        data,
        testkit,
        output,
    }
}

#[tokio::test]
async fn demo_finds_exactly_the_ground_truth_and_signs_every_alert() {
    for seed in [1, 7, 2014] {
        let run = run_demo(seed, &[]);
        let truth = run.truth();
        let summary: serde_json::Value = serde_json::from_slice(&run.output.stdout).unwrap();
        assert_eq!(summary["ground_truth_match"], true, "seed {seed}");

        let store = Store::open_data_dir(&run.demo_dir()).await.unwrap();
        // Victims, checked here against the ground truth independently of the demo's own check.
        let found = dropwatch_testkit::fixtures::stored_victim_keys(&store).await;
        assert_eq!(found, truth.victim_keys(), "seed {seed}");

        // The servers the injects reveal: exactly the drops and the script hosts.
        let servers = store.list_servers().await.unwrap();
        let mut drops: Vec<String> = servers
            .iter()
            .filter(|s| s.role == ServerRole::Drop)
            .map(|s| s.url.clone())
            .collect();
        drops.sort();
        assert_eq!(drops, truth.drop_urls, "seed {seed}");
        let mut scripts: Vec<String> = servers
            .iter()
            .filter(|s| s.role == ServerRole::ScriptHost)
            .map(|s| s.url.clone())
            .collect();
        scripts.sort();
        assert_eq!(scripts, truth.script_urls, "seed {seed}");
        assert_eq!(
            servers.len(),
            drops.len() + scripts.len(),
            "no benign CDN or bank site became a server"
        );

        // Records: every distinct valid report once.
        let stats = store.stats().await.unwrap();
        assert_eq!(
            stats.records as usize, truth.distinct_reports,
            "seed {seed}"
        );
        assert_eq!(
            summary["bad_lines"].as_u64().unwrap() as usize,
            truth.malformed_lines
        );

        // Every alert reached the receiver once, with a signature that verifies under the
        // institution's secret, and says what the victim row says.
        assert_eq!(stats.alerts, stats.alerts_delivered);
        let hooks = run.webhooks();
        assert_eq!(hooks.len() as i64, stats.alerts, "seed {seed}");
        let mut keys: Vec<&str> = hooks.iter().map(|h| h.idempotency_key.as_str()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), hooks.len(), "one idempotency key per alert");
        for h in &hooks {
            let (_, secret) = store.webhook(&h.institution).await.unwrap().unwrap();
            let ts: i64 = h
                .signature
                .split(',')
                .next()
                .unwrap()
                .trim_start_matches("t=")
                .parse()
                .unwrap();
            dropwatch_deliver::verify(secret.as_bytes(), &h.signature, h.body.as_bytes(), ts, 0)
                .unwrap();
            assert!(dropwatch_deliver::verify(
                b"wrong secret",
                &h.signature,
                h.body.as_bytes(),
                ts,
                0
            )
            .is_err());
            let payload: AlertPayload = serde_json::from_str(&h.body).unwrap();
            assert_eq!(payload.schema, AlertPayload::SCHEMA);
            assert_eq!(
                payload.institution_id, h.institution,
                "an alert went to another institution"
            );
            assert!(truth.victims.iter().any(
                |v| v.institution_id == payload.institution_id && v.account == payload.account
            ));
        }
        let critical = truth
            .victims
            .iter()
            .filter(|v| v.urgency == dropwatch_model::Urgency::Critical)
            .count();
        assert_eq!(
            summary["victims_critical"].as_u64().unwrap() as usize,
            critical
        );
        assert!(summary["fetch_to_delivery"]["samples"].as_u64().unwrap() as i64 == stats.alerts);
        store.close().await;
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Where `secret` occurs in `hay` as a whole token (not inside a longer run of letters and
/// digits). Numeric secrets are short: inside a hex digest or a timestamp they would match by
/// chance, but stored or sent as a value they stand as a token of their own.
fn token_occurrences(hay: &[u8], secret: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i + secret.len() <= hay.len() {
        if &hay[i..i + secret.len()] == secret {
            let before = i.checked_sub(1).map(|j| hay[j]);
            let after = hay.get(i + secret.len()).copied();
            if !before.is_some_and(|b| b.is_ascii_alphanumeric())
                && !after.is_some_and(|b| b.is_ascii_alphanumeric())
            {
                n += 1;
            }
        }
        i += 1;
    }
    n
}

#[tokio::test]
async fn no_secret_reaches_the_store_logs_or_webhooks() {
    let run = run_demo(31, &[("RUST_LOG", "debug")]);
    let truth = run.truth();
    assert!(truth.secrets.len() > 20);
    let mut files = Vec::new();
    files_under(run.data.path(), &mut files);
    assert!(files.iter().any(|f| f.ends_with("dropwatch.db")));
    let mut haystacks: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read(f).unwrap()))
        .collect();
    haystacks.push(("stdout".into(), run.output.stdout.clone()));
    haystacks.push(("stderr (RUST_LOG=debug)".into(), run.output.stderr.clone()));
    assert!(
        !run.output.stderr.is_empty(),
        "debug logging produced nothing to search"
    );
    for h in run.webhooks() {
        haystacks.push((
            format!("webhook {}", h.idempotency_key),
            h.body.into_bytes(),
        ));
    }
    // The webhook signing keys: usable through the store with the seal key, in no file of the
    // data directory (sealed at rest), no log and no output.
    let store = Store::open_data_dir(&run.demo_dir()).await.unwrap();
    let mut keys = 0;
    for inst in store.list_institutions().await.unwrap() {
        let Some((_, key)) = store.webhook(&inst.id).await.unwrap() else {
            continue;
        };
        keys += 1;
        for (name, hay) in &haystacks {
            assert!(
                !hay.windows(key.len()).any(|w| w == key.as_bytes()),
                "webhook key of {} found in {name}",
                inst.id
            );
        }
    }
    store.close().await;
    assert!(keys > 0, "the demo set no webhook key to search for");

    // The search would find a leak: the generated drop data holds every secret.
    let mut drop_files = Vec::new();
    files_under(&run.testkit.path().join("drops"), &mut drop_files);
    let drop_data: Vec<u8> = drop_files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect();
    for secret in &truth.secrets {
        let numeric = secret.bytes().all(|b| b.is_ascii_digit());
        let encoded: String = secret
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        assert!(
            token_occurrences(&drop_data, encoded.as_bytes()) > 0,
            "the test data lacks {secret}"
        );
        for (name, hay) in &haystacks {
            if numeric {
                assert_eq!(
                    token_occurrences(hay, secret.as_bytes()),
                    0,
                    "numeric secret found in {name}"
                );
            } else {
                assert!(
                    !hay.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "password found in {name}"
                );
                assert!(
                    !hay.windows(encoded.len()).any(|w| w == encoded.as_bytes()),
                    "encoded password found in {name}"
                );
            }
        }
    }
}

#[test]
fn ingest_a_file_twice_reads_only_what_was_appended() {
    let data = tempfile::tempdir().unwrap();
    let tk = tempfile::tempdir().unwrap();
    let ok = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(dropwatch()
        .args(["testkit", "generate", "--seed", "5", "--out"])
        .arg(tk.path()));
    ok(dropwatch()
        .arg("--data-dir")
        .arg(data.path())
        .arg("institution")
        .arg("import")
        .arg(tk.path().join("registry.json")));
    let truth: GroundTruth =
        serde_json::from_slice(&std::fs::read(tk.path().join("ground-truth.json")).unwrap())
            .unwrap();
    let mut drop_files = Vec::new();
    files_under(&tk.path().join("drops"), &mut drop_files);
    let jsonl: Vec<&PathBuf> = drop_files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    let mut records = 0;
    for f in &jsonl {
        let first = ok(dropwatch()
            .arg("--data-dir")
            .arg(data.path())
            .arg("ingest")
            .arg(f));
        assert!(first.contains(" new records"), "{first}");
        records += first
            .split(" lines: ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap();
        let again = ok(dropwatch()
            .arg("--data-dir")
            .arg(data.path())
            .arg("ingest")
            .arg(f));
        assert!(again.starts_with("0 lines: 0 new records"), "{again}");
    }
    assert_eq!(records, truth.distinct_reports);
    let victims = ok(dropwatch()
        .arg("--data-dir")
        .arg(data.path())
        .args(["victims", "--json"]));
    let victims: Vec<serde_json::Value> = serde_json::from_str(&victims).unwrap();
    assert_eq!(victims.len(), truth.victims.len());
}
