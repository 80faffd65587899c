//! A drop's report line: JSON parsing, then the form-grab context parser and analysis.
#![no_main]

use dropwatch_masks::InstitutionIndex;
use dropwatch_records::{parse_context, parse_report_line, RecordAnalyzer, SecretKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let analyzer = RecordAnalyzer::new(InstitutionIndex::default(), SecretKey::from_bytes([1; 32]));
    if let Ok(report) = parse_report_line(data) {
        let _ = analyzer.analyze(&report);
    }
    let _ = parse_context(&String::from_utf8_lossy(data));
});
