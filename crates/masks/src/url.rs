//! Whole-URL masks: ZeuS `set_url` masks and `*`-only globs.
//!
//! Both match the *whole* URL. The mask is split at `*` and each literal piece is placed
//! leftmost after the previous one; because every piece has a fixed length, leftmost placement
//! is optimal and no backtracking is needed. A piece is searched with `memchr::memmem` when it
//! is a plain case-sensitive literal and naively otherwise, so the worst case is
//! O(|mask| × |url|) byte comparisons (for pieces full of `#` or under ASCII case folding) and
//! linear for the literal masks found in the wild. No allocation.

/// The wildcard syntax of a whole-URL mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UrlSyntax {
    /// The byte that matches any one byte (`#` for ZeuS), if any.
    pub(crate) one: Option<u8>,
    /// ASCII case-insensitive comparison.
    pub(crate) ci: bool,
}

impl UrlSyntax {
    /// ZeuS `set_url` masks: `*`, `#`; `?` is literal.
    pub(crate) const fn zeus(ci: bool) -> UrlSyntax {
        UrlSyntax {
            one: Some(b'#'),
            ci,
        }
    }

    /// TinyNuke / TrickBot globs: `*` only, always case-insensitive.
    pub(crate) const GLOB: UrlSyntax = UrlSyntax {
        one: None,
        ci: true,
    };

    fn is_wild(self, b: u8) -> bool {
        b == b'*' || Some(b) == self.one
    }
}

/// True if `text` matches the ZeuS URL mask `mask` as a whole.
///
/// `*` is any run of bytes, `#` any one byte, `?` a literal character; there is no escape.
/// `case_insensitive` folds ASCII letters only (the `I` flag of `set_url`).
///
/// ```
/// use dropwatch_masks::url_mask_matches;
/// assert!(url_mask_matches("https://www#.usbank.com/*", "https://www4.usbank.com/login", false));
/// assert!(url_mask_matches("https://www.paypal.com/*/webscr?cmd=_account",
///                          "https://www.paypal.com/us/webscr?cmd=_account", false));
/// ```
pub fn url_mask_matches(mask: &str, text: &str, case_insensitive: bool) -> bool {
    whole_match(
        mask.as_bytes(),
        text.as_bytes(),
        UrlSyntax::zeus(case_insensitive),
    )
}

/// True if `text` matches the glob `mask` as a whole, ASCII case-insensitively.
///
/// `*` is any run; every other byte, `?` included, is literal. This is how TinyNuke host/path
/// masks and TrickBot `<lm>`/`<mm>`/`<sm>` masks match
/// ([`MaskKind::Glob`](dropwatch_model::MaskKind::Glob)).
///
/// ```
/// use dropwatch_masks::glob_matches;
/// assert!(glob_matches("*BANKINTER.com/*/*", "https://www.bankinter.com/a/b"));
/// assert!(!glob_matches("https://home?.bank.example/*", "https://home2.bank.example/x"));
/// ```
pub fn glob_matches(mask: &str, text: &str) -> bool {
    whole_match(mask.as_bytes(), text.as_bytes(), UrlSyntax::GLOB)
}

/// Whole-string match of `mask` against `text` under `syn`.
pub(crate) fn whole_match(mask: &[u8], text: &[u8], syn: UrlSyntax) -> bool {
    let Some(first_star) = memchr::memchr(b'*', mask) else {
        return piece_eq(mask, text, syn);
    };
    // There is at least one star, so `memrchr` finds one.
    let last_star = memchr::memrchr(b'*', mask).unwrap_or(first_star);
    let first = &mask[..first_star];
    let last = &mask[last_star + 1..];
    if first.len() + last.len() > text.len() {
        return false;
    }
    if !piece_eq(first, &text[..first.len()], syn)
        || !piece_eq(last, &text[text.len() - last.len()..], syn)
    {
        return false;
    }
    // Middle pieces go leftmost, in order, between the prefix and the suffix.
    let mut pos = first.len();
    let end = text.len() - last.len();
    if first_star < last_star {
        for piece in mask[first_star + 1..last_star].split(|&b| b == b'*') {
            match find_piece(piece, &text[pos..end], syn) {
                Some(at) => pos += at + piece.len(),
                None => return false,
            }
        }
    }
    true
}

/// `piece` (no `*`) equals `text` byte for byte, with the single-byte wildcard and case folding.
fn piece_eq(piece: &[u8], text: &[u8], syn: UrlSyntax) -> bool {
    piece.len() == text.len()
        && piece
            .iter()
            .zip(text)
            .all(|(&p, &t)| p == t || Some(p) == syn.one || (syn.ci && p.eq_ignore_ascii_case(&t)))
}

/// Leftmost position of `piece` (no `*`) in `hay`.
fn find_piece(piece: &[u8], hay: &[u8], syn: UrlSyntax) -> Option<usize> {
    if piece.is_empty() {
        return Some(0);
    }
    if piece.len() > hay.len() {
        return None;
    }
    let plain = !syn.ci && syn.one.is_none_or(|one| !piece.contains(&one));
    if plain {
        return memchr::memmem::find(hay, piece);
    }
    hay.windows(piece.len())
        .position(|w| piece_eq(piece, w, syn))
}

/// The longest run of literal bytes in `mask`: a fragment that every URL the mask matches
/// contains (ASCII case-insensitively when the mask folds case).
pub(crate) fn longest_literal(mask: &[u8], syn: UrlSyntax) -> &[u8] {
    mask.split(|&b| syn.is_wild(b)).fold(
        &[][..],
        |best, run| if run.len() > best.len() { run } else { best },
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
        assert!(url_mask_matches("**", "abc", false));
        assert!(url_mask_matches("a*b*c", "abc", false));
        assert!(!url_mask_matches("a*b*c", "acb", false));
        assert!(!url_mask_matches("ab*ba", "aba", false));
        assert!(url_mask_matches("HTTPS://BANK/*", "https://bank/x", true));
        assert!(!url_mask_matches("HTTPS://BANK/*", "https://bank/x", false));
        assert!(url_mask_matches("*/a#c/*", "x/aBc/y", false));
        assert!(url_mask_matches("*/A#C/*", "x/aBc/y", true));
        assert!(!url_mask_matches("", "a", false));
        assert!(url_mask_matches("", "", false));
    }

    #[test]
    fn globs_have_no_single_wildcard_and_fold_case() {
        assert!(glob_matches(
            "*bankinter.com/*/*",
            "https://WWW.BANKINTER.COM/a/b"
        ));
        assert!(!glob_matches(
            "*bankinter.com/*/*",
            "https://www.bankinter.com/a"
        ));
        assert!(glob_matches("a?c", "A?C"));
        assert!(!glob_matches("a?c", "abc"));
        assert!(!glob_matches("a#c", "abc"));
    }

    #[test]
    fn hostile_masks_stay_linear_enough() {
        let text = "a".repeat(20_000);
        let mask = format!("{}b", "*a".repeat(2_000));
        assert!(!url_mask_matches(&mask, &text, false));
        assert!(!url_mask_matches(&mask, &text, true));
    }

    #[test]
    fn longest_literal_skips_wildcards() {
        let zeus = UrlSyntax::zeus(false);
        assert_eq!(
            longest_literal(b"https://www#.usbank.com/*", zeus),
            b".usbank.com/"
        );
        assert_eq!(longest_literal(b"*", zeus), b"");
        assert_eq!(longest_literal(b"a#b", UrlSyntax::GLOB), b"a#b");
    }
}
