//! TinyNuke / NukeBot `injects.json` (webinjects.md §3; `rossja/TinyNuke:
//! panel/private/injects.json`, read by `Bot/WebInjects.cpp` and applied by
//! `Bot/BrowserUtils.cpp:ReplaceBeforeAfter`).
//!
//! ```json
//! {"fg_blacklist": ["*ocsp*.*", ...],
//!  "injects": [{"host": "bank.example", "path": "*",
//!               "content": [{"code": "</title>", "before": "", "after": "<script>...</script>"}]}]}
//! ```
//!
//! Semantics: an inject applies when the request's Host matches `host` and its path matches
//! `path` (globs with `*` only, case-insensitive). For each `content` item the bot finds the
//! **first** match of the `code` glob in the body and inserts `before` just before it and `after`
//! just after it; the anchor itself stays. `fg_blacklist` lists URL globs whose form posts the
//! form grabber does not upload (it uploads all the others).
//!
//! Mapping into [`Inject`] (`format: TinynukeJson`, `mask_kind: Glob`):
//! - each `injects` item → one entry: `url_mask` = `host` + `path` (a `/` is put between them
//!   unless `path` starts with `/`; `*` matches it too), flags `GP` (TinyNuke injects whatever
//!   the verb), `line` = the line of its `{`.
//! - each `content` item → ZeuS-semantics triplets (§1.5: an empty `data_after` inserts at the
//!   end of the `data_before` match; an empty `data_before` inserts just before the
//!   `data_after` match): `after` → `{before: code, inject: after, after: ""}`, then `before` →
//!   `{before: "", inject: before, after: code}`. That order is faithful: inserting after the
//!   first match first leaves that match the first one, so the second triplet finds the same
//!   anchor (the reverse order would not, when `before` itself contains the anchor). A content
//!   item with both empty becomes `{before: code, inject: "", after: ""}` so that it is not lost.
//!   The anchor is the only byte string that may appear twice in the output.
//! - each `fg_blacklist` mask → one entry with flags `""` (never applied to a page), no blocks,
//!   and the attribute `role` = `fg_blacklist`: a form-grab exclusion.
//! - unknown keys of an inject with a string value → attributes; other unknown keys are warned.
//!
//! Errors keep what was read before them: entries are collected while the JSON is read, so a
//! truncated file still yields its complete entries and the started one. Positions of JSON
//! errors are serde_json's line and column.
//!
//! Codes: T001 JSON syntax error or end of input, T002 wrong type (value ignored), T003 unknown
//! key, T004 inject without `host`, T005 inject without `content`, T006 content item without
//! `code` (TinyNuke never applies it), T007 no `injects` key, T008 trailing characters.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::rc::Rc;

use dropwatch_model::{Inject, InjectBlock, InjectFormat, MaskKind};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

pub use crate::common::{Diagnostic, Mode, ParseOutput, Severity};
use crate::common::{Diags, LineIndex, SourceFormat};

/// Parses a TinyNuke `injects.json`.
///
/// Never panics; memory is linear in the input (nesting is bounded by serde_json's recursion
/// limit). [`Mode::Strict`] fails on the first error; [`Mode::Tolerant`] keeps every entry read
/// before a syntax error and skips values of the wrong type.
pub fn parse_tinynuke(input: &[u8], mode: Mode) -> Result<ParseOutput, Diagnostic> {
    let bom = if input.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let lines = LineIndex::new(input);
    let pos = Rc::new(Cell::new(bom));
    let mut st = State {
        lines: &lines,
        pos: Rc::clone(&pos),
        diags: Diags::default(),
        injects: Vec::new(),
        partial: Vec::new(),
        saw_injects: false,
    };
    let reader = Counting {
        data: input,
        pos: Rc::clone(&pos),
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = DocSeed { st: &mut st }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Err(e) = result {
        let column = if e.line() == 1 {
            e.column() + bom
        } else {
            e.column()
        };
        let code = match e.classify() {
            serde_json::error::Category::Data => "T002",
            _ if e.to_string().starts_with("trailing characters") => "T008",
            _ => "T001",
        };
        st.diags.error(
            (
                crate::common::to_u32(e.line()),
                crate::common::to_u32(column),
            ),
            code,
            format!("JSON: {e}; entries read before this point are kept"),
        );
    } else if !st.saw_injects {
        st.diags.error((1, 1), "T007", "no \"injects\" array");
    }
    let State {
        mut diags,
        mut injects,
        partial,
        ..
    } = st;
    for (inject, p) in injects.iter_mut().zip(partial) {
        if let Some(p) = p {
            finish_inject(inject, p, &mut diags);
        }
    }
    if mode == Mode::Strict {
        if let Some(first) = diags.first_error() {
            return Err(first.clone());
        }
    }
    Ok(ParseOutput {
        injects,
        diagnostics: diags.into_sorted(),
        format: SourceFormat::TinynukeJson,
        charset: "UTF-8",
    })
}

/// `host` + `path` as one scheme-less glob.
fn join_mask(host: &str, path: &str) -> String {
    let mut m = String::with_capacity(host.len() + path.len() + 1);
    m.push_str(host);
    if !path.is_empty() && !path.starts_with('/') {
        m.push('/');
    }
    m.push_str(path);
    m
}

fn finish_inject(inject: &mut Inject, p: Partial, diags: &mut Diags) {
    let at = (inject.line.unwrap_or(0), 1);
    if p.host.is_none() {
        diags.error(at, "T004", "inject without \"host\"");
    }
    inject.url_mask = join_mask(
        p.host.as_deref().unwrap_or(""),
        p.path.as_deref().unwrap_or(""),
    );
    if p.contents.is_empty() {
        diags.warn(
            at,
            "T005",
            "inject without \"content\" items: it changes nothing",
        );
    }
    for c in p.contents {
        let code = c.code.unwrap_or_default().into_bytes();
        if code.is_empty() {
            diags.warn(
                (c.line, 1),
                "T006",
                "content item without \"code\": TinyNuke finds no anchor and never applies it",
            );
        }
        let before = c.before.unwrap_or_default().into_bytes();
        let after = c.after.unwrap_or_default().into_bytes();
        match (before.is_empty(), after.is_empty()) {
            (true, true) => inject.blocks.push(InjectBlock {
                before: code,
                inject: Vec::new(),
                after: Vec::new(),
            }),
            (true, false) => inject.blocks.push(InjectBlock {
                before: code,
                inject: after,
                after: Vec::new(),
            }),
            (false, true) => inject.blocks.push(InjectBlock {
                before: Vec::new(),
                inject: before,
                after: code,
            }),
            (false, false) => {
                inject.blocks.push(InjectBlock {
                    before: code.clone(),
                    inject: after,
                    after: Vec::new(),
                });
                inject.blocks.push(InjectBlock {
                    before: Vec::new(),
                    inject: before,
                    after: code,
                });
            }
        }
    }
}

/// An `io::Read` over the input that publishes how many bytes serde_json has taken, so that
/// visitors know where they are (serde_json reads byte by byte through `io::Bytes`).
struct Counting<'a> {
    data: &'a [u8],
    pos: Rc<Cell<usize>>,
}

impl io::Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let p = self.pos.get().min(self.data.len());
        let n = buf.len().min(self.data.len() - p);
        buf[..n].copy_from_slice(&self.data[p..p + n]);
        self.pos.set(p + n);
        Ok(n)
    }
}

#[derive(Default)]
struct Partial {
    host: Option<String>,
    path: Option<String>,
    contents: Vec<PartialContent>,
}

struct PartialContent {
    code: Option<String>,
    before: Option<String>,
    after: Option<String>,
    line: u32,
}

struct State<'l> {
    lines: &'l LineIndex,
    pos: Rc<Cell<usize>>,
    diags: Diags,
    injects: Vec<Inject>,
    /// Parallel to `injects`: what an inject entry has read so far (`None` for fg_blacklist).
    partial: Vec<Option<Partial>>,
    saw_injects: bool,
}

impl State<'_> {
    /// Position of the byte serde_json took last (the `{`, `[` or `"` just read).
    fn here(&self) -> (u32, u32) {
        self.lines.position(self.pos.get().saturating_sub(1))
    }

    fn wrong_type(&mut self, what: &str, got: &str) {
        let at = self.here();
        self.diags
            .error(at, "T002", format!("{what} should be {got}; ignored"));
    }
}

/// Any JSON value: a string is kept, anything else consumed and reported by the caller.
struct Lenient(Option<String>);

impl<'de> de::Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Lenient, E> {
                Ok(Lenient(Some(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Lenient, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| Lenient(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Lenient, A::Error> {
                IgnoredAny.visit_map(map).map(|_| Lenient(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Implements the `visit_*` of non-container values for a visitor that wants a container,
/// reporting the wrong type and producing `()`.
macro_rules! wrong_scalars {
    ($what:expr, $want:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            self.st.wrong_type($what, $want);
            Ok(())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            self.st.wrong_type($what, $want);
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            self.st.wrong_type($what, $want);
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            self.st.wrong_type($what, $want);
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            self.st.wrong_type($what, $want);
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            self.st.wrong_type($what, $want);
            Ok(())
        }
    };
}

struct DocSeed<'s, 'l> {
    st: &'s mut State<'l>,
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TinyNuke injects object")
    }
    wrong_scalars!("the document", "an object");
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.st.wrong_type("the document", "an object");
        IgnoredAny.visit_seq(seq).map(|_| ())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "fg_blacklist" => map.next_value_seed(Blacklist { st: &mut *self.st })?,
                "injects" => {
                    self.st.saw_injects = true;
                    map.next_value_seed(InjectList { st: &mut *self.st })?;
                }
                _ => {
                    let at = self.st.here();
                    self.st
                        .diags
                        .warn(at, "T003", format!("unknown key {key:?}; ignored"));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Blacklist<'s, 'l> {
    st: &'s mut State<'l>,
}

impl<'de> DeserializeSeed<'de> for Blacklist<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Blacklist<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of URL masks")
    }
    wrong_scalars!("fg_blacklist", "an array of strings");
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.st.wrong_type("fg_blacklist", "an array of strings");
        IgnoredAny.visit_map(map).map(|_| ())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(Lenient(v)) = seq.next_element::<Lenient>()? {
            let at = self.st.here();
            match v {
                Some(mask) => {
                    self.st.injects.push(Inject {
                        format: InjectFormat::TinynukeJson,
                        url_mask: mask,
                        mask_kind: MaskKind::Glob,
                        attributes: vec![("role".to_string(), "fg_blacklist".to_string())],
                        line: Some(at.0),
                        ..Inject::default()
                    });
                    self.st.partial.push(None);
                }
                None => self.st.wrong_type("an fg_blacklist entry", "a string"),
            }
        }
        Ok(())
    }
}

struct InjectList<'s, 'l> {
    st: &'s mut State<'l>,
}

impl<'de> DeserializeSeed<'de> for InjectList<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InjectList<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of injects")
    }
    wrong_scalars!("injects", "an array of objects");
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.st.wrong_type("injects", "an array of objects");
        IgnoredAny.visit_map(map).map(|_| ())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(InjectSeed { st: &mut *self.st })?
            .is_some()
        {}
        Ok(())
    }
}

struct InjectSeed<'s, 'l> {
    st: &'s mut State<'l>,
}

impl<'de> DeserializeSeed<'de> for InjectSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InjectSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an inject object")
    }
    wrong_scalars!("an inject", "an object");
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.st.wrong_type("an inject", "an object");
        IgnoredAny.visit_seq(seq).map(|_| ())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.st;
        let line = st.here().0;
        let k = st.injects.len();
        st.injects.push(Inject {
            format: InjectFormat::TinynukeJson,
            mask_kind: MaskKind::Glob,
            flags: "GP".to_string(),
            line: Some(line),
            ..Inject::default()
        });
        st.partial.push(Some(Partial::default()));
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "content" => map.next_value_seed(ContentList { st: &mut *st, k })?,
                _ => {
                    let Lenient(v) = map.next_value::<Lenient>()?;
                    let Some(Some(p)) = st.partial.get_mut(k) else {
                        continue;
                    };
                    match (key.as_str(), v) {
                        ("host", Some(v)) => p.host = Some(v),
                        ("path", Some(v)) => p.path = Some(v),
                        ("host" | "path", None) => st.wrong_type(&key, "a string"),
                        (_, v) => {
                            let at = st.here();
                            st.diags.warn(
                                at,
                                "T003",
                                format!("unknown inject key {key:?}; kept as an attribute when a string"),
                            );
                            if let (Some(v), Some(inject)) = (v, st.injects.get_mut(k)) {
                                inject.attributes.push((key, v));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

struct ContentList<'s, 'l> {
    st: &'s mut State<'l>,
    k: usize,
}

impl<'de> DeserializeSeed<'de> for ContentList<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ContentList<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of content items")
    }
    wrong_scalars!("content", "an array of objects");
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.st.wrong_type("content", "an array of objects");
        IgnoredAny.visit_map(map).map(|_| ())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(ContentSeed {
                st: &mut *self.st,
                k: self.k,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct ContentSeed<'s, 'l> {
    st: &'s mut State<'l>,
    k: usize,
}

impl<'de> DeserializeSeed<'de> for ContentSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ContentSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content object")
    }
    wrong_scalars!("a content item", "an object");
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.st.wrong_type("a content item", "an object");
        IgnoredAny.visit_seq(seq).map(|_| ())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.st;
        let line = st.here().0;
        let Some(Some(p)) = st.partial.get_mut(self.k) else {
            return IgnoredAny.visit_map(map).map(|_| ());
        };
        p.contents.push(PartialContent {
            code: None,
            before: None,
            after: None,
            line,
        });
        while let Some(key) = map.next_key::<String>()? {
            let Lenient(v) = map.next_value::<Lenient>()?;
            let Some(c) = st
                .partial
                .get_mut(self.k)
                .and_then(Option::as_mut)
                .and_then(|p| p.contents.last_mut())
            else {
                continue;
            };
            let slot = match key.as_str() {
                "code" => &mut c.code,
                "before" => &mut c.before,
                "after" => &mut c.after,
                _ => {
                    let at = st.here();
                    st.diags
                        .warn(at, "T003", format!("unknown content key {key:?}; ignored"));
                    continue;
                }
            };
            match v {
                Some(v) => *slot = Some(v),
                None => st.wrong_type(&key, "a string"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_of_an_inject() {
        let src = br#"{"fg_blacklist": ["*ocsp*.*"],
 "injects": [
  {"host": "ib.bank.example", "path": "/login*",
   "content": [{"code": "</title>", "before": "", "after": "<script src=\"//x.example/a.js\"></script>"},
               {"code": "<form*>", "before": "<b>B</b>", "after": "<i>A</i>"}]}]}"#;
        let out = parse_tinynuke(src, Mode::Strict).unwrap();
        assert_eq!(out.format, SourceFormat::TinynukeJson);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(out.injects.len(), 2);
        let bl = &out.injects[0];
        assert_eq!((bl.url_mask.as_str(), bl.flags.as_str()), ("*ocsp*.*", ""));
        assert_eq!(
            bl.attributes,
            [("role".to_string(), "fg_blacklist".to_string())]
        );
        let inj = &out.injects[1];
        assert_eq!(inj.url_mask, "ib.bank.example/login*");
        assert_eq!((inj.flags.as_str(), inj.mask_kind), ("GP", MaskKind::Glob));
        assert_eq!(inj.line, Some(3));
        let blocks: Vec<(&[u8], &[u8], &[u8])> = inj
            .blocks
            .iter()
            .map(|b| (b.before.as_slice(), b.inject.as_slice(), b.after.as_slice()))
            .collect();
        assert_eq!(
            blocks,
            [
                (
                    &b"</title>"[..],
                    &b"<script src=\"//x.example/a.js\"></script>"[..],
                    &b""[..]
                ),
                (b"<form*>", b"<i>A</i>", b""),
                (b"", b"<b>B</b>", b"<form*>"),
            ]
        );
    }

    #[test]
    fn truncated_json_keeps_what_was_read() {
        let src = br#"{"injects": [{"host": "a.example", "path": "*", "content": [{"code": "x", "after": "y"}]},
 {"host": "b.example", "path": "*", "content": [{"code": "</head>", "aft"#;
        let out = parse_tinynuke(src, Mode::Tolerant).unwrap();
        let masks: Vec<_> = out.injects.iter().map(|i| i.url_mask.as_str()).collect();
        assert_eq!(masks, ["a.example/*", "b.example/*"]);
        let err = out.diagnostics.iter().find(|d| d.code == "T001").unwrap();
        assert_eq!(err.line, 2);
        let strict = parse_tinynuke(src, Mode::Strict).unwrap_err();
        assert_eq!((strict.code, strict.line), ("T001", 2));
    }

    #[test]
    fn wrong_types_are_skipped() {
        let src =
            br#"{"injects": [5, {"host": 7, "path": "/", "content": "x", "note": "n"}], "x": 1}"#;
        let out = parse_tinynuke(src, Mode::Tolerant).unwrap();
        assert_eq!(out.injects.len(), 1);
        assert_eq!(
            out.injects[0].attributes,
            [("note".to_string(), "n".to_string())]
        );
        let codes: Vec<_> = out.diagnostics.iter().map(|d| d.code).collect();
        for c in ["T002", "T003", "T004", "T005"] {
            assert!(codes.contains(&c), "{c} in {codes:?}");
        }
        assert!(parse_tinynuke(src, Mode::Strict).is_err());
        assert_eq!(
            parse_tinynuke(b"[]", Mode::Strict).unwrap_err().code,
            "T002"
        );
        assert_eq!(
            parse_tinynuke(b"{} x", Mode::Tolerant).unwrap().diagnostics[0].code,
            "T008"
        );
    }
}
