//! The store: every table dropwatch keeps, behind one API, on SQLite or PostgreSQL.
//!
//! **Architecture Invariant:** this is the only crate that speaks SQL. The same API and the
//! same queries serve both backends through sqlx's `Any` driver; each backend has its own
//! versioned migrations (`migrations/sqlite`, `migrations/postgres`) because the dialects
//! differ in DDL, not in the queries dropwatch runs.
//!
//! **Architecture Invariant:** ingestion is one transaction: records, victims, alerts (the
//! outbox) and the source's cursor commit together, so a crash neither loses nor repeats work.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use dropwatch_model::{
    AnalyzedRecord, Inject, Institution, Micros, SecretKind, ServerRole, Urgency,
};
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

mod api;
pub use api::*;
mod configs;
mod ingest;
mod intel;
pub use ingest::MAX_PARAMS;
pub use intel::*;
pub mod delivery_ops;
pub mod monitor_ops;
mod sharing;
pub use configs::{
    canonical_hash, canonical_json, ConfigEvent, ConfigInsert, ConfigRow, NewConfig,
    EVENT_TARGETS_ADDED,
};
pub use sharing::*;
mod workers;
pub use workers::*;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("corrupt row in {table}: {message}")]
    Corrupt {
        table: &'static str,
        message: String,
    },
    #[error("unknown institution {0:?}")]
    UnknownInstitution(String),
    /// The source's lease moved to another worker (or another claim) before this batch
    /// committed: nothing was written.
    #[error("lease on monitor source {source_id} lost: another worker holds it now")]
    LeaseLost { source_id: i64 },
    /// A batch kept losing races with other writers.
    #[error("ingest gave up after {attempts} attempts: {reason}")]
    Contended {
        attempts: usize,
        reason: &'static str,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> Micros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as Micros)
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerRow {
    pub id: i64,
    pub url: String,
    pub host: String,
    pub role: ServerRole,
    pub first_seen: Micros,
    pub last_seen: Micros,
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorSource {
    pub id: i64,
    pub server_id: Option<i64>,
    pub kind: String,
    pub url: String,
    pub cursor: Option<String>,
    pub state: String,
    pub last_polled_at: Option<Micros>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VictimRow {
    pub id: i64,
    pub institution_id: String,
    pub account: String,
    pub account_norm: String,
    pub exposed: Vec<SecretKind>,
    pub urgency: Urgency,
    pub first_seen: Micros,
    pub last_seen: Micros,
    pub n_records: i64,
}

/// A batch of analysed records from one poll of one source, with the cursor that follows it.
#[derive(Debug, Clone, Default)]
pub struct IngestBatch {
    pub source_id: Option<i64>,
    /// The source's cursor after this batch; stored in the same transaction.
    pub cursor: Option<String>,
    pub fetched_at: Micros,
    /// URL of the server the records came from, for the alert payload.
    pub source_server: Option<String>,
    pub records: Vec<AnalyzedRecord>,
    /// The lease this batch was polled under; the batch commits only while it still holds.
    pub lease: Option<LeaseFence>,
    /// What the source served that was not a record, counted with the batch (same transaction).
    pub bad_records: BadRecords,
}

/// The bad records of one batch: how many, where the last one was. Only counts and positions:
/// a bad record's text is attacker input that may hold a victim's secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BadRecords {
    pub count: u64,
    pub last_position: Option<u64>,
    /// A snapshot source (read whole every poll) replaces its count instead of adding to it,
    /// so that re-reading the same bad element is not counted again.
    pub replace: bool,
}

/// A fencing token: the owner and epoch under which a worker claimed a monitor source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFence {
    pub owner: String,
    pub epoch: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    pub new_records: u64,
    pub duplicate_records: u64,
    /// Records whose institution or account could not be told.
    pub unattributed: u64,
    pub new_victims: u64,
    pub alerts: u64,
}

/// An alert due for delivery, with where it goes.
#[derive(Debug, Clone)]
pub struct DueAlert {
    pub id: i64,
    pub institution_id: String,
    pub payload: String,
    pub idempotency_key: String,
    pub attempts: i64,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
}

/// What one delivery attempt did.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: Micros,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub duration_us: i64,
    /// `Delivered`, or the time of the next try, or dead.
    pub next: AttemptNext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptNext {
    Delivered,
    RetryAt(Micros),
    Dead,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub institutions: i64,
    pub injects: i64,
    pub servers: i64,
    pub monitor_sources: i64,
    pub records: i64,
    pub victims: i64,
    pub alerts: i64,
    pub alerts_delivered: i64,
    pub alerts_pending: i64,
    pub alerts_dead: i64,
    pub delivery_attempts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub at: Micros,
    pub actor: String,
    pub action: String,
    pub subject: String,
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

fn json_list(text: &str, table: &'static str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        table,
        message: e.to_string(),
    })
}

fn kinds_to_text(kinds: &[SecretKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn kinds_from_text(text: &str) -> Vec<SecretKind> {
    text.split(',').filter_map(SecretKind::parse).collect()
}

impl Store {
    /// Opens (creating if needed) the store at a URL: `sqlite://PATH` or `postgres://...`,
    /// and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let pool = match backend {
            // SQLite has one writer: a single connection means transactions never fight over
            // the lock, and the busy timeout covers other processes on the same file.
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => AnyPoolOptions::new().max_connections(8).connect(url).await?,
        };
        let store = Store { pool, backend };
        store.migrate().await?;
        let filled = store.backfill_account_hashes().await?;
        if filled > 0 {
            tracing::info!(victims = filled, "account hashes filled in");
        }
        Ok(store)
    }

    /// Opens the embedded SQLite store in a data directory (`DIR/dropwatch.db`).
    pub async fn open_data_dir(dir: &Path) -> Result<Store> {
        let path = dir.join("dropwatch.db");
        Store::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- institutions ----

    /// Adds an institution, or updates its name, country, domains, masks and field rules.
    pub async fn upsert_institution(&self, inst: &Institution) -> Result<()> {
        sqlx::query(
            "INSERT INTO institutions (id, name, country, domains, url_masks, account_fields, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, country = excluded.country,
               domains = excluded.domains, url_masks = excluded.url_masks, account_fields = excluded.account_fields",
        )
        .bind(&inst.id)
        .bind(&inst.name)
        .bind(&inst.country)
        .bind(json(&inst.domains))
        .bind(json(&inst.url_masks))
        .bind(json(&inst.account_fields))
        .bind(now_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_institutions(&self) -> Result<Vec<Institution>> {
        let rows = sqlx::query("SELECT id, name, country, domains, url_masks, account_fields FROM institutions ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Institution {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    country: r.try_get("country")?,
                    domains: json_list(&r.try_get::<String, _>("domains")?, "institutions")?,
                    url_masks: json_list(&r.try_get::<String, _>("url_masks")?, "institutions")?,
                    account_fields: json_list(
                        &r.try_get::<String, _>("account_fields")?,
                        "institutions",
                    )?,
                })
            })
            .collect()
    }

    /// Sets where an institution's alerts are delivered and the key they are signed with.
    pub async fn set_webhook(&self, institution_id: &str, url: &str, secret: &str) -> Result<()> {
        let res = sqlx::query(
            "UPDATE institutions SET webhook_url = $1, webhook_secret = $2 WHERE id = $3",
        )
        .bind(url)
        .bind(secret)
        .bind(institution_id)
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::UnknownInstitution(institution_id.to_string()));
        }
        Ok(())
    }

    /// Where an institution's alerts go and the secret they are signed with, if set.
    pub async fn webhook(&self, institution_id: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT webhook_url, webhook_secret FROM institutions WHERE id = $1")
            .bind(institution_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::UnknownInstitution(institution_id.to_string()));
        };
        let url: Option<String> = row.try_get("webhook_url")?;
        let secret: Option<String> = row.try_get("webhook_secret")?;
        Ok(url.zip(secret))
    }

    // ---- samples and injects ----

    /// Records an input file (sample, config, inject file) by its SHA-256; returns its id.
    pub async fn upsert_sample(&self, sha256: &str, kind: &str, name: Option<&str>) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO samples (sha256, kind, name, first_seen) VALUES ($1, $2, $3, $4)
             ON CONFLICT (sha256) DO UPDATE SET kind = excluded.kind RETURNING id",
        )
        .bind(sha256)
        .bind(kind)
        .bind(name)
        .bind(now_micros())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Stores the injects of one sample, each with the institution it targets; idempotent.
    pub async fn insert_injects(
        &self,
        sample_id: i64,
        injects: &[(Inject, Option<String>)],
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for (idx, (inject, institution)) in injects.iter().enumerate() {
            let blocks: Vec<[String; 3]> = inject
                .blocks
                .iter()
                .map(|b| {
                    [b.before.clone(), b.inject.clone(), b.after.clone()]
                        .map(|v| String::from_utf8_lossy(&v).into_owned())
                })
                .collect();
            let res = sqlx::query(
                "INSERT INTO injects (sample_id, idx, url_mask, flags, institution_id, blocks) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (sample_id, idx) DO NOTHING",
            )
            .bind(sample_id)
            .bind(idx as i64)
            .bind(&inject.url_mask)
            .bind(&inject.flags)
            .bind(institution.as_deref())
            .bind(json(&blocks))
            .execute(&mut *tx)
            .await?;
            n += res.rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    // ---- servers ----

    /// Adds a server (or refreshes its last-seen time) and links it to where it was found.
    pub async fn upsert_server(
        &self,
        url: &str,
        host: &str,
        role: ServerRole,
        source: &str,
    ) -> Result<i64> {
        let now = now_micros();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO servers (url, host, role, first_seen, last_seen) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (url, role) DO UPDATE SET last_seen = excluded.last_seen RETURNING id",
        )
        .bind(url)
        .bind(host)
        .bind(role.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        sqlx::query(
            "INSERT INTO server_sources (server_id, source, seen_at) VALUES ($1, $2, $3)
             ON CONFLICT (server_id, source) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(id)
        .bind(source)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn list_servers(&self) -> Result<Vec<ServerRow>> {
        let rows = sqlx::query(
            "SELECT id, url, host, role, first_seen, last_seen FROM servers ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let links = sqlx::query("SELECT server_id, source FROM server_sources ORDER BY source")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                let role: String = r.try_get("role")?;
                Ok(ServerRow {
                    id,
                    url: r.try_get("url")?,
                    host: r.try_get("host")?,
                    role: ServerRole::parse(&role).ok_or(StoreError::Corrupt {
                        table: "servers",
                        message: format!("role {role:?}"),
                    })?,
                    first_seen: r.try_get("first_seen")?,
                    last_seen: r.try_get("last_seen")?,
                    sources: links
                        .iter()
                        .filter(|l| l.try_get::<i64, _>("server_id").ok() == Some(id))
                        .filter_map(|l| l.try_get("source").ok())
                        .collect(),
                })
            })
            .collect()
    }

    // ---- monitor sources ----

    /// Registers a source to poll; idempotent on (kind, url). Returns its id.
    pub async fn add_monitor_source(
        &self,
        server_id: Option<i64>,
        kind: &str,
        url: &str,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO monitor_sources (server_id, kind, url, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kind, url) DO UPDATE SET server_id = COALESCE(monitor_sources.server_id, excluded.server_id) RETURNING id",
        )
        .bind(server_id)
        .bind(kind)
        .bind(url)
        .bind(now_micros())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn list_monitor_sources(&self) -> Result<Vec<MonitorSource>> {
        let rows = sqlx::query("SELECT id, server_id, kind, url, cursor, state, last_polled_at, last_error FROM monitor_sources ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(monitor_source_from_row).collect()
    }

    /// One monitor source, by id.
    pub async fn monitor_source(&self, id: i64) -> Result<Option<MonitorSource>> {
        let row = sqlx::query("SELECT id, server_id, kind, url, cursor, state, last_polled_at, last_error FROM monitor_sources WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(monitor_source_from_row).transpose()
    }

    pub async fn set_monitor_state(&self, id: i64, state: &str) -> Result<bool> {
        let res = sqlx::query("UPDATE monitor_sources SET state = $1 WHERE id = $2")
            .bind(state)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Notes a poll that brought nothing new, or failed.
    pub async fn note_poll(&self, id: i64, error: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE monitor_sources SET last_polled_at = $1, last_error = $2 WHERE id = $3",
        )
        .bind(now_micros())
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- delivery ----

    /// Pending alerts whose next attempt is due, oldest first.
    pub async fn due_alerts(&self, now: Micros, limit: i64) -> Result<Vec<DueAlert>> {
        let rows = sqlx::query(
            "SELECT a.id, a.institution_id, a.payload, a.idempotency_key, a.attempts, i.webhook_url, i.webhook_secret
             FROM alerts a JOIN institutions i ON i.id = a.institution_id
             WHERE a.status = 'pending' AND a.next_attempt_at <= $1 AND i.webhook_url IS NOT NULL ORDER BY a.next_attempt_at, a.id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueAlert {
                    id: r.try_get("id")?,
                    institution_id: r.try_get("institution_id")?,
                    payload: r.try_get("payload")?,
                    idempotency_key: r.try_get("idempotency_key")?,
                    attempts: r.try_get("attempts")?,
                    webhook_url: r.try_get("webhook_url")?,
                    webhook_secret: r.try_get("webhook_secret")?,
                })
            })
            .collect()
    }

    /// Records one delivery attempt and moves the alert on (delivered, retry later, or dead).
    pub async fn record_attempt(&self, alert_id: i64, attempt: &Attempt) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE alerts SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
        )
        .bind(alert_id)
        .fetch_one(&mut *tx)
        .await?;
        let n: i64 = row.try_get("attempts")?;
        sqlx::query("INSERT INTO deliveries (alert_id, attempt, at, http_status, error, duration_us) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(alert_id)
            .bind(n)
            .bind(attempt.at)
            .bind(attempt.http_status.map(i64::from))
            .bind(attempt.error.as_deref())
            .bind(attempt.duration_us)
            .execute(&mut *tx)
            .await?;
        let q = match attempt.next {
            AttemptNext::Delivered => sqlx::query(
                "UPDATE alerts SET status = 'delivered', delivered_at = $1 WHERE id = $2",
            )
            .bind(attempt.at),
            AttemptNext::RetryAt(t) => {
                sqlx::query("UPDATE alerts SET next_attempt_at = $1 WHERE id = $2").bind(t)
            }
            AttemptNext::Dead => {
                sqlx::query("UPDATE alerts SET status = 'dead' WHERE id = $1 AND $2 = $2")
                    .bind(alert_id)
            }
        };
        q.bind(alert_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Record-fetched → alert-delivered times of every delivered alert, in microseconds.
    pub async fn delivery_latencies(&self) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT delivered_at - record_fetched_at AS lat FROM alerts WHERE status = 'delivered' ORDER BY lat")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<i64, _>("lat")?))
            .collect()
    }

    // ---- victims (audited) ----

    /// Lists victims, optionally of one institution. Every call is written to the audit log.
    pub async fn list_victims(
        &self,
        actor: &str,
        institution_id: Option<&str>,
    ) -> Result<Vec<VictimRow>> {
        let rows = sqlx::query(
            "SELECT id, institution_id, account, account_norm, exposed, urgency, first_seen, last_seen, n_records
             FROM victims WHERE ($1 IS NULL OR institution_id = $1) ORDER BY institution_id, account_norm",
        )
        .bind(institution_id)
        .fetch_all(&self.pool)
        .await?;
        let victims = rows
            .iter()
            .map(victim_from_row)
            .collect::<Result<Vec<_>>>()?;
        self.audit(
            actor,
            "read_victims",
            &format!(
                "institution={} count={}",
                institution_id.unwrap_or("*"),
                victims.len()
            ),
        )
        .await?;
        Ok(victims)
    }

    pub async fn audit(&self, actor: &str, action: &str, subject: &str) -> Result<()> {
        sqlx::query("INSERT INTO audit_log (at, actor, action, subject) VALUES ($1, $2, $3, $4)")
            .bind(now_micros())
            .bind(actor)
            .bind(action)
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn list_audit(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, actor, action, subject FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    subject: r.try_get("subject")?,
                })
            })
            .collect()
    }

    pub async fn stats(&self) -> Result<Stats> {
        let row = sqlx::query(
            "SELECT
               (SELECT COUNT(*) FROM institutions) AS institutions,
               (SELECT COUNT(*) FROM injects) AS injects,
               (SELECT COUNT(*) FROM servers) AS servers,
               (SELECT COUNT(*) FROM monitor_sources) AS monitor_sources,
               (SELECT COUNT(*) FROM records) AS records,
               (SELECT COUNT(*) FROM victims) AS victims,
               (SELECT COUNT(*) FROM alerts) AS alerts,
               (SELECT COUNT(*) FROM alerts WHERE status = 'delivered') AS alerts_delivered,
               (SELECT COUNT(*) FROM alerts WHERE status = 'pending') AS alerts_pending,
               (SELECT COUNT(*) FROM alerts WHERE status = 'dead') AS alerts_dead,
               (SELECT COUNT(*) FROM deliveries) AS delivery_attempts",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Stats {
            institutions: row.try_get("institutions")?,
            injects: row.try_get("injects")?,
            servers: row.try_get("servers")?,
            monitor_sources: row.try_get("monitor_sources")?,
            records: row.try_get("records")?,
            victims: row.try_get("victims")?,
            alerts: row.try_get("alerts")?,
            alerts_delivered: row.try_get("alerts_delivered")?,
            alerts_pending: row.try_get("alerts_pending")?,
            alerts_dead: row.try_get("alerts_dead")?,
            delivery_attempts: row.try_get("delivery_attempts")?,
        })
    }
}

fn monitor_source_from_row(r: &AnyRow) -> Result<MonitorSource> {
    Ok(MonitorSource {
        id: r.try_get("id")?,
        server_id: r.try_get("server_id")?,
        kind: r.try_get("kind")?,
        url: r.try_get("url")?,
        cursor: r.try_get("cursor")?,
        state: r.try_get("state")?,
        last_polled_at: r.try_get("last_polled_at")?,
        last_error: r.try_get("last_error")?,
    })
}

fn victim_from_row(r: &AnyRow) -> Result<VictimRow> {
    let urgency: String = r.try_get("urgency")?;
    Ok(VictimRow {
        id: r.try_get("id")?,
        institution_id: r.try_get("institution_id")?,
        account: r.try_get("account")?,
        account_norm: r.try_get("account_norm")?,
        exposed: kinds_from_text(&r.try_get::<String, _>("exposed")?),
        urgency: Urgency::parse(&urgency).ok_or(StoreError::Corrupt {
            table: "victims",
            message: format!("urgency {urgency:?}"),
        })?,
        first_seen: r.try_get("first_seen")?,
        last_seen: r.try_get("last_seen")?,
        n_records: r.try_get("n_records")?,
    })
}
