//! `dropwatch testkit`: the generator and the simulated drop server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use dropwatch_testkit::drop_server::{self, DropServerConfig};
use dropwatch_testkit::{generate, GenerateOptions};

#[derive(Subcommand)]
pub enum TestkitCmd {
    /// Generate a deterministic data set: registry, webinjects, drop records, ground truth.
    Generate {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// Base URL of the drop host the injects send data to.
        #[arg(long, default_value = "http://127.0.0.1:18080")]
        drop_base: String,
    },
    /// Serve a generated data set's drops over HTTP, releasing records over time.
    DropServer {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = "127.0.0.1:18080")]
        listen: String,
        #[arg(long, default_value_t = 0.25)]
        initial_fraction: f64,
        #[arg(long, default_value_t = 20)]
        release_every_ms: u64,
    },
}

pub async fn run(cmd: TestkitCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TestkitCmd::Generate {
            seed,
            out,
            drop_base,
        } => {
            let g = generate(&GenerateOptions { seed, drop_base });
            g.write_to(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "seed {seed}: {} institutions, {} webinject files, {} drops, {} report lines, {} victims -> {}",
                g.registry.institutions.len(),
                g.webinjects.len(),
                g.drops.len(),
                g.truth.report_lines,
                g.truth.victims.len(),
                out.display()
            );
        }
        TestkitCmd::DropServer {
            data,
            listen,
            initial_fraction,
            release_every_ms,
        } => {
            let drops = drop_server::load_drops(&data)
                .with_context(|| format!("reading drops from {}", data.display()))?;
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let paths: Vec<String> = drops.iter().map(|d| d.path.clone()).collect();
            let handle = drop_server::start(
                listener,
                drops,
                DropServerConfig {
                    initial_fraction,
                    release_every: Duration::from_millis(release_every_ms),
                },
            )?;
            for p in paths {
                println!("serving http://{}{}", handle.addr, p);
            }
            tokio::signal::ctrl_c().await?;
            handle.stop().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
