//! ZeuS URL mask matching: the input is split into a mask and a URL at the first NUL.
#![no_main]

use dropwatch_masks::{host_of, url_mask_matches};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (mask, url) = text.split_once('\0').unwrap_or((&text, ""));
    let a = url_mask_matches(mask, url, false);
    let b = url_mask_matches(mask, url, true);
    assert!(!a || b, "a case-sensitive match must also match case-insensitively");
    let _ = host_of(url);
});
