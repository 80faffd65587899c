//! Throughput of config decryption and parsing, and of finding the base config in a bot image,
//! with the raw RC4 and MD5 speed of the same machine beside them as the floor.
//!
//! * `decrypt_parse/*`: configs of a few MB built with the builder (many injects with HTML-like
//!   blocks; stored raw, or NRV2B-compressed from 12 MiB), decrypted, MD5-checked,
//!   decompressed and decoded. Throughput is over the encrypted file's bytes.
//! * `locate/*`: the whole locator (PE headers, pattern scans, XOR, permutation search,
//!   strings, Citadel patterns) per synthetic image, and on a 1 MiB image whose padding makes
//!   every scan walk the whole file.
//! * `floor/rc4`, `floor/md5`: the primitives over the same bytes.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dropwatch_config::basecfg::BaseScheme;
use dropwatch_config::builder::{build_citadel, build_zeus, Compression};
use dropwatch_config::pe_builder::{
    build_bot_image, BotImageSpec, LoginKeyPlacement, SaltForm, SplitMix64,
};
use dropwatch_config::{
    extract_citadel, extract_zeus, locate, CitadelKeys, Config, Rc4State, Rc4Variant, Variant,
    WebFilter,
};
use dropwatch_model::{Inject, InjectBlock, InjectFormat};
use md5::{Digest, Md5};

/// A config of roughly `target` bytes: injects with HTML-like blocks until it is that large.
fn big_config(variant: Variant, target: usize) -> Config {
    let mut rng = SplitMix64::new(1);
    let mut cfg = Config::empty(variant);
    cfg.version = Some("2.0.8.9".into());
    cfg.c2_urls.push("http://gate.example/gate.php".into());
    cfg.loader_url = Some("http://upd.example/bot.exe".into());
    for i in 0..200 {
        cfg.webfilters.push(WebFilter::parse(
            &format!("!*.site{i}.example/*"),
            variant.family(),
        ));
    }
    let mut size = 0;
    let mut i = 0;
    while size < target {
        let mut html = Vec::new();
        while html.len() < 4000 {
            let words = [
                "<div class=\"row\">",
                "<input type=\"password\" name=\"pw",
                "</div>",
                "<script>var t=document.forms[0];</script>",
                " value=\"",
                "\">",
            ];
            html.extend_from_slice(words[rng.below(words.len())].as_bytes());
            html.extend_from_slice(format!("{}", rng.next_u32() % 1000).as_bytes());
        }
        size += html.len() + 40;
        cfg.injects.push(Inject {
            format: if variant == Variant::CitadelAes {
                InjectFormat::CitadelBinary
            } else {
                InjectFormat::ZeusBinary
            },
            url_mask: format!("https://ib{i}.bank.example/*"),
            flags: "GP".into(),
            blocks: vec![InjectBlock {
                before: b"<body>".to_vec(),
                inject: html,
                after: b"</body>".to_vec(),
            }],
            ..Inject::default()
        });
        i += 1;
    }
    cfg
}

fn decrypt_parse(c: &mut Criterion) {
    let key = Rc4State::from_key(b"bench key");
    let zeus = build_zeus(
        &big_config(Variant::Zeus2, 4 << 20),
        &key,
        Compression::None,
        [7; 20],
    )
    .expect("builds");
    let zeus_lz = build_zeus(
        &big_config(Variant::Zeus2, 12 << 20),
        &key,
        Compression::Lz,
        [7; 20],
    )
    .expect("builds");
    let keys = CitadelKeys {
        rc4_state: key.clone(),
        login_key: b"533D9226E4C1CE0A9815DBEB19235AE4".to_vec(),
        aes_xor: [0x5A; 16],
        salt: Some(0xF2C9_CDEF),
    };
    let citadel = build_citadel(
        &big_config(Variant::CitadelAes, 12 << 20),
        &keys,
        Compression::Lz,
        [9; 32],
    )
    .expect("builds");
    let mut g = c.benchmark_group("decrypt_parse");
    g.sample_size(10);
    for (name, file) in [("zeus2_raw", &zeus), ("zeus2_nrv2b", &zeus_lz)] {
        g.throughput(Throughput::Bytes(file.len() as u64));
        g.bench_function(BenchmarkId::new(name, file.len()), |b| {
            b.iter(|| extract_zeus(file, &key).expect("decrypts"))
        });
    }
    g.throughput(Throughput::Bytes(citadel.len() as u64));
    g.bench_function(BenchmarkId::new("citadel_nrv2b", citadel.len()), |b| {
        b.iter(|| extract_citadel(&citadel, &keys).expect("decrypts"))
    });
    g.finish();

    let mut g = c.benchmark_group("floor");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(zeus.len() as u64));
    g.bench_function("rc4", |b| {
        b.iter(|| {
            let mut buf = zeus.clone();
            key.apply(Rc4Variant::Zeus, &mut buf);
            buf
        })
    });
    g.bench_function("md5", |b| b.iter(|| Md5::digest(&zeus)));
    g.finish();
}

fn spec(variant: Variant) -> BotImageSpec {
    let citadel = variant == Variant::CitadelAes;
    BotImageSpec {
        variant,
        rc4_state: Rc4State::from_key(b"bench"),
        botnet: "benchnet".into(),
        config_url: "http://cfg.example/config.bin".into(),
        config_file: citadel.then(|| "C:\\cfg.dat".into()),
        login_key: citadel.then(|| "533D9226E4C1CE0A9815DBEB19235AE4".into()),
        login_key_placement: LoginKeyPlacement::CodeLong,
        salt: citadel.then_some(0xF2C9_CDEF),
        salt_form: SaltForm::IntecoZ6,
        aes_xor: citadel.then_some([0x11; 16]),
        marker: citadel,
        scheme: BaseScheme::XorSection,
    }
}

fn locate_images(c: &mut Criterion) {
    let mut g = c.benchmark_group("locate");
    for variant in [Variant::Zeus2, Variant::CitadelAes] {
        let img = build_bot_image(&spec(variant), 3).expect("builds");
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new(variant.as_str(), img.bytes.len()), |b| {
            b.iter(|| locate(&img.bytes).expect("locates"))
        });
    }
    // ICE IX with the 2.1 key-block scheme: the key schedule and up to three keystreams over
    // the last section.
    let mut ice = spec(Variant::IceIx);
    ice.scheme = BaseScheme::Rc4KeyBlock;
    let img = build_bot_image(&ice, 3).expect("builds");
    g.bench_function(BenchmarkId::new("ice_ix_2_1", img.bytes.len()), |b| {
        b.iter(|| locate(&img.bytes).expect("locates"))
    });
    // The same image padded to 1 MiB with bytes that start many partial pattern matches
    // (0x56, 0x8A, 0x30, 0x81, 0x33): every scan walks the whole file.
    let img = build_bot_image(&spec(Variant::CitadelAes), 4).expect("builds");
    let mut big = img.bytes.clone();
    let fill = [0x56u8, 0xBA, 0x8A, 0x30, 0x81, 0x33, 0xF6, 0x8B];
    big.extend(fill.iter().cycle().take((1 << 20) - big.len()));
    g.bench_function(BenchmarkId::new("citadel_padded", big.len()), |b| {
        b.iter(|| locate(&big).expect("locates"))
    });
    g.finish();
}

criterion_group!(benches, decrypt_parse, locate_images);
criterion_main!(benches);
