//! Golden analyses of every public corpus file: institutions, endpoints by class, fields asked,
//! ATS signs, macros, diagnostics. The goldens in `tests/golden/` were reviewed by hand once;
//! after an intended change, regenerate them with `UPDATE_GOLDEN=1 cargo test -p dropwatch-inject
//! --test golden` and review the diff.

use std::collections::BTreeMap;
use std::path::Path;

use dropwatch_inject::{analyze_with, parse_any, EndpointClass, Mode};
use dropwatch_masks::InstitutionIndex;
use serde_json::{json, Value};

const FILES: &[&str] = &[
    "zeus-2.0.8.9-kit-webinjects.txt",
    "zeus-2.0.8.9-kit-httpinjects-bankofamerica.txt",
    "zeus-2.0.8.9-kit-httpinjects-paypal.txt",
    "zeus-2.0.8.9-kit-httpinjects-usaa.txt",
    "zeus-2.0.8.9-kit-webinjects-small.txt",
    "tinynuke-injects.json",
    "trickbot-dinj.xml",
    "trickbot-sinj.xml",
];

fn summary(bytes: &[u8], index: &InstitutionIndex) -> Value {
    let parsed = parse_any(bytes, Mode::Tolerant).expect("tolerant never fails");
    let a = analyze_with(&parsed.injects, index, &|b| parsed.decode(b));
    let mut endpoints = BTreeMap::new();
    for (class, key) in [
        (EndpointClass::Drop, "drop"),
        (EndpointClass::AtsPanel, "ats_panel"),
        (EndpointClass::ScriptHost, "script_host"),
        (EndpointClass::Benign, "benign"),
        (EndpointClass::InstitutionSite, "institution_site"),
    ] {
        endpoints.insert(key, a.endpoints_of(class));
    }
    let mut fields: Vec<String> = a
        .fields
        .iter()
        .map(|f| format!("{} {}", f.kind.as_str(), f.name))
        .collect();
    fields.sort();
    fields.dedup();
    let mut unmatched: Vec<&str> = a
        .targets
        .iter()
        .filter(|t| t.institution_id.is_none())
        .map(|t| t.url_mask.as_str())
        .collect();
    unmatched.sort();
    unmatched.dedup();
    let mut macros: Vec<&str> = a.macros.iter().map(|m| m.what.as_str()).collect();
    macros.sort();
    macros.dedup();
    json!({
        "format": format!("{:?}", parsed.format),
        "charset": parsed.charset,
        "entries": parsed.injects.len(),
        "grabs": a.targets.iter().filter(|t| t.grab).count(),
        "targets": a.targets.len(),
        "diagnostics": parsed.diagnostics.iter().map(|d| format!("{}:{} {}", d.line, d.column, d.code)).collect::<Vec<_>>(),
        "institutions": a.institutions(),
        "unmatched_targets": unmatched,
        "endpoints": endpoints,
        "fields": fields,
        "ats_signs": a.ats_signs.iter().map(|s| format!("entry {}: {}", s.entry, s.what)).collect::<Vec<_>>(),
        "macros": macros,
    })
}

#[test]
fn corpus_analyses_match_their_goldens() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let index = InstitutionIndex::new(dropwatch_masks::bundled_registry().institutions);
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for file in FILES {
        let bytes = std::fs::read(dir.join("data").join(file)).unwrap();
        let got = summary(&bytes, &index);
        let golden_path = dir.join("golden").join(format!("{file}.json"));
        let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
        if update {
            std::fs::write(&golden_path, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden_path).unwrap_or_else(|_| {
            panic!(
                "missing golden {}; run with UPDATE_GOLDEN=1",
                golden_path.display()
            )
        });
        if want != text {
            failures.push(format!(
                "{file}: analysis differs from {}\n--- got:\n{text}",
                golden_path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
