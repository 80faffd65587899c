//! `dropwatch audit`: read the audit log, newest first.

use std::process::ExitCode;

use clap::Args;
use dropwatch_store::AuditQuery;

use crate::context::Context;

#[derive(Args)]
pub struct AuditArgs {
    /// How many entries, newest first.
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// Only this actor's entries (e.g. `token:3:bank ops`).
    #[arg(long)]
    actor: Option<String>,
    /// Only entries older than this entry id (paging).
    #[arg(long)]
    before: Option<i64>,
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Context, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let entries = store
        .query_audit(&AuditQuery {
            actor: args.actor,
            before_id: args.before,
            limit: args.limit.max(0),
        })
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        for e in &entries {
            println!(
                "{:>6} {} {:<28} {:<36} {}",
                e.id, e.at, e.actor, e.action, e.subject
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
