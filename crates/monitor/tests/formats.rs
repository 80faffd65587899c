//! File sources in every append-only format, polled through [`Monitor::poll`] while the file
//! grows, with restarts from the stored cursor.

use std::io::Write;
use std::sync::Arc;

use dropwatch_masks::InstitutionIndex;
use dropwatch_monitor::{
    Monitor, MonitorConfig, KIND_FILE_CSV, KIND_FILE_JSON, KIND_FILE_REPORTS_TXT,
};
use dropwatch_records::{RecordAnalyzer, SecretKey};
use dropwatch_store::{MonitorSource, Store};
use dropwatch_testkit::fixtures::store_with_a_bank;
use tokio::sync::Notify;

async fn monitor(store: &Store, max_body_bytes: usize) -> Monitor {
    let index = InstitutionIndex::new(store.list_institutions().await.unwrap());
    let analyzer = Arc::new(RecordAnalyzer::new(index, SecretKey::from_bytes([3; 32])));
    let config = MonitorConfig {
        max_body_bytes,
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

/// The ZeuS form-grab context of a synthetic victim `n`.
fn context(n: u32) -> String {
    format!(
        "https://ib.a-bank.example/login.do\nReferer: https://ib.a-bank.example/\nUser input: \nPOST data:\n\nkouza_no={:03}-{:04}\npassword=Pw{n}x%21q\nonetime={:06}\n",
        100 + n,
        2000 + n,
        300_000 + n
    )
}

fn block(n: u32) -> String {
    format!(
        "bot_id=WIN7_{n:08X}\nbotnet=bn1\nbot_version=33556745\nipv4=203.0.113.9\ncountry=JP\ntype=12\nrtime=1795000000\npath_source=https://ib.a-bank.example/login.do\ncontext={}\n{}\n",
        context(n),
        "=".repeat(80)
    )
}

fn csv_row(n: u32) -> String {
    format!(
        "{n},WIN7_{n:08X},bn1,12,https://ib.a-bank.example/login.do,\"{}\",203.0.113.9,JP\r\n",
        context(n).replace('"', "\"\"")
    )
}

fn append(path: &std::path::Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

#[tokio::test]
async fn reports_txt_grows_block_by_block_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;
    let path = dir.path().join("reports.txt");
    let id = store
        .add_monitor_source(None, KIND_FILE_REPORTS_TXT, path.to_str().unwrap())
        .await
        .unwrap();
    // Two blocks and half of a third.
    let third = block(3);
    let (half, rest) = third.split_at(third.len() / 2);
    append(&path, &format!("{}{}{half}", block(1), block(2)));
    let m = monitor(&store, 1 << 20).await;
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(out.lines, 2);
    assert_eq!(out.ingest.new_victims, 2);
    let cursor: u64 = source(&store, id).await.cursor.unwrap().parse().unwrap();
    assert_eq!(cursor as usize, block(1).len() + block(2).len());
    // Restart; the rest of the third block arrives with a fourth.
    append(&path, &format!("{rest}{}", block(4)));
    let m = monitor(&store, 1 << 20).await;
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(out.lines, 2);
    assert_eq!(out.ingest.new_records, 2);
    assert_eq!(m.poll(&source(&store, id).await).await.unwrap().lines, 0);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.records, stats.victims, stats.alerts), (4, 4, 4));
}

#[tokio::test]
async fn csv_resumes_with_the_header_from_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;
    let path = dir.path().join("reports.csv");
    let id = store
        .add_monitor_source(None, KIND_FILE_CSV, path.to_str().unwrap())
        .await
        .unwrap();
    append(
        &path,
        &format!(
            "id,bot_id,botnet,type,path_source,context,ipv4,country\r\n{}",
            csv_row(1)
        ),
    );
    let m = monitor(&store, 1 << 20).await;
    assert_eq!(m.poll(&source(&store, id).await).await.unwrap().lines, 1);
    append(&path, &format!("{}{}", csv_row(2), csv_row(3)));
    let m = monitor(&store, 1 << 20).await;
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(out.lines, 2);
    assert!(out.bad_lines.is_empty(), "{:?}", out.bad_lines);
    assert_eq!(out.ingest.new_victims, 2);
    assert!(source(&store, id)
        .await
        .cursor
        .unwrap()
        .contains("\"context\""));
}

#[tokio::test]
async fn a_record_larger_than_the_read_limit_is_skipped_not_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;
    let path = dir.path().join("reports.txt");
    let id = store
        .add_monitor_source(None, KIND_FILE_REPORTS_TXT, path.to_str().unwrap())
        .await
        .unwrap();
    let big = format!(
        "bot_id=X\ncontext={}\n{}\n",
        "y".repeat(10_000),
        "=".repeat(80)
    );
    append(&path, &format!("{big}{}", block(7)));
    let m = monitor(&store, 4096).await;
    let mut polls = 0;
    let mut bad = 0;
    let mut victims = 0;
    loop {
        let out = m.poll(&source(&store, id).await).await.unwrap();
        if out.bytes == 0 {
            break;
        }
        bad += out.bad_lines.len();
        victims += out.ingest.new_victims;
        polls += 1;
        assert!(polls < 20, "the source never ran dry");
    }
    assert!(bad >= 1);
    assert_eq!(
        victims, 1,
        "the block after the oversized one still arrives"
    );
}

#[tokio::test]
async fn json_array_snapshots_do_not_make_records_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;
    let path = dir.path().join("listing.json");
    let item = |n: u32| {
        serde_json::json!({"id": n, "bot_id": format!("B{n}"), "type": 12,
            "path_source": "https://ib.a-bank.example/login.do", "context": context(n)})
    };
    std::fs::write(&path, serde_json::to_vec(&vec![item(1), item(2)]).unwrap()).unwrap();
    let id = store
        .add_monitor_source(None, KIND_FILE_JSON, path.to_str().unwrap())
        .await
        .unwrap();
    let m = monitor(&store, 1 << 20).await;
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!((out.lines, out.ingest.new_records), (2, 2));
    std::fs::write(
        &path,
        serde_json::to_vec(&vec![item(1), item(2), item(3)]).unwrap(),
    )
    .unwrap();
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(out.ingest.new_records, 1);
    assert_eq!(out.ingest.duplicate_records, 2);
    assert_eq!(store.stats().await.unwrap().victims, 3);
}
