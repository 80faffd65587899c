//! Random configs of every supported variant, built, encrypted, decrypted and decoded again.

use dropwatch_config::builder::{build_citadel, build_zeus, Compression};
use dropwatch_config::{
    extract_citadel, extract_zeus, CitadelKeys, Config, Family, Rc4State, Variant, WebDataFilter,
    WebFilter,
};
use dropwatch_model::{Inject, InjectBlock, InjectFormat, MaskKind};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn text(rng: &mut ChaCha8Rng, min: usize, max: usize) -> String {
    const CHARS: &[char] = &[
        'a', 'b', 'z', '0', '9', '.', '/', ':', '*', '#', '?', '-', '_', ' ', ';', 'é', 'ж', '!',
        '@', '^',
    ];
    let len = rng.random_range(min..=max);
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())])
        .collect()
}

fn bytes(rng: &mut ChaCha8Rng, max: usize) -> Vec<u8> {
    let len = rng.random_range(0..=max);
    // Runs and repeats so that NRV2B finds matches; any byte, NUL included.
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        if !v.is_empty() && rng.random_bool(0.3) {
            let d = rng.random_range(1..=v.len());
            for _ in 0..rng.random_range(1..40).min(len - v.len()) {
                v.push(v[v.len() - d]);
            }
        } else {
            v.push(rng.random());
        }
    }
    v
}

fn maybe(
    rng: &mut ChaCha8Rng,
    p: f64,
    f: impl FnOnce(&mut ChaCha8Rng) -> String,
) -> Option<String> {
    if rng.random_bool(p) {
        Some(f(rng))
    } else {
        None
    }
}

/// A config in the canonical form the decoder produces (flag letters in G P L H F D I C order).
fn random_config(rng: &mut ChaCha8Rng, variant: Variant) -> Config {
    let family = variant.family();
    let mut cfg = Config::empty(variant);
    cfg.version = maybe(rng, 0.8, |r| {
        format!(
            "{}.{}.{}.{}",
            r.random::<u8>(),
            r.random::<u8>(),
            r.random::<u8>(),
            r.random::<u8>()
        )
    });
    cfg.loader_url = maybe(rng, 0.7, |r| format!("http://{}/bot.exe", text(r, 0, 30)));
    if rng.random_bool(0.8) {
        cfg.c2_urls
            .push(format!("http://{}/gate.php", text(rng, 1, 40)));
    }
    cfg.config_urls = (0..rng.random_range(0..3))
        .map(|_| format!("http://{}", text(rng, 1, 30)))
        .collect();
    cfg.webfilters = (0..rng.random_range(0..8))
        .map(|_| {
            let prefixes: &[&str] = if family == Family::Citadel {
                &["", "!", "@", "-", "^", "#"]
            } else {
                &["", "!", "@", "-", "^"]
            };
            let p = prefixes[rng.random_range(0..prefixes.len())];
            // A mask starting with a prefix character would be read as that prefix.
            WebFilter::parse(&format!("{p}http://{}", text(rng, 0, 20)), family)
        })
        .collect();
    cfg.webdata_filters = (0..rng.random_range(0..3))
        .map(|_| WebDataFilter {
            url_mask: format!("*{}*", text(rng, 0, 10)),
            variables: (0..rng.random_range(1..4))
                .map(|_| format!("v{}", rng.random::<u16>()))
                .collect(),
        })
        .collect();
    cfg.injects = (0..rng.random_range(0..6))
        .map(|_| {
            let mut letters: String = "GPLHFDIC"
                .chars()
                .filter(|_| rng.random_bool(0.4))
                .collect();
            let fake = family == Family::Zeus && rng.random_bool(0.2);
            let mut inj = Inject {
                format: if family == Family::Citadel {
                    InjectFormat::CitadelBinary
                } else {
                    InjectFormat::ZeusBinary
                },
                url_mask: text(rng, 0, 40),
                mask_kind: MaskKind::ZeusGlob,
                post_blacklist: maybe(rng, 0.3, |r| text(r, 0, 10)),
                post_whitelist: maybe(rng, 0.3, |r| text(r, 0, 10)),
                url_block: if family == Family::Zeus {
                    maybe(rng, 0.3, |r| text(r, 0, 10))
                } else {
                    None
                },
                matched_context: maybe(rng, 0.3, |r| text(r, 0, 10)),
                line: None,
                ..Inject::default()
            };
            if fake {
                let mirror = rng.random_bool(0.5);
                if mirror {
                    letters.push('S');
                }
                inj.attributes.push((
                    "fake".into(),
                    if mirror { "mirror" } else { "redirect" }.into(),
                ));
                if rng.random_bool(0.8) {
                    let u = format!("http://{}", text(rng, 1, 20));
                    inj.attributes.push(("fake_url".into(), u.clone()));
                    inj.endpoints.push(u);
                }
            } else {
                inj.blocks = (0..rng.random_range(1..4))
                    .map(|_| InjectBlock {
                        before: bytes(rng, 60),
                        inject: bytes(rng, 300),
                        after: bytes(rng, 60),
                    })
                    .collect();
            }
            inj.flags = letters;
            inj
        })
        .collect();
    cfg
}

/// The decoded config minus what only decoding knows (storage summary, keys, diagnostics).
fn comparable(mut c: Config) -> Config {
    c.storage = Config::empty(c.variant).storage;
    c.keys = Default::default();
    c.diagnostics.clear();
    c
}

fn compression(rng: &mut ChaCha8Rng) -> Compression {
    [Compression::None, Compression::Literals, Compression::Lz][rng.random_range(0..3)]
}

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
