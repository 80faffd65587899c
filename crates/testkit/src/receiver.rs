//! A bank's webhook endpoint, for the demo and the tests: it verifies every signature the way
//! `docs`/`dropwatch_deliver::verify` tells a bank to, and keeps what it received.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// One webhook as it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub institution: String,
    pub idempotency_key: String,
    pub signature: String,
    pub body: String,
    pub valid: bool,
    pub received_at: i64,
}

struct Shared {
    secrets: HashMap<String, String>,
    received: Mutex<Vec<Received>>,
    down: AtomicBool,
}

pub struct ReceiverHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ReceiverHandle {
    /// The webhook URL for an institution.
    pub fn url_for(&self, institution: &str) -> String {
        format!("http://{}/hook/{institution}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// While down, every webhook gets 503 and is not kept.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::Release);
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Starts a receiver that knows each institution's webhook secret.
pub fn start(
    listener: tokio::net::TcpListener,
    secrets: HashMap<String, String>,
) -> std::io::Result<ReceiverHandle> {
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        secrets,
        received: Mutex::new(Vec::new()),
        down: AtomicBool::new(false),
    });
    let app = Router::new()
        .route("/hook/{institution}", post(hook))
        .with_state(shared.clone());
    let (shutdown, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let res = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.wait_for(|&s| s).await;
        });
        if let Err(e) = res.await {
            tracing::error!(error = %e, "webhook receiver failed");
        }
    });
    Ok(ReceiverHandle {
        addr,
        shared,
        shutdown,
        task,
    })
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

async fn hook(
    State(shared): State<Arc<Shared>>,
    Path(institution): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if shared.down.load(Ordering::Acquire) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let signature = header(dropwatch_deliver::SIGNATURE_HEADER);
    let valid = shared.secrets.get(&institution).is_some_and(|secret| {
        dropwatch_deliver::verify(
            secret.as_bytes(),
            &signature,
            &body,
            now_micros() / 1_000_000,
            dropwatch_deliver::DEFAULT_TOLERANCE_SECS,
        )
        .is_ok()
    });
    let rec = Received {
        institution,
        idempotency_key: header(dropwatch_deliver::IDEMPOTENCY_HEADER),
        signature,
        body: String::from_utf8_lossy(&body).into_owned(),
        valid,
        received_at: now_micros(),
    };
    if let Ok(mut r) = shared.received.lock() {
        r.push(rec);
    }
    if valid {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::UNAUTHORIZED
    }
}
