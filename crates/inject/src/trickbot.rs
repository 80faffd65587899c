//! TrickBot `injectDll` configurations, decrypted to XML (webinjects.md §3; shapes from
//! `m4now4r/Trickbot_full_configs:injectDll64_configs/{dinj.xml,sinj.xml,dpost_configs.xml}`).
//!
//! - `dinj` ("dynamic"): `<igroup><dinj><lm>mask</lm><hl>C2 response.php</hl><pri>100</pri>
//!   <sq>2</sq><ignore_mask>…</ignore_mask>*<require_header>…</require_header>*</dinj></igroup>`.
//!   Matching pages are forwarded to the `<hl>` server, which returns the modified page: the
//!   inject code itself is not in the config. → one [`Inject`] per `<dinj>`: `url_mask` = `<lm>`,
//!   `mask_kind: Glob`, flags `GP`, no blocks, `endpoints` = the `<hl>` URLs, attributes `pri`,
//!   `sq`, each `ignore_mask`, each `require_header`, and `igroup` (the 0-based index of the
//!   enclosing `<igroup>`: a group bundles a bank page, its favicon and a beacon marker mask).
//! - `sinj` ("static", a redirect to a fake site): `<slist><sinj><mm>bank mask</mm><sm>login page
//!   mask</sm><nh>fake host</nh><url404/><srv>IP:port</srv></sinj></slist>`. → one [`Inject`] per
//!   `<sinj>`: `url_mask` = `<mm>`, flags `GP`, `endpoints` = `<srv>` and `<nh>` in document
//!   order, attributes `sm` and a non-empty `url404`.
//! - `dpost`: `<dpost><handler>http://IP:port</handler>*</dpost>`, where grabbed form data is
//!   posted. → one [`Inject`] per `<dpost>`: `url_mask` `*` (every page), flags `PL` (a POST
//!   grab), `endpoints` = the handlers.
//!
//! The meaning of `pri`/`sq` is from write-ups (unverified, §3), so they are kept verbatim.
//! Unknown elements are warned about once per name; inside an entry their text is kept as an
//! attribute. The real files are cut off mid-element (the `dinj.xml` ends in an empty `<dinj>`,
//! `sinj.xml` inside `</nh`): tolerant mode keeps every entry read so far, marks cut entries
//! with the attribute `truncated`, and reports where (`X001`/`X008`, `K002`).
//!
//! Codes: K001 entry without its mask, K002 entry cut off by the end of the document, K003
//! unknown element, K004 repeated single-valued element, K005 no TrickBot element found;
//! X0xx from the shared XML reader.

use dropwatch_model::{Inject, InjectFormat, MaskKind};

use crate::common::SourceFormat;
pub use crate::common::{Diagnostic, Mode, ParseOutput, Severity};
use crate::xml::{self, Doc};

/// Element names of the three TrickBot configurations.
pub(crate) const ROOTS: &[&str] = &["igroup", "dinj", "sinj", "slist", "dpost"];

const MAX_UNKNOWN_NAMES: usize = 32;

/// Entries and groups never nest; the value elements hold only text.
const RULES: xml::Rules = xml::Rules {
    siblings: &["igroup", "dinj", "slist", "sinj", "dpost"],
    leaves: &[
        "lm",
        "hl",
        "pri",
        "sq",
        "ignore_mask",
        "require_header",
        "mm",
        "sm",
        "nh",
        "url404",
        "srv",
        "handler",
    ],
};

/// Parses a TrickBot `dinj`, `sinj` or `dpost` XML configuration (one may hold several kinds).
///
/// Never panics; memory is linear in the input. [`Mode::Strict`] fails on the first error
/// (not well-formed, truncated, an entry without its mask); [`Mode::Tolerant`] keeps every
/// entry it saw.
pub fn parse_trickbot(input: &[u8], mode: Mode) -> Result<ParseOutput, Diagnostic> {
    let mut doc = xml::parse(input, &RULES);
    let mut injects = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut igroups = 0usize;
    let mut found_any = false;

    for id in 0..doc.nodes.len() {
        let name = doc.name(id).to_string();
        match name.as_str() {
            "igroup" => {
                igroups += 1;
                found_any = true;
                continue;
            }
            "slist" => {
                found_any = true;
                continue;
            }
            "dinj" | "sinj" | "dpost" => {
                found_any = true;
                let igroup =
                    (doc.parent_name(id) == Some("igroup")).then(|| igroups.saturating_sub(1));
                injects.push(entry(&mut doc, id, &name, igroup, &mut unknown));
                continue;
            }
            _ => {}
        }
        let parent = doc.parent_name(id).unwrap_or("");
        if !(matches!(parent, "dinj" | "sinj" | "dpost") && child_known(parent, &name)) {
            warn_unknown(&mut doc, id, &mut unknown);
        }
    }
    if !found_any && !doc.broken {
        doc.diags.error(
            (1, 1),
            "K005",
            "no TrickBot element (igroup, dinj, slist, sinj, dpost) found",
        );
    }
    xml::finish(doc, injects, mode, SourceFormat::TrickbotXml)
}

fn child_known(parent: &str, child: &str) -> bool {
    match parent {
        "dinj" => matches!(
            child,
            "lm" | "hl" | "pri" | "sq" | "ignore_mask" | "require_header"
        ),
        "sinj" => matches!(child, "mm" | "sm" | "nh" | "url404" | "srv"),
        "dpost" => child == "handler",
        _ => false,
    }
}

pub(crate) fn warn_unknown(doc: &mut Doc, id: usize, seen: &mut Vec<String>) {
    let name = doc.name(id);
    if seen.len() < MAX_UNKNOWN_NAMES && !seen.iter().any(|s| s == name) {
        let msg = match doc.parent_name(id) {
            Some(p) => format!(
                "unknown element <{name}> in <{p}>; kept as an attribute when inside an entry"
            ),
            None => format!("unknown element <{name}>"),
        };
        seen.push(name.to_string());
        let pos = doc.pos(id);
        doc.diags.warn(pos, "K003", msg);
    }
}

fn entry(
    doc: &mut Doc,
    id: usize,
    kind: &str,
    igroup: Option<usize>,
    unknown: &mut Vec<String>,
) -> Inject {
    let (format, mask_element, flags) = match kind {
        "dinj" => (InjectFormat::TrickbotDinj, "lm", "GP"),
        "sinj" => (InjectFormat::TrickbotSinj, "mm", "GP"),
        _ => (InjectFormat::TrickbotDpost, "", "PL"),
    };
    let mut inject = Inject {
        format,
        mask_kind: MaskKind::Glob,
        flags: flags.to_string(),
        line: Some(doc.line(id)),
        ..Inject::default()
    };
    if kind == "dpost" {
        inject.url_mask = "*".to_string();
    }
    let mut has_mask = false;
    let children: Vec<usize> = doc.children(id).collect();
    for c in children {
        let name = doc.name(c).to_string();
        let value = doc.text_string(c);
        match name.as_str() {
            n if n == mask_element => {
                if has_mask {
                    let pos = doc.pos(c);
                    doc.diags.warn(
                        pos,
                        "K004",
                        format!("<{kind}> has more than one <{n}>; the first is the mask, the others are kept as attributes"),
                    );
                    inject.attributes.push((name, value));
                } else {
                    has_mask = true;
                    inject.url_mask = value;
                }
            }
            "hl" | "srv" | "nh" | "handler" if child_known(kind, &name) => {
                if !value.is_empty() {
                    inject.endpoints.push(value);
                }
            }
            "url404" if kind == "sinj" => {
                if !value.is_empty() {
                    inject.attributes.push((name, value));
                }
            }
            _ => {
                if !child_known(kind, &name) {
                    warn_unknown(doc, c, unknown);
                }
                inject.attributes.push((name, value));
            }
        }
    }
    if let Some(g) = igroup {
        inject
            .attributes
            .push(("igroup".to_string(), g.to_string()));
    }
    if !mask_element.is_empty() && !has_mask {
        let pos = doc.pos(id);
        doc.diags.push(
            pos,
            if doc.nodes[id].closed {
                Severity::Error
            } else {
                Severity::Warning
            },
            "K001",
            format!("<{kind}> has no <{mask_element}> URL mask; kept with an empty mask"),
        );
    }
    if !doc.nodes[id].closed {
        let pos = doc.pos(id);
        doc.diags.warn(
            pos,
            "K002",
            format!("<{kind}> is cut off by the end of the document; kept with what was read"),
        );
        inject
            .attributes
            .push(("truncated".to_string(), "true".to_string()));
    }
    inject
}

#[cfg(test)]
mod tests {
    use super::*;

    const DINJ: &[u8] = b"<igroup>\r\n<dinj>\r\n<lm>*bank.example/*/*</lm>\r\n<hl>http://203.0.113.9/response.php</hl>\r\n<pri>100</pri>\r\n<sq>2</sq>\r\n<ignore_mask>*.gif*</ignore_mask>\r\n<ignore_mask>*.js*</ignore_mask>\r\n<require_header>*text/html*</require_header>\r\n</dinj>\r\n<dinj>\r\n<lm>*0123456789abcdef0123456789abcdef*</lm>\r\n<hl>http://203.0.113.9/response.php</hl>\r\n</dinj>\r\n</igroup>\r\n<igroup><dinj><lm>https://b.example/*</lm><hl>http://198.51.100.2/r.php</hl><xx>1</xx></dinj></igroup>\r\n";

    #[test]
    fn dinj_mapping() {
        let out = parse_trickbot(DINJ, Mode::Strict).unwrap();
        assert_eq!(out.format, SourceFormat::TrickbotXml);
        assert_eq!(out.injects.len(), 3);
        let a = &out.injects[0];
        assert_eq!(a.format, InjectFormat::TrickbotDinj);
        assert_eq!(a.url_mask, "*bank.example/*/*");
        assert_eq!(a.mask_kind, MaskKind::Glob);
        assert_eq!(a.flags, "GP");
        assert_eq!(a.line, Some(2));
        assert_eq!(a.endpoints, ["http://203.0.113.9/response.php"]);
        let attrs: Vec<(&str, &str)> = a
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            attrs,
            [
                ("pri", "100"),
                ("sq", "2"),
                ("ignore_mask", "*.gif*"),
                ("ignore_mask", "*.js*"),
                ("require_header", "*text/html*"),
                ("igroup", "0")
            ]
        );
        assert!(out.injects[1]
            .attributes
            .contains(&("igroup".into(), "0".into())));
        let c = &out.injects[2];
        assert!(c.attributes.contains(&("igroup".into(), "1".into())));
        assert!(
            c.attributes.contains(&("xx".into(), "1".into())),
            "unknown child kept"
        );
        assert!(out
            .diagnostics
            .iter()
            .any(|d| d.code == "K003" && d.severity == Severity::Warning));
    }

    #[test]
    fn sinj_and_dpost_mapping() {
        let src = b"<slist>\n<sinj>\n<mm>https://www.bank.example*</mm>\n<sm>https://www.bank.example/logon*</sm>\n<nh>abcdefghijklmnopqrstuvwxyzab.net</nh>\n<url404></url404>\n<srv>192.0.2.7:443</srv>\n</sinj>\n</slist>\n<dpost>\n<handler>http://192.0.2.8:8082</handler>\n<handler>http://198.51.100.9:443</handler>\n</dpost>\n";
        let out = parse_trickbot(src, Mode::Strict).unwrap();
        assert_eq!(out.injects.len(), 2);
        let s = &out.injects[0];
        assert_eq!(s.format, InjectFormat::TrickbotSinj);
        assert_eq!(s.url_mask, "https://www.bank.example*");
        assert_eq!(
            s.endpoints,
            ["abcdefghijklmnopqrstuvwxyzab.net", "192.0.2.7:443"]
        );
        assert_eq!(
            s.attributes,
            [(
                "sm".to_string(),
                "https://www.bank.example/logon*".to_string()
            )]
        );
        let d = &out.injects[1];
        assert_eq!(d.format, InjectFormat::TrickbotDpost);
        assert_eq!((d.url_mask.as_str(), d.flags.as_str()), ("*", "PL"));
        assert_eq!(
            d.endpoints,
            ["http://192.0.2.8:8082", "http://198.51.100.9:443"]
        );
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    }

    #[test]
    fn truncated_entries_are_kept() {
        let src = b"<slist><sinj><mm>https://a.example*</mm></sinj><sinj><mm>https://b.example*</mm><nh>fake.example</n";
        let out = parse_trickbot(src, Mode::Tolerant).unwrap();
        assert_eq!(out.injects.len(), 2);
        assert_eq!(out.injects[1].endpoints, ["fake.example"]);
        assert!(out.injects[1]
            .attributes
            .contains(&("truncated".into(), "true".into())));
        let codes: Vec<_> = out.diagnostics.iter().map(|d| d.code).collect();
        assert!(
            codes.contains(&"X001") && codes.contains(&"K002"),
            "{codes:?}"
        );
        assert_eq!(parse_trickbot(src, Mode::Strict).unwrap_err().code, "X001");
    }
}
