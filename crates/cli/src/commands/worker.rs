//! `dropwatch worker`: a stateless process that claims work from the database with leases.
//!
//! Any number of workers share one PostgreSQL database (on SQLite, the default, one worker
//! runs every role in one process). Each registers, then loops:
//! - **monitor** (and **analyze**): claims due monitor sources (`Store::claim_sources`), polls
//!   each once through the monitor's connectors with the lease's fence (so the ingest commits
//!   only while the lease holds), and gives it back due again after the interval (at once when
//!   the poll stopped at the read limit). Record analysis runs inside the poll, between the
//!   fetch and the fenced ingest transaction: it is not a separate queue, because a queue of
//!   unanalysed records would keep victims' secrets in clear in the database. `analyze` is
//!   therefore the same work as `monitor`.
//! - **deliver**: the deliverer's loop, claiming due alerts under this worker's id.
//! - heartbeat, every lease/3: renews every lease still held and reports those that were lost.
//!
//! On SIGTERM or SIGINT it stops claiming, lets in-flight polls and deliveries finish (up to
//! `--drain-secs`), releases what it still holds and marks itself stopped.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, ValueEnum};
use dropwatch_deliver::DeliveryConfig;
use dropwatch_monitor::{Monitor, MonitorConfig, MonitorError};
use dropwatch_store::{now_micros, ClaimedSource, Store, StoreError, WorkerInfo};
use rand::Rng;
use tokio::sync::watch;

use crate::context::Context;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Poll monitor sources (record analysis included).
    Monitor,
    /// Deliver alerts as signed webhooks.
    Deliver,
    /// Record analysis: part of polling (see `monitor`); accepted so deployments can name it.
    Analyze,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Monitor => "monitor",
            Role::Deliver => "deliver",
            Role::Analyze => "analyze",
        }
    }
}

#[derive(Args)]
pub struct WorkerArgs {
    /// What this worker does (comma-separated). `analyze` is done by the poll that fetched the
    /// records, so it implies `monitor`.
    #[arg(long, value_delimiter = ',', default_value = "monitor,deliver,analyze")]
    roles: Vec<Role>,
    /// Lease time in seconds: a dead worker's sources and alerts are taken over after this.
    /// Leases are renewed every third of it.
    #[arg(long, default_value_t = 30.0)]
    lease_secs: f64,
    /// This worker's name (unique among live workers); default host-pid-random.
    #[arg(long)]
    id: Option<String>,
    /// Seconds between polls of one source.
    #[arg(long, default_value_t = 60.0)]
    interval: f64,
    /// Polls in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Allow sources on loopback and private addresses.
    #[arg(long)]
    allow_private: bool,
    #[command(flatten)]
    http: super::monitor::HttpArgs,
    /// Dead-letter an alert after this many failed delivery attempts.
    #[arg(long, default_value_t = DeliveryConfig::default().max_attempts)]
    max_attempts: u32,
    /// On SIGTERM, wait at most this long for in-flight work before releasing leases.
    #[arg(long, default_value_t = 30.0)]
    drain_secs: f64,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Sources this worker holds: id → lease epoch.
type Held = Arc<Mutex<HashMap<i64, i64>>>;

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub async fn run(ctx: &Context, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let ttl = Duration::from_secs_f64(args.lease_secs.max(0.3));
    let interval = Duration::from_secs_f64(args.interval.max(0.05));
    let host = hostname();
    let pid = std::process::id();
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("{host}-{pid}-{:04x}", rand::random::<u16>()));
    let mut roles: Vec<Role> = args.roles.clone();
    roles.sort_by_key(|r| r.as_str());
    roles.dedup();
    let polls = roles.contains(&Role::Monitor) || roles.contains(&Role::Analyze);
    let delivers = roles.contains(&Role::Deliver);
    let info = WorkerInfo {
        id: id.clone(),
        host,
        pid: i64::from(pid),
        roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
        lease_ttl_us: micros(ttl),
    };
    // A worker restarted under the same id right after a crash finds its previous incarnation
    // still looking alive: it waits for that heartbeat to expire (a lease time at most).
    let give_up = tokio::time::Instant::now() + ttl * 2;
    let mut waited = false;
    while !store.register_worker(&info, now_micros()).await? {
        if tokio::time::Instant::now() >= give_up {
            anyhow::bail!("a live worker already runs with id {id:?}");
        }
        if !waited {
            eprintln!("worker {id}: a worker with this id looks alive; waiting up to {:?} for its heartbeat to expire", ttl * 2);
            waited = true;
        }
        tokio::time::sleep(ttl / 8).await;
    }

    let config = args.http.apply(MonitorConfig {
        poll_interval: interval,
        allow_private: args.allow_private,
        ..MonitorConfig::default()
    })?;
    let delivery = DeliveryConfig {
        max_attempts: args.max_attempts.max(1),
        idle_poll: interval.clamp(Duration::from_millis(50), Duration::from_millis(500)),
        ..DeliveryConfig::default()
    };
    let (monitor, deliverer, wake) =
        super::monitor::pipeline(ctx, &store, config, delivery).await?;
    let deliverer = deliverer.with_owner(&id).with_lease(ttl);
    eprintln!(
        "worker {id} running: roles {}, lease {:?}, {:?}",
        info.roles.join(","),
        ttl,
        store.backend()
    );

    let held: Held = Arc::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (hb_stop_tx, hb_stop_rx) = watch::channel(false);
    let heartbeat = tokio::spawn(heartbeat_loop(
        store.clone(),
        id.clone(),
        ttl,
        held.clone(),
        hb_stop_rx,
    ));
    let mut work = tokio::task::JoinSet::new();
    if polls {
        work.spawn(monitor_loop(
            store.clone(),
            monitor.clone(),
            id.clone(),
            ttl,
            args.concurrency.max(1),
            held.clone(),
            stop_rx.clone(),
        ));
    }
    if delivers {
        let rx = stop_rx.clone();
        work.spawn(async move { deliverer.run(wake, rx).await });
    }

    wait_for_stop_signal().await?;
    eprintln!("worker {id} stopping: draining in-flight work");
    let _ = stop_tx.send(true);
    let drain = Duration::from_secs_f64(args.drain_secs.max(0.0));
    if tokio::time::timeout(drain, async { while work.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        eprintln!("worker {id}: in-flight work did not finish within {drain:?}; abandoning it");
        work.shutdown().await;
    }
    let _ = hb_stop_tx.send(true);
    let _ = heartbeat.await;
    let released = store.release_worker_leases(&id).await?;
    store.stop_worker(&id, now_micros()).await?;
    let t = monitor.totals();
    let get = dropwatch_monitor::MonitorTotals::get;
    eprintln!(
        "worker {id} stopped: {} lines, {} new records, {} alerts; released {} sources, {} alerts",
        get(&t.lines),
        get(&t.new_records),
        get(&t.alerts),
        released.sources,
        released.alerts
    );
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Renews every lease this worker holds, every third of the lease time, until told to stop.
async fn heartbeat_loop(
    store: Store,
    id: String,
    ttl: Duration,
    held: Held,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let before: HashMap<i64, i64> = held.lock().map(|h| h.clone()).unwrap_or_default();
        match store.heartbeat(&id, now_micros(), micros(ttl)).await {
            Ok(renewed) => {
                let now_held = held.lock().map(|h| h.clone()).unwrap_or_default();
                for (source, epoch) in before {
                    let still_ours = now_held.get(&source) == Some(&epoch);
                    if still_ours && renewed.sources.binary_search(&(source, epoch)).is_err() {
                        tracing::warn!(source, epoch, "source lease lost: another worker took it over; its poll will not be written");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed; leases expire unless the next one succeeds")
            }
        }
    }
}

/// Claims due sources up to `concurrency` in flight, polls each once under its lease, and
/// gives it back due again. On stop, claims nothing more and waits for the polls in flight.
async fn monitor_loop(
    store: Store,
    monitor: Monitor,
    owner: String,
    ttl: Duration,
    concurrency: usize,
    held: Held,
    mut stop: watch::Receiver<bool>,
) {
    let interval = monitor.config().poll_interval;
    let idle = (interval / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let free = concurrency.saturating_sub(tasks.len());
        if free > 0 {
            match store
                .claim_sources(&owner, now_micros(), micros(ttl), free as i64)
                .await
            {
                Ok(claimed) => {
                    for c in claimed {
                        if let Ok(mut h) = held.lock() {
                            h.insert(c.source.id, c.lease.epoch);
                        }
                        let (store, monitor, held) = (store.clone(), monitor.clone(), held.clone());
                        tasks.spawn(async move { poll_one(&store, &monitor, &held, c).await });
                    }
                }
                Err(e) => tracing::error!(error = %e, "claiming monitor sources failed"),
            }
        }
        tokio::select! {
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                while tasks.try_join_next().is_some() {}
            }
            _ = tokio::time::sleep(idle) => {}
            _ = stop.changed() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn poll_one(store: &Store, monitor: &Monitor, held: &Held, c: ClaimedSource) {
    let ClaimedSource { source, lease } = c;
    let res = monitor.poll_leased(&source, Some(&lease)).await;
    let now = now_micros();
    let config = monitor.config();
    let jitter = rand::rng().random_range(0.0..=config.jitter.max(0.0));
    let mut next = now + micros(config.poll_interval.mul_f64(1.0 + jitter));
    let mut lost = false;
    match &res {
        Ok(out) => {
            if out.lines > 0 {
                tracing::info!(
                    source = %source.url, lines = out.lines, new = out.ingest.new_records,
                    dup = out.ingest.duplicate_records, victims = out.ingest.new_victims,
                    alerts = out.ingest.alerts, epoch = lease.epoch, "polled"
                );
            }
            if monitor.read_limit_reached(&source, out) {
                next = now;
            }
        }
        Err(MonitorError::Store(StoreError::LeaseLost { .. })) => {
            tracing::warn!(source = %source.url, epoch = lease.epoch, "lease lost before the ingest committed; nothing written");
            lost = true;
        }
        Err(e) => tracing::warn!(source = %source.url, error = %e, "poll failed"),
    }
    if !lost {
        match store.release_source(source.id, &lease, next).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(source = %source.url, "lease lost before the source was released")
            }
            Err(e) => {
                tracing::warn!(source = %source.url, error = %e, "releasing a source failed; its lease will expire")
            }
        }
    }
    if let Ok(mut h) = held.lock() {
        if h.get(&source.id) == Some(&lease.epoch) {
            h.remove(&source.id);
        }
    }
}
