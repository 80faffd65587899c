//! The BinStorage container and the "visual" XOR chain.
//!
//! Format facts (`configs.md` §1.1, §1.2, §2.2):
//! * `_visualEncrypt`: `buf[i] ^= buf[i-1]` forward; `_visualDecrypt`: `plain[i] = c[i] ^ c[i-1]`,
//!   `plain[0] = c[0]`.
//! * Header (ZeuS, 48 bytes): `randData[20], size u32, flags u32, count u32, md5[16]`. `size` is the
//!   total storage length including the header, `md5` is MD5 of bytes `[48, size)`. Citadel keeps
//!   the 28 bytes after a random prefix of another length (32 in newer builds), so the parser
//!   takes the prefix length as a parameter and `size` still counts from byte 0.
//! * `_unpack` accepts `48 <= len <= 10 MiB` and `size <= len` (trailing bytes tolerated); the
//!   MD5 is the "key is right" oracle.
//! * Items `id u32, flags u32, size u32, realSize u32` + `size` payload bytes, back to back. The
//!   walk is bounded by `size`, not by `count`: it stops when the next item header or payload
//!   would cross `size`. A payload with `ITEMF_COMPRESSED` is NRV2B le32 that must produce
//!   exactly `realSize` bytes, whatever `size` is.

use std::borrow::Cow;

use md5::{Digest, Md5};

use crate::diag::{Diagnostic, Diagnostics};
use crate::nrv2b::{self, Nrv2bError};

/// Length of the random prefix of a ZeuS 2.x storage header.
pub const ZEUS_PREFIX_LEN: usize = 20;
/// `size`, `flags`, `count`, `md5`: the part of the header after the random prefix.
pub const HEADER_TAIL_LEN: usize = 28;
/// The whole ZeuS 2.x header.
pub const ZEUS_HEADER_LEN: usize = ZEUS_PREFIX_LEN + HEADER_TAIL_LEN;
/// An item's header.
pub const ITEM_HEADER_LEN: usize = 16;
/// `BINSTORAGE_MAX_SIZE`: larger storages are refused.
pub const MAX_STORAGE_LEN: usize = 10 * 1024 * 1024;
/// At most this many items are read; each costs at least 16 bytes, so only a hostile storage
/// comes near it.
pub const MAX_ITEMS: usize = 65_536;
/// Largest `realSize` decompressed for one item.
pub const MAX_ITEM_REAL_SIZE: usize = MAX_STORAGE_LEN;

/// Item flags (`V:common/binstorage.h`).
pub mod item_flags {
    pub const COMPRESSED: u32 = 0x0000_0001;
    pub const COMBINE_ADD: u32 = 0x0001_0000;
    pub const COMBINE_OVERWRITE: u32 = 0x0002_0000;
    pub const COMBINE_REPLACE: u32 = 0x0004_0000;
    pub const COMBINE_DELETE: u32 = 0x0008_0000;
    pub const COMBINE_MASK: u32 = 0x000F_0000;
    pub const IS_OPTION: u32 = 0x1000_0000;
    pub const IS_SETTING: u32 = 0x2000_0000;
    pub const IS_HTTP_INJECT: u32 = 0x4000_0000;
    pub const IS_MASK: u32 = 0x7000_0000;
}

/// `_visualEncrypt`: each byte XORed with the already-encrypted byte before it.
pub fn visual_encrypt(buf: &mut [u8]) {
    for i in 1..buf.len() {
        buf[i] ^= buf[i - 1];
    }
}

/// `_visualDecrypt`: each byte XORed with the ciphertext byte before it (walked backwards).
pub fn visual_decrypt(buf: &mut [u8]) {
    for i in (1..buf.len()).rev() {
        buf[i] ^= buf[i - 1];
    }
}

/// Why a decrypted buffer is not a valid storage. Each names the check and the offset of the
/// field it read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    #[error("length check failed: {len} bytes is shorter than the {need}-byte storage header")]
    TooShort { len: usize, need: usize },
    #[error("length check failed: {len} bytes is over the {max}-byte storage limit")]
    TooLong { len: usize, max: usize },
    #[error("size check failed at offset {offset}: header size {size} is outside [{min}, {len}]")]
    Size {
        offset: usize,
        size: u32,
        min: usize,
        len: usize,
    },
    #[error("md5 check failed at offset {offset}: stored {stored}, computed {computed} over bytes {from}..{to}")]
    Md5 {
        offset: usize,
        stored: String,
        computed: String,
        from: usize,
        to: usize,
    },
}

/// Why an item's data could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ItemError {
    #[error("item {id} at offset {offset}: real size {real_size} is over the {max}-byte limit")]
    RealSizeTooLarge {
        id: u32,
        offset: usize,
        real_size: u32,
        max: usize,
    },
    #[error("item {id} at offset {offset}: {source}")]
    Decompress {
        id: u32,
        offset: usize,
        #[source]
        source: Nrv2bError,
    },
}

/// The header fields of a verified storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageHeader {
    /// The random prefix (`randData`), 20 bytes for ZeuS.
    pub random_prefix: Vec<u8>,
    pub size: u32,
    pub flags: u32,
    pub count: u32,
    pub md5: [u8; 16],
}

/// One item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: u32,
    pub flags: u32,
    /// Offset of the item header in the storage.
    pub offset: usize,
    /// `realSize`: the length after decompression.
    pub real_size: u32,
    /// The stored payload (`size` bytes), compressed when [`Item::is_compressed`].
    pub payload: Vec<u8>,
}

impl Item {
    pub fn is_compressed(&self) -> bool {
        self.flags & item_flags::COMPRESSED != 0
    }

    /// The item's data: the payload, or its NRV2B decompression to exactly `realSize` bytes.
    /// An uncompressed item whose `realSize` differs from its `size` is read as stored, as the
    /// bot does (`_getItemData` copies `size` bytes).
    pub fn data(&self) -> Result<Cow<'_, [u8]>, ItemError> {
        if !self.is_compressed() {
            return Ok(Cow::Borrowed(&self.payload));
        }
        let real = self.real_size as usize;
        if real > MAX_ITEM_REAL_SIZE {
            return Err(ItemError::RealSizeTooLarge {
                id: self.id,
                offset: self.offset,
                real_size: self.real_size,
                max: MAX_ITEM_REAL_SIZE,
            });
        }
        nrv2b::decompress(&self.payload, real)
            .map(Cow::Owned)
            .map_err(|source| ItemError::Decompress {
                id: self.id,
                offset: self.offset,
                source,
            })
    }
}

/// A verified storage: its header, its items in storage order, and what the walk noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub header: StorageHeader,
    pub items: Vec<Item>,
    pub diagnostics: Vec<Diagnostic>,
}

fn le32(buf: &[u8], at: usize) -> Option<u32> {
    buf.get(at..)?
        .first_chunk::<4>()
        .map(|b| u32::from_le_bytes(*b))
}

/// Checks the header of a plaintext storage whose random prefix is `prefix_len` bytes: length,
/// `size` field, MD5. Returns `size`. Cheap to call on a candidate before parsing items.
pub fn check_header(plain: &[u8], prefix_len: usize) -> Result<usize, ContainerError> {
    let header_len = prefix_len + HEADER_TAIL_LEN;
    if plain.len() < header_len {
        return Err(ContainerError::TooShort {
            len: plain.len(),
            need: header_len,
        });
    }
    // A longer random prefix (Citadel) does not eat into the item budget.
    let max = MAX_STORAGE_LEN.saturating_add(prefix_len.saturating_sub(ZEUS_PREFIX_LEN));
    if plain.len() > max {
        return Err(ContainerError::TooLong {
            len: plain.len(),
            max,
        });
    }
    check_size(plain, prefix_len)?;
    let size = le32(plain, prefix_len).unwrap_or(0) as usize;
    let md5_at = prefix_len + 12;
    let stored = &plain[md5_at..md5_at + 16];
    let computed = Md5::digest(&plain[header_len..size]);
    if stored != computed.as_slice() {
        return Err(ContainerError::Md5 {
            offset: md5_at,
            stored: hex::encode(stored),
            computed: hex::encode(computed),
            from: header_len,
            to: size,
        });
    }
    Ok(size)
}

/// The `size` check alone (needs only the header bytes): `prefix + 28 <= size <= len`.
pub(crate) fn check_size(plain: &[u8], prefix_len: usize) -> Result<(), ContainerError> {
    check_size_against(plain, prefix_len, plain.len())
}

/// The `size` check against a total length `len` that `head` may be a prefix of.
pub(crate) fn check_size_against(
    head: &[u8],
    prefix_len: usize,
    len: usize,
) -> Result<(), ContainerError> {
    let header_len = prefix_len + HEADER_TAIL_LEN;
    let size = le32(head, prefix_len).ok_or(ContainerError::TooShort {
        len: head.len(),
        need: header_len,
    })?;
    if (size as usize) < header_len || size as usize > len {
        return Err(ContainerError::Size {
            offset: prefix_len,
            size,
            min: header_len,
            len,
        });
    }
    Ok(())
}

/// Parses a plaintext storage (after RC4 and the visual chain): header checks, then the item
/// walk. Items are not decompressed here ([`Item::data`] does it on demand).
pub fn parse_storage(plain: &[u8], prefix_len: usize) -> Result<Storage, ContainerError> {
    let size = check_header(plain, prefix_len)?;
    let header_len = prefix_len + HEADER_TAIL_LEN;
    let mut diags = Diagnostics::default();
    let mut md5 = [0u8; 16];
    md5.copy_from_slice(&plain[prefix_len + 12..prefix_len + 28]);
    let header = StorageHeader {
        random_prefix: plain[..prefix_len].to_vec(),
        size: size as u32,
        flags: le32(plain, prefix_len + 4).unwrap_or(0),
        count: le32(plain, prefix_len + 8).unwrap_or(0),
        md5,
    };
    if header.flags != 0 {
        diags.push(Diagnostic::at(
            "header_flags",
            prefix_len + 4,
            format!("storage flags 0x{:08x}; configs carry 0", header.flags),
        ));
    }
    if plain.len() > size {
        diags.push(Diagnostic::at(
            "trailing_bytes",
            size,
            format!(
                "{} bytes after the storage size {size} ignored",
                plain.len() - size
            ),
        ));
    }

    let body = &plain[..size];
    let mut items = Vec::new();
    let mut off = header_len;
    // `_getNextItem`: the first item exists only if count > 0 and there is room for a header.
    if header.count > 0 {
        loop {
            let Some(hdr_end) = off.checked_add(ITEM_HEADER_LEN).filter(|&e| e <= size) else {
                if off < size {
                    diags.push(Diagnostic::at(
                        "item_truncated",
                        off,
                        format!(
                            "{} bytes at the end of the storage are too short for an item header",
                            size - off
                        ),
                    ));
                }
                break;
            };
            let (id, flags, stored, real_size) = match (
                le32(body, off),
                le32(body, off + 4),
                le32(body, off + 8),
                le32(body, off + 12),
            ) {
                (Some(a), Some(b), Some(c), Some(d)) => (a, b, c, d),
                _ => break,
            };
            let Some(end) = hdr_end.checked_add(stored as usize).filter(|&e| e <= size) else {
                diags.push(Diagnostic::at(
                    "item_truncated",
                    off,
                    format!("item {id} payload of {stored} bytes crosses the storage end at {size}; walk stopped"),
                ));
                break;
            };
            if items.len() >= MAX_ITEMS {
                diags.push(Diagnostic::at(
                    "too_many_items",
                    off,
                    format!("more than {MAX_ITEMS} items; the rest ignored"),
                ));
                break;
            }
            items.push(Item {
                id,
                flags,
                offset: off,
                real_size,
                payload: body[hdr_end..end].to_vec(),
            });
            off = end;
        }
    } else if size > header_len {
        diags.push(Diagnostic::at(
            "count_mismatch",
            header_len,
            format!("count is 0 but {} bytes of items follow", size - header_len),
        ));
    }
    if header.count > 0 && items.len() != header.count as usize {
        diags.push(Diagnostic::at(
            "count_mismatch",
            prefix_len + 8,
            format!(
                "header count {} but the walk found {} items",
                header.count,
                items.len()
            ),
        ));
    }
    Ok(Storage {
        header,
        items,
        diagnostics: diags.into_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{Compression, StorageBuilder};

    #[test]
    fn visual_chain_round_trips_and_matches_the_definition() {
        let plain = b"visual encrypt".to_vec();
        let mut c = plain.clone();
        visual_encrypt(&mut c);
        for i in 1..c.len() {
            assert_eq!(c[i], plain[i] ^ c[i - 1]);
        }
        assert_eq!(c[0], plain[0]);
        visual_decrypt(&mut c);
        assert_eq!(c, plain);
        visual_decrypt(&mut []);
    }

    fn sample() -> Vec<u8> {
        StorageBuilder::new()
            .item(
                20002,
                item_flags::IS_OPTION,
                b"http://a.example/x".to_vec(),
                Compression::None,
            )
            .item(
                20005,
                item_flags::IS_OPTION,
                b"!*a*\0*b*\0\0".to_vec(),
                Compression::Lz,
            )
            .to_plain(&[7u8; ZEUS_PREFIX_LEN])
            .expect("small storage")
    }

    #[test]
    fn parses_items_and_decompresses_on_demand() {
        let plain = sample();
        let st = parse_storage(&plain, ZEUS_PREFIX_LEN).expect("valid");
        assert_eq!(st.header.size as usize, plain.len());
        assert_eq!(st.header.count, 2);
        assert_eq!(st.items.len(), 2);
        assert_eq!(st.items[0].offset, ZEUS_HEADER_LEN);
        assert_eq!(
            st.items[0].data().expect("raw").as_ref(),
            b"http://a.example/x"
        );
        assert!(st.items[1].is_compressed());
        assert_eq!(
            st.items[1].data().expect("nrv2b").as_ref(),
            b"!*a*\0*b*\0\0"
        );
        assert!(st.diagnostics.is_empty(), "{:?}", st.diagnostics);
    }

    #[test]
    fn each_header_check_names_itself_and_its_offset() {
        let plain = sample();
        assert_eq!(
            parse_storage(&plain[..47], 20),
            Err(ContainerError::TooShort { len: 47, need: 48 })
        );
        let mut big = plain.clone();
        big[20..24].copy_from_slice(&(plain.len() as u32 + 1).to_le_bytes());
        let e = parse_storage(&big, 20).expect_err("size beyond length");
        assert!(matches!(e, ContainerError::Size { offset: 20, .. }), "{e}");
        assert!(
            e.to_string().starts_with("size check failed at offset 20"),
            "{e}"
        );
        let mut flipped = plain.clone();
        flipped[40] ^= 0x10;
        let e = parse_storage(&flipped, 20).expect_err("md5");
        assert!(
            matches!(
                e,
                ContainerError::Md5 {
                    offset: 32,
                    from: 48,
                    ..
                }
            ),
            "{e}"
        );
        let mut body = plain.clone();
        let last = body.len() - 1;
        body[last] ^= 1;
        assert!(matches!(
            parse_storage(&body, 20),
            Err(ContainerError::Md5 { .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_tolerated_with_a_diagnostic() {
        let mut plain = sample();
        plain.extend_from_slice(&[0xAA; 5]);
        let st = parse_storage(&plain, 20).expect("trailing tolerated");
        assert_eq!(st.items.len(), 2);
        assert!(st.diagnostics.iter().any(|d| d.code == "trailing_bytes"));
    }

    #[test]
    fn walk_is_bounded_by_size_and_reports_a_short_item() {
        // An item claiming more payload than the storage holds, with a valid MD5.
        let mut plain = vec![0u8; 48];
        plain.extend_from_slice(&1u32.to_le_bytes());
        plain.extend_from_slice(&0u32.to_le_bytes());
        plain.extend_from_slice(&1000u32.to_le_bytes());
        plain.extend_from_slice(&1000u32.to_le_bytes());
        plain.extend_from_slice(b"abc");
        let size = plain.len() as u32;
        plain[20..24].copy_from_slice(&size.to_le_bytes());
        plain[28..32].copy_from_slice(&1u32.to_le_bytes());
        let md5 = Md5::digest(&plain[48..]);
        plain[32..48].copy_from_slice(&md5);
        let st = parse_storage(&plain, 20).expect("header valid");
        assert!(st.items.is_empty());
        assert!(st
            .diagnostics
            .iter()
            .any(|d| d.code == "item_truncated" && d.offset == Some(48)));
        assert!(st.diagnostics.iter().any(|d| d.code == "count_mismatch"));
    }

    #[test]
    fn oversized_real_size_is_refused_before_allocating() {
        let item = Item {
            id: 5,
            flags: item_flags::COMPRESSED,
            offset: 48,
            real_size: u32::MAX,
            payload: vec![0; 8],
        };
        assert!(matches!(
            item.data(),
            Err(ItemError::RealSizeTooLarge { id: 5, .. })
        ));
    }
}
