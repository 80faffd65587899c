//! Deterministic STIX 2.1 objects for the sharing tests and the TAXII benchmark, until the
//! exporter publishes real ones: indicators and infrastructure with fixed ids, several
//! versions each, valid for `stix2-validator`.
//!
//! Object `i` (0-based) is an `indicator` when `i` is even and an `infrastructure` when odd;
//! its id is `<type>--<uuid>` with the UUID made from `i`; version `v` (1-based) has
//! `modified` = `created` + `v - 1` days. Nothing refers to a real host.

use dropwatch_store::format_timestamp;
use serde_json::{json, Value};

/// 2026-01-01T00:00:00Z in microseconds.
const EPOCH_2026: i64 = 1_767_225_600_000_000;
const DAY: i64 = 86_400_000_000;

/// The STIX id of object `i`.
pub fn stix_id(i: usize) -> String {
    let ty = if i % 2 == 0 {
        "indicator"
    } else {
        "infrastructure"
    };
    format!("{ty}--{:08x}-d0d0-4a5e-9c1e-{:012x}", 0x5eed_0000u32, i)
}

/// Version `version` (1-based) of object `i`.
pub fn stix_object(i: usize, version: usize) -> Value {
    let created = EPOCH_2026 + i as i64 * 1_000_000;
    let modified = created + (version.max(1) as i64 - 1) * DAY;
    let (created, modified) = (ms(created), ms(modified));
    let host = format!("drop{i}.invalid");
    if i % 2 == 0 {
        json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": stix_id(i),
            "created": created,
            "modified": modified,
            "name": format!("Drop server gate {i} (v{version})"),
            "indicator_types": ["malicious-activity"],
            "pattern": format!("[url:value = 'https://{host}/gate.php']"),
            "pattern_type": "stix",
            "valid_from": created,
        })
    } else {
        json!({
            "type": "infrastructure",
            "spec_version": "2.1",
            "id": stix_id(i),
            "created": created,
            "modified": modified,
            "name": format!("{host} (v{version})"),
            "infrastructure_types": ["exfiltration"],
        })
    }
}

/// `n` objects with `versions` versions each: every object's version 1 (in object order),
/// then every version 2, and so on.
pub fn stix_objects(n: usize, versions: usize) -> Vec<Value> {
    (1..=versions)
        .flat_map(|v| (0..n).map(move |i| stix_object(i, v)))
        .collect()
}

/// A STIX timestamp with millisecond precision, as STIX producers usually write them.
fn ms(micros: i64) -> String {
    let text = format_timestamp(micros);
    // "....SS.ffffffZ" -> "....SS.fffZ"
    format!("{}Z", &text[..text.len() - 4])
}
