//! Hostile drop servers: one that answers too slowly, one whose body never ends, one that
//! redirects to a private address, one that serves garbage records and one that does not speak
//! HTTP at all. Each must end in a clear error (or counted bad records) on its own source,
//! and a well-behaved source polled in the same run must still be ingested.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dropwatch_masks::InstitutionIndex;
use dropwatch_monitor::{Monitor, MonitorConfig, MonitorError, KIND_HTTP_JSONL};
use dropwatch_records::{RecordAnalyzer, SecretKey};
use dropwatch_store::{MonitorSource, Store};
use dropwatch_testkit::fixtures::{a_bank, store_with_a_bank};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

const READ_LIMIT: usize = 64 << 10;
const TIMEOUT: Duration = Duration::from_millis(400);

/// A form grab at the fictional bank, as one JSON line.
fn report_line(n: u32) -> String {
    let context = format!(
        "https://ib.a-bank.example/login.do\nReferer: https://ib.a-bank.example/\nUser input: \nPOST data:\n\nkouza_no=100-{n:04}\npassword=Pw{n}xQ%21z\n"
    );
    serde_json::json!({
        "id": n, "bot_id": format!("WIN7_{n:08X}"), "botnet": "bn1", "type": 12,
        "path_source": "https://ib.a-bank.example/login.do", "context": context,
    })
    .to_string()
}

/// How a hostile (or good) server answers every connection.
#[derive(Clone)]
enum Behaviour {
    /// A complete HTTP response with this body.
    Body(Vec<u8>),
    /// Headers, then nothing until long after the client's timeout.
    Slow,
    /// Headers, then a body of `A`s that never ends.
    Endless,
    /// A redirect to this URL.
    Redirect(String),
    /// Bytes that are not HTTP, then the connection is closed.
    NotHttp,
    /// The current bytes of a source that can change, whole (Range is ignored).
    Changing(Arc<std::sync::Mutex<Vec<u8>>>),
}

/// Serves `behaviour` on a loopback port; returns the base URL and a connection counter.
async fn server(behaviour: Behaviour) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(answer(conn, behaviour.clone()));
        }
    });
    (format!("http://{addr}"), connections)
}

async fn answer(mut conn: TcpStream, behaviour: Behaviour) {
    // Read the request head (the tests send no body).
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = match behaviour {
        Behaviour::Body(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes()).await.ok();
            conn.write_all(&body).await
        }
        Behaviour::Slow => {
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n")
                .await
                .ok();
            tokio::time::sleep(Duration::from_secs(30)).await;
            conn.write_all(b"too late\r\n").await
        }
        Behaviour::Endless => {
            conn.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                .await
                .ok();
            let chunk = vec![b'A'; 16 << 10];
            // Until the client hangs up.
            loop {
                if conn.write_all(&chunk).await.is_err() {
                    break Ok(());
                }
            }
        }
        Behaviour::Redirect(to) => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            conn.write_all(head.as_bytes()).await
        }
        Behaviour::NotHttp => conn.write_all(b"\x16\x03\x01\x02\x00garbage\r\n\r\n").await,
        Behaviour::Changing(body) => {
            let body = body.lock().unwrap().clone();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes()).await.ok();
            conn.write_all(&body).await
        }
    };
    let _ = conn.shutdown().await;
}

fn monitor(store: &Store, allow_private: bool) -> Monitor {
    let analyzer = Arc::new(RecordAnalyzer::new(
        InstitutionIndex::new(vec![a_bank()]),
        SecretKey::from_bytes([3; 32]),
    ));
    let config = MonitorConfig {
        poll_interval: Duration::from_secs(3600),
        allow_private,
        max_body_bytes: READ_LIMIT,
        request_timeout: TIMEOUT,
        ..MonitorConfig::default()
    };
    Monitor::new(store.clone(), analyzer, config, Arc::new(Notify::new())).unwrap()
}

async fn source(store: &Store, id: i64) -> MonitorSource {
    store
        .monitor_source(id)
        .await
        .unwrap()
        .expect("the source exists")
}

async fn bad_records(store: &Store, id: i64) -> (i64, Option<i64>) {
    let c = store
        .monitor_error_counts()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.source_id == id)
        .unwrap();
    (c.bad_records, c.last_bad_position)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_fail_alone_and_the_rest_is_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;

    let good_body = format!("{}\n{}\n", report_line(1), report_line(2));
    let (good, _) = server(Behaviour::Body(good_body.clone().into_bytes())).await;
    let (slow, _) = server(Behaviour::Slow).await;
    let (endless, _) = server(Behaviour::Endless).await;
    // The redirect's target: a private address that must never be contacted.
    let (trap, trap_connections) = server(Behaviour::Body(b"trap\n".to_vec())).await;
    let (redirect, _) = server(Behaviour::Redirect(format!("{trap}/internal"))).await;
    // Garbage: valid reports around binary junk, a report with a wrong type, a cut line.
    let mut garbage = format!("{}\n", report_line(3)).into_bytes();
    garbage.extend_from_slice(b"\x00\xff\xfe\x89PNG\x1a\x00\n");
    garbage.extend_from_slice(b"{\"id\":\"not a number\",\"bot_id\":\"X\",\"type\":12,\"path_source\":\"\",\"context\":\"\"}\n");
    garbage.extend_from_slice(format!("{}\n", report_line(4)).as_bytes());
    garbage.extend_from_slice(b"{\"id\":9,\"bot_id\":\"CUT");
    let (junk, _) = server(Behaviour::Body(garbage.clone())).await;
    let (not_http, _) = server(Behaviour::NotHttp).await;

    let mut ids = Vec::new();
    for url in [&good, &slow, &endless, &redirect, &junk, &not_http] {
        let url = format!("{url}/gate.php");
        ids.push(
            store
                .add_monitor_source(None, KIND_HTTP_JSONL, &url)
                .await
                .unwrap(),
        );
    }
    let [good_id, slow_id, endless_id, redirect_id, junk_id, not_http_id] = ids[..] else {
        unreachable!()
    };

    // One run of the scheduler polls every source once (the interval is an hour).
    let m = monitor(&store, true);
    let (tx, rx) = watch::channel(false);
    let started = Instant::now();
    let run = tokio::spawn({
        let m = m.clone();
        async move { m.run(rx).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sources = store.list_monitor_sources().await.unwrap();
        if sources.iter().all(|s| s.last_polled_at.is_some()) {
            break;
        }
        assert!(Instant::now() < deadline, "not every source was polled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx.send(true).unwrap();
    run.await.unwrap();
    // The slow and endless servers held the run no longer than the timeout allows.
    assert!(started.elapsed() < Duration::from_secs(10));

    // The good source and the good records of the junk source are ingested.
    let s = source(&store, good_id).await;
    assert_eq!(s.last_error, None);
    assert_eq!(
        s.cursor.as_deref(),
        Some(good_body.len().to_string().as_str())
    );
    assert_eq!(bad_records(&store, good_id).await.0, 0);
    let victims = store.list_victims("test", None).await.unwrap();
    let mut accounts: Vec<&str> = victims.iter().map(|v| v.account.as_str()).collect();
    accounts.sort();
    assert_eq!(accounts, ["100-0001", "100-0002", "100-0003", "100-0004"]);

    // Slow: a timeout, named with the source.
    let s = source(&store, slow_id).await;
    let err = s.last_error.expect("slow server: an error");
    assert!(
        err.starts_with(&format!("HTTP request to {slow}/gate.php failed")),
        "{err}"
    );
    assert_eq!(s.cursor, None);

    // Endless: the body limit stopped the read; the one "record" of A's is a bad record, and
    // the cursor moved past it so the source does not stall.
    let s = source(&store, endless_id).await;
    assert_eq!(s.last_error, None);
    assert_eq!(s.cursor.as_deref(), Some(READ_LIMIT.to_string().as_str()));
    assert_eq!(bad_records(&store, endless_id).await, (1, Some(0)));

    // Redirect: not followed; the private target was never contacted.
    let s = source(&store, redirect_id).await;
    assert_eq!(
        s.last_error.as_deref(),
        Some(format!("{redirect}/gate.php answered HTTP 302").as_str())
    );
    assert_eq!(trap_connections.load(Ordering::SeqCst), 0);

    // Garbage: two bad records counted (the cut last line waits for the rest), the last one
    // where the wrong-typed report starts.
    let s = source(&store, junk_id).await;
    assert_eq!(s.last_error, None);
    let bad_at = garbage
        .windows(9)
        .position(|w| w == b"{\"id\":\"no")
        .unwrap() as i64;
    assert_eq!(bad_records(&store, junk_id).await, (2, Some(bad_at)));
    let cut_at = garbage.len() - b"{\"id\":9,\"bot_id\":\"CUT".len();
    assert_eq!(s.cursor.as_deref(), Some(cut_at.to_string().as_str()));

    // Not HTTP at all: a transport error on that source only.
    let s = source(&store, not_http_id).await;
    let err = s.last_error.expect("not-HTTP server: an error");
    assert!(err.contains(&not_http), "{err}");

    // A second poll of the junk source reads nothing new and does not count again.
    let out = m.poll(&source(&store, junk_id).await).await.unwrap();
    assert_eq!(out.lines, 0);
    assert_eq!(bad_records(&store, junk_id).await.0, 2);
    store.close().await;
}

#[tokio::test]
async fn a_poll_of_an_endless_body_is_bounded_in_time_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;
    let (endless, connections) = server(Behaviour::Endless).await;
    let id = store
        .add_monitor_source(None, KIND_HTTP_JSONL, &format!("{endless}/r"))
        .await
        .unwrap();
    let m = monitor(&store, true);
    for round in 1..=3u64 {
        let t = Instant::now();
        let out = m.poll(&source(&store, id).await).await.unwrap();
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(out.bytes, READ_LIMIT as u64);
        assert_eq!(out.bad_lines.len(), 1);
        let s = source(&store, id).await;
        // Each poll moves on by one read limit.
        assert_eq!(s.cursor, Some((round * READ_LIMIT as u64).to_string()));
        assert_eq!(bad_records(&store, id).await.0, round as i64);
    }
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn private_addresses_are_refused_without_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;
    let (server_url, connections) = server(Behaviour::Body(b"x\n".to_vec())).await;
    let id = store
        .add_monitor_source(None, KIND_HTTP_JSONL, &format!("{server_url}/gate.php"))
        .await
        .unwrap();
    let m = monitor(&store, false);
    let err = m.poll(&source(&store, id).await).await.unwrap_err();
    assert!(matches!(err, MonitorError::PrivateAddress(_)), "{err}");
    let s = source(&store, id).await;
    assert!(s.last_error.unwrap().starts_with("refusing to poll"));
    assert_eq!(connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_server_ignoring_range_is_resumed_past_the_read_limit_and_a_shrunk_one_reread() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;
    // Far more than one read limit of reports, served whole at every request.
    let lines: Vec<String> = (0..1200).map(report_line).collect();
    let mut text = lines.join("\n");
    text.push('\n');
    assert!(text.len() > 3 * READ_LIMIT);
    let body = Arc::new(std::sync::Mutex::new(text.clone().into_bytes()));
    let (url, _) = server(Behaviour::Changing(body.clone())).await;
    let id = store
        .add_monitor_source(None, KIND_HTTP_JSONL, &format!("{url}/r"))
        .await
        .unwrap();
    let m = monitor(&store, true);
    let mut polls = 0;
    loop {
        let out = m.poll(&source(&store, id).await).await.unwrap();
        assert!(out.bad_lines.is_empty());
        polls += 1;
        if out.lines == 0 {
            break;
        }
        assert!(polls < 20, "the source never ran dry");
    }
    assert!(polls > 4, "read in several limited polls ({polls})");
    assert_eq!(store.stats().await.unwrap().records, 1200);
    let s = source(&store, id).await;
    assert_eq!(s.cursor, Some(text.len().to_string()));

    // The drop was wiped and holds one new report: it is read from the start.
    let fresh = format!("{}\n", report_line(5000));
    *body.lock().unwrap() = fresh.clone().into_bytes();
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!((out.lines, out.ingest.new_records), (1, 1));
    assert_eq!(
        source(&store, id).await.cursor,
        Some(fresh.len().to_string())
    );
}
