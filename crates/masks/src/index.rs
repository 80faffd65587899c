//! [`MaskIndex`]: every mask of a large set that matches one URL.
//!
//! Every URL that a glob mask matches contains the mask's longest literal fragment (ASCII
//! case-insensitively at worst). The index keeps one Aho-Corasick automaton over the distinct
//! lowercased fragments; a lookup lowercases the URL, lets the automaton report every fragment
//! it contains, and verifies only the masks behind those fragments with the exact matcher.
//! Masks whose longest fragment is shorter than [`MIN_FRAGMENT_LEN`] bytes (`*`, `*.*`) are
//! verified on every lookup. Regular expressions go into one `regex` `RegexSet`, or are tried
//! one by one if the set would pass its size limits.
//!
//! A lookup costs one pass of the automaton over the URL plus the verification of the
//! candidates, independent of the number of masks that share no fragment with the URL.

use aho_corasick::{AhoCorasick, MatchKind};
use dropwatch_model::MaskKind;
use regex::bytes::{RegexSet, RegexSetBuilder};

use crate::regex::RegexMask;
use crate::url::{longest_literal, whole_match, UrlSyntax};
use crate::MaskError;

/// Masks whose longest literal fragment is shorter than this are checked on every lookup: a
/// fragment such as `.` would make them candidates for nearly every URL anyway.
pub const MIN_FRAGMENT_LEN: usize = 3;

/// Cap on the compiled size of the combined regex set, in bytes.
const SET_SIZE_LIMIT: usize = 16 << 20;
/// Cap on the combined regex set's lazy DFA cache, in bytes.
const SET_DFA_SIZE_LIMIT: usize = 16 << 20;

#[derive(Debug, Clone)]
struct GlobEntry {
    id: usize,
    mask: Box<str>,
    syntax: UrlSyntax,
}

impl GlobEntry {
    fn matches(&self, url: &str) -> bool {
        whole_match(self.mask.as_bytes(), url.as_bytes(), self.syntax)
    }
}

/// Collects masks for a [`MaskIndex`].
///
/// Each mask carries a caller-chosen id; several masks may share one (an institution with many
/// masks), and a lookup reports each matching id once.
#[derive(Debug, Clone, Default)]
pub struct MaskIndexBuilder {
    globs: Vec<GlobEntry>,
    regexes: Vec<(usize, RegexMask)>,
}

impl MaskIndexBuilder {
    /// An empty builder.
    pub fn new() -> MaskIndexBuilder {
        MaskIndexBuilder::default()
    }

    /// Adds a ZeuS URL mask (`*`, `#`, literal `?`), see [`url_mask_matches`](crate::url_mask_matches).
    pub fn add_zeus(&mut self, id: usize, mask: &str, case_insensitive: bool) -> &mut Self {
        self.globs.push(GlobEntry {
            id,
            mask: mask.into(),
            syntax: UrlSyntax::zeus(case_insensitive),
        });
        self
    }

    /// Adds a case-insensitive `*`-only glob, see [`glob_matches`](crate::glob_matches).
    pub fn add_glob(&mut self, id: usize, mask: &str) -> &mut Self {
        self.globs.push(GlobEntry {
            id,
            mask: mask.into(),
            syntax: UrlSyntax::GLOB,
        });
        self
    }

    /// Adds a regular expression, see [`RegexMask`]. An invalid pattern is an error and leaves
    /// the builder as it was.
    pub fn add_regex(&mut self, id: usize, pattern: &str) -> Result<&mut Self, MaskError> {
        self.regexes.push((id, RegexMask::new(pattern)?));
        Ok(self)
    }

    /// Adds a mask of any kind. `case_insensitive` applies to [`MaskKind::ZeusGlob`] only:
    /// globs always fold case and a regex folds case where it says `(?i)`.
    pub fn add(
        &mut self,
        id: usize,
        mask: &str,
        kind: MaskKind,
        case_insensitive: bool,
    ) -> Result<&mut Self, MaskError> {
        match kind {
            MaskKind::ZeusGlob => Ok(self.add_zeus(id, mask, case_insensitive)),
            MaskKind::Glob => Ok(self.add_glob(id, mask)),
            MaskKind::Regex => self.add_regex(id, mask),
        }
    }

    /// The number of masks added.
    pub fn len(&self) -> usize {
        self.globs.len() + self.regexes.len()
    }

    /// True if no mask was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Compiles the index. Never fails: if the fragment automaton cannot be built (billions of
    /// fragment bytes) every glob is verified on each lookup instead, and if the regexes do not
    /// fit one set under its size limits each is tried in turn.
    pub fn build(self) -> MaskIndex {
        let MaskIndexBuilder { globs, regexes } = self;

        // (fragment, entry) pairs, sorted so that the automaton's pattern ids do not depend on
        // insertion order and each fragment's entries sit together.
        let mut keyed: Vec<(Vec<u8>, usize)> = Vec::with_capacity(globs.len());
        let mut always = Vec::new();
        for (entry, glob) in globs.iter().enumerate() {
            let fragment = longest_literal(glob.mask.as_bytes(), glob.syntax);
            if fragment.len() >= MIN_FRAGMENT_LEN {
                keyed.push((fragment.to_ascii_lowercase(), entry));
            } else {
                always.push(entry);
            }
        }
        keyed.sort_unstable();

        let mut fragments: Vec<&[u8]> = Vec::new();
        let mut fragment_starts = Vec::new();
        let mut fragment_entries = Vec::with_capacity(keyed.len());
        for (fragment, entry) in &keyed {
            if fragments.last() != Some(&fragment.as_slice()) {
                fragments.push(fragment);
                fragment_starts.push(fragment_entries.len());
            }
            fragment_entries.push(*entry);
        }
        fragment_starts.push(fragment_entries.len());

        let automaton = if fragments.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&fragments)
                .ok()
        };
        if automaton.is_none() && !fragments.is_empty() {
            always = (0..globs.len()).collect();
            fragment_starts = vec![0];
            fragment_entries = Vec::new();
        }

        let regex_set = if regexes.len() > 1 {
            RegexSetBuilder::new(regexes.iter().map(|(_, r)| r.as_str()))
                .unicode(false)
                .size_limit(SET_SIZE_LIMIT)
                .dfa_size_limit(SET_DFA_SIZE_LIMIT)
                .build()
                .ok()
        } else {
            None
        };

        MaskIndex {
            globs,
            automaton,
            fragment_starts,
            fragment_entries,
            always,
            regexes,
            regex_set,
        }
    }
}

/// An index of many URL masks of any [`MaskKind`]: which of them match a URL?
///
/// ```
/// use dropwatch_masks::MaskIndex;
/// use dropwatch_model::MaskKind;
///
/// let mut builder = MaskIndex::builder();
/// builder.add_zeus(7, "https://www#.usbank.com/*", false);
/// builder.add_glob(3, "*USBANK.com/*");
/// builder.add(9, r"^https://[^/]*\.usbank\.com/", MaskKind::Regex, false).unwrap();
/// builder.add_zeus(1, "*paypal.com/*", true);
/// let index = builder.build();
/// assert_eq!(index.matches("https://www4.usbank.com/login"), vec![3, 7, 9]);
/// assert_eq!(index.first_match("https://www.paypal.com/"), Some(1));
/// assert!(index.matches("https://example.com/").is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MaskIndex {
    globs: Vec<GlobEntry>,
    automaton: Option<AhoCorasick>,
    /// The globs behind fragment `f` (the automaton's pattern `f`) are
    /// `fragment_entries[fragment_starts[f]..fragment_starts[f + 1]]`.
    fragment_starts: Vec<usize>,
    fragment_entries: Vec<usize>,
    /// Globs without a usable fragment, verified on every lookup.
    always: Vec<usize>,
    regexes: Vec<(usize, RegexMask)>,
    regex_set: Option<RegexSet>,
}

/// Sizes of a [`MaskIndex`], for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskIndexStats {
    /// All masks.
    pub masks: usize,
    /// Distinct literal fragments in the automaton.
    pub fragments: usize,
    /// Glob masks verified on every lookup.
    pub always_checked: usize,
    /// Regular expressions.
    pub regexes: usize,
    /// True if the regexes run as one set.
    pub regex_set: bool,
}

impl MaskIndex {
    /// A builder to add masks to.
    pub fn builder() -> MaskIndexBuilder {
        MaskIndexBuilder::new()
    }

    /// The number of masks.
    pub fn len(&self) -> usize {
        self.globs.len() + self.regexes.len()
    }

    /// True if there is no mask.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sizes of the index.
    pub fn stats(&self) -> MaskIndexStats {
        MaskIndexStats {
            masks: self.len(),
            fragments: self.fragment_starts.len().saturating_sub(1),
            always_checked: self.always.len(),
            regexes: self.regexes.len(),
            regex_set: self.regex_set.is_some(),
        }
    }

    /// The ids of every mask that matches `url`, ascending, each once.
    pub fn matches(&self, url: &str) -> Vec<usize> {
        let mut out = Vec::new();
        self.matches_into(url, &mut out);
        out
    }

    /// Like [`matches`](Self::matches), into `out` (cleared first) to reuse its allocation.
    pub fn matches_into(&self, url: &str, out: &mut Vec<usize>) {
        out.clear();
        let verify = |entry: usize, out: &mut Vec<usize>| {
            if let Some(glob) = self.globs.get(entry) {
                if glob.matches(url) {
                    out.push(glob.id);
                }
            }
        };
        for &entry in &self.always {
            verify(entry, out);
        }
        if let Some(automaton) = &self.automaton {
            let lower = url.as_bytes().to_ascii_lowercase();
            match automaton.try_find_overlapping_iter(&lower) {
                Ok(found) => {
                    let mut fragments: Vec<usize> = found.map(|m| m.pattern().as_usize()).collect();
                    fragments.sort_unstable();
                    fragments.dedup();
                    for fragment in fragments {
                        let (Some(&start), Some(&end)) = (
                            self.fragment_starts.get(fragment),
                            self.fragment_starts.get(fragment + 1),
                        ) else {
                            continue;
                        };
                        for &entry in &self.fragment_entries[start..end] {
                            verify(entry, out);
                        }
                    }
                }
                // Not reachable with a standard-semantics automaton; stay correct regardless.
                Err(_) => {
                    for &entry in &self.fragment_entries {
                        verify(entry, out);
                    }
                }
            }
        }
        match &self.regex_set {
            Some(set) => out.extend(
                set.matches(url.as_bytes())
                    .iter()
                    .filter_map(|i| self.regexes.get(i).map(|(id, _)| *id)),
            ),
            None => out.extend(
                self.regexes
                    .iter()
                    .filter(|(_, regex)| regex.is_match(url))
                    .map(|(id, _)| *id),
            ),
        }
        out.sort_unstable();
        out.dedup();
    }

    /// The smallest id among the masks that match `url`.
    pub fn first_match(&self, url: &str) -> Option<usize> {
        self.matches(url).first().copied()
    }

    /// True if any mask matches `url`.
    pub fn is_match(&self, url: &str) -> bool {
        self.first_match(url).is_some()
    }

    /// The ids of every mask that matches `url`, by trying each mask in turn: the reference the
    /// index is tested and benchmarked against.
    pub fn matches_linear(&self, url: &str) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .globs
            .iter()
            .filter(|g| g.matches(url))
            .map(|g| g.id)
            .chain(
                self.regexes
                    .iter()
                    .filter(|(_, r)| r.is_match(url))
                    .map(|(id, _)| *id),
            )
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{glob_matches, url_mask_matches};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn kinds_ids_and_order() {
        let mut b = MaskIndex::builder();
        b.add_zeus(5, "*", false)
            .add_zeus(2, "https://bank.example/*", false)
            .add_zeus(2, "*bank.example*", false)
            .add_zeus(4, "HTTPS://BANK.EXAMPLE/*", true)
            .add_zeus(6, "HTTPS://BANK.EXAMPLE/*", false)
            .add_glob(1, "*BANK.example/log?n*");
        assert!(b.add_regex(8, "(").is_err());
        b.add(3, r"bank\.example/login$", MaskKind::Regex, false)
            .unwrap();
        b.add(0, r"^nothing", MaskKind::Regex, false).unwrap();
        assert_eq!(b.len(), 8);
        let index = b.build();
        assert_eq!(
            index.matches("https://bank.example/login"),
            vec![2, 3, 4, 5]
        );
        assert_eq!(
            index.matches("https://bank.example/log?n"),
            vec![1, 2, 4, 5]
        );
        assert_eq!(index.matches(""), vec![5]);
        assert_eq!(index.first_match("x"), Some(5));
        let stats = index.stats();
        assert_eq!(stats.masks, 8);
        assert_eq!(stats.always_checked, 1);
        assert_eq!(stats.regexes, 2);
        assert!(stats.regex_set);
        assert!(MaskIndex::default().matches("x").is_empty());
    }

    /// A fragment-based lookup must be exactly the linear scan with the plain matchers.
    #[test]
    fn differential_against_linear_scan() {
        let mut rng = ChaCha8Rng::seed_from_u64(0x6d61_736b);
        let hosts = ["bank", "BANK", "ib", "www", "online", "b4nk", "pay", "a"];
        let tlds = ["com", "co.jp", "example", "es", "C"];
        let paths = [
            "login", "Login.do", "cgi-bin", "x", "?cmd=_a", "#", "webscr",
        ];
        let pick = |rng: &mut ChaCha8Rng, xs: &[&'static str]| xs[rng.random_range(0..xs.len())];
        let url = |rng: &mut ChaCha8Rng| {
            let mut u = String::from(if rng.random_bool(0.5) {
                "https://"
            } else {
                "http://"
            });
            for _ in 0..rng.random_range(1..4) {
                u.push_str(pick(rng, &hosts));
                if rng.random_bool(0.3) {
                    u.push(char::from(b'0' + rng.random_range(0..10u8)));
                }
                u.push('.');
            }
            u.push_str(pick(rng, &tlds));
            for _ in 0..rng.random_range(0..4) {
                u.push('/');
                u.push_str(pick(rng, &paths));
            }
            u
        };
        // Masks are URLs with random bytes turned into wildcards, or small random strings.
        let masks: Vec<(String, MaskKind, bool)> = (0..2_000)
            .map(|_| {
                let kind = if rng.random_bool(0.7) {
                    MaskKind::ZeusGlob
                } else {
                    MaskKind::Glob
                };
                let ci = rng.random_bool(0.5);
                let mut bytes = url(&mut rng).into_bytes();
                if rng.random_bool(0.1) {
                    bytes.truncate(rng.random_range(0..4));
                }
                for b in bytes.iter_mut() {
                    match rng.random_range(0..100) {
                        0..=5 => *b = b'*',
                        6..=8 => *b = b'#',
                        9 => *b = b'?',
                        _ => {}
                    }
                }
                if rng.random_bool(0.3) {
                    bytes.insert(0, b'*');
                }
                if rng.random_bool(0.5) {
                    bytes.push(b'*');
                }
                let mask = String::from_utf8(bytes).unwrap_or_default();
                (mask, kind, ci)
            })
            .collect();
        let mut builder = MaskIndex::builder();
        for (id, (mask, kind, ci)) in masks.iter().enumerate() {
            builder.add(id, mask, *kind, *ci).unwrap();
        }
        builder
            .add_regex(masks.len(), r"(?i)^https?://(www|ib)\d?\.bank\.")
            .unwrap();
        let index = builder.build();
        assert!(index.stats().fragments > 100);

        let mut hits = 0;
        for round in 0..2_000 {
            let u = url(&mut rng);
            let expected: Vec<usize> = masks
                .iter()
                .enumerate()
                .filter(|(_, (m, kind, ci))| match kind {
                    MaskKind::Glob => glob_matches(m, &u),
                    _ => url_mask_matches(m, &u, *ci),
                })
                .map(|(id, _)| id)
                .collect();
            let got = index.matches(&u);
            let mut got_globs = got.clone();
            got_globs.retain(|&id| id < masks.len());
            assert_eq!(got_globs, expected, "url {u}");
            if round % 10 == 0 {
                assert_eq!(got, index.matches_linear(&u), "url {u}");
            }
            hits += expected.len();
        }
        // The generator must produce matches, or the test proves nothing.
        assert!(hits > 1_000, "only {hits} matches");
    }
}
