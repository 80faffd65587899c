//! ZeuS-family dynamic config (`config.bin`) decryption and parsing: bytes in, a typed
//! [`Config`] out.
//!
//! The format facts come from `../shared/design/formats/configs.md` (cited per module):
//! * [`rc4`]: RC4 keyed by the builder's text key or by a bot's 258-byte state, with the ZeuS 2.x,
//!   ICE IX and Evolution keystreams, and Citadel's RC4+.
//! * [`binstorage`]: the visual XOR chain and the BinStorage container (48-byte header, MD5 over
//!   the items as the "key is right" oracle, 16-byte item headers).
//! * [`nrv2b`]: UCL NRV2B le32 decompression for `ITEMF_COMPRESSED` items.
//! * [`decode`]: items to a [`Config`]: version, URLs, WebFilters, WebDataFilters and the binary
//!   inject records with their blocks, as [`dropwatch_model::Inject`]s.
//! * [`zeus`]: ZeuS 2.x / ICE IX / Evolution decryption (RC4 over the file, then the visual
//!   chain), trying every keystream variant on the MD5 oracle.
//! * [`citadel`]: Citadel "AES+" decryption.
//! * [`pe`] and [`basecfg`]: the base config in an unpacked PE32 bot image (code pattern,
//!   XOR with section 2, RC4 permutation search, URLs, botnet, Citadel login key / salt / AES
//!   XOR key), and decryption of a config.bin with nothing but the image.
//! * [`builder`]: the reverse, to make test data; [`pe_builder`]: synthetic bot images.
//! * [`report`]: the stable JSON of `dropwatch config extract`.
//!
//! **Invariants:** no I/O; no panic on any input; memory bounded (a storage is at most 10 MiB,
//! decompression is capped per item and per config, counts from the input are capped); every
//! refusal names the check that failed and the offset it read.

pub mod basecfg;
pub mod binstorage;
pub mod builder;
pub mod citadel;
pub mod decode;
mod diag;
pub mod nrv2b;
pub mod pe;
pub mod pe_builder;
pub mod rc4;
pub mod report;
mod types;
pub mod zeus;

pub use basecfg::{extract_with_base, locate, BaseConfig, BaseConfigError, BaseConfigSummary};
pub use binstorage::{ContainerError, ItemError, Storage};
pub use citadel::{extract_citadel, CitadelKeys};
pub use diag::{Diagnostic, MAX_DIAGNOSTICS};
pub use nrv2b::Nrv2bError;
pub use pe::PeError;
pub use rc4::{Rc4State, Rc4StateLenError, Rc4Variant, RC4_STATE_LEN};
pub use report::{Report, SampleRef};
pub use types::{
    Config, Family, ItemSummary, Keys, StorageSummary, Variant, WebDataFilter, WebFilter,
    WebFilterAction,
};
pub use zeus::{decrypt_zeus, extract_zeus};

/// One variant tried and the check it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub variant: Variant,
    pub error: ContainerError,
}

/// Why a config did not decrypt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No keystream variant produced a storage that passes the checks (wrong key, or not a
    /// config of a supported variant). Each attempt says which check failed.
    #[error("config does not decrypt with this key: {}", summarize(.attempts))]
    NoVariant { attempts: Vec<Attempt> },
    #[error("aes length check failed: {len} bytes is not a positive multiple of 16")]
    AesLength { len: usize },
    #[error("length check failed: {len} bytes is over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    /// Citadel: no random-prefix length gives a header whose size and MD5 check out.
    #[error("citadel storage header not found at prefix lengths 0..={max_prefix}: {}", match .first_failure { Some(e) => e.to_string(), None => "no size field fits the length".to_string() })]
    NoStorageHeader {
        max_prefix: usize,
        first_failure: Option<ContainerError>,
    },
    /// No RC4 state recovered from the bot image decrypts the config (as ZeuS, or as Citadel
    /// when a login key was found). Each attempt: the state's offset in the base config, and
    /// the check that failed.
    #[error("config does not decrypt with the keys from the bot image: {}", summarize_base(.attempts))]
    BaseKeys { attempts: Vec<(usize, ConfigError)> },
}

fn summarize_base(attempts: &[(usize, ConfigError)]) -> String {
    if attempts.is_empty() {
        return "no key to try".to_string();
    }
    attempts
        .iter()
        .map(|(off, e)| format!("[rc4 state at base config offset {off}] {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn summarize(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("{}: {}", a.variant, a.error))
        .collect::<Vec<_>>()
        .join("; ")
}
