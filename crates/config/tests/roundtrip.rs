//! Random configs of every supported variant, built, encrypted, decrypted and decoded again.

mod common;

use common::{comparable, compression, random_config, text};
use dropwatch_config::builder::{build_citadel, build_zeus, Compression};
use dropwatch_config::{extract_citadel, extract_zeus, CitadelKeys, Rc4State, Variant};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn zeus_variants_round_trip_over_many_seeds() {
    for seed in 0..150u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for variant in [Variant::Zeus2, Variant::IceIx, Variant::Evolution] {
            let cfg = random_config(&mut rng, variant);
            // Half the keys as text, half as a 258-byte state with arbitrary x, y.
            let key = if rng.random_bool(0.5) {
                Rc4State::from_key(text(&mut rng, 1, 20).as_bytes())
            } else {
                let mut raw = Rc4State::from_key(&rng.random::<[u8; 16]>()).to_bytes();
                raw[256] = rng.random();
                raw[257] = rng.random();
                Rc4State::from_bytes(&raw).expect("258 bytes")
            };
            let comp = compression(&mut rng);
            let file = build_zeus(&cfg, &key, comp, rng.random()).expect("builds");
            let out =
                extract_zeus(&file, &key).unwrap_or_else(|e| panic!("seed {seed} {variant}: {e}"));
            assert_eq!(out.variant, variant, "seed {seed}");
            assert!(
                out.diagnostics.is_empty(),
                "seed {seed} {variant}: {:?}",
                out.diagnostics
            );
            assert_eq!(out.storage.size as usize, file.len());
            if comp != Compression::None {
                // The version is a fixed 4-byte value; everything else non-empty goes through NRV2B.
                assert!(
                    out.storage
                        .items
                        .iter()
                        .all(|i| i.compressed || i.size == 0 || i.id == 20001),
                    "seed {seed}"
                );
            }
            assert_eq!(comparable(out), cfg, "seed {seed} {variant}");
        }
    }
}

#[test]
fn citadel_round_trips_over_many_seeds() {
    for seed in 0..150u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
        let cfg = random_config(&mut rng, Variant::CitadelAes);
        let keys = CitadelKeys {
            rc4_state: Rc4State::from_key(&rng.random::<[u8; 32]>()),
            login_key: hex::encode_upper(rng.random::<[u8; 16]>()).into_bytes(),
            aes_xor: if rng.random_bool(0.2) {
                [0; 16]
            } else {
                rng.random()
            },
            salt: if rng.random_bool(0.5) {
                Some(rng.next_u32())
            } else {
                None
            },
        };
        let file = build_citadel(&cfg, &keys, compression(&mut rng), rng.random()).expect("builds");
        assert_eq!(file.len() % 16, 0);
        let out = extract_citadel(&file, &keys).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(
            out.diagnostics.is_empty(),
            "seed {seed}: {:?}",
            out.diagnostics
        );
        assert_eq!(
            out.storage.random_prefix.len(),
            64,
            "32-byte prefix found by the scan"
        );
        assert_eq!(out.keys.aes_key, Some(hex::encode(keys.aes_key())));
        assert_eq!(out.keys.salt, keys.salt.map(|s| format!("0x{s:08X}")));
        assert_eq!(comparable(out), cfg, "seed {seed}");

        // Any one key part wrong: refused, with the failed check named.
        let mut wrong = keys.clone();
        match rng.random_range(0..3) {
            0 => wrong.login_key[0] ^= 1,
            1 => wrong.aes_xor[rng.random_range(0..16)] ^= 0x80,
            _ => wrong.salt = Some(keys.salt.map_or(1, |s| s ^ 0x0100_0000)),
        }
        match extract_citadel(&file, &wrong) {
            Err(err) => assert!(
                err.to_string()
                    .starts_with("citadel storage header not found"),
                "seed {seed}: {err}"
            ),
            // With the final XOR, a wrong 16-byte XOR key cancels out beyond the 32-byte prefix
            // (the prefix is the final XOR's key and carries the same error), so only the
            // random prefix comes out different.
            Ok(out) => {
                assert!(
                    keys.salt.is_some() && wrong.aes_xor != keys.aes_xor,
                    "seed {seed}: wrong key accepted"
                );
                assert_eq!(comparable(out), cfg, "seed {seed}");
            }
        }
    }
}

#[test]
fn zeus_key_of_one_variant_does_not_pass_as_another() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let cfg = random_config(&mut rng, Variant::Evolution);
    let key = Rc4State::from_key(b"k");
    let file = build_zeus(&cfg, &key, Compression::Lz, [3; 20]).expect("builds");
    let out = extract_zeus(&file, &key).expect("decrypts");
    assert_eq!(out.variant, Variant::Evolution);
    let err = extract_zeus(&file, &Rc4State::from_key(b"K")).expect_err("wrong key");
    assert!(
        err.to_string().contains("zeus2: ")
            && err.to_string().contains("ice_ix: ")
            && err.to_string().contains("evolution: "),
        "{err}"
    );
}
