//! MISP events and a MISP feed directory.
//!
//! One event per botnet (family and botnet name, as far as known) and a catch-all event for
//! servers tied to no botnet. Attributes (MISP core format, category/type defaults as MISP
//! defines them):
//!
//! | type | category | to_ids | value |
//! | --- | --- | --- | --- |
//! | `url` | Network activity | true | a server's URL |
//! | `domain` | Network activity | true | a server's domain |
//! | `ip-dst` | Network activity | true | a server's address |
//! | `sha256` | Payload delivery | true | a sample, config or webinjects file tied to the botnet |
//! | `target-org` | Targeting data | false | an institution the botnet targets (its name) |
//!
//! Tags: the TLP level (`tlp:amber` …), the family's galaxy cluster where one exists
//! (`misp-galaxy:banker="Zeus"`, `misp-galaxy:malpedia="Citadel"`) and ATT&CK T1185
//! (`misp-galaxy:mitre-attack-pattern="Browser Session Hijacking - T1185"`), what web injects are.
//!
//! The feed ([`write_feed`]) is what a MISP instance subscribes to: `manifest.json` (event uuid →
//! summary), one `<uuid>.json` per event (`{"Event": {...}}`) and `hashes.csv`
//! (`md5(value),event uuid` per attribute), as MISP's feed format (and PyMISP's feed generator)
//! lay it out. Uuids are UUIDv5 of natural keys and timestamps come from the data, so a feed
//! regenerated from the same store is byte-identical and MISP sees changes as newer timestamps.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

use dropwatch_model::Micros;
use md5::{Digest, Md5};
use serde_json::{json, Value};

use crate::intel::{family_display, BotnetKey, HostKind, Intel};
use crate::stix::role_words;
use crate::time::{date, stix_timestamp, unix_seconds};
use crate::{stable_uuid, ExportOptions};

/// The ATT&CK technique every event carries: web injects are browser session hijacking.
pub const TAG_T1185: &str =
    "misp-galaxy:mitre-attack-pattern=\"Browser Session Hijacking - T1185\"";

/// The galaxy tag of a family, where the public MISP galaxies have a cluster for it.
pub fn family_galaxy_tag(family: &str) -> Option<String> {
    match family {
        "zeus" => Some("misp-galaxy:banker=\"Zeus\"".to_string()),
        // The banker galaxy has no Citadel cluster; Malpedia's galaxy has.
        "citadel" => Some("misp-galaxy:malpedia=\"Citadel\"".to_string()),
        _ => None,
    }
}

/// `2013-12-01T00:00:00.000000+00:00`, the form MISP writes `first_seen`/`last_seen` in.
fn misp_datetime(micros: Micros) -> String {
    let t = stix_timestamp(micros);
    format!("{}{:03}+00:00", &t[..23], micros.rem_euclid(1000))
}

struct Attr {
    kind: &'static str,
    category: &'static str,
    to_ids: bool,
    value: String,
    comment: String,
    timestamp: Micros,
    first_seen: Option<Micros>,
    last_seen: Option<Micros>,
}

fn event_title(key: &BotnetKey) -> String {
    match (&key.family, &key.botnet) {
        (Some(f), Some(b)) => format!(
            "{} botnet {b}: banking-trojan infrastructure",
            family_display(f)
        ),
        (Some(f), None) => format!(
            "{}: banking-trojan infrastructure (botnet unknown)",
            family_display(f)
        ),
        (None, Some(b)) => format!("Botnet {b} (family unknown): banking-trojan infrastructure"),
        (None, None) => "Banking-trojan infrastructure not tied to a known botnet".to_string(),
    }
}

/// The MISP events of `intel`, each `{"Event": {...}}`, sorted by uuid. With `opts.since`, only
/// events whose timestamp is at or after it.
pub fn events(intel: &Intel, opts: &ExportOptions) -> Vec<Value> {
    let org_uuid = stable_uuid(&[&opts.producer, "misp-org"]).to_string();
    let orgc = json!({ "name": opts.producer, "uuid": org_uuid });
    let mut out = Vec::new();
    for bn in &intel.botnets {
        let event_uuid = stable_uuid(&[
            &opts.producer,
            "misp-event",
            bn.key.family.as_deref().unwrap_or(""),
            bn.key.botnet.as_deref().unwrap_or(""),
        ])
        .to_string();
        let mut attrs: BTreeMap<(&'static str, String), Attr> = BTreeMap::new();
        let mut add = |a: Attr| {
            let key = (a.kind, a.value.clone());
            match attrs.get_mut(&key) {
                Some(old) => {
                    old.timestamp = old.timestamp.max(a.timestamp);
                    if !old.comment.contains(&a.comment) {
                        old.comment = format!("{}; {}", old.comment, a.comment);
                    }
                    old.first_seen = match (old.first_seen, a.first_seen) {
                        (Some(x), Some(y)) => Some(x.min(y)),
                        (x, y) => x.or(y),
                    };
                    old.last_seen = old.last_seen.max(a.last_seen);
                }
                None => {
                    attrs.insert(key, a);
                }
            }
        };
        let mut targets: BTreeMap<String, Micros> = BTreeMap::new();
        for &idx in &bn.servers {
            let s = &intel.servers[idx];
            let mut comment = role_words(s.role).to_string();
            if s.counts.records > 0 {
                comment.push_str(&format!(
                    ", {} records about {} distinct victims (counts only)",
                    s.counts.records, s.counts.victims
                ));
            }
            let seen = (Some(s.first_seen), Some(s.modified()));
            add(Attr {
                kind: "url",
                category: "Network activity",
                to_ids: true,
                value: s.url.clone(),
                comment: comment.clone(),
                timestamp: s.modified(),
                first_seen: seen.0,
                last_seen: seen.1,
            });
            let (kind, host_comment) = match &s.host {
                HostKind::Domain(_) => ("domain", format!("host of a {}", role_words(s.role))),
                HostKind::Ipv4(_) | HostKind::Ipv6(_) => {
                    ("ip-dst", format!("address of a {}", role_words(s.role)))
                }
            };
            add(Attr {
                kind,
                category: "Network activity",
                to_ids: true,
                value: s.host.value().to_string(),
                comment: host_comment,
                timestamp: s.modified(),
                first_seen: seen.0,
                last_seen: seen.1,
            });
            for t in &s.targets {
                let e = targets.entry(t.clone()).or_insert(s.first_seen);
                *e = (*e).min(s.first_seen);
            }
        }
        for smp in intel
            .samples
            .iter()
            .filter(|smp| smp.botnets.contains(&bn.key))
        {
            let what = crate::intel::sample_words(&smp.kind);
            add(Attr {
                kind: "sha256",
                category: "Payload delivery",
                to_ids: true,
                value: smp.sha256.clone(),
                comment: what.to_string(),
                timestamp: smp.first_seen,
                first_seen: None,
                last_seen: None,
            });
        }
        for (inst_id, since) in &targets {
            let Some(inst) = intel.institution(inst_id) else {
                continue;
            };
            add(Attr {
                kind: "target-org",
                category: "Targeting data",
                to_ids: false,
                value: inst.name.clone(),
                comment: format!(
                    "financial institution ({}), targeted by the injects",
                    inst.country
                ),
                timestamp: *since,
                first_seen: None,
                last_seen: None,
            });
        }
        if attrs.is_empty() {
            continue;
        }
        let event_ts = attrs
            .values()
            .map(|a| a.timestamp)
            .max()
            .unwrap_or(bn.last_seen);
        if opts
            .since
            .is_some_and(|t| unix_seconds(event_ts) < unix_seconds(t))
        {
            continue;
        }
        let attributes: Vec<Value> = attrs
            .values()
            .map(|a| {
                let mut v = json!({
                    "uuid": stable_uuid(&[&event_uuid, a.kind, &a.value]).to_string(),
                    "type": a.kind,
                    "category": a.category,
                    "value": a.value,
                    "to_ids": a.to_ids,
                    "distribution": "5",
                    "timestamp": unix_seconds(a.timestamp).to_string(),
                    "comment": a.comment,
                    "deleted": false,
                    "disable_correlation": false,
                });
                if let Some(f) = a.first_seen {
                    v["first_seen"] = json!(misp_datetime(f));
                }
                if let Some(l) = a.last_seen {
                    v["last_seen"] = json!(misp_datetime(l.max(a.first_seen.unwrap_or(l))));
                }
                v
            })
            .collect();
        let mut tags = vec![json!({
            "name": opts.tlp.misp_tag(),
            "colour": opts.tlp.misp_colour(),
            "exportable": true,
        })];
        if let Some(tag) = bn.key.family.as_deref().and_then(family_galaxy_tag) {
            tags.push(json!({ "name": tag, "colour": "#0088cc", "exportable": true }));
        }
        tags.push(json!({ "name": TAG_T1185, "colour": "#0088cc", "exportable": true }));
        let first = bn.first_seen.min(event_ts);
        out.push(json!({
            "Event": {
                "uuid": event_uuid,
                "info": format!("{} (dropwatch)", event_title(&bn.key)),
                "date": date(first),
                "timestamp": unix_seconds(event_ts).to_string(),
                "publish_timestamp": unix_seconds(event_ts).to_string(),
                "published": true,
                "analysis": "2",
                "threat_level_id": "2",
                "distribution": opts.misp_distribution.to_string(),
                "sharing_group_id": "0",
                "Orgc": orgc,
                "Tag": tags,
                "Attribute": attributes,
            }
        }));
    }
    out.sort_by(|a, b| {
        a["Event"]["uuid"]
            .as_str()
            .cmp(&b["Event"]["uuid"].as_str())
    });
    out
}

/// The feed's `manifest.json`: event uuid → the event's summary.
pub fn manifest(events: &[Value]) -> Value {
    let mut m = serde_json::Map::new();
    for e in events {
        let ev = &e["Event"];
        let Some(uuid) = ev["uuid"].as_str() else {
            continue;
        };
        let tags: Vec<Value> = ev["Tag"]
            .as_array()
            .map(|t| {
                t.iter()
                    .map(|t| json!({ "name": t["name"], "colour": t["colour"] }))
                    .collect()
            })
            .unwrap_or_default();
        m.insert(
            uuid.to_string(),
            json!({
                "info": ev["info"],
                "Orgc": ev["Orgc"],
                "analysis": ev["analysis"],
                "timestamp": ev["timestamp"],
                "date": ev["date"],
                "threat_level_id": ev["threat_level_id"],
                "Tag": tags,
            }),
        );
    }
    Value::Object(m)
}

/// The feed's `hashes.csv`: `md5(value),event uuid` per attribute, composite values (`a|b`)
/// hashed per half, sorted.
pub fn hashes_csv(events: &[Value]) -> String {
    let mut lines = BTreeSet::new();
    for e in events {
        let ev = &e["Event"];
        let uuid = ev["uuid"].as_str().unwrap_or_default();
        for a in ev["Attribute"].as_array().into_iter().flatten() {
            let value = a["value"].as_str().unwrap_or_default();
            let kind = a["type"].as_str().unwrap_or_default();
            let parts: Vec<&str> = if kind.contains('|') {
                value.split('|').collect()
            } else {
                vec![value]
            };
            for p in parts {
                let digest = Md5::digest(p.as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                lines.insert(format!("{hex},{uuid}"));
            }
        }
    }
    lines.into_iter().map(|l| l + "\n").collect()
}

/// What [`write_feed`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FeedSummary {
    pub events: usize,
    pub attributes: usize,
    /// Event files of earlier runs that are no longer in the feed, removed.
    pub removed: usize,
}

fn is_event_file(name: &str) -> bool {
    name.strip_suffix(".json")
        .is_some_and(|stem| uuid::Uuid::parse_str(stem).is_ok() && stem.len() == 36)
}

/// Writes a MISP feed directory: `manifest.json`, `<uuid>.json` per event, `hashes.csv`.
/// Event files of an earlier run that are no longer in the feed are removed; nothing else in
/// the directory is touched.
pub fn write_feed(dir: &Path, events: &[Value]) -> io::Result<FeedSummary> {
    std::fs::create_dir_all(dir)?;
    let mut keep = BTreeSet::new();
    let mut attributes = 0;
    for e in events {
        let uuid = e["Event"]["uuid"].as_str().unwrap_or_default();
        let name = format!("{uuid}.json");
        attributes += e["Event"]["Attribute"].as_array().map_or(0, Vec::len);
        write_if_changed(&dir.join(&name), &pretty(e))?;
        keep.insert(name);
    }
    write_if_changed(&dir.join("manifest.json"), &pretty(&manifest(events)))?;
    write_if_changed(&dir.join("hashes.csv"), hashes_csv(events).as_bytes())?;
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_event_file(&name) && !keep.contains(&name) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(FeedSummary {
        events: events.len(),
        attributes,
        removed,
    })
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Writes through a temporary file and a rename, so a MISP instance fetching the feed never
/// reads half a file; an unchanged file is not rewritten (its mtime stays).
fn write_if_changed(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misp_datetimes_have_microseconds_and_an_offset() {
        assert_eq!(
            misp_datetime(1_385_856_000_123_456),
            "2013-12-01T00:00:00.123456+00:00"
        );
    }

    #[test]
    fn hashes_are_md5_of_each_value_and_of_each_half_of_a_composite() {
        let events = vec![json!({"Event": {"uuid": "u1", "Attribute": [
            {"type": "url", "value": "http://a.example/"},
            {"type": "filename|sha256", "value": "a.exe|abc"},
        ]}})];
        let csv = hashes_csv(&events);
        let md5 = |s: &str| -> String {
            Md5::digest(s.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        assert!(csv.contains(&format!("{},u1\n", md5("http://a.example/"))));
        assert!(csv.contains(&format!("{},u1\n", md5("a.exe"))));
        assert!(csv.contains(&format!("{},u1\n", md5("abc"))));
        assert_eq!(csv.lines().count(), 3);
    }
}
