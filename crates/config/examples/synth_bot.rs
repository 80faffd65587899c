//! Writes a synthetic bot image and its config.bin (test data, not malware; see
//! `dropwatch_config::pe_builder`), for trying `dropwatch config extract` by hand:
//!
//! ```text
//! cargo run -p dropwatch-config --example synth_bot -- OUT_DIR [SEED] [zeus2|zeus21|ice_ix|ice_ix_2089|evolution|citadel_aes]
//! (zeus21 and ice_ix: the 2.1 RC4 key-block base config; the others: the 2.0.8.9 XOR layout)
//! dropwatch config extract OUT_DIR/bot.exe --dynamic OUT_DIR/config.bin --format json
//! ```

use dropwatch_config::basecfg::BaseScheme;
use dropwatch_config::builder::{build_citadel, build_zeus, Compression};
use dropwatch_config::pe_builder::{
    build_bot_image, BotImageSpec, LoginKeyPlacement, SaltForm, SplitMix64,
};
use dropwatch_config::{CitadelKeys, Config, Rc4State, Variant, WebFilter};
use dropwatch_model::{Inject, InjectBlock, InjectFormat};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(
        args.next()
            .ok_or("usage: synth_bot OUT_DIR [SEED] [VARIANT]")?,
    );
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let (variant, scheme) = match args.next().as_deref() {
        None | Some("zeus2") => (Variant::Zeus2, BaseScheme::XorSection),
        Some("zeus21") => (Variant::Zeus2, BaseScheme::Rc4KeyBlock),
        Some("ice_ix") => (Variant::IceIx, BaseScheme::Rc4KeyBlock),
        Some("ice_ix_2089") => (Variant::IceIx, BaseScheme::XorSection),
        Some("evolution") => (Variant::Evolution, BaseScheme::XorSection),
        Some("citadel_aes") => (Variant::CitadelAes, BaseScheme::XorSection),
        Some(other) => return Err(format!("unknown variant {other}").into()),
    };
    let mut rng = SplitMix64::new(seed);
    let citadel = variant == Variant::CitadelAes;
    let extras = citadel || variant == Variant::Evolution;
    let login = extras.then(|| hex::encode_upper(rng.bytes(16)));
    let spec = BotImageSpec {
        variant,
        rc4_state: Rc4State::from_key(&rng.bytes(16)),
        botnet: format!("net{}", seed % 1000),
        config_url: format!("http://cfg{seed}.example/files/config.bin"),
        config_file: extras.then(|| "C:\\cfg.dat".to_string()),
        login_key: login.clone(),
        login_key_placement: if citadel {
            LoginKeyPlacement::CodeLong
        } else {
            LoginKeyPlacement::BaseConfig
        },
        salt: citadel.then(|| rng.next_u32()),
        salt_form: SaltForm::IntecoZ6,
        aes_xor: citadel.then(|| {
            let mut k = [0u8; 16];
            k.copy_from_slice(&rng.bytes(16));
            k
        }),
        marker: citadel,
        scheme,
    };
    let img = build_bot_image(&spec, seed)?;
    let mut cfg = Config::empty(variant);
    cfg.version = Some("2.0.8.9".into());
    cfg.c2_urls
        .push(format!("http://gate{seed}.example/gate.php"));
    cfg.loader_url = Some(format!("http://upd{seed}.example/bot.exe"));
    cfg.webfilters
        .push(WebFilter::parse("!*.microsoft.com/*", variant.family()));
    cfg.webfilters
        .push(WebFilter::parse("@*/login.htm*", variant.family()));
    cfg.injects.push(Inject {
        format: if citadel {
            InjectFormat::CitadelBinary
        } else {
            InjectFormat::ZeusBinary
        },
        url_mask: "https://ib.bank.example/login*".into(),
        flags: "GP".into(),
        blocks: vec![InjectBlock {
            before: b"<form".to_vec(),
            inject: b" data-x=\"1\"".to_vec(),
            after: b">".to_vec(),
        }],
        ..Inject::default()
    });
    let mut prefix20 = [0u8; 20];
    prefix20.copy_from_slice(&rng.bytes(20));
    let file = if citadel {
        let mut prefix32 = [0u8; 32];
        prefix32.copy_from_slice(&rng.bytes(32));
        let keys = CitadelKeys {
            rc4_state: spec.rc4_state.clone(),
            login_key: login.unwrap_or_default().into_bytes(),
            aes_xor: spec.aes_xor.unwrap_or([0; 16]),
            salt: spec.salt,
        };
        build_citadel(&cfg, &keys, Compression::Lz, prefix32)?
    } else {
        build_zeus(&cfg, &spec.rc4_state, Compression::Lz, prefix20)?
    };
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("bot.exe"), &img.bytes)?;
    std::fs::write(out.join("config.bin"), &file)?;
    println!(
        "{}: bot.exe ({} bytes), config.bin ({} bytes)",
        out.display(),
        img.bytes.len(),
        file.len()
    );
    Ok(())
}
