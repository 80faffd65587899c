//! ZeuS 2.x, ICE IX and ZeuS Evolution config decryption.
//!
//! Format facts (`configs.md` §1.6, §2.1): decrypt = RC4 (from a pristine copy of the 258-byte
//! state) over the whole file, then the backward visual XOR chain, then the BinStorage checks
//! (`48 <= len <= 10 MiB`, `48 <= size <= len`, MD5 of `[48, size)`). The three variants differ
//! only in the RC4 keystream; the MD5 tells which one holds.

use crate::binstorage::{
    self, check_size_against, parse_storage, visual_decrypt, ContainerError, Storage,
    ZEUS_HEADER_LEN, ZEUS_PREFIX_LEN,
};
use crate::decode::decode;
use crate::rc4::{Rc4State, Rc4Variant};
use crate::types::{Config, Keys, Variant};
use crate::{Attempt, ConfigError};

/// Decrypts `file` with one keystream variant and parses the storage.
pub fn decrypt_zeus_variant(
    file: &[u8],
    key: &Rc4State,
    variant: Rc4Variant,
) -> Result<Storage, ContainerError> {
    if file.len() < ZEUS_HEADER_LEN {
        return Err(ContainerError::TooShort {
            len: file.len(),
            need: ZEUS_HEADER_LEN,
        });
    }
    if file.len() > binstorage::MAX_STORAGE_LEN {
        return Err(ContainerError::TooLong {
            len: file.len(),
            max: binstorage::MAX_STORAGE_LEN,
        });
    }
    // The visual chain only looks one byte back, so the header can be checked before the
    // whole file is decrypted: a wrong key is refused after 48 bytes of keystream.
    let mut head = [0u8; ZEUS_HEADER_LEN];
    head.copy_from_slice(&file[..ZEUS_HEADER_LEN]);
    key.apply(variant, &mut head);
    visual_decrypt(&mut head);
    check_size_against(&head, ZEUS_PREFIX_LEN, file.len())?;
    let mut plain = file.to_vec();
    key.apply(variant, &mut plain);
    visual_decrypt(&mut plain);
    parse_storage(&plain, ZEUS_PREFIX_LEN)
}

/// Tries every keystream variant (ZeuS 2.x, ICE IX, Evolution) and returns the first whose
/// storage passes the size and MD5 checks.
pub fn decrypt_zeus(file: &[u8], key: &Rc4State) -> Result<(Variant, Storage), ConfigError> {
    let mut attempts = Vec::new();
    for v in Rc4Variant::ALL {
        match decrypt_zeus_variant(file, key, v) {
            Ok(storage) => return Ok((Variant::from_rc4(v), storage)),
            Err(error) => attempts.push(Attempt {
                variant: Variant::from_rc4(v),
                error,
            }),
        }
    }
    Err(ConfigError::NoVariant { attempts })
}

/// Decrypts and decodes a ZeuS-family config.bin.
pub fn extract_zeus(file: &[u8], key: &Rc4State) -> Result<Config, ConfigError> {
    let (variant, storage) = decrypt_zeus(file, key)?;
    let keys = Keys {
        rc4_state_sha256: Some(key.sha256_hex()),
        ..Keys::default()
    };
    Ok(decode(&storage, variant, keys))
}
