//! Noise control: hosts that must never become indicators.
//!
//! The false positive peers' users complain about most is a benign host in a feed: a jQuery CDN
//! an inject loads, the bank's own site, `8.8.8.8`. An [`AllowList`] holds three kinds of entry,
//! each with the reason it is reported under:
//!
//! - the bundled list: the benign CDNs inject analysis already recognises
//!   ([`dropwatch_inject::analyze::BENIGN_HOSTS`]) plus big, well-known hosts ([`WELL_KNOWN`]);
//! - every registered institution's own domains;
//! - an optional user file (`--allow FILE`): one domain or URL prefix per line, `#` comments.
//!
//! A domain entry matches its host and every subdomain, on label boundaries
//! (`jquery.com` matches `code.jquery.com`, not `evil-jquery.com`); an IP entry matches that
//! address; a URL prefix matches URLs that start with it (ASCII case-insensitively).
//! Independently, addresses that are not public (loopback, RFC 1918, link-local, CGNAT,
//! multicast, `localhost`) are suppressed unless the caller keeps them for lab data.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dropwatch_masks::host_in_domain;
use dropwatch_model::Institution;
use serde::Serialize;

/// Big, well-known hosts that are not criminal infrastructure even when an inject or config
/// names them. Shared hosting suffixes (cloud storage, blog and page hosts) are deliberately
/// absent: criminals rent subdomains there, and those subdomains are good indicators.
pub const WELL_KNOWN: &[&str] = &[
    "google.com",
    "googleapis.com",
    "gstatic.com",
    "googletagmanager.com",
    "google-analytics.com",
    "youtube.com",
    "jquery.com",
    "jsdelivr.net",
    "cdnjs.com",
    "cloudflare.com",
    "bootstrapcdn.com",
    "unpkg.com",
    "microsoft.com",
    "windows.com",
    "windowsupdate.com",
    "live.com",
    "bing.com",
    "apple.com",
    "mozilla.org",
    "w3.org",
    "wikipedia.org",
    "facebook.com",
    "twitter.com",
    "yahoo.com",
    "yahoo.co.jp",
    "digicert.com",
    "letsencrypt.org",
    "verisign.com",
    "example.com",
    "example.net",
    "example.org",
];

/// Why a host was kept out of the exports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum AllowReason {
    /// On the bundled list of benign CDNs and well-known hosts.
    Bundled,
    /// One of a registered institution's own domains (the institution's id).
    Institution(String),
    /// In the user's allow file (the line number).
    UserFile(usize),
    /// Loopback, private, link-local or another address that is not on the public Internet.
    NonPublicAddress,
}

impl std::fmt::Display for AllowReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllowReason::Bundled => f.write_str("bundled allow-list"),
            AllowReason::Institution(id) => write!(f, "own domain of institution {id}"),
            AllowReason::UserFile(line) => write!(f, "allow file line {line}"),
            AllowReason::NonPublicAddress => f.write_str("non-public address"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// A domain name (lower case, punycode) or an IP address in canonical text.
    Host(String),
    /// A URL prefix, lower case.
    UrlPrefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    pattern: Pattern,
    reason: AllowReason,
}

/// A line of an allow file that is neither a domain nor a URL prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("allow file line {line}: {message}")]
pub struct AllowFileError {
    pub line: usize,
    pub message: String,
}

/// Hosts and URL prefixes that never become indicators. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    entries: Vec<Entry>,
    keep_non_public: bool,
}

/// Longest line of an allow file that is considered; a longer one is an error, not a pattern.
const MAX_LINE: usize = 2048;

impl AllowList {
    /// An empty list (nothing allowed but non-public addresses).
    pub fn empty() -> AllowList {
        AllowList::default()
    }

    /// The bundled list: benign CDNs and well-known hosts.
    pub fn bundled() -> AllowList {
        let mut list = AllowList::default();
        for host in dropwatch_inject::analyze::BENIGN_HOSTS
            .iter()
            .chain(WELL_KNOWN)
        {
            list.entries.push(Entry {
                pattern: Pattern::Host(host.to_string()),
                reason: AllowReason::Bundled,
            });
        }
        list
    }

    /// Adds every domain of every institution.
    pub fn add_institutions(&mut self, institutions: &[Institution]) {
        for inst in institutions {
            for domain in &inst.domains {
                if let Some(host) = normalise_host(domain) {
                    self.entries.push(Entry {
                        pattern: Pattern::Host(host),
                        reason: AllowReason::Institution(inst.id.clone()),
                    });
                }
            }
        }
    }

    /// Adds the entries of an allow file's text; on a bad line nothing is added and every bad
    /// line is returned. Never panics, whatever the text.
    pub fn add_user_file(&mut self, text: &str) -> Result<usize, Vec<AllowFileError>> {
        let (entries, errors) = parse_allow_file(text);
        if !errors.is_empty() {
            return Err(errors);
        }
        let n = entries.len();
        self.entries.extend(entries);
        Ok(n)
    }

    /// Adds `other`'s entries; its choice on non-public addresses wins.
    pub fn merge(&mut self, other: &AllowList) {
        self.entries.extend(other.entries.iter().cloned());
        self.keep_non_public = other.keep_non_public;
    }

    /// Keeps (true) or suppresses (false, the default) non-public addresses.
    pub fn keep_non_public(&mut self, keep: bool) {
        self.keep_non_public = keep;
    }

    /// Why `url` (whose host is `host`) must not become an indicator, if it must not.
    pub fn check(&self, url: &str, host: &str) -> Option<AllowReason> {
        let host = normalise_host(host).unwrap_or_else(|| host.to_ascii_lowercase());
        if !self.keep_non_public && is_non_public(&host) {
            return Some(AllowReason::NonPublicAddress);
        }
        self.entries
            .iter()
            .find(|e| match &e.pattern {
                Pattern::Host(h) => {
                    if h.parse::<IpAddr>().is_ok() || host.parse::<IpAddr>().is_ok() {
                        *h == host
                    } else {
                        host_in_domain(&host, h)
                    }
                }
                Pattern::UrlPrefix(p) => starts_with_ignore_case(url.trim(), p),
            })
            .map(|e| e.reason.clone())
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Lower-case ASCII (punycode) form of a domain or IP address, without brackets or a trailing
/// dot; `None` if it is neither.
pub fn normalise_host(text: &str) -> Option<String> {
    let t = text.trim().trim_start_matches("*.").trim_end_matches('.');
    let t = t
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(t);
    if t.is_empty() || t.len() > 253 {
        return None;
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    match url::Host::parse(t).ok()? {
        url::Host::Domain(d) => {
            let ok = d
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
                && !d.starts_with('.')
                && !d.contains("..");
            ok.then(|| d.to_ascii_lowercase())
        }
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(ip.to_string()),
    }
}

/// True for an address or name that is not on the public Internet.
pub fn is_non_public(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(&h);
    match h.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => non_public_v4(ip),
        Ok(IpAddr::V6(ip)) => non_public_v6(ip),
        Err(_) => false,
    }
}

fn non_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT, RFC 6598
        || a >= 240
}

fn non_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
}

/// Parses an allow file: one domain, IP address or URL prefix per line; `#` starts a comment;
/// blank lines are ignored. Returns the entries and the bad lines.
fn parse_allow_file(text: &str) -> (Vec<Entry>, Vec<AllowFileError>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |message: &str| AllowFileError {
            line: line_no,
            message: message.to_string(),
        };
        if line.len() > MAX_LINE {
            errors.push(bad("line too long"));
            continue;
        }
        if line.split_whitespace().nth(1).is_some() {
            errors.push(bad("one domain or URL prefix per line"));
            continue;
        }
        let pattern = if line.contains("://") || line.contains('/') {
            let lower = line.to_ascii_lowercase();
            let host_part = lower
                .split_once("://")
                .map_or(lower.as_str(), |(_, rest)| rest)
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("");
            let host_part = host_part.rsplit('@').next().unwrap_or("");
            let host_only = if host_part.starts_with('[') {
                host_part.split_inclusive(']').next().unwrap_or("")
            } else {
                host_part.split(':').next().unwrap_or("")
            };
            if normalise_host(host_only).is_none() {
                errors.push(bad("a URL prefix must name a host"));
                continue;
            }
            Pattern::UrlPrefix(lower)
        } else {
            match normalise_host(line) {
                Some(h) if h.contains('.') || h.contains(':') => Pattern::Host(h),
                _ => {
                    errors.push(bad("not a domain name, IP address or URL prefix"));
                    continue;
                }
            }
        };
        entries.push(Entry {
            pattern,
            reason: AllowReason::UserFile(line_no),
        });
    }
    (entries, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, domain: &str) -> Institution {
        Institution {
            id: id.into(),
            name: id.into(),
            country: "JP".into(),
            domains: vec![domain.into()],
            url_masks: vec![],
            account_fields: vec![],
        }
    }

    #[test]
    fn domains_match_on_label_boundaries() {
        let list = AllowList::bundled();
        let url = "https://ajax.googleapis.com/ajax/libs/jquery/1.7.2/jquery.min.js";
        assert_eq!(
            list.check(url, "ajax.googleapis.com"),
            Some(AllowReason::Bundled)
        );
        assert_eq!(
            list.check("https://code.jquery.com/x.js", "CODE.jQuery.com."),
            Some(AllowReason::Bundled)
        );
        assert_eq!(
            list.check("https://evil-jquery.com/x.js", "evil-jquery.com"),
            None
        );
        assert_eq!(
            list.check(
                "https://jquery.com.evil.example/",
                "jquery.com.evil.example"
            ),
            None
        );
    }

    #[test]
    fn institutions_own_domains_are_allowed() {
        let mut list = AllowList::empty();
        list.add_institutions(&[inst("jp-sakura", "sakura-ginko.example")]);
        assert_eq!(
            list.check(
                "https://ib.sakura-ginko.example/login",
                "ib.sakura-ginko.example"
            ),
            Some(AllowReason::Institution("jp-sakura".into()))
        );
        assert_eq!(
            list.check(
                "https://sakura-ginko.example.evil.example/",
                "sakura-ginko.example.evil.example"
            ),
            None
        );
    }

    #[test]
    fn non_public_addresses_are_suppressed_unless_kept() {
        let mut list = AllowList::empty();
        for host in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "localhost",
            "[::1]",
            "fd00::1",
            "fe80::1",
            "224.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(
                list.check("http://x/", host),
                Some(AllowReason::NonPublicAddress),
                "{host}"
            );
        }
        for host in ["203.0.113.7", "8.8.4.4", "2001:db8::1", "drop.example"] {
            assert_eq!(list.check("http://x/", host), None, "{host}");
        }
        list.keep_non_public(true);
        assert_eq!(list.check("http://127.0.0.1/", "127.0.0.1"), None);
    }

    #[test]
    fn user_file_domains_ips_and_url_prefixes() {
        let mut list = AllowList::empty();
        let n = list
            .add_user_file(
                "# benign things we saw\n\
                 \n\
                 partner-cdn.example   # a comment after the entry\n\
                 *.static.example\n\
                 203.0.113.9\n\
                 https://Shared.Example/benign/\n",
            )
            .unwrap();
        assert_eq!(n, 4);
        assert_eq!(
            list.check("http://a.partner-cdn.example/x", "a.partner-cdn.example"),
            Some(AllowReason::UserFile(3))
        );
        assert_eq!(
            list.check("http://img.static.example/", "img.static.example"),
            Some(AllowReason::UserFile(4))
        );
        assert_eq!(
            list.check("http://203.0.113.9/gate.php", "203.0.113.9"),
            Some(AllowReason::UserFile(5))
        );
        assert_eq!(list.check("http://203.0.113.90/", "203.0.113.90"), None);
        assert_eq!(
            list.check("https://shared.example/benign/lib.js", "shared.example"),
            Some(AllowReason::UserFile(6))
        );
        assert_eq!(
            list.check("https://shared.example/gate.php", "shared.example"),
            None
        );
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let mut list = AllowList::empty();
        let errors = list
            .add_user_file("good.example\nno spaces.example\n\u{0}\nhttp:///path\nlocalhost\n")
            .unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5]);
        assert!(list.entries.is_empty(), "nothing is added from a bad file");
    }

    /// The allow file is user input of any shape: parsing must never panic. A seeded stream of
    /// hostile lines (multi-byte characters, brackets, schemes, controls, long runs).
    #[test]
    fn the_allow_file_parser_never_panics() {
        const PIECES: &[&str] = &[
            "http://",
            "https://",
            "[",
            "]",
            ":",
            "/",
            "#",
            "*.",
            ".",
            "..",
            "@",
            "%",
            "\u{fffd}",
            "é",
            "日本",
            "\u{202e}",
            "\t",
            "\r",
            " ",
            "xn--",
            "-",
            "_",
            "::1",
            "0x7f.1",
            "999.999.1.1",
            "a",
            "example",
            "\u{0}",
            "?",
            "\\",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..(next() % 12) {
                for _ in 0..(next() % 10) {
                    text.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
                }
                text.push('\n');
            }
            let mut list = AllowList::bundled();
            let _ = list.add_user_file(&text);
            let _ = list.check(&text, &text);
        }
        let long = "a".repeat(100_000);
        assert!(AllowList::empty().add_user_file(&long).is_err());
    }
}
