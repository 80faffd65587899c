//! [`InstitutionIndex`]: which institution a URL or an inject's URL mask belongs to.

use std::collections::HashMap;

use dropwatch_model::Institution;

use crate::index::MaskIndex;
use crate::{host_of, MaskIndexBuilder};

/// Maps URLs and URL masks to the institutions of a registry.
///
/// # Tie rules
///
/// When several institutions claim a URL, the one listed **first** wins, whichever claim is
/// more specific: if `a.example` is listed before `ib.a.example`, `ib.a.example/login` belongs to
/// the first. A domain claim always beats a [`url_masks`](Institution::url_masks) claim. Put
/// the more specific institution first when two overlap.
///
/// # Cost
///
/// Domains sit in hash maps keyed by lowercased domain: a lookup walks the labels of the host
/// (`ib.bank.example`, `bank.example`, `example`), so it costs a few hash probes whatever the
/// number of institutions. The `url_masks` of all institutions form one [`MaskIndex`].
/// Domains are normalised as [`host_in_domain`](crate::host_in_domain) reads them (a leading
/// `*.` and trailing dots dropped, ASCII lowercase); empty ones are ignored.
#[derive(Debug, Clone, Default)]
pub struct InstitutionIndex {
    institutions: Vec<Institution>,
    /// Normalised domain → first institution listing it.
    by_domain: HashMap<String, usize>,
    /// Every label suffix of a normalised domain (the domain included) → first institution
    /// with such a domain: which institutions sit *under* a mask's host.
    by_parent: HashMap<String, usize>,
    /// Id → first institution with that id.
    by_id: HashMap<String, usize>,
    /// The institutions' `url_masks`, ZeuS syntax, case-insensitive; id = position.
    masks: MaskIndex,
}

impl InstitutionIndex {
    /// Indexes `institutions`, keeping their order (see the tie rules).
    pub fn new(institutions: Vec<Institution>) -> InstitutionIndex {
        let mut by_domain = HashMap::new();
        let mut by_parent = HashMap::new();
        let mut by_id = HashMap::new();
        let mut masks = MaskIndexBuilder::new();
        for (at, inst) in institutions.iter().enumerate() {
            by_id.entry(inst.id.clone()).or_insert(at);
            for domain in &inst.domains {
                let domain = normalize_domain(domain);
                if domain.is_empty() {
                    continue;
                }
                for parent in label_suffixes(&domain) {
                    by_parent.entry(parent.to_owned()).or_insert(at);
                }
                by_domain.entry(domain).or_insert(at);
            }
            for mask in &inst.url_masks {
                masks.add_zeus(at, mask, true);
            }
        }
        InstitutionIndex {
            institutions,
            by_domain,
            by_parent,
            by_id,
            masks: masks.build(),
        }
    }

    /// The institutions, in registry order.
    pub fn institutions(&self) -> &[Institution] {
        &self.institutions
    }

    /// The institution with this id (the first, should ids repeat).
    pub fn get(&self, id: &str) -> Option<&Institution> {
        self.by_id.get(id).and_then(|&at| self.institutions.get(at))
    }

    /// The institution a concrete URL belongs to: by host against its domains, then by its masks.
    pub fn lookup_url(&self, url: &str) -> Option<&Institution> {
        let by_host = host_of(url).and_then(|host| self.first_domain_containing(&host));
        by_host
            .or_else(|| self.masks.first_match(url))
            .and_then(|at| self.institutions.get(at))
    }

    /// The institution an inject's URL mask targets.
    ///
    /// The mask's host part is read up to its first wildcard; what is left must lie inside one of
    /// the institution's domains (`https://*.bank.example/*` targets `bank.example`), or, when it
    /// names at least a registrable-looking domain, contain one (`*.bank.example/*` also targets
    /// an institution whose domain is `ib.bank.example`). Otherwise the mask is tried as a URL
    /// ([`lookup_url`](Self::lookup_url)).
    ///
    /// If both find nothing, the mask is read once more, more loosely: a wildcard scheme is
    /// skipped (`*//money.bank.example/`, `*/my.bank.example/*`), and every literal run of the
    /// host part that contains a dot is tried, not only the last
    /// (`*online.bank.example*web/login*`, where the `*` may stand for part of the path).
    pub fn lookup_mask(&self, mask: &str) -> Option<&Institution> {
        self.by_host_tail(mask_host_part(mask, false))
            .and_then(|at| self.institutions.get(at))
            .or_else(|| self.lookup_url(mask))
            .or_else(|| {
                let host_part = mask_host_part(mask, true);
                let by_runs = host_part
                    .split(['*', '#'])
                    .map(|run| run.trim_start_matches('.'))
                    .filter(|run| run.contains('.'))
                    .filter_map(|run| self.first_domain_containing(&run.to_ascii_lowercase()))
                    .min();
                let at = min_some(self.by_host_tail(host_part), by_runs)?;
                self.institutions.get(at)
            })
    }

    /// The first institution that the literal tail of a mask's host part (after its last
    /// wildcard) lies inside, or, for a specific tail, above.
    fn by_host_tail(&self, host_part: &str) -> Option<usize> {
        // The literal tail of the host after its last wildcard is what the mask commits to.
        let literal_tail = host_part
            .rsplit(['*', '#'])
            .next()
            .unwrap_or("")
            .trim_start_matches('.');
        if !literal_tail.contains('.') {
            return None;
        }
        let tail = literal_tail.to_ascii_lowercase();
        let inside = self.first_domain_containing(&tail);
        let above = if tail_is_specific(&tail) {
            self.by_parent
                .get(normalize_domain(&tail).as_str())
                .copied()
        } else {
            None
        };
        min_some(inside, above)
    }

    /// The first institution with a domain that `host` is, or is a subdomain of.
    fn first_domain_containing(&self, host: &str) -> Option<usize> {
        // `host_in_domain(host, d)` holds iff `d` is `host` or what follows one of its dots.
        std::iter::once(host)
            .chain(host.match_indices('.').map(|(dot, _)| &host[dot + 1..]))
            .filter_map(|suffix| self.by_domain.get(suffix).copied())
            .min()
    }
}

/// The host part of a URL mask: after `scheme://` (or, with `wildcard_scheme`, after a leading
/// `*/` or `*//`), up to the first `/` or `?`, without user info and port.
fn mask_host_part(mask: &str, wildcard_scheme: bool) -> &str {
    let rest = match mask.split_once("://") {
        Some((_, rest)) => rest,
        None if wildcard_scheme => mask
            .strip_prefix('*')
            .filter(|r| r.starts_with('/'))
            .map_or(mask, |r| r.trim_start_matches('/')),
        None => mask,
    };
    let host_part = rest.split(['/', '?']).next().unwrap_or("");
    let host_part = host_part.rsplit_once('@').map_or(host_part, |(_, h)| h);
    host_part.split(':').next().unwrap_or("")
}

/// The smaller of two optional positions.
fn min_some(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A domain as [`host_in_domain`](crate::host_in_domain) reads it, lowercased.
fn normalize_domain(domain: &str) -> String {
    domain
        .trim_start_matches("*.")
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// `a.b.c`, `b.c`, `c`.
fn label_suffixes(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::once(domain).chain(domain.match_indices('.').map(|(dot, _)| &domain[dot + 1..]))
}

/// A host tail such as `bank.example` is specific; `com` or `co.jp` alone is not.
fn tail_is_specific(tail: &str) -> bool {
    tail.split('.').filter(|l| !l.is_empty()).count() >= 2
        && !matches!(
            tail,
            "co.jp" | "ne.jp" | "or.jp" | "co.uk" | "com.au" | "com.br"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{host_in_domain, url_mask_matches};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn inst(id: &str, domains: &[&str], masks: &[&str]) -> Institution {
        Institution {
            id: id.into(),
            name: id.to_uppercase(),
            country: "JP".into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            url_masks: masks.iter().map(|m| m.to_string()).collect(),
            account_fields: vec![],
        }
    }

    fn index() -> InstitutionIndex {
        InstitutionIndex::new(vec![inst(
            "jp-a",
            &["a-bank.example"],
            &["https://login.partner.example/a/*"],
        )])
    }

    fn id(found: Option<&Institution>) -> Option<&str> {
        found.map(|i| i.id.as_str())
    }

    #[test]
    fn institution_lookup() {
        let idx = index();
        assert_eq!(
            id(idx.lookup_url("https://ib.a-bank.example/login")),
            Some("jp-a")
        );
        assert_eq!(
            id(idx.lookup_url("https://login.partner.example/a/x")),
            Some("jp-a")
        );
        assert!(idx.lookup_url("https://other.example/").is_none());
        assert_eq!(
            id(idx.lookup_mask("https://*.a-bank.example/*")),
            Some("jp-a")
        );
        assert_eq!(id(idx.lookup_mask("*a-bank.example/login*")), Some("jp-a"));
        assert!(idx.lookup_mask("https://*.example/*").is_none());
        assert!(idx.lookup_mask("*").is_none());
        assert_eq!(id(idx.get("jp-a")), Some("jp-a"));
        assert!(idx.get("jp-b").is_none());
    }

    #[test]
    fn wildcard_schemes_and_ties() {
        let idx = InstitutionIndex::new(vec![
            inst("first", &["Bank.Example."], &[]),
            inst("sub", &["ib.bank.example"], &[]),
            inst(
                "deep",
                &["x.y.deep.example"],
                &["*//partner.example/deep/*"],
            ),
            inst("dup", &["*.bank.example", ""], &[]),
        ]);
        assert_eq!(
            id(idx.lookup_url("https://ib.bank.example/")),
            Some("first")
        );
        assert_eq!(id(idx.lookup_mask("*//ib.bank.example/")), Some("first"));
        assert_eq!(id(idx.lookup_mask("*/my.bank.example/*x*")), Some("first"));
        assert_eq!(id(idx.lookup_mask("*//deep.example/")), Some("deep"));
        assert_eq!(
            id(idx.lookup_mask("https://*.y.deep.example/*")),
            Some("deep")
        );
        assert_eq!(
            id(idx.lookup_url("http://partner.example/deep/1")),
            Some("deep")
        );
        assert!(idx.lookup_mask("*//mail.example/").is_none());
        assert!(idx.lookup_mask("*/x.htm*").is_none());
    }

    /// The old linear implementation, kept as the reference for the indexed one.
    struct Linear(Vec<Institution>);

    impl Linear {
        fn lookup_url(&self, url: &str) -> Option<&Institution> {
            if let Some(host) = host_of(url) {
                if let Some(i) = self
                    .0
                    .iter()
                    .find(|i| i.domains.iter().any(|d| host_in_domain(&host, d)))
                {
                    return Some(i);
                }
            }
            self.0
                .iter()
                .find(|i| i.url_masks.iter().any(|m| url_mask_matches(m, url, true)))
        }

        fn by_tail(&self, host_part: &str) -> Option<&Institution> {
            let tail = host_part
                .rsplit(['*', '#'])
                .next()
                .unwrap_or("")
                .trim_start_matches('.');
            if !tail.contains('.') {
                return None;
            }
            let tail = tail.to_ascii_lowercase();
            self.0.iter().find(|i| {
                i.domains.iter().any(|d| {
                    host_in_domain(&tail, d) || host_in_domain(d, &tail) && tail_is_specific(&tail)
                })
            })
        }

        fn lookup_mask(&self, mask: &str) -> Option<&Institution> {
            if let Some(i) = self.by_tail(mask_host_part(mask, false)) {
                return Some(i);
            }
            if let Some(i) = self.lookup_url(mask) {
                return Some(i);
            }
            let host_part = mask_host_part(mask, true);
            let by_tail = self.by_tail(host_part);
            let runs: Vec<String> = host_part
                .split(['*', '#'])
                .map(|r| r.trim_start_matches('.').to_ascii_lowercase())
                .filter(|r| r.contains('.'))
                .collect();
            self.0.iter().find(|i| {
                by_tail.is_some_and(|t| t.id == i.id)
                    || runs
                        .iter()
                        .any(|r| i.domains.iter().any(|d| host_in_domain(r, d)))
            })
        }
    }

    #[test]
    fn differential_against_linear_lookup() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let labels = ["a", "b", "ib", "bank", "pay", "x1", "co", "jp", "example"];
        let host = |rng: &mut ChaCha8Rng, max: usize| {
            (0..rng.random_range(1..=max))
                .map(|_| labels[rng.random_range(0..labels.len())])
                .collect::<Vec<_>>()
                .join(".")
        };
        let institutions: Vec<Institution> = (0..300)
            .map(|n| Institution {
                id: format!("i{n}"),
                name: String::new(),
                country: "JP".into(),
                domains: (0..rng.random_range(0..3))
                    .map(|_| host(&mut rng, 3))
                    .collect(),
                url_masks: (0..rng.random_range(0..2))
                    .map(|_| format!("*{}/{}*", host(&mut rng, 2), labels[rng.random_range(0..9)]))
                    .collect(),
                account_fields: vec![],
            })
            .collect();
        let linear = Linear(institutions.clone());
        let index = InstitutionIndex::new(institutions);
        let mut found = 0;
        for _ in 0..5_000 {
            let h = host(&mut rng, 4);
            let path = labels[rng.random_range(0..labels.len())];
            let url = format!("https://{h}/{path}");
            assert_eq!(
                id(index.lookup_url(&url)),
                id(linear.lookup_url(&url)),
                "{url}"
            );
            let mask = match rng.random_range(0..5) {
                0 => format!("https://*.{h}/*"),
                1 => format!("*{h}/{path}*"),
                2 => format!("*//{h}/"),
                3 => format!("*{h}*web/{path}*"),
                _ => format!("https://{h}#/*"),
            };
            assert_eq!(
                id(index.lookup_mask(&mask)),
                id(linear.lookup_mask(&mask)),
                "{mask}"
            );
            found += usize::from(index.lookup_mask(&mask).is_some());
        }
        assert!(found > 500, "only {found} masks mapped");
    }
}
