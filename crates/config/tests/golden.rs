//! The public ZeuS 2.0.8.9 config.bin (key `secret key`) against the values the corpus README
//! and configs.md §4 list, and its inject against the text parser's reading of its source.

use dropwatch_config::binstorage::{item_flags, visual_decrypt, ZEUS_PREFIX_LEN};
use dropwatch_config::builder::encrypt_zeus;
use dropwatch_config::{
    decrypt_zeus, extract_zeus, Rc4State, Rc4Variant, Variant, WebFilterAction,
};
use dropwatch_inject::{parse_zeus, Mode};
use dropwatch_model::InjectFormat;

const CONFIG: &[u8] = include_bytes!("data/config.bin");
const WEBINJECTS: &[u8] = include_bytes!("data/webinjects.txt");

fn key() -> Rc4State {
    Rc4State::from_key(b"secret key")
}

#[test]
fn fixture_is_the_documented_file() {
    assert_eq!(CONFIG.len(), 412);
    assert_eq!(
        hex::encode(&CONFIG[..16]),
        "fe50eefd821dad74227da45eb03cd033"
    );
}

#[test]
fn header_and_items_match_the_documented_values() {
    let (variant, storage) = decrypt_zeus(CONFIG, &key()).expect("decrypts with `secret key`");
    assert_eq!(variant, Variant::Zeus2);
    let h = &storage.header;
    assert_eq!(
        hex::encode(&h.random_prefix),
        "922bf34bfadb9aa7565aeb19b58ff5215543c7c5"
    );
    assert_eq!((h.size, h.flags, h.count), (412, 0, 6));
    assert_eq!(hex::encode(h.md5), "b871852d934b75c899ab867fe7e7ad4d");
    let ids: Vec<u32> = storage.items.iter().map(|i| i.id).collect();
    assert_eq!(ids, [20001, 20002, 20003, 20005, 1, 20007]);
    assert!(storage.diagnostics.is_empty(), "{:?}", storage.diagnostics);

    let item = |id: u32| {
        storage
            .items
            .iter()
            .find(|i| i.id == id)
            .expect("item present")
    };
    assert_eq!(
        item(20001).data().expect("version").as_ref(),
        [0x09, 0x08, 0x00, 0x02]
    );
    assert_eq!(
        item(20002).data().expect("loader").as_ref(),
        b"http://localhost/bot.exe"
    );
    assert_eq!(
        item(20003).data().expect("gate").as_ref(),
        b"http://localhost/gate.php"
    );
    for id in [20001, 20002, 20003, 20005, 20007] {
        assert_eq!(
            item(id).flags & item_flags::IS_MASK,
            item_flags::IS_OPTION,
            "item {id}"
        );
    }
    assert!(
        item(20005).is_compressed(),
        "the web filters are NRV2B-compressed"
    );
    assert_eq!(
        item(1).flags & item_flags::IS_MASK,
        item_flags::IS_HTTP_INJECT
    );

    // Item 20007: one uncompressed 31-byte 8-WORD header: flags 0x0064, size 0x001F, urlMask 0x0010.
    let list = item(20007);
    assert!(!list.is_compressed());
    assert_eq!((list.payload.len(), list.real_size), (31, 31));
    let words: Vec<u16> = list.payload[..16]
        .chunks_exact(2)
        .map(|w| u16::from_le_bytes([w[0], w[1]]))
        .collect();
    assert_eq!(words, [0x0064, 0x001F, 0x0010, 0, 0, 0, 0, 0]);
    assert_eq!(&list.payload[16..], b"*c_toolbar.js*\0");

    // Item 1: the triplet stored before, after, inject, each with its 4-byte header.
    let blocks = item(1).data().expect("blocks").into_owned();
    let mut sizes = Vec::new();
    let mut off = 0;
    while off < blocks.len() {
        let size = usize::from(u16::from_le_bytes([blocks[off], blocks[off + 1]]));
        sizes.push(size);
        off += size;
    }
    assert_eq!(sizes, [20, 4, 27]);
}

#[test]
fn decoded_config_has_the_documented_values() {
    let cfg = extract_zeus(CONFIG, &key()).expect("decrypts");
    assert_eq!(cfg.variant, Variant::Zeus2);
    assert_eq!(cfg.version.as_deref(), Some("2.0.8.9"));
    assert_eq!(cfg.loader_url.as_deref(), Some("http://localhost/bot.exe"));
    assert_eq!(cfg.c2_urls, ["http://localhost/gate.php"]);
    assert!(
        cfg.config_urls.is_empty(),
        "AdvancedConfigs is commented out in config.txt"
    );
    assert!(cfg.webdata_filters.is_empty());
    assert_eq!(cfg.botnet, None);
    let filters: Vec<&str> = cfg.webfilters.iter().map(|f| f.filter.as_str()).collect();
    assert_eq!(
        filters,
        [
            "!*.microsoft.com/*",
            "!http://*myspace.com*",
            "https://www.gruposantander.es/*",
            "!http://*odnoklassniki.ru/*",
            "!http://vkontakte.ru/*",
            "@*/login.osmp.ru/*",
            "@*/atl.osmp.ru/*",
        ]
    );
    assert_eq!(cfg.webfilters[0].mask, "*.microsoft.com/*");
    assert_eq!(cfg.webfilters[0].action, WebFilterAction::NoReport);
    assert_eq!(cfg.webfilters[2].action, WebFilterAction::ForceReport);
    assert_eq!(cfg.webfilters[2].mask, "https://www.gruposantander.es/*");
    assert_eq!(cfg.webfilters[5].action, WebFilterAction::Screenshot);
    assert_eq!(cfg.webfilters[5].mask, "*/login.osmp.ru/*");

    assert_eq!(cfg.injects.len(), 1);
    let inj = &cfg.injects[0];
    assert_eq!(inj.format, InjectFormat::ZeusBinary);
    assert_eq!(inj.url_mask, "*c_toolbar.js*");
    assert_eq!(inj.flags, "GP");
    assert_eq!(
        (
            &inj.post_blacklist,
            &inj.post_whitelist,
            &inj.url_block,
            &inj.matched_context
        ),
        (&None, &None, &None, &None)
    );
    assert_eq!(inj.blocks.len(), 1);
    assert_eq!(inj.blocks[0].before, b"ShowAllBars(MW);");
    assert_eq!(inj.blocks[0].after, b"");
    assert_eq!(inj.blocks[0].inject, b"\r\nalert('inject on');\r\n");
    assert!(inj.attributes.is_empty() && inj.endpoints.is_empty());

    assert_eq!(cfg.keys.rc4_state_sha256, Some(key().sha256_hex()));
    assert_eq!(
        cfg.storage
            .items
            .iter()
            .map(|i| (i.id, i.compressed))
            .collect::<Vec<_>>()[3],
        (20005, true)
    );
    assert!(cfg.diagnostics.is_empty(), "{:?}", cfg.diagnostics);
}

#[test]
fn binary_inject_equals_the_text_parser_on_its_source() {
    let cfg = extract_zeus(CONFIG, &key()).expect("decrypts");
    let text = parse_zeus(WEBINJECTS, Mode::Strict).expect("the kit's source parses strictly");
    assert_eq!(cfg.injects.len(), text.injects.len());
    for (bin, txt) in cfg.injects.iter().zip(&text.injects) {
        assert_eq!(bin.url_mask, txt.url_mask);
        assert_eq!(bin.flags, txt.flags);
        assert_eq!(bin.post_blacklist, txt.post_blacklist);
        assert_eq!(bin.post_whitelist, txt.post_whitelist);
        assert_eq!(bin.url_block, txt.url_block);
        assert_eq!(bin.matched_context, txt.matched_context);
        assert_eq!(bin.blocks, txt.blocks);
    }
}

#[test]
fn re_encrypting_the_plaintext_gives_the_original_file() {
    let mut plain = CONFIG.to_vec();
    key().apply(Rc4Variant::Zeus, &mut plain);
    visual_decrypt(&mut plain);
    assert_eq!(
        &plain[ZEUS_PREFIX_LEN..ZEUS_PREFIX_LEN + 4],
        412u32.to_le_bytes()
    );
    assert_eq!(
        encrypt_zeus(&plain, &key(), Variant::Zeus2).expect("zeus variant"),
        CONFIG
    );
}

#[test]
fn the_key_as_a_258_byte_state_works_like_the_text_key() {
    let state = Rc4State::from_bytes(&key().to_bytes()).expect("258 bytes");
    let a = extract_zeus(CONFIG, &state).expect("decrypts");
    let b = extract_zeus(CONFIG, &key()).expect("decrypts");
    assert_eq!(a, b);
}

#[test]
fn json_field_names_and_order_are_stable() {
    let cfg = extract_zeus(CONFIG, &key()).expect("decrypts");
    let json = serde_json::to_value(&cfg).expect("serialises");
    let mut keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    // The set of names here; their order in the serialised text below.
    let mut want = vec![
        "family",
        "variant",
        "version",
        "botnet",
        "c2_urls",
        "config_urls",
        "loader_url",
        "webfilters",
        "webdata_filters",
        "injects",
        "keys",
        "storage",
        "diagnostics",
    ];
    want.sort_unstable();
    assert_eq!(keys, want);
    assert_eq!(json["family"], "zeus");
    assert_eq!(json["variant"], "zeus2");
    assert_eq!(json["webfilters"][0]["action"], "no_report");
    assert_eq!(json["keys"]["login_key"], serde_json::Value::Null);
    assert_eq!(json["injects"][0]["format"], "zeus_binary");
    let text = serde_json::to_string(&cfg).expect("serialises");
    assert!(text.starts_with(r#"{"family":"zeus","variant":"zeus2","version":"2.0.8.9","botnet":null,"c2_urls":["http://localhost/gate.php"]"#), "{text}");
    let back: dropwatch_config::Config = serde_json::from_str(&text).expect("deserialises");
    assert_eq!(back, cfg);
}
