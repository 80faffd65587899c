//! What every WebInject parser of this crate returns: entries, diagnostics with positions, the
//! detected format and charset. Shared helpers: line/column lookup, a bounded diagnostic sink,
//! charset detection and decoding.
//!
//! Charsets (webinjects.md §1.1, §7.2): ZeuS-lineage text files are raw bytes in whatever code
//! page the author's Windows used (cp1251 for the kit's Russian comments; Shift_JIS or EUC-JP
//! for Japanese injects). Blocks stay raw bytes; [`ParseOutput::decode`] turns them into text
//! with the charset detected for the whole file, for analysis only.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8};
use serde::Serialize;

/// How forgiving a parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reject the input at the first error. For ZeuS text this reproduces the kit's builder.
    Strict,
    /// Recover from every error, report it, and keep every entry that can be read.
    Tolerant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// A problem found in the input, with its 1-based position (lines split at LF, CRLF or CR;
/// columns count bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{line}:{column}: {code}: {message}")]
pub struct Diagnostic {
    pub line: u32,
    pub column: u32,
    pub severity: Severity,
    /// Stable code: `I0xx` ZeuS text, `T0xx` TinyNuke JSON, `K0xx` TrickBot XML, `D0xx` Dridex
    /// XML, `X0xx` XML well-formedness (shared by the XML formats).
    pub code: &'static str,
    pub message: String,
}

/// The file format a [`ParseOutput`] was read as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SourceFormat {
    /// ZeuS 2.x / Citadel / ICE IX `webinjects.txt` (webinjects.md §1–2).
    #[default]
    ZeusText,
    /// TinyNuke / NukeBot `injects.json` (§3).
    TinynukeJson,
    /// TrickBot `dinj` / `sinj` / `dpost` XML (§3).
    TrickbotXml,
    /// Dridex `<settings>` XML (§3).
    DridexXml,
}

impl SourceFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::ZeusText => "zeus_text",
            SourceFormat::TinynukeJson => "tinynuke_json",
            SourceFormat::TrickbotXml => "trickbot_xml",
            SourceFormat::DridexXml => "dridex_xml",
        }
    }
}

/// What a parser read: entries in file order, diagnostics sorted by position, the format and the
/// charset of the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseOutput {
    pub injects: Vec<Inject>,
    pub diagnostics: Vec<Diagnostic>,
    /// The format the input was parsed as.
    pub format: SourceFormat,
    /// The WHATWG name of the input's charset (`UTF-8`, `windows-1251`, `Shift_JIS`, `EUC-JP`,
    /// `windows-1252` for latin-1...), as `encoding_rs` spells it.
    pub charset: &'static str,
}

use dropwatch_model::Inject;

impl Default for ParseOutput {
    fn default() -> Self {
        ParseOutput {
            injects: Vec::new(),
            diagnostics: Vec::new(),
            format: SourceFormat::ZeusText,
            charset: UTF_8.name(),
        }
    }
}

impl ParseOutput {
    /// The charset as an `encoding_rs` encoding (UTF-8 if the name is unknown).
    pub fn encoding(&self) -> &'static Encoding {
        Encoding::for_label(self.charset.as_bytes()).unwrap_or(UTF_8)
    }

    /// Decodes bytes of this input (a block, say) with its charset. Malformed sequences become
    /// U+FFFD; nothing is ever executed or rendered.
    pub fn decode<'b>(&self, bytes: &'b [u8]) -> Cow<'b, str> {
        decode_with(self.encoding(), bytes)
    }

    /// True when a diagnostic of severity error was reported.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Decodes `bytes` with `enc`, without BOM sniffing (the BOM was handled for the whole file).
pub(crate) fn decode_with<'b>(enc: &'static Encoding, bytes: &'b [u8]) -> Cow<'b, str> {
    enc.decode_without_bom_handling(bytes).0
}

/// Detects the charset of a text file: a BOM if there is one; UTF-8 if the bytes are valid UTF-8
/// (plain ASCII included); otherwise `chardetng`'s guess among the legacy encodings (cp1251,
/// Shift_JIS, EUC-JP, GBK, ...), which falls back to windows-1252 (WHATWG's latin-1).
pub fn detect_charset(bytes: &[u8]) -> &'static Encoding {
    if let Some((enc, _)) = Encoding::for_bom(bytes) {
        return enc;
    }
    if std::str::from_utf8(bytes).is_ok() {
        return UTF_8;
    }
    // The detector learns only from non-ASCII text, and it is slow (tens of MB/s): feed it the
    // lines that hold non-ASCII bytes, up to a bounded sample, so detection stays cheap on
    // large files.
    let mut detector = chardetng::EncodingDetector::new();
    let mut fed = 0usize;
    for line in bytes.split(|&b| b == b'\n') {
        if fed >= CHARSET_SAMPLE_BYTES {
            break;
        }
        if line.iter().any(|&b| b >= 0x80) {
            detector.feed(line, false);
            detector.feed(b"\n", false);
            fed += line.len() + 1;
        }
    }
    detector.feed(b"", true);
    detector.guess(None, false)
}

/// Most bytes of non-ASCII lines given to the charset detector.
const CHARSET_SAMPLE_BYTES: usize = 256 << 10;

/// At most this many diagnostics are kept; a hostile file cannot make the report unbounded.
pub(crate) const MAX_DIAGNOSTICS: usize = 1_000;

/// Line starts of a text, for turning byte offsets into 1-based line and column.
/// A line ends at LF, CRLF or a lone CR.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(input: &[u8]) -> LineIndex {
        let mut starts = vec![0];
        let mut i = 0;
        while i < input.len() {
            match input[i] {
                b'\n' => starts.push(i + 1),
                b'\r' if input.get(i + 1) != Some(&b'\n') => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        LineIndex { starts }
    }

    /// 1-based (line, column) of a byte offset; offsets past the end map to the last line.
    pub(crate) fn position(&self, offset: usize) -> (u32, u32) {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        (to_u32(line), to_u32(offset.saturating_sub(start) + 1))
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line(&self, offset: usize) -> u32 {
        self.position(offset).0
    }
}

pub(crate) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Collects diagnostics up to [`MAX_DIAGNOSTICS`].
#[derive(Default)]
pub(crate) struct Diags {
    pub(crate) list: Vec<Diagnostic>,
}

impl Diags {
    pub(crate) fn push(
        &mut self,
        (line, column): (u32, u32),
        severity: Severity,
        code: &'static str,
        message: impl Into<String>,
    ) {
        if self.list.len() < MAX_DIAGNOSTICS {
            self.list.push(Diagnostic {
                line,
                column,
                severity,
                code,
                message: message.into(),
            });
        }
    }

    pub(crate) fn warn(&mut self, pos: (u32, u32), code: &'static str, message: impl Into<String>) {
        self.push(pos, Severity::Warning, code, message);
    }

    pub(crate) fn error(
        &mut self,
        pos: (u32, u32),
        code: &'static str,
        message: impl Into<String>,
    ) {
        self.push(pos, Severity::Error, code, message);
    }

    /// Sorted by position (stable: reports at one position keep their order).
    pub(crate) fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.list.sort_by_key(|d| (d.line, d.column));
        self.list
    }

    pub(crate) fn first_error(&self) -> Option<&Diagnostic> {
        self.list
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .min_by_key(|d| (d.line, d.column))
    }
}

/// A string for a message: lossy, at most `max` bytes of input shown.
pub(crate) fn shown(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > max {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_handles_lf_crlf_and_cr() {
        let idx = LineIndex::new(b"a\nbb\r\ncc\rd");
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(2), (2, 1));
        assert_eq!(idx.position(3), (2, 2));
        assert_eq!(idx.position(6), (3, 1));
        assert_eq!(idx.position(9), (4, 1));
        assert_eq!(idx.position(100), (4, 92));
    }

    #[test]
    fn charset_detection() {
        assert_eq!(detect_charset(b"plain ascii").name(), "UTF-8");
        assert_eq!(detect_charset("héllo".as_bytes()).name(), "UTF-8");
        assert_eq!(detect_charset(b"\xEF\xBB\xBFx").name(), "UTF-8");
        // Russian in cp1251: "; Пример конфигурации для банков России".
        let cp1251 = encoding_rs::WINDOWS_1251
            .encode("; Пример конфигурации инжектов для банков России и Украины\r\n")
            .0;
        assert_eq!(detect_charset(&cp1251).name(), "windows-1251");
        let sjis = encoding_rs::SHIFT_JIS
            .encode("合言葉を入力してください。第二暗証番号とワンタイムパスワード、乱数表の番号")
            .0;
        assert_eq!(detect_charset(&sjis).name(), "Shift_JIS");
        let eucjp = encoding_rs::EUC_JP
            .encode("合言葉を入力してください。第二暗証番号とワンタイムパスワード、乱数表の番号")
            .0;
        assert_eq!(detect_charset(&eucjp).name(), "EUC-JP");
        let latin1 = encoding_rs::WINDOWS_1252
            .encode("Vérifiez votre numéro de carte bancaire et le code à usage unique")
            .0;
        assert_eq!(detect_charset(&latin1).name(), "windows-1252");
    }

    #[test]
    fn decode_uses_the_charset() {
        let out = ParseOutput {
            charset: "windows-1251",
            ..ParseOutput::default()
        };
        assert_eq!(out.decode(b"\xcf\xe8\xed"), "Пин");
        assert_eq!(ParseOutput::default().decode(b"a\xffb"), "a\u{fffd}b");
    }
}
