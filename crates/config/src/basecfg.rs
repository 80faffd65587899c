//! The base (static) config inside an unpacked bot image: where it is, how it is hidden, and
//! what it holds; then decryption of a config.bin with nothing but the image.
//!
//! Format facts (`configs.md` §1.7 for ZeuS 2.x, §2.1 for Evolution, §2.2 for Citadel):
//! * **Where.** The client reads `BASECONFIG` with `push esi; mov edx, size; push edx; push VA;
//!   push eax; call`, i.e. the bytes `56 BA <u32 size> 52 68 <u32 VA> 50 E8`: size at +2, VA
//!   (absolute) at +8. Citadel uses the same code (`56 BA <size> 00 00 52 68 <VA> 50 E8`).
//! * **How it is hidden.** The builder XORs the struct byte-wise with the first bytes of PE
//!   section index 2 (`PESECTION_OF_BASECONFIG_KEY = 2`, 0-based, raw data = in-memory bytes);
//!   Volatility uses the last section instead (the same one in the 3-section 2.0.8.9 client).
//!   Both are tried, section 2 first.
//! * **What it holds.** Fields `flags`, `WCHAR defaultBotnet[21]`, three delay DWORDs,
//!   `char defaultConfig[101]` (the config.bin URL; `url|file` in Evolution and Citadel) and the
//!   258-byte `RC4KEY baseKey`, in an order the kit's `make.php` shuffles per build, with
//!   0..100 random bytes before each field and at the end. No offset is hard-coded here:
//!   the RC4 state is the 256-byte window that is a permutation of 0..=255 followed by
//!   `x = 0, y = 0`; the URL is an ASCII `http` string; the botnet is a UTF-16LE string of at
//!   most 20 characters.
//! * **Citadel extras.** The login key (32 ASCII hex characters) at the VA of the `I:` z1 code
//!   (`8B EC 83 EC 0C 8A 82 ?? ?? ?? ?? 88 45 FE 8A 82 01 01 00 00 88 45 FD 8A 82 02 01 00 00 B9
//!   <VA> 88 45 FF E8`, VA at +30) or of the shorter `C:` code (`30 ?? [??] 8A 8? <VA> 32`), or
//!   inside the base config (the `J:` reading: an offset in the decoded struct); the salt
//!   (`BO_CRYPT_SALT`) from `C7 45 ?? <salt>` before `[5B] 8A 4C 3D ?? 8A D1 80 E2 07 C0 E9 03 47
//!   83 FF 04`, or after `33 F6 33 FF C7 45 0C` / `46 4F 75 CE 33 F6 C7 45 0C`; the 16-byte AES
//!   XOR key from the four DWORD immediates of `81 30 <k0> 0F B6 50 03 0F B6 78 02 81 70 04 <k1>
//!   81 70 08 <k2> 81 70 0C <k3> C1 E2 08 0B D7`; the marker string `Coded by BRIAN KREBS for
//!   personal use only. I love my job & wife.`.
//! * **Evolution** adds a login key to the base config (no crypto use known); it is reported.
//! * **ZeuS 2.1.0.1 and ICE IX** (`configs.md` §2.1, unverified on a real image: no public
//!   unpacked sample with known values) hide the struct differently: the z2 code
//!   ([`BASECONFIG21_CODE`]) references a 0x3C8-byte block whose RC4 key schedule decrypts the
//!   last section from its third byte. Each keystream (ZeuS, ICE IX, Evolution) is tried; the
//!   one whose output holds a fresh RC4 state wins, and the same field search runs on it.
//!
//! **Bounds.** The image is at most [`crate::pe::MAX_IMAGE_LEN`]; every pattern scan is one
//! linear pass keeping at most [`MAX_PATTERN_HITS`] hits; the base config is at most
//! [`MAX_BASE_CONFIG_LEN`] bytes; the permutation search is a sliding window with a count per
//! byte value (O(n)); candidates, URLs and strings are capped. Nothing is executed.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::citadel::{extract_citadel, CitadelKeys};
use crate::diag::{Diagnostic, Diagnostics};
use crate::pe::{le32, PeError, PeImage};
use crate::rc4::{Rc4State, Rc4Variant, RC4_STATE_LEN};
use crate::types::{Config, Family, Keys};
use crate::zeus::extract_zeus;
use crate::ConfigError;

/// Largest base config read (the 2.0.8.9 struct is about 0.8 KiB; Citadel's a few KiB).
pub const MAX_BASE_CONFIG_LEN: usize = 0x10000;
/// The struct holds at least the RC4 state.
pub const MIN_BASE_CONFIG_LEN: usize = RC4_STATE_LEN;
/// Hits of one code pattern kept per image.
pub const MAX_PATTERN_HITS: usize = 16;
/// RC4 permutation windows kept per base config.
pub const MAX_RC4_CANDIDATES: usize = 8;
/// URLs read from one base config.
pub const MAX_URLS: usize = 16;
/// Longest URL (`url|file`) string read.
pub const MAX_URL_LEN: usize = 1024;
/// `BOTNET_MAX_CHARS`: `WCHAR defaultBotnet[21]` holds 20 characters and a NUL.
pub const BOTNET_MAX_CHARS: usize = 20;
/// `PESECTION_OF_BASECONFIG_KEY`: the 0-based index of the XOR key section.
pub const PESECTION_OF_BASECONFIG_KEY: usize = 2;
/// Length of a Citadel login key.
pub const LOGIN_KEY_LEN: usize = 32;
/// The string Citadel builds carry.
pub const CITADEL_MARKER: &[u8] =
    b"Coded by BRIAN KREBS for personal use only. I love my job & wife.";

/// One token of a code pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    /// This byte.
    B(u8),
    /// Any byte.
    Any,
    /// Any byte whose high nibble is this (`8?`).
    Hi(u8),
}

use Tok::{Any, Hi, B};

/// `push esi; mov edx, <size>; push edx; push <VA>; push eax; call`: size at +2, VA at +8.
pub const BASECONFIG_CODE: &[Tok] = &[
    B(0x56),
    B(0xBA),
    Any,
    Any,
    Any,
    Any,
    B(0x52),
    B(0x68),
    Any,
    Any,
    Any,
    Any,
    B(0x50),
    B(0xE8),
];
/// ZeuS 2.1.0.1 and ICE IX keep the base config RC4-encrypted instead (`configs.md` §2.1,
/// `VF:`/`I:` rule z2): `push ebp; mov ebp, esp; push ecx; mov eax, [A]; mov ecx, [B];
/// push esi; lea esi, [ecx+eax]; mov eax, [C]; mov ecx, [KEY]`. The last operand (at +26) is
/// the VA of a [`BASECONFIG21_KEY_LEN`]-byte block; the RC4 key schedule over that block gives
/// the state that decrypts the last section's raw data from its third byte on.
pub const BASECONFIG21_CODE: &[Tok] = &[
    B(0x55),
    B(0x8B),
    B(0xEC),
    B(0x51),
    B(0xA1),
    Any,
    Any,
    Any,
    Any,
    B(0x8B),
    B(0x0D),
    Any,
    Any,
    Any,
    Any,
    B(0x56),
    B(0x8D),
    B(0x34),
    B(0x01),
    B(0xA1),
    Any,
    Any,
    Any,
    Any,
    B(0x8B),
    B(0x0D),
    Any,
    Any,
    Any,
    Any,
];
/// Offset of the key block's VA in [`BASECONFIG21_CODE`].
pub const BASECONFIG21_KEY_VA_AT: usize = 26;
/// Length of the 2.1 key block (`0x3C8`).
pub const BASECONFIG21_KEY_LEN: usize = 0x3C8;
/// Bytes of the last section before the encrypted base config.
pub const BASECONFIG21_SKIP: usize = 2;

/// Offset of the size immediate in [`BASECONFIG_CODE`].
pub const BASECONFIG_CODE_SIZE_AT: usize = 2;
/// Offset of the VA immediate in [`BASECONFIG_CODE`].
pub const BASECONFIG_CODE_VA_AT: usize = 8;

/// Citadel login key reference (`I:` z1): VA at +30.
pub const LOGIN_KEY_CODE: &[Tok] = &[
    B(0x8B),
    B(0xEC),
    B(0x83),
    B(0xEC),
    B(0x0C),
    B(0x8A),
    B(0x82),
    Any,
    Any,
    Any,
    Any,
    B(0x88),
    B(0x45),
    B(0xFE),
    B(0x8A),
    B(0x82),
    B(0x01),
    B(0x01),
    B(0x00),
    B(0x00),
    B(0x88),
    B(0x45),
    B(0xFD),
    B(0x8A),
    B(0x82),
    B(0x02),
    B(0x01),
    B(0x00),
    B(0x00),
    B(0xB9),
    Any,
    Any,
    Any,
    Any,
    B(0x88),
    B(0x45),
    B(0xFF),
    B(0xE8),
];
pub const LOGIN_KEY_CODE_VA_AT: usize = 30;

/// Citadel login key reference (`C:` `$cit_login`, one-byte form): VA at +4.
pub const LOGIN_KEY_CODE_SHORT: &[Tok] =
    &[B(0x30), Any, B(0x8A), Hi(0x8), Any, Any, Any, Any, B(0x32)];
/// The same with a two-byte operand: VA at +5.
pub const LOGIN_KEY_CODE_SHORT2: &[Tok] = &[
    B(0x30),
    Any,
    Any,
    B(0x8A),
    Hi(0x8),
    Any,
    Any,
    Any,
    Any,
    B(0x32),
];

/// Citadel AES XOR key: four DWORD immediates at +2, +17, +24, +31.
pub const AES_XOR_CODE: &[Tok] = &[
    B(0x81),
    B(0x30),
    Any,
    Any,
    Any,
    Any,
    B(0x0F),
    B(0xB6),
    B(0x50),
    B(0x03),
    B(0x0F),
    B(0xB6),
    B(0x78),
    B(0x02),
    B(0x81),
    B(0x70),
    B(0x04),
    Any,
    Any,
    Any,
    Any,
    B(0x81),
    B(0x70),
    B(0x08),
    Any,
    Any,
    Any,
    Any,
    B(0x81),
    B(0x70),
    B(0x0C),
    Any,
    Any,
    Any,
    Any,
    B(0xC1),
    B(0xE2),
    B(0x08),
    B(0x0B),
    B(0xD7),
];
pub const AES_XOR_CODE_KEY_AT: [usize; 4] = [2, 17, 24, 31];

/// The salted-KSA loop the salt is stored in front of (`I:` z6, `C:`).
pub const SALT_ANCHOR: &[Tok] = &[
    B(0x8A),
    B(0xD1),
    B(0x80),
    B(0xE2),
    B(0x07),
    B(0xC0),
    B(0xE9),
    B(0x03),
    B(0x47),
    B(0x83),
    B(0xFF),
    B(0x04),
];
/// `J:` salt code; the salt follows it.
pub const SALT_CODE_J1: &[Tok] = &[
    B(0x33),
    B(0xF6),
    B(0x33),
    B(0xFF),
    B(0xC7),
    B(0x45),
    B(0x0C),
];
/// `J:` salt code (longer form); the salt follows it.
pub const SALT_CODE_J2: &[Tok] = &[
    B(0x46),
    B(0x4F),
    B(0x75),
    B(0xCE),
    B(0x33),
    B(0xF6),
    B(0xC7),
    B(0x45),
    B(0x0C),
];

/// Why no base config could be had from an image. One line; names the failed check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BaseConfigError {
    #[error(transparent)]
    Pe(#[from] PeError),
    #[error("no section 2: the image has {count} sections; the base config's XOR key is section index 2")]
    NoSection2 { count: usize },
    #[error("no base-config code pattern (2.0.8.9/Citadel 56 BA <size> 52 68 <VA> 50 E8, or 2.1/ICE IX 55 8B EC 51 A1 .. 8B 0D <key VA>) in {scanned} bytes")]
    NoCodePattern { scanned: usize },
    #[error("2.1 key block check failed: VA 0x{va:08x} (+{BASECONFIG21_KEY_LEN} bytes) from the code at offset 0x{pattern_offset:x} is not in any section's raw data")]
    KeyBlockVa { pattern_offset: usize, va: u32 },
    #[error("no RC4 permutation in the last section ({section}) decrypted from byte {BASECONFIG21_SKIP} with the key block at VA 0x{key_va:08x} (code at offset 0x{pattern_offset:x}; keystreams zeus, ice_ix, evolution tried)")]
    NoPermutation21 {
        section: String,
        pattern_offset: usize,
        key_va: u32,
    },
    #[error("base config size check failed: the code at offset 0x{pattern_offset:x} gives size {size}, outside [{MIN_BASE_CONFIG_LEN}, {MAX_BASE_CONFIG_LEN}]")]
    Size { pattern_offset: usize, size: u32 },
    #[error("base config VA check failed: VA 0x{va:08x} (+{size} bytes) from the code at offset 0x{pattern_offset:x} is not in any section's raw data")]
    Va {
        pattern_offset: usize,
        va: u32,
        size: u32,
    },
    #[error("no RC4 permutation found in {section}: base config at VA 0x{va:08x} ({size} bytes, code at offset 0x{pattern_offset:x}) XORed with section {xor_sections}")]
    NoPermutation {
        section: String,
        pattern_offset: usize,
        va: u32,
        size: u32,
        xor_sections: String,
    },
}

impl BaseConfigError {
    /// How far the check got: the error reported is the one from the candidate that got
    /// furthest.
    fn rank(&self) -> u8 {
        match self {
            BaseConfigError::NoPermutation { .. } | BaseConfigError::NoPermutation21 { .. } => 3,
            BaseConfigError::Va { .. } | BaseConfigError::KeyBlockVa { .. } => 2,
            BaseConfigError::Size { .. } => 1,
            _ => 0,
        }
    }
}

/// Where the base config was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseConfigLocation {
    /// File offset of the `56 BA ... 50 E8` code.
    pub code_offset: usize,
    /// Absolute VA of the struct (2.1 scheme: of the decrypted bytes, the last section's third).
    pub va: u32,
    /// File offset of the struct.
    pub file_offset: usize,
    /// Bytes decoded: the struct's size from the code (2.1 scheme: the rest of the last
    /// section, at most [`MAX_BASE_CONFIG_LEN`], since the struct's size is not in the code).
    pub size: u32,
    /// Name of the section holding the struct.
    pub section: String,
    /// Index of the section whose bytes are the XOR key (2, or the last section); for the
    /// 2.1 scheme, the section that holds the encrypted struct (the last).
    pub xor_section: usize,
    /// Offset of the RC4 state in the decoded struct.
    pub rc4_offset: usize,
    /// How the struct was hidden.
    #[serde(default)]
    pub scheme: BaseScheme,
    /// 2.1 scheme: the VA of the key block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_block_va: Option<u32>,
    /// 2.1 scheme: the keystream that decrypted the struct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystream: Option<Rc4Variant>,
}

/// How a base config is hidden in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaseScheme {
    /// ZeuS 2.0.8.9, Evolution, Citadel: XORed with section 2 (or the last section), found
    /// by the `56 BA <size> 52 68 <VA> 50 E8` code.
    #[default]
    XorSection,
    /// ZeuS 2.1.0.1, ICE IX: RC4-encrypted in the last section under the key schedule of a
    /// 0x3C8-byte block, found by the z2 code.
    Rc4KeyBlock,
}

/// A config URL from the base config, `url|file` split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseUrl {
    pub url: String,
    /// The local file name after `|` (Evolution, Citadel), when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Offset in the decoded struct.
    pub offset: usize,
}

/// Where a login key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LoginKeySource {
    /// At the VA a code pattern references (file offset of the code, VA read).
    Code { code_offset: usize, va: u32 },
    /// Inside the decoded base config, at this offset.
    BaseConfig { offset: usize },
}

/// Everything read from the base config and the code around it.
#[derive(Clone)]
pub struct BaseConfig {
    pub family: Family,
    pub location: BaseConfigLocation,
    /// The RC4 state at [`BaseConfigLocation::rc4_offset`].
    pub rc4_state: Rc4State,
    /// Further permutation windows (offset, state), tried after the first on a config.bin.
    pub rc4_alternates: Vec<(usize, Rc4State)>,
    pub urls: Vec<BaseUrl>,
    pub botnet: Option<String>,
    pub login_key: Option<(Vec<u8>, LoginKeySource)>,
    pub salt: Option<u32>,
    pub aes_xor: Option<[u8; 16]>,
    /// What made the image count as Citadel (`marker`, `login_key_code`, `aes_xor_code`,
    /// `salt_code`); empty for ZeuS.
    pub citadel_signs: Vec<&'static str>,
    pub diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Debug for BaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseConfig")
            .field("family", &self.family)
            .field("location", &self.location)
            .field("rc4_state", &self.rc4_state)
            .field("urls", &self.urls)
            .field("botnet", &self.botnet)
            .field("citadel_signs", &self.citadel_signs)
            .finish_non_exhaustive()
    }
}

/// The JSON view of a [`BaseConfig`] (key material only as in [`Keys`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseConfigSummary {
    #[serde(flatten)]
    pub location: BaseConfigLocation,
    /// RC4 permutation windows found (the first is used first).
    pub rc4_candidates: usize,
    pub urls: Vec<BaseUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_key_source: Option<LoginKeySource>,
    pub citadel_signs: Vec<String>,
}

impl BaseConfig {
    /// The RC4 states in the order they are tried.
    pub fn rc4_candidates(&self) -> impl Iterator<Item = (usize, &Rc4State)> {
        std::iter::once((self.location.rc4_offset, &self.rc4_state))
            .chain(self.rc4_alternates.iter().map(|(o, s)| (*o, s)))
    }

    /// The Citadel keys with `state` as the RC4 state, when a login key was found.
    pub fn citadel_keys(&self, state: &Rc4State) -> Option<CitadelKeys> {
        let (login, _) = self.login_key.as_ref()?;
        Some(CitadelKeys {
            rc4_state: state.clone(),
            login_key: login.clone(),
            aes_xor: self.aes_xor.unwrap_or([0; 16]),
            salt: self.salt,
        })
    }

    /// The key material as reported, for the first RC4 state.
    pub fn keys(&self) -> Keys {
        let mut keys = match self.citadel_keys(&self.rc4_state) {
            Some(k) if self.family == Family::Citadel => k.keys(),
            _ => Keys {
                rc4_state_sha256: Some(self.rc4_state.sha256_hex()),
                login_key: self
                    .login_key
                    .as_ref()
                    .map(|(k, _)| String::from_utf8_lossy(k).into_owned()),
                ..Keys::default()
            },
        };
        if self.family == Family::Citadel {
            keys.salt = self.salt.map(|s| format!("0x{s:08X}"));
            keys.aes_xor = self.aes_xor.map(hex::encode);
        }
        keys
    }

    /// The config URLs, without their `|file` part.
    pub fn config_urls(&self) -> Vec<String> {
        self.urls.iter().map(|u| u.url.clone()).collect()
    }

    pub fn summary(&self) -> BaseConfigSummary {
        BaseConfigSummary {
            location: self.location.clone(),
            rc4_candidates: 1 + self.rc4_alternates.len(),
            urls: self.urls.clone(),
            login_key_source: self.login_key.as_ref().map(|(_, s)| *s),
            citadel_signs: self.citadel_signs.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Offsets where `pat` matches, at most `max`, in one pass.
pub fn find_pattern(hay: &[u8], pat: &[Tok], max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let Some(&B(first)) = pat.first() else {
        return out;
    };
    if hay.len() < pat.len() {
        return out;
    }
    let last_start = hay.len() - pat.len();
    let mut i = 0;
    while i <= last_start && out.len() < max {
        match hay[i..=last_start].iter().position(|&b| b == first) {
            None => break,
            Some(p) => i += p,
        }
        let window = &hay[i..i + pat.len()];
        if pat.iter().zip(window).all(|(t, &b)| match *t {
            B(v) => v == b,
            Any => true,
            Hi(n) => b >> 4 == n,
        }) {
            out.push(i);
        }
        i += 1;
    }
    out
}

/// Offsets of 258-byte windows whose first 256 bytes are a permutation of 0..=255 and whose
/// last two (`x`, `y`) are 0, at most `max`. A sliding window with a count per byte value:
/// O(n) whatever the input.
pub fn find_rc4_states(buf: &[u8], max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    if buf.len() < RC4_STATE_LEN {
        return out;
    }
    let mut counts = [0u16; 256];
    let mut distinct = 0usize;
    for &b in &buf[..256] {
        let c = &mut counts[usize::from(b)];
        if *c == 0 {
            distinct += 1;
        }
        *c += 1;
    }
    let mut p = 0;
    loop {
        if distinct == 256 && buf[p + 256] == 0 && buf[p + 257] == 0 {
            out.push(p);
            if out.len() == max {
                break;
            }
        }
        if p + RC4_STATE_LEN >= buf.len() {
            break;
        }
        // Slide: drop buf[p], add buf[p + 256].
        let gone = &mut counts[usize::from(buf[p])];
        *gone -= 1;
        if *gone == 0 {
            distinct -= 1;
        }
        let come = &mut counts[usize::from(buf[p + 256])];
        if *come == 0 {
            distinct += 1;
        }
        *come += 1;
        p += 1;
    }
    out
}

fn overlaps(claimed: &[Range<usize>], r: &Range<usize>) -> bool {
    claimed.iter().any(|c| c.start < r.end && r.start < c.end)
}

fn is_url_char(b: u8) -> bool {
    (0x20..=0x7E).contains(&b)
}

/// ASCII `http://` / `https://` strings (case-insensitive scheme), ended by a byte that is not
/// printable ASCII, split at the first `|`.
fn find_urls(buf: &[u8], claimed: &mut Vec<Range<usize>>, d: &mut Diagnostics) -> Vec<BaseUrl> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 7 <= buf.len() {
        let rest = &buf[i..];
        let scheme = if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"http://") {
            7
        } else if rest.len() >= 8 && rest[..8].eq_ignore_ascii_case(b"https://") {
            8
        } else {
            i += 1;
            continue;
        };
        let len = rest
            .iter()
            .take(MAX_URL_LEN + 1)
            .position(|&b| !is_url_char(b))
            .unwrap_or(rest.len().min(MAX_URL_LEN + 1));
        let range = i..i + len;
        if len <= scheme || overlaps(claimed, &range) {
            i += 1;
            continue;
        }
        if len > MAX_URL_LEN {
            d.push(Diagnostic::at(
                "url_too_long",
                i,
                format!("an http string of over {MAX_URL_LEN} bytes is ignored"),
            ));
            i += len;
            continue;
        }
        if out.len() == MAX_URLS {
            d.push(Diagnostic::at(
                "too_many_urls",
                i,
                format!("more than {MAX_URLS} URLs; the rest ignored"),
            ));
            break;
        }
        // Only printable ASCII was taken, so this is valid UTF-8.
        let text = String::from_utf8_lossy(&rest[..len]);
        let (url, file) = match text.split_once('|') {
            Some((u, f)) => (u.to_string(), (!f.is_empty()).then(|| f.to_string())),
            None => (text.into_owned(), None),
        };
        out.push(BaseUrl {
            url,
            file,
            offset: i,
        });
        claimed.push(range);
        i += len;
    }
    out
}

/// UTF-16LE strings of 1..=20 printable ASCII characters ended by a NUL WCHAR, outside the
/// claimed ranges: `(offset, text)`.
fn find_wide_strings(buf: &[u8], claimed: &[Range<usize>]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= buf.len() {
        let mut n = 0;
        let mut text = String::new();
        let mut j = i;
        while j + 2 <= buf.len() && n <= BOTNET_MAX_CHARS {
            let (lo, hi) = (buf[j], buf[j + 1]);
            if hi != 0 || !(0x20..=0x7E).contains(&lo) || (n == 0 && lo == b' ') {
                break;
            }
            text.push(char::from(lo));
            n += 1;
            j += 2;
        }
        if n > BOTNET_MAX_CHARS {
            // Too long for the field: skip the whole run, not to report its tail.
            i = j;
            continue;
        }
        let terminated = buf.get(j..j + 2) == Some(&[0, 0][..]);
        // Not the tail of a longer string: the WCHAR before is not a printable character.
        let starts = i < 2 || buf[i - 1] != 0 || !(0x20..=0x7E).contains(&buf[i - 2]);
        if n >= 1 && terminated && starts && !overlaps(claimed, &(i..j + 2)) {
            out.push((i, text));
            if out.len() == MAX_URLS {
                break;
            }
            i = j + 2;
        } else {
            i += 1;
        }
    }
    out
}

/// Offsets of 32 ASCII hex digits outside the claimed ranges: a run of exactly 32, or the
/// last 32 of a longer run ended by a NUL (the field is `char[33]`; the padding byte before it
/// may happen to be a hex digit too).
fn find_hex_keys(buf: &[u8], claimed: &[Range<usize>]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < buf.len() {
        if !buf[i].is_ascii_hexdigit() {
            i += 1;
            continue;
        }
        let run = buf[i..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let nul_ended = buf.get(i + run) == Some(&0);
        let at = i + run.saturating_sub(LOGIN_KEY_LEN);
        if (run == LOGIN_KEY_LEN || (run > LOGIN_KEY_LEN && nul_ended))
            && !overlaps(claimed, &(at..i + run))
        {
            out.push(at);
            if out.len() == MAX_URLS {
                break;
            }
        }
        i += run;
    }
    out
}

fn is_login_key(bytes: &[u8]) -> bool {
    bytes.len() == LOGIN_KEY_LEN && bytes.iter().all(u8::is_ascii_hexdigit)
}

fn find_salt(image: &[u8]) -> Option<(u32, usize)> {
    for hit in find_pattern(image, SALT_ANCHOR, MAX_PATTERN_HITS) {
        // `C7 45 ?? <salt>` then `8A 4C 3D ??` (C:, salt at hit - 8), or with `5B` between
        // (I: z6, salt at hit - 9).
        for (salt_back, pop) in [(8usize, false), (9, true)] {
            let Some(at) = hit.checked_sub(salt_back) else {
                continue;
            };
            let Some(mov) = at.checked_sub(3) else {
                continue;
            };
            if image[mov] != 0xC7 || image[mov + 1] != 0x45 {
                continue;
            }
            if pop && image[at + 4] != 0x5B {
                continue;
            }
            if let Some(salt) = le32(image, at) {
                return Some((salt, at));
            }
        }
    }
    for pat in [SALT_CODE_J1, SALT_CODE_J2] {
        if let Some(&hit) = find_pattern(image, pat, 1).first() {
            let at = hit + pat.len();
            if let Some(salt) = le32(image, at) {
                return Some((salt, at));
            }
        }
    }
    None
}

fn find_aes_xor(image: &[u8]) -> Option<([u8; 16], usize)> {
    let hit = *find_pattern(image, AES_XOR_CODE, 1).first()?;
    let mut key = [0u8; 16];
    for (k, &at) in AES_XOR_CODE_KEY_AT.iter().enumerate() {
        key[k * 4..k * 4 + 4].copy_from_slice(image.get(hit + at..hit + at + 4)?);
    }
    Some((key, hit))
}

/// The login key at the VA a code pattern references, validated as 32 hex digits.
fn find_login_key_by_code(
    pe: &PeImage<'_>,
    d: &mut Diagnostics,
) -> Option<(Vec<u8>, LoginKeySource)> {
    let image = pe.data();
    for (pat, va_at) in [
        (LOGIN_KEY_CODE, LOGIN_KEY_CODE_VA_AT),
        (LOGIN_KEY_CODE_SHORT, 4),
        (LOGIN_KEY_CODE_SHORT2, 5),
    ] {
        for hit in find_pattern(image, pat, MAX_PATTERN_HITS) {
            let Some(va) = le32(image, hit + va_at) else {
                continue;
            };
            match pe.read_va(va, LOGIN_KEY_LEN) {
                Some((bytes, _, _)) if is_login_key(bytes) => {
                    return Some((
                        bytes.to_vec(),
                        LoginKeySource::Code {
                            code_offset: hit,
                            va,
                        },
                    ))
                }
                // The short patterns are common in ordinary code; only the long one is worth a note.
                _ if pat.len() == LOGIN_KEY_CODE.len() => d.push(Diagnostic::at(
                    "login_key_not_hex",
                    hit,
                    format!("the login-key code references VA 0x{va:08x}, which does not hold 32 hex digits"),
                )),
                _ => {}
            }
        }
    }
    None
}

/// Finds and decodes the base config of an unpacked PE32 bot image: the 2.0.8.9/Citadel
/// XOR scheme first, then the 2.1/ICE IX RC4 scheme. When neither holds, the error is the one
/// of the candidate that got furthest.
pub fn locate(image: &[u8]) -> Result<BaseConfig, BaseConfigError> {
    let pe = PeImage::parse(image)?;
    let n_sections = pe.sections().len();
    let hits = find_pattern(image, BASECONFIG_CODE, MAX_PATTERN_HITS);
    let hits21 = find_pattern(image, BASECONFIG21_CODE, MAX_PATTERN_HITS);
    if hits.is_empty() && hits21.is_empty() {
        return Err(BaseConfigError::NoCodePattern {
            scanned: image.len(),
        });
    }
    let mut best: Option<BaseConfigError> = None;
    let mut keep = |e: BaseConfigError| {
        if best.as_ref().is_none_or(|b| e.rank() > b.rank()) {
            best = Some(e);
        }
    };
    if !hits.is_empty() {
        if n_sections <= PESECTION_OF_BASECONFIG_KEY {
            keep(BaseConfigError::NoSection2 { count: n_sections });
        } else if let Some(found) = locate_xor(&pe, &hits, &mut keep) {
            return Ok(found);
        }
    }
    if let Some(found) = locate_rc4_block(&pe, &hits21, &mut keep) {
        return Ok(found);
    }
    Err(best.unwrap_or(BaseConfigError::NoCodePattern {
        scanned: image.len(),
    }))
}

/// The 2.0.8.9/Citadel scheme: the struct at the code's VA, XORed with section 2 or the last.
fn locate_xor(
    pe: &PeImage<'_>,
    hits: &[usize],
    keep: &mut impl FnMut(BaseConfigError),
) -> Option<BaseConfig> {
    let image = pe.data();
    let n_sections = pe.sections().len();
    let mut d = Diagnostics::default();
    let last = n_sections - 1;
    let xor_sections: Vec<usize> = if last == PESECTION_OF_BASECONFIG_KEY {
        vec![PESECTION_OF_BASECONFIG_KEY]
    } else {
        vec![PESECTION_OF_BASECONFIG_KEY, last]
    };
    for &code_offset in hits {
        let (Some(size), Some(va)) = (
            le32(image, code_offset + BASECONFIG_CODE_SIZE_AT),
            le32(image, code_offset + BASECONFIG_CODE_VA_AT),
        ) else {
            continue;
        };
        let len = size as usize;
        if !(MIN_BASE_CONFIG_LEN..=MAX_BASE_CONFIG_LEN).contains(&len) {
            keep(BaseConfigError::Size {
                pattern_offset: code_offset,
                size,
            });
            continue;
        }
        let Some((stored, file_offset, section)) = pe.read_va(va, len) else {
            keep(BaseConfigError::Va {
                pattern_offset: code_offset,
                va,
                size,
            });
            continue;
        };
        for &xi in &xor_sections {
            let Some(key) = pe.section_memory(xi, len) else {
                continue;
            };
            let decoded: Vec<u8> = stored.iter().zip(&key).map(|(a, b)| a ^ b).collect();
            let cands = find_rc4_states(&decoded, MAX_RC4_CANDIDATES);
            let Some(&rc4_offset) = cands.first() else {
                continue;
            };
            if pe.sections()[xi].raw_len < len {
                d.push(Diagnostic::at(
                    "xor_key_short",
                    file_offset,
                    format!(
                        "section {xi} has {} raw bytes for a {len}-byte base config; the rest of the key is the zeros of the loaded section",
                        pe.sections()[xi].raw_len
                    ),
                ));
            }
            if xi != PESECTION_OF_BASECONFIG_KEY {
                d.push(Diagnostic::at(
                    "xor_last_section",
                    file_offset,
                    format!("decoded with the last section ({xi}), not section 2"),
                ));
            }
            let location = BaseConfigLocation {
                code_offset,
                va,
                file_offset,
                size,
                section: section.name.clone(),
                xor_section: xi,
                rc4_offset,
                scheme: BaseScheme::XorSection,
                key_block_va: None,
                keystream: None,
            };
            return Some(read_fields(pe, &decoded, location, &cands, d));
        }
        keep(BaseConfigError::NoPermutation {
            section: section_label(&section.name, section.index),
            pattern_offset: code_offset,
            va,
            size,
            xor_sections: xor_sections
                .iter()
                .map(|i| format!("{i} ({})", pe.sections()[*i].name))
                .collect::<Vec<_>>()
                .join(" or "),
        });
    }
    None
}

/// The 2.1/ICE IX scheme: the key schedule of the block at the z2 code's VA decrypts the last
/// section from byte [`BASECONFIG21_SKIP`]; each keystream is tried and the one whose output
/// holds a fresh RC4 state (the config's key) is kept.
fn locate_rc4_block(
    pe: &PeImage<'_>,
    hits: &[usize],
    keep: &mut impl FnMut(BaseConfigError),
) -> Option<BaseConfig> {
    let image = pe.data();
    let last = pe.sections().len().checked_sub(1)?;
    let sec = &pe.sections()[last];
    let raw = image.get(sec.raw_offset..sec.raw_offset.checked_add(sec.raw_len)?)?;
    let stored = raw.get(BASECONFIG21_SKIP..)?;
    let stored = &stored[..stored.len().min(MAX_BASE_CONFIG_LEN)];
    for &code_offset in hits {
        let Some(key_va) = le32(image, code_offset + BASECONFIG21_KEY_VA_AT) else {
            continue;
        };
        let Some((key, _, _)) = pe.read_va(key_va, BASECONFIG21_KEY_LEN) else {
            keep(BaseConfigError::KeyBlockVa {
                pattern_offset: code_offset,
                va: key_va,
            });
            continue;
        };
        let state = Rc4State::from_key(key);
        for keystream in Rc4Variant::ALL {
            let mut decoded = stored.to_vec();
            state.apply(keystream, &mut decoded);
            let cands = find_rc4_states(&decoded, MAX_RC4_CANDIDATES);
            let Some(&rc4_offset) = cands.first() else {
                continue;
            };
            let d = Diagnostics::default();
            let location = BaseConfigLocation {
                code_offset,
                va: pe
                    .image_base()
                    .wrapping_add(sec.virtual_address)
                    .wrapping_add(BASECONFIG21_SKIP as u32),
                file_offset: sec.raw_offset + BASECONFIG21_SKIP,
                size: decoded.len() as u32,
                section: sec.name.clone(),
                xor_section: last,
                rc4_offset,
                scheme: BaseScheme::Rc4KeyBlock,
                key_block_va: Some(key_va),
                keystream: Some(keystream),
            };
            return Some(read_fields(pe, &decoded, location, &cands, d));
        }
        keep(BaseConfigError::NoPermutation21 {
            section: section_label(&sec.name, sec.index),
            pattern_offset: code_offset,
            key_va,
        });
    }
    None
}

fn section_label(name: &str, index: usize) -> String {
    if name.is_empty() {
        format!("section {index}")
    } else {
        name.to_string()
    }
}

fn state_at(buf: &[u8], at: usize) -> Option<Rc4State> {
    Rc4State::from_bytes(buf.get(at..at.checked_add(RC4_STATE_LEN)?)?).ok()
}

fn read_fields(
    pe: &PeImage<'_>,
    decoded: &[u8],
    location: BaseConfigLocation,
    cands: &[usize],
    mut d: Diagnostics,
) -> BaseConfig {
    let image = pe.data();
    let rc4_offset = location.rc4_offset;
    // `find_rc4_states` only returns offsets with 258 bytes behind them.
    let rc4_state = state_at(decoded, rc4_offset).unwrap_or_else(|| Rc4State::from_key(b""));
    let rc4_alternates: Vec<(usize, Rc4State)> = cands[1..]
        .iter()
        .filter_map(|&o| state_at(decoded, o).map(|s| (o, s)))
        .collect();
    if !rc4_alternates.is_empty() {
        d.push(Diagnostic::at(
            "rc4_candidates",
            rc4_offset,
            format!(
                "{} permutation windows; the first is reported, all are tried on a config",
                cands.len()
            ),
        ));
    }
    let mut claimed: Vec<Range<usize>> = cands.iter().map(|&o| o..o + RC4_STATE_LEN).collect();

    let urls = find_urls(decoded, &mut claimed, &mut d);
    if urls.is_empty() {
        d.push(Diagnostic::new(
            "no_config_url",
            "no http string in the base config",
        ));
    }

    // Login key: code reference first (Citadel), else 32 hex digits inside the struct.
    let mut citadel_signs = Vec::new();
    let mut login_key = find_login_key_by_code(pe, &mut d);
    if login_key.is_some() {
        citadel_signs.push("login_key_code");
    }
    let hex_keys = find_hex_keys(decoded, &claimed);
    if let Some(&off) = hex_keys.first() {
        claimed.push(off..off + LOGIN_KEY_LEN);
        if login_key.is_none() {
            login_key = Some((
                decoded[off..off + LOGIN_KEY_LEN].to_vec(),
                LoginKeySource::BaseConfig { offset: off },
            ));
        }
        if hex_keys.len() > 1 {
            d.push(Diagnostic::at(
                "login_key_ambiguous",
                off,
                format!(
                    "{} runs of 32 hex digits; the first is used",
                    hex_keys.len()
                ),
            ));
        }
    }

    let wide = find_wide_strings(decoded, &claimed);
    let botnet = match wide.as_slice() {
        [] => {
            d.push(Diagnostic::new(
                "no_botnet",
                "no UTF-16 string of 1..=20 characters in the base config",
            ));
            None
        }
        [(_, s)] => Some(s.clone()),
        many => {
            // The longest: short strings are what random padding can fake.
            let (off, s) = many
                .iter()
                .max_by_key(|(o, s)| (s.len(), std::cmp::Reverse(*o)))
                .cloned()
                .unwrap_or_default();
            d.push(Diagnostic::at(
                "botnet_ambiguous",
                off,
                format!(
                    "{} UTF-16 strings could be the botnet: {}; the longest is used",
                    many.len(),
                    many.iter()
                        .map(|(_, s)| format!("{s:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            Some(s)
        }
    };

    let salt = find_salt(image);
    if salt.is_some() {
        citadel_signs.push("salt_code");
    }
    let aes_xor = find_aes_xor(image);
    if aes_xor.is_some() {
        citadel_signs.push("aes_xor_code");
    }
    if !find_pattern(image, &marker_pattern(), 1).is_empty() {
        citadel_signs.insert(0, "marker");
    }
    let family = if citadel_signs.is_empty() {
        Family::Zeus
    } else {
        Family::Citadel
    };
    if family == Family::Citadel && login_key.is_none() {
        d.push(Diagnostic::new(
            "no_login_key",
            "Citadel image without a login key: its config cannot be decrypted",
        ));
    }
    BaseConfig {
        family,
        location,
        rc4_state,
        rc4_alternates,
        urls,
        botnet,
        login_key,
        salt: salt.map(|(s, _)| s),
        aes_xor: aes_xor.map(|(k, _)| k),
        citadel_signs,
        diagnostics: d.into_vec(),
    }
}

fn marker_pattern() -> Vec<Tok> {
    CITADEL_MARKER.iter().map(|&b| B(b)).collect()
}

/// Decrypts a config.bin with the keys recovered from the bot image: each RC4 candidate, as
/// Citadel AES+ when a login key is known (first, for a Citadel image), and as ZeuS 2.x / ICE
/// IX / Evolution. The botnet and config URLs of the base config are added to the result.
pub fn extract_with_base(base: &BaseConfig, file: &[u8]) -> Result<Config, ConfigError> {
    let mut attempts = Vec::new();
    for (offset, state) in base.rc4_candidates() {
        let citadel = base.citadel_keys(state);
        let try_citadel = |attempts: &mut Vec<(usize, ConfigError)>| match &citadel {
            Some(keys) => match extract_citadel(file, keys) {
                Ok(c) => Some(c),
                Err(e) => {
                    attempts.push((offset, e));
                    None
                }
            },
            None => None,
        };
        let found = if base.family == Family::Citadel {
            try_citadel(&mut attempts).or_else(|| match extract_zeus(file, state) {
                Ok(c) => Some(c),
                Err(e) => {
                    attempts.push((offset, e));
                    None
                }
            })
        } else {
            match extract_zeus(file, state) {
                Ok(c) => Some(c),
                Err(e) => {
                    attempts.push((offset, e));
                    try_citadel(&mut attempts)
                }
            }
        };
        if let Some(cfg) = found {
            return Ok(merge(base, cfg));
        }
    }
    Err(ConfigError::BaseKeys { attempts })
}

/// Adds what the base config knows to a decrypted config.
pub fn merge(base: &BaseConfig, mut cfg: Config) -> Config {
    if cfg.botnet.is_none() {
        cfg.botnet = base.botnet.clone();
    }
    let mut urls = base.config_urls();
    for u in std::mem::take(&mut cfg.config_urls) {
        if !urls.contains(&u) {
            urls.push(u);
        }
    }
    cfg.config_urls = urls;
    if cfg.keys.login_key.is_none() {
        cfg.keys.login_key = base
            .login_key
            .as_ref()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned());
    }
    if base.family == Family::Citadel && cfg.keys.aes_xor.is_none() {
        cfg.keys.aes_xor = base.aes_xor.map(hex::encode);
    }
    let mut diags = base.diagnostics.clone();
    diags.append(&mut cfg.diagnostics);
    cfg.diagnostics = diags;
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_window_is_found_at_every_offset_and_only_with_zero_xy() {
        let state = Rc4State::from_key(b"window").to_bytes();
        for pad in [0usize, 1, 7, 100, 255] {
            let mut buf = vec![0xAAu8; pad];
            buf.extend_from_slice(&state);
            buf.extend_from_slice(&[0xBB; 5]);
            assert_eq!(find_rc4_states(&buf, 8), vec![pad], "pad {pad}");
            // x != 0: not a fresh state.
            buf[pad + 256] = 1;
            assert!(find_rc4_states(&buf, 8).is_empty());
        }
        // One duplicate byte in the S-box breaks it.
        let mut bad = state;
        bad[10] = bad[11];
        assert!(find_rc4_states(&bad, 8).is_empty());
        assert!(find_rc4_states(&state[..257], 8).is_empty());
    }

    #[test]
    fn permutation_search_agrees_with_a_direct_check() {
        // The identity S-box followed by zeros: windows at 0 and (since S[0] = 0 repeats
        // after the window) more; compare with the obvious per-offset check.
        let mut buf: Vec<u8> = (0..=255u8).collect();
        buf.extend_from_slice(&[0, 0, 0, 1, 2]);
        buf.extend((0..=255u8).rev());
        buf.extend_from_slice(&[0, 0]);
        let direct: Vec<usize> = (0..=buf.len() - RC4_STATE_LEN)
            .filter(|&p| {
                Rc4State::from_bytes(&buf[p..p + 258]).is_ok_and(|s| s.is_permutation())
                    && buf[p + 256] == 0
                    && buf[p + 257] == 0
            })
            .collect();
        assert!(!direct.is_empty());
        assert_eq!(find_rc4_states(&buf, 64), direct);
    }

    #[test]
    fn patterns_match_with_wildcards_and_nibbles() {
        let hay = [0x00, 0x30, 0x11, 0x8A, 0x85, 1, 2, 3, 4, 0x32, 0x30];
        assert_eq!(find_pattern(&hay, LOGIN_KEY_CODE_SHORT, 4), vec![1]);
        let mut other = hay;
        other[4] = 0x95;
        assert!(find_pattern(&other, LOGIN_KEY_CODE_SHORT, 4).is_empty());
        assert!(find_pattern(&hay[..9], LOGIN_KEY_CODE_SHORT, 4).is_empty());
        let many = [0x56u8; 100];
        assert!(find_pattern(&many, &[B(0x56)], 3).len() == 3);
    }

    #[test]
    fn urls_are_split_and_botnet_strings_found() {
        let mut buf = vec![0xF0u8; 10];
        buf.extend_from_slice(b"http://a.example/cfg.bin|C:\\cfg.dat\0");
        buf.extend_from_slice(&[0xF1; 3]);
        for c in "mynet".encode_utf16() {
            buf.extend_from_slice(&c.to_le_bytes());
        }
        buf.extend_from_slice(&[0, 0, 0xF2]);
        buf.extend_from_slice(b"HTTPS://b.example/x\0");
        let mut claimed = Vec::new();
        let mut d = Diagnostics::default();
        let urls = find_urls(&buf, &mut claimed, &mut d);
        assert_eq!(urls.len(), 2);
        assert_eq!(urls[0].url, "http://a.example/cfg.bin");
        assert_eq!(urls[0].file.as_deref(), Some("C:\\cfg.dat"));
        assert_eq!(urls[0].offset, 10);
        assert_eq!(urls[1].url, "HTTPS://b.example/x");
        assert_eq!(urls[1].file, None);
        let wide = find_wide_strings(&buf, &claimed);
        assert_eq!(wide.len(), 1);
        assert_eq!(wide[0].1, "mynet");
    }

    #[test]
    fn hex_runs_must_be_exactly_32() {
        let mut buf = b"zz".to_vec();
        buf.extend_from_slice(b"0123456789abcdef0123456789ABCDEF");
        buf.extend_from_slice(b"-0123456789abcdef0123456789ABCDEF0-");
        assert_eq!(find_hex_keys(&buf, &[]), vec![2]);
        // A hex padding byte before a NUL-terminated key.
        let mut buf = b"-a".to_vec();
        buf.extend_from_slice(b"0123456789abcdef0123456789ABCDEF\0");
        assert_eq!(find_hex_keys(&buf, &[]), vec![2]);
    }
}
