//! The typed result of a decrypted config, and its stable JSON.
//!
//! Field order is the JSON order; fields are only ever added. Key material appears only as the
//! SHA-256 of the RC4 state, or as values the analyst supplied (login key, salt, AES key).

use dropwatch_model::Inject;
use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;
use crate::rc4::Rc4Variant;

/// The malware family whose container and item ids the config follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Family {
    /// ZeuS 2.x and the descendants that keep its container and ids (ICE IX, Evolution).
    Zeus,
    /// Citadel 1.3.x: AES+ cipher, 6-WORD inject headers, renumbered inject flags.
    Citadel,
}

/// The cipher variant that decrypted the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Variant {
    /// ZeuS 2.x: textbook RC4.
    Zeus2,
    /// ICE IX: RC4 with `x += 3`, `y += S[x] + 7`.
    IceIx,
    /// ZeuS "Evolution" 2.0.9.4: RC4 with `x += 3`, `y += S[x] + 5`.
    Evolution,
    /// Citadel "AES+": AES-128-ECB under RC4+(MD5(login key)), 16-byte XOR, visual chain, salt XOR.
    CitadelAes,
}

impl Variant {
    pub fn family(self) -> Family {
        match self {
            Variant::Zeus2 | Variant::IceIx | Variant::Evolution => Family::Zeus,
            Variant::CitadelAes => Family::Citadel,
        }
    }

    /// The RC4 keystream of a ZeuS-container variant.
    pub fn rc4(self) -> Option<Rc4Variant> {
        match self {
            Variant::Zeus2 => Some(Rc4Variant::Zeus),
            Variant::IceIx => Some(Rc4Variant::IceIx),
            Variant::Evolution => Some(Rc4Variant::Evolution),
            Variant::CitadelAes => None,
        }
    }

    pub fn from_rc4(v: Rc4Variant) -> Variant {
        match v {
            Rc4Variant::Zeus => Variant::Zeus2,
            Rc4Variant::IceIx => Variant::IceIx,
            Rc4Variant::Evolution => Variant::Evolution,
        }
    }
}

/// What a WebFilter entry (item 20005) makes the bot do for matching URLs, from its prefix
/// character (`V:client/httpgrabber.cpp`; `#` from libzpy's Citadel structs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebFilterAction {
    /// No prefix: report the request even when it would not be.
    ForceReport,
    /// `!`: do not report.
    NoReport,
    /// `@`: take screenshots around clicks.
    Screenshot,
    /// `-`: save the cookies and block access.
    SaveCookiesAndBlock,
    /// `^`: block access.
    Block,
    /// `#` (Citadel only; in ZeuS `#` is a mask wildcard): record video.
    Video,
}

impl WebFilterAction {
    /// The prefix character, `None` for [`WebFilterAction::ForceReport`].
    pub fn prefix(self) -> Option<char> {
        match self {
            WebFilterAction::ForceReport => None,
            WebFilterAction::NoReport => Some('!'),
            WebFilterAction::Screenshot => Some('@'),
            WebFilterAction::SaveCookiesAndBlock => Some('-'),
            WebFilterAction::Block => Some('^'),
            WebFilterAction::Video => Some('#'),
        }
    }

    /// The action a filter's first character selects in `family`.
    pub fn from_prefix(c: char, family: Family) -> Option<WebFilterAction> {
        Some(match c {
            '!' => WebFilterAction::NoReport,
            '@' => WebFilterAction::Screenshot,
            '-' => WebFilterAction::SaveCookiesAndBlock,
            '^' => WebFilterAction::Block,
            '#' if family == Family::Citadel => WebFilterAction::Video,
            _ => return None,
        })
    }
}

/// One WebFilter entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebFilter {
    /// As stored, prefix included.
    pub filter: String,
    /// The URL mask, prefix removed.
    pub mask: String,
    pub action: WebFilterAction,
}

impl WebFilter {
    /// Splits the prefix off a stored filter.
    pub fn parse(filter: &str, family: Family) -> WebFilter {
        let mut chars = filter.chars();
        match chars
            .next()
            .and_then(|c| WebFilterAction::from_prefix(c, family))
        {
            Some(action) => WebFilter {
                filter: filter.to_string(),
                mask: chars.as_str().to_string(),
                action,
            },
            None => WebFilter {
                filter: filter.to_string(),
                mask: filter.to_string(),
                action: WebFilterAction::ForceReport,
            },
        }
    }
}

/// One WebDataFilter entry (item 20006): POST data of matching URLs is reported when it holds
/// one of the variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebDataFilter {
    pub url_mask: String,
    /// The `;`-separated variable-name masks.
    pub variables: Vec<String>,
}

/// Key material, as far as it is known. The RC4 state is only ever named by its hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    /// SHA-256 (hex) of the 258-byte RC4 state that decrypted the config.
    pub rc4_state_sha256: Option<String>,
    /// Citadel login key (32 ASCII hex characters).
    pub login_key: Option<String>,
    /// Citadel `BO_CRYPT_SALT`, `0x`-prefixed hex.
    pub salt: Option<String>,
    /// Citadel AES-128 key (hex), derived from the RC4 state and the login key.
    pub aes_key: Option<String>,
    /// Citadel 16-byte XOR key applied after AES (hex); absent when none (all zeros).
    #[serde(default)]
    pub aes_xor: Option<String>,
}

/// One item of the container, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemSummary {
    pub id: u32,
    pub flags: u32,
    /// Offset of the item header in the decrypted storage.
    pub offset: usize,
    /// Stored payload length.
    pub size: u32,
    /// Length after decompression.
    pub real_size: u32,
    pub compressed: bool,
}

/// The container header and its items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageSummary {
    /// The random prefix, hex.
    pub random_prefix: String,
    pub size: u32,
    pub flags: u32,
    pub count: u32,
    /// MD5 of the items, hex.
    pub md5: String,
    pub items: Vec<ItemSummary>,
}

/// A decrypted and decoded dynamic config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub family: Family,
    pub variant: Variant,
    /// The bot version the config announces (item 20001), `a.b.c.d`.
    pub version: Option<String>,
    /// The botnet name, when the format carries one (ZeuS keeps it in the base config).
    pub botnet: Option<String>,
    /// C2 gate URLs (item 20003, `url_server`).
    pub c2_urls: Vec<String>,
    /// Backup config URLs (item 20004, `AdvancedConfigs`) and, for Citadel, the webinjects URL.
    pub config_urls: Vec<String>,
    /// Bot update URL (item 20002, `url_loader`).
    pub loader_url: Option<String>,
    pub webfilters: Vec<WebFilter>,
    pub webdata_filters: Vec<WebDataFilter>,
    pub injects: Vec<Inject>,
    pub keys: Keys,
    pub storage: StorageSummary,
    pub diagnostics: Vec<Diagnostic>,
}

impl Config {
    /// An empty config of `variant`, for building test data.
    pub fn empty(variant: Variant) -> Config {
        Config {
            family: variant.family(),
            variant,
            version: None,
            botnet: None,
            c2_urls: Vec::new(),
            config_urls: Vec::new(),
            loader_url: None,
            webfilters: Vec::new(),
            webdata_filters: Vec::new(),
            injects: Vec::new(),
            keys: Keys::default(),
            storage: StorageSummary {
                random_prefix: String::new(),
                size: 0,
                flags: 0,
                count: 0,
                md5: String::new(),
                items: Vec::new(),
            },
            diagnostics: Vec::new(),
        }
    }
}

impl Variant {
    /// Stable name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Zeus2 => "zeus2",
            Variant::IceIx => "ice_ix",
            Variant::Evolution => "evolution",
            Variant::CitadelAes => "citadel_aes",
        }
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Zeus => "zeus",
            Family::Citadel => "citadel",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
