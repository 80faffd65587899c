//! The panel database monitor against a real MariaDB/MySQL server.
//!
//! The server is reached at `DROPWATCH_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306`).
//! Each test creates its own database `dropwatch_panel_test_<pid>_<rand>` with the ZeuS 2.0.8.9
//! report table layout (`../shared/design/formats/drops-and-sharing.md` §1.1), inserts
//! synthetic rows (fictional banks under `.example`, synthetic identities), and drops it
//! afterwards. Without a server the tests are skipped with a message, except under `CI=true`,
//! where a missing server fails them.

use std::sync::Arc;

use dropwatch_masks::InstitutionIndex;
use dropwatch_monitor::{Monitor, MonitorConfig, PanelDbLimits, PollOutcome, KIND_PANEL_MYSQL};
use dropwatch_records::{RecordAnalyzer, SecretKey, MAX_RECORD_BYTES};
use dropwatch_store::{MonitorSource, Store};
use sqlx::mysql::MySqlConnection;
use sqlx::{Connection, Executor};
use tokio::sync::Notify;

use dropwatch_testkit::fixtures::store_with_a_bank;
use dropwatch_testkit::panel_schema::{
    mysql_admin_url as admin_url, ZEUS_REPORTS_TEMPLATE as ZEUS_TEMPLATE,
};

/// A scratch panel database, dropped by [`Panel::finish`].
struct Panel {
    admin: MySqlConnection,
    db: String,
}

impl Panel {
    /// Creates the database, or returns `None` (after saying so) when no server is reachable.
    async fn new(test: &str) -> Option<Panel> {
        let admin_url = admin_url();
        let mut admin = match MySqlConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("MariaDB is required in CI but {admin_url} is unreachable: {e}");
                }
                eprintln!("SKIPPED: {test} ({admin_url} unreachable: {e})");
                return None;
            }
        };
        let db = format!(
            "dropwatch_panel_test_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        admin
            .execute(format!("CREATE DATABASE `{db}` CHARACTER SET utf8").as_str())
            .await
            .unwrap();
        admin.execute(format!("USE `{db}`").as_str()).await.unwrap();
        Some(Panel { admin, db })
    }

    fn source_url(&self) -> String {
        let base = admin_url();
        let base = base.trim_end_matches('/');
        format!("{base}/{}", self.db)
    }

    async fn exec(&mut self, sql: &str) {
        self.admin.execute(sql).await.unwrap();
    }

    /// Inserts one synthetic ZeuS form-grab row into `table`, the way the gate does.
    async fn insert_zeus(&mut self, table: &str, row: &Grab) {
        sqlx::query(&format!(
            "INSERT INTO `{table}` (bot_id, botnet, bot_version, path_source, path_dest, os_version,
               process_name, process_user, type, context, ipv4, country, rtime)
             VALUES (?, 'bn1', 33556745, ?, '', '', 'iexplore.exe', 'WIN7\\\\user', 12, ?, '203.0.113.9', 'JP', 1795000000)"
        ))
        .bind(&row.bot_id)
        .bind(&row.url)
        .bind(row.context())
        .execute(&mut self.admin)
        .await
        .unwrap();
    }

    async fn finish(mut self) {
        self.admin
            .execute(format!("DROP DATABASE IF EXISTS `{}`", self.db).as_str())
            .await
            .unwrap();
        let _ = self.admin.close().await;
    }
}

/// A synthetic form grab at a fictional bank.
struct Grab {
    bot_id: String,
    url: String,
    account: String,
    password: String,
    otp: String,
}

impl Grab {
    fn new(n: u32) -> Grab {
        Grab {
            bot_id: format!("WIN7_{n:08X}"),
            url: "https://ib.a-bank.example/login.do".into(),
            account: format!("{:03}-{:04}", 100 + n, 1000 + n * 7),
            password: format!("Pw{n}qZ!x{}", n * 31),
            otp: format!("{:06}", 400_000 + n * 13),
        }
    }

    /// The ZeuS 2.0.8.9 form-grab layout (§1.1): URL, Referer, User input, POST data, body.
    fn context(&self) -> String {
        format!(
            "{url}\nReferer: https://ib.a-bank.example/\nUser input: {acct}\t{pw}\nPOST data:\n\nkouza_no={acct}\npassword={pw_enc}\nonetime={otp}\n",
            url = self.url,
            acct = self.account,
            pw = self.password,
            pw_enc = self.password.replace('!', "%21"),
            otp = self.otp,
        )
    }
}

/// A monitor as `dropwatch monitor run` builds it: a fresh one is a restarted process.
async fn monitor(store: &Store, max_rows: u64) -> Monitor {
    let index = InstitutionIndex::new(store.list_institutions().await.unwrap());
    let analyzer = Arc::new(RecordAnalyzer::new(index, SecretKey::from_bytes([9; 32])));
    let config = MonitorConfig {
        allow_private: true,
        panel_db: PanelDbLimits {
            max_rows,
            ..PanelDbLimits::default()
        },
        ..MonitorConfig::default()
    };
    Monitor::new(store.clone(), analyzer, config, Arc::new(Notify::new())).unwrap()
}

async fn source(store: &Store, id: i64) -> MonitorSource {
    store
        .list_monitor_sources()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == id)
        .unwrap()
}

/// Polls (re-reading the source, as the scheduler does) until a poll reads nothing.
async fn drain(m: &Monitor, store: &Store, id: i64) -> Vec<PollOutcome> {
    let mut outs = Vec::new();
    loop {
        let out = m.poll(&source(store, id).await).await.unwrap();
        if out.lines == 0 {
            return outs;
        }
        outs.push(out);
        assert!(outs.len() < 100, "the source never ran dry");
    }
}

fn sum(outs: &[PollOutcome], f: impl Fn(&PollOutcome) -> u64) -> u64 {
    outs.iter().map(f).sum()
}

fn cursor_of(s: &MonitorSource) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(s.cursor.as_deref().unwrap()).unwrap()
}

#[tokio::test]
async fn zeus_rows_arrive_once_across_restarts_and_new_day_tables() {
    let Some(mut panel) =
        Panel::new("zeus_rows_arrive_once_across_restarts_and_new_day_tables").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;
    let id = store
        .add_monitor_source(None, KIND_PANEL_MYSQL, &panel.source_url())
        .await
        .unwrap();
    let grabs: Vec<Grab> = (1..=9).map(Grab::new).collect();

    panel.exec(ZEUS_TEMPLATE).await;
    // The template itself holds no reports; a row there must not be read.
    panel.insert_zeus("botnet_reports", &Grab::new(99)).await;
    panel
        .exec("CREATE TABLE botnet_reports_261125 LIKE botnet_reports")
        .await;
    for g in &grabs[..5] {
        panel.insert_zeus("botnet_reports_261125", g).await;
    }

    // Day one: five rows, read three per poll.
    let m = monitor(&store, 3).await;
    let first = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(first.lines, 3);
    assert_eq!(first.ingest.new_records, 3);
    assert_eq!(
        cursor_of(&source(&store, id).await)["botnet_reports_261125"],
        3
    );
    let rest = drain(&m, &store, id).await;
    assert_eq!(sum(&rest, |o| o.lines), 2);

    // More rows in the same table and a new day table, then a restart from the stored cursor.
    for g in &grabs[5..7] {
        panel.insert_zeus("botnet_reports_261125", g).await;
    }
    panel
        .exec("CREATE TABLE IF NOT EXISTS botnet_reports_261126 LIKE botnet_reports")
        .await;
    for g in &grabs[7..] {
        panel.insert_zeus("botnet_reports_261126", g).await;
    }
    drop(m);
    let m = monitor(&store, 3).await;
    let after = drain(&m, &store, id).await;
    assert_eq!(sum(&after, |o| o.lines), 4);
    assert_eq!(sum(&after, |o| o.ingest.new_records), 4);
    assert_eq!(sum(&after, |o| o.ingest.duplicate_records), 0);
    let cursor = cursor_of(&source(&store, id).await);
    assert_eq!(cursor["botnet_reports_261125"], 7);
    assert_eq!(cursor["botnet_reports_261126"], 2);
    assert!(!cursor.contains_key("botnet_reports"));

    // A third process finds nothing new.
    let m = monitor(&store, 3).await;
    assert_eq!(m.poll(&source(&store, id).await).await.unwrap().lines, 0);

    // Every row once: nine records, nine victims (one account each), one alert per victim.
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.records, 9);
    assert_eq!(stats.victims, 9);
    assert_eq!(stats.alerts, 9);
    let victims = store.list_victims("test", Some("jp-a")).await.unwrap();
    let mut accounts: Vec<&str> = victims.iter().map(|v| v.account.as_str()).collect();
    accounts.sort();
    let mut expected: Vec<&str> = grabs.iter().map(|g| g.account.as_str()).collect();
    expected.sort();
    assert_eq!(accounts, expected);
    assert!(victims
        .iter()
        .all(|v| v.exposed.len() == 2 && v.n_records == 1));

    // No secret reached the data directory in any form.
    store.close().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    for g in &grabs {
        for secret in [&g.password, &g.otp] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} leaked into the data directory"
            );
        }
    }
    panel.finish().await;
}

#[tokio::test]
async fn hostile_rows_shrinking_and_vanishing_tables() {
    let Some(mut panel) = Panel::new("hostile_rows_shrinking_and_vanishing_tables").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;
    let id = store
        .add_monitor_source(None, KIND_PANEL_MYSQL, &panel.source_url())
        .await
        .unwrap();
    panel.exec(ZEUS_TEMPLATE).await;
    panel
        .exec("CREATE TABLE botnet_reports_261120 LIKE botnet_reports")
        .await;
    panel
        .exec("CREATE TABLE botnet_reports_261121 LIKE botnet_reports")
        .await;
    panel
        .insert_zeus("botnet_reports_261120", &Grab::new(1))
        .await;
    // An oversized context, a type out of range, an empty row, then a good one.
    panel
        .exec(&format!(
            "INSERT INTO botnet_reports_261121 (bot_id, path_source, path_dest, os_version, process_name, process_user, type, context)
             VALUES ('B1', 'https://ib.a-bank.example/', '', '', '', '', 12, REPEAT('A', {}))",
            MAX_RECORD_BYTES + 10
        ))
        .await;
    panel
        .exec("INSERT INTO botnet_reports_261121 (bot_id, path_source, path_dest, os_version, process_name, process_user, type, context)
               VALUES ('B2', '', '', '', '', '', 4294967295, 'x')")
        .await;
    panel
        .exec("INSERT INTO botnet_reports_261121 (bot_id, path_source, path_dest, os_version, process_name, process_user, context)
               VALUES ('', '', '', '', '', '', '')")
        .await;
    panel
        .insert_zeus("botnet_reports_261121", &Grab::new(2))
        .await;

    let m = monitor(&store, 100).await;
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(out.lines, 5);
    // Type 4294967295 fits a u32; only the oversized context is refused, by row id.
    assert_eq!(out.bad_lines.len(), 1, "{:?}", out.bad_lines);
    assert_eq!(out.bad_lines[0].0, 1);
    assert!(out.bad_lines[0].1.contains("botnet_reports_261121"));
    assert_eq!(out.ingest.new_victims, 2);
    let cursor = cursor_of(&source(&store, id).await);
    assert_eq!(cursor["botnet_reports_261121"], 4);

    // The panel deletes a day table and empties another: the first leaves the cursor, the
    // second is read again from its start when new rows come, without making new records.
    panel.exec("DROP TABLE botnet_reports_261120").await;
    panel.exec("TRUNCATE TABLE botnet_reports_261121").await;
    panel
        .insert_zeus("botnet_reports_261121", &Grab::new(2))
        .await;
    panel
        .insert_zeus("botnet_reports_261121", &Grab::new(3))
        .await;
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(out.lines, 2);
    assert_eq!(out.ingest.duplicate_records, 1);
    assert_eq!(out.ingest.new_records, 1);
    let cursor = cursor_of(&source(&store, id).await);
    assert!(!cursor.contains_key("botnet_reports_261120"));
    assert_eq!(cursor["botnet_reports_261121"], 2);
    assert_eq!(store.stats().await.unwrap().victims, 3);
    panel.finish().await;
}

#[tokio::test]
async fn spyeye_and_tinba_tables_are_read_too() {
    let Some(mut panel) = Panel::new("spyeye_and_tinba_tables_are_read_too").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;
    let id = store
        .add_monitor_source(None, KIND_PANEL_MYSQL, &panel.source_url())
        .await
        .unwrap();
    // Columns as §1.3 and §1.4 give them; types are assumptions of this test.
    panel
        .exec("CREATE TABLE rep2_20261126 (id int unsigned auto_increment PRIMARY KEY, bot_guid varchar(40),
               process_name text, hooked_func text, func_data longtext, `keys` longtext, date_rep datetime)")
        .await;
    panel
        .exec("CREATE TABLE logs_261126 (log_id int unsigned auto_increment PRIMARY KEY, bot_uid char(40),
               bot_net varchar(40), bot_supp text, supp_sub text, bot_ip varchar(15), bot_country char(2),
               `timestamp` int unsigned, data_type tinyint, data text, comment text)")
        .await;
    let (a, b) = (Grab::new(5), Grab::new(6));
    sqlx::query("INSERT INTO rep2_20261126 (bot_guid, process_name, hooked_func, func_data, `keys`, date_rep) VALUES (?, 'iexplore.exe', 'HttpSendRequestW', ?, 'k', '2026-11-26 01:02:03')")
        .bind(&a.bot_id)
        .bind(a.context())
        .execute(&mut panel.admin)
        .await
        .unwrap();
    sqlx::query("INSERT INTO logs_261126 (bot_uid, bot_net, bot_ip, bot_country, `timestamp`, data_type, data) VALUES (?, 'tn', '198.51.100.4', 'JP', 1795000000, 1, ?)")
        .bind(&b.bot_id)
        .bind(b.context())
        .execute(&mut panel.admin)
        .await
        .unwrap();
    let m = monitor(&store, 100).await;
    let outs = drain(&m, &store, id).await;
    assert_eq!(sum(&outs, |o| o.lines), 2);
    assert!(outs.iter().all(|o| o.bad_lines.is_empty()));
    assert_eq!(sum(&outs, |o| o.ingest.new_victims), 2);
    let cursor = cursor_of(&source(&store, id).await);
    assert_eq!(cursor["rep2_20261126"], 1);
    assert_eq!(cursor["logs_261126"], 1);
    panel.finish().await;
}

#[tokio::test]
async fn private_panel_hosts_need_permission() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;
    let id = store
        .add_monitor_source(None, KIND_PANEL_MYSQL, "mysql://root@127.0.0.1:3306/panel")
        .await
        .unwrap();
    let index = InstitutionIndex::new(vec![]);
    let analyzer = Arc::new(RecordAnalyzer::new(index, SecretKey::from_bytes([9; 32])));
    let m = Monitor::new(
        store.clone(),
        analyzer,
        MonitorConfig::default(),
        Arc::new(Notify::new()),
    )
    .unwrap();
    let err = m.poll(&source(&store, id).await).await.unwrap_err();
    assert!(err.to_string().contains("loopback or private"), "{err}");
    let s = source(&store, id).await;
    assert!(s.last_error.is_some());
    assert_eq!(s.cursor, None);
}

#[tokio::test]
async fn citadel_tables_with_process_info_are_read() {
    let Some(mut panel) = Panel::new("citadel_tables_with_process_info_are_read").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_bank(dir.path()).await;
    let id = store
        .add_monitor_source(None, KIND_PANEL_MYSQL, &panel.source_url())
        .await
        .unwrap();
    // Citadel 1.3.4.5 (§1.2): the ZeuS table plus `process_info`, and its own extra tables.
    panel.exec(ZEUS_TEMPLATE).await;
    panel
        .exec("ALTER TABLE botnet_reports ADD COLUMN process_info text")
        .await;
    panel
        .exec("CREATE TABLE botnet_rep_dedup (`table` mediumint, report_id int, hash binary(20))")
        .await;
    panel
        .exec("CREATE TABLE botnet_reports_261201 LIKE botnet_reports")
        .await;
    let g = Grab::new(11);
    panel.insert_zeus("botnet_reports_261201", &g).await;
    panel
        .exec("UPDATE botnet_reports_261201 SET process_info = 'pid=4242', type = 13")
        .await;
    let m = monitor(&store, 100).await;
    let out = m.poll(&source(&store, id).await).await.unwrap();
    assert_eq!(out.lines, 1);
    assert!(out.bad_lines.is_empty());
    assert_eq!(out.ingest.new_victims, 1);
    let cursor = cursor_of(&source(&store, id).await);
    assert_eq!(cursor.len(), 1);
    assert_eq!(cursor["botnet_reports_261201"], 1);
    panel.finish().await;
}
