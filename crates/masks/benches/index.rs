//! `MaskIndex` against the naive scan, on 100,000 generated bank-like URL masks.
//!
//! The masks are generated deterministically (ChaCha8, fixed seed) in the shapes of the public
//! corpus: `https://www#.bankname.tld/path*`, `*bankname.tld/*`, `https://*.bankname.tld/...`,
//! a few keyword masks (`*keyword*`) and a few without any literal (`*`, `*.*`).
//!
//! Run with `cargo bench -p dropwatch-masks`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dropwatch_masks::{bundled_registry, url_mask_matches, InstitutionIndex, MaskIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MASKS: usize = 100_000;

const SYLLABLES: &[&str] = &[
    "ban", "co", "mer", "cial", "sa", "vings", "tru", "st", "ka", "ne", "mi", "to", "yo", "ha",
    "ma", "na", "ri", "su", "ki", "fi", "del", "ta", "nor", "de", "uni", "cre", "dit", "pop",
];
const SUBDOMAINS: &[&str] = &[
    "www", "online", "ib", "secure", "banking", "netbank", "direct", "login", "my", "ebank",
];
const TLDS: &[&str] = &[
    "com", "co.jp", "co.uk", "de", "es", "it", "fr", "com.au", "jp", "net", "ru", "com.tr",
];
const PATHS: &[&str] = &[
    "login",
    "signon",
    "cgi-bin/ias",
    "servlet/Login",
    "olb/x/LoginMember.do",
    "MyAccounts.aspx",
    "webscr?cmd=_account",
    "index.jsp",
    "portal/server.pt",
    "auth/logon.ibc",
];
const KEYWORDS: &[&str] = &[
    "facebook", "twitter", "youtube", "webmail", "casino", "games",
];

/// One generated bank: its name (unique) and top-level domain.
struct Bank {
    name: String,
    tld: &'static str,
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, xs: &[T]) -> T {
    xs[rng.random_range(0..xs.len())]
}

fn banks(rng: &mut ChaCha8Rng, n: usize) -> Vec<Bank> {
    (0..n)
        .map(|i| {
            let mut name = String::new();
            for _ in 0..rng.random_range(2..4) {
                name.push_str(pick(rng, SYLLABLES));
            }
            if rng.random_bool(0.3) {
                name.push('-');
            }
            name.push_str(pick(rng, &["bank", "banca", "ginko", "kasse", "credit"]));
            // Unique, as bank domains are.
            name.push_str(&i.to_string());
            Bank {
                name,
                tld: pick(rng, TLDS),
            }
        })
        .collect()
}

fn mask_for(rng: &mut ChaCha8Rng, bank: &Bank) -> String {
    let (name, tld) = (&bank.name, bank.tld);
    let sub = pick(rng, SUBDOMAINS);
    let path = pick(rng, PATHS);
    match rng.random_range(0..100) {
        0..=29 => format!("https://{sub}.{name}.{tld}/{path}*"),
        30..=44 => format!("https://{sub}#.{name}.{tld}/*"),
        45..=64 => format!("*{name}.{tld}/*"),
        65..=79 => format!("https://*.{name}.{tld}/{path}"),
        80..=94 => format!("*{name}.{tld}/*{path}*"),
        _ => format!("http*://{sub}*.{name}.{tld}/*"),
    }
}

/// The masks, and a URL that some of them match.
fn corpus() -> (Vec<String>, String) {
    let mut rng = ChaCha8Rng::seed_from_u64(0x00da_7a5e);
    let banks = banks(&mut rng, MASKS / 2);
    let mut masks: Vec<String> = (0..MASKS - 20)
        .map(|i| mask_for(&mut rng, &banks[i % banks.len()]))
        .collect();
    masks.extend(KEYWORDS.iter().map(|k| format!("*{k}*")));
    masks.extend(["*", "*.*", "http*", "*#*"].iter().map(|m| m.to_string()));
    while masks.len() < MASKS {
        masks.push(format!("*{}/*", pick(&mut rng, PATHS)));
    }
    let hit = &banks[banks.len() / 3];
    let hit_url = format!(
        "https://online.{}.{}/login?session=4f2a&lang=en",
        hit.name, hit.tld
    );
    (masks, hit_url)
}

fn build_index(masks: &[String]) -> MaskIndex {
    let mut builder = MaskIndex::builder();
    for (id, mask) in masks.iter().enumerate() {
        builder.add_zeus(id, mask, true);
    }
    builder.build()
}

fn naive(masks: &[String], url: &str) -> Vec<usize> {
    masks
        .iter()
        .enumerate()
        .filter(|(_, m)| url_mask_matches(m, url, true))
        .map(|(id, _)| id)
        .collect()
}

fn benches(c: &mut Criterion) {
    let (masks, hit_url) = corpus();
    let miss_url = "https://www.example-shop.com/catalog/item?id=42&ref=newsletter".to_owned();

    let index = build_index(&masks);
    let stats = index.stats();
    let hits = index.matches(&hit_url);
    let misses = index.matches(&miss_url);
    assert_eq!(hits, naive(&masks, &hit_url));
    assert_eq!(misses, naive(&masks, &miss_url));
    eprintln!(
        "{} masks, {} fragments, {} checked always; hit URL matches {} masks, miss URL {}",
        stats.masks,
        stats.fragments,
        stats.always_checked,
        hits.len(),
        misses.len()
    );

    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("mask_index_100k", |b| {
        b.iter(|| build_index(black_box(&masks)))
    });
    group.finish();

    let mut group = c.benchmark_group("match_100k");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(4));
    for (case, url) in [("hit", &hit_url), ("miss", &miss_url)] {
        group.bench_with_input(BenchmarkId::new("index", case), url, |b, url| {
            b.iter(|| index.matches(black_box(url)))
        });
        group.bench_with_input(BenchmarkId::new("naive_scan", case), url, |b, url| {
            b.iter(|| naive(black_box(&masks), black_box(url)))
        });
    }
    group.finish();

    let registry = InstitutionIndex::new(bundled_registry().institutions);
    let mut group = c.benchmark_group("institutions");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("lookup_url", |b| {
        b.iter(|| {
            registry.lookup_url(black_box(
                "https://entry11.bk.mufg.jp/ibg/dfw/APLIN/loginib/login",
            ))
        })
    });
    group.bench_function("lookup_mask", |b| {
        b.iter(|| registry.lookup_mask(black_box("https://online*.lloydstsb.co.uk/logon.ibc")))
    });
    group.finish();
}

criterion_group!(index_benches, benches);
criterion_main!(index_benches);
