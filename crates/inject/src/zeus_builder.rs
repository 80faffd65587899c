//! An emulation of the ZeuS 2.0.8.9 kit builder's WebInject reader: what [`Mode::Strict`]
//! accepts and produces (webinjects.md §1.1–1.3; `buildconfig.cpp`: `__GetArgA`,
//! `searchNextWebInject`, `buildWebInject`). Re-implemented from the behaviour described there,
//! quirks included, because "would the kit build this file" is the question strict mode answers:
//!
//! - Lines end at LF only. Leading spaces and tabs are skipped on *every* line, block content
//!   included (only for finding `data_end`; content is a raw span).
//! - A line's `size` is its length minus one when an LF follows (it assumes a CR before the LF).
//!   So keywords match only as `keyword` + CRLF (or + any one byte + LF, or at end of file), a
//!   blank LF-only line has `size` −1 (not skipped: fatal outside blocks), and a one-byte LF-only
//!   line has `size` 0 (skipped).
//! - Lines with `size` 0 or starting with `;` are skipped outside and inside blocks.
//! - Outside an entry only `set_url` with at least 3 arguments (keyword, mask, flags; at most 8
//!   read) is accepted. Inside an entry: `set_url` + blank ends it, `data_before`, `data_inject`,
//!   `data_after` open a block, anything else is fatal.
//! - Inside a block only `data_end` counts; a `set_url` line there is literal content (that is
//!   how the kit's own file loses three entries). The content runs from the line after the
//!   keyword to the `data_end` (after its leading blanks) minus one byte, minus one more if that
//!   is preceded by CR: an indented `data_end` keeps the line break and part of the indentation.
//! - A block of `size + 4 >= 0xFFFF` bytes, a file ending inside a block or an incomplete
//!   triplet, and a `set_url` with no complete triplet are fatal. A repeated keyword inside an
//!   unfinished triplet overwrites the earlier block.
//! - Argument quoting follows `__GetArgA`, including its off-by-one after a closing `'`, which
//!   starts a new quoted argument (so `'GP' *` reads as the arguments `GP` and nothing more).
//!   Arguments stop at the first NUL (`_LengthA`). A `*` alone in a postdata position is "none";
//!   an empty argument is absent.

use dropwatch_model::{Inject, InjectBlock, InjectFormat, MaskKind};
use encoding_rs::Encoding;

use crate::common::{decode_with, shown, Diagnostic, Diags, LineIndex, Severity};

/// `sizeof(HttpInject::INJECTBLOCK)`: a block is rejected when `size + 4 >= 0xFFFF`.
const INJECTBLOCK_HEADER: usize = 4;

pub(crate) struct Built {
    pub(crate) injects: Vec<Inject>,
    pub(crate) diagnostics: Diags,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Before,
    Inject,
    After,
}

impl Slot {
    fn keyword(self) -> &'static str {
        match self {
            Slot::Before => "data_before",
            Slot::Inject => "data_inject",
            Slot::After => "data_after",
        }
    }
}

struct Entry {
    inject: Inject,
    slots: [Option<Vec<u8>>; 3],
    /// True when the last keyword completed a triplet (the builder's `ok`).
    ok: bool,
}

impl Entry {
    fn partial(&self) -> bool {
        self.slots.iter().any(Option::is_some)
    }
}

fn eq_ic(input: &[u8], at: usize, word: &[u8]) -> bool {
    input
        .get(at..at + word.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(word))
}

/// Runs the builder over `input`. `Err` is the point where the builder gives up
/// (`builder_httpinjects_bad_format`); `Ok` holds exactly the entries it would compile.
pub(crate) fn build(
    input: &[u8],
    enc: &'static Encoding,
    lines: &LineIndex,
) -> Result<Built, Diagnostic> {
    let end = input.len();
    let mut diags = Diags::default();
    let mut injects = Vec::new();
    let mut entry: Option<Entry> = None;
    // Open block: slot, its keyword's offset, and where its content starts.
    let mut open: Option<(Slot, usize, usize)> = None;
    let mut pos = 0usize;

    let fail = |at: usize, code: &'static str, message: String| -> Diagnostic {
        let (line, column) = lines.position(at);
        Diagnostic {
            line,
            column,
            severity: Severity::Error,
            code,
            message: format!("the kit's builder rejects the file: {message}"),
        }
    };

    while pos < end {
        while pos < end && (input[pos] == b' ' || input[pos] == b'\t') {
            pos += 1;
        }
        if pos == end {
            break;
        }
        let str_end = input[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(end, |i| pos + i);
        let has_lf = str_end < end;
        // The builder's DWORD arithmetic: an empty LF-only line has size -1, i.e. huge.
        let size = (str_end - pos).wrapping_sub(usize::from(has_lf));

        if size != 0 && input[pos] != b';' {
            if let Some((slot, kw_at, content_start)) = open {
                if size == 8 && eq_ic(input, pos, b"data_end") {
                    let mut csize = 0usize;
                    if pos > content_start {
                        csize = pos - content_start - 1;
                        if input[pos - 2] == b'\r' {
                            csize = csize.saturating_sub(1);
                        }
                    }
                    if csize + INJECTBLOCK_HEADER >= 0xFFFF {
                        return Err(fail(
                            kw_at,
                            "I007",
                            format!(
                                "{} block of {csize} bytes is over the 64 KiB limit",
                                slot.keyword()
                            ),
                        ));
                    }
                    let content = input
                        .get(content_start..content_start + csize)
                        .unwrap_or_default()
                        .to_vec();
                    if input
                        .get(pos.wrapping_sub(1))
                        .is_some_and(|&b| b == b' ' || b == b'\t')
                    {
                        diags.warn(
                            lines.position(pos),
                            "I015",
                            "indented data_end: the builder keeps the line break and part of the indentation in the block",
                        );
                    }
                    open = None;
                    if let Some(e) = entry.as_mut() {
                        store(e, slot, content, lines.position(kw_at), &mut diags);
                    }
                } else if is_set_url_line(input, pos, size) {
                    diags.warn(
                        lines.position(pos),
                        "I011",
                        format!(
                            "set_url inside the {} block opened at line {} (no data_end before it): the builder keeps it as block content and this entry is lost",
                            slot.keyword(),
                            lines.line(kw_at)
                        ),
                    );
                }
            } else if let Some(e) = entry.as_mut() {
                if is_set_url_line(input, pos, size) {
                    // The entry ends here; the same line is read again as a new entry.
                    let Some(done) = entry.take() else { continue };
                    finish(done, &mut injects, pos, &fail)?;
                    continue;
                }
                e.ok = false;
                let slot = if size == 11 && eq_ic(input, pos, b"data_before") {
                    Slot::Before
                } else if size == 11 && eq_ic(input, pos, b"data_inject") {
                    Slot::Inject
                } else if size == 10 && eq_ic(input, pos, b"data_after") {
                    Slot::After
                } else {
                    let text = trim_line(&input[pos..str_end]);
                    let (code, why) = if [&b"data_before"[..], b"data_inject", b"data_after"]
                        .iter()
                        .any(|k| text.eq_ignore_ascii_case(k))
                    {
                        (
                            "I010",
                            "a keyword line must end in CRLF with nothing after the keyword"
                                .to_string(),
                        )
                    } else if text.eq_ignore_ascii_case(b"data_end") {
                        ("I008", "data_end without an open block".to_string())
                    } else {
                        (
                            "I001",
                            format!(
                                "unexpected line {:?} where data_before, data_inject, data_after or set_url was expected",
                                shown(text, 40)
                            ),
                        )
                    };
                    return Err(fail(pos, code, why));
                };
                open = Some((slot, pos, str_end + 1));
            } else {
                let p_end = if str_end > pos && input[str_end - 1] == b'\r' {
                    str_end - 1
                } else {
                    str_end
                };
                let args = get_args(&input[pos..p_end], 8);
                if args.len() < 3 || !args[0].eq_ignore_ascii_case(b"set_url") {
                    let text = trim_line(&input[pos..str_end]);
                    let (code, why) = if size == usize::MAX {
                        (
                            "I010",
                            "an empty line ending in a bare LF (the builder assumes CRLF)"
                                .to_string(),
                        )
                    } else if args
                        .first()
                        .is_some_and(|a| a.eq_ignore_ascii_case(b"set_url"))
                    {
                        ("I002", "set_url needs a URL mask and flags".to_string())
                    } else if [&b"data_before"[..], b"data_inject", b"data_after"]
                        .iter()
                        .any(|k| text.eq_ignore_ascii_case(k))
                    {
                        ("I003", "block keyword outside any set_url".to_string())
                    } else if text.eq_ignore_ascii_case(b"data_end") {
                        ("I008", "data_end without an open block".to_string())
                    } else {
                        (
                            "I001",
                            format!(
                                "unexpected line {:?} where set_url was expected",
                                shown(text, 40)
                            ),
                        )
                    };
                    return Err(fail(pos, code, why));
                }
                let pos_lc = lines.position(pos);
                let header: usize = args[1..].iter().take(6).map(|a| a.len() + 1).sum();
                if header + 16 > usize::from(u16::MAX) {
                    diags.warn(
                        pos_lc,
                        "I018",
                        "set_url arguments over 64 KiB: the builder's 16-bit offsets overflow and the entry is corrupted",
                    );
                }
                let opt = |i: usize, star_is_none: bool| -> Option<String> {
                    let a = args.get(i)?;
                    if a.is_empty() || (star_is_none && a == b"*") {
                        None
                    } else {
                        Some(decode_with(enc, a).into_owned())
                    }
                };
                let inject = Inject {
                    format: InjectFormat::ZeusText,
                    url_mask: decode_with(enc, args[1]).into_owned(),
                    mask_kind: MaskKind::ZeusGlob,
                    flags: decode_with(enc, args[2]).into_owned(),
                    post_blacklist: opt(3, true),
                    post_whitelist: opt(4, true),
                    url_block: opt(5, false),
                    matched_context: opt(6, false),
                    line: Some(pos_lc.0),
                    ..Inject::default()
                };
                crate::zeus::check_flags(&inject, pos_lc, &mut diags);
                entry = Some(Entry {
                    inject,
                    slots: [None, None, None],
                    ok: false,
                });
            }
        }
        pos = str_end + 1;
    }

    if let Some((slot, kw_at, _)) = open {
        return Err(fail(
            kw_at,
            "I009",
            format!("{} block is never closed by data_end", slot.keyword()),
        ));
    }
    if let Some(done) = entry.take() {
        finish(done, &mut injects, end, &fail)?;
    }
    Ok(Built {
        injects,
        diagnostics: diags,
    })
}

fn finish(
    e: Entry,
    injects: &mut Vec<Inject>,
    at: usize,
    fail: &dyn Fn(usize, &'static str, String) -> Diagnostic,
) -> Result<(), Diagnostic> {
    if !e.ok {
        let line = e.inject.line.unwrap_or(0);
        return Err(if e.partial() {
            fail(
                at,
                "I004",
                format!("incomplete triplet in the set_url of line {line} (a block is missing)"),
            )
        } else {
            let mut d = fail(
                at,
                "I005",
                "set_url has no complete before/inject/after triplet".to_string(),
            );
            d.line = line;
            d.column = 1;
            d
        });
    }
    injects.push(e.inject);
    Ok(())
}

fn store(e: &mut Entry, slot: Slot, content: Vec<u8>, at: (u32, u32), diags: &mut Diags) {
    let i = slot as usize;
    if e.slots[i].replace(content).is_some() {
        diags.warn(
            at,
            "I006",
            format!(
                "{} repeated in one triplet; the later block wins",
                slot.keyword()
            ),
        );
    }
    if e.slots.iter().all(Option::is_some) {
        let [b, n, a] = std::mem::take(&mut e.slots);
        e.inject.blocks.push(InjectBlock {
            before: b.unwrap_or_default(),
            inject: n.unwrap_or_default(),
            after: a.unwrap_or_default(),
        });
        e.ok = true;
    }
}

/// `set_url` followed by a blank, as the builder recognises the start of the next entry.
fn is_set_url_line(input: &[u8], pos: usize, size: usize) -> bool {
    size > 7 && eq_ic(input, pos, b"set_url") && matches!(input.get(pos + 7), Some(b' ' | b'\t'))
}

fn trim_line(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r'))
        .map_or(0, |i| i + 1);
    &s[..end]
}

/// `__GetArgsA`: up to `limit` arguments of `line`, with the builder's quoting rules.
fn get_args(line: &[u8], limit: usize) -> Vec<&[u8]> {
    let mut args = Vec::new();
    let mut p = 0usize;
    while p < line.len() && args.len() < limit {
        let Some((s, e)) = get_arg(line, p) else {
            break;
        };
        let arg = &line[s..e];
        // `_LengthA` and `lstrcmpiA` stop at the first NUL.
        let arg = arg.split(|&b| b == 0).next().unwrap_or_default();
        args.push(arg);
        // `pStart = _e + (_e[1] == '"' ? 2 : 1)` with `_e` the last byte of the argument.
        p = e + usize::from(line.get(e) == Some(&b'"'));
    }
    args
}

/// `__GetArgA`: the next argument at or after `p` as `[start, end)`.
fn get_arg(line: &[u8], mut p: usize) -> Option<(usize, usize)> {
    while p < line.len() && (line[p] == b' ' || line[p] == b'\t') {
        p += 1;
    }
    if p >= line.len() {
        return None;
    }
    let quote = match line[p] {
        q @ (b'"' | b'\'') => {
            p += 1;
            Some(q)
        }
        _ => None,
    };
    let start = p;
    while p < line.len() {
        let b = line[p];
        match quote {
            Some(q) if b == q => return Some((start, p)),
            None if matches!(b, b' ' | b'\t' | b'"' | b'\'') => return Some((start, p)),
            _ => {}
        }
        p += 1;
    }
    if quote.is_some() {
        None
    } else {
        Some((start, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        get_args(s.as_bytes(), 8)
            .into_iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn builder_argument_quirks() {
        assert_eq!(args("set_url *a* GP"), ["set_url", "*a*", "GP"]);
        assert_eq!(args("set_url \"a b\" GP *"), ["set_url", "a b", "GP", "*"]);
        // After a closing single quote the quote itself opens a new argument.
        assert_eq!(args("set_url 'a' GP"), ["set_url", "a"]);
        assert_eq!(args("set_url 'a' 'GP'"), ["set_url", "a", " ", "GP"]);
        // An unquoted argument ends at a quote; a double quote is then skipped.
        assert_eq!(args("set_url a\"b\" GP"), ["set_url", "a", "b", "GP"]);
        assert_eq!(args("set_url \"\" GP"), ["set_url", "", "GP"]);
        assert_eq!(args("set_url a\0x GP"), ["set_url", "a", "GP"]);
        assert_eq!(args("a b c d e f g h i j").len(), 8);
    }
}
