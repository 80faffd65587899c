//! `dropwatch inject`: parse and analyse WebInject files, and register what they reveal.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use dropwatch_inject::{analyze_with, parse_any, EndpointClass, InjectAnalysis, Mode, ParseOutput};
use dropwatch_masks::InstitutionIndex;
use dropwatch_model::{Institution, Registry, ServerRole};
use dropwatch_monitor::KIND_HTTP_JSONL;
use dropwatch_store::Store;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::context::Context;

#[derive(Subcommand)]
pub enum InjectCmd {
    /// Parse webinjects files and report targets, asked-for fields, endpoints, ATS signs.
    Analyze {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Institution registry (JSON); default: the institutions in the store.
        #[arg(long)]
        registry: Option<PathBuf>,
        /// Reject the file at the first error, as the kit's builder does.
        #[arg(long)]
        strict: bool,
        /// Record the injects and the servers they reveal in the store, and watch the drops.
        #[arg(long)]
        store: bool,
        #[arg(long, value_parser = ["text", "json"], default_value = "text")]
        format: String,
    },
}

/// What one webinjects file gave.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: String,
    pub sha256: String,
    /// The detected format and charset.
    pub format: String,
    pub charset: String,
    pub injects: usize,
    pub diagnostics: Vec<dropwatch_inject::Diagnostic>,
    pub analysis: InjectAnalysis,
}

pub fn analyze_bytes(
    name: &str,
    bytes: &[u8],
    strict: bool,
    index: &InstitutionIndex,
) -> anyhow::Result<(ParseOutput, FileReport)> {
    let mode = if strict { Mode::Strict } else { Mode::Tolerant };
    let parsed = parse_any(bytes, mode).map_err(|d| anyhow::anyhow!("{name}:{d}"))?;
    let analysis = analyze_with(&parsed.injects, index, &|b| parsed.decode(b));
    let report = FileReport {
        file: name.to_string(),
        sha256: hex::encode(Sha256::digest(bytes)),
        format: format!("{:?}", parsed.format),
        charset: parsed.charset.to_string(),
        injects: parsed.injects.len(),
        diagnostics: parsed.diagnostics.clone(),
        analysis,
    };
    Ok((parsed, report))
}

/// The server role an endpoint class becomes, and whether its stored data is to be watched.
fn role_of(class: EndpointClass) -> Option<(ServerRole, bool)> {
    match class {
        EndpointClass::Drop => Some((ServerRole::Drop, true)),
        EndpointClass::AtsPanel => Some((ServerRole::AtsPanel, true)),
        EndpointClass::ScriptHost => Some((ServerRole::ScriptHost, false)),
        EndpointClass::Benign | EndpointClass::InstitutionSite => None,
    }
}

/// Stores a parsed file: the sample, its injects, the servers found and monitor sources for drops.
/// Returns the ids of the monitor sources.
/// `base` with `overrides` replacing entries of the same id and adding new ones.
pub fn merge_registries(base: Vec<Institution>, overrides: Vec<Institution>) -> Vec<Institution> {
    let mut out: Vec<Institution> = base
        .into_iter()
        .filter(|b| !overrides.iter().any(|o| o.id == b.id))
        .collect();
    out.extend(overrides);
    out
}

pub async fn register(
    store: &Store,
    parsed: &ParseOutput,
    report: &FileReport,
    index: &InstitutionIndex,
) -> anyhow::Result<Vec<i64>> {
    // Targets may name institutions known only to the bundled registry: record them first.
    let known: Vec<String> = store
        .list_institutions()
        .await?
        .into_iter()
        .map(|i| i.id)
        .collect();
    for id in report.analysis.institutions() {
        if !known.contains(&id) {
            if let Some(inst) = index.get(&id) {
                store.upsert_institution(inst).await?;
            }
        }
    }
    let sample = store
        .upsert_sample(&report.sha256, "webinjects", Some(&report.file))
        .await?;
    let items: Vec<_> = parsed
        .injects
        .iter()
        .cloned()
        .zip(
            report
                .analysis
                .targets
                .iter()
                .map(|t| t.institution_id.clone()),
        )
        .collect();
    store.insert_injects(sample, &items).await?;
    let provenance = format!("webinjects:{}", report.sha256);
    let mut sources = Vec::new();
    for e in &report.analysis.endpoints {
        let Some((role, watch)) = role_of(e.class) else {
            continue;
        };
        let server = store
            .upsert_server(&e.url, &e.host, role, &provenance)
            .await?;
        if watch {
            let id = store
                .add_monitor_source(Some(server), KIND_HTTP_JSONL, &e.url)
                .await?;
            if !sources.contains(&id) {
                sources.push(id);
            }
        }
    }
    Ok(sources)
}

fn print_text(r: &FileReport) {
    println!(
        "{}  sha256 {}  {} ({})",
        r.file.escape_debug(),
        r.sha256,
        r.format,
        r.charset
    );
    println!(
        "  injects: {}  diagnostics: {}",
        r.injects,
        r.diagnostics.len()
    );
    for d in r.diagnostics.iter().take(20) {
        println!("    {d}");
    }
    println!(
        "  institutions targeted: {}",
        r.analysis.institutions().join(", ")
    );
    let unmatched: Vec<_> = r
        .analysis
        .targets
        .iter()
        .filter(|t| t.institution_id.is_none())
        .map(|t| t.url_mask.escape_debug().to_string())
        .collect();
    if !unmatched.is_empty() {
        println!("  targets not in the registry: {}", unmatched.join(", "));
    }
    let grabs = r.analysis.targets.iter().filter(|t| t.grab).count();
    println!(
        "  entries: {} injects, {} grabs",
        r.analysis.targets.len() - grabs,
        grabs
    );
    for class in [
        EndpointClass::Drop,
        EndpointClass::AtsPanel,
        EndpointClass::ScriptHost,
        EndpointClass::Benign,
        EndpointClass::InstitutionSite,
    ] {
        for url in r.analysis.endpoints_of(class) {
            println!("  {:<16} {}", format!("{class:?}"), url.escape_debug());
        }
    }
    let kinds: Vec<&str> = r
        .analysis
        .field_kinds()
        .iter()
        .map(|k| k.as_str())
        .collect();
    println!("  fields asked: {}", kinds.join(", "));
    for f in &r.analysis.fields {
        let label = f
            .label
            .as_deref()
            .map(|l| format!(" (label {:?})", l))
            .unwrap_or_default();
        println!(
            "    entry {:<3} {:<20} {}{}",
            f.entry,
            f.kind.as_str(),
            f.name.escape_debug(),
            label
        );
    }
    for a in &r.analysis.ats_signs {
        println!("  ATS sign: entry {}: {}", a.entry, a.what);
    }
    let mut macros: Vec<&str> = r.analysis.macros.iter().map(|m| m.what.as_str()).collect();
    macros.sort();
    macros.dedup();
    if !macros.is_empty() {
        println!("  bot macros: {}", macros.join(", "));
    }
}

pub async fn run(ctx: &Context, cmd: InjectCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        InjectCmd::Analyze {
            files,
            registry,
            strict,
            store,
            format,
        } => {
            let db = if store || registry.is_none() {
                Some(ctx.store().await?)
            } else {
                None
            };
            let institutions = match (&registry, &db) {
                (Some(path), _) => {
                    let bytes = std::fs::read(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let reg: Registry = serde_json::from_slice(&bytes)
                        .with_context(|| format!("{} is not a registry", path.display()))?;
                    reg.institutions
                }
                // The store's institutions, over the bundled registry (the store wins on an id).
                (None, Some(db)) => merge_registries(
                    dropwatch_masks::bundled_registry().institutions,
                    db.list_institutions().await?,
                ),
                (None, None) => dropwatch_masks::bundled_registry().institutions,
            };
            let index = InstitutionIndex::new(institutions);
            let mut reports = Vec::new();
            let mut failed = false;
            for file in &files {
                let name = file.display().to_string();
                let bytes = std::fs::read(file).with_context(|| format!("reading {name}"))?;
                let (parsed, report) = match analyze_bytes(&name, &bytes, strict, &index) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        failed = true;
                        continue;
                    }
                };
                if format == "text" {
                    print_text(&report);
                }
                if let (true, Some(db)) = (store, &db) {
                    let sources = register(db, &parsed, &report, &index).await?;
                    eprintln!(
                        "{name}: stored {} injects; watching {} drop source(s)",
                        report.injects,
                        sources.len()
                    );
                }
                reports.push(report);
            }
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            }
            Ok(if failed {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
