//! Regular-expression masks (Dridex `<url>` patterns).
//!
//! Patterns are compiled by the `regex` crate as **byte** regexes without Unicode classes
//! (`\w`, `\d`, `.` and `(?i)` are ASCII, as in PCRE's default mode), so any URL bytes can be
//! searched. The crate's engines run in time linear in the input; compiled size is capped by
//! [`RegexMask::SIZE_LIMIT`] and [`RegexMask::DFA_SIZE_LIMIT`], so an attacker-written pattern
//! cannot exhaust memory. Look-around and back-references are not supported and are reported
//! as [`MaskError::InvalidRegex`], like any other invalid pattern. Nothing here panics on a
//! pattern.

use regex::bytes::{Regex, RegexBuilder};

use crate::MaskError;

/// A compiled regular-expression URL mask ([`MaskKind::Regex`](dropwatch_model::MaskKind::Regex)).
///
/// It matches a URL if it matches **anywhere** in it (unanchored search): write `^...$` for a
/// whole-URL match.
///
/// ```
/// use dropwatch_masks::RegexMask;
/// let mask = RegexMask::new(r"^https://[a-z0-9]+\.bank\.example/(login|auth)").unwrap();
/// assert!(mask.is_match("https://ib.bank.example/login?x=1"));
/// assert!(RegexMask::new(r"(?<=x)y").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct RegexMask {
    regex: Regex,
}

impl RegexMask {
    /// Cap on one compiled pattern (the `regex` crate's `size_limit`), in bytes.
    pub const SIZE_LIMIT: usize = 1 << 20;
    /// Cap on one pattern's lazy DFA cache (`dfa_size_limit`), in bytes.
    pub const DFA_SIZE_LIMIT: usize = 1 << 20;

    /// Compiles `pattern` under the size limits.
    pub fn new(pattern: &str) -> Result<RegexMask, MaskError> {
        let regex = RegexBuilder::new(pattern)
            .unicode(false)
            .size_limit(Self::SIZE_LIMIT)
            .dfa_size_limit(Self::DFA_SIZE_LIMIT)
            .build()
            .map_err(|source| MaskError::InvalidRegex { source })?;
        Ok(RegexMask { regex })
    }

    /// True if the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text.as_bytes())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_and_rejects() {
        let mask = RegexMask::new(r"(?i)bankofamerica\.com/.*(signon|login)").unwrap();
        assert!(mask.is_match("https://secure.BankOfAmerica.com/x/SignOn.do"));
        assert!(!mask.is_match("https://bankofamerica.example/login"));
        assert_eq!(mask.as_str(), r"(?i)bankofamerica\.com/.*(signon|login)");
        // Word classes are ASCII and `.` matches any byte but a newline.
        assert!(RegexMask::new(r"^\w+$").unwrap().is_match("abc_1"));
        assert!(!RegexMask::new(r"^\w+$").unwrap().is_match("é"));
    }

    #[test]
    fn invalid_or_huge_patterns_are_errors() {
        for bad in [r"(", r"a{2,1}", r"(?=x)", r"(a)\1", r"\p{Greek}"] {
            assert!(
                matches!(RegexMask::new(bad), Err(MaskError::InvalidRegex { .. })),
                "{bad}"
            );
        }
        // Far past the compiled-size limit.
        let huge = format!("(?:{}){{1000}}", "[a-z]{1,50}".repeat(20));
        assert!(RegexMask::new(&huge).is_err());
    }
}
