//! Ingestion: a batch of analysed records becomes records, victims, alerts (the outbox) and the
//! source's new cursor, in one transaction and in a fixed number of statements per batch.
//!
//! A batch costs about seven statements whatever its size: the fenced cursor update (with the
//! batch's bad-record count), one
//! multi-row insert of the records (`ON CONFLICT (fingerprint) DO NOTHING RETURNING`), one
//! multi-row upsert that claims every victim concerned, one multi-row update of their state,
//! the victim–record links, the institutions' names, the alerts and their payloads. Rows are
//! chunked so that no statement exceeds [`MAX_PARAMS`] bind parameters (SQLite's limit is
//! 32,766, PostgreSQL's 65,535). SQLite gets `?` placeholders, PostgreSQL `$n` (see [`ph`]).
//!
//! Concurrency (PostgreSQL, many workers): the cursor update comes first, so two ingests of the
//! same source serialise on its row and the fence check fails fast for a worker that lost its
//! lease. Records are inserted in fingerprint order and victims claimed in (institution,
//! account) order, by an upsert that inserts a placeholder for a new victim and locks a known
//! one in the same pass; every batch takes its locks in one global order, so batches sharing
//! victims wait for each other instead of deadlocking. Should PostgreSQL still report a deadlock
//! or a serialisation failure, the batch is rolled back and run again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use dropwatch_model::{AlertPayload, AlertReason, AnalyzedRecord, SecretKind, Urgency};
use sha2::{Digest, Sha256};
use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, Row, Transaction};

use crate::{
    account_hash, json, kinds_from_text, kinds_to_text, now_micros, Backend, IngestBatch,
    IngestOutcome, Result, Store, StoreError,
};

/// Most bind parameters one statement may carry.
pub const MAX_PARAMS: usize = 16_000;

/// How often a batch is retried after losing a race on a new victim, a deadlock or a
/// serialisation failure.
const MAX_ATTEMPTS: usize = 5;

/// One victim as this batch sees it: loaded from the store, or created by this batch.
#[derive(Clone)]
struct VictimState {
    id: Option<i64>,
    exposed: Vec<SecretKind>,
    first_seen: i64,
    new_records: i64,
}

type Key = (String, String);

/// Replays a batch's attributed records, in order, over the victims known before it: each
/// victim's state after the batch, and what each record did (new victim, new exposure, or
/// nothing). Pure: run again when the known victims change.
fn replay(
    batch: &IngestBatch,
    attributed: &[(usize, Key)],
    known: &BTreeMap<Key, VictimState>,
    now: i64,
) -> (BTreeMap<Key, VictimState>, Vec<Effect>) {
    let mut victims: BTreeMap<Key, VictimState> = BTreeMap::new();
    let mut effects: Vec<Effect> = Vec::with_capacity(attributed.len());
    for (i, key) in attributed {
        let rec = &batch.records[*i];
        let rec_exposed = rec.exposed();
        if !victims.contains_key(key) {
            if let Some(v) = known.get(key) {
                victims.insert(key.clone(), v.clone());
            }
        }
        let (reason, exposed, first_seen) = match victims.get_mut(key) {
            None => {
                victims.insert(
                    key.clone(),
                    VictimState {
                        id: None,
                        exposed: rec_exposed.clone(),
                        first_seen: now,
                        new_records: 1,
                    },
                );
                (Some(AlertReason::NewVictim), rec_exposed, now)
            }
            Some(v) => {
                let before = v.exposed.len();
                v.exposed.extend(rec_exposed.iter().copied());
                v.exposed.sort();
                v.exposed.dedup();
                v.new_records += 1;
                let reason = (v.exposed.len() > before).then_some(AlertReason::NewExposure);
                (reason, v.exposed.clone(), v.first_seen)
            }
        };
        effects.push(Effect {
            record: *i,
            key: key.clone(),
            reason,
            exposed,
            first_seen,
        });
    }
    (victims, effects)
}

/// What one attributed record did to its victim.
struct Effect {
    record: usize,
    key: (String, String),
    reason: Option<AlertReason>,
    exposed: Vec<SecretKind>,
    first_seen: i64,
}

/// The `n`th bind parameter (1-based). SQLite gets anonymous `?`s: it resolves a numbered
/// parameter by walking the list of names, so a statement with thousands of `$n`s costs time
/// quadratic in their number (measured: a quarter of all ingest time at 16k parameters).
/// PostgreSQL only knows `$n`. Either way parameters are bound in order of appearance.
fn ph(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_string(),
        Backend::Postgres => format!("${n}"),
    }
}

/// `count` parameters separated by commas, numbered from `start`.
fn param_list(backend: Backend, count: usize, start: usize) -> String {
    (start..start + count)
        .map(|n| ph(backend, n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(…), (…)`: `rows` rows of `width` parameters numbered from `start`, each row ending with
/// the literal SQL `tail` (constant columns).
fn values_clause(backend: Backend, rows: usize, width: usize, start: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(rows * (width * 5 + tail.len() + 4));
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&param_list(backend, width, start + r * width));
        sql.push_str(tail);
        sql.push(')');
    }
    sql
}

fn rows_per_statement(width: usize) -> usize {
    (MAX_PARAMS / width).max(1)
}

fn arg<'q, T>(args: &mut AnyArguments<'q>, value: T) -> Result<()>
where
    T: 'q + sqlx::Encode<'q, Any> + sqlx::Type<Any>,
{
    args.add(value)
        .map_err(|e| StoreError::Db(sqlx::Error::Encode(e)))
}

/// PostgreSQL SQLSTATEs after which a transaction may simply be run again.
fn is_retryable(err: &StoreError) -> bool {
    match err {
        StoreError::Db(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01") | Some("40001"))
        }
        _ => false,
    }
}

fn alert_key(fingerprint: &str, reason: AlertReason) -> String {
    let mut h = Sha256::new();
    h.update(b"dropwatch-alert\0");
    h.update(fingerprint.as_bytes());
    h.update(reason.as_str().as_bytes());
    dropwatch_model::to_hex(&h.finalize()[..16])
}

impl Store {
    /// Stores a batch of analysed records, updates victims, writes alerts to the outbox and
    /// moves the source's cursor, all in one transaction.
    ///
    /// With `batch.lease` set, the batch commits only if the source is still leased to that
    /// owner under that epoch; otherwise nothing is written and [`StoreError::LeaseLost`] is
    /// returned.
    pub async fn ingest(&self, batch: &IngestBatch) -> Result<IngestOutcome> {
        let mut last = "";
        for _ in 0..MAX_ATTEMPTS {
            let mut tx = self.pool.begin().await?;
            match self.ingest_once(&mut tx, batch).await {
                Ok(out) => {
                    tx.commit().await?;
                    return Ok(out);
                }
                Err(e) if is_retryable(&e) => {
                    last = "deadlock or serialisation failure";
                    tracing::debug!(error = %e, "ingest retried");
                    tx.rollback().await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contended {
            attempts: MAX_ATTEMPTS,
            reason: last,
        })
    }

    async fn ingest_once(
        &self,
        tx: &mut Transaction<'static, Any>,
        batch: &IngestBatch,
    ) -> Result<IngestOutcome> {
        let mut out = IngestOutcome::default();
        let now = now_micros();

        // 1. The cursor, first: it serialises ingests of one source and checks the fence.
        if let Some(source_id) = batch.source_id {
            // The cursor and the bad-record count move together with the records.
            let mut sql = String::from(
                "UPDATE monitor_sources SET cursor = COALESCE($1, cursor), last_polled_at = $2, last_error = NULL,
                   bad_records = CASE WHEN $4 = 1 THEN $5 ELSE bad_records + $5 END,
                   last_bad_position = COALESCE($6, last_bad_position),
                   last_bad_at = CASE WHEN $5 > 0 THEN $2 ELSE last_bad_at END
                 WHERE id = $3",
            );
            if batch.lease.is_some() {
                sql.push_str(" AND lease_owner = $7 AND lease_epoch = $8");
            }
            let bad = &batch.bad_records;
            let mut q = sqlx::query(&sql)
                .bind(batch.cursor.as_deref())
                .bind(now)
                .bind(source_id)
                .bind(i64::from(bad.replace))
                .bind(i64::try_from(bad.count).unwrap_or(i64::MAX))
                .bind(
                    bad.last_position
                        .map(|p| i64::try_from(p).unwrap_or(i64::MAX)),
                );
            if let Some(lease) = &batch.lease {
                q = q.bind(lease.owner.as_str()).bind(lease.epoch);
            }
            let res = q.execute(&mut **tx).await?;
            if batch.lease.is_some() && res.rows_affected() == 0 {
                return Err(StoreError::LeaseLost { source_id });
            }
        }

        // 2. Records: one multi-row insert per chunk; the fingerprint decides what is new.
        let mut seen = HashSet::with_capacity(batch.records.len());
        let mut unique: Vec<usize> = Vec::with_capacity(batch.records.len());
        for (i, rec) in batch.records.iter().enumerate() {
            if seen.insert(rec.fingerprint.as_str()) {
                unique.push(i);
            } else {
                out.duplicate_records += 1;
            }
        }
        // On PostgreSQL concurrent batches may carry the same record: inserting in fingerprint
        // order makes them wait for each other instead of deadlocking. SQLite has one writer
        // and keeps the batch's order (record ids follow the source).
        let mut insert_order = unique.clone();
        if self.backend == Backend::Postgres {
            insert_order.sort_by(|&a, &b| {
                batch.records[a]
                    .fingerprint
                    .cmp(&batch.records[b].fingerprint)
            });
        }
        let mut record_ids: HashMap<&str, i64> = HashMap::with_capacity(unique.len());
        const RECORD_COLS: usize = 14;
        for chunk in insert_order.chunks(rows_per_statement(RECORD_COLS)) {
            let sql = format!(
                "INSERT INTO records (source_id, fingerprint, external_id, bot_id, botnet, url, institution_id, account_norm,
                   secrets, other_fields, urgency, fetched_at, created_at, mule_accounts)
                 VALUES {} ON CONFLICT (fingerprint) DO NOTHING RETURNING id, fingerprint",
                values_clause(self.backend, chunk.len(), RECORD_COLS, 1, "")
            );
            let mut args = AnyArguments::default();
            for &i in chunk {
                let rec = &batch.records[i];
                arg(&mut args, batch.source_id)?;
                arg(&mut args, rec.fingerprint.as_str())?;
                arg(&mut args, rec.external_id.as_deref())?;
                arg(&mut args, rec.bot_id.as_str())?;
                arg(&mut args, rec.botnet.as_str())?;
                arg(&mut args, rec.url.as_str())?;
                arg(&mut args, rec.institution_id.as_deref())?;
                arg(&mut args, rec.account_norm.as_deref())?;
                arg(&mut args, json(&rec.secrets))?;
                arg(&mut args, json(&rec.other_fields))?;
                arg(&mut args, rec.urgency.as_str())?;
                arg(&mut args, batch.fetched_at)?;
                arg(&mut args, now)?;
                arg(&mut args, json(&rec.mule_accounts))?;
            }
            let rows = sqlx::query_with(&sql, args).fetch_all(&mut **tx).await?;
            for row in &rows {
                let fp: String = row.try_get("fingerprint")?;
                let id: i64 = row.try_get("id")?;
                if let Some(&k) = seen.get(fp.as_str()) {
                    record_ids.insert(k, id);
                }
            }
        }
        // New records in batch order; attributed ones grouped by victim.
        let mut attributed: Vec<(usize, (String, String))> = Vec::new();
        for &i in &unique {
            let rec = &batch.records[i];
            if !record_ids.contains_key(rec.fingerprint.as_str()) {
                out.duplicate_records += 1;
                continue;
            }
            out.new_records += 1;
            match (&rec.institution_id, &rec.account_norm, &rec.account) {
                (Some(inst), Some(norm), Some(_)) => {
                    attributed.push((i, (inst.clone(), norm.clone())));
                }
                _ => out.unattributed += 1,
            }
        }
        if attributed.is_empty() {
            return Ok(out);
        }

        // 3. The victims concerned, claimed in one pass in (institution, account) order: an
        // upsert inserts each missing victim as a placeholder (no records yet) and locks each
        // existing one, returning its current state. Every batch takes its victim locks in the
        // same global order, so concurrent batches wait for each other but never deadlock.
        // A placeholder is only ever visible to this transaction: it gets its values below.
        // Each victim with the account as its first record in this batch typed it.
        let mut first_account: BTreeMap<&Key, &str> = BTreeMap::new();
        for (i, key) in &attributed {
            first_account
                .entry(key)
                .or_insert_with(|| batch.records[*i].account.as_deref().unwrap_or_default());
        }
        let keys: Vec<(&Key, &str)> = first_account.into_iter().collect();
        let mut known: BTreeMap<Key, VictimState> = BTreeMap::new();
        let mut created: HashMap<Key, i64> = HashMap::new();
        const VICTIM_COLS: usize = 8;
        let no_exposure = Urgency::from_exposed(&[]);
        for chunk in keys.chunks(rows_per_statement(VICTIM_COLS)) {
            let sql = format!(
                "INSERT INTO victims (institution_id, account_norm, account, account_hash, urgency, first_seen, last_seen, n_records, exposed)
                 VALUES {} ON CONFLICT (institution_id, account_norm) DO UPDATE SET last_seen = victims.last_seen
                 RETURNING id, institution_id, account_norm, exposed, first_seen, n_records",
                values_clause(self.backend, chunk.len(), VICTIM_COLS, 1, ", ''")
            );
            let mut args = AnyArguments::default();
            for (key, account) in chunk {
                arg(&mut args, key.0.as_str())?;
                arg(&mut args, key.1.as_str())?;
                arg(&mut args, *account)?;
                arg(&mut args, account_hash(&key.1))?;
                arg(&mut args, no_exposure.as_str())?;
                arg(&mut args, now)?;
                arg(&mut args, now)?;
                arg(&mut args, 0i64)?;
            }
            for row in sqlx::query_with(&sql, args).fetch_all(&mut **tx).await? {
                let key: Key = (row.try_get("institution_id")?, row.try_get("account_norm")?);
                let id: i64 = row.try_get("id")?;
                if row.try_get::<i64, _>("n_records")? == 0 {
                    created.insert(key, id);
                } else {
                    known.insert(
                        key,
                        VictimState {
                            id: Some(id),
                            exposed: kinds_from_text(&row.try_get::<String, _>("exposed")?),
                            first_seen: row.try_get("first_seen")?,
                            new_records: 0,
                        },
                    );
                }
            }
        }
        if known.len() + created.len() != keys.len() {
            return Err(StoreError::Corrupt {
                table: "victims",
                message: "the victim upsert did not return every victim".to_string(),
            });
        }

        // 4. Replay the batch over them, in order: who is new, what each record exposed.
        let (mut victims, effects) = replay(batch, &attributed, &known, now);
        out.new_victims = created.len() as u64;
        for (key, id) in &created {
            if let Some(v) = victims.get_mut(key) {
                v.id = Some(*id);
            }
        }

        // 5. Every victim touched, new or known: one multi-row update per chunk.
        let touched: Vec<&VictimState> = victims.values().filter(|v| v.new_records > 0).collect();
        const UPDATE_COLS: usize = 5;
        for chunk in touched.chunks(rows_per_statement(UPDATE_COLS)) {
            let sql = format!(
                "UPDATE victims SET exposed = u.column2, urgency = u.column3, last_seen = u.column4,
                   n_records = victims.n_records + u.column5
                 FROM (VALUES {}) AS u WHERE victims.id = u.column1",
                values_clause(self.backend, chunk.len(), UPDATE_COLS, 1, "")
            );
            let mut args = AnyArguments::default();
            for v in chunk {
                arg(&mut args, v.id)?;
                arg(&mut args, kinds_to_text(&v.exposed))?;
                arg(&mut args, Urgency::from_exposed(&v.exposed).as_str())?;
                arg(&mut args, now)?;
                arg(&mut args, v.new_records)?;
            }
            sqlx::query_with(&sql, args).execute(&mut **tx).await?;
        }

        let victim_id = |key: &(String, String)| -> Result<i64> {
            victims
                .get(key)
                .and_then(|v| v.id)
                .ok_or_else(|| StoreError::Corrupt {
                    table: "victims",
                    message: format!("no id for victim of {}", key.0),
                })
        };

        // 6. Victim–record links.
        for chunk in effects.chunks(rows_per_statement(2)) {
            let sql = format!(
                "INSERT INTO victim_records (victim_id, record_id) VALUES {}",
                values_clause(self.backend, chunk.len(), 2, 1, "")
            );
            let mut args = AnyArguments::default();
            for e in chunk {
                arg(&mut args, victim_id(&e.key)?)?;
                arg(
                    &mut args,
                    record_ids[batch.records[e.record].fingerprint.as_str()],
                )?;
            }
            sqlx::query_with(&sql, args).execute(&mut **tx).await?;
        }

        // 7. Alerts: names of the institutions, the rows, then their payloads (which carry
        // the alert's own id).
        let alerting: Vec<&Effect> = effects.iter().filter(|e| e.reason.is_some()).collect();
        if alerting.is_empty() {
            return Ok(out);
        }
        let inst_ids: BTreeSet<&str> = alerting.iter().map(|e| e.key.0.as_str()).collect();
        let mut names: HashMap<String, String> = HashMap::new();
        for chunk in inst_ids.iter().copied().collect::<Vec<_>>().chunks(1000) {
            let sql = format!(
                "SELECT id, name FROM institutions WHERE id IN ({})",
                param_list(self.backend, chunk.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&mut **tx).await? {
                names.insert(row.try_get("id")?, row.try_get("name")?);
            }
        }
        if let Some(missing) = inst_ids.iter().find(|id| !names.contains_key(**id)) {
            return Err(StoreError::UnknownInstitution(missing.to_string()));
        }

        const ALERT_COLS: usize = 7;
        let mut keys: Vec<String> = Vec::with_capacity(alerting.len());
        for e in &alerting {
            keys.push(alert_key(
                &batch.records[e.record].fingerprint,
                e.reason.unwrap_or(AlertReason::NewVictim),
            ));
        }
        let mut alert_ids: HashMap<String, i64> = HashMap::with_capacity(alerting.len());
        let idx: Vec<usize> = (0..alerting.len()).collect();
        for chunk in idx.chunks(rows_per_statement(ALERT_COLS)) {
            let sql = format!(
                "INSERT INTO alerts (victim_id, institution_id, reason, idempotency_key, next_attempt_at,
                   record_fetched_at, created_at, payload, status, attempts)
                 VALUES {} RETURNING id, idempotency_key",
                values_clause(self.backend, chunk.len(), ALERT_COLS, 1, ", '', 'pending', 0")
            );
            let mut args = AnyArguments::default();
            for &k in chunk {
                let e = alerting[k];
                arg(&mut args, victim_id(&e.key)?)?;
                arg(&mut args, e.key.0.as_str())?;
                arg(
                    &mut args,
                    e.reason.unwrap_or(AlertReason::NewVictim).as_str(),
                )?;
                arg(&mut args, keys[k].as_str())?;
                arg(&mut args, now)?;
                arg(&mut args, batch.fetched_at)?;
                arg(&mut args, now)?;
            }
            for row in sqlx::query_with(&sql, args).fetch_all(&mut **tx).await? {
                alert_ids.insert(row.try_get("idempotency_key")?, row.try_get("id")?);
            }
        }

        let mut payloads: Vec<(i64, String)> = Vec::with_capacity(alerting.len());
        for (k, e) in alerting.iter().enumerate() {
            let rec: &AnalyzedRecord = &batch.records[e.record];
            let reason = e.reason.unwrap_or(AlertReason::NewVictim);
            let alert_id = *alert_ids.get(&keys[k]).ok_or_else(|| StoreError::Corrupt {
                table: "alerts",
                message: "an inserted alert did not come back".to_string(),
            })?;
            let payload = AlertPayload {
                schema: AlertPayload::SCHEMA.to_string(),
                alert_id,
                idempotency_key: keys[k].clone(),
                reason,
                institution_id: e.key.0.clone(),
                institution_name: names[&e.key.0].clone(),
                account: rec.account.clone().unwrap_or_default(),
                urgency: Urgency::from_exposed(&e.exposed),
                exposed: e.exposed.clone(),
                first_seen: e.first_seen,
                last_seen: now,
                source_server: batch.source_server.clone(),
                bot_id: rec.bot_id.clone(),
                botnet: Some(rec.botnet.clone()).filter(|b| !b.is_empty()),
                mule_accounts: rec.mule_accounts.clone(),
            };
            payloads.push((alert_id, json(&payload)));
        }
        for chunk in payloads.chunks(rows_per_statement(2)) {
            let sql = format!(
                "UPDATE alerts SET payload = u.column2 FROM (VALUES {}) AS u WHERE alerts.id = u.column1",
                values_clause(self.backend, chunk.len(), 2, 1, "")
            );
            let mut args = AnyArguments::default();
            for (id, payload) in chunk {
                arg(&mut args, *id)?;
                arg(&mut args, payload.as_str())?;
            }
            sqlx::query_with(&sql, args).execute(&mut **tx).await?;
        }
        out.alerts = alerting.len() as u64;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_clause_numbers_placeholders_in_row_order() {
        let pg = Backend::Postgres;
        assert_eq!(values_clause(pg, 2, 3, 1, ""), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values_clause(pg, 1, 2, 4, ", 0"), "($4, $5, 0)");
        assert_eq!(values_clause(pg, 0, 2, 1, ""), "");
        assert_eq!(
            values_clause(Backend::Sqlite, 2, 2, 1, ", 'x'"),
            "(?, ?, 'x'), (?, ?, 'x')"
        );
        assert_eq!(param_list(pg, 3, 2), "$2, $3, $4");
    }

    #[test]
    fn chunks_stay_under_the_parameter_limit() {
        for width in [1, 2, 5, 7, 8, 14] {
            let rows = rows_per_statement(width);
            assert!(rows * width <= MAX_PARAMS, "width {width}");
            assert!(rows >= 1);
        }
    }
}
