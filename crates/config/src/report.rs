//! The stable JSON of `dropwatch config extract` (documented in `docs/config-json.md`).
//!
//! A [`Report`] is a decrypted [`Config`], or what a bot image's base config alone tells, or
//! both. Field order is the JSON order; fields are only ever added. For a config.bin alone it
//! serialises exactly as [`Config`] does (`base_config` is then absent).

use dropwatch_model::Inject;
use serde::{Deserialize, Serialize};

use crate::basecfg::{BaseConfig, BaseConfigSummary};
use crate::diag::Diagnostic;
use crate::types::{Config, Family, Keys, StorageSummary, Variant, WebDataFilter, WebFilter};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub family: Family,
    /// The cipher variant; `null` for a ZeuS image without a config.bin (the keystream is
    /// only known once a config decrypts).
    pub variant: Option<Variant>,
    pub version: Option<String>,
    pub botnet: Option<String>,
    pub c2_urls: Vec<String>,
    pub config_urls: Vec<String>,
    pub loader_url: Option<String>,
    pub webfilters: Vec<WebFilter>,
    pub webdata_filters: Vec<WebDataFilter>,
    pub injects: Vec<Inject>,
    pub keys: Keys,
    /// The decrypted container, when there was a config.bin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSummary>,
    /// Where and what the base config was, when the input was a bot image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_config: Option<BaseConfigSummary>,
    pub diagnostics: Vec<Diagnostic>,
    /// The files the report was made from (bot image, config.bin), filled in by whoever read
    /// them: with it a report can be stored later, on another machine, with its provenance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<SampleRef>,
}

/// One input file of a report, by hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleRef {
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// `pe` (a bot image) or `config_bin`.
    pub kind: String,
    /// The file's name when it was read (no directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl From<Config> for Report {
    fn from(c: Config) -> Report {
        Report {
            family: c.family,
            variant: Some(c.variant),
            version: c.version,
            botnet: c.botnet,
            c2_urls: c.c2_urls,
            config_urls: c.config_urls,
            loader_url: c.loader_url,
            webfilters: c.webfilters,
            webdata_filters: c.webdata_filters,
            injects: c.injects,
            keys: c.keys,
            storage: Some(c.storage),
            base_config: None,
            diagnostics: c.diagnostics,
            samples: Vec::new(),
        }
    }
}

impl Report {
    /// What a bot image tells without its config.bin.
    pub fn from_base(base: &BaseConfig) -> Report {
        Report {
            family: base.family,
            variant: (base.family == Family::Citadel).then_some(Variant::CitadelAes),
            version: None,
            botnet: base.botnet.clone(),
            c2_urls: Vec::new(),
            config_urls: base.config_urls(),
            loader_url: None,
            webfilters: Vec::new(),
            webdata_filters: Vec::new(),
            injects: Vec::new(),
            keys: base.keys(),
            storage: None,
            base_config: Some(base.summary()),
            diagnostics: base.diagnostics.clone(),
            samples: Vec::new(),
        }
    }

    /// A config decrypted with the keys of `base` (already merged by
    /// [`crate::basecfg::extract_with_base`]), with the base config's location.
    pub fn with_base(cfg: Config, base: &BaseConfig) -> Report {
        let mut r = Report::from(cfg);
        r.base_config = Some(base.summary());
        r
    }
}
