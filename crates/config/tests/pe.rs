//! Synthetic bot images of every supported variant: build an image and a config.bin, find the
//! base config in the image, decrypt the config.bin with what was found, compare every field.
//! Then hostile images: random bytes, truncations, non-ZeuS PEs, broken patterns.

mod common;

use common::{comparable, compression, random_config};
use dropwatch_config::basecfg::{locate, BaseScheme, LoginKeySource, MIN_BASE_CONFIG_LEN};
use dropwatch_config::builder::{build_citadel, build_zeus};
use dropwatch_config::pe_builder::{
    build_bot_image, build_pe, lcg_bytes, BotImage, BotImageSpec, LoginKeyPlacement, SaltForm,
    SectionSpec, SplitMix64, IMAGE_BASE, SCN_DATA, SCN_RDATA, SCN_TEXT,
};
use dropwatch_config::{
    extract_with_base, BaseConfigError, CitadelKeys, ConfigError, Family, PeError, Rc4State,
    Rc4Variant, Report, Variant,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VARIANTS: [Variant; 4] = [
    Variant::Zeus2,
    Variant::IceIx,
    Variant::Evolution,
    Variant::CitadelAes,
];

fn printable(rng: &mut ChaCha8Rng, min: usize, max: usize, alphabet: &[u8]) -> String {
    let n = rng.random_range(min..=max);
    (0..n)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

const HOST: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-.";
const ANY: &[u8] = b"abcXYZ019 _-.!@#$%^&*()[]{}<>~`'\"\\/;:,?+=";

fn random_spec(rng: &mut ChaCha8Rng, variant: Variant) -> BotImageSpec {
    let extras = matches!(variant, Variant::Evolution | Variant::CitadelAes);
    let citadel = variant == Variant::CitadelAes;
    let mut botnet = printable(rng, 1, 20, ANY);
    if botnet.starts_with(' ') {
        botnet.replace_range(0..1, "b");
    }
    let login_key = if citadel || (extras && rng.random_bool(0.5)) {
        let k: [u8; 16] = rng.random();
        Some(if rng.random_bool(0.5) {
            hex::encode_upper(k)
        } else {
            hex::encode(k)
        })
    } else {
        None
    };
    let login_key_placement = if citadel {
        [
            LoginKeyPlacement::CodeLong,
            LoginKeyPlacement::CodeShort,
            LoginKeyPlacement::BaseConfig,
        ][rng.random_range(0..3)]
    } else {
        LoginKeyPlacement::BaseConfig
    };
    let salt = (citadel && rng.random_bool(0.6)).then(|| rng.random());
    let aes_xor = (citadel && rng.random_bool(0.7)).then(|| rng.random());
    // A Citadel image needs at least one Citadel sign to be told from ZeuS.
    let marker = citadel
        && (rng.random_bool(0.5)
            || (login_key_placement == LoginKeyPlacement::BaseConfig
                && salt.is_none()
                && aes_xor.is_none()));
    BotImageSpec {
        variant,
        rc4_state: Rc4State::from_key(&rng.random::<[u8; 24]>()),
        botnet,
        config_url: format!(
            "{}://{}/{}.bin",
            ["http", "https", "HTTP"][rng.random_range(0..3)],
            printable(rng, 1, 30, HOST),
            printable(rng, 0, 20, HOST)
        ),
        config_file: (extras && rng.random_bool(0.5))
            .then(|| format!("C:\\{}.dat", printable(rng, 1, 12, HOST))),
        login_key,
        login_key_placement,
        salt,
        salt_form: [SaltForm::IntecoZ6, SaltForm::Mwcfg, SaltForm::Jpcert][rng.random_range(0..3)],
        aes_xor,
        marker,
        // ZeuS 2.1 and ICE IX images come in both layouts.
        scheme: if matches!(variant, Variant::Zeus2 | Variant::IceIx) && rng.random_bool(0.5) {
            BaseScheme::Rc4KeyBlock
        } else {
            BaseScheme::XorSection
        },
    }
}

fn image(spec: &BotImageSpec, seed: u64) -> BotImage {
    build_bot_image(spec, seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"))
}

#[test]
fn every_variant_round_trips_through_a_synthetic_image() {
    let (mut images, mut padding_read_as_botnet) = (0usize, 0usize);
    for seed in 0..120u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(7000 + seed);
        for variant in VARIANTS {
            let spec = random_spec(&mut rng, variant);
            let img = image(&spec, rng.random());
            let cfg = random_config(&mut rng, variant);
            let comp = compression(&mut rng);
            let citadel_keys = spec.login_key.as_ref().map(|k| CitadelKeys {
                rc4_state: spec.rc4_state.clone(),
                login_key: k.clone().into_bytes(),
                aes_xor: spec.aes_xor.unwrap_or([0; 16]),
                salt: spec.salt,
            });
            let file = if variant == Variant::CitadelAes {
                let keys = citadel_keys.as_ref().expect("citadel has a login key");
                build_citadel(&cfg, keys, comp, rng.random()).expect("builds")
            } else {
                build_zeus(&cfg, &spec.rc4_state, comp, rng.random()).expect("builds")
            };
            let ctx = format!("seed {seed} {variant} {:?}", img.layout.field_order);

            // The base config, exactly where the builder put it.
            let base = locate(&img.bytes).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let loc = &base.location;
            assert_eq!(loc.va, img.layout.base_config_va, "{ctx}");
            assert_eq!(loc.file_offset, img.layout.base_config_file_offset, "{ctx}");
            assert_eq!(loc.code_offset, img.layout.code_offset, "{ctx}");
            assert_eq!(loc.scheme, spec.scheme, "{ctx}");
            assert_eq!(loc.key_block_va, img.layout.key_block_va, "{ctx}");
            if spec.scheme == BaseScheme::XorSection {
                assert_eq!(loc.size, img.layout.base_config_size, "{ctx}");
                assert_eq!(
                    (loc.section.as_str(), loc.xor_section),
                    (".data", 2),
                    "{ctx}"
                );
                assert_eq!(loc.keystream, None, "{ctx}");
            } else {
                // The struct's size is not in the 2.1 code: the rest of the last section.
                assert!(loc.size >= img.layout.base_config_size, "{ctx}");
                assert_eq!(
                    (loc.section.as_str(), loc.xor_section),
                    (".data1", img.layout.sections - 1),
                    "{ctx}"
                );
                let keystream = if variant == Variant::IceIx {
                    Rc4Variant::IceIx
                } else {
                    Rc4Variant::Zeus
                };
                assert_eq!(loc.keystream, Some(keystream), "{ctx}");
            }
            assert_eq!(loc.rc4_offset, img.layout.rc4_offset, "{ctx}");
            assert_eq!(base.rc4_state, spec.rc4_state, "{ctx}");
            assert_eq!(base.family, variant.family(), "{ctx}");
            // The botnet is read without layout knowledge, as a UTF-16 string: when the random
            // padding right before the field happens to be a printable WCHAR (about 0.15% of
            // builds, as with the real builder's filler), it reads as part of the name, or
            // (for a name of 20 characters) makes the run too long to be one. Counted, and
            // bounded below; anything else is a failure.
            match base.botnet.as_deref() {
                Some(b) if b == spec.botnet => {}
                Some(b) if b.len() > spec.botnet.len() && b.ends_with(spec.botnet.as_str()) => {
                    padding_read_as_botnet += 1
                }
                None if spec.botnet.len() == 20 => padding_read_as_botnet += 1,
                other => panic!("{ctx}: botnet {other:?}, expected {:?}", spec.botnet),
            }
            images += 1;
            assert_eq!(base.urls.len(), 1, "{ctx}: {:?}", base.urls);
            assert_eq!(base.urls[0].url, spec.config_url, "{ctx}");
            assert_eq!(base.urls[0].file, spec.config_file, "{ctx}");
            assert_eq!(
                base.login_key.as_ref().map(|(k, _)| k.clone()),
                spec.login_key.clone().map(String::into_bytes),
                "{ctx}"
            );
            if let Some((_, src)) = &base.login_key {
                let from_code = matches!(src, LoginKeySource::Code { .. });
                assert_eq!(
                    from_code,
                    spec.login_key_placement != LoginKeyPlacement::BaseConfig,
                    "{ctx}"
                );
            }
            assert_eq!(base.salt, spec.salt, "{ctx}");
            assert_eq!(base.aes_xor, spec.aes_xor, "{ctx}");
            assert_eq!(base.citadel_signs.contains(&"marker"), spec.marker, "{ctx}");
            assert!(base.diagnostics.is_empty(), "{ctx}: {:?}", base.diagnostics);

            // The report of the image alone.
            let r = Report::from_base(&base);
            assert_eq!(r.config_urls, vec![spec.config_url.clone()], "{ctx}");
            assert_eq!(
                r.keys.rc4_state_sha256,
                Some(spec.rc4_state.sha256_hex()),
                "{ctx}"
            );
            if variant == Variant::CitadelAes {
                assert_eq!(r.variant, Some(Variant::CitadelAes));
                let keys = citadel_keys.as_ref().expect("citadel keys");
                assert_eq!(r.keys.aes_key, Some(hex::encode(keys.aes_key())), "{ctx}");
            } else {
                assert_eq!(r.variant, None, "{ctx}");
            }

            // The config.bin, decrypted with nothing but the image.
            let out = extract_with_base(&base, &file).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(out.variant, variant, "{ctx}");
            assert!(out.diagnostics.is_empty(), "{ctx}: {:?}", out.diagnostics);
            assert_eq!(out.keys.login_key, spec.login_key, "{ctx}");
            if variant == Variant::CitadelAes {
                assert_eq!(out.keys.salt, spec.salt.map(|s| format!("0x{s:08X}")));
                assert_eq!(
                    out.keys.aes_xor,
                    spec.aes_xor.filter(|k| *k != [0; 16]).map(hex::encode)
                );
            }
            let mut expected = cfg.clone();
            expected.botnet = base.botnet.clone();
            expected.config_urls.insert(0, spec.config_url.clone());
            assert_eq!(comparable(out), expected, "{ctx}");
        }
    }
    eprintln!("{padding_read_as_botnet} of {images} images: padding read as part of the botnet");
    assert!(
        padding_read_as_botnet * 100 <= images,
        "{padding_read_as_botnet} of {images}"
    );
}

#[test]
fn a_config_of_another_bot_is_refused_naming_the_checks() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    for variant in VARIANTS {
        let spec = random_spec(&mut rng, variant);
        let img = image(&spec, 1);
        let base = locate(&img.bytes).expect("locates");
        let other = Rc4State::from_key(b"another bot");
        let cfg = random_config(&mut rng, Variant::Zeus2);
        let file = build_zeus(&cfg, &other, compression(&mut rng), [1; 20]).expect("builds");
        let err = extract_with_base(&base, &file).expect_err("wrong key");
        let msg = err.to_string();
        assert!(matches!(err, ConfigError::BaseKeys { .. }), "{msg}");
        assert!(
            msg.starts_with("config does not decrypt with the keys from the bot image: "),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
        assert!(msg.contains("check failed"), "{msg}");
    }
}

/// A `.text` of `ret`, then the 2.0.8.9 code reading a `size`-byte struct at `va`.
fn ret_then_2089_code(size: u32, va: u32) -> Vec<u8> {
    let mut text = vec![0xC3, 0x56, 0xBA];
    text.extend_from_slice(&size.to_le_bytes());
    text.extend_from_slice(&[0x52, 0x68]);
    text.extend_from_slice(&va.to_le_bytes());
    text.extend_from_slice(&[0x50, 0xE8, 0, 0, 0, 0]);
    text
}

fn one_line(e: &BaseConfigError) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "{s}");
    assert!(!s.is_empty());
    s
}

#[test]
fn random_bytes_are_not_a_pe() {
    let mut rng = SplitMix64::new(3);
    for len in [0usize, 1, 2, 63, 64, 65, 200, 4096, 70_000] {
        for _ in 0..20 {
            let mut bytes = rng.bytes(len);
            let err = locate(&bytes).expect_err("random bytes");
            assert!(one_line(&err).starts_with("no PE header"), "{err}");
            // With an MZ but nothing else.
            if len >= 2 {
                bytes[..2].copy_from_slice(b"MZ");
                let err = locate(&bytes).expect_err("random bytes after MZ");
                let s = one_line(&err);
                assert!(
                    s.starts_with("no PE header") || s.starts_with("not a PE32"),
                    "{s}"
                );
            }
        }
    }
}

#[test]
fn truncated_images_fail_with_a_named_check() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let spec = random_spec(&mut rng, Variant::CitadelAes);
    let img = image(&spec, 9);
    let full = locate(&img.bytes).expect("whole image");
    let end_of_base = img.layout.base_config_file_offset + img.layout.base_config_size as usize;
    for cut in (0..img.bytes.len()).step_by(7) {
        match locate(&img.bytes[..cut]) {
            Ok(b) => {
                // Only possible once the struct is in: then it is the same.
                assert!(cut >= end_of_base, "cut {cut}");
                assert_eq!(b.rc4_state, full.rc4_state);
            }
            Err(e) => {
                let s = one_line(&e);
                assert!(
                    [
                        "no PE header",
                        "malformed PE header",
                        "no base-config code pattern",
                        "base config VA check failed",
                        "no RC4 permutation found in .data",
                    ]
                    .iter()
                    .any(|p| s.starts_with(p)),
                    "cut {cut}: {s}"
                );
                if cut >= 0x400 && cut < end_of_base {
                    assert!(!s.starts_with("no PE header"), "cut {cut}: {s}");
                }
            }
        }
    }
}

#[test]
fn a_pe_that_is_not_a_bot_has_no_code_pattern() {
    let mut rng = SplitMix64::new(11);
    for n in 3..6 {
        let sections: Vec<SectionSpec> = (0..n)
            .map(|i| {
                let len = 1 + rng.below(8192);
                SectionSpec::new(&format!(".s{i}"), rng.bytes(len), SCN_DATA)
            })
            .collect();
        let pe = build_pe(&sections, 0).expect("builds");
        let err = locate(&pe).expect_err("not a bot");
        assert!(
            matches!(err, BaseConfigError::NoCodePattern { .. }),
            "{err}"
        );
        assert!(one_line(&err).starts_with("no base-config code pattern"));
    }
    // Two sections: there is no section 2 for the XOR key.
    let pe = build_pe(
        &[
            SectionSpec::new(".text", vec![0xC3], SCN_TEXT),
            SectionSpec::new(".data", vec![0; 600], SCN_DATA),
        ],
        0,
    )
    .expect("builds");
    let err = locate(&pe).expect_err("two sections");
    assert!(
        one_line(&err).starts_with("no base-config code pattern"),
        "{err}"
    );
    // With the 2.0.8.9 code but two sections: there is no section 2 for the XOR key (the 2.1
    // scheme, which needs none, has no code here either).
    let text = ret_then_2089_code(600, IMAGE_BASE + 0x2000);
    let pe = build_pe(
        &[
            SectionSpec::new(".text", text, SCN_TEXT),
            SectionSpec::new(".data", vec![0; 600], SCN_DATA),
        ],
        0,
    )
    .expect("builds");
    let err = locate(&pe).expect_err("two sections");
    assert_eq!(
        one_line(&err),
        "no section 2: the image has 2 sections; the base config's XOR key is section index 2"
    );
}

#[test]
fn broken_patterns_and_headers_name_the_failed_check() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mut spec = random_spec(&mut rng, Variant::Zeus2);
    spec.scheme = BaseScheme::XorSection;
    let img = image(&spec, 21);
    let code = img.layout.code_offset;
    let nt = u32::from_le_bytes(img.bytes[0x3C..0x40].try_into().expect("4 bytes")) as usize;

    // The struct without its RC4 state: one S-box byte duplicated.
    let mut b = img.bytes.clone();
    let at = img.layout.base_config_file_offset + img.layout.rc4_offset;
    b[at] ^= 0x01;
    let err = locate(&b).expect_err("s-box broken");
    assert!(
        one_line(&err).starts_with("no RC4 permutation found in .data: base config at VA"),
        "{err}"
    );

    // A VA outside every section, and one in .bss-like space past the raw data.
    let mut b = img.bytes.clone();
    b[code + 8..code + 12].copy_from_slice(&0x7000_0000u32.to_le_bytes());
    assert!(one_line(&locate(&b).expect_err("bad va")).starts_with("base config VA check failed"));

    // A size below the RC4 state.
    let mut b = img.bytes.clone();
    b[code + 2..code + 6].copy_from_slice(&((MIN_BASE_CONFIG_LEN - 1) as u32).to_le_bytes());
    assert!(one_line(&locate(&b).expect_err("small")).starts_with("base config size check failed"));
    b[code + 2..code + 6].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(one_line(&locate(&b).expect_err("huge")).starts_with("base config size check failed"));

    // PE32+ and another machine.
    let mut b = img.bytes.clone();
    b[nt + 24..nt + 26].copy_from_slice(&0x20Bu16.to_le_bytes());
    let err = locate(&b).expect_err("pe32+");
    assert!(matches!(
        err,
        BaseConfigError::Pe(PeError::OptionalMagic { magic: 0x20B, .. })
    ));
    assert!(one_line(&err).contains("PE32+ is 64-bit"));
    let mut b = img.bytes.clone();
    b[nt + 4..nt + 6].copy_from_slice(&0x8664u16.to_le_bytes());
    assert!(one_line(&locate(&b).expect_err("amd64")).starts_with("not a PE32 x86 image"));

    // e_lfanew past the end, and no PE signature.
    let mut b = img.bytes.clone();
    b[0x3C..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(one_line(&locate(&b).expect_err("lfanew")).contains("e_lfanew"));
    let mut b = img.bytes.clone();
    b[nt] = b'X';
    assert!(one_line(&locate(&b).expect_err("sig")).contains("no PE\\0\\0 signature"));

    // Section count past the file.
    let mut b = img.bytes.clone();
    b[nt + 6..nt + 8].copy_from_slice(&90u16.to_le_bytes());
    let e = locate(&b[..0x300]).expect_err("section table past the end");
    assert!(one_line(&e).starts_with("malformed PE header"), "{e}");
}

#[test]
fn broken_2_1_images_name_the_failed_check() {
    let mut rng = ChaCha8Rng::seed_from_u64(2101);
    let mut spec = random_spec(&mut rng, Variant::IceIx);
    spec.scheme = BaseScheme::Rc4KeyBlock;
    let img = image(&spec, 2101);
    let code = img.layout.code_offset;
    let key_va = img.layout.key_block_va.expect("2.1 image");
    assert_eq!(
        locate(&img.bytes).expect("locates").location.key_block_va,
        Some(key_va)
    );

    // The key block's VA outside every section.
    let mut b = img.bytes.clone();
    b[code + 26..code + 30].copy_from_slice(&0x7000_0000u32.to_le_bytes());
    let e = locate(&b).expect_err("bad key VA");
    assert!(
        one_line(&e).starts_with("2.1 key block check failed: VA 0x70000000"),
        "{e}"
    );

    // The code pointing one byte into the key block: another key schedule, no RC4 state
    // comes out of the last section.
    let mut b = img.bytes.clone();
    b[code + 26..code + 30].copy_from_slice(&(key_va + 1).to_le_bytes());
    let e = locate(&b).expect_err("shifted key");
    assert!(
        one_line(&e).starts_with(
            "no RC4 permutation in the last section (.data1) decrypted from byte 2 with the key block at VA"
        ),
        "{e}"
    );

    // Truncated inside the last section: refused with a named check, never a panic.
    let base = locate(&img.bytes).expect("locates");
    for cut in [base.location.file_offset, base.location.file_offset + 100] {
        let e = locate(&img.bytes[..cut]).expect_err("truncated");
        one_line(&e);
    }
}

#[test]
fn section_names_are_escaped_for_one_line_messages() {
    // A fuzzer-found case: a section name with a newline reached an error message.
    let text = ret_then_2089_code(600, IMAGE_BASE + 0x2000);
    let pe = build_pe(
        &[
            SectionSpec::new(".text", text, SCN_TEXT),
            SectionSpec::new("a\nb\"\u{7f}", vec![0x11; 600], SCN_DATA),
            SectionSpec::new(".reloc", vec![0x22; 600], SCN_RDATA),
        ],
        0,
    )
    .expect("builds");
    let e = locate(&pe).expect_err("no permutation");
    let msg = one_line(&e);
    assert!(msg.contains(r#"a\nb\"\u{7f}"#), "{msg}");
}

#[test]
fn every_byte_flip_in_the_headers_is_survived() {
    let mut rng = ChaCha8Rng::seed_from_u64(33);
    let spec = random_spec(&mut rng, Variant::CitadelAes);
    let img = image(&spec, 33);
    for i in 0..0x400.min(img.bytes.len()) {
        for v in [0x00u8, 0xFF, 0x80, 0x01] {
            let mut b = img.bytes.clone();
            b[i] = v;
            if let Err(e) = locate(&b) {
                one_line(&e);
            }
        }
    }
}

#[test]
fn the_last_section_is_the_fallback_xor_key() {
    // Volatility reads the key from the last section: an image built that way (section 2 is
    // something else) still decodes, with a note.
    let state = Rc4State::from_key(b"last section");
    let mut plain = lcg_bytes(77, 40);
    plain.extend_from_slice(&state.to_bytes());
    plain.extend_from_slice(b"http://last.example/c.bin\0");
    plain.extend(lcg_bytes(78, 30));
    let size = plain.len();
    let key: Vec<u8> = (0..size + 10).map(|i| (i * 7 + 3) as u8).collect();
    let stored: Vec<u8> = plain.iter().zip(&key).map(|(a, b)| a ^ b).collect();
    let data_rva = 0x2000u32; // .text is one page
    let text = ret_then_2089_code(size as u32, IMAGE_BASE + data_rva);
    let pe = build_pe(
        &[
            SectionSpec::new(".text", text, SCN_TEXT),
            SectionSpec::new(".data", stored, SCN_DATA),
            SectionSpec::new(".rdata", vec![0x11; 2000], SCN_RDATA),
            SectionSpec::new(".key", key, SCN_RDATA),
        ],
        0,
    )
    .expect("builds");
    let base = locate(&pe).expect("found with the last section");
    assert_eq!(base.location.xor_section, 3);
    assert_eq!(base.rc4_state, state);
    assert_eq!(base.location.rc4_offset, 40);
    assert_eq!(base.urls[0].url, "http://last.example/c.bin");
    assert_eq!(base.family, Family::Zeus);
    assert!(base
        .diagnostics
        .iter()
        .any(|d| d.code == "xor_last_section"));
    assert!(base.diagnostics.iter().any(|d| d.code == "no_botnet"));
}
