//! Mask matching and the institution registry, shared by inject analysis and record analysis.
//!
//! Banking trojans say which pages to attack with masks, and each family has its own syntax
//! (`../shared/design/formats/webinjects.md` §1.4):
//!
//! | mask | where | any run | any one | match | API |
//! | --- | --- | --- | --- | --- | --- |
//! | ZeuS URL | `set_url`, WebFilters, WebFakes | `*` | `#` (`?` is literal) | whole URL | [`url_mask_matches`] |
//! | post data | `set_url` black/white lists | `*` | `?` | whole body, `\r\n` ≡ `\n` | [`PostDataMask`] |
//! | page context | `data_before`, `data_after`, `matched_context` | `*` (lazy) | `?` | leftmost substring, `\r\n` ≡ `\n`, span returned | [`ContextMask`] |
//! | glob | TinyNuke, TrickBot | `*` | — | whole URL, case-insensitive | [`glob_matches`] |
//! | regex | Dridex | | | unanchored search | [`RegexMask`] |
//!
//! There is no escape character in any of the wildcard syntaxes. ASCII case folding is
//! optional where ZeuS makes it a flag (`I` for URLs, `C` for contexts). No matcher
//! backtracks; each module documents its worst case.
//!
//! [`MaskIndex`] answers "which of these 100,000 masks match this URL" with an Aho-Corasick
//! automaton over literal fragments. [`InstitutionIndex`] maps URLs and inject masks to the
//! institutions of a [`Registry`](dropwatch_model::Registry), and [`bundled_registry`] is the
//! registry that ships with dropwatch (`docs/registry.md`).
//!
//! No I/O.

mod context;
mod error;
mod index;
mod institutions;
mod regex;
mod registry;
mod url;

pub use context::{context_find, postdata_mask_matches, ContextMask, PostDataMask};
pub use error::MaskError;
pub use index::{MaskIndex, MaskIndexBuilder, MaskIndexStats, MIN_FRAGMENT_LEN};
pub use institutions::InstitutionIndex;
pub use regex::RegexMask;
pub use registry::{bundled_registry, is_valid_domain};
pub use url::{glob_matches, url_mask_matches};

/// The lowercase host of a URL, if it has one. Accepts scheme-less `host/path` too.
pub fn host_of(url: &str) -> Option<String> {
    let trimmed = url.trim();
    let parsed = ::url::Url::parse(trimmed)
        .or_else(|_| ::url::Url::parse(&format!("http://{}", trimmed.trim_start_matches('/'))))
        .ok()?;
    parsed
        .host_str()
        .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
}

/// True if `host` is `domain` or one of its subdomains (ASCII case-insensitive; a leading `*.`
/// and trailing dots of `domain` are ignored).
pub fn host_in_domain(host: &str, domain: &str) -> bool {
    // Bytes, not `str` slices: a cut inside a multi-byte character must not panic.
    let host = host.as_bytes();
    let domain = domain
        .trim_start_matches("*.")
        .trim_end_matches('.')
        .as_bytes();
    host.eq_ignore_ascii_case(domain)
        || (host.len() > domain.len()
            && host[host.len() - domain.len() - 1] == b'.'
            && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_domains() {
        assert_eq!(
            host_of("https://IB.Bank.example:443/x").as_deref(),
            Some("ib.bank.example")
        );
        assert_eq!(
            host_of("bank.example/login").as_deref(),
            Some("bank.example")
        );
        assert!(host_in_domain("ib.bank.example", "bank.example"));
        assert!(host_in_domain("ib.bank.example", "*.BANK.example."));
        assert!(!host_in_domain("evilbank.example", "bank.example"));
        assert!(!host_in_domain("ébank.example", "bank.example"));
        assert!(!host_in_domain("é", "a"));
    }
}
