//! The reverse direction, to make test data: a [`Config`] back into an encrypted config.bin.
//!
//! Follows the kit's build steps as `configs.md` §1.6 gives them: items → MD5 over the items →
//! random prefix → visual encrypt → RC4 (ZeuS variants); for Citadel (§2.2) the reverse of its
//! decryption: final XOR → visual encrypt → 16-byte XOR → zero padding → AES-128-ECB.
//! Items come out in the kit builder's order (options, block lists, then the inject list).
//! Compression is on request, and unlike the kit's builder the flag is kept even when NRV2B
//! does not shrink the data, so that tests exercise the decompressor.

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;
use md5::{Digest, Md5};

use crate::binstorage::{item_flags, visual_encrypt, HEADER_TAIL_LEN, MAX_STORAGE_LEN};
use crate::citadel::{final_xor, CitadelKeys};
use crate::decode::{self, FlagTable};
use crate::nrv2b;
use crate::rc4::Rc4State;
use crate::types::{Config, Family, Variant};

/// How an item's payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// NRV2B with literals only.
    Literals,
    /// NRV2B with greedy matches.
    Lz,
}

/// Why a config cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("version {0:?} is not a.b.c.d with each part 0..=255")]
    Version(String),
    #[error("{0} has no slot in a {1} config")]
    Unsupported(&'static str, Family),
    #[error("string {0:?} cannot be stored: it is empty inside a list or contains a NUL")]
    BadString(String),
    #[error("inject #{0} record is over 65535 bytes")]
    RecordTooLarge(usize),
    #[error("inject #{0} has a block over 65531 bytes")]
    BlockTooLarge(usize),
    #[error("storage of {0} bytes is over the {MAX_STORAGE_LEN}-byte limit")]
    TooLarge(usize),
    #[error("variant {0} is not built by this function")]
    WrongVariant(Variant),
}

struct BuildItem {
    id: u32,
    flags: u32,
    data: Vec<u8>,
    compression: Compression,
}

/// Items to pack into a storage.
#[derive(Default)]
pub struct StorageBuilder {
    items: Vec<BuildItem>,
}

impl StorageBuilder {
    pub fn new() -> StorageBuilder {
        StorageBuilder::default()
    }

    /// Adds an item; `COMPRESSED` is added to `flags` when `compression` is not `None` and
    /// `data` is not empty (the kit never compresses empty payloads).
    pub fn item(
        mut self,
        id: u32,
        flags: u32,
        data: Vec<u8>,
        compression: Compression,
    ) -> StorageBuilder {
        self.items.push(BuildItem {
            id,
            flags,
            data,
            compression,
        });
        self
    }

    /// The plaintext storage: `prefix`, size, flags 0, count, MD5, items.
    pub fn to_plain(&self, prefix: &[u8]) -> Result<Vec<u8>, BuildError> {
        let mut body = Vec::new();
        for it in &self.items {
            let (flags, payload) = match it.compression {
                _ if it.data.is_empty() => (it.flags & !item_flags::COMPRESSED, Vec::new()),
                Compression::None => (it.flags & !item_flags::COMPRESSED, it.data.clone()),
                Compression::Literals => (
                    it.flags | item_flags::COMPRESSED,
                    nrv2b::compress_literals(&it.data),
                ),
                Compression::Lz => (it.flags | item_flags::COMPRESSED, nrv2b::compress(&it.data)),
            };
            let size =
                u32::try_from(payload.len()).map_err(|_| BuildError::TooLarge(payload.len()))?;
            let real =
                u32::try_from(it.data.len()).map_err(|_| BuildError::TooLarge(it.data.len()))?;
            for v in [it.id, flags, size, real] {
                body.extend_from_slice(&v.to_le_bytes());
            }
            body.extend_from_slice(&payload);
        }
        let total = prefix.len() + HEADER_TAIL_LEN + body.len();
        if total > MAX_STORAGE_LEN {
            return Err(BuildError::TooLarge(total));
        }
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(prefix);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(self.items.len() as u32).to_le_bytes());
        out.extend_from_slice(&Md5::digest(&body));
        out.extend_from_slice(&body);
        debug_assert_eq!(out.len(), total);
        Ok(out)
    }
}

/// Fixes the `size` and MD5 fields of a plaintext storage (prefix of `prefix_len` bytes) after
/// its items were edited, so that it passes the header checks. For tests and fuzzing.
pub fn seal(plain: &mut [u8], prefix_len: usize) -> Result<(), BuildError> {
    let header_len = prefix_len + HEADER_TAIL_LEN;
    if plain.len() < header_len || plain.len() > MAX_STORAGE_LEN {
        return Err(BuildError::TooLarge(plain.len()));
    }
    let size = plain.len() as u32;
    plain[prefix_len..prefix_len + 4].copy_from_slice(&size.to_le_bytes());
    let md5 = Md5::digest(&plain[header_len..]);
    plain[prefix_len + 12..header_len].copy_from_slice(&md5);
    Ok(())
}

fn parse_version(v: &str) -> Result<u32, BuildError> {
    let parts: Vec<u8> = v
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| BuildError::Version(v.to_string()))?;
    let b: [u8; 4] = parts
        .try_into()
        .map_err(|_| BuildError::Version(v.to_string()))?;
    Ok(u32::from_be_bytes(b))
}

fn plain_string(s: &str) -> Result<Vec<u8>, BuildError> {
    if s.contains('\0') {
        return Err(BuildError::BadString(s.to_string()));
    }
    Ok(s.as_bytes().to_vec())
}

fn multi_string<'a>(list: impl IntoIterator<Item = &'a str>) -> Result<Vec<u8>, BuildError> {
    let mut out = Vec::new();
    for s in list {
        if s.is_empty() || s.contains('\0') {
            return Err(BuildError::BadString(s.to_string()));
        }
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    out.push(0);
    Ok(out)
}

fn attribute<'a>(inj: &'a dropwatch_model::Inject, name: &str) -> Option<&'a str> {
    inj.attributes
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An inject record and, unless it is a fake, its block list.
fn inject_record(
    inj: &dropwatch_model::Inject,
    index: usize,
    family: Family,
) -> Result<(Vec<u8>, Option<Vec<u8>>), BuildError> {
    let table = FlagTable::for_family(family);
    let mut flags: u16 = 0;
    for c in inj.flags.chars() {
        if let Some((_, bit)) = table
            .letters
            .iter()
            .find(|(l, _)| l.eq_ignore_ascii_case(&c))
        {
            flags |= bit;
        }
    }
    let fake = attribute(inj, "fake");
    match (fake, family) {
        (Some(_), Family::Citadel) => return Err(BuildError::Unsupported("a web fake", family)),
        (Some("mirror"), _) => flags |= table.is_mirror_fake,
        (Some(_), _) => flags |= table.is_fake,
        (None, _) if flags & table.letters[2].1 == 0 => flags |= table.is_inject,
        (None, _) => {}
    }
    if let Some(u) = attribute(inj, "unknown_flags")
        .and_then(|h| u16::from_str_radix(h.trim_start_matches("0x"), 16).ok())
    {
        flags |= u;
    }
    let fake_url = attribute(inj, "fake_url").map(str::to_string);
    let strings: Vec<Option<&String>> = match family {
        Family::Zeus => vec![
            Some(&inj.url_mask),
            fake_url.as_ref(),
            inj.post_blacklist.as_ref(),
            inj.post_whitelist.as_ref(),
            inj.url_block.as_ref(),
            inj.matched_context.as_ref(),
        ],
        Family::Citadel => {
            if inj.url_block.is_some() {
                return Err(BuildError::Unsupported("an inject's block-on URL", family));
            }
            vec![
                Some(&inj.url_mask),
                inj.post_blacklist.as_ref(),
                inj.post_whitelist.as_ref(),
                inj.matched_context.as_ref(),
            ]
        }
    };
    let hdr_len = table.header_words * 2;
    let mut words = vec![flags, 0];
    let mut tail = Vec::new();
    for s in strings {
        match s {
            None => words.push(0),
            Some(s) => {
                let at = u16::try_from(hdr_len + tail.len())
                    .map_err(|_| BuildError::RecordTooLarge(index))?;
                words.push(at);
                tail.extend_from_slice(&plain_string(s)?);
                tail.push(0);
            }
        }
    }
    let size =
        u16::try_from(hdr_len + tail.len()).map_err(|_| BuildError::RecordTooLarge(index))?;
    words[1] = size;
    let mut rec: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    rec.extend_from_slice(&tail);
    if fake.is_some() {
        return Ok((rec, None));
    }
    let mut blocks = Vec::new();
    for b in &inj.blocks {
        for part in [&b.before, &b.after, &b.inject] {
            let size =
                u16::try_from(part.len() + 4).map_err(|_| BuildError::BlockTooLarge(index))?;
            blocks.extend_from_slice(&size.to_le_bytes());
            blocks.extend_from_slice(&0u16.to_le_bytes());
            blocks.extend_from_slice(part);
        }
    }
    Ok((rec, Some(blocks)))
}

/// The items of `cfg`, in the kit builder's order.
pub fn config_items(cfg: &Config, compression: Compression) -> Result<StorageBuilder, BuildError> {
    let family = cfg.variant.family();
    let opt = item_flags::IS_OPTION;
    let mut b = StorageBuilder::new();
    if let Some(v) = &cfg.version {
        b = b.item(
            decode::CFGID_LAST_VERSION,
            opt,
            parse_version(v)?.to_le_bytes().to_vec(),
            Compression::None,
        );
    }
    if let Some(u) = &cfg.loader_url {
        b = b.item(
            decode::CFGID_LAST_VERSION_URL,
            opt,
            plain_string(u)?,
            compression,
        );
    }
    match cfg.c2_urls.as_slice() {
        [] => {}
        [u] => {
            b = b.item(
                decode::CFGID_URL_SERVER_0,
                opt,
                plain_string(u)?,
                compression,
            )
        }
        _ => return Err(BuildError::Unsupported("more than one C2 URL", family)),
    }
    if cfg.botnet.is_some() {
        return Err(BuildError::Unsupported("a botnet name", family));
    }
    if !cfg.config_urls.is_empty() {
        b = b.item(
            decode::CFGID_URL_ADV_SERVERS,
            opt,
            multi_string(cfg.config_urls.iter().map(String::as_str))?,
            compression,
        );
    }
    if !cfg.webfilters.is_empty() {
        b = b.item(
            decode::CFGID_HTTP_FILTER,
            opt,
            multi_string(cfg.webfilters.iter().map(|f| f.filter.as_str()))?,
            compression,
        );
    }
    if !cfg.webdata_filters.is_empty() {
        let joined: Vec<String> = cfg
            .webdata_filters
            .iter()
            .map(|f| f.variables.join(";"))
            .collect();
        let list = cfg
            .webdata_filters
            .iter()
            .zip(&joined)
            .flat_map(|(f, v)| [f.url_mask.as_str(), v.as_str()]);
        b = b.item(
            decode::CFGID_HTTP_POSTDATA_FILTER,
            opt,
            multi_string(list)?,
            compression,
        );
    }
    if !cfg.injects.is_empty() {
        let mut list = Vec::new();
        for (i, inj) in cfg.injects.iter().enumerate() {
            let (rec, blocks) = inject_record(inj, i + 1, family)?;
            list.extend_from_slice(&rec);
            if let Some(blocks) = blocks {
                b = b.item(
                    (i + 1) as u32,
                    item_flags::IS_HTTP_INJECT,
                    blocks,
                    compression,
                );
            }
        }
        b = b.item(decode::CFGID_HTTP_INJECTS_LIST, opt, list, compression);
    }
    Ok(b)
}

/// Visual-encrypts and RC4-encrypts a plaintext storage with a ZeuS keystream variant.
pub fn encrypt_zeus(plain: &[u8], key: &Rc4State, variant: Variant) -> Result<Vec<u8>, BuildError> {
    let rc4 = variant.rc4().ok_or(BuildError::WrongVariant(variant))?;
    let mut out = plain.to_vec();
    visual_encrypt(&mut out);
    key.apply(rc4, &mut out);
    Ok(out)
}

/// Builds a ZeuS 2.x / ICE IX / Evolution config.bin (variant from `cfg.variant`).
pub fn build_zeus(
    cfg: &Config,
    key: &Rc4State,
    compression: Compression,
    random_prefix: [u8; 20],
) -> Result<Vec<u8>, BuildError> {
    let plain = config_items(cfg, compression)?.to_plain(&random_prefix)?;
    encrypt_zeus(&plain, key, cfg.variant)
}

/// Encrypts a plaintext Citadel storage (prefix included) the way [`crate::citadel`] decrypts.
pub fn encrypt_citadel(plain: &[u8], keys: &CitadelKeys) -> Vec<u8> {
    let mut out = plain.to_vec();
    if let Some(salt) = keys.salt {
        final_xor(&mut out, salt);
    }
    visual_encrypt(&mut out);
    for (b, k) in out.iter_mut().zip(keys.aes_xor.iter().cycle()) {
        *b ^= k;
    }
    out.resize(out.len().div_ceil(16) * 16, 0);
    let cipher = Aes128::new(GenericArray::from_slice(&keys.aes_key()));
    for block in out.chunks_exact_mut(16) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    out
}

/// Builds a Citadel dynamic config with a 32-byte random prefix.
pub fn build_citadel(
    cfg: &Config,
    keys: &CitadelKeys,
    compression: Compression,
    random_prefix: [u8; 32],
) -> Result<Vec<u8>, BuildError> {
    if cfg.variant != Variant::CitadelAes {
        return Err(BuildError::WrongVariant(cfg.variant));
    }
    let plain = config_items(cfg, compression)?.to_plain(&random_prefix)?;
    Ok(encrypt_citadel(&plain, keys))
}
