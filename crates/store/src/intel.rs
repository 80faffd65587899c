//! What can be shared about the criminals' infrastructure, read as aggregates.
//!
//! [`Store::intel_snapshot`] is what the exporters (`dropwatch-share`) read: servers and where
//! they were found, the botnets and families tied to them, the institutions they target, and
//! *counts* (records, distinct victims, first and last record) per server and per institution.
//!
//! **Architecture Invariant:** nothing here reads a victim's row out of the store. The victims,
//! records and victim_records tables are only ever aggregated (`COUNT`, `MIN`, `MAX`) in SQL; no
//! account, bot id, secret or record URL is selected. The one record column read as a value is
//! `records.botnet`, the botnet name the criminals gave their bots. Because the counts are
//! derived from victim data, the read is still written to the audit log.
//!
//! The queries are plain SQL that SQLite and PostgreSQL both run (`||` concatenation, `COUNT`,
//! `MIN`, `MAX`; no `SUM`, which PostgreSQL returns as `numeric`).

use std::collections::HashMap;

use dropwatch_model::{Institution, Micros, ServerRole};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{json_list, Result, ServerRow, Store, StoreError};

/// Records a server received, aggregated: how many, about how many distinct victims, when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecordCounts {
    pub n_records: i64,
    pub n_victims: i64,
    /// When the first and the last record were fetched.
    pub first_at: Option<Micros>,
    pub last_at: Option<Micros>,
}

/// A server with the records fetched from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntelServerRow {
    pub server: ServerRow,
    pub records: RecordCounts,
}

/// Records of one institution's customers that one server received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerInstitutionCounts {
    pub server_id: i64,
    pub institution_id: String,
    pub records: RecordCounts,
}

/// A botnet name seen for a server, either in the records its drop stored (`records > 0`) or
/// in the config that revealed it (`family` set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerBotnet {
    pub server_id: i64,
    pub family: Option<String>,
    pub botnet: Option<String>,
    pub n_records: i64,
    /// When the link was first seen (first record, or config stored).
    pub first_at: Micros,
    pub last_at: Micros,
}

/// An institution an inject that revealed a server targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerTarget {
    pub server_id: i64,
    pub institution_id: String,
}

/// A sample (bot image, config, webinjects file) tied to a server or a config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntelSample {
    pub sha256: String,
    pub kind: String,
    pub name: Option<String>,
    pub family: Option<String>,
    pub first_seen: Micros,
    /// The server it revealed, if any.
    pub server_id: Option<i64>,
    /// The botnet of the config it holds, if any.
    pub botnet: Option<String>,
}

/// Configs stored per family and botnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigFamily {
    pub family: String,
    pub botnet: Option<String>,
    pub n_configs: i64,
    pub first_at: Micros,
    pub last_at: Micros,
}

/// A registered institution with how it is targeted and hit (counts only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntelInstitution {
    pub institution: Institution,
    pub created_at: Micros,
    pub n_injects: i64,
    pub records: RecordCounts,
    /// Victims of the institution, and the first and last time any was seen.
    pub n_victims: i64,
    pub victims_first_seen: Option<Micros>,
    pub victims_last_seen: Option<Micros>,
}

/// Everything [`Store::intel_snapshot`] reads, each list in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IntelSnapshot {
    pub servers: Vec<IntelServerRow>,
    pub server_institutions: Vec<ServerInstitutionCounts>,
    pub server_botnets: Vec<ServerBotnet>,
    pub server_targets: Vec<ServerTarget>,
    pub samples: Vec<IntelSample>,
    pub configs: Vec<ConfigFamily>,
    /// Every registered institution (the exporters need all their domains for the allow-list).
    pub institutions: Vec<IntelInstitution>,
}

fn counts(r: &AnyRow) -> Result<RecordCounts> {
    Ok(RecordCounts {
        n_records: r.try_get("n_records")?,
        n_victims: r.try_get("n_victims")?,
        first_at: r.try_get("first_at")?,
        last_at: r.try_get("last_at")?,
    })
}

impl Store {
    /// Reads what can be shared, as aggregates (see the module docs). `actor` is written to the
    /// audit log with the size of what was read.
    pub async fn intel_snapshot(&self, actor: &str) -> Result<IntelSnapshot> {
        let per_server = sqlx::query(
            "SELECT ms.server_id AS server_id, COUNT(*) AS n_records,
                    COUNT(DISTINCT vr.victim_id) AS n_victims,
                    MIN(r.fetched_at) AS first_at, MAX(r.fetched_at) AS last_at
             FROM records r
             JOIN monitor_sources ms ON ms.id = r.source_id
             LEFT JOIN victim_records vr ON vr.record_id = r.id
             WHERE ms.server_id IS NOT NULL
             GROUP BY ms.server_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut server_counts = HashMap::with_capacity(per_server.len());
        for r in &per_server {
            server_counts.insert(r.try_get::<i64, _>("server_id")?, counts(r)?);
        }
        // Servers and their provenance, joined here by id (linear in both tables).
        let links =
            sqlx::query("SELECT server_id, source FROM server_sources ORDER BY server_id, source")
                .fetch_all(&self.pool)
                .await?;
        let mut sources: HashMap<i64, Vec<String>> = HashMap::new();
        for l in &links {
            sources
                .entry(l.try_get("server_id")?)
                .or_default()
                .push(l.try_get("source")?);
        }
        let rows = sqlx::query(
            "SELECT id, url, host, role, first_seen, last_seen FROM servers ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let servers = rows
            .iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                let role: String = r.try_get("role")?;
                let server = ServerRow {
                    id,
                    url: r.try_get("url")?,
                    host: r.try_get("host")?,
                    role: ServerRole::parse(&role).ok_or(StoreError::Corrupt {
                        table: "servers",
                        message: format!("role {role:?}"),
                    })?,
                    first_seen: r.try_get("first_seen")?,
                    last_seen: r.try_get("last_seen")?,
                    sources: sources.remove(&id).unwrap_or_default(),
                };
                let records = server_counts.get(&id).copied().unwrap_or_default();
                Ok(IntelServerRow { server, records })
            })
            .collect::<Result<Vec<_>>>()?;

        let rows = sqlx::query(
            "SELECT ms.server_id AS server_id, r.institution_id AS institution_id,
                    COUNT(*) AS n_records, COUNT(DISTINCT vr.victim_id) AS n_victims,
                    MIN(r.fetched_at) AS first_at, MAX(r.fetched_at) AS last_at
             FROM records r
             JOIN monitor_sources ms ON ms.id = r.source_id
             LEFT JOIN victim_records vr ON vr.record_id = r.id
             WHERE ms.server_id IS NOT NULL AND r.institution_id IS NOT NULL
             GROUP BY ms.server_id, r.institution_id
             ORDER BY ms.server_id, r.institution_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let server_institutions = rows
            .iter()
            .map(|r| {
                Ok(ServerInstitutionCounts {
                    server_id: r.try_get("server_id")?,
                    institution_id: r.try_get("institution_id")?,
                    records: counts(r)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        // Botnets: from the records a drop stored, and from the configs that revealed a server.
        let rows = sqlx::query(
            "SELECT ms.server_id AS server_id, r.botnet AS botnet, COUNT(*) AS n_records,
                    MIN(r.fetched_at) AS first_at, MAX(r.fetched_at) AS last_at
             FROM records r
             JOIN monitor_sources ms ON ms.id = r.source_id
             WHERE ms.server_id IS NOT NULL AND r.botnet <> ''
             GROUP BY ms.server_id, r.botnet
             ORDER BY ms.server_id, r.botnet",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut server_botnets = rows
            .iter()
            .map(|r| {
                Ok(ServerBotnet {
                    server_id: r.try_get("server_id")?,
                    family: None,
                    botnet: Some(r.try_get("botnet")?),
                    n_records: r.try_get("n_records")?,
                    first_at: r.try_get("first_at")?,
                    last_at: r.try_get("last_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = sqlx::query(
            "SELECT ss.server_id AS server_id, c.family AS family, c.botnet AS botnet,
                    MIN(c.created_at) AS first_at, MAX(c.created_at) AS last_at
             FROM server_sources ss
             JOIN configs c ON ss.source = 'config:' || c.canonical_hash
             GROUP BY ss.server_id, c.family, c.botnet
             ORDER BY ss.server_id, c.family, c.botnet",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            server_botnets.push(ServerBotnet {
                server_id: r.try_get("server_id")?,
                family: Some(r.try_get("family")?),
                botnet: r.try_get("botnet")?,
                n_records: 0,
                first_at: r.try_get("first_at")?,
                last_at: r.try_get("last_at")?,
            });
        }

        // Institutions targeted by the injects of the webinjects file or config that revealed
        // a server.
        let rows = sqlx::query(
            "SELECT DISTINCT ss.server_id AS server_id, inj.institution_id AS institution_id
             FROM server_sources ss
             JOIN samples s ON ss.source = 'webinjects:' || s.sha256
             JOIN injects inj ON inj.sample_id = s.id
             WHERE inj.institution_id IS NOT NULL
             UNION
             SELECT DISTINCT ss.server_id AS server_id, inj.institution_id AS institution_id
             FROM server_sources ss
             JOIN configs c ON ss.source = 'config:' || c.canonical_hash
             JOIN injects inj ON inj.sample_id = c.sample_id
             WHERE inj.institution_id IS NOT NULL
             ORDER BY server_id, institution_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let server_targets = rows
            .iter()
            .map(|r| {
                Ok(ServerTarget {
                    server_id: r.try_get("server_id")?,
                    institution_id: r.try_get("institution_id")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let rows = sqlx::query(
            "SELECT s.sha256 AS sha256, s.kind AS kind, s.name AS name, s.family AS family,
                    s.first_seen AS first_seen, ss.server_id AS server_id, NULL AS botnet
             FROM server_sources ss
             JOIN samples s ON ss.source = 'webinjects:' || s.sha256
             UNION ALL
             SELECT s.sha256 AS sha256, s.kind AS kind, s.name AS name,
                    COALESCE(s.family, c.family) AS family, s.first_seen AS first_seen,
                    NULL AS server_id, c.botnet AS botnet
             FROM configs c
             JOIN samples s ON s.id = c.sample_id
             ORDER BY sha256, server_id, botnet",
        )
        .fetch_all(&self.pool)
        .await?;
        let samples = rows
            .iter()
            .map(|r| {
                Ok(IntelSample {
                    sha256: r.try_get("sha256")?,
                    kind: r.try_get("kind")?,
                    name: r.try_get("name")?,
                    family: r.try_get("family")?,
                    first_seen: r.try_get("first_seen")?,
                    server_id: r.try_get("server_id")?,
                    botnet: r.try_get("botnet")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let rows = sqlx::query(
            "SELECT family, botnet, COUNT(*) AS n_configs, MIN(created_at) AS first_at,
                    MAX(created_at) AS last_at
             FROM configs GROUP BY family, botnet ORDER BY family, botnet",
        )
        .fetch_all(&self.pool)
        .await?;
        let configs = rows
            .iter()
            .map(|r| {
                Ok(ConfigFamily {
                    family: r.try_get("family")?,
                    botnet: r.try_get("botnet")?,
                    n_configs: r.try_get("n_configs")?,
                    first_at: r.try_get("first_at")?,
                    last_at: r.try_get("last_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let institutions = self.intel_institutions().await?;
        self.audit(
            actor,
            "read_intel",
            &format!(
                "servers={} institutions={} (aggregates only)",
                servers.len(),
                institutions.len()
            ),
        )
        .await?;
        Ok(IntelSnapshot {
            servers,
            server_institutions,
            server_botnets,
            server_targets,
            samples,
            configs,
            institutions,
        })
    }

    async fn intel_institutions(&self) -> Result<Vec<IntelInstitution>> {
        let rows = sqlx::query(
            "SELECT i.id AS id, i.name AS name, i.country AS country, i.domains AS domains,
                    i.url_masks AS url_masks, i.created_at AS created_at,
                    (SELECT COUNT(*) FROM injects inj WHERE inj.institution_id = i.id) AS n_injects,
                    (SELECT COUNT(*) FROM victims v WHERE v.institution_id = i.id) AS n_victims,
                    (SELECT MIN(v.first_seen) FROM victims v WHERE v.institution_id = i.id) AS victims_first_seen,
                    (SELECT MAX(v.last_seen) FROM victims v WHERE v.institution_id = i.id) AS victims_last_seen
             FROM institutions i ORDER BY i.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let per_inst = sqlx::query(
            "SELECT r.institution_id AS institution_id, COUNT(*) AS n_records,
                    COUNT(DISTINCT vr.victim_id) AS n_victims,
                    MIN(r.fetched_at) AS first_at, MAX(r.fetched_at) AS last_at
             FROM records r LEFT JOIN victim_records vr ON vr.record_id = r.id
             WHERE r.institution_id IS NOT NULL
             GROUP BY r.institution_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut record_counts = HashMap::with_capacity(per_inst.len());
        for r in &per_inst {
            record_counts.insert(r.try_get::<String, _>("institution_id")?, counts(r)?);
        }
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let records = record_counts.get(&id).copied().unwrap_or_default();
                Ok(IntelInstitution {
                    institution: Institution {
                        name: r.try_get("name")?,
                        country: r.try_get("country")?,
                        domains: json_list(&r.try_get::<String, _>("domains")?, "institutions")?,
                        url_masks: json_list(
                            &r.try_get::<String, _>("url_masks")?,
                            "institutions",
                        )?,
                        // Form field rules are configuration, not intelligence.
                        account_fields: Vec::new(),
                        id,
                    },
                    created_at: r.try_get("created_at")?,
                    n_injects: r.try_get("n_injects")?,
                    records,
                    n_victims: r.try_get("n_victims")?,
                    victims_first_seen: r.try_get("victims_first_seen")?,
                    victims_last_seen: r.try_get("victims_last_seen")?,
                })
            })
            .collect()
    }
}
