//! The TrickBot dinj/sinj/dpost XML parser, both modes, then analysis of what it produced.
#![no_main]

use dropwatch_inject::{analyze, parse_trickbot, Mode};
use dropwatch_masks::InstitutionIndex;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_trickbot(data, Mode::Strict);
    let out = parse_trickbot(data, Mode::Tolerant).expect("tolerant mode never fails");
    let total: usize = out.injects.iter().map(|i| i.url_mask.len() + i.endpoints.iter().map(String::len).sum::<usize>()).sum();
    // Masks and endpoints are decoded text: at most 3 UTF-8 bytes per input byte.
    assert!(total <= 3 * data.len(), "entries hold more than the input");
    let _ = analyze(&out.injects, &InstitutionIndex::default());
});
