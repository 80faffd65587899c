//! `dropwatch export`: indicators for CERTs, police and other vendors (STIX 2.1, MISP feed,
//! CSV and plain-text blocklists). Never victims' data: see `docs/sharing.md`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use dropwatch_share::blocklist::ListKind;
use dropwatch_share::{blocklist, misp, stix, AllowList, ExportOptions, Intel, Tlp};
use dropwatch_store::{SharingError, Store};

use crate::context::Context;

#[derive(Subcommand)]
pub enum ExportCmd {
    /// A STIX 2.1 bundle: identities, malware, infrastructure, observables, indicators,
    /// relationships, sightings (counts only).
    Stix {
        #[command(flatten)]
        common: CommonArgs,
        /// Write the bundle here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also store the objects in a TAXII collection (id or alias) that `dropwatch serve`
        /// serves; without a value, the default collection (created if missing). Publishing
        /// the same versions again stores nothing new.
        #[arg(long, num_args = 0..=1, default_missing_value = dropwatch_store::DEFAULT_COLLECTION_ALIAS)]
        publish: Option<String>,
    },
    /// A MISP feed directory: manifest.json, one <uuid>.json per event, hashes.csv.
    Misp {
        #[command(flatten)]
        common: CommonArgs,
        /// The feed directory (created if needed).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Event distribution: 0 your organisation, 1 this community, 2 connected communities,
        /// 3 all communities.
        #[arg(long, default_value = "1")]
        distribution: String,
    },
    /// A CSV blocklist with frozen columns (abuse.ch style).
    Csv {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A plain-text blocklist: one URL, domain or IP address per line.
    Blocklist {
        #[command(flatten)]
        common: CommonArgs,
        /// What the list holds: url, domain or ip.
        #[arg(long = "type", default_value = "url")]
        kind: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct CommonArgs {
    /// Only objects modified at or after this UTC instant (2013-12-01 or
    /// 2013-12-01T00:00:00Z); STIX and MISP only.
    #[arg(long)]
    since: Option<String>,
    /// Traffic Light Protocol level: clear (white), green, amber or red.
    #[arg(long, default_value = "amber")]
    tlp: String,
    /// The producer's name (STIX identity, MISP Orgc).
    #[arg(long, default_value = "dropwatch")]
    producer: String,
    /// An allow file: one domain, IP address or URL prefix per line, `#` comments. Adds to the
    /// bundled list and the institutions' own domains.
    #[arg(long)]
    allow: Option<PathBuf>,
    /// Keep loopback and private addresses (lab data); by default they are suppressed.
    #[arg(long)]
    keep_private: bool,
}

/// A bad argument: reported on one line, exit status 2.
struct BadInput(String);

fn options(common: &CommonArgs) -> Result<(ExportOptions, AllowList), BadInput> {
    let tlp = Tlp::parse(&common.tlp).ok_or_else(|| {
        BadInput(format!(
            "--tlp {:?}: expected clear, white, green, amber or red",
            common.tlp
        ))
    })?;
    let since = match &common.since {
        Some(s) => Some(dropwatch_share::time::parse_timestamp(s).ok_or_else(|| {
            BadInput(format!(
                "--since {s:?}: expected a UTC date or timestamp like 2013-12-01T00:00:00Z"
            ))
        })?),
        None => None,
    };
    let producer = common.producer.trim();
    if producer.is_empty() || producer.chars().any(char::is_control) {
        return Err(BadInput(
            "--producer must be a non-empty name without control characters".into(),
        ));
    }
    let mut allow = AllowList::empty();
    if let Some(path) = &common.allow {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BadInput(format!("--allow {}: {e}", path.display())))?;
        allow.add_user_file(&text).map_err(|errors| {
            let first = &errors[0];
            BadInput(format!(
                "--allow {}: {first}{}",
                path.display(),
                if errors.len() > 1 {
                    format!(" (and {} more bad lines)", errors.len() - 1)
                } else {
                    String::new()
                }
            ))
        })?;
    }
    allow.keep_non_public(common.keep_private);
    Ok((
        ExportOptions {
            producer: producer.to_string(),
            tlp,
            since,
            misp_distribution: 1,
        },
        allow,
    ))
}

/// Reads the store and applies every allow-list: the bundled one, the institutions' domains,
/// the user's file.
async fn load_from(store: &Store, user_allow: &AllowList) -> anyhow::Result<Intel> {
    let actor = format!(
        "cli:export:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let snapshot = store.intel_snapshot(&actor).await?;
    let mut allow = Intel::default_allow_list(&snapshot);
    allow.merge(user_allow);
    Ok(Intel::build(&snapshot, &allow))
}

async fn load(ctx: &Context, user_allow: &AllowList) -> anyhow::Result<Intel> {
    let store = ctx.store().await?;
    let intel = load_from(&store, user_allow).await;
    store.close().await;
    intel
}

fn write_out(out: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes)?;
            stdout.flush()?;
            Ok(())
        }
    }
}

fn report(intel: &Intel, what: &str, started: Instant) {
    let reasons: Vec<String> = intel
        .suppressed_by_reason()
        .iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    eprintln!(
        "{what} from {} servers in {:.1} ms; {} servers suppressed{}",
        intel.servers.len(),
        started.elapsed().as_secs_f64() * 1000.0,
        intel.suppressed.len(),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        }
    );
}

fn bad(msg: &str) -> anyhow::Result<ExitCode> {
    eprintln!("dropwatch export: {msg}");
    Ok(ExitCode::from(2))
}

pub async fn run(ctx: &Context, cmd: ExportCmd) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let common = match &cmd {
        ExportCmd::Stix { common, .. }
        | ExportCmd::Misp { common, .. }
        | ExportCmd::Csv { common, .. }
        | ExportCmd::Blocklist { common, .. } => common,
    };
    let (mut opts, user_allow) = match options(common) {
        Ok(x) => x,
        Err(BadInput(msg)) => return bad(&msg),
    };
    match cmd {
        ExportCmd::Stix { out, publish, .. } => {
            let store = ctx.store().await?;
            let intel = load_from(&store, &user_allow).await?;
            let bundle = stix::bundle(&intel, &opts);
            let mut bytes = serde_json::to_vec_pretty(&bundle)?;
            bytes.push(b'\n');
            write_out(out.as_deref(), &bytes)?;
            let objects = bundle["objects"].as_array().cloned().unwrap_or_default();
            report(
                &intel,
                &format!("STIX bundle: {} objects", objects.len()),
                started,
            );
            if let Some(collection) = publish {
                let outcome = store.publish_stix(&collection, &objects).await;
                store.close().await;
                match outcome {
                    Ok(o) => eprintln!(
                        "published to TAXII collection {collection}: {} new object versions, {} unchanged",
                        o.added, o.unchanged
                    ),
                    Err(SharingError::UnknownCollection(c)) => {
                        return bad(&format!("--publish {c:?}: no such collection"))
                    }
                    Err(e) => return Err(e).context("publishing to the TAXII collection"),
                }
            } else {
                store.close().await;
            }
        }
        ExportCmd::Misp {
            out, distribution, ..
        } => {
            let Some(dir) = out else {
                return bad("misp writes a feed directory: give --out DIR");
            };
            match distribution.parse::<u8>() {
                Ok(d) if d <= 3 => opts.misp_distribution = d,
                _ => {
                    return bad(&format!(
                        "--distribution {distribution:?}: expected 0, 1, 2 or 3"
                    ))
                }
            }
            if dir.exists() && !dir.is_dir() {
                return bad(&format!("--out {}: not a directory", dir.display()));
            }
            let intel = load(ctx, &user_allow).await?;
            let events = misp::events(&intel, &opts);
            let summary = misp::write_feed(&dir, &events)
                .with_context(|| format!("writing the feed to {}", dir.display()))?;
            report(
                &intel,
                &format!(
                    "MISP feed {}: {} events, {} attributes ({} stale event files removed)",
                    dir.display(),
                    summary.events,
                    summary.attributes,
                    summary.removed
                ),
                started,
            );
        }
        ExportCmd::Csv { out, .. } => {
            let intel = load(ctx, &user_allow).await?;
            write_out(out.as_deref(), blocklist::csv(&intel, &opts).as_bytes())?;
            report(&intel, "CSV blocklist", started);
        }
        ExportCmd::Blocklist { kind, out, .. } => {
            let Some(list_kind) = ListKind::parse(&kind) else {
                return bad(&format!("--type {kind:?}: expected url, domain or ip"));
            };
            let intel = load(ctx, &user_allow).await?;
            write_out(
                out.as_deref(),
                blocklist::plain(&intel, &opts, list_kind).as_bytes(),
            )?;
            report(&intel, &format!("{kind} blocklist"), started);
        }
    }
    Ok(ExitCode::SUCCESS)
}
