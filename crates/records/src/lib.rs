//! Stolen-data records: from a drop server's row to what dropwatch keeps of it.
//!
//! [`parse_context`] reads the ZeuS-family form-grab layout (`URL`, `Referer:`, `User input:`,
//! optional `HTTP authentication:`, `POST data:` and `name=value` lines; see
//! `../shared/design/formats/drops-and-sharing.md` §1.1), KINS's `UserInput:` after
//! `POST data:`, webinject captures (`Grabbed data from:`, type 201), and URL-encoded, JSON and
//! `multipart/form-data` bodies. [`RecordAnalyzer`] turns a
//! [`PanelReport`] into an [`AnalyzedRecord`]: the institution (by URL, then Referer), the
//! account identifier, every secret masked and keyed-hashed, a keyed fingerprint, and urgency.
//!
//! **Architecture Invariant:** a victim's secret never leaves this crate in clear. Values of
//! fields classified as secrets, and the keystroke log (`User input`), are reduced to a
//! [`MaskedSecret`] or dropped here; values of other non-account fields are dropped too.

use dropwatch_masks::InstitutionIndex;
use dropwatch_model::{
    classify_field_name, is_mule_field_name, to_hex, AnalyzedRecord, Institution, MaskedSecret,
    PanelReport, SecretKind, Urgency,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest record line accepted from a drop; longer ones are rejected, not buffered.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The line is not a panel report in JSON.
    #[error("not a panel report at column {column}: {message}")]
    Json { column: usize, message: String },
    /// The line exceeds [`MAX_RECORD_BYTES`].
    #[error("record of {0} bytes exceeds the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge(usize),
}

/// Parses one JSON line of a drop's report listing.
pub fn parse_report_line(line: &[u8]) -> Result<PanelReport, RecordError> {
    if line.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge(line.len()));
    }
    serde_json::from_slice(line).map_err(|e| RecordError::Json {
        column: e.column(),
        message: e.to_string(),
    })
}

/// The deployment's key for hashing secrets. 32 random bytes, kept out of the database.
///
/// Held as an HMAC already keyed (its inner and outer pads absorbed): each hash clones it,
/// which saves two SHA-256 blocks of the four a short field costs.
#[derive(Clone)]
pub struct SecretKey(HmacSha256);

impl SecretKey {
    pub fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        // HMAC accepts keys of any length, so this cannot fail.
        SecretKey(<HmacSha256 as Mac>::new_from_slice(&bytes).unwrap_or_else(|_| unreachable!()))
    }

    fn mac(&self) -> HmacSha256 {
        self.0.clone()
    }

    /// HMAC-SHA256 over the parts, each followed by a 0 byte so that part boundaries count.
    pub fn hash_parts(&self, parts: &[&[u8]]) -> String {
        let mut mac = self.mac();
        for part in parts {
            mac.update(part);
            mac.update(&[0]);
        }
        to_hex(&mac.finalize().into_bytes())
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// The parts of a form-grab `context`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedContext {
    pub url: String,
    pub referer: Option<String>,
    /// The keystroke log. Sensitive: it often holds the password as typed.
    pub user_input: Option<String>,
    pub http_auth: Option<(String, String)>,
    /// `name=value` pairs of the POST body, values percent-decoded.
    pub fields: Vec<(String, String)>,
}

/// Parses the ZeuS 2.x / KINS / Citadel form-grab layout. Tolerant: unknown lines are skipped.
///
/// Layouts (`../shared/design/formats/drops-and-sharing.md` §1.1):
/// - ZeuS 2.0.8.9 form grab (types 11, 12): `URL[ *BLOCKED*]`, `Referer: ..`, `User input: ..`,
///   optional `HTTP authentication: username="..", password=".."`, `POST data:`, a blank line,
///   then the body.
/// - KINS: the same, with the keystroke log as `UserInput:` right after `POST data:`.
/// - Webinject capture (type 201, BLT_GRABBED_HTTP): `Grabbed data from: URL`, a blank line,
///   then the captured data, read like a body.
///
/// The body is read as JSON when it is a JSON object (`{"login":..,"password":..}`, nested
/// objects flattened to their leaf names), as `multipart/form-data` when it starts with a
/// boundary line followed by `Content-Disposition` headers, and otherwise as URL-encoded
/// `name=value` pairs (the bot turned `&` into line breaks; a body that kept them is split
/// here too). `*EMPTY*` and `*UNKNOWN*` bodies have no fields.
pub fn parse_context(context: &str) -> ParsedContext {
    let mut out = ParsedContext::default();
    let mut lines = context
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut in_body = false;
    if let Some(first) = lines.next() {
        let grabbed = first.strip_prefix("Grabbed data from:");
        in_body = grabbed.is_some();
        let first = grabbed.unwrap_or(first);
        out.url = first.trim_end_matches(" *BLOCKED*").trim().to_string();
    }
    let mut body: Vec<&str> = Vec::new();
    for line in lines {
        if in_body {
            if let Some(rest) = line.strip_prefix("UserInput:") {
                // KINS puts the keystroke log after `POST data:`.
                if body.is_empty() {
                    set_nonempty(&mut out.user_input, rest);
                    continue;
                }
            }
            body.push(line);
        } else if let Some(rest) = line.strip_prefix("Referer:") {
            let r = rest.trim();
            if !r.is_empty() && r != "-" {
                out.referer = Some(r.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("User input:") {
            set_nonempty(&mut out.user_input, rest);
        } else if let Some(rest) = line.strip_prefix("HTTP authentication:") {
            out.http_auth = parse_http_auth(rest);
        } else if line.starts_with("POST data:") {
            in_body = true;
        }
    }
    out.fields = parse_body(&body);
    out
}

/// Most fields read from one body; the rest are ignored.
pub const MAX_BODY_FIELDS: usize = 1024;

/// Deepest JSON nesting flattened; deeper values are ignored.
const MAX_JSON_DEPTH: usize = 8;

/// The fields of a POST body (or grabbed data), given as its lines.
fn parse_body(lines: &[&str]) -> Vec<(String, String)> {
    let first = lines.iter().position(|l| !l.trim().is_empty());
    let Some(first) = first else {
        return Vec::new();
    };
    let lines = &lines[first..];
    if lines[0].trim_start().starts_with('{') {
        if let Ok(serde_json::Value::Object(map)) =
            serde_json::from_str::<serde_json::Value>(&lines.join("\n"))
        {
            let mut out = Vec::new();
            flatten_json(None, &serde_json::Value::Object(map), 0, &mut out);
            return out;
        }
    }
    if let Some(fields) = parse_multipart(lines) {
        return fields;
    }
    let mut out = Vec::new();
    for line in lines {
        if line.is_empty() || *line == "*EMPTY*" || *line == "*UNKNOWN*" {
            continue;
        }
        for pair in line.split('&') {
            if let Some((name, value)) = pair.split_once('=') {
                if out.len() < MAX_BODY_FIELDS {
                    out.push((decode(name), decode(value)));
                }
            }
        }
    }
    out
}

/// Leaf values of a JSON body under their own key (arrays under their parent's key).
fn flatten_json(
    name: Option<&str>,
    value: &serde_json::Value,
    depth: usize,
    out: &mut Vec<(String, String)>,
) {
    use serde_json::Value;
    if out.len() >= MAX_BODY_FIELDS || depth > MAX_JSON_DEPTH {
        return;
    }
    let leaf = match value {
        Value::Null => return,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        Value::Array(items) => {
            for item in items {
                flatten_json(name, item, depth + 1, out);
            }
            return;
        }
        Value::Object(map) => {
            for (k, v) in map {
                flatten_json(Some(k), v, depth + 1, out);
            }
            return;
        }
    };
    if let Some(name) = name {
        out.push((name.to_string(), leaf));
    }
}

/// A `multipart/form-data` body: a boundary line (`--...`), then parts of headers, a blank
/// line and a value. Parts with a `filename` (uploads) are skipped. `None` if it is not one.
fn parse_multipart(lines: &[&str]) -> Option<Vec<(String, String)>> {
    let boundary = lines.first()?.trim_end();
    if !boundary.starts_with("--") || boundary.len() < 3 || boundary.contains('=') {
        return None;
    }
    let closing = format!("{boundary}--");
    let mut out = Vec::new();
    let mut i = 1;
    let mut saw_part = false;
    while i < lines.len() {
        // Headers of one part.
        let mut name = None;
        let mut upload = false;
        while i < lines.len() && !lines[i].trim().is_empty() {
            let h = lines[i];
            let is_disposition = h
                .get(..20)
                .is_some_and(|p| p.eq_ignore_ascii_case("content-disposition:"));
            if is_disposition {
                saw_part = true;
                name = header_param(h, "name");
                upload = header_param(h, "filename").is_some();
            }
            i += 1;
        }
        i += 1;
        // The value runs to the next boundary.
        let start = i.min(lines.len());
        while i < lines.len() && lines[i].trim_end() != boundary && lines[i].trim_end() != closing {
            i += 1;
        }
        let value = lines[start..i.min(lines.len())].join("\n");
        if let Some(name) = name.filter(|_| !upload) {
            if out.len() < MAX_BODY_FIELDS {
                out.push((name, value.trim().to_string()));
            }
        }
        if i < lines.len() && lines[i].trim_end() == closing {
            break;
        }
        i += 1;
    }
    saw_part.then_some(out)
}

/// The value of `param="..."` (or unquoted) in a header line.
fn header_param(header: &str, param: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(param)).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn set_nonempty(slot: &mut Option<String>, s: &str) {
    let s = s.trim();
    if !s.is_empty() {
        *slot = Some(s.to_string());
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s.trim())
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_http_auth(s: &str) -> Option<(String, String)> {
    let user = s.split_once("username=\"")?.1.split_once('"')?.0;
    let pass = s.split_once("password=\"")?.1.split_once('"')?.0;
    Some((user.to_string(), pass.to_string()))
}

/// Field names that carry an account identifier when the institution names none, by priority.
pub const DEFAULT_ACCOUNT_FIELDS: &[&str] = &[
    "accountno",
    "accountnumber",
    "account",
    "acctno",
    "acct",
    "kouzano",
    "kouzabangou",
    "kouza",
    "keiyakushano",
    "keiyakuno",
    "customerid",
    "customerno",
    "kokyakuno",
    "userid",
    "loginid",
    "username",
    "login",
    "user",
    "uid",
    "kontonummer",
    "benutzername",
    "usuario",
    "email",
    "mail",
];

fn normalize_name(name: &str) -> String {
    if name.is_ascii() {
        // The common case, without Unicode case tables.
        let mut out = String::with_capacity(name.len());
        out.extend(
            name.bytes()
                .filter(u8::is_ascii_alphanumeric)
                .map(|b| char::from(b.to_ascii_lowercase())),
        );
        return out;
    }
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Longest money-mule account kept (an IBAN has at most 34 characters).
pub const MAX_MULE_ACCOUNT_CHARS: usize = 64;

/// Normalises an account identifier for deduplication: lowercase, no blanks, dashes or dots.
pub fn normalize_account(account: &str) -> String {
    account
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '_' | '/'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// True for 13–19 digits that pass the Luhn check.
pub fn is_card_number(value: &str) -> bool {
    let digits: Vec<u32> = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()
        .unwrap_or_default();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Turns drop records into analysed records.
#[derive(Debug, Clone)]
pub struct RecordAnalyzer {
    index: InstitutionIndex,
    key: SecretKey,
}

impl RecordAnalyzer {
    pub fn new(index: InstitutionIndex, key: SecretKey) -> RecordAnalyzer {
        RecordAnalyzer { index, key }
    }

    pub fn index(&self) -> &InstitutionIndex {
        &self.index
    }

    pub fn analyze(&self, report: &PanelReport) -> AnalyzedRecord {
        let ctx = parse_context(&report.context);
        let url = if ctx.url.is_empty() {
            report.path_source.clone()
        } else {
            ctx.url.clone()
        };
        let institution = self
            .index
            .lookup_url(&report.path_source)
            .or_else(|| self.index.lookup_url(&url))
            .or_else(|| {
                ctx.referer
                    .as_deref()
                    .and_then(|r| self.index.lookup_url(r))
            });

        let mut fields: Vec<(String, String)> = ctx.fields.clone();
        if let Some((user, pass)) = &ctx.http_auth {
            fields.push(("http_auth_user".into(), user.clone()));
            fields.push(("http_auth_password".into(), pass.clone()));
        }

        let account_idx = find_account_field(&fields, institution);
        let mut secrets = Vec::new();
        let mut other_fields = Vec::new();
        let mut mule_accounts: Vec<String> = Vec::new();
        // Canonical form for the fingerprint: names with values, secrets by their HMAC only.
        let mut canonical: Vec<String> = Vec::new();
        for (i, (name, value)) in fields.iter().enumerate() {
            if value.is_empty() {
                continue;
            }
            if Some(i) == account_idx {
                canonical.push(format!(
                    "{}=acct:{}",
                    normalize_name(name),
                    normalize_account(value)
                ));
                continue;
            }
            if is_mule_field_name(name) {
                // The criminals' receiving account: kept as written (blanks removed), bounded.
                let mule: String = value
                    .chars()
                    .filter(|c| !c.is_whitespace() && !c.is_control())
                    .take(MAX_MULE_ACCOUNT_CHARS)
                    .collect();
                if !mule.is_empty() && !mule_accounts.contains(&mule) {
                    canonical.push(format!("{}=mule:{mule}", normalize_name(name)));
                    mule_accounts.push(mule);
                }
                continue;
            }
            let kind = classify_field_name(name)
                .or_else(|| is_card_number(value).then_some(SecretKind::CardNumber));
            match kind {
                Some(kind) => {
                    let hmac = self.key.hash_parts(&[
                        b"secret",
                        kind.as_str().as_bytes(),
                        value.as_bytes(),
                    ]);
                    canonical.push(format!("{}=secret:{}", normalize_name(name), hmac));
                    secrets.push(MaskedSecret {
                        kind,
                        field: name.clone(),
                        length: value.chars().count() as u32,
                        hmac,
                    });
                }
                None => {
                    // Other values may be personal data too; they go into the keyed fingerprint only.
                    let h = self.key.hash_parts(&[b"field", value.as_bytes()]);
                    canonical.push(format!("{}=field:{}", normalize_name(name), h));
                    other_fields.push(name.clone());
                }
            }
        }
        if ctx.user_input.is_some() {
            other_fields.push("user_input".into());
        }
        canonical.sort();
        let url_no_query = url
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut parts: Vec<&[u8]> =
            vec![b"record", url_no_query.as_bytes(), report.bot_id.as_bytes()];
        parts.extend(canonical.iter().map(|c| c.as_bytes()));
        let fingerprint = self.key.hash_parts(&parts);

        let account = account_idx.map(|i| fields[i].1.trim().to_string());
        let account_norm = account
            .as_deref()
            .map(normalize_account)
            .filter(|a| !a.is_empty());
        let mut exposed: Vec<SecretKind> = secrets.iter().map(|s| s.kind).collect();
        exposed.sort();
        exposed.dedup();
        AnalyzedRecord {
            fingerprint,
            external_id: Some(report.id.to_string()),
            bot_id: report.bot_id.clone(),
            botnet: report.botnet.clone(),
            url: url_no_query,
            institution_id: institution.map(|i| i.id.clone()),
            account: account.filter(|_| account_norm.is_some()),
            account_norm,
            secrets,
            other_fields,
            urgency: Urgency::from_exposed(&exposed),
            mule_accounts,
        }
    }
}

fn find_account_field(
    fields: &[(String, String)],
    institution: Option<&Institution>,
) -> Option<usize> {
    let usable = |i: usize| {
        !fields[i].1.trim().is_empty()
            && classify_field_name(&fields[i].0).is_none()
            && !is_mule_field_name(&fields[i].0)
    };
    // The record's fields by normalised name (a record has a handful; rules are many).
    let mut by_name: std::collections::HashMap<String, Vec<usize>> =
        std::collections::HashMap::with_capacity(fields.len());
    for (i, (n, _)) in fields.iter().enumerate() {
        by_name.entry(normalize_name(n)).or_default().push(i);
    }
    let first_usable = |rule: &str| {
        by_name
            .get(rule)
            .and_then(|idx| idx.iter().copied().find(|&i| usable(i)))
    };
    if let Some(inst) = institution {
        for rule in &inst.account_fields {
            if let Some(i) = first_usable(&normalize_name(rule)) {
                return Some(i);
            }
        }
    }
    for rule in DEFAULT_ACCOUNT_FIELDS {
        if let Some(i) = first_usable(rule) {
            return Some(i);
        }
    }
    if fields.iter().any(|(n, _)| n == "http_auth_user") {
        return fields.iter().position(|(n, _)| n == "http_auth_user");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_hmac_sha256_over_nul_terminated_parts() {
        // Python: hmac.new(bytes([7]*32), b"secret\0password\0hunter2\0", hashlib.sha256)
        let key = SecretKey::from_bytes([7; 32]);
        let parts: [&[u8]; 3] = [b"secret", b"password", b"hunter2"];
        assert_eq!(
            key.hash_parts(&parts),
            "584f08400a5f0059c5a9efbfdc3f1a4fb9febd2ff0042db7a1791f0b79499432"
        );
        // The pre-keyed state is reused, never advanced: the same input, the same hash.
        assert_eq!(key.hash_parts(&parts), key.hash_parts(&parts));
    }

    fn analyzer() -> RecordAnalyzer {
        let index = InstitutionIndex::new(vec![Institution {
            id: "jp-a".into(),
            name: "A Bank".into(),
            country: "JP".into(),
            domains: vec!["a-bank.example".into()],
            url_masks: vec![],
            account_fields: vec!["kouza_no".into()],
        }]);
        RecordAnalyzer::new(index, SecretKey::from_bytes([7; 32]))
    }

    fn report(context: &str) -> PanelReport {
        PanelReport {
            id: 1,
            bot_id: "WIN7_0123".into(),
            botnet: "bn".into(),
            report_type: 12,
            path_source: "https://ib.a-bank.example/login.do".into(),
            context: context.into(),
            ipv4: String::new(),
            country: String::new(),
            rtime: 0,
        }
    }

    const CTX: &str = "https://ib.a-bank.example/login.do\nReferer: https://ib.a-bank.example/\nUser input: 1234567\tS3cr3t!pw\nPOST data:\n\nkouza_no=123-4567\npassword=S3cr3t%21pw\nansho=4821\notp=902211\nname=Taro Yamada\n";

    #[test]
    fn parses_the_zeus_layout() {
        let c = parse_context(CTX);
        assert_eq!(c.url, "https://ib.a-bank.example/login.do");
        assert_eq!(c.referer.as_deref(), Some("https://ib.a-bank.example/"));
        assert!(c.user_input.is_some());
        assert_eq!(
            c.fields[1],
            ("password".to_string(), "S3cr3t!pw".to_string())
        );
        assert_eq!(c.fields.len(), 5);
    }

    #[test]
    fn analysis_masks_every_secret_and_finds_the_account() {
        let a = analyzer().analyze(&report(CTX));
        assert_eq!(a.institution_id.as_deref(), Some("jp-a"));
        assert_eq!(a.account.as_deref(), Some("123-4567"));
        assert_eq!(a.account_norm.as_deref(), Some("1234567"));
        assert_eq!(
            a.exposed(),
            vec![
                SecretKind::Password,
                SecretKind::Pin,
                SecretKind::OneTimeCode
            ]
        );
        assert_eq!(a.urgency, Urgency::Critical);
        let pw = a
            .secrets
            .iter()
            .find(|s| s.kind == SecretKind::Password)
            .unwrap();
        assert_eq!(pw.length, 9);
        let dump = format!("{a:?}");
        for secret in ["S3cr3t", "4821", "902211", "Taro"] {
            assert!(!dump.contains(secret), "{secret} leaked: {dump}");
        }
    }

    #[test]
    fn fingerprint_is_stable_and_sensitive() {
        let an = analyzer();
        let a = an.analyze(&report(CTX));
        let mut again = report(CTX);
        again.id = 99;
        assert_eq!(
            an.analyze(&again).fingerprint,
            a.fingerprint,
            "a re-sent row is the same record"
        );
        let changed = an.analyze(&report(&CTX.replace("902211", "902212")));
        assert_ne!(changed.fingerprint, a.fingerprint);
        let other_key = RecordAnalyzer::new(an.index().clone(), SecretKey::from_bytes([8; 32]));
        assert_ne!(other_key.analyze(&report(CTX)).fingerprint, a.fingerprint);
    }

    #[test]
    fn unknown_site_and_http_auth() {
        let mut r = report("https://mail.other.example/\nReferer: -\nUser input: \nHTTP authentication: username=\"bob\", password=\"hunter22\"\nPOST data:\n\n*EMPTY*\n");
        r.path_source = "https://mail.other.example/".into();
        let a = analyzer().analyze(&r);
        assert_eq!(a.institution_id, None);
        assert_eq!(a.account.as_deref(), Some("bob"));
        assert_eq!(a.exposed(), vec![SecretKind::Password]);
    }

    /// Asserts that none of `secrets` appears in the analysed record's `Debug` output.
    fn assert_no_leak(a: &AnalyzedRecord, secrets: &[&str]) {
        let dump = format!("{a:?}");
        for secret in secrets {
            assert!(!dump.contains(secret), "{secret} leaked: {dump}");
        }
    }

    fn secret_kinds(a: &AnalyzedRecord) -> Vec<(SecretKind, u32)> {
        let mut k: Vec<(SecretKind, u32)> = a.secrets.iter().map(|s| (s.kind, s.length)).collect();
        k.sort();
        k
    }

    #[test]
    fn kins_keystrokes_after_post_data() {
        // KINS: `URL\nReferer: ..\n[HTTP auth line]POST data:\nUserInput:<keys>\n\n<body>` (§1.1).
        let ctx = "https://ib.a-bank.example/login.do\nReferer: https://ib.a-bank.example/\nPOST data:\nUserInput:555-0101\tKinsPw77\n\nkouza_no=555-0101\npassword=KinsPw77\n";
        let c = parse_context(ctx);
        assert_eq!(c.user_input.as_deref(), Some("555-0101\tKinsPw77"));
        assert_eq!(c.fields.len(), 2);
        let a = analyzer().analyze(&report(ctx));
        assert_eq!(a.institution_id.as_deref(), Some("jp-a"));
        assert_eq!(a.account.as_deref(), Some("555-0101"));
        assert_eq!(secret_kinds(&a), vec![(SecretKind::Password, 8)]);
        assert!(a.other_fields.contains(&"user_input".to_string()));
        assert_no_leak(&a, &["KinsPw77"]);
    }

    #[test]
    fn grabbed_data_records() {
        // BLT_GRABBED_HTTP (201): `Grabbed data from: URL\n\n<captured data>` (§1.1).
        let ctx = "Grabbed data from: https://ib.a-bank.example/transfer.do\n\nkouza_no=777-1234\nansho=8642\ntan=517273\n";
        let c = parse_context(ctx);
        assert_eq!(c.url, "https://ib.a-bank.example/transfer.do");
        assert_eq!(c.fields.len(), 3);
        let mut r = report(ctx);
        r.report_type = 201;
        r.path_source = "https://ib.a-bank.example/transfer.do".into();
        let a = analyzer().analyze(&r);
        assert_eq!(a.institution_id.as_deref(), Some("jp-a"));
        assert_eq!(a.account.as_deref(), Some("777-1234"));
        assert_eq!(
            secret_kinds(&a),
            vec![(SecretKind::Pin, 4), (SecretKind::OneTimeCode, 6)]
        );
        assert_eq!(a.urgency, Urgency::Critical);
        assert_no_leak(&a, &["8642", "517273"]);
        // Captured text that is not `name=value` yields no fields and leaks nothing.
        let a = analyzer().analyze(&report(
            "Grabbed data from: https://ib.a-bank.example/top\n\n<b>Balance: 1,234,567 JPY</b>\n",
        ));
        assert!(a.secrets.is_empty());
        assert_no_leak(&a, &["1,234,567"]);
    }

    #[test]
    fn ats_records_surface_the_mule_account_and_mask_the_rest() {
        // An ATS panel's record: the victim's login and one-time code, the balance it read and
        // the mule account it transferred to.
        let ctx = "https://ib.a-bank.example/api/transfer\nReferer: -\nUser input: \nPOST data:\n\n{\"login\":\"taro.example\",\"password\":\"Ats$Pw9\",\"otp\":\"401122\",\"balance\":\"1234567\",\"mule_account\":\"DE89 3704 0044 0532 0130 00\",\"drop_iban\":\"DE89370400440532013000\"}\n";
        let a = analyzer().analyze(&report(ctx));
        assert_eq!(a.account.as_deref(), Some("taro.example"));
        assert_eq!(a.mule_accounts, vec!["DE89370400440532013000".to_string()]);
        assert_eq!(
            secret_kinds(&a),
            vec![(SecretKind::Password, 7), (SecretKind::OneTimeCode, 6)]
        );
        assert!(a.other_fields.contains(&"balance".to_string()));
        assert_no_leak(&a, &["Ats$Pw9", "401122", "1234567"]);
        // The mule account is part of the record's identity: another mule, another record.
        let other = ctx
            .replace("DE89 3704", "DE89 9999")
            .replace("DE8937", "DE8999");
        assert_ne!(
            analyzer().analyze(&report(&other)).fingerprint,
            a.fingerprint
        );
        assert!(is_mule_field_name("muleIBAN") && is_mule_field_name("dropKonto"));
        assert!(!is_mule_field_name("account") && !is_mule_field_name("dropdown"));
    }

    #[test]
    fn json_bodies() {
        let ctx = "https://ib.a-bank.example/api/login\nReferer: -\nUser input: \nPOST data:\n\n{\"login\":\"taro.example\",\"password\":\"J$0nPass!\",\"device\":{\"otp\":\"661204\",\"remember\":true},\"answers\":[\"blue\"]}\n";
        let c = parse_context(ctx);
        assert!(c
            .fields
            .contains(&("login".to_string(), "taro.example".to_string())));
        assert!(c
            .fields
            .contains(&("remember".to_string(), "true".to_string())));
        let a = analyzer().analyze(&report(ctx));
        assert_eq!(a.institution_id.as_deref(), Some("jp-a"));
        assert_eq!(a.account.as_deref(), Some("taro.example"));
        assert_eq!(
            secret_kinds(&a),
            vec![
                (SecretKind::Password, 9),
                (SecretKind::OneTimeCode, 6),
                (SecretKind::SecretAnswer, 4)
            ]
        );
        assert_no_leak(&a, &["J$0nPass!", "661204", "blue"]);
        // A body that only looks like JSON falls back to name=value.
        let c = parse_context("https://x.example/\nPOST data:\n\n{broken\nuser=a\n");
        assert_eq!(c.fields, vec![("user".to_string(), "a".to_string())]);
    }

    #[test]
    fn multipart_bodies() {
        let ctx = "https://ib.a-bank.example/login.do\r\nReferer: https://ib.a-bank.example/\r\nUser input: \r\nPOST data:\r\n\r\n------WebKitFormBoundaryX1\r\nContent-Disposition: form-data; name=\"kouza_no\"\r\n\r\n321-9876\r\n------WebKitFormBoundaryX1\r\nContent-Disposition: form-data; name=\"pass_word\"\r\n\r\nMultiP@ss9\r\n------WebKitFormBoundaryX1\r\nContent-Disposition: form-data; name=\"scan\"; filename=\"id.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n------WebKitFormBoundaryX1--\r\n";
        let c = parse_context(ctx);
        assert_eq!(
            c.fields,
            vec![
                ("kouza_no".to_string(), "321-9876".to_string()),
                ("pass_word".to_string(), "MultiP@ss9".to_string())
            ]
        );
        let a = analyzer().analyze(&report(ctx));
        assert_eq!(a.institution_id.as_deref(), Some("jp-a"));
        assert_eq!(a.account.as_deref(), Some("321-9876"));
        assert_eq!(secret_kinds(&a), vec![(SecretKind::Password, 10)]);
        assert_no_leak(&a, &["MultiP@ss9", "PNGDATA"]);
    }

    #[test]
    fn hostile_bodies_are_bounded() {
        let deep = format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200));
        let c = parse_context(&format!("https://x.example/\nPOST data:\n\n{deep}\n"));
        assert!(c.fields.len() <= 1);
        let many = "a=1&".repeat(10_000);
        let c = parse_context(&format!("https://x.example/\nPOST data:\n\n{many}\n"));
        assert_eq!(c.fields.len(), MAX_BODY_FIELDS);
        let parts = "--b\nContent-Disposition: form-data; name=\"é\"\n\nv\n".repeat(5_000);
        let c = parse_context(&format!("https://x.example/\nPOST data:\n\n{parts}--b--\n"));
        assert_eq!(c.fields.len(), MAX_BODY_FIELDS);
        // A multipart header line with a multi-byte character at byte 20 does not panic.
        let c = parse_context(
            "https://x.example/\nPOST data:\n\n--b\nContent-Dispositioné: x\n\nv\n--b--\n",
        );
        assert!(c.fields.is_empty());
    }

    #[test]
    fn luhn() {
        assert!(is_card_number("4111 1111 1111 1111"));
        assert!(!is_card_number("4111 1111 1111 1112"));
        assert!(!is_card_number("1234567"));
    }

    #[test]
    fn hostile_lines_are_errors_not_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let an = analyzer();
        for _ in 0..2_000 {
            let n = rng.random_range(0..200);
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    *b"{}\":,=&%\n\r abcPOSTdata:Referer0123456789\\u"
                        .get(rng.random_range(0..40))
                        .unwrap_or(&b'x')
                })
                .collect();
            let _ = parse_report_line(&bytes);
            let _ = an.analyze(&report(&String::from_utf8_lossy(&bytes)));
        }
        assert!(matches!(
            parse_report_line(b"{\"id\":"),
            Err(RecordError::Json { .. })
        ));
    }
}
