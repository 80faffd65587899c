//! `dropwatch`: the command line. Parsing and wiring only; the work is in the pipeline crates.

mod commands;
mod context;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "dropwatch",
    version,
    about = "Turns banking-trojan malware into warnings that let banks freeze stolen accounts in time"
)]
struct Cli {
    /// Where the embedded store and the deployment's keys live.
    #[arg(
        long,
        global = true,
        env = "DROPWATCH_DATA_DIR",
        default_value = "./dropwatch-data"
    )]
    data_dir: PathBuf,
    /// Use this database instead of the embedded SQLite store (postgres://user@host/db).
    #[arg(long, global = true, env = "DROPWATCH_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole chain on generated data: webinjects → drop → victims → signed alerts.
    Demo(commands::demo::DemoArgs),
    /// Parse and analyse WebInject files.
    #[command(subcommand)]
    Inject(commands::inject::InjectCmd),
    /// Extract configurations from ZeuS-family configs (and, later, samples).
    #[command(subcommand)]
    Config(commands::config::ConfigCmd),
    /// Watch drop servers.
    #[command(subcommand)]
    Monitor(commands::monitor::MonitorCmd),
    /// Ingest drop records from a file, a directory tree (a seized panel's files) or stdin (`-`),
    /// in any drop format (JSON lines, JSON array, CSV, reports.txt, raw grabs, MySQL dump).
    Ingest(commands::ingest::IngestArgs),
    /// List victims (every read is audited).
    Victims(commands::victims::VictimsArgs),
    /// Run the institution API and the webhook delivery worker until Ctrl-C.
    Serve(commands::serve::ServeArgs),
    /// A stateless worker: claims monitor sources and alerts from the database with leases.
    Worker(commands::worker::WorkerArgs),
    /// Workers alive, leases held, queue depths, lag per source, delivery backlog.
    Status(commands::status::StatusArgs),
    /// Read the audit log (who read what, every API request).
    Audit(commands::audit::AuditArgs),
    /// The alert outbox: list alerts by delivery status, re-deliver on demand.
    #[command(subcommand)]
    Alerts(commands::alerts::AlertsCmd),
    /// Time to freeze: detected → delivered → acknowledged → frozen, overall and per institution.
    Report(commands::report::ReportArgs),
    /// Export indicators (never victims' data) as STIX 2.1, a MISP feed, CSV or plain blocklists.
    #[command(subcommand)]
    Export(commands::export::ExportCmd),
    /// Manage institutions and their webhooks.
    #[command(subcommand)]
    Institution(commands::institution::InstitutionCmd),
    /// Test data generator and simulated drop server.
    #[command(subcommand)]
    Testkit(commands::testkit::TestkitCmd),
}

/// Exits quietly when stdout is a closed pipe (`dropwatch ... | head`), as Unix tools do,
/// instead of panicking in `println!`.
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = context::Context {
        data_dir: cli.data_dir,
        database_url: cli.database_url,
    };
    let res = runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => commands::demo::run(&ctx, args).await,
            Command::Inject(cmd) => commands::inject::run(&ctx, cmd).await,
            Command::Config(cmd) => commands::config::run(&ctx, cmd).await,
            Command::Monitor(cmd) => commands::monitor::run(&ctx, cmd).await,
            Command::Ingest(args) => commands::ingest::run(&ctx, args).await,
            Command::Victims(args) => commands::victims::run(&ctx, args).await,
            Command::Serve(args) => commands::serve::run(&ctx, args).await,
            Command::Worker(args) => commands::worker::run(&ctx, args).await,
            Command::Status(args) => commands::status::run(&ctx, args).await,
            Command::Audit(args) => commands::audit::run(&ctx, args).await,
            Command::Alerts(cmd) => commands::alerts::run(&ctx, cmd).await,
            Command::Report(args) => commands::report::run(&ctx, args).await,
            Command::Export(cmd) => commands::export::run(&ctx, cmd).await,
            Command::Institution(cmd) => commands::institution::run(&ctx, cmd).await,
            Command::Testkit(cmd) => commands::testkit::run(cmd).await,
        }
    });
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
