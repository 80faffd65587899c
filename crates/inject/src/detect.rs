//! Format sniffing: which WebInject parser a file needs.
//!
//! After a byte-order mark and white space: `{` is TinyNuke JSON (§3: an object with
//! `injects`; any other object is reported by that parser); `<` is XML, told apart by its first
//! element: `igroup`, `dinj`, `slist`, `sinj`, `dpost` are TrickBot, `settings`,
//! `httpinjects`, `httpinject`, `redirect(s)` are Dridex. Everything else is ZeuS text, the
//! format of the whole ZeuS lineage (§1–2), whose parser reports whatever does not fit.

use crate::common::{Diagnostic, Mode, ParseOutput, SourceFormat};

/// The format `bytes` look like. Reads only the first element of an XML document.
pub fn sniff(bytes: &[u8]) -> SourceFormat {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let body = body.trim_ascii_start();
    match body.first() {
        Some(b'{') => SourceFormat::TinynukeJson,
        Some(b'<') => match crate::xml::root_name(body) {
            Some(root) if crate::trickbot::ROOTS.contains(&root.as_str()) => {
                SourceFormat::TrickbotXml
            }
            Some(root) if crate::dridex::ROOTS.contains(&root.as_str()) => SourceFormat::DridexXml,
            _ => SourceFormat::ZeusText,
        },
        _ => SourceFormat::ZeusText,
    }
}

/// Parses `bytes` with the parser of the format [`sniff`] finds; the output's `format` says
/// which.
pub fn parse_any(bytes: &[u8], mode: Mode) -> Result<ParseOutput, Diagnostic> {
    match sniff(bytes) {
        SourceFormat::TinynukeJson => crate::tinynuke::parse_tinynuke(bytes, mode),
        SourceFormat::TrickbotXml => crate::trickbot::parse_trickbot(bytes, mode),
        SourceFormat::DridexXml => crate::dridex::parse_dridex(bytes, mode),
        _ => crate::zeus::parse_zeus(bytes, mode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_each_format() {
        assert_eq!(
            sniff(b"\xEF\xBB\xBF \r\n{\"injects\":[]}"),
            SourceFormat::TinynukeJson
        );
        assert_eq!(sniff(b"<igroup><dinj>"), SourceFormat::TrickbotXml);
        assert_eq!(sniff(b"\n<slist>"), SourceFormat::TrickbotXml);
        assert_eq!(sniff(b"<dpost>"), SourceFormat::TrickbotXml);
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?>\n<!-- x -->\n<settings hash=\"1\">"),
            SourceFormat::DridexXml
        );
        assert_eq!(
            sniff(b"<redirect uri='x'>y</redirect>"),
            SourceFormat::DridexXml
        );
        assert_eq!(sniff(b"set_url *x* GP\r\n"), SourceFormat::ZeusText);
        assert_eq!(sniff(b"<html>"), SourceFormat::ZeusText);
        assert_eq!(sniff(b""), SourceFormat::ZeusText);
    }

    #[test]
    fn parse_any_reports_the_format() {
        let out = parse_any(b"  <dinj><lm>*a*</lm></dinj>", Mode::Strict).unwrap();
        assert_eq!(
            (out.format, out.injects.len()),
            (SourceFormat::TrickbotXml, 1)
        );
        let out = parse_any(b"{\"injects\":[]}", Mode::Strict).unwrap();
        assert_eq!(out.format, SourceFormat::TinynukeJson);
        let out = parse_any(b"; nothing\r\n", Mode::Strict).unwrap();
        assert_eq!(out.format, SourceFormat::ZeusText);
    }
}
