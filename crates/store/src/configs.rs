//! Decoded malware configs: deduplicated by a canonical hash, with their targets, and the
//! events a new version of a botnet's config makes.
//!
//! The canonical hash is SHA-256 over a canonical JSON text: object keys sorted, arrays
//! treated as multisets (elements sorted by their own canonical text, duplicates kept),
//! numbers and strings as serde_json writes them. Two configs that differ only in the order of
//! their keys, injects, filters or URLs are the same config.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{json, json_list, now_micros, Micros, Result, Store};

/// The kind of a [`ConfigEvent`]: a new config of a botnet targets something the previous
/// one did not.
pub const EVENT_TARGETS_ADDED: &str = "targets_added";

/// A decoded config to store. The store does not know the config crate: the caller gives the
/// JSON body and what the config targets.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConfig {
    /// The sample (bot image or config.bin) it came from.
    pub sample_id: Option<i64>,
    pub family: String,
    pub version: Option<String>,
    /// Configs of the same family and botnet are versions of one another; without a botnet
    /// there is nothing to compare with.
    pub botnet: Option<String>,
    /// The config's content; hashed canonically for deduplication and stored as is.
    pub body: Value,
    /// What it targets (inject URL masks, web-filter masks); stored as a set.
    pub targets: Vec<String>,
}

/// What [`Store::insert_config`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigInsert {
    pub id: i64,
    /// False when a config with the same canonical hash was already stored.
    pub is_new: bool,
    pub canonical_hash: String,
    /// The event this version made, if it adds targets to the botnet's previous config.
    pub event: Option<ConfigEvent>,
}

/// A change between two versions of a botnet's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigEvent {
    pub id: i64,
    pub config_id: i64,
    pub previous_config_id: Option<i64>,
    pub family: String,
    pub botnet: String,
    /// [`EVENT_TARGETS_ADDED`].
    pub kind: String,
    /// The targets added, sorted.
    pub targets: Vec<String>,
    pub created_at: Micros,
}

/// A stored config, without its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigRow {
    pub id: i64,
    pub sample_id: Option<i64>,
    pub canonical_hash: String,
    pub family: String,
    pub version: Option<String>,
    pub botnet: Option<String>,
    pub created_at: Micros,
}

/// The canonical JSON text of `v`: keys sorted, arrays as sorted multisets, no whitespace.
pub fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, String)> =
                map.iter().map(|(k, v)| (k, canonical_json(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let mut inner: Vec<String> = items.iter().map(canonical_json).collect();
            inner.sort();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// Lower-case hex SHA-256 of [`canonical_json`].
pub fn canonical_hash(v: &Value) -> String {
    let digest = Sha256::digest(canonical_json(v).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Stores a config unless one with the same canonical hash is stored already; returns its
    /// id and whether it is new. A new config of a known (family, botnet) that targets
    /// something its previous version did not is recorded as a [`ConfigEvent`], in the same
    /// transaction.
    pub async fn insert_config(&self, cfg: &NewConfig) -> Result<ConfigInsert> {
        let hash = canonical_hash(&cfg.body);
        let now = now_micros();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO configs (sample_id, canonical_hash, family, version, botnet, body, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (canonical_hash) DO NOTHING RETURNING id",
        )
        .bind(cfg.sample_id)
        .bind(&hash)
        .bind(&cfg.family)
        .bind(cfg.version.as_deref())
        .bind(cfg.botnet.as_deref())
        .bind(json(&cfg.body))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            let row = sqlx::query("SELECT id FROM configs WHERE canonical_hash = $1")
                .bind(&hash)
                .fetch_one(&mut *tx)
                .await?;
            let id: i64 = row.try_get("id")?;
            tx.commit().await?;
            return Ok(ConfigInsert {
                id,
                is_new: false,
                canonical_hash: hash,
                event: None,
            });
        };
        let id: i64 = row.try_get("id")?;

        let mut targets: Vec<&str> = cfg.targets.iter().map(String::as_str).collect();
        targets.sort_unstable();
        targets.dedup();
        for t in &targets {
            sqlx::query(
                "INSERT INTO config_targets (config_id, target) VALUES ($1, $2)
                 ON CONFLICT (config_id, target) DO NOTHING",
            )
            .bind(id)
            .bind(*t)
            .execute(&mut *tx)
            .await?;
        }

        let mut event = None;
        if let Some(botnet) = &cfg.botnet {
            let previous = sqlx::query(
                "SELECT id FROM configs WHERE family = $1 AND botnet = $2 AND id <> $3
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(&cfg.family)
            .bind(botnet)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(prev) = previous {
                let prev_id: i64 = prev.try_get("id")?;
                let before: Vec<String> =
                    sqlx::query("SELECT target FROM config_targets WHERE config_id = $1")
                        .bind(prev_id)
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|r| r.try_get("target"))
                        .collect::<std::result::Result<_, _>>()?;
                let added: Vec<String> = targets
                    .iter()
                    .filter(|t| !before.iter().any(|b| b == *t))
                    .map(|t| t.to_string())
                    .collect();
                if !added.is_empty() {
                    let row = sqlx::query(
                        "INSERT INTO config_events (config_id, previous_config_id, family, botnet, kind, targets, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    )
                    .bind(id)
                    .bind(prev_id)
                    .bind(&cfg.family)
                    .bind(botnet)
                    .bind(EVENT_TARGETS_ADDED)
                    .bind(json(&added))
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    event = Some(ConfigEvent {
                        id: row.try_get("id")?,
                        config_id: id,
                        previous_config_id: Some(prev_id),
                        family: cfg.family.clone(),
                        botnet: botnet.clone(),
                        kind: EVENT_TARGETS_ADDED.to_string(),
                        targets: added,
                        created_at: now,
                    });
                }
            }
        }
        tx.commit().await?;
        Ok(ConfigInsert {
            id,
            is_new: true,
            canonical_hash: hash,
            event,
        })
    }

    /// Every config event, oldest first.
    pub async fn config_events(&self) -> Result<Vec<ConfigEvent>> {
        let rows = sqlx::query(
            "SELECT id, config_id, previous_config_id, family, botnet, kind, targets, created_at
             FROM config_events ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConfigEvent {
                    id: r.try_get("id")?,
                    config_id: r.try_get("config_id")?,
                    previous_config_id: r.try_get("previous_config_id")?,
                    family: r.try_get("family")?,
                    botnet: r.try_get("botnet")?,
                    kind: r.try_get("kind")?,
                    targets: json_list(&r.try_get::<String, _>("targets")?, "config_events")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Every stored config (without bodies), oldest first.
    pub async fn list_configs(&self) -> Result<Vec<ConfigRow>> {
        let rows = sqlx::query(
            "SELECT id, sample_id, canonical_hash, family, version, botnet, created_at
             FROM configs ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConfigRow {
                    id: r.try_get("id")?,
                    sample_id: r.try_get("sample_id")?,
                    canonical_hash: r.try_get("canonical_hash")?,
                    family: r.try_get("family")?,
                    version: r.try_get("version")?,
                    botnet: r.try_get("botnet")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The targets of a stored config, sorted.
    pub async fn config_targets(&self, config_id: i64) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT target FROM config_targets WHERE config_id = $1 ORDER BY target")
                .bind(config_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("target"))
            .collect::<std::result::Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_text_sorts_keys_and_treats_lists_as_multisets() {
        let a = json!({"b": [3, 1, {"y": 1, "x": [2, 2, 1]}], "a": "s"});
        let b = json!({"a": "s", "b": [{"x": [1, 2, 2], "y": 1}, 1, 3]});
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":"s","b":[1,3,{"x":[1,2,2],"y":1}]}"#
        );
        assert_eq!(canonical_hash(&a), canonical_hash(&b));
        // A multiset: a duplicate is a difference.
        let c = json!({"a": "s", "b": [{"x": [1, 2], "y": 1}, 1, 3]});
        assert_ne!(canonical_hash(&a), canonical_hash(&c));
        // Keys that need escaping stay distinct.
        assert_ne!(
            canonical_json(&json!({"a\"": 1})),
            canonical_json(&json!({"a": 1}))
        );
    }
}
