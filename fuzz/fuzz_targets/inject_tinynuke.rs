//! The TinyNuke JSON parser, both modes, then analysis of what it produced.
#![no_main]

use dropwatch_inject::{analyze, parse_tinynuke, Mode};
use dropwatch_masks::InstitutionIndex;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_tinynuke(data, Mode::Strict);
    let out = parse_tinynuke(data, Mode::Tolerant).expect("tolerant mode never fails");
    let total: usize = out.injects.iter().flat_map(|i| &i.blocks).map(|b| b.before.len() + b.inject.len() + b.after.len()).sum();
    // The anchor `code` of a content item may appear in two triplets (see tinynuke.rs).
    assert!(total <= 2 * data.len(), "blocks hold more than twice the input");
    let _ = analyze(&out.injects, &InstitutionIndex::default());
});
