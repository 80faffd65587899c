//! `dropwatch institution`: the registry of institutions and their webhooks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use dropwatch_model::{Institution, Registry};
use dropwatch_store::{Store, TokenScope, TokenSecret};

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
    /// API tokens: create (shown once), revoke, list.
    #[command(subcommand)]
    Token(TokenCmd),
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

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create an API token and print it once (only its SHA-256 is stored).
    Create {
        /// The institution whose data an `institution` token may read; none for other roles.
        #[arg(required_if_eq("role", "institution"))]
        id: Option<String>,
        #[arg(long, value_enum, default_value_t = Role::Institution)]
        role: Role,
        /// A name for the token, shown in the audit log.
        #[arg(long)]
        label: Option<String>,
    },
    /// Revoke a token by its id (from `token list` or `token create`).
    Revoke { token_id: i64 },
    /// List tokens (never their text).
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Everything, every institution.
    Analyst,
    /// One institution's alerts and victims.
    Institution,
    /// Indicators only, no personal data.
    Partner,
}

async fn run_token(store: &Store, cmd: TokenCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCmd::Create { id, role, label } => {
            let scope = match (role, id) {
                (Role::Institution, Some(id)) => TokenScope::Institution(id),
                (Role::Institution, None) => {
                    anyhow::bail!("an institution token needs the institution's id")
                }
                (Role::Analyst | Role::Partner, Some(id)) => {
                    anyhow::bail!("{id}: only institution tokens belong to an institution")
                }
                (Role::Analyst, None) => TokenScope::Analyst,
                (Role::Partner, None) => TokenScope::Partner,
            };
            let label = label.unwrap_or_else(|| match &scope {
                TokenScope::Institution(id) => id.clone(),
                other => other.role().to_string(),
            });
            // 32 bytes from the OS-seeded CSPRNG.
            let secret = TokenSecret::from_bytes(rand::random());
            let token = store.create_api_token(&secret, &scope, &label).await?;
            println!(
                "token {} ({}, {label}) created; shown once, keep it secret:\n{}",
                token.id,
                scope.role(),
                secret.expose()
            );
        }
        TokenCmd::Revoke { token_id } => {
            if store.revoke_api_token(token_id).await? {
                println!("token {token_id} revoked");
            } else {
                anyhow::bail!("no active token {token_id}");
            }
        }
        TokenCmd::List { json } => {
            let tokens = store.list_api_tokens().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                for t in tokens {
                    println!(
                        "{:>4} {:<11} {:<24} {:<24} {}",
                        t.id,
                        t.scope.role(),
                        t.scope.institution_id().unwrap_or("-"),
                        t.label,
                        if t.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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
        InstitutionCmd::Token(cmd) => return run_token(&store, cmd).await,
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
