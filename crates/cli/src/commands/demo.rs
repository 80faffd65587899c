//! `dropwatch demo`: the whole chain on generated data, on loopback.
//!
//! Generate a data set → serve its drops on 127.0.0.1 → start a bank's webhook receiver →
//! parse the webinjects and register the drops they reveal → poll the drops → analyse records →
//! victims and alerts → signed webhooks → summary.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use dropwatch_deliver::DeliveryConfig;
use dropwatch_masks::InstitutionIndex;
use dropwatch_model::{SecretKind, ServerRole, Urgency};
use dropwatch_monitor::{MonitorConfig, MonitorTotals};
use dropwatch_testkit::drop_server::{self, DropServerConfig};
use dropwatch_testkit::{generate, receiver, GenerateOptions};
use serde::Serialize;
use tokio::sync::watch;

use crate::context::{random_secret, Context};

#[derive(Args)]
pub struct DemoArgs {
    /// Seed of the generated data set.
    #[arg(long, default_value_t = 2014)]
    seed: u64,
    /// Keep the generated data set here (default: a temporary directory, removed afterwards).
    #[arg(long)]
    testkit_dir: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Fail if the chain has not drained by then.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

#[derive(Debug, Serialize)]
struct ServerSummary {
    role: ServerRole,
    url: String,
}

#[derive(Debug, Serialize)]
struct Latency {
    samples: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Serialize)]
struct Summary {
    seed: u64,
    store: String,
    institutions_targeted: Vec<String>,
    unmatched_targets: Vec<String>,
    injects: usize,
    servers: Vec<ServerSummary>,
    report_lines: u64,
    bad_lines: u64,
    records: u64,
    duplicate_records: u64,
    unattributed_records: u64,
    victims: usize,
    victims_critical: usize,
    victims_high: usize,
    alerts: i64,
    alerts_delivered: i64,
    webhooks_received: usize,
    webhooks_signature_valid: usize,
    fetch_to_delivery: Latency,
    ground_truth_victims: usize,
    ground_truth_match: bool,
    elapsed_ms: u128,
}

type VictimKey = (String, String, Vec<SecretKind>, Urgency);

fn sorted_victims<'a>(
    it: impl Iterator<Item = (&'a String, &'a String, &'a Vec<SecretKind>, Urgency)>,
) -> Vec<VictimKey> {
    let mut v: Vec<VictimKey> = it
        .map(|(i, a, e, u)| (i.clone(), a.clone(), e.clone(), u))
        .collect();
    v.sort();
    v
}

fn percentile(sorted_micros: &[i64], p: f64) -> f64 {
    if sorted_micros.is_empty() {
        return 0.0;
    }
    let idx = ((sorted_micros.len() as f64 - 1.0) * p).round() as usize;
    sorted_micros[idx.min(sorted_micros.len() - 1)] as f64 / 1000.0
}

pub async fn run(ctx: &Context, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // The demo owns `<data-dir>/demo` and starts it afresh each run.
    let demo_dir = ctx.data_dir.join("demo");
    if demo_dir.exists() {
        std::fs::remove_dir_all(&demo_dir)
            .with_context(|| format!("clearing {}", demo_dir.display()))?;
    }
    std::fs::create_dir_all(&demo_dir)?;
    let demo_ctx = Context {
        data_dir: demo_dir.clone(),
        database_url: ctx.database_url.clone(),
    };

    // 1. Generated data, with the drop host on a free loopback port.
    let drop_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the drop server")?;
    let drop_base = format!("http://{}", drop_listener.local_addr()?);
    let tmp;
    let testkit_dir = match &args.testkit_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("dropwatch-demo-")
                .tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let generated = generate(&GenerateOptions {
        seed: args.seed,
        drop_base: drop_base.clone(),
    });
    generated
        .write_to(&testkit_dir)
        .with_context(|| format!("writing test data to {}", testkit_dir.display()))?;
    let truth = generated.truth.clone();

    // 2. The drop server, serving what was written to disk, filling up over time.
    let drops = drop_server::load_drops(&testkit_dir)?;
    let drop = drop_server::start(drop_listener, drops, DropServerConfig::default())?;

    // 3. The store, the registry and a webhook receiver for every institution.
    let store = demo_ctx.store().await?;
    for inst in &generated.registry.institutions {
        store.upsert_institution(inst).await?;
    }
    let secrets: HashMap<String, String> = generated
        .registry
        .institutions
        .iter()
        .map(|i| (i.id.clone(), random_secret()))
        .collect();
    let receiver = receiver::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        secrets.clone(),
    )?;
    for (id, secret) in &secrets {
        store.set_webhook(id, &receiver.url_for(id), secret).await?;
    }

    // 4. WebInjects → targets, drops, script hosts → monitor sources.
    let index = InstitutionIndex::new(store.list_institutions().await?);
    let mut targeted = Vec::new();
    let mut unmatched = Vec::new();
    let mut n_injects = 0;
    for (name, text) in &generated.webinjects {
        let path = testkit_dir.join("webinjects").join(name);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        debug_assert_eq!(&bytes, text.as_bytes());
        let (parsed, report) = super::inject::analyze_bytes(name, &bytes, false, &index)?;
        n_injects += report.injects;
        targeted.extend(report.analysis.institutions());
        unmatched.extend(
            report
                .analysis
                .targets
                .iter()
                .filter(|t| t.institution_id.is_none())
                .map(|t| t.url_mask.clone()),
        );
        super::inject::register(&store, &parsed, &report, &index).await?;
    }
    targeted.sort();
    targeted.dedup();
    unmatched.sort();
    unmatched.dedup();

    // 5. Watch the drops and deliver alerts until the drops are exhausted and the outbox empty.
    let monitor_config = MonitorConfig {
        poll_interval: Duration::from_millis(100),
        allow_private: true,
        ..MonitorConfig::default()
    };
    let delivery_config = DeliveryConfig {
        base_backoff: Duration::from_millis(100),
        idle_poll: Duration::from_millis(100),
        ..DeliveryConfig::default()
    };
    let (monitor, deliverer, wake) =
        super::monitor::pipeline(&demo_ctx, &store, monitor_config, delivery_config).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let monitor_task = tokio::spawn({
        let monitor = monitor.clone();
        let rx = stop_rx.clone();
        async move { monitor.run(rx).await }
    });
    let deliver_task = tokio::spawn(async move { deliverer.run(wake, stop_rx).await });

    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let sources = store.list_monitor_sources().await?;
        let drained = drop.all_released()
            && drop.released_bytes().iter().all(|(path, bytes)| {
                let url = format!("{drop_base}{path}");
                sources.iter().any(|s| {
                    s.url == url && s.cursor.as_deref() == Some(bytes.to_string().as_str())
                })
            });
        let stats = store.stats().await?;
        if drained && stats.alerts_pending == 0 {
            break;
        }
        if Instant::now() > deadline {
            let _ = stop_tx.send(true);
            anyhow::bail!(
                "the chain did not drain within {} s (released: {}, pending alerts: {})",
                args.timeout_secs,
                drop.all_released(),
                stats.alerts_pending
            );
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::join!(monitor_task, deliver_task);
    drop.stop().await;
    let received = receiver.received();
    receiver.stop().await;

    // 6. Summary.
    let stats = store.stats().await?;
    let servers = store
        .list_servers()
        .await?
        .into_iter()
        .map(|s| ServerSummary {
            role: s.role,
            url: s.url,
        })
        .collect();
    let victims = store.list_victims("demo", None).await?;
    let latencies = store.delivery_latencies().await?;
    // The demo checks itself against the generator's ground truth: same victims, same exposure.
    let found = sorted_victims(
        victims
            .iter()
            .map(|v| (&v.institution_id, &v.account, &v.exposed, v.urgency)),
    );
    let expected = sorted_victims(
        truth
            .victims
            .iter()
            .map(|v| (&v.institution_id, &v.account, &v.exposed, v.urgency)),
    );
    let totals = monitor.totals();
    let summary = Summary {
        seed: args.seed,
        store: match &ctx.database_url {
            Some(_) => "the database at --database-url".to_string(),
            None => demo_dir.join("dropwatch.db").display().to_string(),
        },
        institutions_targeted: targeted,
        unmatched_targets: unmatched,
        injects: n_injects,
        servers,
        report_lines: MonitorTotals::get(&totals.lines),
        bad_lines: MonitorTotals::get(&totals.bad_lines),
        records: MonitorTotals::get(&totals.new_records),
        duplicate_records: MonitorTotals::get(&totals.duplicate_records),
        unattributed_records: MonitorTotals::get(&totals.unattributed),
        victims: victims.len(),
        victims_critical: victims
            .iter()
            .filter(|v| v.urgency == Urgency::Critical)
            .count(),
        victims_high: victims
            .iter()
            .filter(|v| v.urgency == Urgency::High)
            .count(),
        alerts: stats.alerts,
        alerts_delivered: stats.alerts_delivered,
        webhooks_received: received.len(),
        webhooks_signature_valid: received.iter().filter(|r| r.valid).count(),
        fetch_to_delivery: Latency {
            samples: latencies.len(),
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            max_ms: latencies.last().map_or(0.0, |&m| m as f64 / 1000.0),
        },
        ground_truth_victims: expected.len(),
        ground_truth_match: found == expected,
        elapsed_ms: started.elapsed().as_millis(),
    };
    let receiver_dir = demo_dir.join("receiver");
    std::fs::create_dir_all(&receiver_dir)?;
    let log: String = received
        .iter()
        .filter_map(|r| serde_json::to_string(r).ok())
        .map(|l| l + "\n")
        .collect();
    std::fs::write(receiver_dir.join("webhooks.jsonl"), log)?;
    std::fs::write(
        demo_dir.join("summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    let ok = summary.ground_truth_match
        && summary.webhooks_signature_valid == summary.webhooks_received
        && summary.alerts_delivered == summary.alerts;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_summary(s: &Summary) {
    println!("dropwatch demo (seed {})", s.seed);
    println!(
        "  institutions targeted   {} ({})",
        s.institutions_targeted.len(),
        s.institutions_targeted.join(", ")
    );
    println!(
        "  targets not in registry {}",
        s.unmatched_targets.join(", ")
    );
    println!("  injects parsed          {}", s.injects);
    println!("  servers found           {}", s.servers.len());
    for srv in &s.servers {
        println!("    {:<12} {}", srv.role.as_str(), srv.url);
    }
    println!(
        "  drop records            {} lines read: {} records, {} duplicates, {} unattributed, {} malformed",
        s.report_lines, s.records, s.duplicate_records, s.unattributed_records, s.bad_lines
    );
    println!(
        "  victims                 {} ({} critical, {} high)",
        s.victims, s.victims_critical, s.victims_high
    );
    println!(
        "  alerts delivered        {} of {} ({} webhooks received, {} with a valid signature)",
        s.alerts_delivered, s.alerts, s.webhooks_received, s.webhooks_signature_valid
    );
    println!(
        "  fetch -> delivery       p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} alerts",
        s.fetch_to_delivery.p50_ms,
        s.fetch_to_delivery.p99_ms,
        s.fetch_to_delivery.max_ms,
        s.fetch_to_delivery.samples
    );
    println!(
        "  ground truth            {} victims expected: {}",
        s.ground_truth_victims,
        if s.ground_truth_match {
            "all found, none extra"
        } else {
            "MISMATCH"
        }
    );
    println!("  store                   {}", s.store);
    println!(
        "  elapsed                 {:.1} s",
        s.elapsed_ms as f64 / 1000.0
    );
}
