//! The errors of this crate.

/// Why a mask could not be compiled.
///
/// Only regular expressions can fail: every byte string is a valid ZeuS, post-data, context or
/// glob mask.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MaskError {
    /// The regular expression does not parse, uses a feature the `regex` crate lacks
    /// (look-around, back-references), or compiles past the size limits.
    #[error("invalid regex mask: {source}")]
    InvalidRegex {
        /// What the `regex` crate reported.
        #[source]
        source: regex::Error,
    },
}
