//! A simulated drop server on loopback.
//!
//! Each drop is a URL path (`/<kit>/gate.php`). A POST there is accepted and discarded (the
//! bots' side); a GET returns what the drop has stored so far as JSON lines, honouring
//! `Range: bytes=N-` so that a monitor can resume an append-only file. Records are released
//! over time: a fraction at start, then one at a time, the way a live drop fills up.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::watch;

use crate::generate::DropData;

#[derive(Debug, Clone)]
pub struct DropServerConfig {
    /// Share of each drop's records visible from the start.
    pub initial_fraction: f64,
    /// One more record is released (round-robin over drops) at this interval.
    pub release_every: Duration,
}

impl Default for DropServerConfig {
    fn default() -> DropServerConfig {
        DropServerConfig {
            initial_fraction: 0.25,
            release_every: Duration::from_millis(20),
        }
    }
}

struct Drop {
    path: String,
    body: Vec<u8>,
    /// Byte offset just past each line.
    line_ends: Vec<usize>,
    released: AtomicUsize,
}

impl Drop {
    fn released_bytes(&self) -> usize {
        match self.released.load(Ordering::Acquire) {
            0 => 0,
            n => self.line_ends[n - 1],
        }
    }
}

struct Shared {
    drops: Vec<Drop>,
}

/// A running drop server.
pub struct DropServerHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl DropServerHandle {
    /// True once every record of every drop is visible.
    pub fn all_released(&self) -> bool {
        self.shared
            .drops
            .iter()
            .all(|d| d.released.load(Ordering::Acquire) == d.line_ends.len())
    }

    /// (URL path, bytes visible now) for each drop.
    pub fn released_bytes(&self) -> Vec<(String, u64)> {
        self.shared
            .drops
            .iter()
            .map(|d| (d.path.clone(), d.released_bytes() as u64))
            .collect()
    }

    /// Makes everything visible at once.
    pub fn release_all(&self) {
        for d in &self.shared.drops {
            d.released.store(d.line_ends.len(), Ordering::Release);
        }
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Reads the drops written by [`crate::Generated::write_to`].
pub fn load_drops(dir: &Path) -> std::io::Result<Vec<DropData>> {
    #[derive(serde::Deserialize)]
    struct Entry {
        path: String,
        file: String,
    }
    let manifest: Vec<Entry> =
        serde_json::from_slice(&std::fs::read(dir.join("drops/manifest.json"))?)?;
    manifest
        .into_iter()
        .map(|e| {
            let text = std::fs::read_to_string(dir.join("drops").join(&e.file))?;
            Ok(DropData {
                path: e.path,
                lines: text.lines().map(String::from).collect(),
            })
        })
        .collect()
}

/// Starts serving `drops` on `listener`.
pub fn start(
    listener: tokio::net::TcpListener,
    drops: Vec<DropData>,
    config: DropServerConfig,
) -> std::io::Result<DropServerHandle> {
    let addr = listener.local_addr()?;
    let drops: Vec<Drop> = drops
        .into_iter()
        .map(|d| {
            let mut body = Vec::new();
            let mut line_ends = Vec::new();
            for line in &d.lines {
                body.extend_from_slice(line.as_bytes());
                body.push(b'\n');
                line_ends.push(body.len());
            }
            let initial = ((line_ends.len() as f64) * config.initial_fraction.clamp(0.0, 1.0))
                .floor() as usize;
            Drop {
                path: d.path,
                body,
                line_ends,
                released: AtomicUsize::new(initial),
            }
        })
        .collect();
    let shared = Arc::new(Shared { drops });
    let (shutdown, rx) = watch::channel(false);

    let app = Router::new().fallback(handle).with_state(shared.clone());
    let mut rx_serve = rx.clone();
    let serve = tokio::spawn(async move {
        let res = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx_serve.wait_for(|&s| s).await;
        });
        if let Err(e) = res.await {
            tracing::error!(error = %e, "drop server failed");
        }
    });

    let releaser_shared = shared.clone();
    let mut rx_release = rx;
    let release = tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.release_every);
        let mut next = 0usize;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = rx_release.wait_for(|&s| s) => return,
            }
            let drops = &releaser_shared.drops;
            // Round-robin: the next drop that still holds back a record releases one.
            for k in 0..drops.len() {
                let d = &drops[(next + k) % drops.len()];
                let n = d.released.load(Ordering::Acquire);
                if n < d.line_ends.len() {
                    d.released.store(n + 1, Ordering::Release);
                    next = (next + k + 1) % drops.len();
                    break;
                }
            }
        }
    });
    Ok(DropServerHandle {
        addr,
        shared,
        shutdown,
        tasks: vec![serve, release],
    })
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(drop) = shared.drops.iter().find(|d| d.path == uri.path()) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    if method == Method::POST {
        // A bot delivering a report; the simulation stores nothing new from it.
        return (StatusCode::OK, "OK").into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let visible = &drop.body[..drop.released_bytes()];
    let len = visible.len();
    let range_start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<usize>().ok());
    match range_start {
        Some(start) if start >= len => Response::builder()
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{len}"))
            .body(Body::empty())
            .unwrap_or_default(),
        Some(start) => Response::builder()
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{len}", len - 1),
            )
            .body(Body::from(visible[start..].to_vec()))
            .unwrap_or_default(),
        None => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .header(header::ACCEPT_RANGES, "bytes")
            .body(Body::from(visible.to_vec()))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_ranges_and_releases_over_time() {
        let drops = vec![DropData {
            path: "/k/gate.php".into(),
            lines: (0..10).map(|i| format!("{{\"n\":{i}}}")).collect(),
        }];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h = start(
            listener,
            drops,
            DropServerConfig {
                initial_fraction: 0.5,
                release_every: Duration::from_millis(5),
            },
        )
        .unwrap();
        let url = format!("http://{}/k/gate.php", h.addr);
        let client = reqwest::Client::new();
        let first = client.get(&url).send().await.unwrap();
        assert_eq!(first.status(), 200);
        let body = first.bytes().await.unwrap();
        assert!(body.ends_with(b"\n") && !body.is_empty());
        while !h.all_released() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let rest = client
            .get(&url)
            .header("range", format!("bytes={}-", body.len()))
            .send()
            .await
            .unwrap();
        assert_eq!(rest.status(), 206);
        let rest = rest.bytes().await.unwrap();
        let all = [&body[..], &rest[..]].concat();
        assert_eq!(String::from_utf8(all).unwrap().lines().count(), 10);
        let total: u64 = h.released_bytes()[0].1;
        let none = client
            .get(&url)
            .header("range", format!("bytes={total}-"))
            .send()
            .await
            .unwrap();
        assert_eq!(none.status(), 416);
        assert_eq!(
            client.post(&url).body("x").send().await.unwrap().status(),
            200
        );
        assert_eq!(
            client
                .get(format!("http://{}/other", h.addr))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
        h.stop().await;
    }
}
