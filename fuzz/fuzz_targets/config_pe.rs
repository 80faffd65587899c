//! The base-config locator on hostile PE images.
//!
//! Random bytes rarely make a PE, so the input is used three ways: (1) as the image itself;
//! (2) as the `.data` section of a minimal PE whose code pattern points at it and whose XOR
//! section is zeros, so the input *is* the decoded struct and every byte reaches the RC4
//! permutation search and the string scans (checked against a direct per-offset search);
//! (3) as patches (offset, value pairs) over a synthetic Citadel image (or, one seed in four, an
//! ICE IX image with the 2.1 key-block base config) built from a seed in the first byte, so the
//! header, section-table and pattern checks see near-valid images.
#![no_main]

use dropwatch_config::basecfg::{
    extract_with_base, locate, BaseConfigError, BaseScheme, BOTNET_MAX_CHARS, MAX_BASE_CONFIG_LEN,
    MAX_RC4_CANDIDATES, MAX_URLS, MIN_BASE_CONFIG_LEN,
};
use dropwatch_config::pe_builder::{
    build_bot_image, build_pe, BotImageSpec, LoginKeyPlacement, SaltForm, SectionSpec,
    IMAGE_BASE, SCN_DATA, SCN_RDATA, SCN_TEXT,
};
use dropwatch_config::{Rc4State, Variant, MAX_DIAGNOSTICS};
use libfuzzer_sys::fuzz_target;

fn check(image: &[u8]) {
    match locate(image) {
        Ok(base) => {
            let size = base.location.size as usize;
            assert!((MIN_BASE_CONFIG_LEN..=MAX_BASE_CONFIG_LEN).contains(&size));
            assert!(base.rc4_state.is_permutation());
            assert!(base.rc4_alternates.len() < MAX_RC4_CANDIDATES);
            assert!(base.urls.len() <= MAX_URLS);
            assert!(base
                .botnet
                .as_ref()
                .is_none_or(|b| !b.is_empty() && b.len() <= BOTNET_MAX_CHARS));
            assert!(base.diagnostics.len() <= MAX_DIAGNOSTICS + 1);
            // Any bytes as its config: an error or a config, never a panic.
            let _ = extract_with_base(&base, image);
        }
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
}

/// Offsets of fresh RC4 states, the obvious way.
fn direct_windows(buf: &[u8]) -> Vec<usize> {
    (0..buf.len().saturating_sub(257))
        .filter(|&p| {
            buf[p + 256] == 0
                && buf[p + 257] == 0
                && Rc4State::from_bytes(&buf[p..p + 258]).is_ok_and(|s| s.is_permutation())
        })
        .take(MAX_RC4_CANDIDATES)
        .collect()
}

fuzz_target!(|data: &[u8]| {
    check(data);

    // (2) The input as the decoded struct.
    if (MIN_BASE_CONFIG_LEN..=8192).contains(&data.len()) {
        let data_va = IMAGE_BASE + 0x2000; // .text is one page
        let mut text = vec![0xC3, 0x56, 0xBA];
        text.extend_from_slice(&(data.len() as u32).to_le_bytes());
        text.extend_from_slice(&[0x52, 0x68]);
        text.extend_from_slice(&data_va.to_le_bytes());
        text.extend_from_slice(&[0x50, 0xE8, 0, 0, 0, 0]);
        let pe = build_pe(
            &[
                SectionSpec::new(".text", text, SCN_TEXT),
                SectionSpec::new(".data", data.to_vec(), SCN_DATA),
                SectionSpec::new(".reloc", vec![0; data.len()], SCN_RDATA),
            ],
            0,
        )
        .expect("a small PE builds");
        let windows = direct_windows(data);
        match locate(&pe) {
            // The input may hold a code pattern of its own; only ours is checked. Ours comes
            // first in the file (.text right after the 0x200 bytes of headers).
            Ok(base) if base.location.code_offset == 0x201 => {
                assert_eq!(Some(&base.location.rc4_offset), windows.first());
                assert_eq!(base.rc4_alternates.len() + 1, windows.len());
            }
            Ok(_) => assert!(windows.is_empty()),
            Err(BaseConfigError::NoPermutation { .. }) => assert!(windows.is_empty()),
            // Our pattern always gets as far as the permutation search.
            Err(e) => panic!("unexpected refusal: {e}"),
        }
        check(&pe);
    }

    // (3) Patches over a synthetic image.
    if let [seed, patches @ ..] = data {
        // One seed in four: an ICE IX image with the 2.1 RC4 key-block base config.
        let ice_ix = BotImageSpec {
            variant: Variant::IceIx,
            rc4_state: Rc4State::from_key(&[*seed]),
            botnet: "fuzz".into(),
            config_url: "http://fuzz.example/c.bin".into(),
            config_file: None,
            login_key: None,
            login_key_placement: LoginKeyPlacement::BaseConfig,
            salt: None,
            salt_form: SaltForm::IntecoZ6,
            aes_xor: None,
            marker: false,
            scheme: BaseScheme::Rc4KeyBlock,
        };
        let citadel = BotImageSpec {
            variant: Variant::CitadelAes,
            rc4_state: Rc4State::from_key(&[*seed]),
            botnet: "fuzz".into(),
            config_url: "http://fuzz.example/c.bin".into(),
            config_file: Some("c.dat".into()),
            login_key: Some("00112233445566778899AABBCCDDEEFF".into()),
            login_key_placement: match seed % 3 {
                0 => LoginKeyPlacement::CodeLong,
                1 => LoginKeyPlacement::CodeShort,
                _ => LoginKeyPlacement::BaseConfig,
            },
            salt: Some(u32::from(*seed) * 0x0101_0101),
            salt_form: SaltForm::IntecoZ6,
            aes_xor: Some([*seed; 16]),
            marker: seed % 2 == 0,
            scheme: BaseScheme::XorSection,
        };
        let spec = if seed % 4 == 3 { ice_ix } else { citadel };
        let mut img = build_bot_image(&spec, u64::from(*seed))
            .expect("spec is valid")
            .bytes;
        for p in patches.chunks_exact(3) {
            let at = usize::from(u16::from_le_bytes([p[0], p[1]]));
            if let Some(b) = img.get_mut(at) {
                *b = p[2];
            }
        }
        check(&img);
    }
});
