//! `dropwatch config`: decrypt and decode ZeuS-family dynamic configs (config.bin).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use dropwatch_config::{
    extract_citadel, extract_zeus, CitadelKeys, Config, Rc4State, RC4_STATE_LEN,
};

use crate::context::Context;

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Decrypt a dynamic config with a known key and report its URLs, filters and injects.
    Extract {
        /// The sample. Until base-config extraction from a PE is built, this is the config.bin
        /// itself when --dynamic is absent.
        file: PathBuf,
        /// The encrypted dynamic config (config.bin) that goes with the sample.
        #[arg(long, value_name = "CONFIG.BIN")]
        dynamic: Option<PathBuf>,
        /// The builder's text key (`encryption_key` in the kit's config.txt).
        #[arg(long, conflicts_with = "rc4_state")]
        key_text: Option<String>,
        /// The bot's 258-byte RC4 state: 516 hex digits, or a file holding it (raw or hex).
        #[arg(long, value_name = "HEX|FILE")]
        rc4_state: Option<String>,
        /// Citadel: the login key; selects Citadel's AES+ decryption (the RC4 key is the base state).
        #[arg(long)]
        login_key: Option<String>,
        /// Citadel: the 16-byte XOR key, 32 hex digits (default: none).
        #[arg(long, value_name = "HEX", requires = "login_key")]
        aes_xor: Option<String>,
        /// Citadel: BO_CRYPT_SALT (hex, `0x` optional) for builds with the final XOR.
        #[arg(long, value_name = "HEX", requires = "login_key")]
        salt: Option<String>,
        #[arg(long, value_parser = ["text", "json"], default_value = "text")]
        format: String,
    },
}

pub async fn run(_ctx: &Context, cmd: ConfigCmd) -> anyhow::Result<ExitCode> {
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
        } => {
            let path = dynamic.unwrap_or(file);
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let state = match (key_text, rc4_state) {
                (Some(text), None) => Rc4State::from_key(text.as_bytes()),
                (None, Some(arg)) => read_rc4_state(&arg)?,
                _ => anyhow::bail!("give the key: --key-text or --rc4-state (extraction from the bot's base config is not built yet)"),
            };
            let result = match login_key {
                None => extract_zeus(&bytes, &state),
                Some(login) => {
                    let aes_xor = match aes_xor {
                        Some(h) => hex::decode(h.trim())
                            .ok()
                            .and_then(|v| <[u8; 16]>::try_from(v).ok())
                            .ok_or_else(|| anyhow::anyhow!("--aes-xor must be 32 hex digits"))?,
                        None => [0; 16],
                    };
                    let salt = match salt {
                        Some(s) => Some(
                            u32::from_str_radix(
                                s.trim().trim_start_matches("0x").trim_start_matches("0X"),
                                16,
                            )
                            .map_err(|_| anyhow::anyhow!("--salt must be a 32-bit hex number"))?,
                        ),
                        None => None,
                    };
                    extract_citadel(
                        &bytes,
                        &CitadelKeys {
                            rc4_state: state,
                            login_key: login.into_bytes(),
                            aes_xor,
                            salt,
                        },
                    )
                }
            };
            let config = match result {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("dropwatch config extract: {}: {e}", path.display());
                    return Ok(ExitCode::from(2));
                }
            };
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&config)?);
            } else {
                print_text(&path, &config);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
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

fn print_text(path: &Path, c: &Config) {
    println!(
        "{}: {} config ({}), version {}",
        path.display(),
        c.family,
        c.variant,
        c.version.as_deref().unwrap_or("unknown")
    );
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
    for d in &c.diagnostics {
        println!("  note        {d}");
    }
}
