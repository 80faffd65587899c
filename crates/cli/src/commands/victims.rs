//! `dropwatch victims`: read victims (audited).

use std::process::ExitCode;

use clap::Args;

use crate::context::Context;

#[derive(Args)]
pub struct VictimsArgs {
    /// Only this institution's victims.
    #[arg(long)]
    institution: Option<String>,
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Context, args: VictimsArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let victims = store
        .list_victims(&actor, args.institution.as_deref())
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&victims)?);
    } else {
        for v in &victims {
            let exposed: Vec<&str> = v.exposed.iter().map(|k| k.as_str()).collect();
            println!(
                "{:<24} {:<16} {:<8} {}",
                v.institution_id,
                v.account,
                v.urgency,
                exposed.join(",")
            );
        }
        eprintln!("{} victims", victims.len());
    }
    Ok(ExitCode::SUCCESS)
}
