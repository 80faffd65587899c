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
mod seal;
mod sharing;
pub use configs::{
    canonical_hash, canonical_json, ConfigEvent, ConfigInsert, ConfigRow, NewConfig,
    EVENT_TARGETS_ADDED,
};
pub use seal::{
    is_sealed, join_password, key_fingerprint, load_or_create_key_file, split_password, SealError,
    SealKey, SEALED_PREFIX,
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
    /// A secret sealed at rest could not be sealed or opened.
    #[error("{what}: {source}")]
    Seal {
        what: String,
        #[source]
        source: SealError,
    },
    /// This process brought a deployment key other than the one the database was first used
    /// with: hashes or seals made with it would match nothing already stored.
    #[error("the {purpose} key of this process (fingerprint {process}) is not the deployment's (the database was set up with {database}): use the deployment's key file")]
    KeyMismatch {
        purpose: String,
        database: String,
        process: String,
    },
    /// A deployment key file could not be read or created.
    #[error("key file {path}: {message}")]
    KeyFile { path: String, message: String },
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
    /// Seals the secrets the deployment must keep usable (webhook keys, drop passwords).
    seal: Option<SealKey>,
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
    /// The URL without any password: safe to show, log and put in alerts.
    pub url: String,
    /// The source's password, opened from its seal; only [`MonitorSource::connect_url`] uses it.
    #[serde(skip)]
    pub credential: Option<Credential>,
    pub cursor: Option<String>,
    pub state: String,
    pub last_polled_at: Option<Micros>,
    pub last_error: Option<String>,
}

impl MonitorSource {
    /// The URL to connect with: [`MonitorSource::url`] with the password put back. Never show it.
    pub fn connect_url(&self) -> String {
        match &self.credential {
            Some(c) => join_password(&self.url, c.expose()).unwrap_or_else(|| self.url.clone()),
            None => self.url.clone(),
        }
    }
}

/// A drop's or panel's password, in memory only while it is used; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    pub fn new(password: String) -> Credential {
        Credential(password)
    }

    /// The password as the URL carries it (percent-encoded).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<sealed>)")
    }
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
        let store = Store {
            pool,
            backend,
            seal: None,
        };
        store.migrate().await?;
        let filled = store.backfill_account_hashes().await?;
        if filled > 0 {
            tracing::info!(victims = filled, "account hashes filled in");
        }
        Ok(store)
    }

    /// Opens the embedded SQLite store in a data directory (`DIR/dropwatch.db`), with the
    /// deployment's seal key from the same directory (`DIR/secret-seal.key`, created on first
    /// use).
    pub async fn open_data_dir(dir: &Path) -> Result<Store> {
        let path = dir.join("dropwatch.db");
        let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display())).await?;
        let key = seal_key_file(dir)?;
        store.with_seal_key(key).await
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

    /// Gives the store the deployment's seal key: webhook keys and drop passwords are sealed
    /// with it on write and opened on read. The key's fingerprint is recorded on first use and
    /// checked on every later one ([`StoreError::KeyMismatch`] for another key), and secrets
    /// written in clear before sealing existed are sealed now.
    pub async fn with_seal_key(mut self, key: SealKey) -> Result<Store> {
        self.check_key("seal", key.fingerprint()).await?;
        self.seal = Some(key);
        let sealed = self.seal_clear_secrets().await?;
        if sealed > 0 {
            tracing::info!(secrets = sealed, "secrets kept in clear are sealed now");
        }
        Ok(self)
    }

    /// Checks a deployment key by its public fingerprint: the first process records it, every
    /// later one must bring the same key.
    pub async fn check_key(&self, purpose: &str, fingerprint: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO deployment_keys (purpose, fingerprint, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (purpose) DO NOTHING",
        )
        .bind(purpose)
        .bind(fingerprint)
        .bind(now_micros())
        .execute(&self.pool)
        .await?;
        let database: String =
            sqlx::query("SELECT fingerprint FROM deployment_keys WHERE purpose = $1")
                .bind(purpose)
                .fetch_one(&self.pool)
                .await?
                .try_get("fingerprint")?;
        if database != fingerprint {
            return Err(StoreError::KeyMismatch {
                purpose: purpose.to_string(),
                database,
                process: fingerprint.to_string(),
            });
        }
        Ok(())
    }

    fn seal_key(&self, what: impl FnOnce() -> String) -> Result<&SealKey> {
        self.seal.as_ref().ok_or_else(|| StoreError::Seal {
            what: what(),
            source: SealError::NoKey,
        })
    }

    /// Opens a stored secret; a clear value (written before sealing, or by a store without a
    /// key) comes back as it is.
    fn open_secret(&self, context: &str, stored: String) -> Result<String> {
        if !is_sealed(&stored) {
            return Ok(stored);
        }
        self.seal_key(|| context.to_string())?
            .open(context, &stored)
            .map_err(|source| StoreError::Seal {
                what: context.to_string(),
                source,
            })
    }

    pub(crate) fn open_webhook_secret(
        &self,
        institution_id: &str,
        stored: Option<String>,
    ) -> Result<Option<String>> {
        stored
            .map(|s| self.open_secret(&webhook_secret_context(institution_id), s))
            .transpose()
    }

    /// Seals webhook keys and moves drop passwords out of source URLs, for rows written in
    /// clear. Returns how many secrets it sealed.
    async fn seal_clear_secrets(&self) -> Result<u64> {
        let key = self.seal_key(|| "sealing secrets".to_string())?;
        let mut sealed = 0;
        let rows = sqlx::query(
            "SELECT id, webhook_secret FROM institutions WHERE webhook_secret IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let id: String = r.try_get("id")?;
            let secret: String = r.try_get("webhook_secret")?;
            if is_sealed(&secret) {
                continue;
            }
            let value = key.seal(&webhook_secret_context(&id), &secret);
            sqlx::query(
                "UPDATE institutions SET webhook_secret = $1 WHERE id = $2 AND webhook_secret = $3",
            )
            .bind(value)
            .bind(&id)
            .bind(&secret)
            .execute(&self.pool)
            .await?;
            sealed += 1;
        }
        // Newest first: of two rows that differ only in the password, the one added last (the
        // password the analyst gave last) keeps the plain URL.
        let rows = sqlx::query(
            "SELECT id, kind, url FROM monitor_sources WHERE url LIKE '%@%' ORDER BY id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let id: i64 = r.try_get("id")?;
            let kind: String = r.try_get("kind")?;
            let url: String = r.try_get("url")?;
            let (bare, Some(password)) = split_password(&url) else {
                continue;
            };
            // Two legacy rows may differ only in their password (it changed and the source was
            // added again): the second gets a fragment naming it, is paused, and keeps its
            // records; no row keeps a password in its URL.
            let mut target = bare.clone();
            for attempt in 0..2 {
                let credential = key.seal(&credential_context(&kind, &target), &password);
                let res = sqlx::query(
                    "UPDATE monitor_sources SET url = $1, credential = $2,
                       state = CASE WHEN $3 THEN 'paused' ELSE state END
                     WHERE id = $4 AND url = $5",
                )
                .bind(&target)
                .bind(credential)
                .bind(attempt > 0)
                .bind(id)
                .bind(&url)
                .execute(&self.pool)
                .await;
                match res {
                    Ok(_) => {
                        sealed += 1;
                        break;
                    }
                    Err(e) if attempt == 0 && is_unique_violation(&e) => {
                        tracing::warn!(source = id, "a source with the same URL without its password exists; this one is renamed with a #source fragment and paused");
                        target = match url::Url::parse(&bare) {
                            Ok(mut u) => {
                                u.set_fragment(Some(&format!("source-{id}")));
                                u.to_string()
                            }
                            Err(_) => format!("{bare}#source-{id}"),
                        };
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            // Alerts already written name the source in their payload: not with its password.
            let quoted = |u: &str| serde_json::to_string(u).unwrap_or_default();
            sqlx::query("UPDATE alerts SET payload = REPLACE(payload, $1, $2) WHERE payload LIKE $3 ESCAPE '\\'")
                .bind(quoted(&url))
                .bind(quoted(&target))
                .bind(format!("%{}%", like_escape(&quoted(&url))))
                .execute(&self.pool)
                .await?;
        }
        Ok(sealed)
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
        let sealed = self
            .seal_key(|| format!("webhook key of {institution_id}"))?
            .seal(&webhook_secret_context(institution_id), secret);
        let res = sqlx::query(
            "UPDATE institutions SET webhook_url = $1, webhook_secret = $2 WHERE id = $3",
        )
        .bind(url)
        .bind(sealed)
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
        let secret = self.open_webhook_secret(institution_id, row.try_get("webhook_secret")?)?;
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
        // Provenance grouped once by server (a scan per server was quadratic in the catalogue).
        let mut links: std::collections::HashMap<i64, Vec<String>> =
            std::collections::HashMap::new();
        for l in sqlx::query("SELECT server_id, source FROM server_sources ORDER BY source")
            .fetch_all(&self.pool)
            .await?
        {
            links
                .entry(l.try_get("server_id")?)
                .or_default()
                .push(l.try_get("source")?);
        }
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
                    sources: links.remove(&id).unwrap_or_default(),
                })
            })
            .collect()
    }

    // ---- monitor sources ----

    /// Registers a source to poll; idempotent on (kind, url). Returns its id.
    ///
    /// A password in the URL (`mysql://user:password@host/db`, `https://user:password@drop/`)
    /// is not stored in it: it is sealed into the source's credential, and the URL is kept and
    /// matched without it (a newer password replaces the older one).
    pub async fn add_monitor_source(
        &self,
        server_id: Option<i64>,
        kind: &str,
        url: &str,
    ) -> Result<i64> {
        let (bare, password) = split_password(url);
        let credential = match &password {
            Some(pw) => Some(
                self.seal_key(|| format!("password of monitor source {bare}"))?
                    .seal(&credential_context(kind, &bare), pw),
            ),
            None => None,
        };
        let row = sqlx::query(
            "INSERT INTO monitor_sources (server_id, kind, url, credential, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (kind, url) DO UPDATE SET server_id = COALESCE(monitor_sources.server_id, excluded.server_id),
               credential = COALESCE(excluded.credential, monitor_sources.credential) RETURNING id",
        )
        .bind(server_id)
        .bind(kind)
        .bind(&bare)
        .bind(credential)
        .bind(now_micros())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn list_monitor_sources(&self) -> Result<Vec<MonitorSource>> {
        let rows = sqlx::query("SELECT id, server_id, kind, url, credential, cursor, state, last_polled_at, last_error FROM monitor_sources ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| self.monitor_source_from_row(r))
            .collect()
    }

    /// One monitor source, by id.
    pub async fn monitor_source(&self, id: i64) -> Result<Option<MonitorSource>> {
        let row = sqlx::query("SELECT id, server_id, kind, url, credential, cursor, state, last_polled_at, last_error FROM monitor_sources WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|r| self.monitor_source_from_row(r))
            .transpose()
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
                    webhook_secret: self.open_webhook_secret(
                        &r.try_get::<String, _>("institution_id")?,
                        r.try_get("webhook_secret")?,
                    )?,
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

impl Store {
    /// A source row, its sealed password (if any) opened for the poller's use.
    fn monitor_source_from_row(&self, r: &AnyRow) -> Result<MonitorSource> {
        let kind: String = r.try_get("kind")?;
        let url: String = r.try_get("url")?;
        let id: i64 = r.try_get("id")?;
        let mut state: String = r.try_get("state")?;
        // A password that does not open (another key, an altered row) takes this source out of
        // polling, visibly, without stopping the others.
        let credential = match r.try_get::<Option<String>, _>("credential")? {
            Some(sealed) => match self.open_secret(&credential_context(&kind, &url), sealed) {
                Ok(pw) => Some(Credential(pw)),
                Err(e) => {
                    tracing::error!(source = id, error = %e, "the source's password does not open; not polled");
                    state = CREDENTIAL_UNOPENABLE.to_string();
                    None
                }
            },
            None => None,
        };
        Ok(MonitorSource {
            id,
            server_id: r.try_get("server_id")?,
            kind,
            url,
            credential,
            cursor: r.try_get("cursor")?,
            state,
            last_polled_at: r.try_get("last_polled_at")?,
            last_error: r.try_get("last_error")?,
        })
    }
}

/// The seal key of a data directory (`DIR/secret-seal.key`), created on first use.
pub fn seal_key_file(dir: &Path) -> Result<SealKey> {
    let path = dir.join(SEAL_KEY_FILE);
    load_or_create_key_file(&path)
        .map(SealKey::from_bytes)
        .map_err(|e| StoreError::KeyFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// The seal key's file name in a data directory.
pub const SEAL_KEY_FILE: &str = "secret-seal.key";

/// The state a source is shown in when its sealed password does not open.
pub const CREDENTIAL_UNOPENABLE: &str = "credential-unopenable";

/// What a webhook key is sealed for: its column and its institution.
fn webhook_secret_context(institution_id: &str) -> String {
    format!("institutions.webhook_secret:{institution_id}")
}

/// What a source's password is sealed for: its column, kind and URL (without the password).
fn credential_context(kind: &str, bare_url: &str) -> String {
    format!("monitor_sources.credential:{kind}:{bare_url}")
}

/// `text` as a literal inside a `LIKE` pattern whose escape character is the default `\`.
fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
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
