//! ZeuS config.bin: the BinStorage container, item decoding and NRV2B, behind a valid MD5.
//!
//! Random bytes almost never pass the MD5 check, so the input is used as a *plaintext* storage
//! body: the target seals it (size, MD5) and encrypts it with a fixed key, then decrypts and
//! decodes it as a config, so every byte reaches the item walk, the decompressor and the inject
//! decoder. The raw input is also fed to the decompressor and to the decryptor as is.
#![no_main]

use dropwatch_config::binstorage::{parse_storage, ZEUS_HEADER_LEN, ZEUS_PREFIX_LEN};
use dropwatch_config::builder::{encrypt_zeus, seal};
use dropwatch_config::{extract_zeus, nrv2b, Rc4State, Variant, MAX_DIAGNOSTICS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = Rc4State::from_key(b"fuzz");
    let _ = extract_zeus(data, &key);

    // NRV2B alone: the first two bytes choose the output limit.
    if let [a, b, rest @ ..] = data {
        let limit = usize::from(u16::from_le_bytes([*a, *b]));
        if let Ok(out) = nrv2b::decompress(rest, limit) {
            assert_eq!(out.len(), limit);
        }
    }

    // The input as the items of a storage whose header checks pass.
    let mut plain = vec![0u8; ZEUS_HEADER_LEN];
    plain.extend_from_slice(data);
    plain[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
    if seal(&mut plain, ZEUS_PREFIX_LEN).is_err() {
        return; // over the 10 MiB storage limit
    }
    let storage =
        parse_storage(&plain, ZEUS_PREFIX_LEN).expect("sealed storage passes the header checks");
    let stored: usize = storage.items.iter().map(|i| i.payload.len() + 16).sum();
    assert!(stored <= data.len(), "items hold more bytes than the input");
    let file = encrypt_zeus(&plain, &key, Variant::Zeus2).expect("zeus variant");
    let cfg = extract_zeus(&file, &key).expect("sealed storage decrypts");
    assert!(cfg.diagnostics.len() <= MAX_DIAGNOSTICS + 1);
});
