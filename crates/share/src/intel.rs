//! The neutral value every export is written from: what can be shared, with noise removed.
//!
//! [`Intel::build`] turns the store's aggregates ([`IntelSnapshot`]) into servers with their
//! botnets, families and targeted institutions, and counts. Allow-listed servers are dropped
//! here, once, so that no exporter can forget to: each is only reported in
//! [`Intel::suppressed`] with its reason.
//!
//! **Architecture Invariant:** an `Intel` holds no victim data: no account, secret, bot id,
//! victim address or record. Victims exist here only as counts. Nor does it hold a password
//! from a server's URL (`ftp://user:pass@drop/` in a config): that would open the drop, and the
//! victims' data on it, to every recipient of a feed. The URL is shared without it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use dropwatch_model::{Micros, ServerRole};
use dropwatch_store::{IntelSnapshot, RecordCounts, ServerBotnet, ServerInstitutionCounts};
use serde::Serialize;

use crate::allow::{normalise_host, AllowList, AllowReason};

/// Records and victims behind an indicator, as counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub records: i64,
    pub victims: i64,
    pub first_seen: Option<Micros>,
    pub last_seen: Option<Micros>,
}

impl From<RecordCounts> for Counts {
    fn from(c: RecordCounts) -> Counts {
        Counts {
            records: c.n_records,
            victims: c.n_victims,
            first_seen: c.first_at,
            last_seen: c.last_at,
        }
    }
}

/// What kind of host a server is on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum HostKind {
    Domain(String),
    Ipv4(String),
    Ipv6(String),
}

impl HostKind {
    fn of(host: &str) -> Option<HostKind> {
        let h = normalise_host(host)?;
        Some(match h.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => HostKind::Ipv4(ip.to_string()),
            Ok(IpAddr::V6(ip)) => HostKind::Ipv6(ip.to_string()),
            Err(_) => HostKind::Domain(h),
        })
    }

    pub fn value(&self) -> &str {
        match self {
            HostKind::Domain(v) | HostKind::Ipv4(v) | HostKind::Ipv6(v) => v,
        }
    }
}

/// A botnet, named by the family (if known) and the botnet name (if known). Both `None` is the
/// catch-all of servers tied to no botnet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct BotnetKey {
    pub family: Option<String>,
    pub botnet: Option<String>,
}

/// Records of one institution's customers a server received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstitutionHits {
    pub institution_id: String,
    pub counts: Counts,
}

/// A criminal server that may be shared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub url: String,
    pub host: HostKind,
    pub role: ServerRole,
    /// When dropwatch first and last saw the server named (in an inject, a config...).
    pub first_seen: Micros,
    pub last_seen: Micros,
    /// Where it was found: `webinjects:<sha256>`, `config:<hash>`, ...
    pub sources: Vec<String>,
    /// Records fetched from it (a drop or ATS panel dropwatch watches).
    pub counts: Counts,
    pub botnets: Vec<BotnetKey>,
    /// Institutions it targets: by the injects that revealed it, or by the records it holds.
    pub targets: Vec<String>,
    pub hits: Vec<InstitutionHits>,
}

impl Server {
    /// The last time anything about this server changed: it was seen again or it received a
    /// record. Exports derive `modified` from it.
    pub fn modified(&self) -> Micros {
        self.last_seen.max(self.counts.last_seen.unwrap_or(0))
    }
}

/// A botnet and what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Botnet {
    pub key: BotnetKey,
    pub first_seen: Micros,
    pub last_seen: Micros,
    /// Configs stored for it.
    pub n_configs: i64,
    /// Indexes into [`Intel::servers`].
    pub servers: Vec<usize>,
}

/// An institution the shared servers target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetedInstitution {
    pub id: String,
    pub name: String,
    pub country: String,
    pub domains: Vec<String>,
    /// When it was registered (the identity's `created`).
    pub registered_at: Micros,
    pub injects: i64,
    pub counts: Counts,
}

/// The sample kinds that are files someone can hold and match by hash: a webinjects file, an
/// encrypted dynamic config, a bot image.
pub const SAMPLE_FILE_KINDS: [&str; 3] = ["webinjects", "config_bin", "pe"];

/// What a sample kind is, in words.
pub fn sample_words(kind: &str) -> &'static str {
    match kind {
        "webinjects" => "webinjects file",
        "config_bin" => "encrypted dynamic config",
        "pe" => "bot image",
        _ => "file",
    }
}

/// A sample's hash and where it belongs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub sha256: String,
    pub kind: String,
    pub family: Option<String>,
    pub first_seen: Micros,
    pub botnets: Vec<BotnetKey>,
}

/// A server kept out of every export, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    pub url: String,
    pub host: String,
    pub role: ServerRole,
    pub reason: AllowReason,
}

/// What may be shared. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Intel {
    /// Sorted by URL, then role.
    pub servers: Vec<Server>,
    /// Sorted by key.
    pub botnets: Vec<Botnet>,
    /// Families known (lower case, as the store keeps them), sorted.
    pub families: Vec<String>,
    /// Sorted by id.
    pub institutions: Vec<TargetedInstitution>,
    /// Sorted by hash.
    pub samples: Vec<Sample>,
    /// Sorted by URL, then role.
    pub suppressed: Vec<Suppressed>,
}

impl Intel {
    /// Builds the shareable view of a snapshot, dropping every server the allow-list (plus the
    /// institutions' own domains, which the caller adds) or the host check rejects.
    pub fn build(snapshot: &IntelSnapshot, allow: &AllowList) -> Intel {
        // Botnet name → family, from configs: a drop's records name the botnet, a config of the
        // same botnet names the family.
        let mut family_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for c in &snapshot.configs {
            if let Some(b) = &c.botnet {
                family_of.entry(b).or_default().insert(&c.family);
            }
        }
        let key_for = |family: Option<&str>, botnet: Option<&str>| -> Vec<BotnetKey> {
            match (family, botnet) {
                (Some(f), b) => vec![BotnetKey {
                    family: Some(f.to_string()),
                    botnet: b.map(str::to_string),
                }],
                (None, Some(b)) => match family_of.get(b) {
                    Some(fams) => fams
                        .iter()
                        .map(|f| BotnetKey {
                            family: Some(f.to_string()),
                            botnet: Some(b.to_string()),
                        })
                        .collect(),
                    None => vec![BotnetKey {
                        family: None,
                        botnet: Some(b.to_string()),
                    }],
                },
                (None, None) => Vec::new(),
            }
        };

        // Links by server id, so that building is linear in the snapshot.
        let mut botnets_of: HashMap<i64, Vec<&ServerBotnet>> = HashMap::new();
        for b in &snapshot.server_botnets {
            botnets_of.entry(b.server_id).or_default().push(b);
        }
        let mut hits_of: HashMap<i64, Vec<&ServerInstitutionCounts>> = HashMap::new();
        for h in &snapshot.server_institutions {
            hits_of.entry(h.server_id).or_default().push(h);
        }
        let mut targets_of: HashMap<i64, Vec<&str>> = HashMap::new();
        for t in &snapshot.server_targets {
            targets_of
                .entry(t.server_id)
                .or_default()
                .push(&t.institution_id);
        }
        let mut servers = Vec::new();
        let mut suppressed = Vec::new();
        let mut server_ids = Vec::new();
        for row in &snapshot.servers {
            let s = &row.server;
            let host = HostKind::of(&s.host)
                .or_else(|| dropwatch_masks::host_of(&s.url).and_then(|h| HostKind::of(&h)));
            let reason = match &host {
                Some(h) => allow.check(&s.url, h.value()),
                None => None,
            };
            let Some(host) = host else {
                continue; // no host: nothing a consumer could block
            };
            let url = dropwatch_store::split_password(&s.url).0;
            if let Some(reason) = reason {
                suppressed.push(Suppressed {
                    url,
                    host: host.value().to_string(),
                    role: s.role,
                    reason,
                });
                continue;
            }
            let mut botnets: Vec<BotnetKey> = botnets_of
                .get(&s.id)
                .into_iter()
                .flatten()
                .flat_map(|b| key_for(b.family.as_deref(), b.botnet.as_deref()))
                .collect();
            botnets.sort();
            botnets.dedup();
            let hits: Vec<InstitutionHits> = hits_of
                .get(&s.id)
                .into_iter()
                .flatten()
                .map(|h| InstitutionHits {
                    institution_id: h.institution_id.clone(),
                    counts: h.records.into(),
                })
                .collect();
            let mut targets: Vec<String> = targets_of
                .get(&s.id)
                .into_iter()
                .flatten()
                .map(|t| t.to_string())
                .chain(hits.iter().map(|h| h.institution_id.clone()))
                .collect();
            targets.sort();
            targets.dedup();
            server_ids.push(s.id);
            servers.push(Server {
                url,
                host,
                role: s.role,
                first_seen: s.first_seen,
                last_seen: s.last_seen,
                sources: s.sources.clone(),
                counts: row.records.into(),
                botnets,
                targets,
                hits,
            });
        }
        // A server tied to no botnet (a script host: no records name one) belongs to the
        // botnets of the servers found in the same webinjects file or config.
        let mut by_source: HashMap<&str, BTreeSet<BotnetKey>> = HashMap::new();
        for srv in &servers {
            for src in &srv.sources {
                by_source
                    .entry(src.as_str())
                    .or_default()
                    .extend(srv.botnets.iter().cloned());
            }
        }
        let inherited: Vec<Vec<BotnetKey>> = servers
            .iter()
            .map(|srv| {
                if !srv.botnets.is_empty() {
                    return Vec::new();
                }
                let keys: BTreeSet<BotnetKey> = srv
                    .sources
                    .iter()
                    .filter_map(|src| by_source.get(src.as_str()))
                    .flatten()
                    .cloned()
                    .collect();
                keys.into_iter().collect()
            })
            .collect();
        for (s, keys) in servers.iter_mut().zip(inherited) {
            if s.botnets.is_empty() {
                s.botnets = keys;
            }
        }
        // Sort servers, keeping the store ids in step for the sample links below.
        let mut order: Vec<usize> = (0..servers.len()).collect();
        order.sort_by(|&a, &b| {
            (&servers[a].url, servers[a].role.as_str())
                .cmp(&(&servers[b].url, servers[b].role.as_str()))
        });
        let servers: Vec<Server> = order.iter().map(|&i| servers[i].clone()).collect();
        let index_of: HashMap<i64, usize> = order
            .iter()
            .enumerate()
            .map(|(new_idx, &old_idx)| (server_ids[old_idx], new_idx))
            .collect();
        suppressed.sort_by(|a, b| (&a.url, a.role.as_str()).cmp(&(&b.url, b.role.as_str())));

        // Botnets: every key a shared server carries, and every config family/botnet.
        let mut botnets: BTreeMap<BotnetKey, Botnet> = BTreeMap::new();
        for (idx, s) in servers.iter().enumerate() {
            let keys = if s.botnets.is_empty() {
                vec![BotnetKey {
                    family: None,
                    botnet: None,
                }]
            } else {
                s.botnets.clone()
            };
            for key in keys {
                let b = botnets.entry(key.clone()).or_insert_with(|| Botnet {
                    key,
                    first_seen: s.first_seen,
                    last_seen: s.modified(),
                    n_configs: 0,
                    servers: Vec::new(),
                });
                b.first_seen = b.first_seen.min(s.first_seen);
                b.last_seen = b.last_seen.max(s.modified());
                b.servers.push(idx);
            }
        }
        for c in &snapshot.configs {
            let key = BotnetKey {
                family: Some(c.family.clone()),
                botnet: c.botnet.clone(),
            };
            let b = botnets.entry(key.clone()).or_insert_with(|| Botnet {
                key,
                first_seen: c.first_at,
                last_seen: c.last_at,
                n_configs: 0,
                servers: Vec::new(),
            });
            b.n_configs += c.n_configs;
            b.first_seen = b.first_seen.min(c.first_at);
            b.last_seen = b.last_seen.max(c.last_at);
        }
        let botnets: Vec<Botnet> = botnets.into_values().collect();

        // Samples: the webinjects files behind shared servers, and the configs' samples.
        let mut samples: BTreeMap<String, Sample> = BTreeMap::new();
        for smp in &snapshot.samples {
            // Only real files are shared by hash: a `config_report` sample is named by the hash
            // of a report's canonical JSON, which no file anywhere has.
            if !SAMPLE_FILE_KINDS.contains(&smp.kind.as_str()) {
                continue;
            }
            let keys: Vec<BotnetKey> = match (smp.server_id, &smp.botnet) {
                (Some(id), _) => match index_of.get(&id) {
                    Some(&idx) => servers[idx].botnets.clone(),
                    None => continue, // the server it revealed is suppressed: so is the file
                },
                (None, botnet) => key_for(smp.family.as_deref(), botnet.as_deref()),
            };
            let entry = samples.entry(smp.sha256.clone()).or_insert_with(|| Sample {
                sha256: smp.sha256.clone(),
                kind: smp.kind.clone(),
                family: smp.family.clone(),
                first_seen: smp.first_seen,
                botnets: Vec::new(),
            });
            entry.botnets.extend(keys);
            entry.botnets.sort();
            entry.botnets.dedup();
            if entry.family.is_none() {
                entry.family.clone_from(&smp.family);
            }
        }
        let samples: Vec<Sample> = samples.into_values().collect();

        let targeted: BTreeSet<&str> = servers
            .iter()
            .flat_map(|s| s.targets.iter().map(String::as_str))
            .collect();
        let institutions = snapshot
            .institutions
            .iter()
            .filter(|i| targeted.contains(i.institution.id.as_str()))
            .map(|i| TargetedInstitution {
                id: i.institution.id.clone(),
                name: i.institution.name.clone(),
                country: i.institution.country.clone(),
                domains: i.institution.domains.clone(),
                registered_at: i.created_at,
                injects: i.n_injects,
                counts: Counts {
                    records: i.records.n_records,
                    victims: i.n_victims,
                    first_seen: i.records.first_at,
                    last_seen: i.records.last_at,
                },
            })
            .collect();

        let mut families: Vec<String> = botnets
            .iter()
            .filter_map(|b| b.key.family.clone())
            .chain(samples.iter().filter_map(|s| s.family.clone()))
            .collect();
        families.sort();
        families.dedup();
        Intel {
            servers,
            botnets,
            families,
            institutions,
            samples,
            suppressed,
        }
    }

    /// The allow-list every export uses: bundled entries plus every institution's domains.
    pub fn default_allow_list(snapshot: &IntelSnapshot) -> AllowList {
        let mut list = AllowList::bundled();
        let institutions: Vec<_> = snapshot
            .institutions
            .iter()
            .map(|i| i.institution.clone())
            .collect();
        list.add_institutions(&institutions);
        list
    }

    /// Suppressed servers per reason, for the export's report.
    pub fn suppressed_by_reason(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in &self.suppressed {
            let key = match &s.reason {
                AllowReason::Bundled => "bundled allow-list".to_string(),
                AllowReason::Institution(_) => "institution's own domain".to_string(),
                AllowReason::UserFile(_) => "allow file".to_string(),
                AllowReason::NonPublicAddress => "non-public address".to_string(),
            };
            *out.entry(key).or_insert(0) += 1;
        }
        out
    }

    /// The institution with this id, if targeted.
    pub fn institution(&self, id: &str) -> Option<&TargetedInstitution> {
        self.institutions.iter().find(|i| i.id == id)
    }
}

/// The display name of a family as the sharing formats spell it (`zeus` → `Zeus`).
pub fn family_display(family: &str) -> String {
    match family {
        "zeus" => "Zeus".to_string(),
        "citadel" => "Citadel".to_string(),
        other => {
            let mut chars = other.chars();
            match chars.next() {
                Some(c) => c.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        }
    }
}
