//! The institution registry that ships with dropwatch (`data/institutions.json`).
//!
//! The format and how to add institutions of your own are in `docs/registry.md`.

use dropwatch_model::Registry;

/// The bundled registry as JSON, in the [`Registry`] shape.
const BUNDLED: &str = include_str!("../data/institutions.json");

/// The registry bundled with dropwatch: the major Japanese banks, and the banks and payment
/// services targeted by the public WebInject corpus (ZeuS, TinyNuke, TrickBot).
///
/// Institutions are grouped by country; where two overlap, the more specific is listed first
/// (see the tie rules of [`InstitutionIndex`](crate::InstitutionIndex)).
pub fn bundled_registry() -> Registry {
    // The file is part of the crate, not input; its unit test proves it parses.
    serde_json::from_str(BUNDLED).expect("data/institutions.json is a valid registry")
}

/// True for a lowercase DNS hostname with at least two labels: labels of 1 to 63 ASCII
/// letters, digits or hyphens, not starting or ending with a hyphen, 253 bytes at most.
pub fn is_valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;
    use crate::InstitutionIndex;

    #[test]
    fn bundled_registry_is_well_formed() {
        let registry = bundled_registry();
        assert!(registry.institutions.len() > 100);
        let mut ids = HashSet::new();
        let mut domains = HashSet::new();
        for inst in &registry.institutions {
            assert!(ids.insert(inst.id.as_str()), "duplicate id {}", inst.id);
            let country = inst.country.to_ascii_lowercase();
            let slug_ok = inst
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            assert!(slug_ok, "id {} is not a lowercase slug", inst.id);
            assert!(
                inst.id.starts_with(&format!("{country}-")) || !inst.id.contains('-'),
                "id {} does not start with its country {}",
                inst.id,
                inst.country
            );
            assert!(
                inst.country.len() == 2 && inst.country.bytes().all(|b| b.is_ascii_uppercase()),
                "{}: country {:?}",
                inst.id,
                inst.country
            );
            assert!(!inst.name.trim().is_empty(), "{} has no name", inst.id);
            assert!(!inst.domains.is_empty(), "{} has no domain", inst.id);
            for domain in &inst.domains {
                assert!(
                    is_valid_domain(domain),
                    "{}: bad domain {domain:?}",
                    inst.id
                );
                assert!(
                    domains.insert(domain.as_str()),
                    "{}: domain {domain} listed twice",
                    inst.id
                );
            }
        }
        // Every institution is reachable through its own domains.
        let index = InstitutionIndex::new(registry.institutions.clone());
        for inst in &registry.institutions {
            for domain in &inst.domains {
                let found = index.lookup_url(&format!("https://{domain}/"));
                assert!(found.is_some(), "{domain} maps to nothing");
            }
        }
    }

    #[test]
    fn japanese_banks_are_covered() {
        let registry = bundled_registry();
        let mut per_country: BTreeMap<&str, usize> = BTreeMap::new();
        for inst in &registry.institutions {
            *per_country.entry(inst.country.as_str()).or_default() += 1;
        }
        assert!(
            per_country.get("JP").copied().unwrap_or(0) >= 40,
            "{per_country:?}"
        );
        let index = InstitutionIndex::new(registry.institutions);
        for (url, id) in [
            (
                "https://entry11.bk.mufg.jp/ibg/dfw/APLIN/loginib/login",
                "jp-mufg",
            ),
            ("https://direct.smbc.co.jp/aib/aibgsjsw5001.jsp", "jp-smbc"),
            (
                "https://web.ib.mizuhobank.co.jp/servlet/LOGBNK0000000B.do",
                "jp-mizuho",
            ),
            (
                "https://direct.jp-bank.japanpost.jp/tp1web/U010101WAK.do",
                "jp-japan-post-bank",
            ),
            (
                "https://fes.rakuten-bank.co.jp/MS/main/RbS?CurrentPageID=START",
                "jp-rakuten",
            ),
            (
                "https://www.netbk.co.jp/contents/pages/wpl010101/i010101CT/DI01010210",
                "jp-sbi-sumishin",
            ),
        ] {
            assert_eq!(
                index.lookup_url(url).map(|i| i.id.as_str()),
                Some(id),
                "{url}"
            );
        }
    }

    #[test]
    fn domain_validation() {
        assert!(is_valid_domain("bk.mufg.jp"));
        assert!(is_valid_domain("77bank.co.jp"));
        assert!(!is_valid_domain("localhost"));
        assert!(!is_valid_domain("Bank.example"));
        assert!(!is_valid_domain("-a.example"));
        assert!(!is_valid_domain("a..example"));
        assert!(!is_valid_domain("*.bank.example"));
        assert!(!is_valid_domain(&format!("{}.example", "a".repeat(64))));
    }
}
