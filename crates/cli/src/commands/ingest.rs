//! `dropwatch ingest`: drop records from a file or stdin, or a config report.
//!
//! A file holding one JSON object that is a `dropwatch config extract --format json` report is
//! stored as a config (its samples, servers and injects), exactly as `config extract --store`
//! would: a config can be extracted on an isolated analysis machine and only its report carried
//! to the production store.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use dropwatch_config::Report;
use dropwatch_deliver::DeliveryConfig;
use dropwatch_monitor::{MonitorConfig, KIND_FILE_JSONL};
use dropwatch_store::now_micros;

use crate::context::Context;

#[derive(Args)]
pub struct IngestArgs {
    /// A file of panel reports as JSON lines, or `-` for stdin. A file is remembered with its
    /// cursor, so ingesting it again reads only what was appended. A config report (the JSON
    /// of `dropwatch config extract`) is stored as a config instead.
    path: PathBuf,
}

/// Largest file looked at as a possible config report; drops are larger and are streamed.
const MAX_REPORT_BYTES: u64 = 64 << 20;

/// The file's config report, if it is one: a single JSON object that parses as a report.
fn config_report(path: &std::path::Path) -> Option<Report> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_REPORT_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice::<Report>(&bytes).ok()
}

pub async fn run(ctx: &Context, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    if args.path.as_os_str() != "-" {
        if let Some(report) = config_report(&args.path) {
            match super::config::store_report(&store, &report).await {
                Ok(summary) => {
                    println!("{}: {summary}", args.path.display());
                    return Ok(ExitCode::SUCCESS);
                }
                Err(e) => {
                    eprintln!("dropwatch ingest: {}: {e:#}", args.path.display());
                    return Ok(ExitCode::from(2));
                }
            }
        }
    }
    let (monitor, _deliverer, _) = super::monitor::pipeline(
        ctx,
        &store,
        MonitorConfig::default(),
        DeliveryConfig::default(),
    )
    .await?;
    let out = if args.path.as_os_str() == "-" {
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .context("reading stdin")?;
        if !data.ends_with(b"\n") {
            data.push(b'\n');
        }
        monitor.ingest_chunk(None, 0, &data, now_micros()).await?
    } else {
        let path = std::fs::canonicalize(&args.path)
            .with_context(|| format!("reading {}", args.path.display()))?;
        let id = store
            .add_monitor_source(None, KIND_FILE_JSONL, &path.display().to_string())
            .await?;
        let source = store
            .list_monitor_sources()
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .context("source vanished")?;
        monitor.poll(&source).await?
    };
    println!(
        "{} lines: {} new records, {} duplicates, {} unattributed, {} bad lines, {} new victims, {} alerts queued",
        out.lines,
        out.ingest.new_records,
        out.ingest.duplicate_records,
        out.ingest.unattributed,
        out.bad_lines.len(),
        out.ingest.new_victims,
        out.ingest.alerts
    );
    for (offset, err) in out.bad_lines.iter().take(10) {
        eprintln!("  byte {offset}: {err}");
    }
    Ok(ExitCode::SUCCESS)
}
