//! What the institution API needs from the store: API tokens and their scopes, alerts and
//! victims seen through a scope, acknowledgements, the privacy-preserving account lookup, the
//! audit log and the time-to-freeze figures.
//!
//! **Scopes.** Every read here takes an `institution` filter: `Some(id)` confines it to that
//! institution's rows in SQL (an institution token), `None` reads everything (an analyst).
//! A row outside the scope is indistinguishable from a row that does not exist.
//!
//! **Tokens** are 32 random bytes shown once as `dw_<64 hex>` and stored only as the hex
//! SHA-256 of that text. The caller supplies the random bytes ([`TokenSecret::from_bytes`]),
//! so the store needs no random source and tests can be deterministic.
//!
//! **Architecture Invariant:** every read of victim data here writes an audit entry, as
//! [`Store::list_victims`] does.

use std::fmt;

use dropwatch_model::{AlertPayload, MaskedSecret, Micros, SecretKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{now_micros, victim_from_row, Result, Store, StoreError, VictimRow};

/// The text every token starts with, so a leaked token is recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "dw_";

/// Length of the hash prefix an institution sends to [`Store::victim_suffixes_for_prefix`].
pub const LOOKUP_PREFIX_LEN: usize = 5;

/// What a token may see.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "institution_id", rename_all = "snake_case")]
pub enum TokenScope {
    /// Everything.
    Analyst,
    /// One institution's alerts and victims, nothing else.
    Institution(String),
    /// Indicators only: no personal data.
    Partner,
}

impl TokenScope {
    pub fn role(&self) -> &'static str {
        match self {
            TokenScope::Analyst => "analyst",
            TokenScope::Institution(_) => "institution",
            TokenScope::Partner => "partner",
        }
    }

    pub fn institution_id(&self) -> Option<&str> {
        match self {
            TokenScope::Institution(id) => Some(id),
            _ => None,
        }
    }
}

/// A freshly generated token's text. Shown once to whoever created it; the store keeps only
/// its hash. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// The token made of 32 random bytes (the caller draws them from a CSPRNG).
    pub fn from_bytes(bytes: [u8; 32]) -> TokenSecret {
        TokenSecret(format!("{TOKEN_PREFIX}{}", dropwatch_model::to_hex(&bytes)))
    }

    /// The token text, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// Hex SHA-256 of a token's text: what the store keeps and looks tokens up by.
pub fn token_hash(token: &str) -> String {
    dropwatch_model::to_hex(&Sha256::digest(token.as_bytes()))
}

/// Hex SHA-256 of a normalised account identifier: the space of the privacy-preserving lookup.
/// Institutions normalise as dropwatch does (lowercase; no blanks, `-`, `.`, `_` or `/`).
pub fn account_hash(account_norm: &str) -> String {
    dropwatch_model::to_hex(&Sha256::digest(account_norm.as_bytes()))
}

/// An API token as the store keeps it (never the token text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: i64,
    #[serde(flatten)]
    pub scope: TokenScope,
    pub label: String,
    pub created_at: Micros,
    pub revoked_at: Option<Micros>,
    pub last_used_at: Option<Micros>,
}

impl ApiToken {
    /// How the token appears in the audit log: its id and label, never its text.
    pub fn actor(&self) -> String {
        format!("token:{}:{}", self.id, self.label)
    }
}

/// What an institution says about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    Acknowledged,
    Frozen,
    FalsePositive,
    NotOurCustomer,
}

impl AckStatus {
    pub const ALL: [AckStatus; 4] = [
        AckStatus::Acknowledged,
        AckStatus::Frozen,
        AckStatus::FalsePositive,
        AckStatus::NotOurCustomer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AckStatus::Acknowledged => "acknowledged",
            AckStatus::Frozen => "frozen",
            AckStatus::FalsePositive => "false_positive",
            AckStatus::NotOurCustomer => "not_our_customer",
        }
    }

    pub fn parse(s: &str) -> Option<AckStatus> {
        AckStatus::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One acknowledgement of an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AckRow {
    pub id: i64,
    pub alert_id: i64,
    pub institution_id: String,
    pub status: AckStatus,
    pub note: String,
    pub actor: String,
    pub at: Micros,
}

/// An alert as the API shows it: outbox state and the webhook body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub victim_id: i64,
    pub institution_id: String,
    /// `pending`, `delivered`, `dead` or `undeliverable`.
    pub status: String,
    pub attempts: i64,
    pub created_at: Micros,
    pub delivered_at: Option<Micros>,
    pub payload: AlertPayload,
}

/// One record of a victim, as its timeline shows it: when, and which kinds were exposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineRecord {
    pub record_id: i64,
    pub fetched_at: Micros,
    pub stored_at: Micros,
    pub exposed: Vec<SecretKind>,
}

/// One alert of a victim, without its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineAlert {
    pub id: i64,
    pub reason: String,
    pub status: String,
    pub attempts: i64,
    pub created_at: Micros,
    pub delivered_at: Option<Micros>,
}

/// Everything known about one victim over time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VictimTimeline {
    pub victim: VictimRow,
    pub records: Vec<TimelineRecord>,
    pub alerts: Vec<TimelineAlert>,
    pub acks: Vec<AckRow>,
}

/// The first [`LOOKUP_PREFIX_LEN`] hex digits of an [`account_hash`], lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HashPrefix(String);

impl HashPrefix {
    /// Exactly five hex digits (any case); anything else is `None`.
    pub fn parse(text: &str) -> Option<HashPrefix> {
        (text.len() == LOOKUP_PREFIX_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| HashPrefix(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An audit log entry with its id (a cursor for paging).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: Micros,
    pub actor: String,
    pub action: String,
    pub subject: String,
}

/// Which audit entries to read: newest first, optionally of one actor, optionally older than
/// an entry id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// The figures behind `/metrics`: the outbox by status, delivery attempts, and, per alert,
/// how long from the record's fetch to delivery and to each kind of acknowledgement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertMetrics {
    /// `(status, count)`, sorted by status.
    pub alerts_by_status: Vec<(String, i64)>,
    pub delivery_attempts: i64,
    pub delivery_failures: i64,
    /// Detected (record fetched) → delivered, microseconds, one per delivered alert.
    pub detected_to_delivered_us: Vec<i64>,
    /// Detected → first acknowledgement of each status, microseconds, one per alert and status.
    pub detected_to_ack_us: Vec<(AckStatus, i64)>,
}

fn token_from_row(r: &AnyRow) -> Result<ApiToken> {
    let role: String = r.try_get("role")?;
    let institution_id: Option<String> = r.try_get("institution_id")?;
    let scope = match (role.as_str(), institution_id) {
        ("analyst", None) => TokenScope::Analyst,
        ("partner", None) => TokenScope::Partner,
        ("institution", Some(id)) => TokenScope::Institution(id),
        (role, inst) => {
            return Err(StoreError::Corrupt {
                table: "api_tokens",
                message: format!("role {role:?} with institution {inst:?}"),
            })
        }
    };
    Ok(ApiToken {
        id: r.try_get("id")?,
        scope,
        label: r.try_get("label")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

fn ack_status(text: &str) -> Result<AckStatus> {
    AckStatus::parse(text).ok_or(StoreError::Corrupt {
        table: "alert_acks",
        message: format!("status {text:?}"),
    })
}

fn ack_from_row(r: &AnyRow) -> Result<AckRow> {
    Ok(AckRow {
        id: r.try_get("id")?,
        alert_id: r.try_get("alert_id")?,
        institution_id: r.try_get("institution_id")?,
        status: ack_status(&r.try_get::<String, _>("status")?)?,
        note: r.try_get("note")?,
        actor: r.try_get("actor")?,
        at: r.try_get("at")?,
    })
}

fn alert_from_row(r: &AnyRow) -> Result<AlertRow> {
    let payload: String = r.try_get("payload")?;
    Ok(AlertRow {
        id: r.try_get("id")?,
        victim_id: r.try_get("victim_id")?,
        institution_id: r.try_get("institution_id")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
        payload: serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt {
            table: "alerts",
            message: e.to_string(),
        })?,
    })
}

const TOKEN_COLUMNS: &str = "id, role, institution_id, label, created_at, revoked_at, last_used_at";

impl Store {
    /// Fills `victims.account_hash` for rows stored before the column existed. Runs when the
    /// store opens; a no-op once every row has its hash.
    pub(crate) async fn backfill_account_hashes(&self) -> Result<u64> {
        let mut filled = 0;
        loop {
            let rows = sqlx::query(
                "SELECT id, account_norm FROM victims WHERE account_hash IS NULL ORDER BY id LIMIT 1000",
            )
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(filled);
            }
            let mut tx = self.pool.begin().await?;
            for r in &rows {
                let id: i64 = r.try_get("id")?;
                let norm: String = r.try_get("account_norm")?;
                sqlx::query("UPDATE victims SET account_hash = $1 WHERE id = $2")
                    .bind(account_hash(&norm))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            filled += rows.len() as u64;
        }
    }

    // ---- tokens ----

    /// Stores a new token (its hash only) with a scope and a label.
    pub async fn create_api_token(
        &self,
        secret: &TokenSecret,
        scope: &TokenScope,
        label: &str,
    ) -> Result<ApiToken> {
        if let Some(inst) = scope.institution_id() {
            let known = sqlx::query("SELECT id FROM institutions WHERE id = $1")
                .bind(inst)
                .fetch_optional(&self.pool)
                .await?;
            if known.is_none() {
                return Err(StoreError::UnknownInstitution(inst.to_string()));
            }
        }
        let row = sqlx::query(&format!(
            "INSERT INTO api_tokens (token_hash, role, institution_id, label, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(token_hash(secret.expose()))
        .bind(scope.role())
        .bind(scope.institution_id())
        .bind(label)
        .bind(now_micros())
        .fetch_one(&self.pool)
        .await?;
        token_from_row(&row)
    }

    /// Revokes a token. True if it was active until now.
    pub async fn revoke_api_token(&self, id: i64) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now_micros())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Every token, revoked ones included, by id.
    pub async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// The active token whose text this is, if any; notes its use.
    ///
    /// No constant-time comparison is needed: the presented text is hashed and looked up by
    /// its SHA-256, so the lookup's timing depends on the hash, which an attacker cannot steer
    /// towards a stored one, not on how much of a real token they guessed.
    pub async fn authenticate_api_token(&self, presented: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(&format!(
            "UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL
             RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(now_micros())
        .bind(token_hash(presented))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    // ---- alerts and victims through a scope (audited) ----

    /// Alerts with an id above `since`, oldest first, at most `limit`, of one institution or
    /// (`None`) of all. Alerts name accounts, so the read is audited.
    pub async fn alerts_since(
        &self,
        actor: &str,
        institution: Option<&str>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query(
            "SELECT id, victim_id, institution_id, status, attempts, created_at, delivered_at, payload
             FROM alerts WHERE id > $1 AND ($2 IS NULL OR institution_id = $2) AND payload <> ''
             ORDER BY id LIMIT $3",
        )
        .bind(since)
        .bind(institution)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let alerts = rows
            .iter()
            .map(alert_from_row)
            .collect::<Result<Vec<_>>>()?;
        self.audit(
            actor,
            "read_alerts",
            &format!(
                "institution={} since={since} count={}",
                institution.unwrap_or("*"),
                alerts.len()
            ),
        )
        .await?;
        Ok(alerts)
    }

    /// One victim's records (times and exposed kinds), alerts and acknowledgements, if the
    /// victim exists within the scope. Audited.
    pub async fn victim_timeline(
        &self,
        actor: &str,
        institution: Option<&str>,
        victim_id: i64,
    ) -> Result<Option<VictimTimeline>> {
        let victim = sqlx::query(
            "SELECT id, institution_id, account, account_norm, exposed, urgency, first_seen, last_seen, n_records
             FROM victims WHERE id = $1 AND ($2 IS NULL OR institution_id = $2)",
        )
        .bind(victim_id)
        .bind(institution)
        .fetch_optional(&self.pool)
        .await?;
        let Some(victim) = victim else {
            self.audit(
                actor,
                "read_victim_timeline",
                &format!("victim={victim_id} found=false"),
            )
            .await?;
            return Ok(None);
        };
        let victim = victim_from_row(&victim)?;
        let records = sqlx::query(
            "SELECT r.id, r.fetched_at, r.created_at, r.secrets FROM victim_records vr
             JOIN records r ON r.id = vr.record_id WHERE vr.victim_id = $1 ORDER BY r.id",
        )
        .bind(victim_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let secrets: Vec<MaskedSecret> =
                serde_json::from_str(&r.try_get::<String, _>("secrets")?).map_err(|e| {
                    StoreError::Corrupt {
                        table: "records",
                        message: e.to_string(),
                    }
                })?;
            let mut exposed: Vec<SecretKind> = secrets.iter().map(|s| s.kind).collect();
            exposed.sort();
            exposed.dedup();
            Ok(TimelineRecord {
                record_id: r.try_get("id")?,
                fetched_at: r.try_get("fetched_at")?,
                stored_at: r.try_get("created_at")?,
                exposed,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let alerts = sqlx::query(
            "SELECT id, reason, status, attempts, created_at, delivered_at FROM alerts
             WHERE victim_id = $1 ORDER BY id",
        )
        .bind(victim_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(TimelineAlert {
                id: r.try_get("id")?,
                reason: r.try_get("reason")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                created_at: r.try_get("created_at")?,
                delivered_at: r.try_get("delivered_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let acks = sqlx::query(
            "SELECT k.id, k.alert_id, k.institution_id, k.status, k.note, k.actor, k.at
             FROM alert_acks k JOIN alerts a ON a.id = k.alert_id WHERE a.victim_id = $1 ORDER BY k.id",
        )
        .bind(victim_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(ack_from_row)
        .collect::<Result<Vec<_>>>()?;
        self.audit(
            actor,
            "read_victim_timeline",
            &format!("victim={victim_id} institution={}", victim.institution_id),
        )
        .await?;
        Ok(Some(VictimTimeline {
            victim,
            records,
            alerts,
            acks,
        }))
    }

    /// Records an institution's acknowledgement of one of its own alerts. `None` when the
    /// alert does not exist or belongs to another institution (the two are not told apart).
    pub async fn ack_alert(
        &self,
        actor: &str,
        institution_id: &str,
        alert_id: i64,
        status: AckStatus,
        note: &str,
    ) -> Result<Option<AckRow>> {
        let mut tx = self.pool.begin().await?;
        let owned = sqlx::query("SELECT id FROM alerts WHERE id = $1 AND institution_id = $2")
            .bind(alert_id)
            .bind(institution_id)
            .fetch_optional(&mut *tx)
            .await?;
        if owned.is_none() {
            return Ok(None);
        }
        let row = sqlx::query(
            "INSERT INTO alert_acks (alert_id, institution_id, status, note, actor, at)
             VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING id, alert_id, institution_id, status, note, actor, at",
        )
        .bind(alert_id)
        .bind(institution_id)
        .bind(status.as_str())
        .bind(note)
        .bind(actor)
        .bind(now_micros())
        .fetch_one(&mut *tx)
        .await?;
        let ack = ack_from_row(&row)?;
        tx.commit().await?;
        Ok(Some(ack))
    }

    /// The privacy-preserving lookup: the [`account_hash`]es of the victims of one institution
    /// (or, `None`, of all) that start with `prefix`, without the prefix, sorted. Audited.
    ///
    /// The hash is computed when a victim is stored (the backends' hash functions differ) and
    /// indexed, so a lookup reads only the matching victims.
    pub async fn victim_suffixes_for_prefix(
        &self,
        actor: &str,
        institution: Option<&str>,
        prefix: &HashPrefix,
    ) -> Result<Vec<String>> {
        // A range scan on the indexed hash: every lowercase hex string that starts with the
        // prefix sorts in [prefix, prefix + "g").
        let low = prefix.as_str().to_string();
        let high = format!("{low}g");
        let rows = match institution {
            Some(inst) => sqlx::query(
                "SELECT account_hash FROM victims
                 WHERE institution_id = $1 AND account_hash >= $2 AND account_hash < $3",
            )
            .bind(inst)
            .bind(&low)
            .bind(&high),
            None => sqlx::query(
                "SELECT account_hash FROM victims WHERE account_hash >= $1 AND account_hash < $2",
            )
            .bind(&low)
            .bind(&high),
        }
        .fetch_all(&self.pool)
        .await?;
        let mut suffixes = Vec::new();
        for r in &rows {
            let hash: String = r.try_get("account_hash")?;
            if let Some(suffix) = hash.strip_prefix(prefix.as_str()) {
                suffixes.push(suffix.to_string());
            }
        }
        suffixes.sort();
        suffixes.dedup();
        self.audit(
            actor,
            "lookup_victims",
            &format!(
                "institution={} prefix={} matches={}",
                institution.unwrap_or("*"),
                prefix.as_str(),
                suffixes.len()
            ),
        )
        .await?;
        Ok(suffixes)
    }

    // ---- audit ----

    /// Audit entries, newest first.
    pub async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, subject FROM audit_log
             WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(q.actor.as_deref())
        .bind(q.before_id)
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    subject: r.try_get("subject")?,
                })
            })
            .collect()
    }

    /// How many entries the audit log holds.
    pub async fn audit_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM audit_log")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    // ---- metrics ----

    /// The outbox by status, delivery attempts and the time-to-freeze figures.
    pub async fn alert_metrics(&self) -> Result<AlertMetrics> {
        let alerts_by_status =
            sqlx::query("SELECT status, COUNT(*) AS n FROM alerts GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
                .collect::<Result<Vec<_>>>()?;
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM deliveries) AS attempts,
                    (SELECT COUNT(*) FROM deliveries WHERE error IS NOT NULL) AS failures",
        )
        .fetch_one(&self.pool)
        .await?;
        let detected_to_ack_us = sqlx::query(
            "SELECT k.status, MIN(k.at) - a.record_fetched_at AS lat FROM alert_acks k
             JOIN alerts a ON a.id = k.alert_id
             GROUP BY k.alert_id, k.status, a.record_fetched_at ORDER BY k.alert_id, k.status",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok((
                ack_status(&r.try_get::<String, _>("status")?)?,
                r.try_get("lat")?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(AlertMetrics {
            alerts_by_status,
            delivery_attempts: row.try_get("attempts")?,
            delivery_failures: row.try_get("failures")?,
            detected_to_delivered_us: self.delivery_latencies().await?,
            detected_to_ack_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_prefix_and_hide_in_debug() {
        let t = TokenSecret::from_bytes([0xab; 32]);
        assert!(t.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(t.expose().len(), TOKEN_PREFIX.len() + 64);
        assert!(!format!("{t:?}").contains("abab"));
        assert_eq!(token_hash(t.expose()).len(), 64);
        assert_ne!(token_hash(t.expose()), token_hash("dw_other"));
    }

    #[test]
    fn hash_prefixes_are_five_hex_digits() {
        assert_eq!(HashPrefix::parse("ABCDE").unwrap().as_str(), "abcde");
        for bad in ["abcd", "abcdef", "abcdg", "", "ab de", "ａbcde"] {
            assert!(HashPrefix::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn ack_statuses_round_trip() {
        for s in AckStatus::ALL {
            assert_eq!(AckStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(AckStatus::parse("frozen "), None);
    }
}
