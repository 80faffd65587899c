//! The mask index and the page-context matcher. The input is split at NUL bytes into
//! `masks \0 url \0 context_mask \0 page`; each line of `masks` is one mask whose first byte
//! picks its kind (`g` glob, `r` regex, `i` case-insensitive ZeuS, anything else ZeuS as is).
#![no_main]

use dropwatch_masks::{ContextMask, MaskIndex, PostDataMask};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == 0);
    let masks = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let url = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let context = parts.next().unwrap_or_default();
    let page = parts.next().unwrap_or_default();

    let mut builder = MaskIndex::builder();
    for (id, line) in masks.lines().take(64).enumerate() {
        match line.as_bytes().first() {
            Some(b'g') => {
                builder.add_glob(id, &line[1..]);
            }
            Some(b'r') => {
                let _ = builder.add_regex(id, &line[1..]);
            }
            Some(b'i') => {
                builder.add_zeus(id, &line[1..], true);
            }
            _ => {
                builder.add_zeus(id, line, false);
            }
        }
    }
    let index = builder.build();
    let found = index.matches(&url);
    assert_eq!(
        found,
        index.matches_linear(&url),
        "index and linear scan disagree"
    );
    assert!(
        found.windows(2).all(|w| w[0] < w[1]),
        "ids not ascending and unique"
    );

    let exact = ContextMask::new(context, false).find(page);
    let folded = ContextMask::new(context, true).find(page);
    for (span, ci) in [(exact, false), (folded, true)] {
        let Some((start, end)) = span else { continue };
        assert!(start <= end && end <= page.len(), "span out of the page");
        if start < end {
            // The span is itself a match that starts at its first byte.
            let again = ContextMask::new(context, ci).find(&page[start..end]);
            assert_eq!(again, Some((0, end - start)), "span does not re-match");
        }
    }
    if let (Some(e), Some(f)) = (exact, folded) {
        assert!(f.0 <= e.0, "folding case found a later match");
    }
    assert!(
        exact.is_none() || folded.is_some(),
        "a case-sensitive match must also match folded"
    );
    let _ = PostDataMask::new(context).matches(page);
});
