//! The ZeuS 2.x WebInject text format.
//!
//! Grammar and semantics follow the ZeuS 2.0.8.9 builder as documented in
//! `../shared/design/formats/webinjects.md` §1: `set_url <mask> <flags> [...]` lines, each
//! followed by triplets of `data_before` / `data_inject` / `data_after` blocks (any order) that
//! end at a `data_end` line; `;` comments outside blocks; keywords case-insensitive. Block bytes
//! are kept exactly as written, minus the final line break.
//!
//! [`Mode::Tolerant`] recovers from every error and reports it with its line and column;
//! [`Mode::Strict`] rejects the input at the first error, as the kit's builder does.

use dropwatch_model::{Inject, InjectBlock};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Strict,
    Tolerant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// A problem found in the input, with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{line}:{column}: {code}: {message}")]
pub struct Diagnostic {
    pub line: u32,
    pub column: u32,
    pub severity: Severity,
    /// Stable code, e.g. `I001`.
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParseOutput {
    pub injects: Vec<Inject>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Longest block the builder accepts (`csize + 4 < 0xFFFF`); longer ones are kept with a warning.
const BUILDER_MAX_BLOCK: usize = 0xFFFF - 5;
/// At most this many diagnostics are kept; a hostile file cannot make the report unbounded.
const MAX_DIAGNOSTICS: usize = 1_000;

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
    before: Option<Vec<u8>>,
    inject_block: Option<Vec<u8>>,
    after: Option<Vec<u8>>,
}

struct Parser<'a> {
    diagnostics: Vec<Diagnostic>,
    injects: Vec<Inject>,
    current: Option<Entry>,
    input: &'a [u8],
}

impl Parser<'_> {
    fn diag(
        &mut self,
        line: u32,
        column: u32,
        severity: Severity,
        code: &'static str,
        message: String,
    ) {
        if self.diagnostics.len() < MAX_DIAGNOSTICS {
            self.diagnostics.push(Diagnostic {
                line,
                column,
                severity,
                code,
                message,
            });
        }
    }

    fn finish_entry(&mut self, line: u32) {
        let Some(entry) = self.current.take() else {
            return;
        };
        let partial =
            entry.before.is_some() || entry.inject_block.is_some() || entry.after.is_some();
        if partial {
            self.diag(
                line,
                1,
                Severity::Error,
                "I004",
                format!(
                    "incomplete triplet in the set_url of line {} (a block is missing); it is dropped",
                    entry.inject.line.unwrap_or(0)
                ),
            );
        }
        if entry.inject.blocks.is_empty() {
            self.diag(
                entry.inject.line.unwrap_or(0),
                1,
                Severity::Error,
                "I005",
                "set_url has no complete before/inject/after triplet".to_string(),
            );
            return;
        }
        self.injects.push(entry.inject);
    }

    fn store_block(&mut self, slot: Slot, content: Vec<u8>, line: u32) {
        if content.len() > BUILDER_MAX_BLOCK {
            self.diag(
                line,
                1,
                Severity::Warning,
                "I007",
                format!(
                    "{} block of {} bytes exceeds the builder's 64 KiB limit",
                    slot.keyword(),
                    content.len()
                ),
            );
        }
        let Some(entry) = self.current.as_mut() else {
            self.diag(
                line,
                1,
                Severity::Error,
                "I003",
                format!("{} outside any set_url; block ignored", slot.keyword()),
            );
            return;
        };
        let target = match slot {
            Slot::Before => &mut entry.before,
            Slot::Inject => &mut entry.inject_block,
            Slot::After => &mut entry.after,
        };
        let overwritten = target.replace(content).is_some();
        if entry.before.is_some() && entry.inject_block.is_some() && entry.after.is_some() {
            entry.inject.blocks.push(InjectBlock {
                before: entry.before.take().unwrap_or_default(),
                inject: entry.inject_block.take().unwrap_or_default(),
                after: entry.after.take().unwrap_or_default(),
            });
        }
        if overwritten {
            self.diag(
                line,
                1,
                Severity::Warning,
                "I006",
                format!(
                    "{} repeated in one triplet; the later block wins",
                    slot.keyword()
                ),
            );
        }
    }
}

/// Parses a ZeuS-format WebInject file.
///
/// Never panics; memory is linear in the input. In [`Mode::Strict`], returns the first error
/// (what the kit's builder would refuse); in [`Mode::Tolerant`], every entry that can be
/// recovered plus all diagnostics.
pub fn parse_zeus(input: &[u8], mode: Mode) -> Result<ParseOutput, Diagnostic> {
    let mut p = Parser {
        diagnostics: Vec::new(),
        injects: Vec::new(),
        current: None,
        input,
    };
    let mut offset = 0usize;
    let mut line_no: u32 = 0;
    // An open block: its slot, its first line number, and the byte offset where its content starts.
    let mut open: Option<(Slot, u32, usize)> = None;
    let mut saw_lf_only = false;

    while offset < input.len() {
        line_no = line_no.saturating_add(1);
        let line_start = offset;
        let (line_end, next) = match input[offset..].iter().position(|&b| b == b'\n') {
            Some(i) => (offset + i, offset + i + 1),
            None => (input.len(), input.len()),
        };
        offset = next;
        let raw = &input[line_start..line_end];
        if next > line_end && !raw.ends_with(b"\r") {
            saw_lf_only = true;
        }
        let text = trim_blanks(raw);

        if let Some((slot, start_line, content_start)) = open {
            if text.eq_ignore_ascii_case(b"data_end") {
                // Content runs to the end of the previous line, without its line break.
                let mut end = line_start;
                if end > content_start && p.input[end - 1] == b'\n' {
                    end -= 1;
                    if end > content_start && p.input[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                let content = p.input[content_start..end.max(content_start)].to_vec();
                open = None;
                p.store_block(slot, content, start_line);
            }
            continue;
        }

        if text.is_empty() || text[0] == b';' {
            continue;
        }
        let column = (raw.len() - trim_start(raw).len()) as u32 + 1;
        let (keyword, rest) = split_keyword(text);
        let slot = match keyword.to_ascii_lowercase().as_slice() {
            b"set_url" => {
                p.finish_entry(line_no);
                let args = split_args(rest);
                if args.len() < 2 {
                    p.diag(
                        line_no,
                        column,
                        Severity::Error,
                        "I002",
                        "set_url needs a URL mask and flags".to_string(),
                    );
                    if let Some(mask) = args.first() {
                        p.current = Some(new_entry(mask, b"", line_no));
                    } else {
                        // Keep a placeholder entry so that its blocks are consumed, not misread.
                        p.current = None;
                    }
                } else {
                    p.current = Some(new_entry(&args[0], &args[1], line_no));
                }
                continue;
            }
            b"data_before" => Slot::Before,
            b"data_inject" => Slot::Inject,
            b"data_after" => Slot::After,
            b"data_end" => {
                p.diag(
                    line_no,
                    column,
                    Severity::Error,
                    "I008",
                    "data_end without an open block".to_string(),
                );
                continue;
            }
            _ => {
                let shown: String =
                    String::from_utf8_lossy(&keyword[..keyword.len().min(40)]).into_owned();
                p.diag(
                    line_no,
                    column,
                    Severity::Error,
                    "I001",
                    format!("unexpected line starting with {shown:?}; a keyword was expected"),
                );
                continue;
            }
        };
        open = Some((slot, line_no, offset));
    }

    if let Some((slot, start_line, _)) = open {
        p.diag(
            start_line,
            1,
            Severity::Error,
            "I009",
            format!(
                "{} block is never closed by data_end; the rest of the file is swallowed",
                slot.keyword()
            ),
        );
    }
    p.finish_entry(line_no.saturating_add(1));
    if saw_lf_only {
        p.diag(
            1,
            1,
            Severity::Warning,
            "I010",
            "line breaks are LF, not CRLF: the kit's builder would misread this file".to_string(),
        );
    }
    p.diagnostics.sort_by_key(|d| (d.line, d.column));
    if mode == Mode::Strict {
        if let Some(first) = p.diagnostics.iter().find(|d| d.severity == Severity::Error) {
            return Err(first.clone());
        }
    }
    Ok(ParseOutput {
        injects: p.injects,
        diagnostics: p.diagnostics,
    })
}

fn new_entry(mask: &[u8], flags: &[u8], line: u32) -> Entry {
    Entry {
        inject: Inject {
            url_mask: String::from_utf8_lossy(mask).into_owned(),
            flags: String::from_utf8_lossy(flags).into_owned(),
            line: Some(line),
            ..Inject::default()
        },
        before: None,
        inject_block: None,
        after: None,
    }
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

/// Splits `set_url` arguments: blank-separated, optionally quoted with `'` or `"`; at most 8.
fn split_args(mut s: &[u8]) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    while args.len() < 8 {
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
        let codes: Vec<_> = out.diagnostics.iter().map(|d| (d.code, d.line)).collect();
        assert!(codes.contains(&("I001", 5)), "{codes:?}");
        assert!(codes.contains(&("I004", 6)), "{codes:?}");
        let err = parse_zeus(src, Mode::Strict).unwrap_err();
        assert_eq!((err.code, err.line), ("I005", 1));
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
    fn quoted_arguments() {
        let out = parse_zeus(b"set_url \"https://a b/*\" 'GP' *\ndata_before\ndata_end\ndata_inject\ndata_end\ndata_after\ndata_end\n", Mode::Strict).unwrap();
        assert_eq!(out.injects[0].url_mask, "https://a b/*");
        assert_eq!(out.injects[0].flags, "GP");
    }

    #[test]
    fn real_kit_file_parses_as_the_builder_does() {
        let bytes = include_bytes!("../tests/data/zeus-2.0.8.9-kit-webinjects.txt");
        let out = parse_zeus(bytes, Mode::Tolerant).unwrap();
        // The corpus README: 115 set_url lines, of which the builder keeps 112 (three are
        // swallowed by unterminated blocks), with 215 triplets.
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
            b"\n",
            b"\r\n",
            b"\r",
            b"\"",
            b"'",
            b" ",
            b"*",
            b";",
            b"\xff",
            b"x",
        ];
        for _ in 0..2_000 {
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
            let _ = parse_zeus(&input, Mode::Strict);
        }
    }
}
