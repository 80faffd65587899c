//! The bundled registry against the public WebInject corpus: every mask that names a bank or a
//! payment service must map to an institution, through [`InstitutionIndex::lookup_mask`].
//!
//! Fixtures: the ZeuS 2.0.8.9 kit `webinjects.txt` (shared with `dropwatch-inject`), and copies
//! of the TrickBot `dinj`/`sinj` and TinyNuke files of `../shared/corpus/webinjects/`.

use std::path::PathBuf;

use dropwatch_masks::{bundled_registry, InstitutionIndex};
use dropwatch_model::Institution;

/// Hosts of the corpus that name no institution of the registry, and why. The test also checks
/// that they stay unmatched, so this list cannot go stale.
const UNMATCHED: &[(&str, &str)] = &[
    // ZeuS kit webinjects.txt
    ("mail.yandex.ru", "webmail"),
    (
        "olb2.nationet.com",
        "NatioNet: hosted online banking of many US community banks",
    ),
    (
        "web.secservizi.it",
        "SEC Servizi: shared platform of several Italian banks",
    ),
    (
        "www.isideonline.it",
        "Iside: shared platform of several Italian banks",
    ),
    ("www.bgnetplus.com", "not identified"),
    ("www.clavenet.net", "not identified"),
    ("www.gbw2.it", "not identified"),
    // TrickBot dinj
    (
        "netteller.com",
        "NetTeller: Jack Henry's hosted online banking for many US banks",
    ),
    (
        "nettbedriften.evry.com",
        "EVRY: hosted corporate banking of many Norwegian banks",
    ),
    ("dciweb.htm", "a page name, not a host"),
];

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    let bytes = std::fs::read(data(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    // The kit is cp1251 / latin-1: the masks are ASCII, the rest does not matter here.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The host a mask names, as a person reads it: after the scheme (or a leading `*`), up to the
/// first `/` or `?`, wildcards kept; `None` for a mask without a dotted host (`*facebook*`,
/// `*/BEWeb/0130/*`).
fn named_host(mask: &str) -> Option<String> {
    let rest = mask.split_once("://").map_or(mask, |(_, r)| r);
    let rest = rest.trim_start_matches(['*', '/', '.']);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.split('*').next().filter(|h| h.contains('.'))?;
    let host = host.trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// `set_url` masks of a ZeuS webinjects file, in file order.
fn zeus_masks(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let keyword = line.get(..7)?;
            if !keyword.eq_ignore_ascii_case("set_url") {
                return None;
            }
            let mask = line[7..].split_whitespace().next()?;
            Some(mask.trim_matches(['"', '\'']).to_owned())
        })
        .collect()
}

/// The text of every `<tag>…</tag>` of a TrickBot XML file.
fn xml_values(text: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    text.split(open.as_str())
        .skip(1)
        .filter_map(|rest| {
            rest.split_once(close.as_str())
                .map(|(v, _)| v.trim().to_owned())
        })
        .collect()
}

fn check(index: &InstitutionIndex, source: &str, masks: &[String]) -> usize {
    let mut checked = 0;
    for mask in masks {
        let Some(host) = named_host(mask) else {
            continue;
        };
        let found: Option<&Institution> = index.lookup_mask(mask);
        if let Some((_, why)) = UNMATCHED.iter().find(|(h, _)| *h == host) {
            assert!(
                found.is_none(),
                "{source}: {mask} is listed as unmatched ({why}) but maps to {:?}",
                found.map(|i| &i.id)
            );
            continue;
        }
        let inst =
            found.unwrap_or_else(|| panic!("{source}: {mask} (host {host}) maps to nothing"));
        // The institution must be the one the mask names, not a lucky overlap.
        let lower = mask.to_ascii_lowercase();
        assert!(
            inst.domains.iter().any(|d| lower.contains(d.as_str())),
            "{source}: {mask} maps to {} whose domains {:?} it does not name",
            inst.id,
            inst.domains
        );
        checked += 1;
    }
    checked
}

#[test]
fn zeus_kit_masks_map_to_institutions() {
    let index = InstitutionIndex::new(bundled_registry().institutions);
    let masks = zeus_masks(&read(
        "../inject/tests/data/zeus-2.0.8.9-kit-webinjects.txt",
    ));
    assert!(masks.len() > 100, "only {} set_url lines", masks.len());
    let checked = check(&index, "zeus kit", &masks);
    assert!(checked > 100, "only {checked} masks checked");
}

#[test]
fn trickbot_and_tinynuke_masks_map_to_institutions() {
    let index = InstitutionIndex::new(bundled_registry().institutions);
    let dinj = read("tests/data/trickbot-dinj.xml");
    let sinj = read("tests/data/trickbot-sinj.xml");
    let mut masks = xml_values(&dinj, "lm");
    masks.extend(xml_values(&sinj, "mm"));
    masks.extend(xml_values(&sinj, "sm"));
    assert!(masks.len() > 40);
    assert!(check(&index, "trickbot", &masks) > 25);

    let tinynuke: serde_json::Value =
        serde_json::from_str(&read("tests/data/tinynuke-injects.json")).expect("TinyNuke JSON");
    let hosts: Vec<String> = tinynuke["injects"]
        .as_array()
        .map(|injects| {
            injects
                .iter()
                .filter_map(|i| i["host"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(hosts.len(), 3);
    assert_eq!(check(&index, "tinynuke", &hosts), 3);
}
