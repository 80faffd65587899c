//! Mask matching, shared by inject analysis and record analysis.
//!
//! ZeuS URL masks (`set_url`, WebFilters) match the *whole* URL: `*` is any run of bytes, `#` is
//! any one byte, and `?` is a literal character (see `../shared/design/formats/webinjects.md`
//! §1.4). There is no escape character.
//!
//! The matcher splits the mask at `*` and places each literal piece leftmost; for a mask with
//! no `#` each placement is one linear substring search, so matching is linear in the URL for
//! every mask found in the wild. (A piece containing `#` is searched naively, which is bounded
//! by piece length × URL length.)

use dropwatch_model::Institution;

/// True if `text` matches the ZeuS URL mask `mask` as a whole.
pub fn url_mask_matches(mask: &str, text: &str, case_insensitive: bool) -> bool {
    glob_matches(mask.as_bytes(), text.as_bytes(), b'#', case_insensitive)
}

/// Whole-string glob match where `*` is any run and `one` is any single byte.
fn glob_matches(mask: &[u8], text: &[u8], one: u8, ci: bool) -> bool {
    let pieces: Vec<&[u8]> = mask.split(|&b| b == b'*').collect();
    if pieces.len() == 1 {
        return mask.len() == text.len() && piece_eq(mask, text, one, ci);
    }
    let first = pieces[0];
    let last = pieces[pieces.len() - 1];
    if first.len() + last.len() > text.len() {
        return false;
    }
    if !piece_eq(first, &text[..first.len()], one, ci) {
        return false;
    }
    if !piece_eq(last, &text[text.len() - last.len()..], one, ci) {
        return false;
    }
    // Middle pieces go leftmost, in order, between the prefix and the suffix. Leftmost
    // placement is optimal for `*`-separated pieces, so no backtracking is needed.
    let mut pos = first.len();
    let end = text.len() - last.len();
    for piece in &pieces[1..pieces.len() - 1] {
        match find_piece(piece, &text[pos..end], one, ci) {
            Some(at) => pos += at + piece.len(),
            None => return false,
        }
    }
    true
}

fn piece_eq(piece: &[u8], text: &[u8], one: u8, ci: bool) -> bool {
    piece.len() == text.len()
        && piece
            .iter()
            .zip(text)
            .all(|(&p, &t)| p == one || p == t || (ci && p.eq_ignore_ascii_case(&t)))
}

fn find_piece(piece: &[u8], hay: &[u8], one: u8, ci: bool) -> Option<usize> {
    if piece.is_empty() {
        return Some(0);
    }
    if piece.len() > hay.len() {
        return None;
    }
    hay.windows(piece.len())
        .position(|w| piece_eq(piece, w, one, ci))
}

/// The lowercase host of a URL, if it has one. Accepts scheme-less `host/path` too.
pub fn host_of(url: &str) -> Option<String> {
    let trimmed = url.trim();
    let parsed = url::Url::parse(trimmed)
        .or_else(|_| url::Url::parse(&format!("http://{}", trimmed.trim_start_matches('/'))))
        .ok()?;
    parsed
        .host_str()
        .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
}

/// True if `host` is `domain` or one of its subdomains.
pub fn host_in_domain(host: &str, domain: &str) -> bool {
    let domain = domain.trim_start_matches("*.").trim_end_matches('.');
    host.eq_ignore_ascii_case(domain)
        || (host.len() > domain.len()
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
            && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain))
}

/// Maps URLs and URL masks to the institutions of a registry.
#[derive(Debug, Clone, Default)]
pub struct InstitutionIndex {
    institutions: Vec<Institution>,
}

impl InstitutionIndex {
    pub fn new(institutions: Vec<Institution>) -> InstitutionIndex {
        InstitutionIndex { institutions }
    }

    pub fn institutions(&self) -> &[Institution] {
        &self.institutions
    }

    pub fn get(&self, id: &str) -> Option<&Institution> {
        self.institutions.iter().find(|i| i.id == id)
    }

    /// The institution a concrete URL belongs to: by host against its domains, then by its masks.
    pub fn lookup_url(&self, url: &str) -> Option<&Institution> {
        let host = host_of(url);
        if let Some(host) = &host {
            if let Some(inst) = self
                .institutions
                .iter()
                .find(|i| i.domains.iter().any(|d| host_in_domain(host, d)))
            {
                return Some(inst);
            }
        }
        self.institutions
            .iter()
            .find(|i| i.url_masks.iter().any(|m| url_mask_matches(m, url, true)))
    }

    /// The institution an inject's URL mask targets.
    ///
    /// The mask's host part is read up to its first wildcard; what is left must lie inside one of
    /// the institution's domains (`https://*.bank.example/*` targets `bank.example`).
    pub fn lookup_mask(&self, mask: &str) -> Option<&Institution> {
        let rest = mask.split_once("://").map_or(mask, |(_, r)| r);
        let host_part = rest.split(['/', '?']).next().unwrap_or("");
        let host_part = host_part.rsplit_once('@').map_or(host_part, |(_, h)| h);
        let host_part = host_part.split(':').next().unwrap_or("");
        // The literal tail of the host after its last wildcard is what the mask commits to.
        let literal_tail = host_part
            .rsplit(['*', '#'])
            .next()
            .unwrap_or("")
            .trim_start_matches('.');
        if literal_tail.contains('.') {
            let tail = literal_tail.to_ascii_lowercase();
            if let Some(inst) = self.institutions.iter().find(|i| {
                i.domains.iter().any(|d| {
                    host_in_domain(&tail, d) || host_in_domain(d, &tail) && tail_is_specific(&tail)
                })
            }) {
                return Some(inst);
            }
        }
        self.lookup_url(mask)
    }
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

    #[test]
    fn zeus_url_masks() {
        assert!(url_mask_matches(
            "*c_toolbar.js*",
            "http://x/c_toolbar.js?v=1",
            false
        ));
        assert!(url_mask_matches(
            "https://www#.usbank.com/*",
            "https://www4.usbank.com/login",
            false
        ));
        assert!(!url_mask_matches(
            "https://www#.usbank.com/*",
            "https://www.usbank.com/login",
            false
        ));
        // `?` is literal in URL masks.
        assert!(url_mask_matches(
            "https://www.paypal.com/*/webscr?cmd=_account",
            "https://www.paypal.com/us/webscr?cmd=_account",
            false
        ));
        assert!(!url_mask_matches("https://a/?x", "https://a/bx", false));
        assert!(url_mask_matches("*", "", false));
        assert!(url_mask_matches("a*b*c", "abc", false));
        assert!(!url_mask_matches("a*b*c", "acb", false));
        assert!(!url_mask_matches("ab*ba", "aba", false));
        assert!(url_mask_matches("HTTPS://BANK/*", "https://bank/x", true));
        assert!(!url_mask_matches("HTTPS://BANK/*", "https://bank/x", false));
    }

    #[test]
    fn hostile_masks_stay_linear_enough() {
        let text = "a".repeat(20_000);
        let mask = format!("{}b", "*a".repeat(2_000));
        assert!(!url_mask_matches(&mask, &text, false));
    }

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
        assert!(!host_in_domain("evilbank.example", "bank.example"));
    }

    fn index() -> InstitutionIndex {
        InstitutionIndex::new(vec![Institution {
            id: "jp-a".into(),
            name: "A Bank".into(),
            country: "JP".into(),
            domains: vec!["a-bank.example".into()],
            url_masks: vec!["https://login.partner.example/a/*".into()],
            account_fields: vec![],
        }])
    }

    #[test]
    fn institution_lookup() {
        let idx = index();
        assert_eq!(
            idx.lookup_url("https://ib.a-bank.example/login")
                .map(|i| i.id.as_str()),
            Some("jp-a")
        );
        assert_eq!(
            idx.lookup_url("https://login.partner.example/a/x")
                .map(|i| i.id.as_str()),
            Some("jp-a")
        );
        assert!(idx.lookup_url("https://other.example/").is_none());
        assert_eq!(
            idx.lookup_mask("https://*.a-bank.example/*")
                .map(|i| i.id.as_str()),
            Some("jp-a")
        );
        assert_eq!(
            idx.lookup_mask("*a-bank.example/login*")
                .map(|i| i.id.as_str()),
            Some("jp-a")
        );
        assert!(idx.lookup_mask("https://*.example/*").is_none());
        assert!(idx.lookup_mask("*").is_none());
    }
}
