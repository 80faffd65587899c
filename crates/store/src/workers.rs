//! Workers and leases: many stateless `dropwatch worker` processes sharing one database.
//!
//! A worker registers (`workers`), heartbeats, and claims work for a lease time: monitor
//! sources that are due ([`Store::claim_sources`]) and pending alerts that are due
//! ([`Store::claim_alerts`]). A claim sets the owner, `lease_until = now + ttl` and
//! `lease_epoch = lease_epoch + 1` in one statement and returns the (owner, epoch) pair, a
//! [`LeaseFence`]. Every write made under a lease is fenced on that pair: the ingest of a polled
//! batch (`IngestBatch::lease`, checked by [`Store::ingest`] before anything is written), the
//! record of a delivery attempt ([`Store::record_attempt_fenced`]) and the releases. A worker
//! renews what it holds at every heartbeat ([`Store::heartbeat`]) and learns what it lost.
//!
//! **Invariant (leases):** a write made under a lease commits only while the row still has the
//! lease's owner and epoch. Expiry only makes a row claimable again; the claim bumps the epoch,
//! so a worker that stalled past its lease (or was presumed dead) cannot write under it any
//! more. Safety therefore does not depend on clocks; clocks (each worker passes its own `now`)
//! only decide when a dead worker's work is taken over.
//!
//! On PostgreSQL the claims lock candidate rows with `FOR UPDATE SKIP LOCKED`, so concurrent
//! claimers never wait on each other nor take the same row. SQLite has no `SKIP LOCKED`; there
//! the claim is one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`, atomic because SQLite
//! has one writer.

use std::collections::HashMap;

use dropwatch_model::Micros;
use serde::Serialize;
use sqlx::Row;

use crate::{Attempt, AttemptNext, Backend, DueAlert, LeaseFence, MonitorSource, Result, Store};

/// Who a worker is, as it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Unique among live workers; the owner name of its leases.
    pub id: String,
    pub host: String,
    pub pid: i64,
    /// `monitor`, `deliver`, `analyze`.
    pub roles: Vec<String>,
    /// The worker's lease time: it counts as alive while its heartbeat is newer than this.
    pub lease_ttl_us: i64,
}

/// A monitor source claimed for one poll, with the fence its ingest must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedSource {
    pub source: MonitorSource,
    pub lease: LeaseFence,
}

/// An alert claimed for one delivery attempt, with the fence its attempt must carry.
#[derive(Debug, Clone)]
pub struct ClaimedAlert {
    pub alert: DueAlert,
    pub lease: LeaseFence,
}

/// What a heartbeat renewed: (id, epoch) of every source and alert the worker still holds.
/// Anything the worker believes it holds and is not here was lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renewed {
    pub sources: Vec<(i64, i64)>,
    pub alerts: Vec<(i64, i64)>,
}

/// How many leases a release gave back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Released {
    pub sources: u64,
    pub alerts: u64,
}

/// One registered worker, as `dropwatch status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerStatus {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub roles: Vec<String>,
    pub lease_ttl_us: i64,
    pub started_at: Micros,
    pub heartbeat_at: Micros,
    pub stopped_at: Option<Micros>,
    /// Not stopped, and heartbeat within its lease time.
    pub alive: bool,
    /// Unexpired leases it holds.
    pub sources_held: i64,
    pub alerts_held: i64,
}

/// One monitor source's lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceLag {
    pub id: i64,
    pub kind: String,
    pub url: String,
    pub state: String,
    pub cursor: Option<String>,
    pub last_polled_at: Option<Micros>,
    /// now − last_polled_at (None: never polled).
    pub lag_us: Option<i64>,
    pub next_poll_at: Micros,
    /// The holder of an unexpired lease.
    pub lease_owner: Option<String>,
    pub last_error: Option<String>,
}

/// The whole deployment at a glance: workers, leases, queue depths, lag, delivery backlog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    pub now: Micros,
    pub workers: Vec<WorkerStatus>,
    pub workers_alive: usize,
    pub sources_active: i64,
    /// Active, due by their schedule, and not leased.
    pub sources_due: i64,
    pub sources_leased: i64,
    pub alerts_pending: i64,
    /// Pending and due now (includes leased ones being sent).
    pub alerts_due: i64,
    pub alerts_leased: i64,
    pub alerts_dead: i64,
    /// now − created_at of the oldest pending alert.
    pub oldest_pending_age_us: Option<i64>,
    pub sources: Vec<SourceLag>,
}

/// The hot queries of the lease protocol, by name, for `EXPLAIN`.
pub const HOT_QUERIES: [&str; 4] = [
    "claim_sources",
    "claim_alerts",
    "renew_sources",
    "renew_alerts",
];

const SOURCE_COLS: &str =
    "id, server_id, kind, url, credential, cursor, state, last_polled_at, last_error, lease_epoch";

fn claim_sources_sql(backend: Backend) -> String {
    // $1 now, $2 limit, $3 owner, $4 lease_until
    match backend {
        Backend::Postgres => format!(
            "WITH due AS (
               SELECT id FROM monitor_sources
               WHERE state = 'active' AND next_poll_at <= $1 AND (lease_owner IS NULL OR lease_until < $1)
               ORDER BY next_poll_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
             UPDATE monitor_sources m SET lease_owner = $3, lease_until = $4, lease_epoch = m.lease_epoch + 1
             FROM due WHERE m.id = due.id
             RETURNING {}",
            SOURCE_COLS
                .split(", ")
                .map(|c| format!("m.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Backend::Sqlite => format!(
            "UPDATE monitor_sources SET lease_owner = $3, lease_until = $4, lease_epoch = lease_epoch + 1
             WHERE id IN (
               SELECT id FROM monitor_sources
               WHERE state = 'active' AND next_poll_at <= $1 AND (lease_owner IS NULL OR lease_until < $1)
               ORDER BY next_poll_at, id LIMIT $2)
             RETURNING {SOURCE_COLS}"
        ),
    }
}

fn claim_alerts_sql(backend: Backend) -> &'static str {
    // $1 now, $2 limit, $3 owner, $4 lease_until
    match backend {
        Backend::Postgres => {
            "WITH due AS (
               SELECT a.id FROM alerts a JOIN institutions i ON i.id = a.institution_id
               WHERE a.status = 'pending' AND a.next_attempt_at <= $1
                 AND (a.lease_owner IS NULL OR a.lease_until < $1) AND i.webhook_url IS NOT NULL
               ORDER BY a.next_attempt_at, a.id LIMIT $2 FOR UPDATE OF a SKIP LOCKED)
             UPDATE alerts SET lease_owner = $3, lease_until = $4, lease_epoch = alerts.lease_epoch + 1
             FROM due WHERE alerts.id = due.id
             RETURNING alerts.id, alerts.institution_id, alerts.payload, alerts.idempotency_key,
               alerts.attempts, alerts.lease_epoch"
        }
        Backend::Sqlite => {
            "UPDATE alerts SET lease_owner = $3, lease_until = $4, lease_epoch = lease_epoch + 1
             WHERE id IN (
               SELECT a.id FROM alerts a JOIN institutions i ON i.id = a.institution_id
               WHERE a.status = 'pending' AND a.next_attempt_at <= $1
                 AND (a.lease_owner IS NULL OR a.lease_until < $1) AND i.webhook_url IS NOT NULL
               ORDER BY a.next_attempt_at, a.id LIMIT $2)
             RETURNING id, institution_id, payload, idempotency_key, attempts, lease_epoch"
        }
    }
}

const RENEW_SOURCES_SQL: &str =
    "UPDATE monitor_sources SET lease_until = $1 WHERE lease_owner = $2 RETURNING id, lease_epoch";
const RENEW_ALERTS_SQL: &str =
    "UPDATE alerts SET lease_until = $1 WHERE lease_owner = $2 RETURNING id, lease_epoch";

fn id_epochs(rows: &[sqlx::any::AnyRow]) -> Result<Vec<(i64, i64)>> {
    let mut v = rows
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("lease_epoch")?)))
        .collect::<Result<Vec<_>>>()?;
    v.sort_unstable();
    Ok(v)
}

impl Store {
    /// Registers a worker (or a new incarnation of one with the same id) and clears any lease
    /// a previous incarnation left. Returns false, changing nothing, when a live worker (not
    /// stopped, heartbeat within its lease time) already has this id.
    pub async fn register_worker(&self, w: &WorkerInfo, now: Micros) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO workers (id, host, pid, roles, lease_ttl_us, started_at, heartbeat_at, stopped_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6, NULL)
             ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, roles = excluded.roles,
               lease_ttl_us = excluded.lease_ttl_us, started_at = excluded.started_at,
               heartbeat_at = excluded.heartbeat_at, stopped_at = NULL
             WHERE workers.stopped_at IS NOT NULL OR workers.heartbeat_at < $6 - workers.lease_ttl_us
             RETURNING id",
        )
        .bind(&w.id)
        .bind(&w.host)
        .bind(w.pid)
        .bind(w.roles.join(","))
        .bind(w.lease_ttl_us)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_none() {
            tx.rollback().await?;
            return Ok(false);
        }
        for table in ["monitor_sources", "alerts"] {
            sqlx::query(&format!(
                "UPDATE {table} SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1"
            ))
            .bind(&w.id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Notes that a worker is alive and extends every lease it still holds to `now + ttl_us`.
    /// Returns what it still holds; what it believed it held and is missing was taken over.
    pub async fn heartbeat(&self, worker_id: &str, now: Micros, ttl_us: i64) -> Result<Renewed> {
        sqlx::query("UPDATE workers SET heartbeat_at = $1 WHERE id = $2")
            .bind(now)
            .bind(worker_id)
            .execute(&self.pool)
            .await?;
        let until = now.saturating_add(ttl_us);
        let sources = sqlx::query(RENEW_SOURCES_SQL)
            .bind(until)
            .bind(worker_id)
            .fetch_all(&self.pool)
            .await?;
        let alerts = sqlx::query(RENEW_ALERTS_SQL)
            .bind(until)
            .bind(worker_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(Renewed {
            sources: id_epochs(&sources)?,
            alerts: id_epochs(&alerts)?,
        })
    }

    /// Claims up to `limit` active monitor sources that are due (`next_poll_at <= now`) and
    /// not leased (or whose lease expired), for `ttl_us`. Each comes with the cursor as the
    /// last committed ingest left it and the fence its ingest must carry.
    pub async fn claim_sources(
        &self,
        owner: &str,
        now: Micros,
        ttl_us: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedSource>> {
        let rows = sqlx::query(&claim_sources_sql(self.backend))
            .bind(now)
            .bind(limit)
            .bind(owner)
            .bind(now.saturating_add(ttl_us))
            .fetch_all(&self.pool)
            .await?;
        let mut claimed = rows
            .iter()
            .map(|r| {
                Ok(ClaimedSource {
                    source: self.monitor_source_from_row(r)?,
                    lease: LeaseFence {
                        owner: owner.to_string(),
                        epoch: r.try_get("lease_epoch")?,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|c| c.source.id);
        Ok(claimed)
    }

    /// Gives a polled source back, due again at `next_poll_at`. False when the lease was lost
    /// (nothing changed).
    pub async fn release_source(
        &self,
        source_id: i64,
        lease: &LeaseFence,
        next_poll_at: Micros,
    ) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE monitor_sources SET lease_owner = NULL, lease_until = NULL, next_poll_at = $1
             WHERE id = $2 AND lease_owner = $3 AND lease_epoch = $4",
        )
        .bind(next_poll_at)
        .bind(source_id)
        .bind(lease.owner.as_str())
        .bind(lease.epoch)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Claims up to `limit` pending alerts that are due and not leased (or whose lease
    /// expired), for `ttl_us`, oldest first, with where they go.
    pub async fn claim_alerts(
        &self,
        owner: &str,
        now: Micros,
        ttl_us: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedAlert>> {
        let rows = sqlx::query(claim_alerts_sql(self.backend))
            .bind(now)
            .bind(limit)
            .bind(owner)
            .bind(now.saturating_add(ttl_us))
            .fetch_all(&self.pool)
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let hooks: HashMap<String, (Option<String>, Option<String>)> = sqlx::query(
            "SELECT id, webhook_url, webhook_secret FROM institutions WHERE webhook_url IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                (r.try_get("webhook_url")?, r.try_get("webhook_secret")?),
            ))
        })
        .collect::<Result<_>>()?;
        let mut claimed = rows
            .iter()
            .map(|r| {
                let institution_id: String = r.try_get("institution_id")?;
                let (webhook_url, stored_secret) =
                    hooks.get(&institution_id).cloned().unwrap_or_default();
                // A key that does not open leaves this alert undelivered (released, logged), not
                // the whole batch.
                let webhook_secret = self
                    .open_webhook_secret(&institution_id, stored_secret)
                    .unwrap_or_else(|e| {
                        tracing::error!(institution = %institution_id, error = %e, "webhook key does not open; alert not delivered");
                        None
                    });
                Ok(ClaimedAlert {
                    alert: DueAlert {
                        id: r.try_get("id")?,
                        institution_id,
                        payload: r.try_get("payload")?,
                        idempotency_key: r.try_get("idempotency_key")?,
                        attempts: r.try_get("attempts")?,
                        webhook_url,
                        webhook_secret,
                    },
                    lease: LeaseFence {
                        owner: owner.to_string(),
                        epoch: r.try_get("lease_epoch")?,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|c| c.alert.id);
        Ok(claimed)
    }

    /// [`Store::record_attempt`] under a lease: records the attempt and moves the alert on
    /// (delivered, retry later, dead) only if the alert is still pending and leased to
    /// `lease.owner` under `lease.epoch`, and gives the lease back. Returns false, writing
    /// nothing, when the lease was lost: another worker owns the alert's next attempt.
    pub async fn record_attempt_fenced(
        &self,
        alert_id: i64,
        lease: &LeaseFence,
        attempt: &Attempt,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE alerts SET attempts = attempts + 1, lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND status = 'pending'
             RETURNING attempts",
        )
        .bind(alert_id)
        .bind(lease.owner.as_str())
        .bind(lease.epoch)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
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
        match attempt.next {
            AttemptNext::Delivered => {
                sqlx::query(
                    "UPDATE alerts SET status = 'delivered', delivered_at = $1 WHERE id = $2",
                )
                .bind(attempt.at)
                .bind(alert_id)
                .execute(&mut *tx)
                .await?
            }
            AttemptNext::RetryAt(t) => {
                sqlx::query("UPDATE alerts SET next_attempt_at = $1 WHERE id = $2")
                    .bind(t)
                    .bind(alert_id)
                    .execute(&mut *tx)
                    .await?
            }
            AttemptNext::Dead => {
                sqlx::query("UPDATE alerts SET status = 'dead' WHERE id = $1")
                    .bind(alert_id)
                    .execute(&mut *tx)
                    .await?
            }
        };
        tx.commit().await?;
        Ok(true)
    }

    /// Gives a claimed alert back without an attempt (a worker stopping before it sent it).
    pub async fn release_alert(&self, alert_id: i64, lease: &LeaseFence) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE alerts SET lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3",
        )
        .bind(alert_id)
        .bind(lease.owner.as_str())
        .bind(lease.epoch)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Gives back every lease a worker holds (a clean stop). Sources stay due as they were.
    pub async fn release_worker_leases(&self, worker_id: &str) -> Result<Released> {
        let mut n = [0u64; 2];
        for (i, table) in ["monitor_sources", "alerts"].iter().enumerate() {
            n[i] = sqlx::query(&format!(
                "UPDATE {table} SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1"
            ))
            .bind(worker_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(Released {
            sources: n[0],
            alerts: n[1],
        })
    }

    /// Marks a worker cleanly stopped.
    pub async fn stop_worker(&self, worker_id: &str, now: Micros) -> Result<()> {
        sqlx::query("UPDATE workers SET stopped_at = $1, heartbeat_at = $1 WHERE id = $2")
            .bind(now)
            .bind(worker_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Workers, leases, queue depths, per-source lag and the delivery backlog at `now`.
    /// Workers stopped more than a day ago are left out.
    pub async fn cluster_status(&self, now: Micros) -> Result<ClusterStatus> {
        let held = |table: &str| {
            format!(
                "SELECT lease_owner, COUNT(*) AS n FROM {table}
                 WHERE lease_owner IS NOT NULL AND lease_until >= $1 GROUP BY lease_owner"
            )
        };
        let mut held_sources: HashMap<String, i64> = HashMap::new();
        let mut held_alerts: HashMap<String, i64> = HashMap::new();
        for (table, map) in [
            ("monitor_sources", &mut held_sources),
            ("alerts", &mut held_alerts),
        ] {
            for r in sqlx::query(&held(table))
                .bind(now)
                .fetch_all(&self.pool)
                .await?
            {
                map.insert(r.try_get("lease_owner")?, r.try_get("n")?);
            }
        }
        let workers = sqlx::query(
            "SELECT id, host, pid, roles, lease_ttl_us, started_at, heartbeat_at, stopped_at FROM workers
             WHERE stopped_at IS NULL OR stopped_at > $1 ORDER BY id",
        )
        .bind(now - 86_400_000_000)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let id: String = r.try_get("id")?;
            let ttl: i64 = r.try_get("lease_ttl_us")?;
            let heartbeat_at: Micros = r.try_get("heartbeat_at")?;
            let stopped_at: Option<Micros> = r.try_get("stopped_at")?;
            let roles: String = r.try_get("roles")?;
            Ok(WorkerStatus {
                sources_held: held_sources.get(&id).copied().unwrap_or(0),
                alerts_held: held_alerts.get(&id).copied().unwrap_or(0),
                host: r.try_get("host")?,
                pid: r.try_get("pid")?,
                roles: roles
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                lease_ttl_us: ttl,
                started_at: r.try_get("started_at")?,
                heartbeat_at,
                stopped_at,
                alive: stopped_at.is_none() && heartbeat_at >= now - ttl,
                id,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let q = sqlx::query(
            "SELECT
               (SELECT COUNT(*) FROM monitor_sources WHERE state = 'active') AS sources_active,
               (SELECT COUNT(*) FROM monitor_sources WHERE state = 'active' AND next_poll_at <= $1
                  AND (lease_owner IS NULL OR lease_until < $1)) AS sources_due,
               (SELECT COUNT(*) FROM monitor_sources WHERE lease_owner IS NOT NULL AND lease_until >= $1) AS sources_leased,
               (SELECT COUNT(*) FROM alerts WHERE status = 'pending') AS alerts_pending,
               (SELECT COUNT(*) FROM alerts WHERE status = 'pending' AND next_attempt_at <= $1) AS alerts_due,
               (SELECT COUNT(*) FROM alerts WHERE lease_owner IS NOT NULL AND lease_until >= $1) AS alerts_leased,
               (SELECT COUNT(*) FROM alerts WHERE status = 'dead') AS alerts_dead,
               (SELECT MIN(created_at) FROM alerts WHERE status = 'pending') AS oldest_pending",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let oldest: Option<i64> = q.try_get("oldest_pending")?;
        let sources = sqlx::query(
            "SELECT id, kind, url, state, cursor, last_polled_at, next_poll_at, lease_owner, lease_until, last_error
             FROM monitor_sources ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let last: Option<Micros> = r.try_get("last_polled_at")?;
            let owner: Option<String> = r.try_get("lease_owner")?;
            let until: Option<Micros> = r.try_get("lease_until")?;
            Ok(SourceLag {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                url: r.try_get("url")?,
                state: r.try_get("state")?,
                cursor: r.try_get("cursor")?,
                last_polled_at: last,
                lag_us: last.map(|t| (now - t).max(0)),
                next_poll_at: r.try_get("next_poll_at")?,
                lease_owner: owner.filter(|_| until.is_some_and(|u| u >= now)),
                last_error: r.try_get("last_error")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(ClusterStatus {
            now,
            workers_alive: workers.iter().filter(|w| w.alive).count(),
            workers,
            sources_active: q.try_get("sources_active")?,
            sources_due: q.try_get("sources_due")?,
            sources_leased: q.try_get("sources_leased")?,
            alerts_pending: q.try_get("alerts_pending")?,
            alerts_due: q.try_get("alerts_due")?,
            alerts_leased: q.try_get("alerts_leased")?,
            alerts_dead: q.try_get("alerts_dead")?,
            oldest_pending_age_us: oldest.map(|t| (now - t).max(0)),
            sources,
        })
    }

    /// The plans of the lease protocol's hot queries ([`HOT_QUERIES`]), as the database would
    /// run them now: `EXPLAIN` on PostgreSQL, `EXPLAIN QUERY PLAN` on SQLite. Nothing is
    /// executed.
    pub async fn explain_hot_queries(&self) -> Result<Vec<(&'static str, String)>> {
        let now = crate::now_micros();
        let mut out = Vec::new();
        for name in HOT_QUERIES {
            let sql = match name {
                "claim_sources" => claim_sources_sql(self.backend),
                "claim_alerts" => claim_alerts_sql(self.backend).to_string(),
                "renew_sources" => RENEW_SOURCES_SQL.to_string(),
                _ => RENEW_ALERTS_SQL.to_string(),
            };
            let prefix = match self.backend {
                Backend::Postgres => "EXPLAIN ",
                Backend::Sqlite => "EXPLAIN QUERY PLAN ",
            };
            let stmt = format!("{prefix}{sql}");
            let mut query = sqlx::query(&stmt);
            if name.starts_with("claim") {
                query = query.bind(now).bind(16_i64).bind("explain").bind(now + 1);
            } else {
                query = query.bind(now).bind("explain");
            }
            let rows = query.fetch_all(&self.pool).await?;
            let plan = rows
                .iter()
                .map(|r| match self.backend {
                    Backend::Postgres => r.try_get::<String, _>(0),
                    Backend::Sqlite => r.try_get::<String, _>("detail"),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?
                .join("\n");
            out.push((name, plan));
        }
        Ok(out)
    }
}
