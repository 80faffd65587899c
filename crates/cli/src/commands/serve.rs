//! `dropwatch serve`: the institution API and the webhook delivery worker, together, until
//! Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use dropwatch_deliver::{Deliverer, DeliveryConfig};
use dropwatch_server::AppState;
use tokio::sync::{watch, Notify};

use crate::context::Context;

#[derive(Args)]
pub struct ServeArgs {
    /// Address the API listens on (`/api/v1/...`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Dead-letter an alert after this many failed delivery attempts.
    #[arg(long, default_value_t = DeliveryConfig::default().max_attempts)]
    max_attempts: u32,
}

pub async fn run(ctx: &Context, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let deliverer = Deliverer::new(
        store.clone(),
        DeliveryConfig {
            max_attempts: args.max_attempts.max(1),
            ..DeliveryConfig::default()
        },
    )?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    // The bound address (with the real port when --listen asked for port 0).
    eprintln!(
        "dropwatch API on http://{}/api/v1; delivering webhooks; Ctrl-C to stop",
        listener.local_addr()?
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn({
        let stop_rx = stop_rx.clone();
        async move { deliverer.run(Arc::new(Notify::new()), stop_rx).await }
    });
    let mut api_stop = stop_rx;
    let mut api = tokio::spawn(dropwatch_server::serve(
        listener,
        AppState::new(store),
        async move {
            let _ = api_stop.wait_for(|stop| *stop).await;
        },
    ));
    // Until Ctrl-C, or until the API stops by itself (which is an error).
    let early_end = tokio::select! {
        signal = tokio::signal::ctrl_c() => {
            signal?;
            eprintln!("stopping");
            None
        }
        ended = &mut api => Some(ended),
    };
    let _ = stop_tx.send(true);
    worker.await?;
    match early_end {
        Some(ended) => {
            ended??;
            anyhow::bail!("the API server stopped unexpectedly");
        }
        None => api.await??,
    }
    Ok(ExitCode::SUCCESS)
}
