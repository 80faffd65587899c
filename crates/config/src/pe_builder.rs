//! Synthetic bot images, to test the base-config locator: minimal, valid PE32 files that carry
//! a base config laid out as the ZeuS kit's builder does. **Test data, not malware**: the entry
//! point is a single `ret`, there are no imports, no relocations and no TLS; the byte patterns
//! the locator looks for sit after the `ret` where nothing can reach them, and their call
//! targets are random. Nothing here can run.
//!
//! Layout facts followed (`configs.md` §1.7, §2.1, §2.2):
//! * `BASECONFIG` fields `flags` (DWORD), `defaultBotnet` (`WCHAR[21]`), `delayConfig`,
//!   `delayReport`, `delayStats` (DWORD, HIWORD/LOWORD minutes), `defaultConfig` (`char[101]`;
//!   `url|file` for Evolution and Citadel), `baseKey` (258-byte RC4 state), plus the login key
//!   (`char[33]`) when Evolution or Citadel keep it in the struct; field order shuffled per
//!   build, `0..=100` padding bytes before each field and at the end (as `make.php` does).
//! * The struct is first filled with the kit's LCG bytes (`seed = seed * 214013 + 2531011`,
//!   byte = `(seed >> 16) & 0xFF`; the kit seeds with a CRC32 of the build time, here a random
//!   seed), the fields are written, and the whole is XORed with the first bytes of section 2.
//! * The code reading it is `56 BA <size> 52 68 <VA> 50 E8 <rel32>`; Citadel images carry the
//!   login-key, salt and AES-XOR code patterns and/or the marker string.
//!
//! Randomness comes from a seed through SplitMix64, so an image is a pure function of
//! `(spec, seed)`.

use crate::basecfg::{
    BaseScheme, BASECONFIG21_CODE, BASECONFIG21_KEY_LEN, BASECONFIG21_SKIP, BOTNET_MAX_CHARS,
    CITADEL_MARKER, LOGIN_KEY_LEN,
};
use crate::rc4::{Rc4State, Rc4Variant};
use crate::types::Variant;

/// Absolute base the synthetic images are linked at (no relocations: the VAs are absolute).
pub const IMAGE_BASE: u32 = 0x0040_0000;
const SECTION_ALIGNMENT: u32 = 0x1000;
const FILE_ALIGNMENT: u32 = 0x200;
const NT_OFFSET: usize = 0x40;
const OPTIONAL_HEADER_LEN: usize = 224;
const SECTION_HEADER_LEN: usize = 40;
/// `IMAGE_SCN_CNT_CODE | MEM_EXECUTE | MEM_READ`.
pub const SCN_TEXT: u32 = 0x6000_0020;
/// `IMAGE_SCN_CNT_INITIALIZED_DATA | MEM_READ | MEM_WRITE`.
pub const SCN_DATA: u32 = 0xC000_0040;
/// `IMAGE_SCN_CNT_INITIALIZED_DATA | MEM_READ`.
pub const SCN_RDATA: u32 = 0x4000_0040;

/// Why an image cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeBuildError {
    #[error("botnet {0:?} is not 1..=20 printable ASCII characters")]
    Botnet(String),
    #[error("config URL {0:?} does not fit char[101] as printable ASCII starting with http")]
    Url(String),
    #[error("login key is not 32 hex digits")]
    LoginKey,
    #[error("the RC4 state must be fresh from a key schedule (x = y = 0)")]
    Rc4NotFresh,
    #[error("{0} is not carried by a {1} image")]
    Unsupported(&'static str, Variant),
    #[error("a PE needs 1..=96 sections, got {0}")]
    Sections(usize),
    #[error("image over 4 GiB")]
    TooLarge,
}

/// SplitMix64: a tiny, portable, seeded stream (test data only).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0..n` (`n > 0`; tiny modulo bias is fine for test data).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// `min + below(max - min)` random bytes.
    pub fn bytes_between(&mut self, min: usize, max: usize) -> Vec<u8> {
        let n = min + self.below(max.saturating_sub(min));
        self.bytes(n)
    }
}

/// The kit builder's LCG filler bytes.
pub fn lcg_bytes(mut seed: u32, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed = seed.wrapping_mul(214_013).wrapping_add(2_531_011);
            ((seed >> 16) & 0xFF) as u8
        })
        .collect()
}

/// One section of a PE built by [`build_pe`].
#[derive(Debug, Clone)]
pub struct SectionSpec {
    pub name: [u8; 8],
    pub data: Vec<u8>,
    pub characteristics: u32,
}

impl SectionSpec {
    pub fn new(name: &str, data: Vec<u8>, characteristics: u32) -> SectionSpec {
        let mut n = [0u8; 8];
        for (d, s) in n.iter_mut().zip(name.bytes()) {
            *d = s;
        }
        SectionSpec {
            name: n,
            data,
            characteristics,
        }
    }
}

fn align(v: u32, a: u32) -> Option<u32> {
    v.checked_add(a - 1).map(|x| x & !(a - 1))
}

/// The RVA each section gets in [`build_pe`], in order.
pub fn section_rvas(lens: &[usize]) -> Result<Vec<u32>, PeBuildError> {
    let mut rva = SECTION_ALIGNMENT;
    let mut out = Vec::with_capacity(lens.len());
    for &len in lens {
        out.push(rva);
        let len = u32::try_from(len.max(1)).map_err(|_| PeBuildError::TooLarge)?;
        rva = rva
            .checked_add(align(len, SECTION_ALIGNMENT).ok_or(PeBuildError::TooLarge)?)
            .ok_or(PeBuildError::TooLarge)?;
    }
    Ok(out)
}

/// A minimal valid PE32 (x86, GUI subsystem, fixed base [`IMAGE_BASE`], no data directories)
/// whose entry point is the first byte of the first section.
pub fn build_pe(sections: &[SectionSpec], timestamp: u32) -> Result<Vec<u8>, PeBuildError> {
    let n = sections.len();
    if n == 0 || n > 96 {
        return Err(PeBuildError::Sections(n));
    }
    let headers_len = NT_OFFSET + 4 + 20 + OPTIONAL_HEADER_LEN + n * SECTION_HEADER_LEN;
    let size_of_headers =
        align(headers_len as u32, FILE_ALIGNMENT).ok_or(PeBuildError::TooLarge)?;
    let rvas = section_rvas(&sections.iter().map(|s| s.data.len()).collect::<Vec<_>>())?;
    let mut out = vec![0u8; size_of_headers as usize];
    out[0..2].copy_from_slice(b"MZ");
    out[0x3C..0x40].copy_from_slice(&(NT_OFFSET as u32).to_le_bytes());

    let mut headers = Vec::new();
    let mut size_of_code = 0u32;
    let mut size_of_data = 0u32;
    let mut image_end = SECTION_ALIGNMENT;
    for (s, &rva) in sections.iter().zip(&rvas) {
        let vsize = u32::try_from(s.data.len()).map_err(|_| PeBuildError::TooLarge)?;
        let raw_size = align(vsize, FILE_ALIGNMENT).ok_or(PeBuildError::TooLarge)?;
        let raw_ptr = u32::try_from(out.len()).map_err(|_| PeBuildError::TooLarge)?;
        out.extend_from_slice(&s.data);
        out.resize(raw_ptr as usize + raw_size as usize, 0);
        if s.characteristics & 0x20 != 0 {
            size_of_code = size_of_code.saturating_add(raw_size);
        } else {
            size_of_data = size_of_data.saturating_add(raw_size);
        }
        image_end = rva
            .checked_add(align(vsize.max(1), SECTION_ALIGNMENT).ok_or(PeBuildError::TooLarge)?)
            .ok_or(PeBuildError::TooLarge)?;
        let mut h = Vec::with_capacity(SECTION_HEADER_LEN);
        h.extend_from_slice(&s.name);
        for v in [
            vsize,
            rva,
            raw_size,
            if raw_size == 0 { 0 } else { raw_ptr },
            0,
            0,
        ] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h.extend_from_slice(&[0; 4]); // relocation and line-number counts
        h.extend_from_slice(&s.characteristics.to_le_bytes());
        headers.extend_from_slice(&h);
    }

    let mut nt = Vec::with_capacity(4 + 20 + OPTIONAL_HEADER_LEN);
    nt.extend_from_slice(b"PE\0\0");
    nt.extend_from_slice(&0x014Cu16.to_le_bytes()); // i386
    nt.extend_from_slice(&(n as u16).to_le_bytes());
    nt.extend_from_slice(&timestamp.to_le_bytes());
    nt.extend_from_slice(&[0; 8]); // no symbol table
    nt.extend_from_slice(&(OPTIONAL_HEADER_LEN as u16).to_le_bytes());
    nt.extend_from_slice(&0x0102u16.to_le_bytes()); // EXECUTABLE_IMAGE | 32BIT_MACHINE
                                                    // Optional header (PE32).
    nt.extend_from_slice(&0x010Bu16.to_le_bytes());
    nt.extend_from_slice(&[9, 0]); // linker version
    for v in [size_of_code, size_of_data, 0, rvas[0], rvas[0]] {
        nt.extend_from_slice(&v.to_le_bytes());
    }
    let base_of_data = rvas.get(1).copied().unwrap_or(rvas[0]);
    for v in [base_of_data, IMAGE_BASE, SECTION_ALIGNMENT, FILE_ALIGNMENT] {
        nt.extend_from_slice(&v.to_le_bytes());
    }
    for v in [5u16, 0, 0, 0, 5, 0] {
        // OS, image and subsystem versions
        nt.extend_from_slice(&v.to_le_bytes());
    }
    for v in [0u32, image_end, size_of_headers, 0] {
        // Win32VersionValue, SizeOfImage, SizeOfHeaders, CheckSum
        nt.extend_from_slice(&v.to_le_bytes());
    }
    nt.extend_from_slice(&2u16.to_le_bytes()); // GUI
    nt.extend_from_slice(&0u16.to_le_bytes()); // no DLL characteristics (fixed base)
    for v in [0x0010_0000u32, 0x1000, 0x0010_0000, 0x1000, 0, 16] {
        nt.extend_from_slice(&v.to_le_bytes());
    }
    nt.extend_from_slice(&[0; 16 * 8]); // empty data directories
    debug_assert_eq!(nt.len(), 4 + 20 + OPTIONAL_HEADER_LEN);
    out[NT_OFFSET..NT_OFFSET + nt.len()].copy_from_slice(&nt);
    let sh = NT_OFFSET + nt.len();
    out[sh..sh + headers.len()].copy_from_slice(&headers);
    Ok(out)
}

/// Where the login key of a Citadel (or Evolution) image is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKeyPlacement {
    /// In `.data`, referenced by the `I:` z1 code (long form).
    CodeLong,
    /// In `.data`, referenced by the `C:` `30 ?? 8A 8? <VA> 32` code.
    CodeShort,
    /// Inside the base config struct, as `char[33]`.
    BaseConfig,
}

/// How the salt is referenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaltForm {
    /// `I:` z6: `33 F6 C7 45 ?? <salt> 5B 8A 4C 3D ?? 8A D1 ...`.
    IntecoZ6,
    /// `C:`: as z6 without the `5B`.
    Mwcfg,
    /// `J:` `33 F6 33 FF C7 45 0C <salt>`.
    Jpcert,
}

/// What a synthetic image carries.
#[derive(Debug, Clone)]
pub struct BotImageSpec {
    /// Zeus2, IceIx and Evolution share the 2.0.8.9 struct; CitadelAes adds the Citadel code.
    pub variant: Variant,
    pub rc4_state: Rc4State,
    pub botnet: String,
    pub config_url: String,
    /// The `|file` part (Evolution, Citadel).
    pub config_file: Option<String>,
    /// 32 hex digits (Evolution, Citadel).
    pub login_key: Option<String>,
    pub login_key_placement: LoginKeyPlacement,
    pub salt: Option<u32>,
    pub salt_form: SaltForm,
    pub aes_xor: Option<[u8; 16]>,
    /// Citadel's marker string in `.data`.
    pub marker: bool,
    /// How the struct is hidden: the 2.0.8.9 XOR with section 2, or (ZeuS 2.1 and ICE IX
    /// only) RC4 in the last section under a key block.
    pub scheme: BaseScheme,
}

/// Where the builder put things, for tests to check the locator against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotImageLayout {
    pub base_config_va: u32,
    pub base_config_size: u32,
    pub base_config_file_offset: usize,
    /// Offset of the RC4 state in the struct.
    pub rc4_offset: usize,
    /// Field names in struct order.
    pub field_order: Vec<&'static str>,
    pub sections: usize,
    /// File offset of the `56 BA ... 50 E8` code (2.1 scheme: of the z2 code).
    pub code_offset: usize,
    /// 2.1 scheme: the VA of the key block.
    pub key_block_va: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct BotImage {
    pub bytes: Vec<u8>,
    pub layout: BotImageLayout,
}

fn check_spec(spec: &BotImageSpec) -> Result<(), PeBuildError> {
    let v = spec.variant;
    let b = &spec.botnet;
    if b.is_empty()
        || b.len() > BOTNET_MAX_CHARS
        || b.starts_with(' ')
        || !b.bytes().all(|c| (0x20..=0x7E).contains(&c))
    {
        return Err(PeBuildError::Botnet(b.clone()));
    }
    let full = url_field(spec);
    if full.len() > 100
        || !full.bytes().all(|c| (0x20..=0x7E).contains(&c))
        || !spec.config_url.to_ascii_lowercase().starts_with("http")
        || !spec.config_url.contains("://")
        || spec.config_url.contains('|')
    {
        return Err(PeBuildError::Url(full));
    }
    let extras = matches!(v, Variant::Evolution | Variant::CitadelAes);
    if spec.config_file.is_some() && !extras {
        return Err(PeBuildError::Unsupported("a url|file config URL", v));
    }
    if let Some(k) = &spec.login_key {
        if !extras {
            return Err(PeBuildError::Unsupported("a login key", v));
        }
        if k.len() != LOGIN_KEY_LEN || !k.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(PeBuildError::LoginKey);
        }
        if v == Variant::Evolution && spec.login_key_placement != LoginKeyPlacement::BaseConfig {
            return Err(PeBuildError::Unsupported(
                "a login key referenced by code",
                v,
            ));
        }
    }
    if v != Variant::CitadelAes && (spec.salt.is_some() || spec.aes_xor.is_some() || spec.marker) {
        return Err(PeBuildError::Unsupported(
            "Citadel's salt, XOR key or marker",
            v,
        ));
    }
    if spec.scheme == BaseScheme::Rc4KeyBlock && !matches!(v, Variant::Zeus2 | Variant::IceIx) {
        return Err(PeBuildError::Unsupported(
            "the 2.1 RC4 key-block base config",
            v,
        ));
    }
    let st = spec.rc4_state.to_bytes();
    if st[256] != 0 || st[257] != 0 {
        return Err(PeBuildError::Rc4NotFresh);
    }
    Ok(())
}

fn url_field(spec: &BotImageSpec) -> String {
    match &spec.config_file {
        Some(f) => format!("{}|{f}", spec.config_url),
        None => spec.config_url.clone(),
    }
}

/// A fixed-size field: `s`, a NUL, zeros.
fn fixed(s: &[u8], len: usize) -> Vec<u8> {
    let mut v = s.to_vec();
    v.resize(len, 0);
    v
}

/// The plain `BASECONFIG` struct with shuffled fields and padding; returns it, the offset of
/// each field by name, and the field order.
fn base_struct(spec: &BotImageSpec, rng: &mut SplitMix64) -> (Vec<u8>, Vec<(&'static str, usize)>) {
    let botnet: Vec<u8> = spec
        .botnet
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let delay = |rng: &mut SplitMix64| {
        // HIWORD/LOWORD minutes; values below 0x20 so no delay reads as a UTF-16 character.
        let hi = 1 + rng.below(31) as u32;
        let lo = 1 + rng.below(31) as u32;
        ((hi << 16) | lo).to_le_bytes().to_vec()
    };
    let mut fields: Vec<(&'static str, Vec<u8>)> = vec![
        ("flags", rng.next_u32().to_le_bytes().to_vec()),
        ("default_botnet", fixed(&botnet, 42)),
        ("delay_config", delay(rng)),
        ("delay_report", delay(rng)),
        ("delay_stats", delay(rng)),
        ("default_config", fixed(url_field(spec).as_bytes(), 101)),
        ("base_key", spec.rc4_state.to_bytes().to_vec()),
    ];
    if let (Some(k), LoginKeyPlacement::BaseConfig) = (&spec.login_key, spec.login_key_placement) {
        fields.push(("login_key", fixed(k.as_bytes(), 33)));
    }
    // Fisher-Yates.
    for i in (1..fields.len()).rev() {
        let j = rng.below(i + 1);
        fields.swap(i, j);
    }
    let pads: Vec<usize> = (0..=fields.len()).map(|_| rng.below(101)).collect();
    let total: usize =
        fields.iter().map(|(_, f)| f.len()).sum::<usize>() + pads.iter().sum::<usize>();
    let mut buf = lcg_bytes(rng.next_u32(), total);
    let mut at = 0;
    let mut offsets = Vec::new();
    for ((name, f), pad) in fields.iter().zip(&pads) {
        at += pad;
        buf[at..at + f.len()].copy_from_slice(f);
        offsets.push((*name, at));
        at += f.len();
    }
    (buf, offsets)
}

fn field_offset(offsets: &[(&'static str, usize)], name: &str) -> usize {
    offsets
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, o)| *o)
}

/// 0..=2 sections of random bytes.
fn extra_sections(rng: &mut SplitMix64) -> Vec<Vec<u8>> {
    (0..rng.below(3))
        .map(|_| {
            let n = 1 + rng.below(2048);
            rng.bytes(n)
        })
        .collect()
}

fn rel32(rng: &mut SplitMix64) -> [u8; 4] {
    rng.next_u32().to_le_bytes()
}

/// Places snippets one after another in `text` (after the `ret`), with `int3` gaps; returns
/// the offset of each.
fn place(text: &mut Vec<u8>, snippets: &[Vec<u8>], rng: &mut SplitMix64) -> Vec<usize> {
    snippets
        .iter()
        .map(|s| {
            text.extend(std::iter::repeat_n(0xCC, 1 + rng.below(64)));
            let at = text.len();
            text.extend_from_slice(s);
            at
        })
        .collect()
}

/// Builds a synthetic image for `spec`; every layout choice comes from `seed`.
pub fn build_bot_image(spec: &BotImageSpec, seed: u64) -> Result<BotImage, PeBuildError> {
    check_spec(spec)?;
    if spec.scheme == BaseScheme::Rc4KeyBlock {
        return build_bot_image_21(spec, seed);
    }
    let mut rng = SplitMix64::new(seed);
    let (plain, offsets) = base_struct(spec, &mut rng);
    let size = plain.len();
    let rc4_offset = field_offset(&offsets, "base_key");

    // .data: random bytes with the (XORed) struct, the login key and the marker in it.
    let mut data = rng.bytes_between(16, 512);
    let base_at = data.len();
    data.extend(std::iter::repeat_n(0, size)); // filled once section 2 exists
    data.extend(rng.bytes_between(0, 256));
    let login_in_data = match (&spec.login_key, spec.login_key_placement) {
        (Some(k), LoginKeyPlacement::CodeLong | LoginKeyPlacement::CodeShort) => {
            let at = data.len();
            data.extend_from_slice(k.as_bytes());
            data.push(0);
            data.extend(rng.bytes_between(0, 128));
            Some(at)
        }
        _ => None,
    };
    if spec.marker {
        data.extend_from_slice(CITADEL_MARKER);
        data.push(0);
        data.extend(rng.bytes_between(0, 128));
    }

    // Section 2, the XOR key, at least as long as the struct; 0..=2 sections after it.
    let key_section = rng.bytes_between(size, size + 1024);
    let extra = extra_sections(&mut rng);

    // .text: a `ret`, then the unreachable patterns. Its length must be known for the RVAs
    // of the other sections, and the patterns hold those RVAs: build the snippets with
    // placeholder VAs, lay out, then patch (the length does not change).
    let text_len_guess = 1 + 7 * (64 + 64);
    let mut lens = vec![text_len_guess, data.len(), key_section.len()];
    lens.extend(extra.iter().map(Vec::len));
    let rvas = section_rvas(&lens)?;
    let data_va = IMAGE_BASE + rvas[1];
    let base_va = data_va + base_at as u32;

    let mut snippets: Vec<Vec<u8>> = Vec::new();
    let mut code = vec![0x56, 0xBA];
    code.extend_from_slice(&(size as u32).to_le_bytes());
    code.extend_from_slice(&[0x52, 0x68]);
    code.extend_from_slice(&base_va.to_le_bytes());
    code.extend_from_slice(&[0x50, 0xE8]);
    code.extend_from_slice(&rel32(&mut rng));
    snippets.push(code);
    if let Some(at) = login_in_data {
        let va = (data_va + at as u32).to_le_bytes();
        let s = match spec.login_key_placement {
            LoginKeyPlacement::CodeLong => {
                let mut s = vec![0x55, 0x8B, 0xEC, 0x83, 0xEC, 0x0C, 0x8A, 0x82];
                s.extend_from_slice(&rng.next_u32().to_le_bytes());
                s.extend_from_slice(&[0x88, 0x45, 0xFE, 0x8A, 0x82, 0x01, 0x01, 0x00, 0x00]);
                s.extend_from_slice(&[0x88, 0x45, 0xFD, 0x8A, 0x82, 0x02, 0x01, 0x00, 0x00, 0xB9]);
                s.extend_from_slice(&va);
                s.extend_from_slice(&[0x88, 0x45, 0xFF, 0xE8]);
                s.extend_from_slice(&rel32(&mut rng));
                s
            }
            _ => {
                // xor [ecx], al; mov al, [ecx+disp32]; xor ...
                let mut s = vec![0x30, 0x01, 0x8A, 0x81];
                s.extend_from_slice(&va);
                s.extend_from_slice(&[0x32, 0xC1]);
                s
            }
        };
        snippets.push(s);
    }
    if let Some(k) = spec.aes_xor {
        let mut s = vec![0x81, 0x30];
        s.extend_from_slice(&k[0..4]);
        s.extend_from_slice(&[
            0x0F, 0xB6, 0x50, 0x03, 0x0F, 0xB6, 0x78, 0x02, 0x81, 0x70, 0x04,
        ]);
        s.extend_from_slice(&k[4..8]);
        s.extend_from_slice(&[0x81, 0x70, 0x08]);
        s.extend_from_slice(&k[8..12]);
        s.extend_from_slice(&[0x81, 0x70, 0x0C]);
        s.extend_from_slice(&k[12..16]);
        s.extend_from_slice(&[0xC1, 0xE2, 0x08, 0x0B, 0xD7]);
        snippets.push(s);
    }
    if let Some(salt) = spec.salt {
        let salt = salt.to_le_bytes();
        let tail = [
            0x8A, 0x4C, 0x3D, 0xF8, 0x8A, 0xD1, 0x80, 0xE2, 0x07, 0xC0, 0xE9, 0x03, 0x47, 0x83,
            0xFF, 0x04,
        ];
        let s = match spec.salt_form {
            SaltForm::IntecoZ6 | SaltForm::Mwcfg => {
                let mut s = vec![0x33, 0xF6, 0xC7, 0x45, 0xF8];
                s.extend_from_slice(&salt);
                if spec.salt_form == SaltForm::IntecoZ6 {
                    s.push(0x5B);
                }
                s.extend_from_slice(&tail);
                s
            }
            SaltForm::Jpcert => {
                let mut s = vec![0x33, 0xF6, 0x33, 0xFF, 0xC7, 0x45, 0x0C];
                s.extend_from_slice(&salt);
                s
            }
        };
        snippets.push(s);
    }
    let mut text = vec![0xC3]; // the entry point: ret
    let at = place(&mut text, &snippets, &mut rng);
    if text.len() > text_len_guess {
        return Err(PeBuildError::TooLarge);
    }
    text.resize(text_len_guess, 0xCC);

    // Now the XOR with section 2 and the struct in .data.
    for (i, b) in plain.iter().enumerate() {
        data[base_at + i] = b ^ key_section[i];
    }

    let names = [".rsrc", ".tls", ".idata"];
    let mut sections = vec![
        SectionSpec::new(".text", text, SCN_TEXT),
        SectionSpec::new(".data", data, SCN_DATA),
        SectionSpec::new(".reloc", key_section, SCN_RDATA),
    ];
    for (i, e) in extra.into_iter().enumerate() {
        sections.push(SectionSpec::new(names[i % names.len()], e, SCN_RDATA));
    }
    let n_sections = sections.len();
    let bytes = build_pe(&sections, rng.next_u32())?;
    // File offset of .data: headers, then .text's aligned raw size.
    let headers = (NT_OFFSET + 4 + 20 + OPTIONAL_HEADER_LEN + n_sections * SECTION_HEADER_LEN)
        .next_multiple_of(FILE_ALIGNMENT as usize);
    let text_raw = text_len_guess.next_multiple_of(FILE_ALIGNMENT as usize);
    Ok(BotImage {
        bytes,
        layout: BotImageLayout {
            base_config_va: base_va,
            base_config_size: size as u32,
            base_config_file_offset: headers + text_raw + base_at,
            rc4_offset,
            field_order: offsets.iter().map(|(n, _)| *n).collect(),
            sections: n_sections,
            code_offset: headers + at[0],
            key_block_va: None,
        },
    })
}

/// A 2.1/ICE IX image: `.text` with the z2 code, `.data` with the 0x3C8-byte key block among
/// random bytes, 0..=2 random sections, and last a section of two random bytes, the struct
/// RC4-encrypted (ZeuS keystream for [`Variant::Zeus2`], ICE IX's for [`Variant::IceIx`]) under
/// the key schedule of the block, and random bytes.
fn build_bot_image_21(spec: &BotImageSpec, seed: u64) -> Result<BotImage, PeBuildError> {
    let mut rng = SplitMix64::new(seed);
    let (plain, offsets) = base_struct(spec, &mut rng);
    let size = plain.len();
    let rc4_offset = field_offset(&offsets, "base_key");

    let mut data = rng.bytes_between(16, 512);
    let key_at = data.len();
    let key_block = rng.bytes(BASECONFIG21_KEY_LEN);
    data.extend_from_slice(&key_block);
    data.extend(rng.bytes_between(0, 256));

    let keystream = match spec.variant {
        Variant::IceIx => Rc4Variant::IceIx,
        _ => Rc4Variant::Zeus,
    };
    let mut sealed = plain;
    Rc4State::from_key(&key_block).apply(keystream, &mut sealed);
    let mut last = rng.bytes(BASECONFIG21_SKIP);
    last.extend_from_slice(&sealed);
    last.extend(rng.bytes_between(0, 512));

    let extra = extra_sections(&mut rng);
    let text_len_guess = 1 + 64 + BASECONFIG21_CODE.len() + 64;
    let mut lens = vec![text_len_guess, data.len()];
    lens.extend(extra.iter().map(Vec::len));
    lens.push(last.len());
    let rvas = section_rvas(&lens)?;
    let data_va = IMAGE_BASE + rvas[1];
    let last_rva = rvas[rvas.len() - 1];

    // The z2 code: three global loads around `lea esi, [ecx+eax]`, the key block's VA last.
    let mut code = vec![0x55, 0x8B, 0xEC, 0x51, 0xA1];
    code.extend_from_slice(&(data_va + rng.below(16) as u32 * 4).to_le_bytes());
    code.extend_from_slice(&[0x8B, 0x0D]);
    code.extend_from_slice(&(data_va + rng.below(16) as u32 * 4).to_le_bytes());
    code.extend_from_slice(&[0x56, 0x8D, 0x34, 0x01, 0xA1]);
    code.extend_from_slice(&(data_va + rng.below(16) as u32 * 4).to_le_bytes());
    code.extend_from_slice(&[0x8B, 0x0D]);
    code.extend_from_slice(&(data_va + key_at as u32).to_le_bytes());
    let mut text = vec![0xC3];
    let at = place(&mut text, &[code], &mut rng);
    if text.len() > text_len_guess {
        return Err(PeBuildError::TooLarge);
    }
    text.resize(text_len_guess, 0xCC);

    let names = [".rdata", ".tls", ".idata"];
    let mut sections = vec![
        SectionSpec::new(".text", text, SCN_TEXT),
        SectionSpec::new(".data", data, SCN_DATA),
    ];
    for (i, e) in extra.into_iter().enumerate() {
        sections.push(SectionSpec::new(names[i % names.len()], e, SCN_RDATA));
    }
    sections.push(SectionSpec::new(".data1", last, SCN_DATA));
    let n_sections = sections.len();
    let headers = (NT_OFFSET + 4 + 20 + OPTIONAL_HEADER_LEN + n_sections * SECTION_HEADER_LEN)
        .next_multiple_of(FILE_ALIGNMENT as usize);
    let last_raw_offset = headers
        + sections[..n_sections - 1]
            .iter()
            .map(|s| s.data.len().next_multiple_of(FILE_ALIGNMENT as usize))
            .sum::<usize>();
    let bytes = build_pe(&sections, rng.next_u32())?;
    Ok(BotImage {
        bytes,
        layout: BotImageLayout {
            base_config_va: IMAGE_BASE + last_rva + BASECONFIG21_SKIP as u32,
            base_config_size: size as u32,
            base_config_file_offset: last_raw_offset + BASECONFIG21_SKIP,
            rc4_offset,
            field_order: offsets.iter().map(|(n, _)| *n).collect(),
            sections: n_sections,
            code_offset: headers + at[0],
            key_block_va: Some(data_va + key_at as u32),
        },
    })
}
