//! Scale-out benchmark: ingest and delivery throughput with 1, 2 and 3 `dropwatch worker`
//! processes on one PostgreSQL database, and where the CPU goes.
//!
//! ```sh
//! cargo build --release --bin dropwatch --example workers_bench
//! target/release/examples/workers_bench [--sources 1000] [--workers 1,2,3]
//! ```
//!
//! For each worker count, a fresh database gets the sources (the testkit's generated drops,
//! every record visible from the start, served from 127.0.0.1 by the in-process drop server)
//! and the institutions' webhooks (the in-process verifying receiver). Two phases:
//! 1. ingest: N workers with `--roles monitor` poll every source once; records/s is distinct
//!    records stored over the time until every source's cursor is at its end;
//! 2. delivery: N workers with `--roles deliver` send the backlog; deliveries/s is alerts
//!    delivered over the time until none is pending.
//!
//! For each phase it reports the CPU seconds used by the workers, by PostgreSQL (every
//! `postgres` process on the machine) and by this process (drop server and receiver), as cores
//! busy on average: the saturated one is the bottleneck.
//!
//! The worker binary is `target/<profile>/dropwatch` next to this example, or `$DROPWATCH_BIN`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dropwatch_store::Store;
use dropwatch_testkit::backends::pg_admin_url;
use dropwatch_testkit::drop_server::{self, DropServerConfig};
use dropwatch_testkit::generate::DropData;
use dropwatch_testkit::receiver;
use dropwatch_testkit::{generate, GenerateOptions};
use sqlx::{Connection, Executor};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn worker_bin() -> PathBuf {
    if let Ok(p) = std::env::var("DROPWATCH_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("dropwatch"))
        .expect("target dir")
}

/// CPU seconds (user + system) of one process, from /proc.
fn cpu_of(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of every `postgres` process.
fn cpu_of_postgres() -> f64 {
    let mut total = 0.0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "postgres" {
                total += cpu_of(pid);
            }
        }
    }
    total
}

struct Phase {
    seconds: f64,
    items: i64,
    workers_cpu: f64,
    postgres_cpu: f64,
    bench_cpu: f64,
}

impl Phase {
    fn line(&self, what: &str) -> String {
        format!(
            "{:>8.0} {what}/s ({} in {:.2} s); cores busy: workers {:.2}, postgres {:.2}, drop server + receiver {:.2}",
            self.items as f64 / self.seconds,
            self.items,
            self.seconds,
            self.workers_cpu / self.seconds,
            self.postgres_cpu / self.seconds,
            self.bench_cpu / self.seconds
        )
    }
}

fn start_workers(n: usize, dir: &std::path::Path, url: &str, role: &str) -> Vec<Child> {
    (0..n)
        .map(|i| {
            Command::new(worker_bin())
                .arg("--data-dir")
                .arg(dir)
                .args(["--database-url", url, "worker", "--roles", role, "--id"])
                .arg(format!("{role}{i}"))
                .args([
                    "--lease-secs",
                    "10",
                    "--interval",
                    "3600",
                    "--allow-private",
                    "--concurrency",
                    "16",
                ])
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start a worker (build it: cargo build --release --bin dropwatch)")
        })
        .collect()
}

fn stop_workers(children: &mut [Child]) -> f64 {
    let cpu: f64 = children.iter().map(|c| cpu_of(c.id())).sum();
    for c in children.iter() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
    cpu
}

async fn run(n: usize, drops: &[DropData], registry: &dropwatch_model::Registry, distinct: usize) {
    let admin = pg_admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL");
    let name = format!("dropwatch_bench_{}_{n}", std::process::id());
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret-hmac.key"), [7u8; 32]).unwrap();
    let store = Store::connect(&url)
        .await
        .unwrap()
        .with_seal_key(dropwatch_store::seal_key_file(dir.path()).unwrap())
        .await
        .unwrap();
    let server = drop_server::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        drops.to_vec(),
        DropServerConfig {
            initial_fraction: 1.0,
            release_every: Duration::from_secs(3600),
        },
    )
    .unwrap();
    let secrets: HashMap<String, String> = registry
        .institutions
        .iter()
        .map(|i| (i.id.clone(), format!("s-{}", i.id)))
        .collect();
    let hooks = receiver::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        secrets.clone(),
    )
    .unwrap();
    for inst in &registry.institutions {
        store.upsert_institution(inst).await.unwrap();
        store
            .set_webhook(&inst.id, &hooks.url_for(&inst.id), &secrets[&inst.id])
            .await
            .unwrap();
    }
    let mut ends = HashMap::new();
    for (path, bytes) in server.released_bytes() {
        let url = format!("http://{}{path}", server.addr);
        store
            .add_monitor_source(None, "http_jsonl", &url)
            .await
            .unwrap();
        ends.insert(url, bytes.to_string());
    }
    let me = std::process::id();

    // Phase 1: ingest.
    let (pg0, me0) = (cpu_of_postgres(), cpu_of(me));
    let t = Instant::now();
    let mut children = start_workers(n, dir.path(), &url, "monitor");
    loop {
        let sources = store.list_monitor_sources().await.unwrap();
        if sources
            .iter()
            .all(|s| s.cursor.as_ref() == ends.get(&s.url))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = t.elapsed().as_secs_f64();
    let (pg1, me1) = (cpu_of_postgres(), cpu_of(me));
    let workers_cpu = stop_workers(&mut children);
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.records as usize, distinct);
    let ingest = Phase {
        seconds,
        items: stats.records,
        workers_cpu,
        postgres_cpu: pg1 - pg0,
        bench_cpu: me1 - me0,
    };

    // Phase 2: delivery of the backlog.
    let (pg0, me0) = (cpu_of_postgres(), cpu_of(me));
    let t = Instant::now();
    let mut children = start_workers(n, dir.path(), &url, "deliver");
    loop {
        let s = store.stats().await.unwrap();
        if s.alerts_delivered == s.alerts {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = t.elapsed().as_secs_f64();
    let (pg1, me1) = (cpu_of_postgres(), cpu_of(me));
    let workers_cpu = stop_workers(&mut children);
    let delivery = Phase {
        seconds,
        items: stats.alerts,
        workers_cpu,
        postgres_cpu: pg1 - pg0,
        bench_cpu: me1 - me0,
    };
    let received = hooks.received().len() as i64;
    println!("{n} worker(s):");
    println!("  ingest   {}", ingest.line("records"));
    println!(
        "  delivery {} [{} webhooks received]",
        delivery.line("deliveries"),
        received
    );
    store.close().await;
    server.stop().await;
    hooks.stop().await;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    let sources: usize = arg("--sources", "1000").parse().expect("--sources N");
    let counts: Vec<usize> = arg("--workers", "1,2,3")
        .split(',')
        .map(|n| n.parse().expect("--workers 1,2,3"))
        .collect();
    let mut drops = Vec::new();
    let mut registry = None;
    let mut seed = 0;
    while drops.len() < sources {
        let g = generate(&GenerateOptions {
            seed: 500_000 + seed,
            drop_base: "http://127.0.0.1:18080".into(),
        });
        registry.get_or_insert(g.registry);
        for d in g.drops {
            drops.push(DropData {
                path: format!("/s{seed}{}", d.path),
                lines: d.lines,
            });
        }
        seed += 1;
    }
    let distinct = drops
        .iter()
        .flat_map(|d| &d.lines)
        .filter_map(|l| serde_json::from_str::<dropwatch_model::PanelReport>(l).ok())
        .map(|r| (r.bot_id, r.context))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let lines: usize = drops.iter().map(|d| d.lines.len()).sum();
    println!(
        "{} sources, {lines} lines, {distinct} distinct records; {} cores; worker {}",
        drops.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        worker_bin().display()
    );
    let registry = registry.unwrap();
    for n in counts {
        run(n, &drops, &registry, distinct).await;
    }
}
