//! The TAXII objects endpoint of dropwatch against the OASIS reference server, medallion,
//! serving the same STIX objects on this machine to the same client.
//!
//! Run with (medallion from `scripts/requirements-test.txt` on the PATH's `python3`):
//!
//! ```sh
//! cargo run --release -p dropwatch-server --example taxii_bench -- \
//!     [--objects 10000] [--concurrency 4] [--seconds 10] [--limit 100] [--only dropwatch|medallion]
//! ```
//!
//! Both servers run as their own process on 127.0.0.1: dropwatch is this binary re-run in
//! server mode on an embedded SQLite store (the default deployment), medallion 3.0.0 is
//! `medallion` with its memory backend loading a JSON file written here (max page 1000, like
//! dropwatch). Both hold the same `--objects` STIX 2.1 indicators with the same `date_added`
//! order. The client (reqwest, `--concurrency` workers on keep-alive connections, HTTP Basic
//! with a partner token, `Accept: application/taxii+json;version=2.1`) runs two request mixes
//! for `--seconds` each:
//!
//! - `walk`: `GET objects/?limit=L`, then follow `next` until `more` is false (a full sync);
//! - `poll`: `GET objects/?added_after=T&limit=L` with T the `date_added` of the object at 90%,
//!   then follow `next` (an incremental sync: the last 10%).
//!
//! Every response is parsed; a walk that does not see every object once aborts the run.
//! It prints requests per second, p50 and p99 latency per server and mix, and the ratios.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use dropwatch_server::taxii::TAXII_MEDIA_TYPE;
use dropwatch_server::AppState;
use dropwatch_store::{
    format_timestamp, ObjectFilter, Store, TokenScope, TokenSecret, DEFAULT_COLLECTION_ALIAS,
    DEFAULT_COLLECTION_ID,
};
use dropwatch_testkit::stix_objects::stix_object;
use serde_json::{json, Value};
use std::io::BufRead as _;

struct Options {
    objects: usize,
    concurrency: usize,
    seconds: u64,
    limit: usize,
    /// Benchmark only this server (`dropwatch` or `medallion`).
    only: Option<String>,
}

fn options() -> Options {
    let mut o = Options {
        objects: 10_000,
        concurrency: 4,
        seconds: 10,
        limit: 100,
        only: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = || -> usize {
            pair.get(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{} needs a number", pair[0]))
        };
        match pair[0].as_str() {
            "--objects" => o.objects = value(),
            "--concurrency" => o.concurrency = value().max(1),
            "--seconds" => o.seconds = value() as u64,
            "--limit" => o.limit = value().max(1),
            "--only" => o.only = pair.get(1).cloned(),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.get(1).map(String::as_str) == Some("--serve-dropwatch") {
        return runtime.block_on(serve_dropwatch(Path::new(&args[2])));
    }
    runtime.block_on(run(options()))
}

/// Server mode: serve the store in `dir` on a free port, print the port, run until killed.
async fn serve_dropwatch(dir: &Path) -> Result<(), BoxError> {
    let store = Store::open_data_dir(dir).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("PORT {}", listener.local_addr()?.port());
    dropwatch_server::serve(listener, AppState::new(store), std::future::pending()).await?;
    Ok(())
}

/// A server process, killed when dropped.
struct Server {
    name: &'static str,
    child: Child,
    objects_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn run(o: Options) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let objects: Vec<Value> = (0..o.objects).map(|i| stix_object(2 * i, 1)).collect();
    let token = TokenSecret::from_bytes(rand::random());

    // dropwatch: publish into a fresh SQLite store, then serve it from another process.
    let data_dir = dir.path().join("dropwatch");
    std::fs::create_dir_all(&data_dir)?;
    let store = Store::open_data_dir(&data_dir).await?;
    let started = Instant::now();
    store
        .publish_stix(DEFAULT_COLLECTION_ALIAS, &objects)
        .await?;
    eprintln!(
        "published {} objects in {:.2?}",
        o.objects,
        started.elapsed()
    );
    store
        .create_api_token(&token, &TokenScope::Partner, "bench")
        .await?;
    let manifest = store
        .manifest_page(
            DEFAULT_COLLECTION_ID,
            &ObjectFilter::default(),
            u32::MAX,
            None,
        )
        .await?;
    let date_added: Vec<String> = manifest
        .objects
        .iter()
        .map(|e| format_timestamp(e.date_added))
        .collect();
    assert_eq!(date_added.len(), o.objects);
    store.close().await;
    let cut_idx = o.objects * 9 / 10 - 1;
    let added_after = date_added[cut_idx].clone();

    let mut child = Command::new(std::env::current_exe()?)
        .arg("--serve-dropwatch")
        .arg(&data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let port = read_port(&mut child)?;
    let dropwatch = Server {
        name: "dropwatch",
        child,
        objects_url: format!(
            "http://127.0.0.1:{port}/taxii2/api1/collections/{DEFAULT_COLLECTION_ID}/objects/"
        ),
    };

    // medallion: the same objects and date_added values in its memory backend's JSON file.
    let port = free_port()?;
    let collection_id = DEFAULT_COLLECTION_ID;
    let manifest: Vec<Value> = objects
        .iter()
        .zip(&date_added)
        .map(|(obj, added)| {
            json!({
                "id": obj["id"],
                "date_added": added,
                "version": obj["modified"],
                "media_type": "application/stix+json;version=2.1",
            })
        })
        .collect();
    let data = json!({
        "/discovery": {
            "title": "medallion bench",
            "default": format!("http://127.0.0.1:{port}/api1/"),
            "api_roots": [format!("http://127.0.0.1:{port}/api1/")],
        },
        "api1": {
            "information": {
                "title": "bench", "versions": [TAXII_MEDIA_TYPE], "max_content_length": 104857600,
            },
            "status": [],
            "collections": [{
                "id": collection_id, "title": "bench", "can_read": true, "can_write": false,
                "media_types": ["application/stix+json;version=2.1"],
                "objects": objects,
                "manifest": manifest,
            }],
        },
    });
    let data_file = dir.path().join("medallion-data.json");
    std::fs::write(&data_file, serde_json::to_vec(&data)?)?;
    let config = json!({
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": data_file,
        },
        "users": { "partner": token.expose() },
        "taxii": { "max_page_size": 1000 },
    });
    let config_file = dir.path().join("medallion.json");
    std::fs::write(&config_file, serde_json::to_vec(&config)?)?;
    let child = Command::new("medallion")
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg(&config_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot start medallion (pip install -r scripts/requirements-test.txt): {e}")
        })?;
    let medallion = Server {
        name: "medallion",
        child,
        objects_url: format!("http://127.0.0.1:{port}/api1/collections/{collection_id}/objects/"),
    };
    wait_for_port(SocketAddr::from(([127, 0, 0, 1], port))).await?;

    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("partner:{}", token.expose()))
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency * 2)
        .timeout(Duration::from_secs(60))
        .build()?;
    let ctx = Ctx {
        client,
        auth: basic,
        limit: o.limit,
    };

    let mixes = [
        ("walk", None, o.objects),
        ("poll", Some(added_after), o.objects - cut_idx - 1),
    ];
    let mut results = Vec::new();
    for server in [&dropwatch, &medallion] {
        if o.only.as_deref().is_some_and(|only| only != server.name) {
            continue;
        }
        for (mix, after, expected) in &mixes {
            // Warm-up and correctness: one full walk sees every expected object once.
            let (n, _) = ctx.walk(&server.objects_url, after.as_deref()).await?;
            if n != *expected {
                return Err(format!(
                    "{} {mix}: a walk saw {n} objects, expected {expected}",
                    server.name
                )
                .into());
            }
            let stats = ctx
                .load(
                    &server.objects_url,
                    after.as_deref(),
                    o.concurrency,
                    Duration::from_secs(o.seconds),
                )
                .await?;
            eprintln!("{} {mix}: {stats:?}", server.name);
            results.push((server.name, *mix, stats));
        }
    }

    println!(
        "\nTAXII GET objects, {} objects, limit={}, {} connections, {} s per mix",
        o.objects, o.limit, o.concurrency, o.seconds
    );
    println!(
        "| server | mix | requests | req/s | p50 ms | p99 ms | objects/s |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for (name, mix, s) in &results {
        println!(
            "| {name} | {mix} | {} | {:.0} | {:.2} | {:.2} | {:.0} |",
            s.requests,
            s.rps(),
            s.p50_ms,
            s.p99_ms,
            s.objects as f64 / s.seconds
        );
    }
    for (mix, _, _) in &mixes {
        let find = |server: &str| {
            results
                .iter()
                .find(|(n, m, _)| *n == server && m == mix)
                .map(|(_, _, s)| s)
        };
        if let (Some(d), Some(m)) = (find("dropwatch"), find("medallion")) {
            println!(
                "{mix}: dropwatch/medallion req/s {:.1}x, p50 medallion/dropwatch {:.1}x, p99 medallion/dropwatch {:.1}x",
                d.rps() / m.rps(),
                m.p50_ms / d.p50_ms,
                m.p99_ms / d.p99_ms
            );
        }
    }
    drop(dropwatch);
    drop(medallion);
    Ok(())
}

fn read_port(child: &mut Child) -> Result<u16, BoxError> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    Ok(line
        .trim()
        .strip_prefix("PORT ")
        .ok_or("the dropwatch server did not start")?
        .parse()?)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_for_port(addr: SocketAddr) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("nothing listens on {addr}").into())
}

#[derive(Clone)]
struct Ctx {
    client: reqwest::Client,
    auth: String,
    limit: usize,
}

#[derive(Debug)]
struct Stats {
    requests: usize,
    objects: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Stats {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Ctx {
    /// One GET: the envelope's object count and `next`, and the latency.
    async fn get(&self, url: &str) -> Result<(usize, Option<String>, Duration), BoxError> {
        let started = Instant::now();
        let res = self
            .client
            .get(url)
            .header("accept", TAXII_MEDIA_TYPE)
            .header("authorization", &self.auth)
            .send()
            .await?;
        let status = res.status();
        let body = res.bytes().await?;
        let elapsed = started.elapsed();
        if !status.is_success() {
            return Err(format!("{url}: {status}: {}", String::from_utf8_lossy(&body)).into());
        }
        let env: Value = serde_json::from_slice(&body)?;
        let n = env["objects"].as_array().map_or(0, Vec::len);
        let next = if env["more"] == true {
            env["next"].as_str().map(str::to_string)
        } else {
            None
        };
        Ok((n, next, elapsed))
    }

    /// A full walk from the first page; returns objects seen and per-request latencies.
    async fn walk(
        &self,
        base: &str,
        added_after: Option<&str>,
    ) -> Result<(usize, Vec<Duration>), BoxError> {
        let query = match added_after {
            Some(t) => format!("limit={}&added_after={t}", self.limit),
            None => format!("limit={}", self.limit),
        };
        let mut latencies = Vec::new();
        let mut seen = 0;
        let mut url = format!("{base}?{query}");
        loop {
            let (n, next, elapsed) = self.get(&url).await?;
            seen += n;
            latencies.push(elapsed);
            match next {
                Some(next) => url = format!("{base}?{query}&next={next}"),
                None => break,
            }
        }
        Ok((seen, latencies))
    }

    /// `concurrency` workers walking for `duration` (a walk in progress at the deadline
    /// finishes and counts).
    async fn load(
        &self,
        base: &str,
        added_after: Option<&str>,
        concurrency: usize,
        duration: Duration,
    ) -> Result<Stats, BoxError> {
        let started = Instant::now();
        let deadline = started + duration;
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let ctx = self.clone();
            let base = base.to_string();
            let added_after = added_after.map(str::to_string);
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut objects = 0;
                while Instant::now() < deadline {
                    let (n, l) = ctx.walk(&base, added_after.as_deref()).await?;
                    objects += n;
                    latencies.extend(l);
                }
                Ok::<_, BoxError>((objects, latencies))
            }));
        }
        let mut latencies = Vec::new();
        let mut objects = 0;
        for t in tasks {
            let (n, l) = t.await??;
            objects += n;
            latencies.extend(l);
        }
        let seconds = started.elapsed().as_secs_f64();
        latencies.sort();
        let pct = |p: f64| {
            let idx = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[idx].as_secs_f64() * 1000.0
        };
        Ok(Stats {
            requests: latencies.len(),
            objects,
            seconds,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
        })
    }
}
