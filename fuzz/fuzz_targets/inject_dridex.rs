//! The Dridex XML parser, both modes, then analysis of what it produced.
#![no_main]

use dropwatch_inject::{analyze, parse_dridex, Mode};
use dropwatch_masks::InstitutionIndex;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_dridex(data, Mode::Strict);
    let out = parse_dridex(data, Mode::Tolerant).expect("tolerant mode never fails");
    let total: usize = out.injects.iter().flat_map(|i| &i.blocks).map(|b| b.before.len() + b.inject.len() + b.after.len()).sum();
    assert!(total <= data.len(), "blocks hold more bytes than the input");
    let _ = analyze(&out.injects, &InstitutionIndex::default());
});
