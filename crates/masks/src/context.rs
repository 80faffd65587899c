//! Page-context masks (`data_before`, `data_after`, `matched_context`) and post-data masks.
//!
//! Both use `*` for any run and `?` for any one byte, and treat `\r\n` and `\n` as the same
//! line break (ZeuS `MATCH_UNIVERSAL_NEWLINE`). A context mask is found as the **leftmost
//! substring** of the page with lazy `*` (a trailing `*` runs to the end of the page); a
//! post-data mask matches the **whole** body. Bytes stay bytes: pages are not decoded.
//!
//! # How it is matched, and the worst case
//!
//! Mask and haystack are both normalised first (`\r\n` → `\n`, then ASCII lowercase when case
//! folding), so the line-break rule and case folding cost nothing in the search itself. The mask
//! is split at `*` into pieces of fixed length. Because each piece has a fixed length, placing
//! every piece at its leftmost occurrence after the previous one finds a match whenever there
//! is one, and it is exactly the match that ZeuS' lazy backtracking matcher reports; so nothing
//! is ever retried. The pieces scan disjoint stretches of the haystack, left to right.
//!
//! A literal piece is searched with `memchr::memmem` (linear). A piece containing `?` is searched
//! with a bit-parallel Shift-And automaton: O(⌈m/64⌉) word operations per haystack byte for a
//! piece of m bytes. For a haystack of n bytes and a mask of k bytes whose longest `?`-piece has
//! M bytes the worst case is therefore **O(k + n·⌈M/64⌉) time**, and O(n) extra memory for the
//! normalised copy (only made when the haystack has a `\r\n` or case is folded) plus 32 bytes
//! per byte of `?`-pieces for the automata. There is no input on which it backtracks.
//!
//! # Differences from the original matcher
//!
//! The line-break rule is defined by normalisation, which the ZeuS matcher only approximates:
//! there, `?` against `\r\n` consumes the `\r` alone, and a mask `\n` can match inside `\r\r\n`
//! one byte earlier. Like the original, nothing matches inside an empty haystack.

use std::borrow::Cow;

use memchr::memmem;

/// A compiled page-context mask: `data_before`, `data_after` or `matched_context`.
///
/// ```
/// use dropwatch_masks::ContextMask;
/// let mask = ContextMask::new(b"<input name=\"pass*>", false);
/// let page = b"<form>\r\n<input name=\"password\" type=\"password\">\r\n</form>";
/// let (start, end) = mask.find(page).unwrap();
/// assert_eq!(&page[start..end], b"<input name=\"password\" type=\"password\">");
/// ```
#[derive(Debug, Clone)]
pub struct ContextMask {
    pattern: Pattern,
}

impl ContextMask {
    /// Compiles `mask`; `case_insensitive` folds ASCII letters (the `C` flag of `set_url`).
    pub fn new(mask: &[u8], case_insensitive: bool) -> ContextMask {
        ContextMask {
            pattern: Pattern::new(mask, case_insensitive),
        }
    }

    /// The span `(start, end)` of the leftmost match in `haystack`, as byte offsets into the
    /// original `haystack` (a matched line break spans both bytes of a `\r\n`).
    ///
    /// An empty mask matches at `(0, 0)` of a non-empty haystack; nothing matches inside an
    /// empty haystack.
    pub fn find(&self, haystack: &[u8]) -> Option<(usize, usize)> {
        let view = View::new(haystack, self.pattern.ci);
        let (start, end) = self.pattern.find(&view.bytes)?;
        Some((view.original(start), view.original(end)))
    }

    /// Like [`find`](Self::find) but only in `haystack[from..]`, with offsets into the whole
    /// `haystack` (how `data_after` is searched after the end of `data_before`). `None` when
    /// `from` is past the end.
    pub fn find_at(&self, haystack: &[u8], from: usize) -> Option<(usize, usize)> {
        let rest = haystack.get(from..)?;
        self.find(rest).map(|(s, e)| (s + from, e + from))
    }

    /// True if the mask occurs anywhere in `haystack`.
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        self.find(haystack).is_some()
    }
}

/// The span of the leftmost match of the context mask `mask` in `haystack`; see
/// [`ContextMask::find`]. Compile a [`ContextMask`] once to search many pages.
pub fn context_find(
    mask: &[u8],
    haystack: &[u8],
    case_insensitive: bool,
) -> Option<(usize, usize)> {
    ContextMask::new(mask, case_insensitive).find(haystack)
}

/// A compiled post-data mask (the blacklist and whitelist arguments of `set_url`): the whole
/// body must match. Case-sensitive, like ZeuS.
///
/// ```
/// use dropwatch_masks::PostDataMask;
/// let mask = PostDataMask::new(b"*user=?*");
/// assert!(mask.matches(b"a=1&user=x&b=2"));
/// assert!(!mask.matches(b"a=1&user="));
/// ```
#[derive(Debug, Clone)]
pub struct PostDataMask {
    pattern: Pattern,
}

impl PostDataMask {
    /// Compiles `mask`.
    pub fn new(mask: &[u8]) -> PostDataMask {
        PostDataMask {
            pattern: Pattern::new(mask, false),
        }
    }

    /// True if the whole of `data` matches.
    pub fn matches(&self, data: &[u8]) -> bool {
        let view = View::new(data, false);
        self.pattern.matches_whole(&view.bytes)
    }
}

/// True if the whole of `data` matches the post-data mask `mask`; see [`PostDataMask`].
pub fn postdata_mask_matches(mask: &[u8], data: &[u8]) -> bool {
    PostDataMask::new(mask).matches(data)
}

/// `\r\n` → `\n`, and ASCII lowercase when folding case.
fn normalize(bytes: &[u8], ci: bool, mut on_crlf: impl FnMut(usize)) -> Cow<'_, [u8]> {
    let has_crlf = memmem::find(bytes, b"\r\n").is_some();
    if !has_crlf && !ci {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            on_crlf(out.len());
        } else {
            out.push(if ci { b.to_ascii_lowercase() } else { b });
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// A haystack as the matcher sees it, and the way back to offsets in the original.
struct View<'a> {
    bytes: Cow<'a, [u8]>,
    /// Normalised offsets of the `\n`s that stand for a `\r\n`, ascending.
    crlf: Vec<usize>,
}

impl View<'_> {
    fn new(haystack: &[u8], ci: bool) -> View<'_> {
        let mut crlf = Vec::new();
        let bytes = normalize(haystack, ci, |at| crlf.push(at));
        View { bytes, crlf }
    }

    /// The original offset of normalised offset `i`: one more for every dropped `\r` before it,
    /// so a span that starts at a `\n` starts at its `\r`, and one that ends after it ends
    /// after the whole `\r\n`.
    fn original(&self, i: usize) -> usize {
        i + self.crlf.partition_point(|&n| n < i)
    }
}

/// A normalised mask split at `*`.
#[derive(Debug, Clone)]
struct Pattern {
    /// The non-empty pieces between stars, in order.
    pieces: Vec<Piece>,
    leading_star: bool,
    trailing_star: bool,
    has_star: bool,
    ci: bool,
}

impl Pattern {
    fn new(mask: &[u8], ci: bool) -> Pattern {
        let mask = normalize(mask, ci, |_| {});
        let pieces = mask
            .split(|&b| b == b'*')
            .filter(|p| !p.is_empty())
            .map(Piece::new)
            .collect();
        Pattern {
            pieces,
            leading_star: mask.first() == Some(&b'*'),
            trailing_star: mask.last() == Some(&b'*'),
            has_star: mask.contains(&b'*'),
            ci,
        }
    }

    /// Leftmost substring match with lazy stars, in normalised offsets.
    fn find(&self, hay: &[u8]) -> Option<(usize, usize)> {
        if hay.is_empty() {
            return None;
        }
        let mut pieces = self.pieces.iter();
        let (start, mut pos) = match (self.leading_star, self.pieces.first()) {
            (false, Some(first)) => {
                pieces.next();
                let at = first.find(hay)?;
                (at, at + first.len())
            }
            _ => (0, 0),
        };
        for piece in pieces {
            let at = piece.find(&hay[pos..])?;
            pos += at + piece.len();
        }
        let end = if self.trailing_star { hay.len() } else { pos };
        Some((start, end))
    }

    /// Whole-string match, in normalised bytes.
    fn matches_whole(&self, hay: &[u8]) -> bool {
        let pieces = &self.pieces[..];
        if !self.has_star {
            return match pieces {
                [] => hay.is_empty(),
                [only] => only.eq(hay),
                _ => false,
            };
        }
        let (prefix, pieces) = match pieces.split_first() {
            Some((first, rest)) if !self.leading_star => (Some(first), rest),
            _ => (None, pieces),
        };
        let (suffix, middle) = match pieces.split_last() {
            Some((last, rest)) if !self.trailing_star => (Some(last), rest),
            _ => (None, pieces),
        };
        let head = prefix.map_or(0, Piece::len);
        let tail = suffix.map_or(0, Piece::len);
        if head + tail > hay.len() {
            return false;
        }
        if prefix.is_some_and(|p| !p.eq(&hay[..head]))
            || suffix.is_some_and(|p| !p.eq(&hay[hay.len() - tail..]))
        {
            return false;
        }
        let end = hay.len() - tail;
        let mut pos = head;
        for piece in middle {
            match piece.find(&hay[pos..end]) {
                Some(at) => pos += at + piece.len(),
                None => return false,
            }
        }
        true
    }
}

/// One `*`-free piece of a normalised mask, with its searcher.
#[derive(Debug, Clone)]
struct Piece {
    bytes: Box<[u8]>,
    searcher: Searcher,
}

#[derive(Debug, Clone)]
enum Searcher {
    Literal(Box<memmem::Finder<'static>>),
    Wild(ShiftAnd),
}

impl Piece {
    fn new(bytes: &[u8]) -> Piece {
        let searcher = if bytes.contains(&b'?') {
            Searcher::Wild(ShiftAnd::new(bytes, b'?'))
        } else {
            Searcher::Literal(Box::new(memmem::Finder::new(bytes).into_owned()))
        };
        Piece {
            bytes: bytes.into(),
            searcher,
        }
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn eq(&self, text: &[u8]) -> bool {
        self.bytes.len() == text.len()
            && self
                .bytes
                .iter()
                .zip(text)
                .all(|(&p, &t)| p == t || p == b'?')
    }

    fn find(&self, hay: &[u8]) -> Option<usize> {
        match &self.searcher {
            Searcher::Literal(finder) => finder.find(hay),
            Searcher::Wild(automaton) => automaton.find(hay),
        }
    }
}

/// Shift-And (Baeza-Yates–Gonnet) search for a fixed-length pattern with single-byte wildcards.
#[derive(Debug, Clone)]
struct ShiftAnd {
    len: usize,
    /// 64-bit words per state.
    words: usize,
    /// `table[byte * words + w]`: bit `i % 64` of word `i / 64` is set if pattern byte `i`
    /// accepts `byte`.
    table: Box<[u64]>,
}

impl ShiftAnd {
    fn new(pattern: &[u8], any: u8) -> ShiftAnd {
        let words = pattern.len().div_ceil(64).max(1);
        let mut table = vec![0u64; 256 * words];
        for (i, &b) in pattern.iter().enumerate() {
            let (w, bit) = (i / 64, 1u64 << (i % 64));
            if b == any {
                for byte in 0..256 {
                    table[byte * words + w] |= bit;
                }
            } else {
                table[usize::from(b) * words + w] |= bit;
            }
        }
        ShiftAnd {
            len: pattern.len(),
            words,
            table: table.into_boxed_slice(),
        }
    }

    /// Start of the leftmost occurrence in `hay`.
    fn find(&self, hay: &[u8]) -> Option<usize> {
        let m = self.len;
        if m == 0 {
            return Some(0);
        }
        if m > hay.len() {
            return None;
        }
        let (top_word, top_bit) = ((m - 1) / 64, 1u64 << ((m - 1) % 64));
        if self.words == 1 {
            let mut state = 0u64;
            for (j, &c) in hay.iter().enumerate() {
                state = ((state << 1) | 1) & self.table[usize::from(c)];
                if state & top_bit != 0 {
                    return Some(j + 1 - m);
                }
            }
            return None;
        }
        let mut state = vec![0u64; self.words];
        for (j, &c) in hay.iter().enumerate() {
            let row = &self.table[usize::from(c) * self.words..][..self.words];
            let mut carry = 1u64;
            for (word, accept) in state.iter_mut().zip(row) {
                let out = *word >> 63;
                *word = ((*word << 1) | carry) & accept;
                carry = out;
            }
            if state[top_word] & top_bit != 0 {
                return Some(j + 1 - m);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct transcription of the ZeuS semantics: try every start, match lazily with
    /// backtracking. Exponential in the worst case; the reference for small inputs.
    fn reference_find(mask: &[u8], hay: &[u8], ci: bool) -> Option<(usize, usize)> {
        let mask = normalize(mask, ci, |_| {}).into_owned();
        let view = View::new(hay, ci);
        let v = &view.bytes[..];
        (0..v.len())
            .find_map(|s| reference_at(&mask, &v[s..]).map(|e| (s, s + e)))
            .map(|(s, e)| (view.original(s), view.original(e)))
    }

    fn reference_at(mask: &[u8], text: &[u8]) -> Option<usize> {
        match mask.split_first() {
            None => Some(0),
            Some((b'*', rest)) => {
                let rest_start = rest.iter().position(|&b| b != b'*');
                match rest_start {
                    None => Some(text.len()),
                    Some(skip) => (0..text.len())
                        .find_map(|k| reference_at(&rest[skip..], &text[k..]).map(|e| k + e)),
                }
            }
            Some((&p, rest)) => match text.split_first() {
                Some((&t, text_rest)) if p == b'?' || p == t => {
                    reference_at(rest, text_rest).map(|e| e + 1)
                }
                _ => None,
            },
        }
    }

    fn reference_whole(mask: &[u8], text: &[u8]) -> bool {
        match mask.split_first() {
            None => text.is_empty(),
            Some((b'*', rest)) => (0..=text.len()).any(|k| reference_whole(rest, &text[k..])),
            Some((&p, rest)) => match text.split_first() {
                Some((&t, text_rest)) if p == b'?' || p == t => reference_whole(rest, text_rest),
                _ => false,
            },
        }
    }

    #[test]
    fn leftmost_lazy_spans() {
        let page = b"<a><b>x</b><b>y</b></a>";
        assert_eq!(context_find(b"<b>*</b>", page, false), Some((3, 11)));
        assert_eq!(context_find(b"<b>*", page, false), Some((3, page.len())));
        assert_eq!(context_find(b"*</b>", page, false), Some((0, 11)));
        assert_eq!(context_find(b"<b>?</b>", page, false), Some((3, 11)));
        assert_eq!(context_find(b"<B>", page, false), None);
        assert_eq!(context_find(b"<B>", page, true), Some((3, 6)));
        assert_eq!(context_find(b"", page, false), Some((0, 0)));
        assert_eq!(context_find(b"*", page, false), Some((0, page.len())));
        assert_eq!(context_find(b"*", b"", false), None);
        assert_eq!(context_find(b"<c>", page, false), None);
    }

    #[test]
    fn line_breaks_are_one_and_spans_are_original_offsets() {
        let page = b"a\r\nb\nc";
        // Mask `\n` finds the first break, spanning both bytes of `\r\n`.
        assert_eq!(context_find(b"\n", page, false), Some((1, 3)));
        assert_eq!(context_find(b"\r\n", page, false), Some((1, 3)));
        assert_eq!(context_find(b"b\r\nc", page, false), Some((3, 6)));
        assert_eq!(context_find(b"a\nb", page, false), Some((0, 4)));
        assert_eq!(context_find(b"a?b", page, false), Some((0, 4)));
        // A match that ends just before a `\r\n` does not take the `\r`.
        assert_eq!(context_find(b"a", page, false), Some((0, 1)));
        let mask = ContextMask::new(b"\n", false);
        assert_eq!(mask.find_at(page, 2), Some((2, 3)));
        assert_eq!(mask.find_at(page, 4), Some((4, 5)));
        assert_eq!(mask.find_at(page, 5), None);
        assert_eq!(mask.find_at(page, 99), None);
    }

    #[test]
    fn post_data_is_whole_and_case_sensitive() {
        assert!(postdata_mask_matches(b"*", b""));
        assert!(postdata_mask_matches(b"", b""));
        assert!(!postdata_mask_matches(b"", b"x"));
        assert!(postdata_mask_matches(b"user=*&pass=?*", b"user=bob&pass=x"));
        assert!(!postdata_mask_matches(b"user=*&pass=?*", b"user=bob&pass="));
        assert!(!postdata_mask_matches(b"USER=*", b"user=bob"));
        assert!(postdata_mask_matches(b"a\nb", b"a\r\nb"));
        assert!(postdata_mask_matches(b"a\r\nb", b"a\nb"));
        assert!(postdata_mask_matches(b"ab*ba", b"abba"));
        assert!(!postdata_mask_matches(b"ab*ba", b"aba"));
    }

    #[test]
    fn long_wildcard_pieces_use_many_words() {
        let piece: Vec<u8> = (0..200)
            .map(|i| {
                if i % 3 == 0 {
                    b'?'
                } else {
                    b'a' + (i % 7) as u8
                }
            })
            .collect();
        let mut hay = vec![b'z'; 500];
        let text: Vec<u8> = piece
            .iter()
            .map(|&b| if b == b'?' { b'Q' } else { b })
            .collect();
        hay.extend_from_slice(&text);
        hay.extend_from_slice(b"tail");
        assert_eq!(context_find(&piece, &hay, false), Some((500, 700)));
        // Piece byte 151 is a literal (151 % 3 != 0): break it in the page.
        hay[500 + 151] = b'#';
        assert_eq!(context_find(&piece, &hay, false), None);
    }

    #[test]
    fn hostile_masks_do_not_backtrack() {
        let hay = vec![b'a'; 200_000];
        let mask: Vec<u8> = b"*a?".repeat(2_000).into_iter().chain(*b"b").collect();
        let started = std::time::Instant::now();
        assert_eq!(context_find(&mask, &hay, false), None);
        assert!(!postdata_mask_matches(&mask, &hay));
        let mask = [&b"a?".repeat(5_000)[..], b"b"].concat();
        assert_eq!(context_find(&mask, &hay, true), None);
        // Generous: linear work here is a few milliseconds even unoptimised.
        assert!(started.elapsed().as_secs() < 20);
    }

    /// Differential test against the backtracking reference on seeded random inputs over a
    /// small alphabet, where wildcards, repeats and line breaks interact the most.
    #[test]
    fn agrees_with_backtracking_reference() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        const MASK_ALPHABET: &[u8] = b"abAB*?\r\n";
        const TEXT_ALPHABET: &[u8] = b"abAB\r\n";
        for round in 0..20_000 {
            let mask: Vec<u8> = (0..next(8)).map(|_| MASK_ALPHABET[next(8)]).collect();
            let hay: Vec<u8> = (0..next(14)).map(|_| TEXT_ALPHABET[next(6)]).collect();
            let ci = round % 2 == 1;
            let found = context_find(&mask, &hay, ci);
            assert_eq!(
                found,
                reference_find(&mask, &hay, ci),
                "mask {mask:?} hay {hay:?} ci {ci}"
            );
            // A span is itself a match from its first byte to its last.
            if let Some((start, end)) = found.filter(|(s, e)| s < e) {
                assert_eq!(
                    context_find(&mask, &hay[start..end], ci),
                    Some((0, end - start)),
                    "span of {mask:?} in {hay:?}"
                );
            }
            let norm_mask = normalize(&mask, false, |_| {});
            let norm_hay = normalize(&hay, false, |_| {});
            assert_eq!(
                postdata_mask_matches(&mask, &hay),
                reference_whole(&norm_mask, &norm_hay),
                "post-data mask {mask:?} data {hay:?}"
            );
        }
    }
}
