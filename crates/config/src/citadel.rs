//! Citadel 1.3.x dynamic config ("AES+").
//!
//! Format facts (`configs.md` §2.2, from JPCERT's `citadel_decryptor` mode 1):
//! * AES key = RC4+(base-config RC4 state, login key)(MD5(login key ASCII)): the 16-byte MD5
//!   digest encrypted with the standard keystream, each byte also XORed with
//!   `login_key[k % len]`.
//! * Decrypt = AES-128-ECB-decrypt(file) → XOR every byte with `aes_xor[i % 16]` → visual
//!   decrypt → (newer builds, when the salt is known) final XOR `b[0x20 + i] ^= salt_le[i % 4] ^
//!   b[i % 32]` → BinStorage whose random prefix has a build-dependent length; the header is
//!   found by scanning prefix lengths for a `size` that fits the data length and whose MD5
//!   checks out.
//!
//! Nothing here was checked against a real Citadel config (no public encrypted vector with
//! its keys is known to us); the round trip with [`crate::builder::build_citadel`] checks
//! only that the two directions agree with the description.

use aes::cipher::{generic_array::GenericArray, BlockDecrypt, KeyInit};
use aes::Aes128;
use md5::{Digest, Md5};

use crate::binstorage::{
    check_header, parse_storage, visual_decrypt, Storage, HEADER_TAIL_LEN, MAX_STORAGE_LEN,
};
use crate::decode::decode;
use crate::rc4::Rc4State;
use crate::types::{Config, Keys, Variant};
use crate::ConfigError;

/// Random-prefix lengths scanned for the storage header.
pub const MAX_PREFIX: usize = 0x100;
/// Header candidates whose MD5 is computed before giving up (bounds the work on hostile input).
pub const MAX_MD5_CANDIDATES: usize = 8;
/// Length of the prefix the final XOR keeps and uses as key.
pub const FINAL_XOR_PREFIX: usize = 0x20;

/// What decrypting a Citadel config needs, all from the unpacked bot.
#[derive(Clone)]
pub struct CitadelKeys {
    /// The base config's RC4 state.
    pub rc4_state: Rc4State,
    /// The login key, as its ASCII bytes (32 hex characters in known samples).
    pub login_key: Vec<u8>,
    /// The 16-byte XOR key (four DWORD immediates, little-endian); zeros when absent.
    pub aes_xor: [u8; 16],
    /// `BO_CRYPT_SALT`, for builds with the final XOR.
    pub salt: Option<u32>,
}

impl std::fmt::Debug for CitadelKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CitadelKeys")
            .field("rc4_state", &self.rc4_state)
            .field("salt", &self.salt)
            .finish_non_exhaustive()
    }
}

impl CitadelKeys {
    /// RC4+(state, login key) over MD5(login key).
    pub fn aes_key(&self) -> [u8; 16] {
        let mut key: [u8; 16] = Md5::digest(&self.login_key).into();
        self.rc4_state.apply_plus(&self.login_key, &mut key);
        key
    }

    pub(crate) fn keys(&self) -> Keys {
        Keys {
            rc4_state_sha256: Some(self.rc4_state.sha256_hex()),
            login_key: Some(String::from_utf8_lossy(&self.login_key).into_owned()),
            salt: self.salt.map(|s| format!("0x{s:08X}")),
            aes_key: Some(hex::encode(self.aes_key())),
            aes_xor: (self.aes_xor != [0; 16]).then(|| hex::encode(self.aes_xor)),
        }
    }
}

/// The final XOR (the panel's `smartEncrypt`): an involution.
pub(crate) fn final_xor(buf: &mut [u8], salt: u32) {
    if buf.len() <= FINAL_XOR_PREFIX {
        return;
    }
    let (prefix, rest) = buf.split_at_mut(FINAL_XOR_PREFIX);
    let fk = salt.to_le_bytes();
    for (i, b) in rest.iter_mut().enumerate() {
        *b ^= fk[i % 4] ^ prefix[i % FINAL_XOR_PREFIX];
    }
}

/// Decrypts a Citadel dynamic config to its verified storage.
pub fn decrypt_citadel(file: &[u8], keys: &CitadelKeys) -> Result<Storage, ConfigError> {
    let max = MAX_STORAGE_LEN + MAX_PREFIX + 16;
    if file.len() > max {
        return Err(ConfigError::TooLarge {
            len: file.len(),
            max,
        });
    }
    if file.is_empty() || file.len() % 16 != 0 {
        return Err(ConfigError::AesLength { len: file.len() });
    }
    let cipher = Aes128::new(GenericArray::from_slice(&keys.aes_key()));
    let mut plain = file.to_vec();
    for block in plain.chunks_exact_mut(16) {
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
    }
    for (b, k) in plain.iter_mut().zip(keys.aes_xor.iter().cycle()) {
        *b ^= k;
    }
    visual_decrypt(&mut plain);
    if let Some(salt) = keys.salt {
        final_xor(&mut plain, salt);
    }
    // The header: a size within the AES padding of the length, then a matching MD5.
    let mut first_failure = None;
    let mut tried = 0;
    for prefix in 0..=MAX_PREFIX.min(plain.len().saturating_sub(HEADER_TAIL_LEN)) {
        let Some(size) = plain
            .get(prefix..)
            .and_then(|r| r.first_chunk::<4>())
            .map(|b| u32::from_le_bytes(*b) as usize)
        else {
            break;
        };
        if size > plain.len() || plain.len() - size >= 16 || size < prefix + HEADER_TAIL_LEN {
            continue;
        }
        if tried == MAX_MD5_CANDIDATES {
            break;
        }
        tried += 1;
        match check_header(&plain[..size], prefix) {
            Ok(_) => {
                return parse_storage(&plain[..size], prefix).map_err(|e| {
                    ConfigError::NoStorageHeader {
                        max_prefix: MAX_PREFIX,
                        first_failure: Some(e),
                    }
                })
            }
            Err(e) => {
                first_failure.get_or_insert(e);
            }
        }
    }
    Err(ConfigError::NoStorageHeader {
        max_prefix: MAX_PREFIX,
        first_failure,
    })
}

/// Decrypts and decodes a Citadel dynamic config.
pub fn extract_citadel(file: &[u8], keys: &CitadelKeys) -> Result<Config, ConfigError> {
    let storage = decrypt_citadel(file, keys)?;
    Ok(decode(&storage, Variant::CitadelAes, keys.keys()))
}
