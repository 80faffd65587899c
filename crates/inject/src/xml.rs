//! A small, bounded element tree over `quick-xml` events, shared by the TrickBot and Dridex
//! parsers.
//!
//! Hostile-input rules: nesting deeper than [`MAX_DEPTH`] is counted, not stored; no entity is
//! ever expanded beyond the five predefined ones and character references (a DTD's entities are
//! not read, so there is no "billion laughs"); end tags are matched against a stack of at most
//! [`MAX_DEPTH`] names, so mismatched tags cost O(depth) and the whole parse is linear. Every
//! stored byte (names, attribute values, text) comes from a distinct byte of the input, so the
//! tree is never larger than the input. A truncated document keeps everything read before the
//! cut; its open elements are marked `closed: false`.
//!
//! Diagnostic codes: X001 not well-formed (parsing stops there), X002 mismatched or unmatched
//! end tag, X003 nesting too deep, X004 entity reference not expanded, X005 bad attribute, X006
//! DOCTYPE ignored, X007 text outside the root element, X008 elements left open at the end (an error: the document is cut off).

use encoding_rs::{Encoding, UTF_8};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::common::{
    decode_with, detect_charset, shown, Diagnostic, Diags, LineIndex, Mode, ParseOutput,
    SourceFormat,
};
use dropwatch_model::Inject;

/// Deepest element kept in the tree; the formats read here nest 3 or 4 levels.
pub(crate) const MAX_DEPTH: usize = 32;

pub(crate) struct Node {
    /// Local name, ASCII lower-cased.
    pub(crate) name: String,
    /// Attributes: lower-cased local name, unescaped value bytes (document charset).
    pub(crate) attrs: Vec<(String, Vec<u8>)>,
    /// Text and CDATA content, references resolved, raw bytes in the document charset.
    pub(crate) text: Vec<u8>,
    pub(crate) children: Vec<usize>,
    pub(crate) parent: Option<usize>,
    /// Byte offset of the `<` in the input.
    pub(crate) offset: usize,
    /// False when the document ended (or broke) before the element's end tag.
    pub(crate) closed: bool,
}

pub(crate) struct Doc {
    /// Elements in document order (pre-order).
    pub(crate) nodes: Vec<Node>,
    pub(crate) enc: &'static Encoding,
    pub(crate) lines: LineIndex,
    pub(crate) diags: Diags,
    /// True when a well-formedness error stopped the parse (reported as X001).
    pub(crate) broken: bool,
}

impl Doc {
    pub(crate) fn pos(&self, node: usize) -> (u32, u32) {
        self.lines.position(self.nodes[node].offset)
    }

    pub(crate) fn line(&self, node: usize) -> u32 {
        self.lines.line(self.nodes[node].offset)
    }

    /// The text of an element, trimmed of XML white space.
    pub(crate) fn text(&self, node: usize) -> &[u8] {
        self.nodes[node].text.trim_ascii()
    }

    pub(crate) fn decode(&self, bytes: &[u8]) -> String {
        decode_with(self.enc, bytes).into_owned()
    }

    pub(crate) fn text_string(&self, node: usize) -> String {
        self.decode(self.text(node))
    }

    pub(crate) fn attr(&self, node: usize, name: &str) -> Option<&[u8]> {
        self.nodes[node]
            .attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub(crate) fn children(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        self.nodes[node].children.iter().copied()
    }

    pub(crate) fn name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    /// The parent element's name.
    pub(crate) fn parent_name(&self, node: usize) -> Option<&str> {
        self.nodes[node].parent.map(|p| self.nodes[p].name.as_str())
    }
}

/// The first element's local name, lower-cased, skipping the declaration, comments, processing
/// instructions and a DOCTYPE. Reads at most a few events.
pub(crate) fn root_name(input: &[u8]) -> Option<String> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut reader = Reader::from_reader(input);
    configure(&mut reader);
    for _ in 0..64 {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => return Some(local_name(&e)),
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}

fn configure(reader: &mut Reader<&[u8]>) {
    let c = reader.config_mut();
    c.check_end_names = false;
    c.allow_unmatched_ends = true;
    c.allow_dangling_amp = true;
    c.check_comments = false;
    c.expand_empty_elements = false;
    c.trim_text(false);
}

fn local_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).to_ascii_lowercase()
}

/// The output of an XML format's parser: in strict mode the first error fails it.
pub(crate) fn finish(
    doc: Doc,
    injects: Vec<Inject>,
    mode: Mode,
    format: SourceFormat,
) -> Result<ParseOutput, Diagnostic> {
    if mode == Mode::Strict {
        if let Some(first) = doc.diags.first_error() {
            return Err(first.clone());
        }
    }
    Ok(ParseOutput {
        injects,
        diagnostics: doc.diags.into_sorted(),
        format,
        charset: doc.enc.name(),
    })
}

/// Format knowledge that helps recover from missing end tags.
pub(crate) struct Rules {
    /// Elements that never nest in themselves: a start tag of one while one is open closes the
    /// open one (and what it holds), as a missing end tag would have.
    pub(crate) siblings: &'static [&'static str],
    /// Elements that hold only text: any start tag while one is open closes it.
    pub(crate) leaves: &'static [&'static str],
}

/// Parses `input` into a [`Doc`]. Never fails: a broken document yields what came before the
/// break and an X001 diagnostic.
pub(crate) fn parse(input: &[u8], rules: &Rules) -> Doc {
    // UTF-16 is transcoded first (line numbers survive); every other charset is ASCII-compatible
    // and parsed as bytes, values decoded at the end.
    let (bom_enc, bom_len) = Encoding::for_bom(input).unwrap_or((UTF_8, 0));
    let transcoded;
    let (body, base): (&[u8], usize) = if bom_enc == UTF_8 || bom_len == 0 {
        (&input[bom_len..], bom_len)
    } else {
        transcoded = bom_enc
            .decode_without_bom_handling(&input[bom_len..])
            .0
            .into_owned();
        (transcoded.as_bytes(), 0)
    };
    let lines = LineIndex::new(if base == 0 && bom_len > 0 {
        body
    } else {
        input
    });
    let mut doc = Doc {
        nodes: Vec::new(),
        enc: if bom_len > 0 {
            UTF_8
        } else {
            detect_charset(input)
        },
        lines,
        diags: Diags::default(),
        broken: false,
    };
    let mut declared: Option<&'static Encoding> = None;
    let mut stack: Vec<usize> = Vec::new();
    // Elements opened below MAX_DEPTH: counted only.
    let mut overflow: usize = 0;
    let mut warned_depth = false;
    let mut warned_entity = false;
    let mut warned_text = false;

    let mut reader = Reader::from_reader(body);
    configure(&mut reader);
    loop {
        let at = base + usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = match reader.read_event() {
            Ok(ev) => ev,
            Err(e) => {
                let err_at = base + usize::try_from(reader.error_position()).unwrap_or(0);
                doc.diags.error(
                    doc.lines.position(err_at),
                    "X001",
                    format!("XML is not well-formed ({e}); the rest of the document is not read"),
                );
                doc.broken = true;
                break;
            }
        };
        match event {
            Event::Start(_) | Event::Empty(_) if overflow > 0 || stack.len() >= MAX_DEPTH => {
                if !warned_depth {
                    warned_depth = true;
                    doc.diags.warn(
                        doc.lines.position(at),
                        "X003",
                        format!("elements nested deeper than {MAX_DEPTH} levels are skipped"),
                    );
                }
                if matches!(event, Event::Start(_)) {
                    overflow += 1;
                }
            }
            Event::Start(e) => {
                recover_missing_end(&mut doc, &mut stack, &local_name(&e), at, rules);
                let id = open(&mut doc, &e, at, stack.last().copied());
                stack.push(id);
            }
            Event::Empty(e) => {
                recover_missing_end(&mut doc, &mut stack, &local_name(&e), at, rules);
                let id = open(&mut doc, &e, at, stack.last().copied());
                doc.nodes[id].closed = true;
            }
            Event::End(e) => {
                if overflow > 0 {
                    overflow -= 1;
                    continue;
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_ascii_lowercase();
                match stack.iter().rposition(|&n| doc.nodes[n].name == name) {
                    Some(k) => {
                        for &unclosed in &stack[k + 1..] {
                            let p = doc.pos(unclosed);
                            let msg = format!(
                                "<{}> is not closed before </{name}>",
                                doc.nodes[unclosed].name
                            );
                            doc.diags.warn(p, "X002", msg);
                        }
                        doc.nodes[stack[k]].closed = true;
                        stack.truncate(k);
                    }
                    None => doc.diags.warn(
                        doc.lines.position(at),
                        "X002",
                        format!("end tag </{name}> matches no open element; ignored"),
                    ),
                }
            }
            Event::Text(t) => {
                let raw = t.into_inner();
                push_text(&mut doc, &stack, overflow, &raw, at, &mut warned_text);
            }
            Event::CData(c) => {
                let raw = c.into_inner();
                push_text(&mut doc, &stack, overflow, &raw, at, &mut warned_text);
            }
            Event::GeneralRef(r) => {
                let name: &[u8] = &r;
                let resolved: Option<Vec<u8>> = match name {
                    b"lt" => Some(b"<".to_vec()),
                    b"gt" => Some(b">".to_vec()),
                    b"amp" => Some(b"&".to_vec()),
                    b"quot" => Some(b"\"".to_vec()),
                    b"apos" => Some(b"'".to_vec()),
                    _ => match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(encode_char(declared.unwrap_or(doc.enc), c)),
                        _ => None,
                    },
                };
                let bytes = resolved.unwrap_or_else(|| {
                    if !warned_entity {
                        warned_entity = true;
                        doc.diags.warn(
                            doc.lines.position(at),
                            "X004",
                            format!(
                                "entity reference &{}; is not expanded (no DTD entity is ever read); kept as written",
                                shown(name, 40)
                            ),
                        );
                    }
                    let mut v = Vec::with_capacity(name.len() + 2);
                    v.push(b'&');
                    v.extend_from_slice(name);
                    v.push(b';');
                    v
                });
                push_text(&mut doc, &stack, overflow, &bytes, at, &mut warned_text);
            }
            Event::Decl(d) => {
                if let Some(Ok(label)) = d.encoding() {
                    match Encoding::for_label(label.as_ref()) {
                        Some(enc) if bom_len == 0 && enc.is_ascii_compatible() => {
                            declared = Some(enc);
                        }
                        Some(_) => {}
                        None => doc.diags.warn(
                            doc.lines.position(at),
                            "X001",
                            format!("unknown encoding {:?} declared; ignored", shown(&label, 40)),
                        ),
                    }
                }
            }
            Event::DocType(_) => doc.diags.warn(
                doc.lines.position(at),
                "X006",
                "DOCTYPE ignored: its entities are never expanded",
            ),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(enc) = declared {
        doc.enc = enc;
    }
    if !stack.is_empty() {
        let names: Vec<&str> = stack.iter().map(|&n| doc.nodes[n].name.as_str()).collect();
        let msg = format!(
            "the document ends with {} element(s) open ({}): truncated?",
            names.len(),
            names.join(" > ")
        );
        let end = doc.lines.position(input.len());
        doc.diags.error(end, "X008", msg);
    }
    doc
}

/// Closes an open leaf, or an open element of the same name as a sibling-only element, before
/// `name` starts: their end tags are missing.
fn recover_missing_end(
    doc: &mut Doc,
    stack: &mut Vec<usize>,
    name: &str,
    at: usize,
    rules: &Rules,
) {
    let mut cut = None;
    if let Some(&top) = stack.last() {
        if rules.leaves.contains(&doc.nodes[top].name.as_str()) {
            cut = Some(stack.len() - 1);
        }
    }
    if rules.siblings.contains(&name) {
        if let Some(k) = stack.iter().rposition(|&n| doc.nodes[n].name == name) {
            cut = Some(cut.map_or(k, |c: usize| c.min(k)));
        }
    }
    if let Some(k) = cut {
        for &n in &stack[k..] {
            let msg = format!(
                "<{}> has no end tag before <{name}>; closed there",
                doc.nodes[n].name
            );
            doc.diags.warn(doc.lines.position(at), "X002", msg);
            doc.nodes[n].closed = true;
        }
        stack.truncate(k);
    }
}

fn encode_char(enc: &'static Encoding, c: char) -> Vec<u8> {
    let mut buf = [0u8; 4];
    let s = c.encode_utf8(&mut buf);
    enc.output_encoding().encode(s).0.into_owned()
}

fn push_text(
    doc: &mut Doc,
    stack: &[usize],
    overflow: usize,
    raw: &[u8],
    at: usize,
    warned: &mut bool,
) {
    if overflow > 0 {
        return;
    }
    match stack.last() {
        Some(&n) => doc.nodes[n].text.extend_from_slice(raw),
        None => {
            if !raw.trim_ascii().is_empty() && !*warned {
                *warned = true;
                doc.diags.warn(
                    doc.lines.position(at),
                    "X007",
                    "text outside any element is ignored",
                );
            }
        }
    }
}

fn open(doc: &mut Doc, e: &BytesStart<'_>, at: usize, parent: Option<usize>) -> usize {
    let mut attrs = Vec::new();
    for attr in e.attributes().with_checks(false) {
        match attr {
            Ok(a) => {
                let name =
                    String::from_utf8_lossy(a.key.local_name().as_ref()).to_ascii_lowercase();
                attrs.push((name, unescape(&a.value)));
            }
            Err(err) => {
                doc.diags.warn(
                    doc.lines.position(at),
                    "X005",
                    format!(
                        "bad attribute ({err}); the element's remaining attributes are skipped"
                    ),
                );
                break;
            }
        }
    }
    let id = doc.nodes.len();
    doc.nodes.push(Node {
        name: local_name(e),
        attrs,
        text: Vec::new(),
        children: Vec::new(),
        parent,
        offset: at,
        closed: false,
    });
    if let Some(p) = parent {
        doc.nodes[p].children.push(id);
    }
    id
}

/// Resolves the predefined entities and ASCII-range character references of an attribute value;
/// anything else (including non-ASCII character references, to stay charset-neutral and never
/// grow) is kept as written.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'&' {
            if let Some(len) = raw[i + 1..].iter().take(12).position(|&b| b == b';') {
                let name = &raw[i + 1..i + 1 + len];
                let resolved = match name {
                    b"lt" => Some(b'<'),
                    b"gt" => Some(b'>'),
                    b"amp" => Some(b'&'),
                    b"quot" => Some(b'"'),
                    b"apos" => Some(b'\''),
                    _ => char_ref(name).filter(u8::is_ascii),
                };
                if let Some(b) = resolved {
                    out.push(b);
                    i += len + 2;
                    continue;
                }
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

fn char_ref(name: &[u8]) -> Option<u8> {
    let digits = name.strip_prefix(b"#")?;
    let value = if let Some(hex) = digits.strip_prefix(b"x") {
        u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?
    } else {
        std::str::from_utf8(digits).ok()?.parse::<u32>().ok()?
    };
    u8::try_from(value).ok().filter(|&b| b != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Rules = Rules {
        siblings: &[],
        leaves: &[],
    };

    #[test]
    fn missing_end_tags_are_recovered_with_rules() {
        let rules = Rules {
            siblings: &["e"],
            leaves: &["m"],
        };
        let doc = parse(b"<r><e><m>1<n>2</n><e><m>3</r>", &rules);
        let parents: Vec<_> = doc
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.parent))
            .collect();
        assert_eq!(
            parents,
            [
                ("r", None),
                ("e", Some(0)),
                ("m", Some(1)),
                ("n", Some(1)),
                ("e", Some(0)),
                ("m", Some(4))
            ]
        );
        assert_eq!(doc.text(2), b"1");
    }

    #[test]
    fn tree_text_attributes_and_truncation() {
        let doc = parse(b"<?xml version=\"1.0\"?>\n<a x=\"1&amp;2\"><b>t&lt;u&#65;</b><c><![CDATA[<i>]]></c><d>cut", &NONE);
        let names: Vec<_> = doc.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(doc.attr(0, "x"), Some(&b"1&2"[..]));
        assert_eq!(doc.text(1), b"t<uA");
        assert_eq!(doc.text(2), b"<i>");
        assert_eq!(doc.text(3), b"cut");
        assert!(doc.nodes[1].closed && !doc.nodes[3].closed && !doc.nodes[0].closed);
        assert_eq!(doc.line(1), 2);
        assert!(doc.diags.list.iter().any(|d| d.code == "X008"));
    }

    #[test]
    fn depth_is_bounded_and_entities_are_not_expanded() {
        let mut deep = String::new();
        for _ in 0..10_000 {
            deep.push_str("<x>");
        }
        let doc = parse(deep.as_bytes(), &NONE);
        assert_eq!(doc.nodes.len(), MAX_DEPTH);
        assert!(doc.diags.list.iter().any(|d| d.code == "X003"));
        let lol = b"<!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]><r>&b;&b;&b;</r>";
        let doc = parse(lol, &NONE);
        assert_eq!(doc.text(0), b"&b;&b;&b;");
        assert!(doc.diags.list.iter().any(|d| d.code == "X006"));
        assert!(doc.diags.list.iter().any(|d| d.code == "X004"));
    }

    #[test]
    fn mismatched_end_tags_are_recovered() {
        let doc = parse(b"<r><a><b>1</a><c>2</c></zz></r>", &NONE);
        let names: Vec<_> = doc.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["r", "a", "b", "c"]);
        assert_eq!(doc.nodes[0].children, vec![1, 3]);
        assert!(doc.nodes.iter().all(|n| n.closed || n.name == "b"));
        assert_eq!(
            doc.diags.list.iter().filter(|d| d.code == "X002").count(),
            2
        );
    }

    #[test]
    fn root_names() {
        assert_eq!(
            root_name(b"\xEF\xBB\xBF <?xml version='1.0'?><!-- c --><igroup>").as_deref(),
            Some("igroup")
        );
        assert_eq!(
            root_name(b"<Settings hash='x'/>").as_deref(),
            Some("settings")
        );
        assert_eq!(root_name(b"set_url x GP"), None);
    }
}
