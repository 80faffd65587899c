//! `dropwatch ingest PATH|-` on files, directory trees and stdin, in every drop format, against
//! the generator's ground truth: a seized tree holding the generated drops as JSON lines, JSON
//! arrays, CSV and ZeuS `reports.txt` (in the panel's `other/<botnet>/<botid>/reports.txt`
//! layout, and under names that tell nothing, so the format is sniffed) must give exactly the
//! ground-truth victims, count the malformed records as bad without failing, and add nothing
//! when ingested again. A file larger than one read is read to its end; what cannot be read
//! fails that file alone (exit 2) after the others are ingested.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dropwatch_store::Store;
use dropwatch_testkit::formats::{self, DropFormat, DropRecord};
use dropwatch_testkit::{generate, GenerateOptions, Generated};

type Victim = dropwatch_testkit::VictimKey;

/// The default read limit of a monitor (`MonitorConfig::max_body_bytes`).
const READ_LIMIT: usize = 16 << 20;

fn generated(seed: u64) -> Generated {
    generate(&GenerateOptions {
        seed,
        drop_base: "http://127.0.0.1:18080".into(),
    })
}

fn dropwatch(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dropwatch"));
    cmd.arg("--data-dir")
        .arg(data)
        .env_remove("DROPWATCH_DATABASE_URL")
        .env_remove("RUST_LOG");
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A fresh data directory that knows the generated institutions, imported as an operator
/// would: `dropwatch institution import` of the generator's registry.
fn fresh_data_dir(g: &Generated, scratch: &Path) -> PathBuf {
    let testkit = scratch.join("testkit");
    g.write_to(&testkit).unwrap();
    let data = scratch.join("data");
    let out = run(dropwatch(&data)
        .args(["institution", "import"])
        .arg(testkit.join("registry.json")));
    assert_ok(&out, "institution import");
    data
}

fn expected_victims(g: &Generated) -> Vec<Victim> {
    g.truth.victim_keys()
}

/// Victims, record count and alert count of a data directory.
async fn store_state(data: &Path) -> (Vec<Victim>, i64, i64) {
    let store = Store::open_data_dir(data).await.unwrap();
    let victims = dropwatch_testkit::fixtures::stored_victim_keys(&store).await;
    let stats = store.stats().await.unwrap();
    store.close().await;
    (victims, stats.records, stats.alerts)
}

/// The counts of a summary (`N lines: A new records, B duplicates, C unattributed, D bad
/// lines, E new victims, F alerts queued`), by name: `lines`, `new records`, ...
fn counts(line: &str) -> HashMap<String, u64> {
    let at = line
        .find(" lines: ")
        .unwrap_or_else(|| panic!("not a summary: {line}"));
    let start = line[..at].rfind([' ', ':']).map_or(0, |i| i + 1);
    let mut out = HashMap::new();
    out.insert("lines".to_string(), line[start..at].parse().unwrap());
    let rest = &line[at + " lines: ".len()..];
    let rest = rest.split(" (").next().unwrap();
    for part in rest.split(", ") {
        let (n, name) = part.split_once(' ').unwrap();
        out.insert(name.to_string(), n.parse().unwrap());
    }
    out
}

/// The per-file lines of a directory ingest (`PATH (FORMAT): summary`): path → (format, line).
fn file_lines(stdout: &str) -> BTreeMap<String, (String, String)> {
    stdout
        .lines()
        .filter(|l| !l.starts_with("total: "))
        .map(|l| {
            let (head, _) = l.split_once("): ").unwrap_or_else(|| panic!("{l}"));
            let (path, format) = head.rsplit_once(" (").unwrap();
            (path.to_string(), (format.to_string(), l.to_string()))
        })
        .collect()
}

fn total_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with("total: "))
        .unwrap_or_else(|| panic!("no total line:\n{stdout}"))
}

fn path_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes a seized tree holding every generated drop in every format, and returns each drop
/// file written with the format the ingest must tell for it. Even drops have telling names,
/// their `reports.txt` split per bot as the ZeuS panel's `reports_to_fs` leaves it; odd drops
/// have names that tell nothing, so their format is sniffed from the content.
fn write_seized_tree(g: &Generated, scratch: &Path, root: &Path) -> Vec<(PathBuf, &'static str)> {
    let written = formats::write_drop_formats(g, &scratch.join("formats")).unwrap();
    let mut expected = Vec::new();
    let mut zeus: BTreeMap<PathBuf, Vec<DropRecord>> = BTreeMap::new();
    for (i, drop) in g.drops.iter().enumerate() {
        let stem = path_safe(drop.path.trim_matches('/'));
        let telling = i % 2 == 0;
        for f in written.iter().filter(|f| f.drop_path == drop.path) {
            let (dest, format) = match (f.format, telling) {
                (DropFormat::JsonLines, true) => {
                    (root.join(format!("jsonl/{stem}.jsonl")), "jsonl")
                }
                (DropFormat::JsonLines, false) => (root.join(format!("jsonl/{stem}")), "jsonl"),
                (DropFormat::JsonArray, true) => {
                    (root.join(format!("listings/{stem}.json")), "json")
                }
                (DropFormat::JsonArray, false) => {
                    (root.join(format!("listings/{stem}.page")), "json")
                }
                (DropFormat::Csv, true) => (root.join(format!("csv/{stem}.csv")), "csv"),
                (DropFormat::Csv, false) => (root.join(format!("csv/{stem}.export")), "csv"),
                (DropFormat::ReportsTxt, true) => {
                    // One reports.txt per bot; a malformed block stays with the bot before it.
                    let mut dir: Option<PathBuf> = None;
                    for r in formats::drop_records(drop) {
                        if let DropRecord::Report(rep) = &r {
                            dir = Some(root.join(format!(
                                "panel/_reports/other/{}/{}",
                                path_safe(&rep.botnet),
                                path_safe(&rep.bot_id)
                            )));
                        }
                        let d = dir
                            .clone()
                            .unwrap_or_else(|| root.join("panel/_reports/other/unknown/unknown"));
                        zeus.entry(d.join("reports.txt")).or_default().push(r);
                    }
                    continue;
                }
                (DropFormat::ReportsTxt, false) => {
                    (root.join(format!("panel/{stem}.log")), "reports-txt")
                }
                // A seized panel database, as mysqldump left it.
                (DropFormat::SqlDump, true) => (root.join(format!("db/{stem}.sql")), "sql-dump"),
                (DropFormat::SqlDump, false) => {
                    (root.join(format!("db/{stem}-backup")), "sql-dump")
                }
            };
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&f.file, &dest).unwrap();
            expected.push((dest, format));
        }
    }
    assert!(zeus.len() > 1, "the ZeuS tree holds several bots");
    for (file, records) in zeus {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, formats::encode_reports_txt(&records).unwrap()).unwrap();
        expected.push((file, "reports-txt"));
    }
    expected
}

/// The formats the seized tree holds every drop in: JSON lines, JSON array, CSV, reports.txt,
/// MySQL dump.
const TREE_FORMATS: u64 = 5;

/// A malformed line: read, it would be one more bad record.
const MALFORMED: &str = "{\"id\":0,\"bot_id\":\"NOT-READ\",\"type\":12,\"path_sou\n";

#[tokio::test]
async fn a_seized_tree_in_every_format_gives_the_ground_truth_once() {
    let g = generated(7);
    assert!(g.drops.len() >= 2, "drops with and without telling names");
    let scratch = tempfile::tempdir().unwrap();
    let data = fresh_data_dir(&g, scratch.path());
    let root = scratch.path().join("seized");
    let expected = write_seized_tree(&g, scratch.path(), &root);
    // Binary junk (NUL bytes), skipped with a note.
    let junk: Vec<u8> = (0..4096u32).map(|i| (i % 256) as u8).collect();
    std::fs::write(root.join("panel/junk.dat"), &junk).unwrap();
    // Hidden files and a symbolic link: not read (each would add a bad record).
    std::fs::create_dir_all(root.join(".cache")).unwrap();
    std::fs::write(root.join(".cache/extra.jsonl"), MALFORMED).unwrap();
    std::fs::write(root.join("jsonl/.hidden.jsonl"), MALFORMED).unwrap();
    let outside = scratch.path().join("outside.jsonl");
    std::fs::write(&outside, MALFORMED).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("jsonl/link.jsonl")).unwrap();

    let out = run(dropwatch(&data)
        .arg("ingest")
        .arg(&root)
        .args(["--format", "auto"]));
    assert_ok(&out, "first ingest");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);

    // One line per drop file, each with the format the name or the content tells.
    let lines = file_lines(&stdout);
    assert_eq!(lines.len(), expected.len(), "{stdout}");
    for (file, format) in &expected {
        let (found, line) = lines
            .get(&file.display().to_string())
            .unwrap_or_else(|| panic!("no line for {}:\n{stdout}", file.display()));
        assert_eq!(found, format, "{line}");
    }
    let total = counts(total_line(&stdout));
    let formats_written = TREE_FORMATS;
    assert_eq!(
        total["lines"],
        formats_written * g.truth.report_lines as u64,
        "every record of every format read: {stdout}"
    );
    assert_eq!(
        total["bad lines"],
        formats_written * g.truth.malformed_lines as u64,
        "the malformed records of every format, and nothing hidden or linked: {stdout}"
    );
    assert_eq!(total["new records"], g.truth.distinct_reports as u64);
    assert!(total["new victims"] > 0 && total["alerts queued"] > 0);
    // The junk file: one note; the link: not followed.
    let junk_notes: Vec<&str> = stderr.lines().filter(|l| l.contains("junk.dat")).collect();
    assert_eq!(junk_notes.len(), 1, "{stderr}");
    assert!(junk_notes[0].contains("skipped"), "{stderr}");
    assert!(!stdout.contains("junk.dat") && !stdout.contains("link.jsonl"));
    assert!(!stdout.contains(".hidden") && !stdout.contains(".cache"));
    assert!(!stderr.contains("NOT-READ"), "{stderr}");

    let (victims, records, alerts) = store_state(&data).await;
    assert_eq!(victims, expected_victims(&g));
    assert_eq!(records as usize, g.truth.distinct_reports);
    assert_eq!(alerts as u64, total["alerts queued"]);

    // Again: the append-only files are read from their cursor (nothing), the JSON arrays
    // whole (duplicates only); no record, victim or alert is added.
    let out = run(dropwatch(&data).arg("ingest").arg(&root));
    assert_ok(&out, "second ingest");
    let stdout = text(&out.stdout);
    let again = counts(total_line(&stdout));
    assert_eq!(again["new records"], 0, "{stdout}");
    assert_eq!(again["new victims"], 0, "{stdout}");
    assert_eq!(again["alerts queued"], 0, "{stdout}");
    for (file, (format, line)) in file_lines(&stdout) {
        let c = counts(&line);
        if format == "json" {
            assert_eq!(c["duplicates"] + c["bad lines"], c["lines"], "{line}");
        } else {
            assert_eq!(c["lines"], 0, "{file} is read from its cursor: {line}");
        }
    }
    assert_eq!(store_state(&data).await, (victims, records, alerts));
}

#[tokio::test]
async fn a_file_larger_than_one_read_is_read_to_its_end() {
    let g = generated(1);
    let scratch = tempfile::tempdir().unwrap();
    let data = fresh_data_dir(&g, scratch.path());
    // The first drop's lines, each after 8 KiB of blanks (valid JSON), until past the read
    // limit; then every drop's lines. The victims of the other drops lie past the first read.
    let pad = " ".repeat(8 << 10);
    let mut body = String::new();
    let mut lines = 0u64;
    let mut bad = 0u64;
    let first: Vec<DropRecord> = formats::drop_records(&g.drops[0]);
    while body.len() <= READ_LIMIT + (1 << 20) {
        for (line, record) in g.drops[0].lines.iter().zip(&first) {
            body.push_str(&pad);
            body.push_str(line);
            body.push('\n');
            lines += 1;
            bad += u64::from(*record == DropRecord::Malformed);
        }
    }
    for d in &g.drops {
        for line in &d.lines {
            body.push_str(line);
            body.push('\n');
        }
    }
    lines += g.truth.report_lines as u64;
    bad += g.truth.malformed_lines as u64;
    let file = scratch.path().join("big-drop.jsonl");
    std::fs::write(&file, &body).unwrap();
    assert!(body.len() > READ_LIMIT + (1 << 20));

    let out = run(dropwatch(&data).arg("ingest").arg(&file));
    assert_ok(&out, "ingest");
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.trim_end().ends_with("(jsonl)"), "{stdout}");
    let c = counts(stdout.trim_end());
    assert_eq!(c["lines"], lines, "every line read: {stdout}");
    assert_eq!(c["bad lines"], bad, "{stdout}");
    assert_eq!(
        c["new records"], g.truth.distinct_reports as u64,
        "{stdout}"
    );
    let (victims, _, _) = store_state(&data).await;
    assert_eq!(victims, expected_victims(&g));

    // The cursor is at the end: nothing is read again.
    let out = run(dropwatch(&data).arg("ingest").arg(&file));
    assert_ok(&out, "again");
    assert!(text(&out.stdout).starts_with("0 lines: 0 new records"));
}

#[test]
fn a_missing_path_is_one_line_and_exit_2() {
    let scratch = tempfile::tempdir().unwrap();
    let missing = scratch.path().join("no/such/drop");
    let out = run(dropwatch(&scratch.path().join("data"))
        .arg("ingest")
        .arg(&missing));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn a_file_that_cannot_be_read_fails_alone_after_the_others() {
    let g = generated(2014);
    let scratch = tempfile::tempdir().unwrap();
    let data = fresh_data_dir(&g, scratch.path());
    let dir = scratch.path().join("drops");
    std::fs::create_dir_all(&dir).unwrap();
    // A JSON array (a snapshot, read whole) past the read limit: refused.
    let mut array = formats::encode(DropFormat::JsonArray, &g.drops[0]).unwrap();
    array.splice(1..1, std::iter::repeat_n(b' ', READ_LIMIT + 1));
    std::fs::write(dir.join("a-listing.json"), &array).unwrap();
    // Every drop as JSON lines, after it in the walk.
    let mut jsonl = String::new();
    for d in &g.drops {
        for l in &d.lines {
            jsonl.push_str(l);
            jsonl.push('\n');
        }
    }
    std::fs::write(dir.join("b-drop.jsonl"), &jsonl).unwrap();

    let out = run(dropwatch(&data).arg("ingest").arg(&dir));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("a-listing.json"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("read limit"), "{stderr}");
    let stdout = text(&out.stdout);
    let lines = file_lines(&stdout);
    assert_eq!(lines.len(), 1, "{stdout}");
    let (format, line) = &lines[&dir.join("b-drop.jsonl").display().to_string()];
    assert_eq!(format, "jsonl");
    assert_eq!(counts(line)["lines"], g.truth.report_lines as u64);
    let (victims, _, _) = store_state(&data).await;
    assert_eq!(victims, expected_victims(&g));
}

#[tokio::test]
async fn stdin_is_read_in_the_format_asked() {
    let g = generated(7);
    // ZeuS reports.txt without the separator after its last block: stdin has ended, so the
    // last block is complete.
    let scratch = tempfile::tempdir().unwrap();
    let data = fresh_data_dir(&g, scratch.path());
    let mut blocks = Vec::new();
    for d in &g.drops {
        blocks.extend(formats::encode(DropFormat::ReportsTxt, d).unwrap());
    }
    let cut = blocks.len() - formats::REPORTS_TXT_SEPARATOR.len() - 1;
    assert_eq!(&blocks[cut..cut + 1], b"=");
    blocks.truncate(cut);
    let c = ingest_stdin(&data, &["--format", "reports-txt"], &blocks);
    assert!(c.ends_with("(reports-txt)"), "{c}");
    let c = counts(&c);
    assert_eq!(c["lines"], g.truth.report_lines as u64);
    assert_eq!(c["bad lines"], g.truth.malformed_lines as u64);
    assert_eq!(store_state(&data).await.0, expected_victims(&g));

    // JSON lines by default.
    let scratch = tempfile::tempdir().unwrap();
    let data = fresh_data_dir(&g, scratch.path());
    let mut jsonl = Vec::new();
    for d in &g.drops {
        jsonl.extend(formats::encode(DropFormat::JsonLines, d).unwrap());
    }
    let c = ingest_stdin(&data, &[], &jsonl);
    assert!(c.ends_with("(jsonl)"), "{c}");
    let c = counts(&c);
    assert_eq!(c["lines"], g.truth.report_lines as u64);
    assert_eq!(c["new records"], g.truth.distinct_reports as u64);
    assert_eq!(store_state(&data).await.0, expected_victims(&g));

    // Raw form-grab text (the logs alone, as a drop script dumps them), not ended by a
    // separator: the last grab is complete too.
    let scratch = tempfile::tempdir().unwrap();
    let data = fresh_data_dir(&g, scratch.path());
    let mut grabs = String::new();
    let mut reports = 0u64;
    for d in &g.drops {
        for r in formats::drop_reports(d) {
            grabs.push_str(r.context.trim_end_matches('\n'));
            grabs.push_str("\n\n");
            reports += 1;
        }
    }
    let c = ingest_stdin(
        &data,
        &["--format", "grabs-txt"],
        grabs.trim_end().as_bytes(),
    );
    assert!(c.ends_with("(grabs-txt)"), "{c}");
    let c = counts(&c);
    assert_eq!(c["lines"], reports, "every grab read");
    assert_eq!(c["bad lines"], 0);
    assert_eq!(store_state(&data).await.0, expected_victims(&g));
}

/// `dropwatch ingest - ARGS` with `input` on stdin; its one summary line.
fn ingest_stdin(data: &Path, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    let mut child = dropwatch(data)
        .args(["ingest", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_ok(&out, "ingest -");
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    stdout.trim_end().to_string()
}

/// SQL dumps map to their own source kind, by name and by content (whatever their parser
/// makes of them).
#[tokio::test]
async fn sql_dumps_are_sources_of_their_kind() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let dir = scratch.path().join("panel-db");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("panel.sql"), "-- MySQL dump 10.13\n").unwrap();
    std::fs::write(
        dir.join("backup-2014"),
        "-- MySQL dump 10.13  Distrib 5.5.40\n\nCREATE TABLE `botnet_reports_140101` (\n",
    )
    .unwrap();
    let out = run(dropwatch(&data).arg("ingest").arg(&dir));
    assert_ok(&out, "ingest");
    let lines = file_lines(&text(&out.stdout));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.values().all(|(f, _)| f == "sql-dump"), "{lines:?}");
    let store = Store::open_data_dir(&data).await.unwrap();
    let mut kinds: Vec<(String, String)> = store
        .list_monitor_sources()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.kind, s.url))
        .collect();
    kinds.sort();
    store.close().await;
    let dir = std::fs::canonicalize(&dir).unwrap();
    assert_eq!(
        kinds,
        vec![
            (
                "file_sql_dump".to_string(),
                dir.join("backup-2014").display().to_string()
            ),
            (
                "file_sql_dump".to_string(),
                dir.join("panel.sql").display().to_string()
            ),
        ]
    );
}
