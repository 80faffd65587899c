//! `dropwatch institution`: the registry of institutions and their webhooks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use dropwatch_model::{Institution, Registry};

use crate::context::{random_secret, Context};

#[derive(Subcommand)]
pub enum InstitutionCmd {
    /// Add or update one institution.
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        country: String,
        /// A domain of its sites (repeatable).
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// A ZeuS-style URL mask of its sites (repeatable).
        #[arg(long = "url-mask")]
        url_masks: Vec<String>,
        /// A form field that carries its customers' account identifiers (repeatable).
        #[arg(long = "account-field")]
        account_fields: Vec<String>,
    },
    /// Add or update every institution of a registry file (`{"institutions": [...]}`, see
    /// docs/registry.md), or of the bundled registry.
    Import {
        #[arg(required_unless_present = "bundled")]
        file: Option<PathBuf>,
        /// Import the registry bundled with dropwatch (major banks of Japan and of the corpus).
        #[arg(long, conflicts_with = "file")]
        bundled: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set where the institution's alerts go. Prints the signing secret once.
    Webhook {
        id: String,
        #[arg(long)]
        url: String,
        /// Use this secret instead of a generated one.
        #[arg(long)]
        secret: Option<String>,
    },
}

pub async fn run(ctx: &Context, cmd: InstitutionCmd) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        InstitutionCmd::Add {
            id,
            name,
            country,
            domains,
            url_masks,
            account_fields,
        } => {
            store
                .upsert_institution(&Institution {
                    id: id.clone(),
                    name,
                    country,
                    domains,
                    url_masks,
                    account_fields,
                })
                .await?;
            println!("institution {id} saved");
        }
        InstitutionCmd::Import { file, bundled } => {
            let reg = match (file, bundled) {
                (Some(file), _) => {
                    let bytes = std::fs::read(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    serde_json::from_slice::<Registry>(&bytes)
                        .with_context(|| format!("{} is not a registry", file.display()))?
                }
                (None, _) => dropwatch_masks::bundled_registry(),
            };
            for inst in &reg.institutions {
                store.upsert_institution(inst).await?;
            }
            println!("{} institutions imported", reg.institutions.len());
        }
        InstitutionCmd::List { json } => {
            let all = store.list_institutions().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&Registry { institutions: all })?
                );
            } else {
                for i in all {
                    println!(
                        "{:<24} {:<2} {:<36} {}",
                        i.id,
                        i.country,
                        i.name,
                        i.domains.join(",")
                    );
                }
            }
        }
        InstitutionCmd::Webhook { id, url, secret } => {
            let generated = secret.is_none();
            let secret = secret.unwrap_or_else(random_secret);
            store.set_webhook(&id, &url, &secret).await?;
            if generated {
                println!("webhook set for {id}; signing secret (shown once): {secret}");
            } else {
                println!("webhook set for {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
