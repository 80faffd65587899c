//! Shared generators of random configs for the integration tests.
#![allow(dead_code)]

use dropwatch_config::builder::Compression;
use dropwatch_config::{Config, Family, Variant, WebDataFilter, WebFilter};
use dropwatch_model::{Inject, InjectBlock, InjectFormat, MaskKind};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub fn text(rng: &mut ChaCha8Rng, min: usize, max: usize) -> String {
    const CHARS: &[char] = &[
        'a', 'b', 'z', '0', '9', '.', '/', ':', '*', '#', '?', '-', '_', ' ', ';', 'é', 'ж', '!',
        '@', '^',
    ];
    let len = rng.random_range(min..=max);
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())])
        .collect()
}

pub fn bytes(rng: &mut ChaCha8Rng, max: usize) -> Vec<u8> {
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

pub fn maybe(
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
pub fn random_config(rng: &mut ChaCha8Rng, variant: Variant) -> Config {
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
pub fn comparable(mut c: Config) -> Config {
    c.storage = Config::empty(c.variant).storage;
    c.keys = Default::default();
    c.diagnostics.clear();
    c
}

pub fn compression(rng: &mut ChaCha8Rng) -> Compression {
    [Compression::None, Compression::Literals, Compression::Lz][rng.random_range(0..3)]
}
