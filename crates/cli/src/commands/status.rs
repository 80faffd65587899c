//! `dropwatch status`: workers alive, leases held, queue depths, lag per source, delivery
//! backlog.

use std::process::ExitCode;

use clap::Args;
use dropwatch_store::now_micros;

use crate::context::Context;

#[derive(Args)]
pub struct StatusArgs {
    /// Print the whole status as JSON (every source's lag included).
    #[arg(long)]
    json: bool,
    /// How many of the most lagging sources the text output lists.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

fn secs(us: i64) -> String {
    format!("{:.1}s", us as f64 / 1e6)
}

pub async fn run(ctx: &Context, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let now = now_micros();
    let st = store.cluster_status(now).await?;
    store.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "workers: {} alive of {} registered",
        st.workers_alive,
        st.workers.len()
    );
    for w in &st.workers {
        let state = if w.alive {
            "alive".to_string()
        } else if let Some(t) = w.stopped_at {
            format!("stopped {} ago", secs(now - t))
        } else {
            "dead".to_string()
        };
        println!(
            "  {:<28} {:<14} pid {:<7} {:<24} {:<16} heartbeat {} ago, lease {}, holds {} sources, {} alerts",
            w.id,
            w.host,
            w.pid,
            w.roles.join(","),
            state,
            secs(now - w.heartbeat_at),
            secs(w.lease_ttl_us),
            w.sources_held,
            w.alerts_held
        );
    }
    println!(
        "sources: {} active, {} due and unclaimed, {} leased",
        st.sources_active, st.sources_due, st.sources_leased
    );
    println!(
        "alerts: {} pending ({} due now, {} leased), {} dead letters; oldest pending {}",
        st.alerts_pending,
        st.alerts_due,
        st.alerts_leased,
        st.alerts_dead,
        st.oldest_pending_age_us
            .map_or("-".to_string(), |a| format!("{} old", secs(a)))
    );
    let mut lagging: Vec<_> = st.sources.iter().filter(|s| s.state == "active").collect();
    lagging.sort_by_key(|s| std::cmp::Reverse(s.lag_us.unwrap_or(i64::MAX)));
    if !lagging.is_empty() {
        println!("most lagging sources (now − last poll):");
    }
    for s in lagging.into_iter().take(args.top) {
        println!(
            "  {:>5} {:>8} cursor={:<10} {:<22} {}{}",
            s.id,
            s.lag_us.map_or("never".to_string(), secs),
            s.cursor.as_deref().unwrap_or("-"),
            s.lease_owner
                .as_deref()
                .map_or("unleased".to_string(), |o| format!("leased by {o}")),
            s.url,
            s.last_error
                .as_deref()
                .map(|e| format!("  (last error: {e})"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
