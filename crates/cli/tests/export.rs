//! `dropwatch export` end to end, on a store built the project's way: `dropwatch demo` (the
//! testkit's seeded generator, drops served on loopback, monitors, ground truth), enriched with
//! what a demo does not make (a decoded config naming the family and a C2 gate, benign and bank
//! hosts that must be suppressed, an attacker URL with quotes and commas).
//!
//! The exports are checked with the tools the receivers run: the OASIS `stix2-validator` in
//! strict mode and `stix2.parse`, and `pymisp`. Those are Python modules pinned in
//! `scripts/requirements-test.txt`; without them a test that needs them is skipped with a
//! message, except under `CI=true`, where it fails (`dropwatch_testkit::python`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dropwatch_model::{AnalyzedRecord, MaskedSecret, Registry, SecretKind, ServerRole, Urgency};
use dropwatch_store::{IngestBatch, NewConfig, Store};
use dropwatch_testkit::python::{require_modules, run_script};
use dropwatch_testkit::GroundTruth;
use serde_json::Value;

fn dropwatch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dropwatch"));
    cmd.env_remove("DROPWATCH_DATABASE_URL")
        .env_remove("DROPWATCH_DATA_DIR");
    cmd
}

/// A C2 gate on a public (documentation) address, named by the config added to the demo.
const C2_URL: &str = "http://203.0.113.77/kassa/gate.php";
/// The config's dynamic-config URL, on a domain.
const CONFIG_URL: &str = "https://upd.kitsune-c2.example/cfg/config.bin";
/// A drop a config names with its FTP login: shared without the password, which would open the
/// victims' data on it to every recipient.
const FTP_DROP_URL: &str = "ftp://dropuser:Dr0p-pa55@files.kitsune-c2.example/upload/";
const FTP_DROP_SHARED: &str = "ftp://dropuser@files.kitsune-c2.example/upload/";
const FTP_DROP_PASSWORD: &str = "Dr0p-pa55";
/// Attacker-written text that STIX patterns and CSV must escape.
const QUOTE_URL: &str = "http://quote-c2.example/g.php?a='x'&b=\\y,z\"w";
/// Benign: a jQuery CDN (bundled allow-list).
const BENIGN_URL: &str = "https://code.jquery.com/jquery-1.7.2.min.js";
/// Benign by the user's allow file.
const USER_ALLOWED_URL: &str = "https://static.partner-cdn.example/lib.js";
/// The family and sample of the added config.
const CONFIG_SHA256: &str = "5e1f9d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100";
/// A config stored from a report without its files: named by the report's hash, not a file's.
const REPORT_HASH: &str = "0badc0de00000000111111112222222233333333444444445555555566666666";

struct Demo {
    data: tempfile::TempDir,
    testkit: tempfile::TempDir,
    truth: GroundTruth,
    registry: Registry,
}

impl Demo {
    fn dir(&self) -> PathBuf {
        self.data.path().join("demo")
    }

    /// The bank whose own site the enrichment registers as a "server".
    fn bank_url(&self) -> String {
        format!(
            "https://ib.{}/img/secure.gif",
            self.registry.institutions[0].domains[0]
        )
    }

    /// The botnet the added config belongs to: the first campaign's.
    fn zeus_botnet(&self) -> String {
        self.truth.victims[0].campaign.clone()
    }

    fn export(&self, args: &[&str]) -> Output {
        dropwatch()
            .arg("--data-dir")
            .arg(self.dir())
            .arg("export")
            .args(args)
            .output()
            .unwrap()
    }

    fn export_ok(&self, args: &[&str]) -> Output {
        let out = self.export(args);
        assert!(
            out.status.success(),
            "export {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    async fn store(&self) -> Store {
        Store::open_data_dir(&self.dir()).await.unwrap()
    }
}

/// Runs `dropwatch demo` for a seed, then adds a config, a C2 gate, a config URL, an attacker
/// URL with quotes, and hosts that must be suppressed.
async fn demo(seed: u64) -> Demo {
    let data = tempfile::tempdir().unwrap();
    let testkit = tempfile::tempdir().unwrap();
    let out = dropwatch()
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "demo",
            "--json",
            "--seed",
            &seed.to_string(),
            "--testkit-dir",
        ])
        .arg(testkit.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth: GroundTruth =
        serde_json::from_slice(&std::fs::read(testkit.path().join("ground-truth.json")).unwrap())
            .unwrap();
    let registry: Registry =
        serde_json::from_slice(&std::fs::read(testkit.path().join("registry.json")).unwrap())
            .unwrap();
    let d = Demo {
        data,
        testkit,
        truth,
        registry,
    };
    let store = d.store().await;
    let sample = store
        .upsert_sample(CONFIG_SHA256, "config_bin", Some("config.bin"))
        .await
        .unwrap();
    let cfg = store
        .insert_config(&NewConfig {
            sample_id: Some(sample),
            family: "zeus".into(),
            version: Some("2.0.8.9".into()),
            botnet: Some(d.zeus_botnet()),
            body: serde_json::json!({ "botnet": d.zeus_botnet(), "c2": [C2_URL] }),
            targets: vec![],
        })
        .await
        .unwrap();
    let report_sample = store
        .upsert_sample(REPORT_HASH, "config_report", None)
        .await
        .unwrap();
    store
        .insert_config(&NewConfig {
            sample_id: Some(report_sample),
            family: "zeus".into(),
            version: Some("2.0.8.9".into()),
            botnet: Some(d.zeus_botnet()),
            body: serde_json::json!({ "botnet": d.zeus_botnet(), "c2": [C2_URL], "from": "report" }),
            targets: vec![],
        })
        .await
        .unwrap();
    let provenance = format!("config:{}", cfg.canonical_hash);
    for (url, host, role) in [
        (C2_URL, "203.0.113.77", ServerRole::C2Gate),
        (FTP_DROP_URL, "files.kitsune-c2.example", ServerRole::Drop),
        (CONFIG_URL, "upd.kitsune-c2.example", ServerRole::ConfigUrl),
        (QUOTE_URL, "quote-c2.example", ServerRole::C2Gate),
    ] {
        store
            .upsert_server(url, host, role, &provenance)
            .await
            .unwrap();
    }
    // Hosts that reach the server list by mistake or by a looser analysis: never indicators.
    let bank_url = d.bank_url();
    let bank_host = bank_url.split('/').nth(2).unwrap().to_string();
    for (url, host) in [
        (BENIGN_URL, "code.jquery.com"),
        (bank_url.as_str(), bank_host.as_str()),
        (USER_ALLOWED_URL, "static.partner-cdn.example"),
    ] {
        store
            .upsert_server(url, host, ServerRole::ScriptHost, "manual")
            .await
            .unwrap();
    }
    store.close().await;
    d
}

fn allow_file(dir: &Path) -> PathBuf {
    let path = dir.join("allow.txt");
    std::fs::write(
        &path,
        "# partner CDN, seen in injects, benign\npartner-cdn.example\n",
    )
    .unwrap();
    path
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

fn objects_of_type<'a>(bundle: &'a Value, ty: &str) -> Vec<&'a Value> {
    bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == ty)
        .collect()
}

fn pattern_for(kind: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
    format!("[{kind}:value = '{escaped}']")
}

const VALIDATE: &str = r#"
import json, sys
from stix2validator import validate_string, ValidationOptions
import stix2
text = open(sys.argv[1]).read()
res = validate_string(text, ValidationOptions(strict=True, version="2.1"))
msgs = []
for r in getattr(res, "object_results", None) or [res]:
    msgs += ["error %s: %s" % (r.object_id, e) for e in r.errors]
    msgs += ["warning %s: %s" % (r.object_id, w) for w in r.warnings]
bundle = stix2.parse(text, allow_custom=False)
classes = {"url": stix2.URL, "domain-name": stix2.DomainName,
           "ipv4-addr": stix2.IPv4Address, "ipv6-addr": stix2.IPv6Address}
bad_ids = []
for o in bundle.objects:
    if o.type in classes and classes[o.type](value=o.value).id != o.id:
        bad_ids.append(o.id)
    if o.type == "file" and stix2.File(hashes=dict(o.hashes)).id != o.id:
        bad_ids.append(o.id)
print(json.dumps({"valid": res.is_valid, "messages": msgs, "parsed": len(bundle.objects),
                  "bad_sco_ids": bad_ids}))
"#;

#[tokio::test]
async fn stix_bundle_passes_the_oasis_validator_strictly_and_matches_the_ground_truth() {
    let d = demo(3).await;
    let path = d.data.path().join("bundle.json");
    let out = d.export_ok(&["stix", "--keep-private", "--out", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("STIX bundle:"), "{stderr}");
    let bundle: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();

    // Every drop and script host of the ground truth, the C2 gate and the config URL are
    // indicators; the attacker URL's quotes and backslash are escaped in its pattern.
    let patterns: BTreeSet<&str> = objects_of_type(&bundle, "indicator")
        .iter()
        .map(|i| i["pattern"].as_str().unwrap())
        .collect();
    for url in d
        .truth
        .drop_urls
        .iter()
        .chain(&d.truth.script_urls)
        .map(String::as_str)
        .chain([C2_URL, CONFIG_URL])
    {
        assert!(
            patterns.contains(pattern_for("url", url).as_str()),
            "no indicator for {url}"
        );
    }
    // The url SCO's value must be a URI: what RFC 3986 does not allow is percent-encoded.
    assert!(
        patterns.contains(r"[url:value = 'http://quote-c2.example/g.php?a=\'x\'&b=%5Cy,z%22w']")
    );
    assert!(patterns.contains("[ipv4-addr:value = '203.0.113.77']"));
    assert!(patterns.contains("[domain-name:value = 'upd.kitsune-c2.example']"));

    // The config.bin is a file indicator, and a sample of the family; a report hash is not.
    assert!(patterns.contains(format!("[file:hashes.'SHA-256' = '{CONFIG_SHA256}']").as_str()));
    // (The demo's webinjects files are files too, each with its indicator.)
    let files = objects_of_type(&bundle, "file");
    let config_file = files
        .iter()
        .find(|f| f["hashes"]["SHA-256"] == CONFIG_SHA256)
        .expect("the config.bin as a file");
    for f in &files {
        let h = f["hashes"]["SHA-256"].as_str().unwrap();
        assert!(patterns.contains(format!("[file:hashes.'SHA-256' = '{h}']").as_str()));
    }
    assert!(files.len() > 1, "{files:?}");
    assert!(!bundle.to_string().contains(REPORT_HASH));

    // Infrastructure types follow the roles.
    let infra = objects_of_type(&bundle, "infrastructure");
    let types_of = |needle: &str| -> Vec<String> {
        infra
            .iter()
            .find(|i| i["name"].as_str().unwrap().ends_with(needle))
            .map(|i| serde_json::from_value(i["infrastructure_types"].clone()).unwrap())
            .unwrap_or_else(|| panic!("no infrastructure for {needle}"))
    };
    assert_eq!(types_of(&d.truth.drop_urls[0]), vec!["exfiltration"]);
    assert_eq!(types_of(C2_URL), vec!["command-and-control"]);
    assert_eq!(types_of(&d.truth.script_urls[0]), vec!["hosting-malware"]);

    // One identity per targeted institution (and the producer), in the financial sector.
    let identities = objects_of_type(&bundle, "identity");
    let names: BTreeSet<&str> = identities
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    for id in &d.truth.targeted_institutions {
        let inst = d
            .registry
            .institutions
            .iter()
            .find(|i| &i.id == id)
            .unwrap();
        assert!(names.contains(inst.name.as_str()), "no identity for {id}");
    }
    assert_eq!(identities.len(), d.truth.targeted_institutions.len() + 1);
    assert!(identities
        .iter()
        .filter(|i| i["name"] != "dropwatch")
        .all(|i| i["sectors"] == serde_json::json!(["financial-services"])));

    // The family: Zeus, used by the botnet the config names, targeting that botnet's banks.
    let malware = objects_of_type(&bundle, "malware");
    assert_eq!(malware.len(), 1);
    assert_eq!(malware[0]["name"], "Zeus");
    assert_eq!(malware[0]["is_family"], true);
    assert!(malware[0]["sample_refs"]
        .as_array()
        .unwrap()
        .contains(&config_file["id"]));
    let rels = objects_of_type(&bundle, "relationship");
    let rel = |src: &str, kind: &str, dst: &str| {
        rels.iter().any(|r| {
            r["source_ref"] == src && r["relationship_type"] == kind && r["target_ref"] == dst
        })
    };
    let file_indicator = objects_of_type(&bundle, "indicator")
        .into_iter()
        .find(|i| i["pattern"].as_str().unwrap().contains(CONFIG_SHA256))
        .expect("file indicator");
    assert!(rel(
        file_indicator["id"].as_str().unwrap(),
        "indicates",
        malware[0]["id"].as_str().unwrap()
    ));
    let botnet_infra = infra
        .iter()
        .find(|i| i["name"] == format!("Zeus botnet {}", d.zeus_botnet()))
        .expect("botnet infrastructure");
    assert!(rel(
        malware[0]["id"].as_str().unwrap(),
        "uses",
        botnet_infra["id"].as_str().unwrap()
    ));
    let zeus_targets = rels
        .iter()
        .filter(|r| r["relationship_type"] == "targets")
        .count();
    let expected_targets: BTreeSet<&str> = d
        .truth
        .victims
        .iter()
        .filter(|v| v.campaign == d.zeus_botnet())
        .map(|v| v.institution_id.as_str())
        .collect();
    assert!(zeus_targets >= expected_targets.len());

    // Sightings: per institution, the distinct customers the sightings count add up to the
    // ground truth's victims of that institution; counts are records, never rows.
    let by_identity: BTreeMap<&str, &str> = identities
        .iter()
        .map(|i| (i["id"].as_str().unwrap(), i["name"].as_str().unwrap()))
        .collect();
    let mut victims_seen: BTreeMap<String, u64> = BTreeMap::new();
    for s in objects_of_type(&bundle, "sighting") {
        let where_ = s["where_sighted_refs"][0].as_str().unwrap();
        let desc = s["description"].as_str().unwrap();
        let n: u64 = desc
            .split(" distinct customers")
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(s["count"].as_u64().unwrap() >= n);
        *victims_seen
            .entry(by_identity[where_].to_string())
            .or_default() += n;
    }
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for v in &d.truth.victims {
        let inst = d
            .registry
            .institutions
            .iter()
            .find(|i| i.id == v.institution_id)
            .unwrap();
        *expected.entry(inst.name.clone()).or_default() += 1;
    }
    assert_eq!(victims_seen, expected);

    // The OASIS tools: strict validation (warnings are errors), parsing, the spec's SCO ids.
    if !require_modules("STIX bundle validation", &["stix2validator", "stix2"]) {
        return;
    }
    let out = run_script(VALIDATE, &[path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "validator script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(res["messages"], serde_json::json!([]), "{res:#}");
    assert_eq!(res["valid"], true);
    assert_eq!(res["bad_sco_ids"], serde_json::json!([]));
    assert_eq!(
        res["parsed"].as_u64().unwrap() as usize,
        bundle["objects"].as_array().unwrap().len()
    );
}

const PYMISP: &str = r#"
import glob, hashlib, json, os, sys
from pymisp import MISPEvent
feed = sys.argv[1]
manifest = json.load(open(os.path.join(feed, "manifest.json")))
events = {}
for path in sorted(glob.glob(os.path.join(feed, "*.json"))):
    if os.path.basename(path) == "manifest.json":
        continue
    e = MISPEvent()
    e.load_file(path)
    events[e.uuid] = e
out = {"events": {}, "manifest": {}, "hashes_expected": []}
for uuid, e in events.items():
    out["events"][uuid] = {
        "file": os.path.basename(feed) and uuid + ".json",
        "info": e.info,
        "distribution": int(e.distribution),
        "tags": sorted(t.name for t in e.tags),
        "attributes": sorted([a.type, a.category, a.value, bool(a.to_ids), a.uuid] for a in e.attributes),
    }
    for a in e.attributes:
        out["hashes_expected"].append("%s,%s" % (hashlib.md5(a.value.encode()).hexdigest(), uuid))
for uuid, entry in manifest.items():
    m = MISPEvent()
    m.from_dict(**entry)
    out["manifest"][uuid] = {"info": m.info, "timestamp": int(m.timestamp.timestamp()),
                             "tags": sorted(t.name for t in m.tags)}
out["hashes_expected"] = sorted(set(out["hashes_expected"]))
print(json.dumps(out))
"#;

#[tokio::test]
async fn misp_feed_loads_in_pymisp_and_its_hashes_agree_with_the_events() {
    let d = demo(4).await;
    let feed = d.data.path().join("feed");
    d.export_ok(&[
        "misp",
        "--keep-private",
        "--tlp",
        "green",
        "--distribution",
        "2",
        "--out",
        feed.to_str().unwrap(),
    ]);
    let mut names: Vec<String> = std::fs::read_dir(&feed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.contains(&"manifest.json".to_string()) && names.contains(&"hashes.csv".to_string())
    );
    // One event per campaign (each campaign is a botnet; the config adds none, it names the
    // same botnet), and the catch-all for the server tied to no botnet (the partner CDN, which
    // this export is not told to allow).
    let botnets: BTreeSet<&str> = d
        .truth
        .victims
        .iter()
        .map(|v| v.campaign.as_str())
        .collect();
    assert_eq!(names.len(), botnets.len() + 1 + 2, "{names:?}");

    if !require_modules("MISP feed check", &["pymisp"]) {
        return;
    }
    let out = run_script(PYMISP, &[feed.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "pymisp script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = res["events"].as_object().unwrap();
    assert_eq!(events.len(), botnets.len() + 1);
    let catch_all = events
        .values()
        .find(|e| {
            e["info"]
                .as_str()
                .unwrap()
                .contains("not tied to a known botnet")
        })
        .unwrap();
    let catch_all_values: Vec<&str> = catch_all["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a[2].as_str().unwrap())
        .collect();
    assert_eq!(
        catch_all_values,
        vec!["static.partner-cdn.example", USER_ALLOWED_URL]
    );
    let manifest = res["manifest"].as_object().unwrap();
    assert_eq!(
        manifest.keys().collect::<Vec<_>>(),
        events.keys().collect::<Vec<_>>(),
        "the manifest lists exactly the event files"
    );
    for (uuid, e) in events {
        assert_eq!(manifest[uuid]["info"], e["info"]);
        assert_eq!(manifest[uuid]["tags"], e["tags"]);
        assert_eq!(e["distribution"], 2);
        let tags: Vec<&str> = e["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(tags.contains(&"tlp:green"));
        assert!(tags
            .contains(&"misp-galaxy:mitre-attack-pattern=\"Browser Session Hijacking - T1185\""));
        let info = e["info"].as_str().unwrap();
        let is_zeus = info.contains(&format!("Zeus botnet {}", d.zeus_botnet()));
        assert_eq!(
            tags.contains(&"misp-galaxy:banker=\"Zeus\""),
            is_zeus,
            "{info}"
        );
        for a in e["attributes"].as_array().unwrap() {
            let (ty, cat, to_ids) = (a[0].as_str().unwrap(), a[1].as_str().unwrap(), a[3] == true);
            let expected = match ty {
                "url" | "domain" | "ip-dst" => ("Network activity", true),
                "sha256" => ("Payload delivery", true),
                "target-org" => ("Targeting data", false),
                other => panic!("unexpected attribute type {other}"),
            };
            assert_eq!((cat, to_ids), expected, "{a}");
        }
        let values: BTreeSet<&str> = e["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a[2].as_str().unwrap())
            .collect();
        if is_zeus {
            for v in [C2_URL, "203.0.113.77", CONFIG_URL, CONFIG_SHA256] {
                assert!(values.contains(v), "{v} missing from the Zeus event");
            }
        }
    }
    // Every drop URL is an attribute of some event.
    let all_values: BTreeSet<String> = events
        .values()
        .flat_map(|e| e["attributes"].as_array().unwrap().iter())
        .map(|a| a[2].as_str().unwrap().to_string())
        .collect();
    for url in &d.truth.drop_urls {
        assert!(all_values.contains(url), "{url}");
    }
    // A report's hash is no file's: never a sha256 attribute.
    assert!(!all_values.contains(REPORT_HASH));
    // hashes.csv is md5(value),event uuid for every attribute, as MISP computes it.
    let csv = std::fs::read_to_string(feed.join("hashes.csv")).unwrap();
    let ours: Vec<&str> = csv.lines().collect();
    let theirs: Vec<&str> = res["hashes_expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(ours, theirs);
}

/// Replaces RFC 3339 timestamps and dates (`2013-12-01T00:00:00.000Z`, `2013-12-01 00:00:00`)
/// and UUIDs with `_`, so that a short numeric secret (a 4-digit PIN) is not "found" in a year
/// or in a group of hex digits that happens to be all digits.
fn scrub_timestamps(hay: &[u8]) -> Vec<u8> {
    let mut out = hay.to_vec();
    let uuid_shape = |w: &[u8]| {
        w.len() == 36
            && w.iter().enumerate().all(|(k, &b)| {
                if [8, 13, 18, 23].contains(&k) {
                    b == b'-'
                } else {
                    b.is_ascii_hexdigit()
                }
            })
    };
    for i in 0..hay.len().saturating_sub(35) {
        if uuid_shape(&hay[i..i + 36]) {
            out[i..i + 36].fill(b'_');
        }
    }
    let is = |i: usize, f: fn(u8) -> bool| hay.get(i).is_some_and(|&b| f(b));
    let digit = |b: u8| b.is_ascii_digit();
    let mut i = 0;
    while i + 10 <= hay.len() {
        let date = (0..4).all(|k| is(i + k, digit))
            && hay[i + 4] == b'-'
            && is(i + 5, digit)
            && is(i + 6, digit)
            && hay[i + 7] == b'-'
            && is(i + 8, digit)
            && is(i + 9, digit);
        if date {
            let mut j = i;
            while j < hay.len()
                && j < i + 32
                && (hay[j].is_ascii_digit() || b"-:T. Z+".contains(&hay[j]))
            {
                out[j] = b'_';
                j += 1;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Occurrences of `needle` in `hay` as a whole token (not inside a longer run of letters and
/// digits).
fn token_occurrences(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || needle.len() > hay.len() {
        return 0;
    }
    (0..=hay.len() - needle.len())
        .filter(|&i| {
            &hay[i..i + needle.len()] == needle
                && !i
                    .checked_sub(1)
                    .is_some_and(|j| hay[j].is_ascii_alphanumeric())
                && !hay
                    .get(i + needle.len())
                    .is_some_and(|b| b.is_ascii_alphanumeric())
        })
        .count()
}

/// Every seeded identity of the ground truth (and the generator's victim addresses and noise
/// mailboxes) that appears in `hay`.
fn leaks(truth: &GroundTruth, extra: &[&str], hay: &[u8]) -> Vec<String> {
    let scrubbed = scrub_timestamps(hay);
    let mut found = Vec::new();
    let mut check = |what: &str, value: &str| {
        let numeric = value.bytes().all(|b| b.is_ascii_digit());
        let n = if numeric {
            token_occurrences(&scrubbed, value.as_bytes())
        } else {
            hay.windows(value.len())
                .filter(|w| *w == value.as_bytes())
                .count()
        };
        if n > 0 {
            found.push(format!("{what} {value}"));
        }
    };
    for v in &truth.victims {
        check("account", &v.account);
        check("bot id", &v.bot_id);
    }
    for s in &truth.secrets {
        check("secret", s);
    }
    for e in extra {
        check("identity", e);
    }
    // Victims' addresses are 198.51.100.0/24 in the generator; noise grabs are webmail logins
    // and PC-NOISE bots.
    for fixed in [
        "198.51.100.",
        "@kumo-mail.example",
        "PC-NOISE_",
        "TRUNCATED",
    ] {
        check("victim data", fixed);
    }
    found
}

/// Every export, as (name, bytes): STIX, MISP feed files, CSV, the three plain lists; with and
/// without the loopback drops.
fn every_export(d: &Demo, extra_args: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for private in [true, false] {
        let mut common: Vec<&str> = extra_args.to_vec();
        if private {
            common.push("--keep-private");
        }
        let with = |sub: &[&str]| -> Vec<String> {
            sub.iter()
                .chain(common.iter())
                .map(|s| s.to_string())
                .collect()
        };
        let tag = if private { "keep-private" } else { "default" };
        for args in [
            with(&["stix"]),
            with(&["csv"]),
            with(&["blocklist", "--type", "url"]),
            with(&["blocklist", "--type", "domain"]),
            with(&["blocklist", "--type", "ip"]),
        ] {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = d.export_ok(&refs);
            out.push((format!("{tag} {args:?} stdout"), o.stdout));
            out.push((format!("{tag} {args:?} stderr"), o.stderr));
        }
        let feed = d.data.path().join(format!("feed-{tag}"));
        let mut args = with(&["misp"]);
        args.push("--out".into());
        args.push(feed.display().to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = d.export_ok(&refs);
        out.push((format!("{tag} misp stderr"), o.stderr));
        for entry in std::fs::read_dir(&feed).unwrap() {
            let p = entry.unwrap().path();
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[tokio::test]
async fn no_seeded_identity_reaches_any_export() {
    let d = demo(5).await;
    assert!(d.truth.victims.len() > 10 && d.truth.secrets.len() > 10);
    let exports = every_export(&d, &[]);
    assert!(exports.len() >= 20);
    let mut bytes = 0;
    let mut ftp_drop_shared = 0;
    for (name, hay) in &exports {
        bytes += hay.len();
        let found = leaks(&d.truth, &[FTP_DROP_PASSWORD], hay);
        assert!(found.is_empty(), "{name} leaks {found:?}");
        ftp_drop_shared += usize::from(
            hay.windows(FTP_DROP_SHARED.len())
                .any(|w| w == FTP_DROP_SHARED.as_bytes()),
        );
    }
    // The drop itself is shared, without its password.
    assert!(ftp_drop_shared > 0, "the FTP drop is in no export");
    assert!(
        bytes > 20_000,
        "the exports hold something to search ({bytes} bytes)"
    );

    // The scan finds a leak where there is one: a victim's account used as the producer name
    // lands in every STIX object's creator and in the MISP Orgc.
    let account = d.truth.victims[0].account.clone();
    let leaked = d.export_ok(&["stix", "--keep-private", "--producer", &account]);
    assert!(leaks(&d.truth, &[], &leaked.stdout)
        .iter()
        .any(|l| l.ends_with(&account)));
    // And the generated drop data, which holds every identity, is found full of them.
    let mut drop_data = Vec::new();
    for entry in std::fs::read_dir(d.testkit.path().join("drops")).unwrap() {
        drop_data.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(leaks(&d.truth, &[], &drop_data).len() > d.truth.victims.len());
}

fn by_id(bundle: &Value) -> BTreeMap<String, Value> {
    bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o.clone()))
        .collect()
}

#[tokio::test]
async fn re_export_is_byte_identical_and_new_data_makes_new_versions_of_the_same_ids() {
    let d = demo(6).await;
    let feed = d.data.path().join("feed");
    let feed_arg = feed.to_str().unwrap().to_string();
    let run_all = || {
        let stix = d.export_ok(&["stix", "--keep-private"]).stdout;
        let csv = d.export_ok(&["csv", "--keep-private"]).stdout;
        d.export_ok(&["misp", "--keep-private", "--out", &feed_arg]);
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for entry in std::fs::read_dir(&feed).unwrap() {
            let p = entry.unwrap().path();
            files.insert(
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            );
        }
        (stix, csv, files)
    };
    let first = run_all();
    let second = run_all();
    assert!(first.0 == second.0, "STIX bundle differs with no new data");
    assert!(first.1 == second.1, "CSV differs with no new data");
    assert!(first.2 == second.2, "MISP feed differs with no new data");

    // New data: a record of a new victim at the Zeus botnet's drop, and a new drop server.
    let botnet = d.zeus_botnet();
    let victim = d
        .truth
        .victims
        .iter()
        .find(|v| v.campaign == botnet)
        .unwrap();
    let store = d.store().await;
    let drop_url = d
        .truth
        .drop_urls
        .iter()
        .find(|u| {
            let word = botnet.trim_end_matches(|c: char| c.is_ascii_digit());
            u.contains(&format!("/{word}/"))
        })
        .unwrap()
        .clone();
    let source = store
        .list_monitor_sources()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.url == drop_url)
        .unwrap();
    let before_new_data = dropwatch_store::now_micros();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let outcome = store
        .ingest(&IngestBatch {
            source_id: Some(source.id),
            fetched_at: dropwatch_store::now_micros(),
            records: vec![AnalyzedRecord {
                fingerprint: "export-test-new-record".into(),
                external_id: None,
                bot_id: "NEWBOT-EXPORTTEST_1".into(),
                botnet: botnet.clone(),
                url: "https://ib.example/login".into(),
                institution_id: Some(victim.institution_id.clone()),
                account: Some("NEWACCT7731".into()),
                account_norm: Some("newacct7731".into()),
                secrets: vec![MaskedSecret {
                    kind: SecretKind::Password,
                    field: "password".into(),
                    length: 12,
                    hmac: "00".repeat(32),
                }],
                other_fields: vec![],
                urgency: Urgency::High,
                mule_accounts: vec![],
            }],
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(outcome.new_records, 1);
    let new_drop = "http://new-drop.kitsune-c2.example/gate.php";
    store
        .upsert_server(
            new_drop,
            "new-drop.kitsune-c2.example",
            ServerRole::Drop,
            "manual",
        )
        .await
        .unwrap();
    store.close().await;

    let third = run_all();
    let old: BTreeMap<String, Value> = by_id(&serde_json::from_slice(&first.0).unwrap());
    let new: BTreeMap<String, Value> = by_id(&serde_json::from_slice(&third.0).unwrap());
    // Same identities: every old id is still there.
    for id in old.keys() {
        assert!(new.contains_key(id), "{id} vanished");
    }
    let find = |m: &BTreeMap<String, Value>, ty: &str, pred: &dyn Fn(&Value) -> bool| {
        m.values()
            .find(|o| o["type"] == ty && pred(o))
            .cloned()
            .unwrap_or_else(|| panic!("no {ty}"))
    };
    let drop_pattern = pattern_for("url", &drop_url);
    let ind_old = find(&old, "indicator", &|o| {
        o["pattern"] == drop_pattern.as_str()
    });
    let ind_new = find(&new, "indicator", &|o| {
        o["pattern"] == drop_pattern.as_str()
    });
    assert_eq!(ind_old["id"], ind_new["id"]);
    assert_eq!(ind_old["created"], ind_new["created"]);
    assert!(ind_new["modified"].as_str() > ind_old["modified"].as_str());
    // The sighting of that drop at the victim's bank counts one more record.
    let sighting = |m: &BTreeMap<String, Value>| {
        let inst_name = &d
            .registry
            .institutions
            .iter()
            .find(|i| i.id == victim.institution_id)
            .unwrap()
            .name;
        let ident = find(m, "identity", &|o| o["name"] == inst_name.as_str());
        find(m, "sighting", &|o| {
            o["sighting_of_ref"] == ind_old["id"] && o["where_sighted_refs"][0] == ident["id"]
        })
    };
    let (s_old, s_new) = (sighting(&old), sighting(&new));
    assert_eq!(s_old["id"], s_new["id"]);
    assert_eq!(
        s_new["count"].as_u64().unwrap(),
        s_old["count"].as_u64().unwrap() + 1
    );
    assert!(s_new["modified"].as_str() > s_old["modified"].as_str());
    // Objects whose data did not change are byte-for-byte the same version.
    let other_drop = d.truth.drop_urls.iter().find(|u| **u != drop_url).unwrap();
    let other_pattern = pattern_for("url", other_drop);
    let other_old = find(&old, "indicator", &|o| {
        o["pattern"] == other_pattern.as_str()
    });
    assert_eq!(other_old, new[other_old["id"].as_str().unwrap()]);
    let unchanged = old.iter().filter(|(id, o)| new[*id] == **o).count();
    assert!(unchanged > old.len() / 2, "{unchanged} of {}", old.len());
    // The new server is new objects.
    let new_pattern = pattern_for("url", new_drop);
    let new_ind = find(&new, "indicator", &|o| o["pattern"] == new_pattern.as_str());
    assert!(!old.contains_key(new_ind["id"].as_str().unwrap()));

    // MISP: the Zeus event keeps its uuid and gets a newer timestamp; its attributes keep theirs.
    let event_of = |files: &BTreeMap<String, Vec<u8>>| -> Value {
        files
            .iter()
            .filter(|(n, _)| n.ends_with(".json") && *n != "manifest.json")
            .map(|(_, b)| serde_json::from_slice::<Value>(b).unwrap())
            .find(|e| {
                e["Event"]["info"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("Zeus botnet {botnet}"))
            })
            .unwrap()
    };
    let (e_old, e_new) = (event_of(&first.2), event_of(&third.2));
    assert_eq!(e_old["Event"]["uuid"], e_new["Event"]["uuid"]);
    let ts = |e: &Value| {
        e["Event"]["timestamp"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    assert!(ts(&e_new) >= ts(&e_old));
    let attr = |e: &Value| {
        e["Event"]["Attribute"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["value"] == drop_url.as_str())
            .cloned()
            .unwrap()
    };
    assert_eq!(attr(&e_old)["uuid"], attr(&e_new)["uuid"]);
    // The CSV has the new drop.
    assert!(String::from_utf8_lossy(&third.1).contains(new_drop));

    // --since: only what changed after the instant, plus the marking and the producer.
    let since = dropwatch_share::time::stix_timestamp(before_new_data);
    let delta: Value = json_of(&d.export_ok(&["stix", "--keep-private", "--since", &since]));
    let delta = by_id(&delta);
    assert!(delta.contains_key(ind_new["id"].as_str().unwrap()));
    assert!(delta.contains_key(new_ind["id"].as_str().unwrap()));
    assert!(delta.contains_key(s_new["id"].as_str().unwrap()));
    assert!(!delta.contains_key(other_old["id"].as_str().unwrap()));
    assert!(delta.len() < new.len());
    for o in delta.values() {
        if let Some(m) = o["modified"].as_str() {
            let is_fixed = o["type"] == "marking-definition" || o["name"] == "dropwatch";
            assert!(is_fixed || m >= since.as_str(), "{o}");
        }
    }
    // And the new account is in no export.
    for (name, hay) in every_export(&d, &[]) {
        let found = leaks(
            &d.truth,
            &["NEWACCT7731", "newacct7731", "NEWBOT-EXPORTTEST"],
            &hay,
        );
        assert!(found.is_empty(), "{name} leaks {found:?}");
    }
}

#[tokio::test]
async fn allow_listed_and_non_public_hosts_never_become_indicators() {
    let d = demo(8).await;
    let allow = allow_file(d.data.path());
    let allow_arg = allow.to_str().unwrap();
    let bank_url = d.bank_url();
    let bank_host = bank_url.split('/').nth(2).unwrap().to_string();
    let forbidden = [
        BENIGN_URL,
        "code.jquery.com",
        "ajax.googleapis.com",
        bank_url.as_str(),
        bank_host.as_str(),
        USER_ALLOWED_URL,
        "static.partner-cdn.example",
    ];

    // STIX: no indicator pattern, observable or infrastructure names a forbidden host.
    let out = d.export_ok(&["stix", "--keep-private", "--allow", allow_arg]);
    let bundle = json_of(&out);
    for o in bundle["objects"].as_array().unwrap() {
        let ty = o["type"].as_str().unwrap();
        let text = match ty {
            "indicator" => o["pattern"].as_str().unwrap().to_string(),
            "url" | "domain-name" | "ipv4-addr" | "ipv6-addr" => {
                o["value"].as_str().unwrap().to_string()
            }
            "infrastructure" => o["name"].as_str().unwrap().to_string(),
            _ => continue,
        };
        for f in forbidden {
            assert!(!text.contains(f), "{ty} names {f}: {text}");
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("3 servers suppressed")
            && stderr.contains("1 allow file")
            && stderr.contains("1 bundled allow-list")
            && stderr.contains("1 institution's own domain"),
        "{stderr}"
    );

    // CSV, plain lists and the MISP feed: no line or attribute names one.
    let feed = d.data.path().join("feed");
    d.export_ok(&[
        "misp",
        "--keep-private",
        "--allow",
        allow_arg,
        "--out",
        feed.to_str().unwrap(),
    ]);
    let mut texts = Vec::new();
    for args in [
        vec!["csv"],
        vec!["blocklist", "--type", "url"],
        vec!["blocklist", "--type", "domain"],
        vec!["blocklist", "--type", "ip"],
    ] {
        let mut a = args.clone();
        a.extend(["--keep-private", "--allow", allow_arg]);
        let out = d.export_ok(&a);
        texts.push((format!("{args:?}"), String::from_utf8(out.stdout).unwrap()));
    }
    for entry in std::fs::read_dir(&feed).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap() == "manifest.json" {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        if p.extension().unwrap() == "json" {
            let e: Value = serde_json::from_str(&text).unwrap();
            for a in e["Event"]["Attribute"].as_array().unwrap() {
                if a["type"] != "target-org" {
                    texts.push((
                        format!("{} attribute", p.display()),
                        a["value"].as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    for (name, text) in &texts {
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        for f in forbidden {
            assert!(!lines.iter().any(|l| l.contains(f)), "{name} names {f}");
        }
    }
    let csv = &texts[0].1;
    assert!(csv.contains("# suppressed by the allow-list: 3 ("), "{csv}");
    // The CSV keeps the attacker URL in one quoted field.
    assert!(
        csv.contains("\"http://quote-c2.example/g.php?a='x'&b=\\y,z\"\"w\""),
        "{csv}"
    );

    // Without --keep-private the demo's loopback drops are suppressed too, and said so.
    let out = d.export_ok(&["blocklist"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("127.0.0.1"), "{text}");
    assert!(text.contains(C2_URL));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let loopback = d.truth.drop_urls.len() + d.truth.script_urls.len();
    assert!(
        stderr.contains(&format!("{loopback} non-public address")),
        "{stderr}"
    );
}

#[tokio::test]
async fn bad_input_exits_2_with_one_line() {
    let d = demo(9).await;
    let bad_allow = d.data.path().join("bad-allow.txt");
    std::fs::write(&bad_allow, "ok.example\nnot a host\n").unwrap();
    let bad_allow = bad_allow.to_str().unwrap().to_string();
    for (args, says) in [
        (vec!["stix", "--tlp", "purple"], "--tlp"),
        (vec!["stix", "--since", "last tuesday"], "--since"),
        (vec!["csv", "--allow", bad_allow.as_str()], "line 2"),
        (vec!["csv", "--allow", "/nonexistent/allow.txt"], "--allow"),
        (vec!["misp"], "--out"),
        (
            vec!["misp", "--out", "x", "--distribution", "4"],
            "--distribution",
        ),
        (vec!["blocklist", "--type", "email"], "--type"),
        (vec!["stix", "--producer", ""], "--producer"),
    ] {
        let out = d.export(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test]
async fn publish_hands_the_objects_to_the_taxii_collection_once() {
    let d = demo(10).await;
    let first = d.export_ok(&["stix", "--keep-private", "--publish"]);
    let n_objects = json_of(&first)["objects"].as_array().unwrap().len();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains(&format!("{n_objects} new object versions, 0 unchanged")),
        "{stderr}"
    );
    let again = d.export_ok(&[
        "stix",
        "--keep-private",
        "--publish",
        "dropwatch-indicators",
    ]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains(&format!("0 new object versions, {n_objects} unchanged")),
        "{stderr}"
    );
    let store = d.store().await;
    let stored = store
        .count_object_versions(dropwatch_store::DEFAULT_COLLECTION_ID)
        .await
        .unwrap();
    assert_eq!(stored as usize, n_objects);
    store.close().await;
    let out = d.export(&["stix", "--publish", "no-such-collection"]);
    assert_eq!(out.status.code(), Some(2));
}
