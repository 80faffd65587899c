//! `dropwatch alerts`: the outbox (list alerts by delivery status) and re-delivery on demand.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use dropwatch_store::delivery_ops::Redelivery;

use crate::context::Context;

#[derive(Clone, Copy, ValueEnum)]
pub enum Status {
    Pending,
    Delivered,
    Dead,
    Undeliverable,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Dead => "dead",
            Status::Undeliverable => "undeliverable",
        }
    }
}

#[derive(Subcommand)]
pub enum AlertsCmd {
    /// List alerts, newest first, with their delivery state (no account data).
    List {
        /// Only alerts in this status.
        #[arg(long)]
        status: Option<Status>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Send a dead or delivered alert again (same idempotency key, same body); the running
    /// delivery worker (`dropwatch serve`) picks it up.
    Redeliver { id: i64 },
}

fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

pub async fn run(ctx: &Context, cmd: AlertsCmd) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        AlertsCmd::List {
            status,
            limit,
            json,
        } => {
            let alerts = store
                .list_alerts(status.map(Status::as_str), limit.max(0))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&alerts)?);
            } else {
                for a in &alerts {
                    println!(
                        "{:>8} {:<24} {:<13} {:<12} attempts={:<3} created={} delivered={}{}",
                        a.id,
                        a.institution_id,
                        a.status,
                        a.reason,
                        a.attempts,
                        a.created_at,
                        a.delivered_at.map_or("-".to_string(), |t| t.to_string()),
                        a.last_error
                            .as_deref()
                            .filter(|_| a.status != "delivered")
                            .map(|e| format!("  (last error: {e})"))
                            .unwrap_or_default()
                    );
                }
                eprintln!("{} alerts", alerts.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        AlertsCmd::Redeliver { id } => {
            let outcome = store.redeliver_alert(id).await?;
            match &outcome {
                Redelivery::Queued { previous } => {
                    store
                        .audit(
                            &actor(),
                            "redeliver_alert",
                            &format!("alert={id} previous={previous}"),
                        )
                        .await?;
                    println!("alert {id} ({previous}) queued for re-delivery");
                    Ok(ExitCode::SUCCESS)
                }
                Redelivery::AlreadyPending => {
                    println!("alert {id} is already waiting for delivery");
                    Ok(ExitCode::SUCCESS)
                }
                Redelivery::NotRedeliverable { status } => {
                    eprintln!("alert {id} is {status}: it cannot be re-delivered");
                    Ok(ExitCode::FAILURE)
                }
                Redelivery::NotFound => {
                    eprintln!("no alert {id}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
