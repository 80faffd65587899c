//! The domain of dropwatch, as plain data.
//!
//! Every stage of the pipeline speaks these types: the parsers produce them, the store keeps
//! them, delivery and sharing read them. Nothing here does I/O.
//!
//! **Architecture Invariant:** no type in this crate can hold a victim's secret in clear.
//! A secret exists only as a [`MaskedSecret`]: its kind, its length and a keyed hash.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch, UTC. The store keeps every instant this way.
pub type Micros = i64;

pub mod time;

/// A bank, card issuer or payment service whose customers are targeted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Institution {
    /// Stable slug, e.g. `jp-sakura-bank`.
    pub id: String,
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Public domains; a URL whose host is one of these or a subdomain belongs to it.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Extra ZeuS-style URL masks (`*`, `#`) that identify its sites.
    #[serde(default)]
    pub url_masks: Vec<String>,
    /// Form field names that carry its customers' account identifiers, tried before the defaults.
    #[serde(default)]
    pub account_fields: Vec<String>,
}

/// A registry of institutions as it is written in JSON (`{"institutions": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    pub institutions: Vec<Institution>,
}

/// One WebInject entry, whatever format it came from (ZeuS text, a config's binary records,
/// TinyNuke JSON, TrickBot or Dridex XML). Analysis downstream does not care which.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inject {
    /// The format the entry was read from.
    #[serde(default)]
    pub format: InjectFormat,
    /// The URL mask (`set_url`, `<lm>`, a Dridex regex...), kept as written.
    pub url_mask: String,
    /// How `url_mask` is to be matched.
    #[serde(default)]
    pub mask_kind: MaskKind,
    /// ZeuS flag letters (`GP`, `GPL`, ...); formats without flags use the closest letters
    /// (`GP` for an inject, `L` for a grab).
    pub flags: String,
    /// ZeuS optional `set_url` arguments, and the same fields of binary inject headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_blacklist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_whitelist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_block: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_context: Option<String>,
    /// The before/inject/after triplets in file order. Bytes are kept raw: they are attacker-written.
    pub blocks: Vec<InjectBlock>,
    /// URLs the format itself names for this entry: TrickBot `<hl>` / `<srv>` / dpost `<handler>`,
    /// a Dridex redirect `uri`, a fake-site host. Analysis classifies them with the URLs found
    /// inside the blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// Other format-specific attributes, as (name, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
    /// 1-based line of the entry in its source, when it came from text.
    pub line: Option<u32>,
}

/// Where an [`Inject`] came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectFormat {
    /// ZeuS 2.x / Citadel / ICE IX `webinjects.txt`.
    #[default]
    ZeusText,
    /// Inject records of a ZeuS 2.x dynamic config (8-WORD header).
    ZeusBinary,
    /// Inject records of a Citadel dynamic config (6-WORD header).
    CitadelBinary,
    TinynukeJson,
    TrickbotDinj,
    TrickbotSinj,
    TrickbotDpost,
    DridexXml,
}

/// How an [`Inject`]'s URL mask matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    /// ZeuS URL mask: `*` any run, `#` one character, `?` literal, whole-URL match.
    #[default]
    ZeusGlob,
    /// A glob with `*` only, matched case-insensitively (TinyNuke host/path, TrickBot masks).
    Glob,
    /// A PCRE-style regular expression (Dridex).
    Regex,
}

impl Inject {
    /// True for a grabber entry (`L`): it captures page text instead of rewriting the page.
    pub fn is_grab(&self) -> bool {
        self.flags.bytes().any(|b| b.eq_ignore_ascii_case(&b'L'))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectBlock {
    pub before: Vec<u8>,
    pub inject: Vec<u8>,
    pub after: Vec<u8>,
}

/// What a server found in malware or injects is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerRole {
    C2Gate,
    ConfigUrl,
    Loader,
    /// Where stolen data is sent and stored.
    Drop,
    /// An automatic-transfer panel.
    AtsPanel,
    /// Hosts script the inject loads.
    ScriptHost,
}

impl ServerRole {
    pub const ALL: [ServerRole; 6] = [
        ServerRole::C2Gate,
        ServerRole::ConfigUrl,
        ServerRole::Loader,
        ServerRole::Drop,
        ServerRole::AtsPanel,
        ServerRole::ScriptHost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServerRole::C2Gate => "c2_gate",
            ServerRole::ConfigUrl => "config_url",
            ServerRole::Loader => "loader",
            ServerRole::Drop => "drop",
            ServerRole::AtsPanel => "ats_panel",
            ServerRole::ScriptHost => "script_host",
        }
    }

    pub fn parse(s: &str) -> Option<ServerRole> {
        ServerRole::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for ServerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of secret a fake screen or a form grab can expose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    Password,
    Pin,
    OneTimeCode,
    CardNumber,
    Cvv,
    SecretAnswer,
}

impl SecretKind {
    pub const ALL: [SecretKind; 6] = [
        SecretKind::Password,
        SecretKind::Pin,
        SecretKind::OneTimeCode,
        SecretKind::CardNumber,
        SecretKind::Cvv,
        SecretKind::SecretAnswer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Password => "password",
            SecretKind::Pin => "pin",
            SecretKind::OneTimeCode => "one_time_code",
            SecretKind::CardNumber => "card_number",
            SecretKind::Cvv => "cvv",
            SecretKind::SecretAnswer => "secret_answer",
        }
    }

    pub fn parse(s: &str) -> Option<SecretKind> {
        SecretKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How fast the institution must act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// The account is known to the criminals but no secret was seen.
    Low,
    /// A reusable secret (password, PIN, card) was stolen.
    High,
    /// A one-time code was stolen: money can move within minutes.
    Critical,
}

impl Urgency {
    /// The urgency that a set of exposed secret kinds implies.
    pub fn from_exposed(kinds: &[SecretKind]) -> Urgency {
        if kinds.contains(&SecretKind::OneTimeCode) {
            Urgency::Critical
        } else if kinds.is_empty() {
            Urgency::Low
        } else {
            Urgency::High
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::High => "high",
            Urgency::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Urgency> {
        [Urgency::Low, Urgency::High, Urgency::Critical]
            .into_iter()
            .find(|u| u.as_str() == s)
    }
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A victim's secret as dropwatch keeps it: never the value, only its shape and a keyed hash.
///
/// The HMAC-SHA256 key belongs to the deployment, so the same password seen twice hashes
/// the same (deduplication, correlation) while the hash is useless to anyone without the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedSecret {
    pub kind: SecretKind,
    /// The form field it came from.
    pub field: String,
    /// Length in characters.
    pub length: u32,
    /// HMAC-SHA256(deployment key, kind || 0 || value), hex.
    pub hmac: String,
}

/// One row of stolen data as a ZeuS-family panel stores it (`botnet_reports_YYMMDD`), in the
/// JSON-lines shape dropwatch reads from a drop server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelReport {
    /// The panel's row id.
    pub id: u64,
    pub bot_id: String,
    #[serde(default)]
    pub botnet: String,
    /// BLT_* report type: 11 HTTP request, 12 HTTPS request, 201 grabbed HTTP data, ...
    #[serde(rename = "type")]
    pub report_type: u32,
    /// The URL the data was posted to.
    pub path_source: String,
    /// The free-text report body (`URL\nReferer: ...\nUser input: ...\nPOST data:\n\n...`).
    pub context: String,
    #[serde(default)]
    pub ipv4: String,
    #[serde(default)]
    pub country: String,
    /// Panel server time, Unix seconds.
    #[serde(default)]
    pub rtime: i64,
}

/// A drop record after analysis: everything dropwatch keeps of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzedRecord {
    /// Keyed fingerprint over the normalised fields, hex: the same stolen data never makes two records.
    pub fingerprint: String,
    /// The record's id in its source (the panel's row id), when it has one.
    pub external_id: Option<String>,
    pub bot_id: String,
    pub botnet: String,
    pub url: String,
    pub institution_id: Option<String>,
    /// The account identifier as the victim typed it.
    pub account: Option<String>,
    /// The account identifier normalised for deduplication (lowercase, no blanks or dashes).
    pub account_norm: Option<String>,
    pub secrets: Vec<MaskedSecret>,
    /// Names of the other fields present (their values are not kept).
    pub other_fields: Vec<String>,
    pub urgency: Urgency,
    /// Money-mule accounts an ATS or drop panel recorded with the grab (`mule_account`,
    /// `drop_iban`, ...): where the stolen money is sent. The criminals' infrastructure, not
    /// the victim's data: kept in clear so that banks can block transfers to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mule_accounts: Vec<String>,
}

impl AnalyzedRecord {
    /// The secret kinds this record exposes, sorted and deduplicated.
    pub fn exposed(&self) -> Vec<SecretKind> {
        let mut kinds: Vec<SecretKind> = self.secrets.iter().map(|s| s.kind).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

/// Why an alert was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertReason {
    /// A victim seen for the first time.
    NewVictim,
    /// A known victim with a kind of secret exposed that was not exposed before.
    NewExposure,
}

impl AlertReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertReason::NewVictim => "new_victim",
            AlertReason::NewExposure => "new_exposure",
        }
    }
}

/// The versioned JSON body of a webhook alert. It carries no secret: only what was exposed, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertPayload {
    /// Always [`AlertPayload::SCHEMA`].
    pub schema: String,
    pub alert_id: i64,
    /// The same for every delivery attempt of this alert: receivers deduplicate on it.
    pub idempotency_key: String,
    pub reason: AlertReason,
    pub institution_id: String,
    pub institution_name: String,
    pub account: String,
    pub exposed: Vec<SecretKind>,
    pub urgency: Urgency,
    pub first_seen: Micros,
    pub last_seen: Micros,
    pub source_server: Option<String>,
    pub bot_id: String,
    pub botnet: Option<String>,
    /// Money-mule accounts recorded with the record that raised the alert (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mule_accounts: Vec<String>,
}

impl AlertPayload {
    pub const SCHEMA: &'static str = "dropwatch.alert/v1";
}

/// Hex encoding without a dependency (the model crate stays dependency-light).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgency_follows_exposure() {
        assert_eq!(Urgency::from_exposed(&[]), Urgency::Low);
        assert_eq!(
            Urgency::from_exposed(&[SecretKind::Password]),
            Urgency::High
        );
        assert_eq!(
            Urgency::from_exposed(&[SecretKind::Password, SecretKind::OneTimeCode]),
            Urgency::Critical
        );
        assert!(Urgency::Critical > Urgency::High && Urgency::High > Urgency::Low);
    }

    #[test]
    fn enums_round_trip_through_their_names() {
        for k in SecretKind::ALL {
            assert_eq!(SecretKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        for r in ServerRole::ALL {
            assert_eq!(ServerRole::parse(r.as_str()), Some(r));
        }
        assert_eq!(Urgency::parse("critical"), Some(Urgency::Critical));
        assert_eq!(Urgency::parse("bogus"), None);
    }

    #[test]
    fn panel_report_reads_the_panel_column_names() {
        let r: PanelReport = serde_json::from_str(
            r#"{"id":7,"bot_id":"PC_1","type":12,"path_source":"https://b.example/","context":"x"}"#,
        )
        .unwrap();
        assert_eq!(r.report_type, 12);
        assert_eq!(r.botnet, "");
    }

    #[test]
    fn hex_is_lowercase_and_complete() {
        assert_eq!(to_hex(&[0, 0xab, 0xff]), "00abff");
    }
}

/// Classifies a form field name as the kind of secret it carries, if any.
///
/// Shared by inject analysis (what the fake screen asks for) and record analysis (what a grab
/// exposed). Matching is on ASCII-lowercased names with `-`, `_` and blanks removed.
pub fn classify_field_name(name: &str) -> Option<SecretKind> {
    let n: Vec<u8> = name
        .bytes()
        .filter(|c| !matches!(c, b'-' | b'_' | b' ' | b'.' | b'[' | b']'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    // Every keyword found anywhere in the name; the kind listed first in FIELD_KEYWORDS wins.
    FIELD_KEYWORD_INDEX
        .find_overlapping_iter(&n)
        .map(|m| FIELD_KEYWORD_KIND[m.pattern().as_usize()])
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, kind)| kind)
}

/// True for a field name under which ATS and drop panels record the money-mule account the
/// stolen money goes to (`mule_account`, `muleIBAN`, `drop_acc`, `dropkonto`, ...).
pub fn is_mule_field_name(name: &str) -> bool {
    let n: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    n.contains("mule")
        || [
            "dropacc",
            "dropiban",
            "dropkonto",
            "dropaccount",
            "dropcuenta",
        ]
        .iter()
        .any(|w| n.contains(w))
}

/// The keywords of field names that carry secrets, by kind, in order of precedence: a name
/// with keywords of two kinds (`otp_pass`) is the earlier kind.
const FIELD_KEYWORDS: [(SecretKind, &[&str]); 6] = [
    (
        SecretKind::OneTimeCode,
        &[
            "otp", "onetime", "tan", "token", "smscode", "authcode", "wanpass", "randomno", "ransu",
        ],
    ),
    (SecretKind::Cvv, &["cvv", "cvc", "csc", "securitycode"]),
    (
        SecretKind::CardNumber,
        &["cardnum", "cardno", "ccnum", "pan", "creditcard"],
    ),
    (SecretKind::Pin, &["pin", "ansho", "anshou", "secondpw"]),
    (
        SecretKind::SecretAnswer,
        &["answer", "aikotoba", "secretq", "himitsu"],
    ),
    (SecretKind::Password, &["pass", "pwd", "kenmei"]),
];

/// (precedence, kind) of each keyword, in the order of the automaton's patterns.
static FIELD_KEYWORD_KIND: std::sync::LazyLock<Vec<(usize, SecretKind)>> =
    std::sync::LazyLock::new(|| {
        FIELD_KEYWORDS
            .iter()
            .enumerate()
            .flat_map(|(rank, (kind, words))| words.iter().map(move |_| (rank, *kind)))
            .collect()
    });

static FIELD_KEYWORD_INDEX: std::sync::LazyLock<aho_corasick::AhoCorasick> =
    std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::new(FIELD_KEYWORDS.iter().flat_map(|(_, words)| words.iter()))
            .unwrap_or_else(|_| unreachable!("a few short literal keywords always build"))
    });

#[cfg(test)]
mod field_tests {
    use super::*;

    /// The automaton agrees with the plain reading of FIELD_KEYWORDS on names built from every
    /// keyword pair, with separators, case and noise around them.
    #[test]
    fn the_automaton_agrees_with_a_scan_of_the_keyword_lists() {
        let naive = |name: &str| {
            let n: String = name
                .chars()
                .filter(|c| !matches!(c, '-' | '_' | ' ' | '.' | '[' | ']'))
                .map(|c| c.to_ascii_lowercase())
                .collect();
            FIELD_KEYWORDS
                .iter()
                .find(|(_, words)| words.iter().any(|w| n.contains(w)))
                .map(|(kind, _)| *kind)
        };
        let words: Vec<&str> = FIELD_KEYWORDS
            .iter()
            .flat_map(|(_, w)| w.iter().copied())
            .chain(["login", "user", "kouza", "x", ""])
            .collect();
        for a in &words {
            for b in &words {
                for name in [
                    format!("{a}{b}"),
                    format!("{}_{b}", a.to_uppercase()),
                    format!("f[{a}].{b}-2"),
                ] {
                    assert_eq!(classify_field_name(&name), naive(&name), "{name}");
                }
            }
        }
    }

    #[test]
    fn field_names_classify() {
        assert_eq!(classify_field_name("password"), Some(SecretKind::Password));
        assert_eq!(classify_field_name("login_pwd"), Some(SecretKind::Password));
        assert_eq!(classify_field_name("ansho_no"), Some(SecretKind::Pin));
        assert_eq!(classify_field_name("PIN"), Some(SecretKind::Pin));
        assert_eq!(classify_field_name("otp"), Some(SecretKind::OneTimeCode));
        assert_eq!(
            classify_field_name("one-time-password"),
            Some(SecretKind::OneTimeCode)
        );
        assert_eq!(classify_field_name("cvv2"), Some(SecretKind::Cvv));
        assert_eq!(
            classify_field_name("card_number"),
            Some(SecretKind::CardNumber)
        );
        assert_eq!(
            classify_field_name("aikotoba1"),
            Some(SecretKind::SecretAnswer)
        );
        assert_eq!(classify_field_name("user_id"), None);
        assert_eq!(classify_field_name("kouza_no"), None);
    }
}
