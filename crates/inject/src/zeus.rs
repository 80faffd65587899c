//! The ZeuS 2.x WebInject text format (`webinjects.txt`), also used by Citadel, ICE IX, KINS,
//! SpyEye and Zloader (webinjects.md §1–3).
//!
//! Grammar (§1.1–1.3): `set_url <mask> <flags> [postdata_blacklist] [postdata_whitelist]
//! [url_block] [matched_context]` lines, each followed by triplets of `data_before` /
//! `data_inject` / `data_after` blocks (any order) that end at a `data_end` line; `;` comments
//! outside blocks; keywords case-insensitive. A literal `*` in a postdata position means "none".
//! Block bytes are kept exactly as written, minus the final line break, and never decoded: the
//! file's charset (UTF-8, cp1251, Shift_JIS, EUC-JP, latin-1...) is detected and reported in
//! [`ParseOutput::charset`] so that analysis can decode them with [`ParseOutput::decode`].
//!
//! [`Mode::Strict`] reproduces the ZeuS 2.0.8.9 kit builder exactly (see `zeus_builder.rs` for
//! its quirks): `Err` is where the builder gives up, `Ok` holds exactly what it compiles. On the
//! kit's own `webinjects.txt` that is 112 entries and 215 triplets: three `set_url` lines sit
//! inside blocks left open by a missing `data_end`, so the builder reads them as block content;
//! the diagnostics name them (`I011`).
//!
//! [`Mode::Tolerant`] recovers from every error and reports it with its line and column: LF,
//! CRLF and CR line breaks, blanks around keywords, unknown keywords (Citadel's unconfirmed
//! `data_keyword`, §2) as warnings, incomplete triplets, stray text, and a block never closed
//! (closed at the next `set_url` when no `data_end` follows, so no later entry is lost). Where
//! the builder would swallow a `set_url` into a block that a later `data_end` closes, tolerant
//! mode does the same (so both modes agree on files the builder accepts) and warns `I011`.
//! It also runs the builder and reports its verdict as `I020`.
//!
//! Diagnostic codes: I001 unexpected line, I002 set_url without mask/flags, I003 block outside
//! set_url, I004 incomplete triplet, I005 set_url without a complete triplet, I006 repeated
//! block keyword, I007 block over 64 KiB, I008 stray data_end, I009 block never closed, I010
//! LF line breaks, I011 set_url swallowed into a block, I012 CR-only line breaks, I013 unknown
//! keyword, I014 extra set_url arguments, I015 indented data_end, I016 lowercase flag letter,
//! I017 `D` without url_block, I018 set_url over 64 KiB, I019 byte-order mark, I020 the
//! builder's verdict.

use dropwatch_model::{Inject, InjectBlock, InjectFormat, MaskKind};
use encoding_rs::Encoding;

use crate::common::{decode_with, detect_charset, shown, Diags, LineIndex, SourceFormat};
pub use crate::common::{Diagnostic, Mode, ParseOutput, Severity};

/// Longest block the builder accepts (`csize + 4 < 0xFFFF`); longer ones are kept with a warning.
const BUILDER_MAX_BLOCK: usize = 0xFFFF - 5;

#[derive(Clone, PartialEq, Eq)]
enum Slot {
    Before,
    Inject,
    After,
    /// A block opened by an unknown `data_*` keyword; its content becomes an attribute.
    Unknown(String),
}

impl Slot {
    fn keyword(&self) -> &str {
        match self {
            Slot::Before => "data_before",
            Slot::Inject => "data_inject",
            Slot::After => "data_after",
            Slot::Unknown(k) => k,
        }
    }
}

struct Entry {
    inject: Inject,
    before: Option<Vec<u8>>,
    inject_block: Option<Vec<u8>>,
    after: Option<Vec<u8>>,
}

struct Parser {
    enc: &'static Encoding,
    diags: Diags,
    injects: Vec<Inject>,
    current: Option<Entry>,
}

impl Parser {
    fn finish_entry(&mut self, line: u32) {
        let Some(entry) = self.current.take() else {
            return;
        };
        let partial =
            entry.before.is_some() || entry.inject_block.is_some() || entry.after.is_some();
        if partial {
            self.diags.error(
                (line, 1),
                "I004",
                format!(
                    "incomplete triplet in the set_url of line {} (a block is missing); it is dropped",
                    entry.inject.line.unwrap_or(0)
                ),
            );
        }
        if entry.inject.blocks.is_empty() {
            self.diags.error(
                (entry.inject.line.unwrap_or(0), 1),
                "I005",
                "set_url has no complete before/inject/after triplet",
            );
            return;
        }
        self.injects.push(entry.inject);
    }

    fn store_block(&mut self, slot: Slot, content: Vec<u8>, line: u32) {
        if content.len() > BUILDER_MAX_BLOCK {
            self.diags.warn(
                (line, 1),
                "I007",
                format!(
                    "{} block of {} bytes exceeds the builder's 64 KiB limit",
                    slot.keyword(),
                    content.len()
                ),
            );
        }
        let Some(entry) = self.current.as_mut() else {
            self.diags.error(
                (line, 1),
                "I003",
                format!("{} outside any set_url; block ignored", slot.keyword()),
            );
            return;
        };
        let target = match &slot {
            Slot::Before => &mut entry.before,
            Slot::Inject => &mut entry.inject_block,
            Slot::After => &mut entry.after,
            Slot::Unknown(keyword) => {
                let value = decode_with(self.enc, &content).into_owned();
                entry.inject.attributes.push((keyword.clone(), value));
                return;
            }
        };
        let overwritten = target.replace(content).is_some();
        if let (Some(_), Some(_), Some(_)) = (&entry.before, &entry.inject_block, &entry.after) {
            entry.inject.blocks.push(InjectBlock {
                before: entry.before.take().unwrap_or_default(),
                inject: entry.inject_block.take().unwrap_or_default(),
                after: entry.after.take().unwrap_or_default(),
            });
        }
        if overwritten {
            self.diags.warn(
                (line, 1),
                "I006",
                format!(
                    "{} repeated in one triplet; the later block wins",
                    slot.keyword()
                ),
            );
        }
    }

    fn set_url(&mut self, line_no: u32, column: u32, rest: &[u8]) {
        let args = split_args(rest);
        if args.len() < 2 {
            self.diags.error(
                (line_no, column),
                "I002",
                "set_url needs a URL mask and flags",
            );
        }
        if args.len() > 6 {
            self.diags.warn(
                (line_no, column),
                "I014",
                format!(
                    "set_url has {} arguments; only mask, flags, postdata blacklist and whitelist, url_block and matched_context are read",
                    args.len()
                ),
            );
        }
        let Some(mask) = args.first() else {
            // Blocks that follow are consumed and reported as outside any set_url.
            self.current = None;
            return;
        };
        let enc = self.enc;
        let opt = |i: usize, star_is_none: bool| -> Option<String> {
            let a = args.get(i)?;
            if a.is_empty() || (star_is_none && a.as_slice() == b"*") {
                None
            } else {
                Some(decode_with(enc, a).into_owned())
            }
        };
        let inject = Inject {
            format: InjectFormat::ZeusText,
            url_mask: decode_with(enc, mask).into_owned(),
            mask_kind: MaskKind::ZeusGlob,
            flags: args
                .get(1)
                .map(|f| decode_with(enc, f).into_owned())
                .unwrap_or_default(),
            post_blacklist: opt(2, true),
            post_whitelist: opt(3, true),
            url_block: opt(4, false),
            matched_context: opt(5, false),
            line: Some(line_no),
            ..Inject::default()
        };
        check_flags(&inject, (line_no, column), &mut self.diags);
        self.current = Some(Entry {
            inject,
            before: None,
            inject_block: None,
            after: None,
        });
    }
}

/// Flag letters are case-sensitive for the builder; `D` needs a `url_block` (§1.2).
pub(crate) fn check_flags(inject: &Inject, at: (u32, u32), diags: &mut Diags) {
    if let Some(c) = inject.flags.chars().find(|c| "gplfhdic".contains(*c)) {
        diags.warn(
            at,
            "I016",
            format!("flag letter {c:?} is lowercase; the builder only reads upper-case letters and ignores it"),
        );
    }
    if inject.flags.contains('D') && inject.url_block.is_none() {
        diags.warn(
            at,
            "I017",
            "flag D (once per day) needs a url_block argument",
        );
    }
}

/// One line of the input: `[start, end)` without its line break, `next` after it.
struct Line {
    start: usize,
    end: usize,
    next: usize,
}

/// Splits at LF, CRLF or a lone CR; counts each kind of break.
fn split_lines(input: &[u8], from: usize, counts: &mut [usize; 3]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = from;
    let mut i = from;
    while i < input.len() {
        match input[i] {
            b'\n' => {
                let crlf = i > start && input[i - 1] == b'\r';
                counts[usize::from(!crlf)] += 1;
                lines.push(Line {
                    start,
                    end: if crlf { i - 1 } else { i },
                    next: i + 1,
                });
                start = i + 1;
            }
            b'\r' if input.get(i + 1) != Some(&b'\n') => {
                counts[2] += 1;
                lines.push(Line {
                    start,
                    end: i,
                    next: i + 1,
                });
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < input.len() {
        lines.push(Line {
            start,
            end: input.len(),
            next: input.len(),
        });
    }
    lines
}

/// Parses a ZeuS-format WebInject file.
///
/// Never panics; memory is linear in the input. In [`Mode::Strict`], returns the first error
/// the kit's builder would stop at, or exactly the entries it would compile; in
/// [`Mode::Tolerant`], every entry that can be recovered plus all diagnostics.
pub fn parse_zeus(input: &[u8], mode: Mode) -> Result<ParseOutput, Diagnostic> {
    let enc = detect_charset(input);
    let lines = LineIndex::new(input);
    if mode == Mode::Strict {
        let built = crate::zeus_builder::build(input, enc, &lines)?;
        return Ok(ParseOutput {
            injects: built.injects,
            diagnostics: built.diagnostics.into_sorted(),
            format: SourceFormat::ZeusText,
            charset: enc.name(),
        });
    }
    let verdict = crate::zeus_builder::build(input, enc, &lines).err();
    let mut p = Parser {
        enc,
        diags: Diags::default(),
        injects: Vec::new(),
        current: None,
    };
    let bom = if input.starts_with(b"\xEF\xBB\xBF") {
        p.diags.warn(
            (1, 1),
            "I019",
            "UTF-8 byte-order mark: the kit's builder would misread the first line",
        );
        3
    } else {
        0
    };
    let mut breaks = [0usize; 3];
    let all = split_lines(input, bom, &mut breaks);
    // The last data_end line: an open block with no data_end after it is unterminated.
    let last_end = all
        .iter()
        .rposition(|l| trim_blanks(&input[l.start..l.end]).eq_ignore_ascii_case(b"data_end"));

    // An open block: its slot, the line of its keyword and where its content starts.
    let mut open: Option<(Slot, u32, usize)> = None;
    let mut line_no: u32 = 0;
    for (idx, line) in all.iter().enumerate() {
        line_no = crate::common::to_u32(idx + 1);
        let raw = &input[line.start..line.end];
        let text = trim_blanks(raw);
        let column = crate::common::to_u32(raw.len() - trim_start(raw).len() + 1);

        if let Some((slot, start_line, content_start)) = open.take() {
            if text.eq_ignore_ascii_case(b"data_end") {
                if column > 1 {
                    p.diags.warn(
                        (line_no, column),
                        "I015",
                        "indented data_end: the builder would keep the line break and indentation in the block",
                    );
                }
                let content = strip_break(&input[content_start..line.start.max(content_start)]);
                p.store_block(slot, content.to_vec(), start_line);
                continue;
            }
            if starts_set_url(text) {
                if last_end.is_none_or(|l| idx > l) {
                    p.diags.error(
                        (start_line, 1),
                        "I009",
                        format!(
                            "{} block is never closed by data_end; closed at the set_url of line {line_no}",
                            slot.keyword()
                        ),
                    );
                    let content = strip_break(&input[content_start..line.start.max(content_start)]);
                    p.store_block(slot, content.to_vec(), start_line);
                    // Falls through: the set_url line is read as a new entry.
                } else {
                    p.diags.warn(
                        (line_no, column),
                        "I011",
                        format!(
                            "set_url inside the {} block opened at line {start_line} (no data_end before it): the builder keeps it as block content and this entry is lost",
                            slot.keyword()
                        ),
                    );
                    open = Some((slot, start_line, content_start));
                    continue;
                }
            } else {
                open = Some((slot, start_line, content_start));
                continue;
            }
        }

        if text.is_empty() || text[0] == b';' {
            continue;
        }
        let (keyword, rest) = split_keyword(text);
        let slot = match keyword.to_ascii_lowercase().as_slice() {
            b"set_url" => {
                p.finish_entry(line_no);
                p.set_url(line_no, column, rest);
                continue;
            }
            b"data_before" => Slot::Before,
            b"data_inject" => Slot::Inject,
            b"data_after" => Slot::After,
            b"data_end" => {
                p.diags
                    .error((line_no, column), "I008", "data_end without an open block");
                continue;
            }
            kw if is_keyword_like(kw) => {
                let name = String::from_utf8_lossy(kw).into_owned();
                let opens_block = kw.starts_with(b"data_") && trim_start(rest).is_empty();
                p.diags.warn(
                    (line_no, column),
                    "I013",
                    if opens_block {
                        format!("unknown block keyword {name:?}; its block is kept as an attribute")
                    } else {
                        format!("unknown keyword {name:?}; the line is kept as an attribute")
                    },
                );
                if opens_block {
                    Slot::Unknown(name)
                } else {
                    let value = decode_with(p.enc, trim_start(rest)).into_owned();
                    match p.current.as_mut() {
                        Some(e) => e.inject.attributes.push((name, value)),
                        None => p.diags.warn(
                            (line_no, column),
                            "I013",
                            "the unknown keyword is outside any set_url and is dropped",
                        ),
                    }
                    continue;
                }
            }
            _ => {
                p.diags.error(
                    (line_no, column),
                    "I001",
                    format!(
                        "unexpected line starting with {:?}; a keyword was expected",
                        shown(keyword, 40)
                    ),
                );
                continue;
            }
        };
        if !rest.is_empty() {
            p.diags.warn(
                (line_no, column),
                "I001",
                format!(
                    "text after {} is ignored: {:?}",
                    slot.keyword(),
                    shown(trim_start(rest), 40)
                ),
            );
        }
        open = Some((slot, line_no, line.next));
    }

    if let Some((slot, start_line, content_start)) = open {
        p.diags.error(
            (start_line, 1),
            "I009",
            format!(
                "{} block is never closed by data_end; it runs to the end of the file",
                slot.keyword()
            ),
        );
        let content = strip_break(&input[content_start.min(input.len())..]);
        p.store_block(slot, content.to_vec(), start_line);
    }
    p.finish_entry(line_no.saturating_add(1));
    let [_, lf, cr] = breaks;
    if lf > 0 {
        p.diags.warn(
            (1, 1),
            "I010",
            format!("{lf} line breaks are LF, not CRLF: the kit's builder would misread this file"),
        );
    }
    if cr > 0 {
        p.diags.warn(
            (1, 1),
            "I012",
            format!("{cr} line breaks are a lone CR: the kit's builder would see one long line"),
        );
    }
    if let Some(d) = verdict {
        p.diags.warn(
            (d.line, d.column),
            "I020",
            format!("{} ({})", d.message, d.code),
        );
    }
    Ok(ParseOutput {
        injects: p.injects,
        diagnostics: p.diags.into_sorted(),
        format: SourceFormat::ZeusText,
        charset: enc.name(),
    })
}

/// Drops one final line break (CRLF, LF or CR).
fn strip_break(s: &[u8]) -> &[u8] {
    s.strip_suffix(b"\r\n")
        .or_else(|| s.strip_suffix(b"\n"))
        .or_else(|| s.strip_suffix(b"\r"))
        .unwrap_or(s)
}

fn starts_set_url(text: &[u8]) -> bool {
    let (keyword, rest) = split_keyword(text);
    keyword.eq_ignore_ascii_case(b"set_url") && !rest.is_empty()
}

/// `[a-z][a-z0-9_]*` with an underscore: looks like a keyword of the format.
fn is_keyword_like(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_alphabetic)
        && s.contains(&b'_')
        && s.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

fn trim_start(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_blank(b)).unwrap_or(s.len());
    &s[start..]
}

fn trim_blanks(s: &[u8]) -> &[u8] {
    let s = trim_start(s);
    let end = s.iter().rposition(|&b| !is_blank(b)).map_or(0, |i| i + 1);
    &s[..end]
}

fn split_keyword(text: &[u8]) -> (&[u8], &[u8]) {
    match text.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, &[]),
    }
}

/// Splits `set_url` arguments: blank-separated, optionally quoted with `'` or `"`; at most 7
/// (the builder reads 8 including the keyword). Tolerant quoting: a closing quote just closes.
fn split_args(mut s: &[u8]) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    while args.len() < 7 {
        s = trim_start(s);
        if s.is_empty() {
            break;
        }
        if s[0] == b'"' || s[0] == b'\'' {
            let q = s[0];
            let end = s[1..]
                .iter()
                .position(|&b| b == q)
                .map_or(s.len(), |i| i + 1);
            args.push(s[1..end].to_vec());
            s = &s[(end + 1).min(s.len())..];
        } else {
            let end = s
                .iter()
                .position(|&b| b == b' ' || b == b'\t')
                .unwrap_or(s.len());
            args.push(s[..end].to_vec());
            s = &s[end..];
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &[u8] = b"; comment\r\nset_url https://ib.bank.example/* GP\r\ndata_before\r\n<form*>\r\ndata_end\r\ndata_inject\r\n<input name=\"pin\">\r\nline2\r\ndata_end\r\ndata_after\r\ndata_end\r\n";

    fn codes(out: &ParseOutput) -> Vec<(&'static str, u32)> {
        out.diagnostics.iter().map(|d| (d.code, d.line)).collect()
    }

    #[test]
    fn parses_a_crlf_entry_with_raw_blocks() {
        let out = parse_zeus(ONE, Mode::Strict).unwrap();
        assert_eq!(out.injects.len(), 1);
        let inj = &out.injects[0];
        assert_eq!(inj.url_mask, "https://ib.bank.example/*");
        assert_eq!(inj.flags, "GP");
        assert_eq!(inj.line, Some(2));
        assert_eq!(inj.blocks.len(), 1);
        assert_eq!(inj.blocks[0].before, b"<form*>");
        assert_eq!(inj.blocks[0].inject, b"<input name=\"pin\">\r\nline2");
        assert_eq!(inj.blocks[0].after, b"");
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(out.charset, "UTF-8");
        assert_eq!(out.format, SourceFormat::ZeusText);
        // Both modes agree on a file the builder accepts.
        assert_eq!(
            parse_zeus(ONE, Mode::Tolerant).unwrap().injects,
            out.injects
        );
    }

    #[test]
    fn keywords_are_case_insensitive_and_triplets_any_order() {
        let src = b"SET_URL *x* GPL\n  Data_After\nA\n data_end \ndata_inject\nI\ndata_end\ndata_before\nB\ndata_end\n";
        let out = parse_zeus(src, Mode::Tolerant).unwrap();
        assert_eq!(out.injects.len(), 1);
        let b = &out.injects[0].blocks[0];
        assert_eq!(
            (b.before.as_slice(), b.inject.as_slice(), b.after.as_slice()),
            (&b"B"[..], &b"I"[..], &b"A"[..])
        );
        assert!(out.injects[0].is_grab());
        // LF-only is accepted, with a warning.
        assert!(out
            .diagnostics
            .iter()
            .any(|d| d.code == "I010" && d.severity == Severity::Warning));
    }

    #[test]
    fn tolerant_mode_recovers_and_reports_positions() {
        let src = b"set_url *a* GP\ndata_before\nx\ndata_end\ngarbage here\nset_url *b* GP\ndata_before\ndata_end\ndata_inject\ndata_end\ndata_after\ndata_end\n";
        let out = parse_zeus(src, Mode::Tolerant).unwrap();
        assert_eq!(out.injects.len(), 1);
        assert_eq!(out.injects[0].url_mask, "*b*");
        let codes = codes(&out);
        assert!(codes.contains(&("I001", 5)), "{codes:?}");
        assert!(codes.contains(&("I004", 6)), "{codes:?}");
        assert!(codes.contains(&("I005", 1)), "{codes:?}");
        // The builder stops at line 2 already: `data_before` + bare LF fails its CRLF length
        // check. (Before the builder was emulated this test expected I005 at line 1.)
        let err = parse_zeus(src, Mode::Strict).unwrap_err();
        assert_eq!((err.code, err.line), ("I010", 2));
        // With CRLF the builder gets past the blocks and stops at the stray line.
        let crlf: Vec<u8> = String::from_utf8_lossy(src)
            .replace('\n', "\r\n")
            .into_bytes();
        let err = parse_zeus(&crlf, Mode::Strict).unwrap_err();
        assert_eq!((err.code, err.line, err.column), ("I001", 5, 1));
        assert!(
            codes.contains(&("I020", 2)),
            "the builder's verdict: {codes:?}"
        );
    }

    #[test]
    fn unterminated_block_swallows_the_rest() {
        let src = b"set_url *a* GP\ndata_before\nx\nset_url *b* GP\n";
        let out = parse_zeus(src, Mode::Tolerant).unwrap();
        assert!(out.injects.is_empty());
        assert!(out
            .diagnostics
            .iter()
            .any(|d| d.code == "I009" && d.line == 2));
    }

    #[test]
    fn a_block_left_open_before_a_later_data_end_swallows_set_url_like_the_builder() {
        let src = b"set_url *a* GP\r\ndata_before\r\nB\r\ndata_end\r\ndata_inject\r\nI\r\ndata_end\r\ndata_after\r\ndata_end\r\ndata_before\r\n\r\nset_url *b* GP\r\ndata_before\r\nB2\r\ndata_end\r\ndata_inject\r\nI2\r\ndata_end\r\ndata_after\r\ndata_end\r\n";
        for mode in [Mode::Strict, Mode::Tolerant] {
            let out = parse_zeus(src, mode).unwrap();
            assert_eq!(out.injects.len(), 1, "{mode:?}");
            let blocks = &out.injects[0].blocks;
            assert_eq!(blocks.len(), 2);
            assert_eq!(
                blocks[1].before, b"\r\nset_url *b* GP\r\ndata_before\r\nB2",
                "the set_url is literal block content"
            );
            assert!(
                codes(&out).contains(&("I011", 12)),
                "{mode:?}: {:?}",
                out.diagnostics
            );
        }
    }

    #[test]
    fn an_unterminated_block_at_the_end_is_closed_at_the_next_set_url() {
        // No data_end after line 8: its block is closed at the set_url of line 10, which
        // completes *a*'s triplet; *b*'s block runs to the end of the file.
        let src = b"set_url *a* GP\ndata_before\nB\ndata_end\ndata_inject\nI\ndata_end\ndata_after\nA\nset_url *b* GP\ndata_before\nB2\n";
        let out = parse_zeus(src, Mode::Tolerant).unwrap();
        let masks: Vec<_> = out.injects.iter().map(|i| i.url_mask.as_str()).collect();
        assert_eq!(masks, ["*a*"]);
        assert_eq!(out.injects[0].blocks[0].after, b"A");
        let c = codes(&out);
        assert!(
            c.contains(&("I009", 8)) && c.contains(&("I009", 11)),
            "{c:?}"
        );
        assert!(c.contains(&("I005", 10)), "{c:?}");
        assert!(parse_zeus(src, Mode::Strict).is_err());
    }

    #[test]
    fn quoted_arguments() {
        let out = parse_zeus(b"set_url \"https://a b/*\" 'GP' *\ndata_before\ndata_end\ndata_inject\ndata_end\ndata_after\ndata_end\n", Mode::Tolerant).unwrap();
        assert_eq!(out.injects[0].url_mask, "https://a b/*");
        assert_eq!(out.injects[0].flags, "GP");
        let out = parse_zeus(b"set_url \"https://a b/*\" 'GP' *\r\ndata_before\r\ndata_end\r\ndata_inject\r\ndata_end\r\ndata_after\r\ndata_end\r\n", Mode::Strict).unwrap();
        assert_eq!(out.injects[0].url_mask, "https://a b/*");
        assert_eq!(out.injects[0].flags, "GP");
    }

    #[test]
    fn optional_set_url_arguments() {
        let src = b"set_url https://b.example/* GPD * \"*pass=*\" https://b.example/logout* \"*Welcome*\"\r\ndata_before\r\ndata_end\r\ndata_inject\r\ndata_end\r\ndata_after\r\ndata_end\r\nset_url https://c.example/* GP *login=* *\r\ndata_before\r\ndata_end\r\ndata_inject\r\ndata_end\r\ndata_after\r\ndata_end\r\n";
        for mode in [Mode::Strict, Mode::Tolerant] {
            let out = parse_zeus(src, mode).unwrap();
            let a = &out.injects[0];
            assert_eq!(a.post_blacklist, None, "a literal * means none");
            assert_eq!(a.post_whitelist.as_deref(), Some("*pass=*"));
            assert_eq!(a.url_block.as_deref(), Some("https://b.example/logout*"));
            assert_eq!(a.matched_context.as_deref(), Some("*Welcome*"));
            let b = &out.injects[1];
            assert_eq!(b.post_blacklist.as_deref(), Some("*login=*"));
            assert_eq!(
                (b.post_whitelist.as_ref(), b.url_block.as_ref()),
                (None, None)
            );
            assert!(!out.diagnostics.iter().any(|d| d.code == "I017"));
        }
    }

    #[test]
    fn cr_only_line_breaks() {
        let src = b"set_url *a* GP\rdata_before\rB\rdata_end\rdata_inject\rI\r\rJ\rdata_end\rdata_after\rdata_end\r";
        let out = parse_zeus(src, Mode::Tolerant).unwrap();
        assert_eq!(out.injects.len(), 1);
        assert_eq!(out.injects[0].blocks[0].inject, b"I\r\rJ");
        assert!(codes(&out).contains(&("I012", 1)));
        let err = parse_zeus(src, Mode::Strict).unwrap_err();
        assert_eq!(err.line, 1, "the builder sees one line: {err}");
    }

    #[test]
    fn unknown_keywords_are_warnings() {
        let src = b"set_url *a* GP\r\ndata_keyword\r\nsecret word\r\ndata_end\r\ndata_before\r\ndata_end\r\nset_option 1\r\ndata_inject\r\nX\r\ndata_end\r\ndata_after\r\ndata_end\r\n";
        let out = parse_zeus(src, Mode::Tolerant).unwrap();
        assert_eq!(out.injects.len(), 1);
        assert_eq!(
            out.injects[0].attributes,
            vec![
                ("data_keyword".to_string(), "secret word".to_string()),
                ("set_option".to_string(), "1".to_string())
            ]
        );
        let c = codes(&out);
        assert!(
            c.contains(&("I013", 2)) && c.contains(&("I013", 7)),
            "{c:?}"
        );
        assert!(out
            .diagnostics
            .iter()
            .filter(|d| d.code == "I013")
            .all(|d| d.severity == Severity::Warning));
        assert_eq!(parse_zeus(src, Mode::Strict).unwrap_err().line, 2);
    }

    #[test]
    fn builder_quirks_in_strict_mode() {
        // An empty LF-only line is fatal; a CRLF one is not.
        let err = parse_zeus(b"\nset_url *a* GP\r\n", Mode::Strict).unwrap_err();
        assert_eq!((err.code, err.line), ("I010", 1));
        // Trailing blank after a keyword breaks the length check.
        let err = parse_zeus(
            b"set_url *a* GP\r\ndata_before \r\ndata_end\r\n",
            Mode::Strict,
        )
        .unwrap_err();
        assert_eq!((err.code, err.line), ("I010", 2));
        // An indented data_end keeps the CRLF and part of the indentation in the block.
        let out = parse_zeus(
            b"set_url *a* GP\r\ndata_before\r\nB\r\n  data_end\r\ndata_inject\r\ndata_end\r\ndata_after\r\ndata_end\r\n",
            Mode::Strict,
        )
        .unwrap();
        assert_eq!(out.injects[0].blocks[0].before, b"B\r\n ");
        assert!(codes(&out).contains(&("I015", 4)));
        // A block over 64 KiB is fatal for the builder, a warning in tolerant mode.
        let mut big = b"set_url *a* GP\r\ndata_before\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 0xFFFB));
        big.extend_from_slice(
            b"\r\ndata_end\r\ndata_inject\r\ndata_end\r\ndata_after\r\ndata_end\r\n",
        );
        assert_eq!(parse_zeus(&big, Mode::Strict).unwrap_err().code, "I007");
        let out = parse_zeus(&big, Mode::Tolerant).unwrap();
        assert_eq!(out.injects.len(), 1);
        assert!(codes(&out).contains(&("I007", 2)));
        // Lowercase flags are read as nothing by the builder.
        let out = parse_zeus(
            b"set_url *a* gp\r\ndata_before\r\ndata_end\r\ndata_inject\r\ndata_end\r\ndata_after\r\ndata_end\r\n",
            Mode::Strict,
        )
        .unwrap();
        assert!(codes(&out).contains(&("I016", 1)));
    }

    #[test]
    fn charset_is_detected_and_blocks_stay_raw() {
        let mut src = b"; ".to_vec();
        src.extend(
            encoding_rs::WINDOWS_1251
                .encode("Инжекты для банков: запрос кода подтверждения и пароля")
                .0
                .iter(),
        );
        src.extend_from_slice(b"\r\nset_url *a* GP\r\ndata_before\r\ndata_end\r\ndata_inject\r\n");
        let pin = encoding_rs::WINDOWS_1251
            .encode("Введите ПИН-код")
            .0
            .into_owned();
        src.extend_from_slice(&pin);
        src.extend_from_slice(b"\r\ndata_end\r\ndata_after\r\ndata_end\r\n");
        let out = parse_zeus(&src, Mode::Strict).unwrap();
        assert_eq!(out.charset, "windows-1251");
        assert_eq!(out.injects[0].blocks[0].inject, pin);
        assert_eq!(
            out.decode(&out.injects[0].blocks[0].inject),
            "Введите ПИН-код"
        );
    }

    #[test]
    fn real_kit_file_parses_as_the_builder_does() {
        let bytes = include_bytes!("../tests/data/zeus-2.0.8.9-kit-webinjects.txt");
        // The corpus README: 115 set_url lines, of which the builder keeps 112 (three are
        // swallowed by unterminated blocks), with 215 triplets.
        for mode in [Mode::Strict, Mode::Tolerant] {
            let out = parse_zeus(bytes, mode).unwrap();
            assert_eq!(
                out.injects.len(),
                112,
                "{:#?}",
                &out.diagnostics[..out.diagnostics.len().min(5)]
            );
            assert_eq!(
                out.injects.iter().map(|i| i.blocks.len()).sum::<usize>(),
                215
            );
        }
    }

    #[test]
    fn hostile_inputs_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let alphabet: &[&[u8]] = &[
            b"set_url ",
            b"data_before",
            b"data_inject",
            b"data_after",
            b"data_end",
            b"data_x",
            b"\n",
            b"\r\n",
            b"\r",
            b"\"",
            b"'",
            b" ",
            b"\t",
            b"*",
            b";",
            b"\xff",
            b"\0",
            b"x",
        ];
        for _ in 0..3_000 {
            let n = rng.random_range(0..60);
            let mut input = Vec::new();
            for _ in 0..n {
                input.extend_from_slice(alphabet[rng.random_range(0..alphabet.len())]);
            }
            let out = parse_zeus(&input, Mode::Tolerant).unwrap();
            let block_bytes: usize = out
                .injects
                .iter()
                .flat_map(|i| &i.blocks)
                .map(|b| b.before.len() + b.inject.len() + b.after.len())
                .sum();
            assert!(block_bytes <= input.len());
            if let Ok(strict) = parse_zeus(&input, Mode::Strict) {
                let strict_bytes: usize = strict
                    .injects
                    .iter()
                    .flat_map(|i| &i.blocks)
                    .map(|b| b.before.len() + b.inject.len() + b.after.len())
                    .sum();
                assert!(strict_bytes <= input.len());
            }
        }
    }
}
