//! The drop formats of `dropwatch_monitor::formats`: JSON lines, JSON arrays, CSV with a
//! header, ZeuS `reports.txt` blocks, raw form-grab text, pages of a paged JSON listing.
//!
//! Input: one byte choosing where the data is cut, then the data. Each format parses the
//! whole data, and also the part before the cut followed by the rest resumed from the cursor
//! (as a poll that hit the read limit and the next poll do).
#![no_main]

use dropwatch_monitor::formats::{parse_chunk, parse_json_page, DropFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&cut, data)) = input.split_first() else {
        return;
    };
    let cut = (usize::from(cut) * data.len()) / 255;
    // A page of a paged listing: never more reports than the data could hold.
    let page = parse_json_page(data);
    assert!(page.records.len() <= data.len().max(1));
    for format in [
        DropFormat::JsonLines,
        DropFormat::JsonArray,
        DropFormat::Csv,
        DropFormat::ReportsTxt,
        DropFormat::GrabsTxt,
        DropFormat::SqlDump,
    ] {
        let whole = parse_chunk(format, 0, data, None);
        assert!(whole.consumed <= data.len());
        if !format.is_append_only() {
            continue;
        }
        for (at, _) in &whole.records {
            assert!(
                (*at as usize) < data.len(),
                "{format:?}: a record past the end"
            );
        }
        // Resuming from the cursor gives exactly the records of the whole read.
        let first = parse_chunk(format, 0, &data[..cut], None);
        assert!(first.consumed <= cut);
        let rest = parse_chunk(
            format,
            first.consumed as u64,
            &data[first.consumed..],
            first.header.as_deref(),
        );
        assert_eq!(first.consumed + rest.consumed, whole.consumed, "{format:?}");
        let resumed: Vec<_> = first.records.iter().chain(rest.records.iter()).collect();
        let expected: Vec<_> = whole.records.iter().collect();
        assert_eq!(
            resumed, expected,
            "{format:?}: resumption changed the records"
        );
    }
});
