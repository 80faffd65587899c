//! What a TAXII client sends in a query: `next` tokens, `added_after` and `match[version]`
//! timestamps. Parsing must never panic, and what parses must survive a round trip through the
//! server's own text form.
#![no_main]

use dropwatch_store::{format_timestamp, parse_timestamp, PageCursor, VersionMatch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(c) = PageCursor::parse(&text) {
        assert_eq!(PageCursor::parse(&c.token()), Some(c));
    }
    if let Some(t) = parse_timestamp(&text) {
        assert_eq!(parse_timestamp(&format_timestamp(t)), Some(t));
    }
    let _ = VersionMatch::parse(&text);
});
