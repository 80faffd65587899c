//! Format sniffing and whichever parser it picks, both modes; decoding blocks with the detected
//! charset.
#![no_main]

use dropwatch_inject::{parse_any, sniff, Mode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_any(data, Mode::Strict);
    let out = parse_any(data, Mode::Tolerant).expect("tolerant mode never fails");
    assert_eq!(out.format, sniff(data), "parse_any reports the sniffed format");
    let total: usize = out.injects.iter().flat_map(|i| &i.blocks).map(|b| b.before.len() + b.inject.len() + b.after.len()).sum();
    assert!(total <= 2 * data.len(), "blocks hold more than twice the input");
    for b in out.injects.iter().flat_map(|i| &i.blocks) {
        let _ = out.decode(&b.inject);
    }
});
