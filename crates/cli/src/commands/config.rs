//! `dropwatch config`: decrypt and decode ZeuS-family dynamic configs (config.bin).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use dropwatch_config::basecfg::merge;
use dropwatch_config::{
    extract_citadel, extract_with_base, extract_zeus, locate, BaseConfig, CitadelKeys, Config,
    Rc4State, Report, SampleRef, RC4_STATE_LEN,
};
use dropwatch_masks::{host_of, InstitutionIndex};
use dropwatch_model::ServerRole;
use dropwatch_store::{canonical_hash, NewConfig, Store};
use sha2::{Digest, Sha256};

use crate::context::Context;

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Report a bot's config: from an unpacked bot image (PE), its base config (config URL,
    /// botnet, keys) and, with --dynamic, its decrypted config.bin; or a config.bin with a key.
    Extract {
        /// The unpacked bot image (PE32). Without --dynamic, a file that is not a PE is taken
        /// as the config.bin itself, to decrypt with the key options.
        file: PathBuf,
        /// The encrypted dynamic config (config.bin) that goes with the bot image.
        #[arg(long, value_name = "CONFIG.BIN")]
        dynamic: Option<PathBuf>,
        /// The builder's text key (`encryption_key` in the kit's config.txt); overrides the
        /// bot image's RC4 state.
        #[arg(long, conflicts_with = "rc4_state")]
        key_text: Option<String>,
        /// The bot's 258-byte RC4 state: 516 hex digits, or a file holding it (raw or hex);
        /// overrides the bot image's.
        #[arg(long, value_name = "HEX|FILE")]
        rc4_state: Option<String>,
        /// Citadel: the login key; selects Citadel's AES+ decryption (the RC4 key is the base state).
        #[arg(long)]
        login_key: Option<String>,
        /// Citadel: the 16-byte XOR key, 32 hex digits (default: the bot image's, else none).
        #[arg(long, value_name = "HEX", requires = "login_key")]
        aes_xor: Option<String>,
        /// Citadel: BO_CRYPT_SALT (hex, `0x` optional) for builds with the final XOR.
        #[arg(long, value_name = "HEX", requires = "login_key")]
        salt: Option<String>,
        #[arg(long, value_parser = ["text", "json"], default_value = "text")]
        format: String,
        /// Store the config, its servers (C2 gate, config URLs, loader) and its injects.
        #[arg(long)]
        store: bool,
    },
}

/// Key options given on the command line.
struct KeyArgs {
    key_text: Option<String>,
    rc4_state: Option<String>,
    login_key: Option<String>,
    aes_xor: Option<String>,
    salt: Option<String>,
}

impl KeyArgs {
    fn any(&self) -> bool {
        self.key_text.is_some() || self.rc4_state.is_some() || self.login_key.is_some()
    }
}

fn fail(path: &Path, e: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("dropwatch config extract: {}: {e}", path.display());
    Ok(ExitCode::from(2))
}

pub async fn run(ctx: &Context, cmd: ConfigCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCmd::Extract {
            file,
            dynamic,
            key_text,
            rc4_state,
            login_key,
            aes_xor,
            salt,
            format,
            store,
        } => {
            let args = KeyArgs {
                key_text,
                rc4_state,
                login_key,
                aes_xor,
                salt,
            };
            let sample =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            // The bot image: always with --dynamic, else when it looks like a PE.
            let base = if dynamic.is_some() || sample.starts_with(b"MZ") || !args.any() {
                match locate(&sample) {
                    Ok(b) => Some(b),
                    // A config.bin may start with MZ by chance; with a key it is one.
                    Err(_) if dynamic.is_none() && args.any() => None,
                    Err(e) => {
                        if dynamic.is_some() && args.any() {
                            tracing::warn!("{}: {e}; using the key options alone", file.display());
                            None
                        } else if dynamic.is_none() && !sample.starts_with(b"MZ") {
                            return fail(
                                &file,
                                format!("{e} (a config.bin needs --key-text or --rc4-state)"),
                            );
                        } else {
                            return fail(&file, e);
                        }
                    }
                }
            } else {
                None
            };
            let (config_path, config_bytes) = match &dynamic {
                Some(p) => (
                    p.clone(),
                    Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
                ),
                None if base.is_none() => (file.clone(), Some(sample.clone())),
                None => (file.clone(), None),
            };
            let mut report = match (config_bytes.as_deref(), &base) {
                (None, Some(b)) => Report::from_base(b),
                (Some(bytes), Some(b)) if !args.any() => match extract_with_base(b, bytes) {
                    Ok(cfg) => Report::with_base(cfg, b),
                    Err(e) => return fail(&config_path, e),
                },
                (Some(bytes), base) => {
                    let result = decrypt_with_args(bytes, &args, base.as_ref())?;
                    match (result, base) {
                        (Ok(cfg), Some(b)) => Report::with_base(merge(b, cfg), b),
                        (Ok(cfg), None) => Report::from(cfg),
                        (Err(e), _) => return fail(&config_path, e),
                    }
                }
                (None, None) => anyhow::bail!("nothing to report: no bot image and no config"),
            };
            let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
            report.samples.push(SampleRef {
                sha256: hex::encode(Sha256::digest(&sample)),
                kind: if dynamic.is_some() || report.base_config.is_some() {
                    "pe"
                } else {
                    "config_bin"
                }
                .to_string(),
                name: name(&file),
            });
            if let (Some(p), Some(bytes)) = (&dynamic, &config_bytes) {
                report.samples.push(SampleRef {
                    sha256: hex::encode(Sha256::digest(bytes)),
                    kind: "config_bin".to_string(),
                    name: name(p),
                });
            }
            if store {
                let s = ctx.store().await?;
                let summary = store_report(&s, &report).await?;
                eprintln!("{summary}");
            }
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_text(&file, &report);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Decrypts with the key options, the bot image filling in what they leave out.
fn decrypt_with_args(
    bytes: &[u8],
    args: &KeyArgs,
    base: Option<&BaseConfig>,
) -> anyhow::Result<Result<Config, dropwatch_config::ConfigError>> {
    let state = match (&args.key_text, &args.rc4_state, base) {
        (Some(text), None, _) => Rc4State::from_key(text.as_bytes()),
        (None, Some(arg), _) => read_rc4_state(arg)?,
        (None, None, Some(b)) => b.rc4_state.clone(),
        _ => anyhow::bail!("give the key: --key-text or --rc4-state, or the bot image"),
    };
    let login = args.login_key.clone().map(String::into_bytes).or_else(|| {
        base.and_then(|b| b.login_key.as_ref())
            .map(|(k, _)| k.clone())
            .filter(|_| base.is_some_and(|b| b.family == dropwatch_config::Family::Citadel))
    });
    let Some(login) = login else {
        return Ok(extract_zeus(bytes, &state));
    };
    let aes_xor = match &args.aes_xor {
        Some(h) => hex::decode(h.trim())
            .ok()
            .and_then(|v| <[u8; 16]>::try_from(v).ok())
            .ok_or_else(|| anyhow::anyhow!("--aes-xor must be 32 hex digits"))?,
        None => base.and_then(|b| b.aes_xor).unwrap_or([0; 16]),
    };
    let salt = match &args.salt {
        Some(s) => Some(
            u32::from_str_radix(
                s.trim().trim_start_matches("0x").trim_start_matches("0X"),
                16,
            )
            .map_err(|_| anyhow::anyhow!("--salt must be a 32-bit hex number"))?,
        ),
        None => base.and_then(|b| b.salt),
    };
    Ok(extract_citadel(
        bytes,
        &CitadelKeys {
            rc4_state: state,
            login_key: login,
            aes_xor,
            salt,
        },
    ))
}

/// The part of a report that identifies the config: what it says, not how it was stored
/// (random prefix, keys, offsets, diagnostics) nor which files carried it.
fn content(report: &Report) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(report)?;
    if let Some(map) = v.as_object_mut() {
        for k in ["storage", "keys", "base_config", "diagnostics", "samples"] {
            map.remove(k);
        }
    }
    Ok(v)
}

/// Stores the sample(s), the config, its servers and its injects; returns a one-line summary.
/// The config is linked to the last sample of the report (the config.bin when there is one).
/// A report without samples (made by another tool, or edited) is linked to a sample named by
/// the hash of its canonical content, of kind `config_report`.
pub(crate) async fn store_report(store: &Store, report: &Report) -> anyhow::Result<String> {
    let mut sample_id = None;
    for s in &report.samples {
        if s.sha256.len() != 64 || !s.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            anyhow::bail!("sample hash {:?} is not a SHA-256", s.sha256);
        }
        if !matches!(s.kind.as_str(), "pe" | "config_bin") {
            anyhow::bail!("sample kind {:?} is neither pe nor config_bin", s.kind);
        }
        sample_id = Some(
            store
                .upsert_sample(&s.sha256.to_ascii_lowercase(), &s.kind, s.name.as_deref())
                .await?,
        );
    }
    let sample_id = match sample_id {
        Some(id) => id,
        None => {
            store
                .upsert_sample(&canonical_hash(&content(report)?), "config_report", None)
                .await?
        }
    };
    let mut targets: Vec<String> = report.injects.iter().map(|i| i.url_mask.clone()).collect();
    targets.extend(report.webfilters.iter().map(|f| f.mask.clone()));
    let inserted = store
        .insert_config(&NewConfig {
            sample_id: Some(sample_id),
            family: report.family.as_str().to_string(),
            version: report.version.clone(),
            botnet: report.botnet.clone(),
            body: content(report)?,
            targets,
        })
        .await?;
    let provenance = format!("config:{}", inserted.canonical_hash);
    let mut servers = 0;
    let roles = report
        .c2_urls
        .iter()
        .map(|u| (u, ServerRole::C2Gate))
        .chain(
            report
                .config_urls
                .iter()
                .map(|u| (u, ServerRole::ConfigUrl)),
        )
        .chain(report.loader_url.iter().map(|u| (u, ServerRole::Loader)));
    for (url, role) in roles {
        let host = host_of(url).unwrap_or_default();
        store.upsert_server(url, &host, role, &provenance).await?;
        servers += 1;
    }
    let index = InstitutionIndex::new(store.list_institutions().await?);
    let items: Vec<_> = report
        .injects
        .iter()
        .map(|i| {
            (
                i.clone(),
                index.lookup_mask(&i.url_mask).map(|inst| inst.id.clone()),
            )
        })
        .collect();
    let new_injects = store.insert_injects(sample_id, &items).await?;
    let mut line = format!(
        "stored config #{} ({}; {}), {servers} servers, {new_injects} new injects",
        inserted.id,
        if inserted.is_new {
            "new"
        } else {
            "already known"
        },
        inserted.canonical_hash
    );
    if let Some(ev) = &inserted.event {
        line.push_str(&format!(
            "; event: botnet {} adds {} targets since config #{}",
            ev.botnet,
            ev.targets.len(),
            ev.previous_config_id.unwrap_or_default()
        ));
    }
    Ok(line)
}

/// A 258-byte RC4 state from 516 hex digits, or from a file holding it raw or as hex.
fn read_rc4_state(arg: &str) -> anyhow::Result<Rc4State> {
    let trimmed = arg.trim();
    let raw =
        if trimmed.len() == RC4_STATE_LEN * 2 && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(trimmed)?
        } else {
            let data = std::fs::read(Path::new(arg)).with_context(|| {
                format!("--rc4-state: {arg} is neither 516 hex digits nor a readable file")
            })?;
            if data.len() == RC4_STATE_LEN {
                data
            } else {
                let text = String::from_utf8_lossy(&data);
                hex::decode(text.trim()).map_err(|_| {
                    anyhow::anyhow!(
                        "--rc4-state file {arg} is neither 258 raw bytes nor 516 hex digits"
                    )
                })?
            }
        };
    let state = Rc4State::from_bytes(&raw)?;
    if !state.is_permutation() {
        tracing::warn!(
            "the RC4 state's S-box is not a permutation; it was not made by a key schedule"
        );
    }
    Ok(state)
}

fn print_text(path: &Path, c: &Report) {
    println!(
        "{}: {} {} ({}), version {}",
        path.display(),
        c.family,
        if c.storage.is_some() {
            "config"
        } else {
            "bot image"
        },
        c.variant
            .map_or("variant unknown until a config decrypts", |v| v.as_str()),
        c.version.as_deref().unwrap_or("unknown")
    );
    if let Some(b) = &c.botnet {
        println!("  botnet      {b}");
    }
    if let Some(b) = &c.base_config {
        let l = &b.location;
        let hidden = match (l.key_block_va, l.keystream) {
            (Some(key), Some(ks)) => format!(
                "RC4 ({}) under the key block at VA 0x{key:08x}",
                ks.as_str()
            ),
            _ => format!("XOR section {}", l.xor_section),
        };
        println!(
            "  base config VA 0x{:08x}, {} bytes in {}, {hidden}, rc4 state at +{}",
            l.va, l.size, l.section, l.rc4_offset
        );
    }
    for u in &c.c2_urls {
        println!("  c2 gate     {u}");
    }
    if let Some(u) = &c.loader_url {
        println!("  loader      {u}");
    }
    for u in &c.config_urls {
        println!("  config url  {u}");
    }
    for f in &c.webfilters {
        println!("  webfilter   {:<24} {}", format!("{:?}", f.action), f.mask);
    }
    for f in &c.webdata_filters {
        println!("  datafilter  {} [{}]", f.url_mask, f.variables.join(";"));
    }
    println!("  injects     {}", c.injects.len());
    for i in &c.injects {
        println!(
            "    {:<4} {} ({} triplets)",
            i.flags,
            i.url_mask,
            i.blocks.len()
        );
    }
    if let Some(h) = &c.keys.rc4_state_sha256 {
        println!("  rc4 state   sha256 {h}");
    }
    if let Some(k) = &c.keys.login_key {
        println!("  login key   {k}");
    }
    if let Some(k) = &c.keys.salt {
        println!("  salt        {k}");
    }
    if let Some(k) = &c.keys.aes_xor {
        println!("  aes xor     {k}");
    }
    for d in &c.diagnostics {
        println!("  note        {d}");
    }
}
