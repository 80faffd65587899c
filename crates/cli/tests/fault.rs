//! Crash safety of ingestion: `dropwatch ingest` is killed with SIGKILL at seeded random
//! points of a large ingest and restarted until it completes. Every record must be stored
//! once, and victims and alerts must be exactly those of a clean, uninterrupted run, with the
//! source's cursor at the end of the file.
//!
//! The drop file grows the way a live drop fills up: it is appended in chunks, and after each
//! append the ingest is run (and killed, and re-run) until it succeeds, so the cursor is
//! resumed from many positions. The data is the generator's drops for many seeds, joined:
//! about 20k records and several thousand victims.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dropwatch_model::PanelReport;
use dropwatch_store::Store;
use dropwatch_testkit::{generate, GenerateOptions};
use rand::{Rng, SeedableRng};

const TARGET_LINES: usize = 20_000;
const CHUNKS: usize = 12;

/// The joined drop data: JSON lines, and the number of distinct reports.
fn large_drop() -> (Vec<String>, usize, dropwatch_model::Registry) {
    let mut lines = Vec::new();
    let mut registry = None;
    let mut seed = 0;
    while lines.len() < TARGET_LINES {
        let g = generate(&GenerateOptions {
            seed: 10_000 + seed,
            drop_base: "http://127.0.0.1:18080".into(),
        });
        seed += 1;
        registry.get_or_insert(g.registry);
        for d in g.drops {
            lines.extend(d.lines);
        }
    }
    let distinct: BTreeSet<(String, String)> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<PanelReport>(l).ok())
        .map(|r| (r.bot_id, r.context))
        .collect();
    (lines, distinct.len(), registry.unwrap())
}

fn dropwatch(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dropwatch"));
    cmd.arg("--data-dir")
        .arg(data)
        .env_remove("DROPWATCH_DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn import_registry(data: &Path, registry_file: &Path) {
    let status = dropwatch(data)
        .args(["institution", "import"])
        .arg(registry_file)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs `dropwatch ingest` until it exits successfully, killing it after a random delay drawn
/// from `rng` up to `max_delay` at each attempt but the last ones. Returns the kills.
fn ingest_until_done(
    data: &Path,
    file: &Path,
    rng: &mut impl Rng,
    max_delay: Duration,
    kill: bool,
) -> usize {
    let mut kills = 0;
    for attempt in 0.. {
        let mut child = dropwatch(data).arg("ingest").arg(file).spawn().unwrap();
        // Give up killing after a few attempts, so that a chunk always completes.
        if kill && attempt < 4 {
            let delay = max_delay.mul_f64(rng.random_range(0.0..1.0));
            let deadline = Instant::now() + delay;
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            if child.try_wait().unwrap().is_none() {
                // `Child::kill` is SIGKILL on Unix: no destructor, no rollback by the process.
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                continue;
            }
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "ingest failed: {status}");
        return kills;
    }
    unreachable!()
}

type Outcome = (
    i64,
    Vec<(String, String, String, String)>,
    Vec<(String, String, String)>,
    Option<String>,
);

/// Records, victims, alerts (institution, account, reason), and the file source's cursor.
async fn outcome(data: &Path) -> Outcome {
    let store = Store::open_data_dir(data).await.unwrap();
    let records = store.stats().await.unwrap().records;
    let mut victims: Vec<_> = store
        .list_victims("test", None)
        .await
        .unwrap()
        .into_iter()
        .map(|v| {
            (
                v.institution_id,
                v.account,
                format!("{:?}", v.exposed),
                v.urgency.as_str().to_string(),
            )
        })
        .collect();
    victims.sort();
    let mut alerts: Vec<_> = store
        .alerts_since("test", None, 0, i64::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.institution_id,
                a.payload.account,
                format!("{:?}", a.payload.reason),
            )
        })
        .collect();
    alerts.sort();
    let sources = store.list_monitor_sources().await.unwrap();
    assert_eq!(sources.len(), 1);
    let cursor = sources[0].cursor.clone();
    store.close().await;
    (records, victims, alerts, cursor)
}

/// Appends the chunks to `file` one by one, ingesting after each.
/// With `kill = Some((seed, max_delay))`, each ingest is killed at seeded random delays up to
/// `max_delay`. Returns the kills and the slowest chunk's ingest time.
fn run(
    data: &Path,
    file: &Path,
    lines: &[String],
    kill: Option<(u64, Duration)>,
) -> (usize, Duration) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(kill.map_or(0, |k| k.0));
    let per_chunk = lines.len().div_ceil(CHUNKS);
    let mut kills = 0;
    let mut slowest = Duration::ZERO;
    std::fs::write(file, b"").unwrap();
    for chunk in lines.chunks(per_chunk) {
        let mut f = std::fs::OpenOptions::new().append(true).open(file).unwrap();
        let mut text = chunk.join("\n");
        text.push('\n');
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        drop(f);
        let t = Instant::now();
        kills += ingest_until_done(
            data,
            file,
            &mut rng,
            kill.map_or(Duration::ZERO, |k| k.1),
            kill.is_some(),
        );
        slowest = slowest.max(t.elapsed());
    }
    (kills, slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_ingest_loses_and_repeats_nothing() {
    let started = Instant::now();
    let (lines, distinct, registry) = large_drop();
    assert!(lines.len() >= TARGET_LINES);
    let scratch = tempfile::tempdir().unwrap();
    let registry_file = scratch.path().join("registry.json");
    std::fs::write(&registry_file, serde_json::to_vec(&registry).unwrap()).unwrap();

    // The clean run.
    let clean = scratch.path().join("clean");
    import_registry(&clean, &registry_file);
    let clean_file = scratch.path().join("clean.jsonl");
    let (_, slowest) = run(&clean, &clean_file, &lines, None);
    let expected = outcome(&clean).await;
    let file_len = std::fs::metadata(&clean_file).unwrap().len();
    assert_eq!(
        expected.0 as usize, distinct,
        "clean run: every record once"
    );
    assert!(
        expected.1.len() > 3_000,
        "several thousand victims ({})",
        expected.1.len()
    );
    assert_eq!(expected.3, Some(file_len.to_string()));

    // The killed runs: every kill point from a seeded stream, up to a clean chunk's time, so
    // kills land in start-up, analysis and the ingest transaction alike.
    let faulty = scratch.path().join("faulty");
    import_registry(&faulty, &registry_file);
    let faulty_file = scratch.path().join("faulty.jsonl");
    let (kills, _) = run(&faulty, &faulty_file, &lines, Some((0x5eed, slowest)));
    assert!(kills >= CHUNKS, "the ingest was killed ({kills} times)");
    let got = outcome(&faulty).await;
    assert_eq!(got.0 as usize, distinct, "every record ingested once");
    assert_eq!(got.1, expected.1, "victims neither lost nor doubled");
    assert_eq!(got.2.len(), expected.2.len(), "as many alerts");
    assert_eq!(got.2, expected.2, "alerts neither lost nor doubled");
    assert_eq!(got.3, Some(file_len.to_string()), "cursor at the end");
    eprintln!(
        "{} lines, {} records, {} victims, {} alerts, {kills} kills, {:?}",
        lines.len(),
        got.0,
        got.1.len(),
        got.2.len(),
        started.elapsed()
    );
}
