//! The HTTP connector with the `reports.txt` and CSV formats, against a minimal loopback
//! server that serves a growing body and honours `Range: bytes=N-`.

use std::sync::{Arc, Mutex};

use dropwatch_masks::InstitutionIndex;
use dropwatch_monitor::{
    Monitor, MonitorConfig, MonitorError, KIND_HTTP_CSV, KIND_HTTP_JSON, KIND_HTTP_REPORTS_TXT,
};
use dropwatch_records::{RecordAnalyzer, SecretKey};
use dropwatch_store::{MonitorSource, Store};
use dropwatch_testkit::fixtures::store_with_a_bank;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// Serves `body` at any path; records the Range header of each request.
async fn serve(body: Arc<Mutex<Vec<u8>>>, ranges: Arc<Mutex<Vec<Option<u64>>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            let ranges = ranges.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&req).to_ascii_lowercase();
                let from = req
                    .lines()
                    .find_map(|l| l.strip_prefix("range: bytes="))
                    .and_then(|r| r.trim().trim_end_matches('-').parse::<u64>().ok());
                ranges.lock().unwrap().push(from);
                let data = body.lock().unwrap().clone();
                let head = match from {
                    Some(f) if f as usize >= data.len() => {
                        "HTTP/1.1 416 Range Not Satisfiable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
                    }
                    Some(f) => format!(
                        "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        data.len() - f as usize
                    ),
                    None => format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        data.len()
                    ),
                };
                let payload = match from {
                    Some(f) if (f as usize) < data.len() => data[f as usize..].to_vec(),
                    Some(_) => Vec::new(),
                    None => data,
                };
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&payload).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/drop")
}

async fn setup(dir: &std::path::Path) -> (Store, Monitor) {
    let store = store_with_a_bank(dir).await;
    let index = InstitutionIndex::new(store.list_institutions().await.unwrap());
    let analyzer = Arc::new(RecordAnalyzer::new(index, SecretKey::from_bytes([4; 32])));
    let config = MonitorConfig {
        allow_private: true,
        max_body_bytes: 64 << 10,
        ..MonitorConfig::default()
    };
    let m = Monitor::new(store.clone(), analyzer, config, Arc::new(Notify::new())).unwrap();
    (store, m)
}

async fn source(store: &Store, id: i64) -> MonitorSource {
    store
        .monitor_source(id)
        .await
        .unwrap()
        .expect("the source exists")
}

fn context(n: u32) -> String {
    format!(
        "https://ib.a-bank.example/login.do\nReferer: -\nUser input: \nPOST data:\n\nkouza_no={:03}-{:04}\npassword=Http{n}pw%21\n",
        200 + n,
        3000 + n
    )
}

fn block(n: u32) -> String {
    format!(
        "bot_id=B{n}\nbotnet=bn\ntype=12\npath_source=https://ib.a-bank.example/login.do\ncontext={}\n{}\n",
        context(n),
        "=".repeat(80)
    )
}

#[tokio::test]
async fn reports_txt_over_http_resumes_with_range() {
    let dir = tempfile::tempdir().unwrap();
    let (store, m) = setup(dir.path()).await;
    let body = Arc::new(Mutex::new(Vec::new()));
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let url = serve(body.clone(), ranges.clone()).await;
    let id = store
        .add_monitor_source(None, KIND_HTTP_REPORTS_TXT, &url)
        .await
        .unwrap();
    let second = block(2);
    let (half, rest) = second.split_at(40);
    body.lock()
        .unwrap()
        .extend_from_slice(format!("{}{half}", block(1)).as_bytes());
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!((out.lines, out.ingest.new_victims), (1, 1));
    body.lock()
        .unwrap()
        .extend_from_slice(format!("{rest}{}", block(3)).as_bytes());
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!((out.lines, out.ingest.new_victims), (2, 2));
    // Nothing new: the server answers 416 and nothing is ingested.
    assert_eq!(m.poll(&source(&store, id).await).await.unwrap().lines, 0);
    let first_len = block(1).len() as u64;
    let total = (block(1).len() + block(2).len() + block(3).len()) as u64;
    assert_eq!(
        *ranges.lock().unwrap(),
        vec![None, Some(first_len), Some(total)]
    );
    assert_eq!(store.stats().await.unwrap().records, 3);
}

#[tokio::test]
async fn csv_over_http_keeps_its_header_in_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let (store, m) = setup(dir.path()).await;
    let row = |n: u32| {
        format!(
            "B{n},12,https://ib.a-bank.example/login.do,\"{}\"\n",
            context(n)
        )
    };
    let body = Arc::new(Mutex::new(
        format!("bot_id,type,path_source,context\n{}", row(1)).into_bytes(),
    ));
    let url = serve(body.clone(), Arc::default()).await;
    let id = store
        .add_monitor_source(None, KIND_HTTP_CSV, &url)
        .await
        .unwrap();
    assert_eq!(m.poll(&source(&store, id).await).await.unwrap().lines, 1);
    body.lock().unwrap().extend_from_slice(row(2).as_bytes());
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(out.lines, 1);
    assert!(out.bad_lines.is_empty(), "{:?}", out.bad_lines);
    assert_eq!(store.stats().await.unwrap().victims, 2);
}

#[tokio::test]
async fn json_listing_over_the_body_limit_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, m) = setup(dir.path()).await;
    let mut big = b"[".to_vec();
    big.extend(std::iter::repeat_n(b' ', 70 << 10));
    big.push(b']');
    let url = serve(Arc::new(Mutex::new(big)), Arc::default()).await;
    let id = store
        .add_monitor_source(None, KIND_HTTP_JSON, &url)
        .await
        .unwrap();
    let err = m.poll(&source(&store, id).await).await.unwrap_err();
    assert!(matches!(err, MonitorError::TooLarge { .. }), "{err}");
    assert!(source(&store, id).await.last_error.is_some());
}
