//! `dropwatch monitor`: the sources to watch, and the loop that watches them and delivers alerts.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use dropwatch_deliver::{Deliverer, DeliveryConfig};
use dropwatch_masks::InstitutionIndex;
use dropwatch_monitor::{
    Monitor, MonitorConfig, KIND_FILE_CSV, KIND_FILE_GRABS_TXT, KIND_FILE_JSON, KIND_FILE_JSONL,
    KIND_FILE_REPORTS_TXT, KIND_FILE_SQL_DUMP, KIND_HTTP_CSV, KIND_HTTP_GRABS_TXT, KIND_HTTP_JSON,
    KIND_HTTP_JSONL, KIND_HTTP_JSON_PAGES, KIND_HTTP_REPORTS_TXT, KIND_HTTP_SQL_DUMP,
    KIND_PANEL_MYSQL,
};
use dropwatch_records::RecordAnalyzer;
use dropwatch_store::Store;
use tokio::sync::{watch, Notify};

use crate::context::Context;

#[derive(Subcommand)]
pub enum MonitorCmd {
    /// Watch a source: an HTTP(S) URL or a local file of panel reports as JSON lines.
    Add {
        url: String,
        #[arg(long, value_parser = [KIND_HTTP_JSONL, KIND_FILE_JSONL, KIND_HTTP_JSON, KIND_FILE_JSON, KIND_HTTP_JSON_PAGES, KIND_HTTP_CSV, KIND_FILE_CSV, KIND_HTTP_REPORTS_TXT, KIND_FILE_REPORTS_TXT, KIND_HTTP_GRABS_TXT, KIND_FILE_GRABS_TXT, KIND_HTTP_SQL_DUMP, KIND_FILE_SQL_DUMP, KIND_PANEL_MYSQL], default_value = KIND_HTTP_JSONL)]
        kind: String,
    },
    List,
    Pause {
        id: i64,
    },
    Resume {
        id: i64,
    },
    /// Poll every active source on its schedule and deliver alerts, until Ctrl-C.
    Run {
        /// Poll every source once, deliver what is due, and exit.
        #[arg(long)]
        once: bool,
        /// Seconds between polls of one source.
        #[arg(long, default_value_t = 60.0)]
        interval: f64,
        /// Allow sources on loopback and private addresses.
        #[arg(long)]
        allow_private: bool,
        #[command(flatten)]
        http: HttpArgs,
    },
}

/// How monitors reach drop servers over HTTP(S).
#[derive(Args, Debug, Clone, Default)]
pub struct HttpArgs {
    /// Send every request through this proxy: http://, https://, socks5:// or socks5h://
    /// (names resolved by the proxy, e.g. Tor at socks5h://127.0.0.1:9050).
    #[arg(long, env = "DROPWATCH_PROXY")]
    pub proxy: Option<String>,
    /// The User-Agent header sent to drop servers.
    #[arg(long)]
    pub user_agent: Option<String>,
    /// At most this many requests per second to one host.
    #[arg(long)]
    pub max_rate: Option<f64>,
}

impl HttpArgs {
    /// `config` with these settings applied.
    pub fn apply(&self, mut config: MonitorConfig) -> anyhow::Result<MonitorConfig> {
        if let Some(rate) = self.max_rate {
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "--max-rate must be a positive number of requests per second"
            );
            config.max_requests_per_host_per_sec = Some(rate);
        }
        if let Some(ua) = &self.user_agent {
            anyhow::ensure!(
                !ua.is_empty() && ua.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "--user-agent must be visible ASCII"
            );
            config.user_agent = ua.clone();
        }
        if let Some(proxy) = &self.proxy {
            let scheme = proxy.split("://").next().unwrap_or_default();
            anyhow::ensure!(
                proxy.contains("://") && matches!(scheme, "http" | "https" | "socks5" | "socks5h"),
                "--proxy must be an http://, https://, socks5:// or socks5h:// URL"
            );
            config.proxy = Some(proxy.clone());
        }
        Ok(config)
    }
}

/// Builds the monitor and the deliverer that share one store and one wake-up signal.
pub async fn pipeline(
    ctx: &Context,
    store: &Store,
    config: MonitorConfig,
    delivery: DeliveryConfig,
) -> anyhow::Result<(Monitor, Deliverer, Arc<Notify>)> {
    let index = InstitutionIndex::new(store.list_institutions().await?);
    let analyzer = Arc::new(RecordAnalyzer::new(index, ctx.secret_key()?));
    let wake = Arc::new(Notify::new());
    let monitor = Monitor::new(store.clone(), analyzer, config, wake.clone())?;
    let deliverer = Deliverer::new(store.clone(), delivery)?;
    Ok((monitor, deliverer, wake))
}

pub async fn run(ctx: &Context, cmd: MonitorCmd) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        MonitorCmd::Add { url, kind } => {
            let id = store.add_monitor_source(None, &kind, &url).await?;
            let (shown, password) = dropwatch_store::split_password(&url);
            let sealed = if password.is_some() {
                " (password sealed)"
            } else {
                ""
            };
            println!("source {id} watching {shown}{sealed}");
        }
        MonitorCmd::List => {
            let counts: std::collections::HashMap<i64, _> = store
                .monitor_error_counts()
                .await?
                .into_iter()
                .map(|c| (c.source_id, c))
                .collect();
            for s in store.list_monitor_sources().await? {
                let bad = counts.get(&s.id);
                println!(
                    "{:>4} {:<8} {:<10} cursor={:<10} bad={:<6} {}{}{}",
                    s.id,
                    s.state,
                    s.kind,
                    s.cursor.as_deref().unwrap_or("-"),
                    bad.map_or(0, |c| c.bad_records),
                    s.url,
                    bad.and_then(|c| c.last_bad_position)
                        .map(|p| format!("  (last bad record at {p})"))
                        .unwrap_or_default(),
                    s.last_error
                        .map(|e| format!("  (last error: {e})"))
                        .unwrap_or_default()
                );
            }
        }
        MonitorCmd::Pause { id } | MonitorCmd::Resume { id }
            if !store
                .list_monitor_sources()
                .await?
                .iter()
                .any(|s| s.id == id) =>
        {
            anyhow::bail!("no monitor source {id}");
        }
        MonitorCmd::Pause { id } => {
            store.set_monitor_state(id, "paused").await?;
            println!("source {id} paused");
        }
        MonitorCmd::Resume { id } => {
            store.set_monitor_state(id, "active").await?;
            println!("source {id} active");
        }
        MonitorCmd::Run {
            once,
            interval,
            allow_private,
            http,
        } => {
            let config = http.apply(MonitorConfig {
                poll_interval: Duration::from_secs_f64(interval.max(0.05)),
                allow_private,
                ..MonitorConfig::default()
            })?;
            let (monitor, deliverer, wake) =
                pipeline(ctx, &store, config, DeliveryConfig::default()).await?;
            if once {
                for source in store
                    .list_monitor_sources()
                    .await?
                    .into_iter()
                    .filter(|s| s.state == "active")
                {
                    match monitor.poll(&source).await {
                        Ok(out) => println!(
                            "source {}: {} lines, {} new records, {} duplicates, {} new victims, {} alerts",
                            source.id, out.lines, out.ingest.new_records, out.ingest.duplicate_records, out.ingest.new_victims, out.ingest.alerts
                        ),
                        Err(e) => println!("source {}: {e}", source.id),
                    }
                }
                println!("{} alerts delivered", deliverer.deliver_due().await?);
                return Ok(ExitCode::SUCCESS);
            }
            let (tx, rx) = watch::channel(false);
            let m = tokio::spawn({
                let rx = rx.clone();
                async move { monitor.run(rx).await }
            });
            let d = tokio::spawn(async move { deliverer.run(wake, rx).await });
            eprintln!("monitoring; Ctrl-C to stop");
            tokio::signal::ctrl_c().await?;
            let _ = tx.send(true);
            let _ = tokio::join!(m, d);
        }
    }
    Ok(ExitCode::SUCCESS)
}
