//! STIX 2.1 bundles.
//!
//! What a bundle holds (spec: OASIS STIX 2.1, sections 4–7 and 10):
//!
//! - the TLP `marking-definition` chosen (the spec's fixed TLP 1.0 objects), referenced by every
//!   other object's `object_marking_refs`;
//! - an `identity` for the producer (`created_by_ref` of every SDO and SRO) and one per targeted
//!   institution (`identity_class: organization`, `sectors: [financial-services]`);
//! - a `malware` per known family (`is_family: true`);
//! - an `infrastructure` per server (type from its role) and per named botnet (`botnet`);
//! - the SCOs `url`, `domain-name`, `ipv4-addr`, `ipv6-addr` with the spec's deterministic ids;
//! - an `indicator` per URL, domain and address, with a STIX pattern;
//! - `relationship`s: indicator `indicates` infrastructure and malware, infrastructure
//!   `consists-of` its SCOs and servers, malware `uses` infrastructure, malware `targets`
//!   identity;
//! - a `sighting` per URL indicator and institution whose customers' records the server held:
//!   `count`, `first_seen`, `last_seen` instead of any victim row.
//!
//! Ids: SCOs by the spec's UUIDv5 rule (namespace [`SCO_NAMESPACE`] over the canonical JSON of
//! the id-contributing properties, here `value`); every other object by a name-based hash of a
//! natural key (producer, type, key) in the layout of a UUIDv4, which the spec asks SDO and SRO
//! ids to be ([`crate::stable_uuid_v4_layout`]). `created` is when the data was first seen and
//! `modified` when it last changed, both from the store, never from the clock: exporting the
//! same store twice gives the same bytes; new data gives a newer `modified` on the same id.

use std::collections::{BTreeMap, BTreeSet};

use dropwatch_model::{Micros, ServerRole};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::intel::{family_display, sample_words, BotnetKey, HostKind, Intel, Server};
use crate::time::stix_timestamp;
use crate::{stable_uuid_v4_layout, ExportOptions, Tlp};

/// The namespace the STIX 2.1 spec fixes for deterministic SCO ids (section 2.9).
pub const SCO_NAMESPACE: Uuid = Uuid::from_u128(0x00ab_edb4_aa42_466c_9c01_fed2_3315_a9b7);

/// `created` of the producer identity: fixed, so the producer object never gets a new version.
const PRODUCER_CREATED: Micros = 1_577_836_800_000_000; // 2020-01-01T00:00:00Z

/// `count` of a sighting is capped by the spec at 999,999,999.
const MAX_COUNT: i64 = 999_999_999;

/// The spec's TLP 1.0 marking definition for a level: (id, name, tlp value).
fn tlp_marking(tlp: Tlp) -> Value {
    let (uuid, name, value) = match tlp {
        Tlp::Clear => ("613f2e26-407d-48c7-9eca-b8e91df99dc9", "TLP:WHITE", "white"),
        Tlp::Green => ("34098fce-860f-48ae-8e50-ebd3cc5e41da", "TLP:GREEN", "green"),
        Tlp::Amber => ("f88d31f6-486f-44da-b317-01333bde0b82", "TLP:AMBER", "amber"),
        Tlp::Red => ("5e57c739-391a-4eb3-b6be-7d15ca92d5ed", "TLP:RED", "red"),
    };
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": format!("marking-definition--{uuid}"),
        "created": "2017-01-20T00:00:00.000Z",
        "definition_type": "tlp",
        "name": name,
        "definition": { "tlp": value },
    })
}

/// The deterministic id of an SCO whose only id-contributing property is `value`.
pub fn sco_id(sco_type: &str, value: &str) -> String {
    contributing_id(sco_type, &json!({ "value": value }))
}

/// The spec's id of a `file` SCO known by its SHA-256 alone (id-contributing `hashes`).
pub fn file_sco_id(sha256: &str) -> String {
    contributing_id("file", &json!({ "hashes": { "SHA-256": sha256 } }))
}

/// UUIDv5 in [`SCO_NAMESPACE`] over the canonical JSON (RFC 8785: keys sorted, no blanks, which
/// `serde_json` gives for these one-level objects) of the id-contributing properties.
fn contributing_id(sco_type: &str, contributing: &Value) -> String {
    let canonical = serde_json::to_string(contributing).unwrap_or_default();
    format!(
        "{sco_type}--{}",
        Uuid::new_v5(&SCO_NAMESPACE, canonical.as_bytes())
    )
}

/// A dropwatch id for an SDO or SRO of `object_type` with a natural key. The producer is part
/// of the key: two producers sharing the same server make two objects, each its own.
fn dw_id(producer: &str, object_type: &str, key: &[&str]) -> String {
    let mut parts = vec![producer, object_type];
    parts.extend_from_slice(key);
    format!("{object_type}--{}", stable_uuid_v4_layout(&parts))
}

/// A STIX string literal: `'` and `\` escaped, as the patterning grammar requires.
pub fn pattern_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A URL as an RFC 3986 URI, which the `url` SCO's `value` must be: every byte outside the
/// URI characters (space, `"`, `\`, `<`, `>`, `^`, `` ` ``, `{`, `|`, `}`, controls, non-ASCII)
/// is percent-encoded, as is a `%` that does not start an escape; a URL without a scheme gets
/// `http://`. The attacker's text is otherwise kept as written (infrastructure names, CSV and
/// MISP keep it verbatim).
pub fn uri_value(url: &str) -> String {
    let url = url.trim();
    let has_scheme = url.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.as_bytes()[0].is_ascii_alphabetic()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    });
    let mut out = String::with_capacity(url.len() + 8);
    if !has_scheme {
        out.push_str("http://");
    }
    let bytes = url.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let allowed = b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b);
        let escape_start = b == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        if allowed || escape_start {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SCO type and pattern object path of a host.
fn host_sco_type(host: &HostKind) -> &'static str {
    match host {
        HostKind::Domain(_) => "domain-name",
        HostKind::Ipv4(_) => "ipv4-addr",
        HostKind::Ipv6(_) => "ipv6-addr",
    }
}

/// The `infrastructure_types` of a server role (infrastructure-type-ov).
fn infrastructure_types(role: ServerRole) -> &'static [&'static str] {
    match role {
        ServerRole::C2Gate => &["command-and-control"],
        // The dynamic config holds the target list.
        ServerRole::ConfigUrl => &["command-and-control", "hosting-target-lists"],
        ServerRole::Loader => &["hosting-malware"],
        ServerRole::Drop => &["exfiltration"],
        ServerRole::AtsPanel => &["command-and-control", "exfiltration"],
        ServerRole::ScriptHost => &["hosting-malware"],
    }
}

/// A role in words, for names and descriptions.
pub fn role_words(role: ServerRole) -> &'static str {
    match role {
        ServerRole::C2Gate => "C2 gate",
        ServerRole::ConfigUrl => "config URL",
        ServerRole::Loader => "loader",
        ServerRole::Drop => "drop server",
        ServerRole::AtsPanel => "ATS panel",
        ServerRole::ScriptHost => "script host",
    }
}

fn botnet_name(key: &BotnetKey) -> Option<String> {
    let b = key.botnet.as_ref()?;
    Some(match &key.family {
        Some(f) => format!("{} botnet {b}", family_display(f)),
        None => format!("botnet {b}"),
    })
}

/// Collects objects, each with its `modified` (for `--since`).
struct Bundle<'a> {
    opts: &'a ExportOptions,
    producer_id: String,
    marking_id: String,
    objects: BTreeMap<String, (Option<Micros>, Value)>,
}

impl Bundle<'_> {
    /// Adds an SDO or SRO with the common properties; `modified` is raised to `created`.
    fn sdo(
        &mut self,
        object_type: &str,
        id: String,
        created: Micros,
        modified: Micros,
        mut body: Map<String, Value>,
    ) {
        let modified = modified.max(created);
        body.insert("type".into(), json!(object_type));
        body.insert("spec_version".into(), json!("2.1"));
        body.insert("id".into(), json!(id));
        body.insert("created".into(), json!(stix_timestamp(created)));
        body.insert("modified".into(), json!(stix_timestamp(modified)));
        body.insert("created_by_ref".into(), json!(self.producer_id));
        body.insert("object_marking_refs".into(), json!([self.marking_id]));
        self.objects
            .insert(id, (Some(modified), Value::Object(body)));
    }

    fn sco(&mut self, sco_type: &str, value: &str) -> String {
        let id = sco_id(sco_type, value);
        let obj = json!({
            "type": sco_type,
            "spec_version": "2.1",
            "id": id,
            "value": value,
            "object_marking_refs": [self.marking_id],
        });
        self.objects.insert(id.clone(), (None, obj));
        id
    }

    /// A `file` SCO known by its SHA-256.
    fn file_sco(&mut self, sha256: &str) -> String {
        let id = file_sco_id(sha256);
        let obj = json!({
            "type": "file",
            "spec_version": "2.1",
            "id": id,
            "hashes": { "SHA-256": sha256 },
            "object_marking_refs": [self.marking_id],
        });
        self.objects.insert(id.clone(), (None, obj));
        id
    }

    fn relationship(&mut self, source: &str, kind: &str, target: &str, created: Micros) {
        let id = dw_id(&self.opts.producer, "relationship", &[source, kind, target]);
        let mut body = Map::new();
        body.insert("relationship_type".into(), json!(kind));
        body.insert("source_ref".into(), json!(source));
        body.insert("target_ref".into(), json!(target));
        self.sdo("relationship", id, created, created, body);
    }

    fn created_of(&self, id: &str) -> Micros {
        self.objects
            .get(id)
            .and_then(|(_, v)| v.get("created"))
            .and_then(Value::as_str)
            .and_then(crate::time::parse_timestamp)
            .unwrap_or(0)
    }
}

fn obj(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Writes the bundle of `intel` as a JSON value. Objects are sorted by type, then id; the
/// bundle's own id is derived from its objects' ids and versions, so identical content gives an
/// identical bundle.
pub fn bundle(intel: &Intel, opts: &ExportOptions) -> Value {
    let objects = objects(intel, opts);
    let mut key = Vec::with_capacity(objects.len());
    for o in &objects {
        let id = o.get("id").and_then(Value::as_str).unwrap_or("");
        let modified = o.get("modified").and_then(Value::as_str).unwrap_or("");
        key.push(format!("{id}@{modified}"));
    }
    let key_refs: Vec<&str> = key.iter().map(String::as_str).collect();
    json!({
        "type": "bundle",
        "id": dw_id(&opts.producer, "bundle", &key_refs),
        "objects": objects,
    })
}

/// The objects of the bundle, in the bundle's order (see [`bundle`]); what a TAXII collection
/// is given.
pub fn objects(intel: &Intel, opts: &ExportOptions) -> Vec<Value> {
    let producer_id = dw_id(&opts.producer, "identity", &["producer", &opts.producer]);
    let marking = tlp_marking(opts.tlp);
    let marking_id = marking["id"].as_str().unwrap_or_default().to_string();
    let mut b = Bundle {
        opts,
        producer_id: producer_id.clone(),
        marking_id,
        objects: BTreeMap::new(),
    };
    b.objects.insert(b.marking_id.clone(), (None, marking));
    b.sdo(
        "identity",
        producer_id,
        PRODUCER_CREATED,
        PRODUCER_CREATED,
        obj(vec![
            ("name", json!(opts.producer)),
            ("identity_class", json!("organization")),
            (
                "description",
                json!("Producer of this intelligence: banking-trojan infrastructure seen by dropwatch."),
            ),
        ]),
    );

    // Institutions.
    let mut inst_ids = BTreeMap::new();
    for inst in &intel.institutions {
        let id = dw_id(&opts.producer, "identity", &["institution", &inst.id]);
        let mut description = format!("Financial institution ({})", inst.country);
        if !inst.domains.is_empty() {
            description.push_str(&format!("; its own domains: {}", inst.domains.join(", ")));
        }
        description.push('.');
        b.sdo(
            "identity",
            id.clone(),
            inst.registered_at,
            inst.registered_at,
            obj(vec![
                ("name", json!(inst.name)),
                ("identity_class", json!("organization")),
                ("sectors", json!(["financial-services"])),
                ("description", json!(description)),
            ]),
        );
        inst_ids.insert(inst.id.clone(), id);
    }

    // Families: created when first seen, modified when any of its botnets or servers changed.
    let mut malware_ids: BTreeMap<String, String> = BTreeMap::new();
    for family in &intel.families {
        let botnets: Vec<_> = intel
            .botnets
            .iter()
            .filter(|bn| bn.key.family.as_deref() == Some(family))
            .collect();
        let samples: Vec<_> = intel
            .samples
            .iter()
            .filter(|s| s.family.as_deref() == Some(family))
            .collect();
        let created = botnets
            .iter()
            .map(|bn| bn.first_seen)
            .chain(samples.iter().map(|s| s.first_seen))
            .min()
            .unwrap_or(0);
        let modified = botnets
            .iter()
            .map(|bn| bn.last_seen)
            .chain(samples.iter().map(|s| s.first_seen))
            .max()
            .unwrap_or(created);
        let id = dw_id(&opts.producer, "malware", &[family]);
        let mut props = vec![
            ("name", json!(family_display(family))),
            ("is_family", json!(true)),
            ("malware_types", json!(["trojan", "spyware"])),
            (
                "capabilities",
                json!(["steals-authentication-credentials", "captures-input-peripherals"]),
            ),
            (
                "description",
                json!(format!(
                    "{} banking trojan: web injects in the victim's browser that ask for and steal online-banking credentials.",
                    family_display(family)
                )),
            ),
        ];
        // The files of this family held here (bot images, configs, webinjects), by hash.
        let sample_refs: Vec<String> = samples.iter().map(|s| b.file_sco(&s.sha256)).collect();
        if !sample_refs.is_empty() {
            props.push(("sample_refs", json!(sample_refs)));
        }
        b.sdo("malware", id.clone(), created, modified, obj(props));
        malware_ids.insert(family.clone(), id);
    }

    // Servers and their observables.
    let mut server_ids = Vec::with_capacity(intel.servers.len());
    for s in &intel.servers {
        let id = dw_id(&opts.producer, "infrastructure", &[s.role.as_str(), &s.url]);
        let description = server_description(s, intel);
        b.sdo(
            "infrastructure",
            id.clone(),
            s.first_seen,
            s.modified(),
            obj(vec![
                ("name", json!(format!("{} {}", role_words(s.role), s.url))),
                ("infrastructure_types", json!(infrastructure_types(s.role))),
                ("description", json!(description)),
                ("first_seen", json!(stix_timestamp(s.first_seen))),
                ("last_seen", json!(stix_timestamp(s.modified()))),
            ]),
        );
        let url_sco = b.sco("url", &uri_value(&s.url));
        let host_sco = b.sco(host_sco_type(&s.host), s.host.value());
        b.relationship(&id, "consists-of", &url_sco, s.first_seen);
        b.relationship(&id, "consists-of", &host_sco, s.first_seen);
        server_ids.push(id);
    }

    // Botnets as infrastructure; families use them (or the servers directly when no botnet
    // name is known).
    for bn in &intel.botnets {
        let Some(name) = botnet_name(&bn.key) else {
            // A family without a botnet name: its servers belong to the family directly.
            if let Some(mw) = bn
                .key
                .family
                .as_ref()
                .and_then(|f| malware_ids.get(f))
                .cloned()
            {
                for &idx in &bn.servers {
                    let sid = server_ids[idx].clone();
                    let created = intel.servers[idx].first_seen.max(b.created_of(&mw));
                    b.relationship(&mw, "uses", &sid, created);
                }
            }
            continue;
        };
        let id = dw_id(
            &opts.producer,
            "infrastructure",
            &[
                "botnet",
                bn.key.family.as_deref().unwrap_or(""),
                bn.key.botnet.as_deref().unwrap_or(""),
            ],
        );
        let mut description = format!("{name}: ");
        description.push_str(&format!("{} servers shared here", bn.servers.len()));
        if bn.n_configs > 0 {
            description.push_str(&format!(", {} configs decoded", bn.n_configs));
        }
        description.push('.');
        b.sdo(
            "infrastructure",
            id.clone(),
            bn.first_seen,
            bn.last_seen,
            obj(vec![
                ("name", json!(name)),
                ("infrastructure_types", json!(["botnet"])),
                ("description", json!(description)),
                ("first_seen", json!(stix_timestamp(bn.first_seen))),
                (
                    "last_seen",
                    json!(stix_timestamp(bn.last_seen.max(bn.first_seen))),
                ),
            ]),
        );
        for &idx in &bn.servers {
            let sid = server_ids[idx].clone();
            let created = intel.servers[idx].first_seen.max(bn.first_seen);
            b.relationship(&id, "consists-of", &sid, created);
        }
        if let Some(mw) = bn
            .key
            .family
            .as_ref()
            .and_then(|f| malware_ids.get(f))
            .cloned()
        {
            let created = bn.first_seen.max(b.created_of(&mw));
            b.relationship(&mw, "uses", &id, created);
        }
    }

    // Families target the institutions their servers target.
    let mut family_targets: BTreeSet<(String, String, Micros)> = BTreeSet::new();
    for s in &intel.servers {
        for key in &s.botnets {
            let Some(f) = &key.family else { continue };
            for t in &s.targets {
                family_targets.insert((f.clone(), t.clone(), s.first_seen));
            }
        }
    }
    let mut seen_pairs = BTreeSet::new();
    for (family, inst, first) in family_targets {
        if !seen_pairs.insert((family.clone(), inst.clone())) {
            continue; // the set is ordered by time within a pair: the first is the earliest
        }
        if let (Some(mw), Some(ident)) = (
            malware_ids.get(&family).cloned(),
            inst_ids.get(&inst).cloned(),
        ) {
            let created = first.max(b.created_of(&ident));
            b.relationship(&mw, "targets", &ident, created);
        }
    }

    // Indicators: one per URL, domain and address.
    let mut by_value: BTreeMap<(&'static str, String), Vec<usize>> = BTreeMap::new();
    for (idx, s) in intel.servers.iter().enumerate() {
        by_value
            .entry(("url", uri_value(&s.url)))
            .or_default()
            .push(idx);
        by_value
            .entry((host_sco_type(&s.host), s.host.value().to_string()))
            .or_default()
            .push(idx);
    }
    let mut url_indicators: BTreeMap<String, String> = BTreeMap::new();
    for ((kind, value), servers) in &by_value {
        let created = servers
            .iter()
            .map(|&i| intel.servers[i].first_seen)
            .min()
            .unwrap_or(0);
        let modified = servers
            .iter()
            .map(|&i| intel.servers[i].modified())
            .max()
            .unwrap_or(0);
        let id = dw_id(&opts.producer, "indicator", &[kind, value]);
        let roles: BTreeSet<&str> = servers
            .iter()
            .map(|&i| role_words(intel.servers[i].role))
            .collect();
        let roles: Vec<&str> = roles.into_iter().collect();
        let what = match *kind {
            "url" => "URL",
            "domain-name" => "domain",
            _ => "IP address",
        };
        let records: i64 = servers
            .iter()
            .map(|&i| intel.servers[i].counts.records)
            .sum();
        let mut description = format!(
            "The {what} of banking-trojan infrastructure ({}) named by an inject or config",
            roles.join(", ")
        );
        if records > 0 {
            description.push_str(&format!(
                "; {records} stolen-data records were fetched from it (counts only)"
            ));
        }
        description.push('.');
        b.sdo(
            "indicator",
            id.clone(),
            created,
            modified,
            obj(vec![
                (
                    "name",
                    json!(format!(
                        "Banking-trojan {} {what}: {value}",
                        roles.join(" / ")
                    )),
                ),
                ("indicator_types", json!(["malicious-activity"])),
                (
                    "pattern",
                    json!(format!("[{kind}:value = {}]", pattern_literal(value))),
                ),
                ("pattern_type", json!("stix")),
                ("pattern_version", json!("2.1")),
                ("valid_from", json!(stix_timestamp(created))),
                ("description", json!(description)),
            ]),
        );
        let mut families = BTreeSet::new();
        for &i in servers {
            b.relationship(
                &id,
                "indicates",
                &server_ids[i].clone(),
                intel.servers[i].first_seen,
            );
            for key in &intel.servers[i].botnets {
                if let Some(f) = &key.family {
                    families.insert(f.clone());
                }
            }
        }
        for f in families {
            if let Some(mw) = malware_ids.get(&f).cloned() {
                let c = created.max(b.created_of(&mw));
                b.relationship(&id, "indicates", &mw, c);
            }
        }
        if *kind == "url" {
            url_indicators.insert(value.clone(), id);
        }
    }

    // Indicators for the files held here, by SHA-256: what an EDR or a sandbox matches.
    for smp in &intel.samples {
        b.file_sco(&smp.sha256);
        let what = sample_words(&smp.kind);
        let id = dw_id(&opts.producer, "indicator", &["file", &smp.sha256]);
        let family = smp.family.as_deref().map(family_display);
        let mut description = format!(
            "A {what}{} whose SHA-256 is {}",
            family
                .as_ref()
                .map(|f| format!(" of {f}"))
                .unwrap_or_default(),
            smp.sha256
        );
        let botnets: Vec<String> = smp.botnets.iter().filter_map(botnet_name).collect();
        if !botnets.is_empty() {
            description.push_str(&format!(" ({})", botnets.join(", ")));
        }
        description.push('.');
        b.sdo(
            "indicator",
            id.clone(),
            smp.first_seen,
            smp.first_seen,
            obj(vec![
                (
                    "name",
                    json!(format!("Banking-trojan {what}: SHA-256 {}", smp.sha256)),
                ),
                ("indicator_types", json!(["malicious-activity"])),
                (
                    "pattern",
                    json!(format!(
                        "[file:hashes.'SHA-256' = {}]",
                        pattern_literal(&smp.sha256)
                    )),
                ),
                ("pattern_type", json!("stix")),
                ("pattern_version", json!("2.1")),
                ("valid_from", json!(stix_timestamp(smp.first_seen))),
                ("description", json!(description)),
            ]),
        );
        if let Some(mw) = smp
            .family
            .as_ref()
            .and_then(|f| malware_ids.get(f))
            .cloned()
        {
            let c = smp.first_seen.max(b.created_of(&mw));
            b.relationship(&id, "indicates", &mw, c);
        }
    }

    // Sightings: how many records of which institution's customers a server held.
    for s in &intel.servers {
        let Some(indicator) = url_indicators.get(&uri_value(&s.url)).cloned() else {
            continue;
        };
        for hit in &s.hits {
            let (Some(ident), Some(first), Some(last)) = (
                inst_ids.get(&hit.institution_id).cloned(),
                hit.counts.first_seen,
                hit.counts.last_seen,
            ) else {
                continue;
            };
            if hit.counts.records <= 0 {
                continue;
            }
            let name = intel
                .institution(&hit.institution_id)
                .map_or(hit.institution_id.as_str(), |i| i.name.as_str());
            let id = dw_id(
                &opts.producer,
                "sighting",
                &[&indicator, s.role.as_str(), &hit.institution_id],
            );
            b.sdo(
                "sighting",
                id,
                first,
                last,
                obj(vec![
                    ("sighting_of_ref", json!(indicator)),
                    ("where_sighted_refs", json!([ident])),
                    ("count", json!(hit.counts.records.min(MAX_COUNT))),
                    ("first_seen", json!(stix_timestamp(first))),
                    ("last_seen", json!(stix_timestamp(last.max(first)))),
                    (
                        "description",
                        json!(format!(
                            "The {} held {} stolen-data records about {} distinct customers of {name}; no personal data is shared.",
                            role_words(s.role),
                            hit.counts.records,
                            hit.counts.victims
                        )),
                    ),
                ]),
            );
        }
    }

    let since = b.opts.since.map(crate::time::to_millis);
    let keep_sco: BTreeSet<String> = match since {
        None => BTreeSet::new(),
        // SCOs have no version: they go with the infrastructure that consists of them.
        Some(_) => b
            .objects
            .values()
            .filter(|(m, v)| {
                m.is_some_and(|m| since.is_none_or(|t| crate::time::to_millis(m) >= t))
                    && v["relationship_type"] == "consists-of"
            })
            .filter_map(|(_, v)| v["target_ref"].as_str().map(str::to_string))
            .collect(),
    };
    let always = [b.marking_id.clone(), b.producer_id.clone()];
    let mut out: Vec<(u8, String, Value)> = b
        .objects
        .into_iter()
        .filter(|(id, (modified, _))| match (since, modified) {
            (None, _) => true,
            (Some(_), _) if always.contains(id) => true,
            (Some(t), Some(m)) => crate::time::to_millis(*m) >= t,
            (Some(_), None) => keep_sco.contains(id),
        })
        .map(|(id, (_, v))| (type_rank(&id), id, v))
        .collect();
    out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    out.into_iter().map(|(_, _, v)| v).collect()
}

fn type_rank(id: &str) -> u8 {
    const ORDER: &[&str] = &[
        "marking-definition",
        "identity",
        "malware",
        "infrastructure",
        "url",
        "domain-name",
        "ipv4-addr",
        "ipv6-addr",
        "indicator",
        "relationship",
        "sighting",
    ];
    let t = id.split("--").next().unwrap_or("");
    ORDER.iter().position(|x| *x == t).unwrap_or(ORDER.len()) as u8
}

fn server_description(s: &Server, intel: &Intel) -> String {
    let mut d = format!("{} of a banking trojan", capitalise(role_words(s.role)));
    let names: Vec<String> = s.botnets.iter().filter_map(botnet_name).collect();
    if !names.is_empty() {
        d.push_str(&format!(" ({})", names.join(", ")));
    }
    d.push('.');
    if !s.targets.is_empty() {
        let names: Vec<&str> = s
            .targets
            .iter()
            .map(|t| intel.institution(t).map_or(t.as_str(), |i| i.name.as_str()))
            .collect();
        d.push_str(&format!(" Targets: {}.", names.join(", ")));
    }
    if s.counts.records > 0 {
        d.push_str(&format!(
            " {} stolen-data records about {} distinct victims fetched from it",
            s.counts.records, s.counts.victims
        ));
        if let (Some(a), Some(z)) = (s.counts.first_seen, s.counts.last_seen) {
            d.push_str(&format!(
                " between {} and {}",
                stix_timestamp(a),
                stix_timestamp(z)
            ));
        }
        d.push_str("; counts only, no personal data.");
    }
    d
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_quotes_and_backslashes() {
        assert_eq!(pattern_literal("http://x/a'b\\c"), r"'http://x/a\'b\\c'");
        assert_eq!(pattern_literal("plain"), "'plain'");
    }

    #[test]
    fn url_values_are_uris() {
        assert_eq!(
            uri_value("http://a.example/x?y=1"),
            "http://a.example/x?y=1"
        );
        assert_eq!(
            uri_value("http://a.example/a b\\c\"d'e%zz%41"),
            "http://a.example/a%20b%5Cc%22d'e%25zz%41"
        );
        assert_eq!(
            uri_value("drop.example/gate.php"),
            "http://drop.example/gate.php"
        );
        assert_eq!(
            uri_value("http://a.example/日"),
            "http://a.example/%E6%97%A5"
        );
    }

    #[test]
    fn sco_ids_follow_the_spec_namespace() {
        // The same value gives the same id; the type prefixes it; another value differs.
        let a = sco_id("url", "http://drop.example/gate.php");
        assert_eq!(a, sco_id("url", "http://drop.example/gate.php"));
        assert!(a.starts_with("url--"));
        assert_ne!(a, sco_id("url", "http://drop.example/gate.php2"));
        // Version 5, RFC 4122 variant.
        let uuid = Uuid::parse_str(a.trim_start_matches("url--")).unwrap();
        assert_eq!(uuid.get_version_num(), 5);
    }

    #[test]
    fn an_empty_intel_gives_a_bundle_of_marking_and_producer() {
        let v = bundle(&Intel::default(), &ExportOptions::default());
        let objects = v["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(
            objects[0]["id"],
            "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
        );
        assert_eq!(objects[1]["type"], "identity");
    }
}
