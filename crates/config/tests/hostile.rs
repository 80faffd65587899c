//! Hostile input: wrong keys, truncation, random bytes, bit flips, and storages whose MD5 is
//! right but whose items are garbage. Every refusal names its check; nothing panics.

use dropwatch_config::binstorage::{item_flags, ContainerError, MAX_STORAGE_LEN};
use dropwatch_config::builder::{self, config_items, encrypt_zeus, Compression, StorageBuilder};
use dropwatch_config::{
    extract_zeus, Attempt, CitadelKeys, ConfigError, Rc4State, Variant, MAX_DIAGNOSTICS,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CONFIG: &[u8] = include_bytes!("data/config.bin");

fn key() -> Rc4State {
    Rc4State::from_key(b"secret key")
}

fn attempts(e: ConfigError) -> Vec<Attempt> {
    match e {
        ConfigError::NoVariant { attempts } => attempts,
        other => panic!("expected NoVariant, got {other}"),
    }
}

fn zeus_attempt(e: ConfigError) -> ContainerError {
    let a = attempts(e);
    assert_eq!(a.len(), 3);
    assert_eq!(a[0].variant, Variant::Zeus2);
    a[0].error.clone()
}

#[test]
fn wrong_key_is_refused_by_the_size_or_md5_check() {
    for k in [&b"incorrect"[..], b"secret kez", b"Secret key", b"x"] {
        let err = extract_zeus(CONFIG, &Rc4State::from_key(k)).expect_err("wrong key");
        let msg = err.to_string();
        assert!(
            msg.starts_with("config does not decrypt with this key: zeus2: "),
            "{msg}"
        );
        for a in attempts(err) {
            assert!(
                matches!(
                    a.error,
                    ContainerError::Size {
                        offset: 20,
                        len: 412,
                        ..
                    } | ContainerError::Md5 { offset: 32, .. }
                ),
                "{k:?}: {}",
                a.error
            );
        }
    }
}

#[test]
fn truncation_anywhere_is_refused_with_the_failed_check() {
    for cut in 0..CONFIG.len() {
        let e = zeus_attempt(extract_zeus(&CONFIG[..cut], &key()).expect_err("truncated"));
        if cut < 48 {
            assert_eq!(e, ContainerError::TooShort { len: cut, need: 48 });
        } else {
            assert_eq!(
                e,
                ContainerError::Size {
                    offset: 20,
                    size: 412,
                    min: 48,
                    len: cut
                }
            );
            assert!(
                e.to_string()
                    .contains("size check failed at offset 20: header size 412"),
                "{e}"
            );
        }
    }
}

#[test]
fn trailing_bytes_after_the_storage_are_tolerated() {
    let mut longer = CONFIG.to_vec();
    longer.extend_from_slice(b"junk");
    let cfg = extract_zeus(&longer, &key()).expect("size <= len is accepted");
    assert_eq!(cfg.injects.len(), 1);
    assert!(cfg
        .diagnostics
        .iter()
        .any(|d| d.code == "trailing_bytes" && d.offset == Some(412)));
}

#[test]
fn every_bit_flip_in_md5_or_items_fails_the_md5_check() {
    for byte in 32..CONFIG.len() {
        for bit in [0, 3, 7] {
            let mut f = CONFIG.to_vec();
            f[byte] ^= 1 << bit;
            let e = zeus_attempt(extract_zeus(&f, &key()).expect_err("flipped"));
            match &e {
                ContainerError::Md5 {
                    offset: 32,
                    from: 48,
                    to: 412,
                    stored,
                    computed,
                } => assert_ne!(stored, computed),
                other => panic!("byte {byte} bit {bit}: {other}"),
            }
            assert!(
                e.to_string().starts_with("md5 check failed at offset 32"),
                "{e}"
            );
        }
    }
}

#[test]
fn bit_flips_in_the_header_fail_or_are_reported_by_field() {
    // A ciphertext flip at i changes plaintext bytes i and i + 1 (the visual chain).
    for byte in 0..48 {
        let mut f = CONFIG.to_vec();
        f[byte] ^= 0x40;
        let r = extract_zeus(&f, &key());
        let codes: Vec<String> = r
            .as_ref()
            .map(|c| c.diagnostics.iter().map(|d| d.code.clone()).collect())
            .unwrap_or_default();
        match byte {
            // The random prefix is covered by nothing: it is random.
            0..=18 => assert!(r.is_ok() && codes.is_empty(), "byte {byte}: {codes:?}"),
            // The size field.
            19..=23 => assert!(
                matches!(
                    zeus_attempt(r.expect_err("size")),
                    ContainerError::Size { offset: 20, .. }
                ),
                "byte {byte}"
            ),
            // Flags, then count: outside the MD5, reported.
            24..=26 => assert_eq!(codes, ["header_flags"], "byte {byte}"),
            27 => assert_eq!(codes, ["header_flags", "count_mismatch"], "byte {byte}"),
            28..=30 => assert_eq!(codes, ["count_mismatch"], "byte {byte}"),
            _ => assert!(
                matches!(
                    zeus_attempt(r.expect_err("md5")),
                    ContainerError::Md5 { offset: 32, .. }
                ),
                "byte {byte}"
            ),
        }
    }
}

#[test]
fn oversized_input_is_refused_before_decrypting() {
    let big = vec![0u8; MAX_STORAGE_LEN + 1];
    let e = zeus_attempt(extract_zeus(&big, &key()).expect_err("too big"));
    assert_eq!(
        e,
        ContainerError::TooLong {
            len: MAX_STORAGE_LEN + 1,
            max: MAX_STORAGE_LEN
        }
    );
}

#[test]
fn random_bytes_with_random_keys_are_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let citadel = CitadelKeys {
        rc4_state: key(),
        login_key: b"533D9226E4C1CE0A9815DBEB19235AE4".to_vec(),
        aes_xor: [7; 16],
        salt: Some(0xF2C9CDEF),
    };
    for _ in 0..3000 {
        let len = rng.random_range(0..600);
        let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let k = Rc4State::from_key(&rng.random::<[u8; 8]>());
        assert!(extract_zeus(&data, &k).is_err());
        assert!(dropwatch_config::extract_citadel(&data, &citadel).is_err());
    }
}

/// Encrypts a plaintext storage after fixing its size and MD5, so the parser reaches the items.
fn seal(mut plain: Vec<u8>) -> Vec<u8> {
    builder::seal(&mut plain, 20).expect("small storage");
    encrypt_zeus(&plain, &key(), Variant::Zeus2).expect("zeus")
}

#[test]
fn garbage_items_behind_a_valid_md5_become_diagnostics() {
    let golden = extract_zeus(CONFIG, &key()).expect("decrypts");
    let base = config_items(&golden, Compression::Lz)
        .expect("items")
        .to_plain(&[0; 20])
        .expect("plain");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut decoded = 0;
    for round in 0..4000 {
        let mut plain = base.clone();
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(48..plain.len());
            plain[at] = rng.random();
        }
        if round % 5 == 0 {
            plain.truncate(rng.random_range(48..plain.len()));
        }
        let cfg = extract_zeus(&seal(plain), &key()).expect("md5 is right");
        assert!(cfg.diagnostics.len() <= MAX_DIAGNOSTICS + 1);
        decoded += usize::from(!cfg.injects.is_empty());
    }
    assert!(
        decoded > 100,
        "mutations rarely reach the injects: {decoded}"
    );
}

#[test]
fn decompression_bombs_and_bad_streams_are_bounded() {
    // realSize far beyond the limit: refused before allocating; a huge but allowed realSize
    // with a short stream: an NRV2B error, not a giant buffer.
    // A header, then two compressed items: 5 payload bytes with realSize u32::MAX, and 8
    // payload bytes with realSize 8 MiB.
    let mut plain = vec![0u8; 48];
    plain.extend_from_slice(&20005u32.to_le_bytes());
    plain.extend_from_slice(&(item_flags::IS_OPTION | item_flags::COMPRESSED).to_le_bytes());
    plain.extend_from_slice(&5u32.to_le_bytes());
    plain.extend_from_slice(&u32::MAX.to_le_bytes());
    plain.extend_from_slice(&[0xFF; 5]);
    plain.extend_from_slice(&20003u32.to_le_bytes());
    plain.extend_from_slice(&(item_flags::IS_OPTION | item_flags::COMPRESSED).to_le_bytes());
    plain.extend_from_slice(&8u32.to_le_bytes());
    plain.extend_from_slice(&(8u32 << 20).to_le_bytes());
    plain.extend_from_slice(&[0xFF; 8]);
    plain[28..32].copy_from_slice(&2u32.to_le_bytes());
    let cfg = extract_zeus(&seal(plain), &key()).expect("md5 is right");
    let codes: Vec<(&str, Option<u32>)> = cfg
        .diagnostics
        .iter()
        .map(|d| (d.code.as_str(), d.item_id))
        .collect();
    assert_eq!(
        codes,
        [
            ("decompress_budget", Some(20005)),
            ("item_data", Some(20003))
        ],
        "{:?}",
        cfg.diagnostics
    );
    assert!(
        cfg.diagnostics[1].message.contains("nrv2b"),
        "{}",
        cfg.diagnostics[1].message
    );
    assert!(cfg.webfilters.is_empty() && cfg.c2_urls.is_empty());
}

#[test]
fn unknown_items_are_kept_as_diagnostics() {
    let plain = StorageBuilder::new()
        .item(
            20003,
            item_flags::IS_OPTION,
            b"http://gate.example/g.php".to_vec(),
            Compression::None,
        )
        .item(
            20042,
            item_flags::IS_OPTION,
            vec![1, 2, 3],
            Compression::None,
        )
        .item(10001, item_flags::IS_SETTING, vec![9; 10], Compression::Lz)
        .to_plain(&[0; 20])
        .expect("plain");
    let cfg = extract_zeus(
        &encrypt_zeus(&plain, &key(), Variant::Zeus2).expect("zeus"),
        &key(),
    )
    .expect("decrypts");
    assert_eq!(cfg.c2_urls, ["http://gate.example/g.php"]);
    let unknown: Vec<(Option<u32>, Option<u32>)> = cfg
        .diagnostics
        .iter()
        .filter(|d| d.code == "unknown_item")
        .map(|d| (d.item_id, d.size))
        .collect();
    assert_eq!(unknown.len(), 2);
    assert_eq!(unknown[0], (Some(20042), Some(3)));
    assert_eq!(unknown[1].0, Some(10001));
    assert!(cfg
        .diagnostics
        .iter()
        .any(|d| d.code == "item_not_option" && d.item_id == Some(10001)));
}
