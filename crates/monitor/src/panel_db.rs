//! Panel database monitor: a seized ZeuS 2.x / Citadel (and SpyEye, Tinba) panel's MySQL or
//! MariaDB database, read incrementally by day table and row id.
//!
//! # Why this crate speaks SQL
//! `ARCHITECTURE.md` makes `dropwatch-store` "the only crate that speaks SQL". That rule is
//! about dropwatch's *own* database. This connector reads *the criminals'* database, the
//! panel's stolen-data store, exactly as the HTTP connector reads their web server: it is a
//! source, never a store. It only ever sends `SELECT` statements, built by [`Select`] from
//! fixed templates and validated identifiers; no other statement can be formed, and nothing is
//! ever written there. (Give it a MySQL account with `SELECT` privilege only all the same.)
//!
//! # Layouts (`../shared/design/formats/drops-and-sharing.md` §1)
//! - ZeuS 2.0.8.9 and Citadel 1.3.4.5 (§1.1, §1.2): one table per UTC day,
//!   `botnet_reports_YYMMDD`, created `LIKE botnet_reports`; columns `id`, `bot_id`, `botnet`,
//!   `type` (BLT_*), `path_source`, `context`, `ipv4` (dotted string), `country`, `rtime`
//!   (Unix seconds). Citadel adds `process_info`, which is not read. Day tables are found by
//!   prefix plus numeric suffix, as the panel itself does; the template `botnet_reports` (no
//!   suffix) holds no data and is ignored. `botnet_list` and Citadel's other tables hold no
//!   stolen form data and are not read.
//! - SpyEye 1.0 formgrabber (§1.3): `rep2_YYYYMMDD` with `id`, `bot_guid`, `func_data` (the
//!   grabbed data, read as the context), `date_rep` (datetime). `keys` (the keystroke log) is
//!   not read. The layout inside `func_data` is not documented, so its analysis is best effort.
//! - Tinba (§1.4): `logs_YYMMDD` with `log_id`, `bot_uid`, `bot_net`, `bot_ip`, `bot_country`,
//!   `timestamp`, `data_type`, `data`.
//!
//! Columns are looked up in `information_schema` per table: a table lacking its id, bot id or
//! context column is skipped with a warning; a missing optional column reads as empty; a
//! `datetime`/`timestamp` time column is converted with `UNIX_TIMESTAMP` (the session time zone
//! is UTC).
//!
//! # Cursor
//! The source's text cursor is a JSON object `{"<table>": <last id read>, ...}`. A poll reads
//! `WHERE id > <last id> ORDER BY id LIMIT <n>` from each table whose `MAX(id)` passed its
//! cursor, oldest table first, and ingests the rows with the new cursor in one store
//! transaction (`Store::ingest`), so a restart neither loses nor repeats a row. New day tables
//! are picked up at the next poll; a table that disappeared leaves the cursor; a table whose
//! `MAX(id)` fell below its cursor (emptied, or dropped and re-created) is read again from the
//! start, the store's fingerprints keeping re-read rows from becoming new records.
//!
//! Limits: at most [`PanelDbLimits::max_rows`] rows and about [`PanelDbLimits::max_bytes`]
//! bytes per poll (rows are streamed, the rest waits for the next poll); a context longer than
//! [`MAX_RECORD_BYTES`] is counted as a bad row and skipped, and short fields are cut at
//! [`MAX_FIELD_BYTES`]. Caveat: the panels use MyISAM with `INSERT DELAYED`, so ids become
//! visible in order; on a transactional engine a row whose transaction commits after a larger
//! id was read would be missed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use dropwatch_model::{AnalyzedRecord, PanelReport};
use dropwatch_records::MAX_RECORD_BYTES;
use dropwatch_store::{now_micros, MonitorSource};
use futures_util::TryStreamExt;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{ConnectOptions, Connection, Row};

use crate::{is_private_host, Monitor, MonitorError, PollOutcome};

/// Source kind: a panel's MySQL/MariaDB database, `mysql://user[:password]@host[:port]/db`.
pub const KIND_PANEL_MYSQL: &str = "panel_mysql";

/// Longest value read from a short column (bot id, botnet, URL, IP, country); longer is cut.
pub const MAX_FIELD_BYTES: usize = 8 << 10;

/// Most day tables considered in one poll (a panel keeps one per day; ten years fit).
pub const MAX_TABLES: usize = 4096;

/// Tables whose `MAX(id)` is asked in one statement.
const MAX_ID_CHUNK: usize = 128;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PanelDbError {
    /// The source URL is not `mysql://user@host[:port]/database`.
    #[error("invalid panel database URL {0:?} (want mysql://user@host:port/database)")]
    BadUrl(String),
    /// The stored cursor is not the JSON object this connector writes.
    #[error("corrupt panel cursor: {0}")]
    BadCursor(String),
    /// Connecting failed; the URL is given without its password.
    #[error("connecting to {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    /// A statement failed, or a row did not have the types the statement asked for.
    #[error("query: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    /// A statement other than a single `SELECT` was about to be built.
    #[error("refusing to send a statement that is not a single SELECT")]
    NotASelect,
}

/// Per-poll bounds of the panel database connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PanelDbLimits {
    /// Most rows read per poll, over all tables.
    pub max_rows: u64,
    /// Bytes after which a poll stops reading rows (the row that crosses it is kept).
    pub max_bytes: usize,
}

impl Default for PanelDbLimits {
    fn default() -> PanelDbLimits {
        PanelDbLimits {
            max_rows: 1000,
            max_bytes: 16 << 20,
        }
    }
}

/// The panel families whose stolen-data tables are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PanelFamily {
    /// ZeuS 2.x and its forks with the same table (Citadel, KINS): `botnet_reports_YYMMDD`.
    Zeus,
    /// SpyEye formgrabber: `rep2_YYYYMMDD`.
    SpyEye,
    /// Tinba: `logs_YYMMDD`.
    Tinba,
}

/// How a [`PanelReport`] field is read from a column.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ColKind {
    /// Bytes, cut at a length, decoded as lossy UTF-8.
    Text(usize),
    /// An unsigned integer.
    Uint,
    /// Unix seconds, from an integer or a date/time column.
    Time,
}

/// One family's table naming and column names, per [`PanelReport`] field.
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) family: PanelFamily,
    prefix: &'static str,
    digits: usize,
    pub(crate) id: &'static str,
    pub(crate) bot_id: &'static str,
    pub(crate) context: &'static str,
    /// Optional columns: (output name, column, how it is read).
    pub(crate) optional: [(&'static str, Option<&'static str>, ColKind); 6],
}

const LAYOUTS: [Layout; 3] = [
    Layout {
        family: PanelFamily::Zeus,
        prefix: "botnet_reports_",
        digits: 6,
        id: "id",
        bot_id: "bot_id",
        context: "context",
        optional: [
            ("botnet", Some("botnet"), ColKind::Text(MAX_FIELD_BYTES)),
            ("type", Some("type"), ColKind::Uint),
            (
                "path_source",
                Some("path_source"),
                ColKind::Text(MAX_FIELD_BYTES),
            ),
            ("ipv4", Some("ipv4"), ColKind::Text(MAX_FIELD_BYTES)),
            ("country", Some("country"), ColKind::Text(MAX_FIELD_BYTES)),
            ("rtime", Some("rtime"), ColKind::Time),
        ],
    },
    Layout {
        family: PanelFamily::SpyEye,
        prefix: "rep2_",
        digits: 8,
        id: "id",
        bot_id: "bot_guid",
        context: "func_data",
        optional: [
            ("botnet", None, ColKind::Text(MAX_FIELD_BYTES)),
            ("type", None, ColKind::Uint),
            ("path_source", None, ColKind::Text(MAX_FIELD_BYTES)),
            ("ipv4", None, ColKind::Text(MAX_FIELD_BYTES)),
            ("country", None, ColKind::Text(MAX_FIELD_BYTES)),
            ("rtime", Some("date_rep"), ColKind::Time),
        ],
    },
    Layout {
        family: PanelFamily::Tinba,
        prefix: "logs_",
        digits: 6,
        id: "log_id",
        bot_id: "bot_uid",
        context: "data",
        optional: [
            ("botnet", Some("bot_net"), ColKind::Text(MAX_FIELD_BYTES)),
            ("type", Some("data_type"), ColKind::Uint),
            ("path_source", None, ColKind::Text(MAX_FIELD_BYTES)),
            ("ipv4", Some("bot_ip"), ColKind::Text(MAX_FIELD_BYTES)),
            (
                "country",
                Some("bot_country"),
                ColKind::Text(MAX_FIELD_BYTES),
            ),
            ("rtime", Some("timestamp"), ColKind::Time),
        ],
    },
];

/// Which family a table name belongs to: its prefix followed by exactly the family's number of
/// digits (`botnet_reports_261126`, `rep2_20261126`, `logs_261126`).
pub fn table_family(name: &str) -> Option<PanelFamily> {
    layout_of(name).map(|l| l.family)
}

pub(crate) fn layout_of(name: &str) -> Option<&'static Layout> {
    LAYOUTS.iter().find(|l| {
        name.strip_prefix(l.prefix)
            .is_some_and(|d| d.len() == l.digits && d.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The per-table cursor: the last row id read from each day table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PanelCursor(pub BTreeMap<String, u64>);

impl PanelCursor {
    /// Reads the stored cursor; no cursor is an empty one.
    pub fn parse(text: Option<&str>) -> Result<PanelCursor, PanelDbError> {
        match text.map(str::trim) {
            None | Some("") => Ok(PanelCursor::default()),
            Some(t) => serde_json::from_str(t)
                .map(PanelCursor)
                .map_err(|e| PanelDbError::BadCursor(e.to_string())),
        }
    }

    /// The text stored in the source's cursor column.
    pub fn to_text(&self) -> String {
        // A map of strings to integers always serialises.
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".to_string())
    }
}

/// A statement this connector may send: a single `SELECT`, assembled only from this module's
/// templates, validated identifiers and bound parameters.
struct Select(String);

impl Select {
    fn new(sql: String) -> Result<Select, PanelDbError> {
        let ok = sql.starts_with("SELECT ") && !sql.contains(';');
        if ok {
            Ok(Select(sql))
        } else {
            Err(PanelDbError::NotASelect)
        }
    }
}

/// Quotes an identifier known to consist of ASCII letters, digits and `_` only.
fn ident(name: &str) -> Result<String, PanelDbError> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(format!("`{name}`"))
    } else {
        Err(PanelDbError::NotASelect)
    }
}

/// A day table found in the panel database.
#[derive(Debug, Clone)]
struct Table {
    name: String,
    layout: &'static Layout,
    /// Column name → `DATA_TYPE`, lowercase.
    columns: HashMap<String, String>,
}

impl Table {
    fn has(&self, col: &str) -> bool {
        self.columns.contains_key(col)
    }

    /// The row statement: every [`PanelReport`] field under a fixed alias, with fixed types.
    fn select_rows(&self) -> Result<Select, PanelDbError> {
        let l = self.layout;
        let text = |col: &str, cap: usize| -> Result<String, PanelDbError> {
            Ok(format!(
                "SUBSTRING(CAST({} AS BINARY), 1, {cap})",
                ident(col)?
            ))
        };
        let mut exprs = vec![
            format!("CAST({} AS UNSIGNED) AS `id`", ident(l.id)?),
            format!("{} AS `bot_id`", text(l.bot_id, MAX_FIELD_BYTES)?),
            format!(
                "{} AS `context`",
                text(l.context, MAX_RECORD_BYTES.saturating_add(1))?
            ),
        ];
        for (alias, col, kind) in l.optional {
            let expr = match (col.filter(|c| self.has(c)), kind) {
                (None, ColKind::Text(_)) => "CAST('' AS BINARY)".to_string(),
                (None, ColKind::Uint) => "CAST(0 AS UNSIGNED)".to_string(),
                (None, ColKind::Time) => "CAST(0 AS SIGNED)".to_string(),
                (Some(c), ColKind::Text(cap)) => text(c, cap)?,
                (Some(c), ColKind::Uint) => format!("CAST({} AS UNSIGNED)", ident(c)?),
                (Some(c), ColKind::Time) => {
                    let dt = self.columns.get(c).map(String::as_str).unwrap_or("");
                    if matches!(dt, "datetime" | "timestamp" | "date") {
                        format!("CAST(UNIX_TIMESTAMP({}) AS SIGNED)", ident(c)?)
                    } else {
                        format!("CAST({} AS SIGNED)", ident(c)?)
                    }
                }
            };
            exprs.push(format!("{expr} AS {}", ident(alias)?));
        }
        Select::new(format!(
            "SELECT {} FROM {} WHERE {id} > ? ORDER BY {id} LIMIT ?",
            exprs.join(", "),
            ident(&self.name)?,
            id = ident(l.id)?,
        ))
    }
}

/// `mysql://user[:password]@host[:port]/database` → connect options, and the URL without its
/// password (for messages).
fn connect_options(url: &url::Url) -> Result<(MySqlConnectOptions, String), PanelDbError> {
    let bad = || {
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        PanelDbError::BadUrl(shown.to_string())
    };
    if url.scheme() != "mysql" && url.scheme() != "mariadb" {
        return Err(bad());
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(bad)?;
    let db = url.path().trim_start_matches('/');
    if db.is_empty() || db.contains('/') || url.username().is_empty() {
        return Err(bad());
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut opts = MySqlConnectOptions::new()
        .host(host)
        .port(url.port().unwrap_or(3306))
        .username(&decode(url.username()))
        .database(&decode(db))
        // Session time zone UTC, so UNIX_TIMESTAMP() reads datetimes as UTC.
        .timezone(Some("+00:00".to_string()))
        .disable_statement_logging();
    if let Some(pw) = url.password() {
        opts = opts.password(&decode(pw));
    }
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    Ok((opts, shown.to_string()))
}

/// One row mapped to a report, or why it could not be.
fn row_to_report(
    row: &MySqlRow,
    table: &str,
) -> Result<(u64, usize, Result<PanelReport, String>), sqlx::Error> {
    let id: u64 = row.try_get::<Option<u64>, _>("id")?.unwrap_or(0);
    let bytes = |name: &str| -> Result<Vec<u8>, sqlx::Error> {
        Ok(row.try_get::<Option<Vec<u8>>, _>(name)?.unwrap_or_default())
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let context = bytes("context")?;
    let bot_id = bytes("bot_id")?;
    let botnet = bytes("botnet")?;
    let path_source = bytes("path_source")?;
    let ipv4 = bytes("ipv4")?;
    let country = bytes("country")?;
    let report_type = row.try_get::<Option<u64>, _>("type")?.unwrap_or(0);
    let rtime = row.try_get::<Option<i64>, _>("rtime")?.unwrap_or(0);
    let size = context.len()
        + bot_id.len()
        + botnet.len()
        + path_source.len()
        + ipv4.len()
        + country.len();
    if context.len() > MAX_RECORD_BYTES {
        return Ok((
            id,
            size,
            Err(format!(
                "{table} row {id}: context exceeds the {MAX_RECORD_BYTES}-byte limit"
            )),
        ));
    }
    let Ok(report_type) = u32::try_from(report_type) else {
        return Ok((
            id,
            size,
            Err(format!(
                "{table} row {id}: report type {report_type} out of range"
            )),
        ));
    };
    Ok((
        id,
        size,
        Ok(PanelReport {
            id,
            bot_id: text(&bot_id),
            botnet: text(&botnet),
            report_type,
            path_source: text(&path_source),
            context: text(&context),
            ipv4: text(&ipv4),
            country: text(&country),
            rtime,
        }),
    ))
}

/// What one read of the panel database brought.
struct Fetched {
    bytes: u64,
    rows: u64,
    bad: Vec<(u64, String)>,
    records: Vec<AnalyzedRecord>,
    cursor: PanelCursor,
}

impl Monitor {
    pub(crate) async fn poll_panel_mysql(
        &self,
        source: &MonitorSource,
        lease: Option<&dropwatch_store::LeaseFence>,
    ) -> Result<PollOutcome, MonitorError> {
        let url = url::Url::parse(&source.connect_url())
            .map_err(|_| MonitorError::BadUrl(source.url.clone()))?;
        let (opts, shown) = connect_options(&url)?;
        if !self.config.allow_private && is_private_host(url.host()) {
            return Err(MonitorError::PrivateAddress(shown));
        }
        let cursor = PanelCursor::parse(source.cursor.as_deref())?;
        let timeout = self.config.request_timeout;
        let fetched = tokio::time::timeout(timeout, async {
            let mut conn = opts.connect().await.map_err(|e| PanelDbError::Connect {
                url: shown.clone(),
                source: e,
            })?;
            let res = self.read_panel(&mut conn, cursor.clone()).await;
            // Closing politely is best effort; the read's outcome is what counts.
            let _ = conn.close().await;
            res
        })
        .await
        .map_err(|_| PanelDbError::Timeout {
            url: shown.clone(),
            timeout,
        })??;
        let fetched_at = now_micros();
        for (id, message) in &fetched.bad {
            tracing::warn!(source = %shown, row = id, error = %message, "skipping a panel row");
        }
        if fetched.rows == 0 && fetched.cursor == cursor {
            self.store.note_poll(source.id, None).await?;
            return Ok(PollOutcome::default());
        }
        let out = PollOutcome {
            bytes: fetched.bytes,
            lines: fetched.rows,
            bad_lines: fetched.bad,
            ..PollOutcome::default()
        };
        Ok(self
            .ingest_records(
                Some(source),
                lease,
                fetched.cursor.to_text(),
                fetched.records,
                out,
                fetched_at,
            )
            .await?)
    }

    /// Discovers the day tables, finds those with rows past the cursor, and reads them.
    async fn read_panel(
        &self,
        conn: &mut MySqlConnection,
        mut cursor: PanelCursor,
    ) -> Result<Fetched, PanelDbError> {
        let limits = self.config.panel_db;
        let tables = discover(conn).await?;
        cursor.0.retain(|t, _| tables.iter().any(|x| &x.name == t));
        let max_ids = max_ids(conn, &tables).await?;
        let mut out = Fetched {
            bytes: 0,
            rows: 0,
            bad: Vec::new(),
            records: Vec::new(),
            cursor,
        };
        for table in &tables {
            let Some(&max) = max_ids.get(&table.name) else {
                continue;
            };
            let mut last = out.cursor.0.get(&table.name).copied().unwrap_or(0);
            if max < last {
                tracing::warn!(table = %table.name, last, max, "panel table shrank; reading it again from the start");
                last = 0;
                out.cursor.0.insert(table.name.clone(), 0);
            }
            if max <= last {
                continue;
            }
            let remaining = limits.max_rows.saturating_sub(out.rows);
            if remaining == 0 || out.bytes >= limits.max_bytes as u64 {
                break;
            }
            let select = match table.select_rows() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(table = %table.name, error = %e, "skipping a table");
                    continue;
                }
            };
            let mut rows = sqlx::query(&select.0)
                .bind(last)
                .bind(remaining)
                .fetch(&mut *conn);
            while let Some(row) = rows.try_next().await? {
                let (id, size, report) = row_to_report(&row, &table.name)?;
                out.rows += 1;
                out.bytes += size as u64;
                match report {
                    Ok(r) => out.records.push(self.analyzer.analyze(&r)),
                    Err(message) => out.bad.push((id, message)),
                }
                out.cursor.0.insert(table.name.clone(), id);
                if out.bytes >= limits.max_bytes as u64 {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// Lists the day tables of every known family with their columns, oldest first per family.
async fn discover(conn: &mut MySqlConnection) -> Result<Vec<Table>, PanelDbError> {
    let sql = Select::new(format!(
        "SELECT CAST(TABLE_NAME AS CHAR) AS t, CAST(COLUMN_NAME AS CHAR) AS c, \
         LOWER(CAST(DATA_TYPE AS CHAR)) AS d FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND ({}) ORDER BY TABLE_NAME, ORDINAL_POSITION LIMIT {}",
        LAYOUTS
            .iter()
            .map(|l| format!("TABLE_NAME LIKE '{}%'", l.prefix.replace('_', "\\_")))
            .collect::<Vec<_>>()
            .join(" OR "),
        MAX_TABLES * 64
    ))?;
    let rows = sqlx::query(&sql.0).fetch_all(&mut *conn).await?;
    let mut tables: BTreeMap<(PanelFamily, String), Table> = BTreeMap::new();
    for row in rows {
        let name: String = row.try_get("t")?;
        let Some(layout) = layout_of(&name) else {
            continue;
        };
        let col: String = row.try_get("c")?;
        let dt: String = row.try_get("d")?;
        tables
            .entry((layout.family, name.clone()))
            .or_insert_with(|| Table {
                name,
                layout,
                columns: HashMap::new(),
            })
            .columns
            .insert(col.to_ascii_lowercase(), dt);
    }
    let mut found = Vec::new();
    for ((_, name), table) in tables {
        let l = table.layout;
        if let Some(missing) = [l.id, l.bot_id, l.context]
            .into_iter()
            .find(|c| !table.has(c))
        {
            tracing::warn!(table = %name, column = missing, "panel table lacks a required column; skipped");
            continue;
        }
        found.push(table);
        if found.len() == MAX_TABLES {
            tracing::warn!(
                limit = MAX_TABLES,
                "too many panel tables; reading the oldest only"
            );
            break;
        }
    }
    Ok(found)
}

/// `MAX(id)` of every table, a chunk of tables per statement.
async fn max_ids(
    conn: &mut MySqlConnection,
    tables: &[Table],
) -> Result<HashMap<String, u64>, PanelDbError> {
    let mut out = HashMap::new();
    for chunk in tables.chunks(MAX_ID_CHUNK) {
        let parts = chunk
            .iter()
            .map(|t| {
                // Table names passed `layout_of`: prefix, `_` and digits only.
                Ok(format!(
                    "SELECT '{name}' AS t, CAST(COALESCE(MAX({id}), 0) AS UNSIGNED) AS m FROM {table}",
                    name = t.name,
                    id = ident(t.layout.id)?,
                    table = ident(&t.name)?
                ))
            })
            .collect::<Result<Vec<_>, PanelDbError>>()?;
        let sql = Select::new(parts.join(" UNION ALL "))?;
        for row in sqlx::query(&sql.0).fetch_all(&mut *conn).await? {
            let name: String = row.try_get("t")?;
            let max: u64 = row.try_get("m")?;
            out.insert(name, max);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_need_the_exact_suffix() {
        assert_eq!(
            table_family("botnet_reports_261126"),
            Some(PanelFamily::Zeus)
        );
        assert_eq!(table_family("rep2_20261126"), Some(PanelFamily::SpyEye));
        assert_eq!(table_family("logs_261126"), Some(PanelFamily::Tinba));
        for name in [
            "botnet_reports",
            "botnet_reports_",
            "botnet_reports_2611",
            "botnet_reports_26112x",
            "botnet_reports_2611260",
            "rep2_261126",
            "logs_261126; DROP TABLE x",
            "botnet_list",
        ] {
            assert_eq!(table_family(name), None, "{name}");
        }
    }

    #[test]
    fn cursor_round_trips_and_rejects_junk() {
        let mut c = PanelCursor::default();
        c.0.insert("botnet_reports_261126".into(), 42);
        c.0.insert("logs_261127".into(), 7);
        let text = c.to_text();
        assert_eq!(text, r#"{"botnet_reports_261126":42,"logs_261127":7}"#);
        assert_eq!(PanelCursor::parse(Some(&text)).unwrap(), c);
        assert_eq!(PanelCursor::parse(None).unwrap(), PanelCursor::default());
        assert!(matches!(
            PanelCursor::parse(Some("123")),
            Err(PanelDbError::BadCursor(_))
        ));
    }

    #[test]
    fn only_selects_with_plain_identifiers_are_built() {
        assert!(Select::new("SELECT 1".into()).is_ok());
        assert!(Select::new("DELETE FROM botnet_reports_261126".into()).is_err());
        assert!(Select::new("SELECT 1; DROP TABLE t".into()).is_err());
        assert!(ident("botnet_reports_261126").is_ok());
        assert!(ident("a`b").is_err());
        assert!(ident("").is_err());
        let table = Table {
            name: "botnet_reports_261126".into(),
            layout: layout_of("botnet_reports_261126").unwrap(),
            columns: ["id", "bot_id", "context", "rtime"]
                .into_iter()
                .map(|c| (c.to_string(), "int".to_string()))
                .collect(),
        };
        let sql = table.select_rows().unwrap().0;
        assert!(sql.starts_with("SELECT "), "{sql}");
        assert!(sql.contains("FROM `botnet_reports_261126` WHERE `id` > ? ORDER BY `id` LIMIT ?"));
        // Missing optional columns read as constants, present ones from the table.
        assert!(sql.contains("CAST('' AS BINARY) AS `country`"), "{sql}");
        assert!(sql.contains("CAST(`rtime` AS SIGNED) AS `rtime`"), "{sql}");
    }

    #[test]
    fn urls() {
        let u = url::Url::parse("mysql://root:pw@127.0.0.1:3307/panel").unwrap();
        let (opts, shown) = connect_options(&u).unwrap();
        assert_eq!(opts.get_port(), 3307);
        assert_eq!(opts.get_database(), Some("panel"));
        assert!(!shown.contains("pw"), "{shown}");
        for bad in [
            "mysql://root@127.0.0.1:3306/",
            "mysql://127.0.0.1/panel",
            "http://root@127.0.0.1/panel",
        ] {
            let u = url::Url::parse(bad).unwrap();
            assert!(
                matches!(connect_options(&u), Err(PanelDbError::BadUrl(_))),
                "{bad}"
            );
        }
        let u = url::Url::parse("mysql://root:secretpw@127.0.0.1/").unwrap();
        assert!(!connect_options(&u)
            .unwrap_err()
            .to_string()
            .contains("secretpw"));
    }
}
