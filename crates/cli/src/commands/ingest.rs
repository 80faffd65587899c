//! `dropwatch ingest`: drop records from a file, a directory tree or stdin, or a config report.
//!
//! Every drop format the monitors read is accepted (`--format`, or told per file by name and
//! content). Each file becomes a monitor source of its format's file kind with its canonical
//! path, polled until it is read to its end, so ingesting it again reads only what was
//! appended (the source's cursor). A directory is walked recursively, in sorted order, without
//! following symbolic links: the layout a seized ZeuS panel leaves with `reports_to_fs`
//! (`<reports_path>/other/<botnet>/<botid>/reports.txt`) is ingested as it is.
//!
//! A file holding one JSON object that is a `dropwatch config extract --format json` report is
//! stored as a config (its samples, servers and injects), exactly as `config extract --store`
//! would: a config can be extracted on an isolated analysis machine and only its report carried
//! to the production store.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use dropwatch_config::Report;
use dropwatch_deliver::DeliveryConfig;
use dropwatch_monitor::formats::{self, REPORTS_TXT_SEPARATOR};
use dropwatch_monitor::{
    ByteCursor, DropFormat, Monitor, MonitorConfig, MonitorError, PollOutcome, KIND_FILE_CSV,
    KIND_FILE_GRABS_TXT, KIND_FILE_JSON, KIND_FILE_JSONL, KIND_FILE_REPORTS_TXT,
    KIND_FILE_SQL_DUMP,
};
use dropwatch_store::{now_micros, Store};

use crate::context::Context;

#[derive(Args)]
pub struct IngestArgs {
    /// A drop file, a directory (walked recursively: every drop file in it is ingested), or
    /// `-` for stdin. Each file is remembered with its cursor, so ingesting it again reads only
    /// what was appended. A config report (the JSON of `dropwatch config extract`) is stored as
    /// a config instead.
    path: PathBuf,
    /// The drop format. `auto` tells it per file, by name (`reports.txt`, `.jsonl`, `.ndjson`,
    /// `.json`, `.csv`, `.sql`, `.txt`), then by content; stdin is JSON lines unless this says
    /// otherwise.
    #[arg(long, value_enum, default_value_t = IngestFormat::Auto)]
    format: IngestFormat,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IngestFormat {
    Auto,
    Jsonl,
    Json,
    Csv,
    ReportsTxt,
    GrabsTxt,
    SqlDump,
}

impl IngestFormat {
    /// The format asked for; `None` for `auto`.
    fn fixed(self) -> Option<FileFormat> {
        match self {
            IngestFormat::Auto => None,
            IngestFormat::Jsonl => Some(FileFormat::Jsonl),
            IngestFormat::Json => Some(FileFormat::Json),
            IngestFormat::Csv => Some(FileFormat::Csv),
            IngestFormat::ReportsTxt => Some(FileFormat::ReportsTxt),
            IngestFormat::GrabsTxt => Some(FileFormat::GrabsTxt),
            IngestFormat::SqlDump => Some(FileFormat::SqlDump),
        }
    }
}

/// A drop format, with the monitor source kind that reads it from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileFormat {
    Jsonl,
    Json,
    Csv,
    ReportsTxt,
    GrabsTxt,
    SqlDump,
}

impl FileFormat {
    /// As `--format` spells it.
    fn name(self) -> &'static str {
        match self {
            FileFormat::Jsonl => "jsonl",
            FileFormat::Json => "json",
            FileFormat::Csv => "csv",
            FileFormat::ReportsTxt => "reports-txt",
            FileFormat::GrabsTxt => "grabs-txt",
            FileFormat::SqlDump => "sql-dump",
        }
    }

    fn source_kind(self) -> &'static str {
        match self {
            FileFormat::Jsonl => KIND_FILE_JSONL,
            FileFormat::Json => KIND_FILE_JSON,
            FileFormat::Csv => KIND_FILE_CSV,
            FileFormat::ReportsTxt => KIND_FILE_REPORTS_TXT,
            FileFormat::GrabsTxt => KIND_FILE_GRABS_TXT,
            FileFormat::SqlDump => KIND_FILE_SQL_DUMP,
        }
    }

    fn drop_format(self) -> DropFormat {
        match self {
            FileFormat::Jsonl => DropFormat::JsonLines,
            FileFormat::Json => DropFormat::JsonArray,
            FileFormat::Csv => DropFormat::Csv,
            FileFormat::ReportsTxt => DropFormat::ReportsTxt,
            FileFormat::GrabsTxt => DropFormat::GrabsTxt,
            FileFormat::SqlDump => DropFormat::SqlDump,
        }
    }

    /// How a bad record's position reads: an index for a JSON array, a byte offset otherwise.
    fn position(self, at: u64) -> String {
        match self {
            FileFormat::Json => format!("element {at}"),
            _ => format!("byte {at}"),
        }
    }
}

/// Largest file looked at as a possible config report; drops are larger and are streamed.
const MAX_REPORT_BYTES: u64 = 64 << 20;
/// Bytes of a file looked at to tell its format.
const SNIFF_BYTES: u64 = 8 << 10;
/// A NUL byte among a file's first bytes makes it binary: no drop format.
const BINARY_WINDOW: usize = 1 << 10;
/// Bounds of a directory walk.
const MAX_FILES: usize = 10_000;
const MAX_DEPTH: usize = 16;
/// Bad records shown per file.
const SHOWN_BAD: usize = 10;

/// Why a file's format could not be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unknown {
    Empty,
    Binary,
    Unrecognised,
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unknown::Empty => "empty",
            Unknown::Binary => "binary data",
            Unknown::Unrecognised => "no drop format recognised",
        })
    }
}

/// What `head` holds after a UTF-8 byte order mark.
fn without_bom(head: &[u8]) -> &[u8] {
    head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head)
}

fn first_non_blank(head: &[u8]) -> Option<u8> {
    without_bom(head)
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace())
}

/// The format a file's name tells; `.json` also looks at the first byte (`{`: JSON lines).
fn format_by_name(name: &str, head: &[u8]) -> Option<FileFormat> {
    let name = name.to_ascii_lowercase();
    let format = if name == "reports.txt" || name.ends_with(".reports.txt") {
        FileFormat::ReportsTxt
    } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        FileFormat::Jsonl
    } else if name.ends_with(".json") {
        if first_non_blank(head) == Some(b'{') {
            FileFormat::Jsonl
        } else {
            FileFormat::Json
        }
    } else if name.ends_with(".csv") {
        FileFormat::Csv
    } else if name.ends_with(".sql") {
        FileFormat::SqlDump
    } else if name.ends_with(".txt") {
        FileFormat::GrabsTxt
    } else {
        return None;
    };
    Some(format)
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Binary data: a NUL byte, or more than one byte in 32 a control character that text does
/// not hold (tabs, line breaks, form feeds and escapes aside). Text in a legacy 8-bit or
/// multibyte charset (Windows-1251, Shift_JIS) is not binary.
fn is_binary(window: &[u8]) -> bool {
    let controls = window
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1b))
        .count();
    window.contains(&0) || controls * 32 > window.len()
}

/// The format a file's first bytes tell. Raw grab text is recognised only by a grab's start
/// (a URL line followed by `Referer:`, or `Grabbed data from: `), so that other text files of
/// a seized tree (scripts, pages, notes) are not taken for drops.
fn sniff_format(head: &[u8]) -> Result<FileFormat, Unknown> {
    if is_binary(&head[..head.len().min(BINARY_WINDOW)]) {
        return Err(Unknown::Binary);
    }
    match first_non_blank(head) {
        None => return Err(Unknown::Empty),
        Some(b'[') => return Ok(FileFormat::Json),
        Some(b'{') => return Ok(FileFormat::Jsonl),
        Some(_) => {}
    }
    let lines: Vec<&[u8]> = without_bom(head)
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    if lines
        .iter()
        .any(|l| *l == REPORTS_TXT_SEPARATOR || l.starts_with(b"bot_id="))
    {
        return Ok(FileFormat::ReportsTxt);
    }
    let is_sql = |l: &&[u8]| {
        let start = l.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
        let l = &l[start..];
        starts_with_ignore_case(l, b"CREATE TABLE")
            || starts_with_ignore_case(l, b"INSERT INTO")
            || l.starts_with(b"-- MySQL dump")
            || l.starts_with(b"-- MariaDB dump")
    };
    if lines.iter().any(is_sql) {
        return Ok(FileFormat::SqlDump);
    }
    if let Some(first) = lines
        .iter()
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
    {
        if first.contains(&b',')
            && first
                .to_ascii_lowercase()
                .windows(7)
                .any(|w| w == b"context")
        {
            return Ok(FileFormat::Csv);
        }
    }
    let is_url = |l: &[u8]| l.starts_with(b"http://") || l.starts_with(b"https://");
    let grab_starts = lines.iter().enumerate().any(|(i, l)| {
        l.starts_with(b"Grabbed data from: ")
            || (is_url(l) && lines.get(i + 1).is_some_and(|n| n.starts_with(b"Referer:")))
    });
    if grab_starts {
        return Ok(FileFormat::GrabsTxt);
    }
    Err(Unknown::Unrecognised)
}

/// A file's format: by name, then by content.
fn detect_format(name: &str, head: &[u8]) -> Result<FileFormat, Unknown> {
    match format_by_name(name, head) {
        Some(f) => Ok(f),
        None => sniff_format(head),
    }
}

/// The first [`SNIFF_BYTES`] of a file.
fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(SNIFF_BYTES)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// The file's config report, if it is one: a single JSON object that parses as a report.
fn config_report(path: &Path) -> Option<Report> {
    let file = std::fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_REPORT_BYTES {
        return None;
    }
    // Streamed: a JSON-lines drop fails at its first line, without being read whole.
    serde_json::from_reader(std::io::BufReader::new(file)).ok()
}

/// What was read from one file (or from stdin, or in all).
#[derive(Debug, Default)]
struct Tally {
    lines: u64,
    bad: u64,
    first_bad: Vec<(u64, String)>,
    new_records: u64,
    duplicates: u64,
    unattributed: u64,
    new_victims: u64,
    alerts: u64,
}

impl Tally {
    fn add(&mut self, out: &PollOutcome) {
        self.lines += out.lines;
        self.bad += out.bad_lines.len() as u64;
        let room = SHOWN_BAD.saturating_sub(self.first_bad.len());
        self.first_bad
            .extend(out.bad_lines.iter().take(room).cloned());
        self.new_records += out.ingest.new_records;
        self.duplicates += out.ingest.duplicate_records;
        self.unattributed += out.ingest.unattributed;
        self.new_victims += out.ingest.new_victims;
        self.alerts += out.ingest.alerts;
    }

    fn add_tally(&mut self, t: &Tally) {
        self.lines += t.lines;
        self.bad += t.bad;
        self.new_records += t.new_records;
        self.duplicates += t.duplicates;
        self.unattributed += t.unattributed;
        self.new_victims += t.new_victims;
        self.alerts += t.alerts;
    }

    fn summary(&self) -> String {
        format!(
            "{} lines: {} new records, {} duplicates, {} unattributed, {} bad lines, {} new victims, {} alerts queued",
            self.lines,
            self.new_records,
            self.duplicates,
            self.unattributed,
            self.bad,
            self.new_victims,
            self.alerts
        )
    }

    /// The first bad records on stderr, each line starting with `prefix`.
    fn show_bad(&self, prefix: &str, format: FileFormat) {
        for (at, err) in &self.first_bad {
            eprintln!("  {prefix}{}: {err}", format.position(*at));
        }
        if self.bad > self.first_bad.len() as u64 {
            eprintln!(
                "  {prefix}... and {} more bad records",
                self.bad - self.first_bad.len() as u64
            );
        }
    }
}

/// What ingesting one drop file did.
struct FileResult {
    tally: Tally,
    /// Why the file could not be read (to its end).
    error: Option<String>,
    /// Something worth knowing that is not an error.
    note: Option<String>,
}

/// A monitor error for one file, in one line; a store error is not one file's and is returned.
fn file_error(e: MonitorError) -> anyhow::Result<String> {
    Ok(match e {
        MonitorError::Store(e) => return Err(e.into()),
        MonitorError::TooLarge { limit, .. } => format!(
            "a JSON array is read whole, and this one is larger than the {limit}-byte read limit (split it, or convert it to JSON lines)"
        ),
        MonitorError::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    })
}

/// Ingests a file as a monitor source of `format`'s file kind: polls it until a poll stops
/// short of the read limit, so a file larger than one read is read to its end. A snapshot (a
/// JSON array) is read whole, once.
async fn ingest_drop_file(
    monitor: &Monitor,
    store: &Store,
    path: &Path,
    format: FileFormat,
) -> anyhow::Result<FileResult> {
    let mut result = FileResult {
        tally: Tally::default(),
        error: None,
        note: None,
    };
    let canonical = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) => {
            result.error = Some(e.to_string());
            return Ok(result);
        }
    };
    let id = store
        .add_monitor_source(None, format.source_kind(), &canonical.display().to_string())
        .await?;
    let mut last_cursor: Option<Option<String>> = None;
    loop {
        let source = store
            .monitor_source(id)
            .await?
            .context("the monitor source vanished")?;
        // No progress since the last poll: stop rather than read the same bytes again.
        if last_cursor.as_ref() == Some(&source.cursor) {
            break;
        }
        let out = match monitor.poll(&source).await {
            Ok(out) => out,
            Err(e) => {
                result.error = Some(file_error(e)?);
                return Ok(result);
            }
        };
        result.tally.add(&out);
        if !format.drop_format().is_append_only() || !monitor.read_limit_reached(&source, &out) {
            break;
        }
        last_cursor = Some(source.cursor);
    }
    if format.drop_format().is_append_only() {
        result.note = unread_tail(store, id, &canonical).await?;
    }
    Ok(result)
}

/// A note when the file goes on past its source's cursor with more than blanks: a last
/// record not yet complete (a `reports.txt` block without its separator line, a grab not yet
/// followed by another), which is read once the file grows.
async fn unread_tail(store: &Store, id: i64, path: &Path) -> anyhow::Result<Option<String>> {
    let Some(source) = store.monitor_source(id).await? else {
        return Ok(None);
    };
    let offset = ByteCursor::parse(source.cursor.as_deref()).offset;
    let Ok(len) = std::fs::metadata(path).map(|m| m.len()) else {
        return Ok(None);
    };
    if offset >= len {
        return Ok(None);
    }
    let mut tail = Vec::new();
    let read = std::fs::File::open(path).and_then(|mut f| {
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(offset))?;
        f.take(64 << 10).read_to_end(&mut tail)
    });
    if read.is_ok() && tail.iter().all(u8::is_ascii_whitespace) && len - offset <= 64 << 10 {
        return Ok(None);
    }
    Ok(Some(format!(
        "the last {} bytes are not a complete record yet; they are read when the file grows",
        len - offset
    )))
}

pub async fn run(ctx: &Context, args: IngestArgs) -> anyhow::Result<ExitCode> {
    if args.path.as_os_str() == "-" {
        return run_stdin(ctx, args.format.fixed().unwrap_or(FileFormat::Jsonl)).await;
    }
    let meta = match std::fs::metadata(&args.path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("dropwatch ingest: {}: {e}", args.path.display());
            return Ok(ExitCode::from(2));
        }
    };
    if meta.is_dir() {
        return run_dir(ctx, &args.path, args.format).await;
    }
    if !meta.is_file() {
        eprintln!(
            "dropwatch ingest: {}: not a regular file or directory (use `-` for stdin)",
            args.path.display()
        );
        return Ok(ExitCode::from(2));
    }
    run_file(ctx, &args.path, args.format).await
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

async fn pipeline(ctx: &Context, store: &Store) -> anyhow::Result<Monitor> {
    let (monitor, _deliverer, _) = super::monitor::pipeline(
        ctx,
        store,
        MonitorConfig::default(),
        DeliveryConfig::default(),
    )
    .await?;
    Ok(monitor)
}

/// One file named on the command line. Its output keeps the form it has always had
/// (`N lines: ...`), with the format after it.
async fn run_file(ctx: &Context, path: &Path, format: IngestFormat) -> anyhow::Result<ExitCode> {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("dropwatch ingest: {}: {e}", path.display());
        Ok(ExitCode::from(2))
    };
    let head = match read_head(path) {
        Ok(h) => h,
        Err(e) => return fail(&e),
    };
    let (format, auto) = match format.fixed() {
        Some(f) => (f, false),
        // An empty file is a drop that has not started: JSON lines, as always.
        None => match detect_format(&file_name(path), &head) {
            Ok(f) => (f, true),
            Err(Unknown::Empty) => (FileFormat::Jsonl, true),
            Err(why) => {
                return fail(&format!(
                    "cannot tell its drop format ({why}); name it with --format"
                ))
            }
        },
    };
    let store = ctx.store().await?;
    if auto && format == FileFormat::Jsonl && first_non_blank(&head) == Some(b'{') {
        if let Some(report) = config_report(path) {
            return match super::config::store_report(&store, &report).await {
                Ok(summary) => {
                    println!("{}: {summary}", path.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => fail(&format!("{e:#}")),
            };
        }
    }
    let monitor = pipeline(ctx, &store).await?;
    let res = ingest_drop_file(&monitor, &store, path, format).await?;
    if res.error.is_none() || res.tally.lines > 0 {
        println!("{} ({})", res.tally.summary(), format.name());
    }
    res.tally.show_bad("", format);
    if let Some(note) = &res.note {
        eprintln!("note: {}: {note}", path.display());
    }
    match &res.error {
        Some(e) => fail(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// The regular files under a directory, and what the walk had to say.
#[derive(Default)]
struct Walk {
    files: Vec<PathBuf>,
    /// Non-regular entries skipped.
    notes: Vec<String>,
    /// Directories that could not be listed.
    errors: Vec<String>,
    /// Directories not entered for being too deep.
    too_deep: Vec<PathBuf>,
    /// The file limit was reached.
    truncated: bool,
    /// A directory not to enter (the store's own).
    skip: Option<PathBuf>,
}

impl Walk {
    /// Walks `dir` (at `depth`; the root is 0): entries in name order, hidden ones skipped,
    /// symbolic links not followed.
    fn dir(&mut self, dir: &Path, depth: usize) {
        if self.truncated {
            return;
        }
        let mut entries: Vec<(OsString, std::fs::FileType)> = Vec::new();
        let listing = match std::fs::read_dir(dir) {
            Ok(l) => l,
            Err(e) => {
                self.errors.push(format!("{}: {e}", dir.display()));
                return;
            }
        };
        for entry in listing {
            match entry.and_then(|e| Ok((e.file_name(), e.file_type()?))) {
                Ok(e) => entries.push(e),
                Err(e) => self.errors.push(format!("{}: {e}", dir.display())),
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, kind) in entries {
            if name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let path = dir.join(&name);
            if kind.is_dir() {
                if depth + 1 > MAX_DEPTH {
                    self.too_deep.push(path);
                } else if self.skip.is_some() && std::fs::canonicalize(&path).ok() == self.skip {
                    self.notes.push(format!(
                        "{}: the store's data directory; skipped",
                        path.display()
                    ));
                } else {
                    self.dir(&path, depth + 1);
                }
            } else if kind.is_file() {
                if self.files.len() >= MAX_FILES {
                    self.truncated = true;
                    return;
                }
                self.files.push(path);
            } else {
                let what = if kind.is_symlink() {
                    "a symbolic link, not followed"
                } else {
                    "not a regular file"
                };
                self.notes
                    .push(format!("{}: {what}; skipped", path.display()));
            }
            if self.truncated {
                return;
            }
        }
    }
}

/// A directory: every drop file under it, each as its own source.
async fn run_dir(ctx: &Context, root: &Path, format: IngestFormat) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let mut walk = Walk {
        skip: std::fs::canonicalize(&ctx.data_dir).ok(),
        ..Walk::default()
    };
    walk.dir(root, 0);
    let mut failed = false;
    for note in &walk.notes {
        eprintln!("note: {note}");
    }
    for e in &walk.errors {
        eprintln!("dropwatch ingest: {e}");
        failed = true;
    }
    if let Some(first) = walk.too_deep.first() {
        eprintln!(
            "warning: {} director{} deeper than {MAX_DEPTH} levels not read (first: {})",
            walk.too_deep.len(),
            if walk.too_deep.len() == 1 { "y" } else { "ies" },
            first.display()
        );
    }
    if walk.truncated {
        eprintln!(
            "warning: {}: stopped at {MAX_FILES} files; the rest of the tree was not read",
            root.display()
        );
    }
    let monitor = pipeline(ctx, &store).await?;
    let mut total = Tally::default();
    let mut drop_files = 0usize;
    for path in &walk.files {
        let shown = path.display();
        let head = match read_head(path) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("dropwatch ingest: {shown}: {e}");
                failed = true;
                continue;
            }
        };
        let detected = match format.fixed() {
            Some(f) => f,
            None => match detect_format(&file_name(path), &head) {
                Ok(f) => f,
                Err(why) => {
                    eprintln!("note: {shown}: not a drop file ({why}); skipped");
                    continue;
                }
            },
        };
        if format == IngestFormat::Auto
            && detected == FileFormat::Jsonl
            && first_non_blank(&head) == Some(b'{')
        {
            if let Some(report) = config_report(path) {
                match super::config::store_report(&store, &report).await {
                    Ok(summary) => println!("{shown} (config report): {summary}"),
                    Err(e) => {
                        eprintln!("dropwatch ingest: {shown}: {e:#}");
                        failed = true;
                    }
                }
                continue;
            }
        }
        let format = detected;
        let res = ingest_drop_file(&monitor, &store, path, format).await?;
        if res.error.is_none() || res.tally.lines > 0 {
            println!("{shown} ({}): {}", format.name(), res.tally.summary());
            drop_files += 1;
            total.add_tally(&res.tally);
        }
        res.tally.show_bad(&format!("{shown}: "), format);
        if let Some(note) = &res.note {
            eprintln!("note: {shown}: {note}");
        }
        if let Some(e) = &res.error {
            eprintln!("dropwatch ingest: {shown}: {e}");
            failed = true;
        }
    }
    if drop_files > 1 {
        println!("total: {drop_files} files, {}", total.summary());
    }
    if walk.files.is_empty() {
        eprintln!("note: {}: no file found", root.display());
    }
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Ends what stdin held so that its last record is complete: at the end of the input nothing
/// more can follow it (a file's last `reports.txt` block or grab, by contrast, waits for the
/// separator the file may still get).
fn terminate(format: FileFormat, data: &mut Vec<u8>) {
    if format == FileFormat::Json || data.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    if !data.ends_with(b"\n") {
        data.push(b'\n');
    }
    match format {
        FileFormat::ReportsTxt => {
            let (_, consumed) = formats::report_blocks(data);
            if !data[consumed..].iter().all(u8::is_ascii_whitespace) {
                data.extend_from_slice(REPORTS_TXT_SEPARATOR);
                data.push(b'\n');
            }
        }
        // A separator line ends a grab and belongs to none.
        FileFormat::GrabsTxt => data.extend_from_slice(b"==========\n"),
        _ => {}
    }
}

/// Stdin, in `format`: read in chunks of at most the read limit, each chunk's complete
/// records ingested, the rest carried into the next chunk. Nothing is remembered: stdin has no
/// cursor, and what is read again is deduplicated by the store.
async fn run_stdin(ctx: &Context, format: FileFormat) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let monitor = pipeline(ctx, &store).await?;
    let limit = monitor.config().max_body_bytes;
    let drop_format = format.drop_format();
    let mut stdin = std::io::stdin().lock();
    let mut tally = Tally::default();
    if !drop_format.is_append_only() {
        let mut data = Vec::new();
        (&mut stdin)
            .take(limit as u64 + 1)
            .read_to_end(&mut data)
            .context("reading stdin")?;
        if data.len() > limit {
            eprintln!(
                "dropwatch ingest: -: a JSON array is read whole, and this one is larger than the {limit}-byte read limit (split it, or convert it to JSON lines)"
            );
            return Ok(ExitCode::from(2));
        }
        let out = monitor
            .ingest_formatted(
                None,
                drop_format,
                &ByteCursor::default(),
                &data,
                false,
                now_micros(),
            )
            .await?;
        tally.add(&out);
    } else {
        let mut buf: Vec<u8> = Vec::new();
        let mut base = 0u64;
        let mut header: Option<Vec<String>> = None;
        let mut eof = false;
        while !eof {
            let want = limit.saturating_sub(buf.len()).max(1);
            let n = (&mut stdin)
                .take(want as u64)
                .read_to_end(&mut buf)
                .context("reading stdin")?;
            eof = n < want;
            if eof {
                terminate(format, &mut buf);
            }
            // Where the chunk's complete records end (the monitor parses the same bytes the
            // same way, and ingests those records). The whole chunk is handed over: a grab is
            // only complete once what follows it is seen.
            let parsed = formats::parse_chunk(drop_format, base, &buf, header.as_deref());
            // A chunk as large as the read limit with no complete record holds one that will
            // never complete: it is skipped as a bad record, as a monitor does.
            let full = !eof && parsed.consumed == 0 && buf.len() >= limit;
            let take = if full { buf.len() } else { parsed.consumed };
            let next_header = if full {
                formats::header_after_skip(drop_format, parsed.header)
            } else {
                parsed.header
            };
            if take > 0 {
                let cursor = ByteCursor {
                    offset: base,
                    header: header.clone(),
                    ..ByteCursor::default()
                };
                let out = monitor
                    .ingest_formatted(None, drop_format, &cursor, &buf, full, now_micros())
                    .await?;
                tally.add(&out);
            }
            header = next_header;
            buf.drain(..take);
            base += take as u64;
        }
        if !buf.iter().all(u8::is_ascii_whitespace) {
            tally.bad += 1;
            if tally.first_bad.len() < SHOWN_BAD {
                tally.first_bad.push((
                    base,
                    format!(
                        "the last {} bytes of the input are not a complete record",
                        buf.len()
                    ),
                ));
            }
        }
    }
    println!("{} ({})", tally.summary(), format.name());
    tally.show_bad("", format);
    Ok(ExitCode::SUCCESS)
}
