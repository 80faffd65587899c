//! RC4 as the ZeuS family uses it, with the variant keystreams.
//!
//! Format facts (`configs.md` §1.1, §2.1):
//! * `Crypt::RC4KEY` is `{ BYTE state[256]; BYTE x; BYTE y; }` = 258 bytes. Bots ship this
//!   initialised S-box, never the text key; the builder's `encryption_key` text is only known
//!   from leaked builder configs. The KSA is textbook (`j = j + S[i] + key[i % len]`, swap).
//! * Every use copies the state first, so each blob is decrypted from the pristine state.
//! * The PRGA differs between variants only in how `x` steps and what is added to `y`:
//!   ZeuS 2.x `x += 1; y += S[x]`, ICE IX `x += 3; y += S[x] + 7`, ZeuS "Evolution" 2.0.9.4
//!   `x += 3; y += S[x] + 5`; then swap and `out ^= S[(S[x] + S[y]) & 0xFF]`.
//! * Citadel's "RC4+" additionally XORs output byte `k` with `login_key[k % len]` (§2.2).

use serde::{Deserialize, Serialize};

/// Size of a serialised RC4 state: the 256-byte S-box, then `x` and `y`.
pub const RC4_STATE_LEN: usize = 258;

/// The keystream variants of the ZeuS family (`configs.md` §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rc4Variant {
    /// Textbook RC4 (ZeuS 2.0.x / 2.1, Citadel's base cipher).
    Zeus,
    /// ICE IX: `x += 3`, `y += S[x] + 7`.
    IceIx,
    /// ZeuS "Evolution" 2.0.9.4: `x += 3`, `y += S[x] + 5`.
    Evolution,
}

impl Rc4Variant {
    /// Every variant, in the order the decryptor tries them.
    pub const ALL: [Rc4Variant; 3] = [Rc4Variant::Zeus, Rc4Variant::IceIx, Rc4Variant::Evolution];

    /// How much `x` advances per output byte.
    pub fn x_step(self) -> u8 {
        match self {
            Rc4Variant::Zeus => 1,
            Rc4Variant::IceIx | Rc4Variant::Evolution => 3,
        }
    }

    /// The constant added to `y` per output byte, besides `S[x]`.
    pub fn y_add(self) -> u8 {
        match self {
            Rc4Variant::Zeus => 0,
            Rc4Variant::IceIx => 7,
            Rc4Variant::Evolution => 5,
        }
    }

    /// Stable name, as it appears in a [`crate::Config`]'s `variant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rc4Variant::Zeus => "zeus",
            Rc4Variant::IceIx => "ice_ix",
            Rc4Variant::Evolution => "evolution",
        }
    }
}

impl std::fmt::Display for Rc4Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `Crypt::RC4KEY`: S-box plus the `x`, `y` indices the PRGA starts from.
#[derive(Clone, PartialEq, Eq)]
pub struct Rc4State {
    s: [u8; 256],
    x: u8,
    y: u8,
}

impl std::fmt::Debug for Rc4State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material is not printed; its SHA-256 identifies it.
        f.debug_struct("Rc4State")
            .field("sha256", &self.sha256_hex())
            .finish()
    }
}

/// A serialised RC4 state of the wrong length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rc4 state is {len} bytes, expected {RC4_STATE_LEN} (256-byte s-box, x, y)")]
pub struct Rc4StateLenError {
    pub len: usize,
}

impl Rc4State {
    /// The state after the textbook KSA over `key` (the builder's `encryption_key` text, no NUL).
    /// An empty key leaves the identity permutation (the KSA would divide by zero in C).
    pub fn from_key(key: &[u8]) -> Rc4State {
        let mut s = [0u8; 256];
        for (i, b) in s.iter_mut().enumerate() {
            *b = i as u8;
        }
        if !key.is_empty() {
            let mut j: u8 = 0;
            for i in 0..256 {
                j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
                s.swap(i, usize::from(j));
            }
        }
        Rc4State { s, x: 0, y: 0 }
    }

    /// A state as the bot stores it: 256 S-box bytes, then `x`, then `y`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Rc4State, Rc4StateLenError> {
        if bytes.len() != RC4_STATE_LEN {
            return Err(Rc4StateLenError { len: bytes.len() });
        }
        let mut s = [0u8; 256];
        s.copy_from_slice(&bytes[..256]);
        Ok(Rc4State {
            s,
            x: bytes[256],
            y: bytes[257],
        })
    }

    /// The 258-byte serialised form.
    pub fn to_bytes(&self) -> [u8; RC4_STATE_LEN] {
        let mut out = [0u8; RC4_STATE_LEN];
        out[..256].copy_from_slice(&self.s);
        out[256] = self.x;
        out[257] = self.y;
        out
    }

    /// Whether the S-box is a permutation of 0..=255, as every state made by a KSA is.
    /// A state found by scanning memory that is not one is almost certainly not a key.
    pub fn is_permutation(&self) -> bool {
        let mut seen = [false; 256];
        for &b in &self.s {
            seen[usize::from(b)] = true;
        }
        seen.iter().all(|&v| v)
    }

    /// Lower-case hex SHA-256 of the 258-byte serialised state: names a key without showing it.
    pub fn sha256_hex(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.to_bytes()))
    }

    /// XORs `data` in place with the keystream of `variant`, starting from a copy of this
    /// state (the state itself is never advanced, as in the bot).
    pub fn apply(&self, variant: Rc4Variant, data: &mut [u8]) {
        let mut s = self.s;
        let (mut x, mut y) = (self.x, self.y);
        let (step, add) = (variant.x_step(), variant.y_add());
        for b in data.iter_mut() {
            x = x.wrapping_add(step);
            y = y.wrapping_add(s[usize::from(x)]).wrapping_add(add);
            s.swap(usize::from(x), usize::from(y));
            *b ^= s[usize::from(s[usize::from(x)].wrapping_add(s[usize::from(y)]))];
        }
    }

    /// Citadel's "RC4+": the standard keystream, each byte `k` also XORed with
    /// `login_key[k % len]` (`configs.md` §2.2). An empty login key makes it plain RC4.
    pub fn apply_plus(&self, login_key: &[u8], data: &mut [u8]) {
        self.apply(Rc4Variant::Zeus, data);
        if !login_key.is_empty() {
            for (b, k) in data.iter_mut().zip(login_key.iter().cycle()) {
                *b ^= k;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keystream(key: &[u8], variant: Rc4Variant, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        Rc4State::from_key(key).apply(variant, &mut buf);
        buf
    }

    #[test]
    fn textbook_rc4_matches_the_documented_keystreams() {
        // configs.md §4 and the corpus README.
        assert_eq!(
            hex::encode(keystream(b"incorrect", Rc4Variant::Zeus, 16)),
            "c4875cae4b289118d368dfd11be36082"
        );
        assert_eq!(
            hex::encode(keystream(b"secret key", Rc4Variant::Zeus, 16)),
            "6ce9a4fc793d1769696c5ebde6e5fc3e"
        );
        // RFC 6229-style classic vector: Key = "Key", plaintext "Plaintext".
        let mut data = *b"Plaintext";
        Rc4State::from_key(b"Key").apply(Rc4Variant::Zeus, &mut data);
        assert_eq!(hex::encode(data), "bbf316e8d940af0ad3");
    }

    #[test]
    fn variants_differ_and_are_involutions() {
        let key = Rc4State::from_key(b"secret key");
        let plain: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut outs = Vec::new();
        for v in Rc4Variant::ALL {
            let mut buf = plain.clone();
            key.apply(v, &mut buf);
            assert_ne!(buf, plain, "{v} left the data unchanged");
            outs.push(buf.clone());
            key.apply(v, &mut buf);
            assert_eq!(buf, plain, "{v} is not its own inverse");
        }
        assert_ne!(outs[0], outs[1]);
        assert_ne!(outs[1], outs[2]);
        assert_ne!(outs[0], outs[2]);
    }

    #[test]
    fn ice_ix_step_is_computed_from_the_documented_prga() {
        // One step by hand from the identity S-box: x = 3, y = S[3] + 7 = 10, swap S[3], S[10],
        // out = S[(S[3] + S[10]) & 0xFF] = S[10 + 3] = 13.
        let mut b = [0u8; 1];
        Rc4State::from_key(b"").apply(Rc4Variant::IceIx, &mut b);
        assert_eq!(b[0], 13);
        // Evolution: x = 3, y = 3 + 5 = 8, out = S[8 + 3] = 11.
        let mut b = [0u8; 1];
        Rc4State::from_key(b"").apply(Rc4Variant::Evolution, &mut b);
        assert_eq!(b[0], 11);
    }

    #[test]
    fn state_bytes_round_trip_and_length_is_checked() {
        let k = Rc4State::from_key(b"abc");
        assert!(k.is_permutation());
        let bytes = k.to_bytes();
        assert_eq!(Rc4State::from_bytes(&bytes), Ok(k.clone()));
        assert_eq!(
            Rc4State::from_bytes(&bytes[..257]),
            Err(Rc4StateLenError { len: 257 })
        );
        let mut bad = bytes;
        bad[0] = bad[1];
        assert!(!Rc4State::from_bytes(&bad)
            .map(|s| s.is_permutation())
            .unwrap_or(true));
    }

    #[test]
    fn rc4_plus_xors_the_login_key_over_the_keystream() {
        let k = Rc4State::from_key(b"base");
        let mut plain = vec![0u8; 40];
        k.apply_plus(b"LOGIN", &mut plain);
        let ks = keystream(b"base", Rc4Variant::Zeus, 40);
        for (i, (&c, &s)) in plain.iter().zip(&ks).enumerate() {
            assert_eq!(c, s ^ b"LOGIN"[i % 5]);
        }
    }
}
