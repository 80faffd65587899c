//! Every real file of the corpus (`tests/data/`, see its README) parses with no lost entry.
//!
//! Entry counts are taken from the files by independent, format-agnostic means (counting
//! `set_url` lines, a generic JSON parse, counting start tags) and compared with what the parsers
//! keep. The only entries allowed to go are the ones the ZeuS kit's builder itself swallows.

use dropwatch_inject::{
    parse_any, parse_tinynuke, parse_trickbot, parse_zeus, Mode, ParseOutput, SourceFormat,
};
use dropwatch_model::InjectFormat;

const ZEUS: &[(&str, &[u8])] = &[
    (
        "zeus-2.0.8.9-kit-webinjects.txt",
        include_bytes!("data/zeus-2.0.8.9-kit-webinjects.txt"),
    ),
    (
        "zeus-2.0.8.9-kit-httpinjects-bankofamerica.txt",
        include_bytes!("data/zeus-2.0.8.9-kit-httpinjects-bankofamerica.txt"),
    ),
    (
        "zeus-2.0.8.9-kit-httpinjects-paypal.txt",
        include_bytes!("data/zeus-2.0.8.9-kit-httpinjects-paypal.txt"),
    ),
    (
        "zeus-2.0.8.9-kit-httpinjects-usaa.txt",
        include_bytes!("data/zeus-2.0.8.9-kit-httpinjects-usaa.txt"),
    ),
    (
        "zeus-2.0.8.9-kit-webinjects-small.txt",
        include_bytes!("data/zeus-2.0.8.9-kit-webinjects-small.txt"),
    ),
];
const TINYNUKE: &[u8] = include_bytes!("data/tinynuke-injects.json");
const DINJ: &[u8] = include_bytes!("data/trickbot-dinj.xml");
const SINJ: &[u8] = include_bytes!("data/trickbot-sinj.xml");

/// Lines (1-based) whose first non-blank word is `word`, case-insensitively.
fn keyword_lines(bytes: &[u8], word: &str) -> Vec<u32> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_ascii();
            t.len() >= word.len()
                && t[..word.len()].eq_ignore_ascii_case(word.as_bytes())
                && t.get(word.len()).is_none_or(|b| b.is_ascii_whitespace())
        })
        .map(|(i, _)| u32::try_from(i + 1).unwrap())
        .collect()
}

/// `set_url` lines that sit between a block keyword and its `data_end`: a scan that only tracks
/// "inside a block or not", independent of the parser.
fn set_url_inside_blocks(bytes: &[u8]) -> Vec<u32> {
    let mut inside = false;
    let mut found = Vec::new();
    for (i, l) in bytes.split(|&b| b == b'\n').enumerate() {
        let t = l.trim_ascii().to_ascii_lowercase();
        if inside {
            if t == b"data_end" {
                inside = false;
            } else if t.starts_with(b"set_url ") {
                found.push(u32::try_from(i + 1).unwrap());
            }
        } else if matches!(
            t.as_slice(),
            b"data_before" | b"data_inject" | b"data_after"
        ) {
            inside = true;
        }
    }
    found
}

fn lines_of(out: &ParseOutput, code: &str) -> Vec<u32> {
    out.diagnostics
        .iter()
        .filter(|d| d.code == code)
        .map(|d| d.line)
        .collect()
}

#[test]
fn zeus_files_lose_no_entry() {
    for (name, bytes) in ZEUS {
        let set_urls = keyword_lines(bytes, "set_url");
        let swallowed = set_url_inside_blocks(bytes);
        let tolerant = parse_zeus(bytes, Mode::Tolerant).unwrap();
        assert_eq!(tolerant.format, SourceFormat::ZeusText);
        assert_eq!(
            lines_of(&tolerant, "I011"),
            swallowed,
            "{name}: swallowed set_url lines"
        );
        let kept: Vec<u32> = tolerant.injects.iter().filter_map(|i| i.line).collect();
        let expected: Vec<u32> = set_urls
            .iter()
            .copied()
            .filter(|l| !swallowed.contains(l))
            .collect();
        assert_eq!(
            kept, expected,
            "{name}: every set_url not swallowed is kept, in order"
        );
        // The builder accepts every file of the kit, and both modes agree on them.
        let strict = parse_zeus(bytes, Mode::Strict).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(strict.injects, tolerant.injects, "{name}");
        assert_eq!(lines_of(&strict, "I011"), swallowed, "{name}");
        assert!(!tolerant.has_errors(), "{name}: {:?}", tolerant.diagnostics);
        // Without swallowing, every data_end closes one of three blocks of a triplet.
        if swallowed.is_empty() {
            let triplets: usize = strict.injects.iter().map(|i| i.blocks.len()).sum();
            assert_eq!(
                triplets * 3,
                keyword_lines(bytes, "data_end").len(),
                "{name}"
            );
        }
        let via_any = parse_any(bytes, Mode::Tolerant).unwrap();
        assert_eq!(via_any, tolerant, "{name}: parse_any picks the ZeuS parser");
    }
}

#[test]
fn zeus_kit_file_matches_the_builder() {
    let bytes = ZEUS[0].1;
    let out = parse_zeus(bytes, Mode::Strict).unwrap();
    // Documented for the kit's builder (webinjects.md §4, corpus README): 112 entries out of
    // 115 set_url lines, 215 triplets.
    assert_eq!(keyword_lines(bytes, "set_url").len(), 115);
    assert_eq!(out.injects.len(), 112);
    assert_eq!(
        out.injects.iter().map(|i| i.blocks.len()).sum::<usize>(),
        215
    );
    // The three set_url lines are swallowed by a `data_before` left open two lines above each.
    assert_eq!(lines_of(&out, "I011"), [484, 2074, 2103]);
    // Each swallowed set_url is literal content of the previous entry's block.
    let norisbank =
        b"set_url https://onlinebanking.norisbank.de/norisbank/login.do?method=login* GP";
    assert!(out
        .injects
        .iter()
        .flat_map(|i| &i.blocks)
        .any(|b| b.before.windows(norisbank.len()).any(|w| w == norisbank)));
    // The Russian comments are cp1251; the detector says so.
    assert_eq!(out.charset, "windows-1251");
}

#[test]
fn tinynuke_file_loses_no_entry() {
    let doc: serde_json::Value = serde_json::from_slice(TINYNUKE).unwrap();
    let injects = doc["injects"].as_array().unwrap();
    let blacklist = doc["fg_blacklist"].as_array().unwrap();
    for mode in [Mode::Strict, Mode::Tolerant] {
        let out = parse_tinynuke(TINYNUKE, mode).unwrap();
        assert_eq!(out.injects.len(), injects.len() + blacklist.len());
        let entries: Vec<_> = out.injects.iter().filter(|i| i.flags == "GP").collect();
        assert_eq!(entries.len(), injects.len());
        for (entry, json) in entries.iter().zip(injects) {
            assert_eq!(entry.format, InjectFormat::TinynukeJson);
            let host = json["host"].as_str().unwrap();
            assert!(entry.url_mask.starts_with(host), "{}", entry.url_mask);
            // Every content item here has only `after`: one triplet each, anchored on `code`.
            let content = json["content"].as_array().unwrap();
            assert_eq!(entry.blocks.len(), content.len());
            for (b, c) in entry.blocks.iter().zip(content) {
                assert_eq!(b.before, c["code"].as_str().unwrap().as_bytes());
                assert_eq!(b.inject, c["after"].as_str().unwrap().as_bytes());
            }
        }
        let masks: Vec<&str> = out
            .injects
            .iter()
            .filter(|i| i.flags.is_empty())
            .map(|i| i.url_mask.as_str())
            .collect();
        let expected: Vec<&str> = blacklist.iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(masks, expected);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    }
    assert_eq!(
        parse_any(TINYNUKE, Mode::Tolerant).unwrap().format,
        SourceFormat::TinynukeJson
    );
}

fn count_tags(bytes: &[u8], tag: &str) -> usize {
    let open = format!("<{tag}>");
    bytes
        .windows(open.len())
        .filter(|w| *w == open.as_bytes())
        .count()
}

#[test]
fn trickbot_files_lose_no_entry() {
    for (bytes, tag, format, mask_tag) in [
        (DINJ, "dinj", InjectFormat::TrickbotDinj, "lm"),
        (SINJ, "sinj", InjectFormat::TrickbotSinj, "mm"),
    ] {
        let expected = count_tags(bytes, tag);
        let out = parse_trickbot(bytes, Mode::Tolerant).unwrap();
        assert_eq!(out.format, SourceFormat::TrickbotXml);
        assert_eq!(out.injects.len(), expected, "{tag}");
        assert!(out.injects.iter().all(|i| i.format == format));
        let with_mask = out
            .injects
            .iter()
            .filter(|i| !i.url_mask.is_empty())
            .count();
        assert_eq!(
            with_mask,
            count_tags(bytes, mask_tag),
            "{tag}: every mask is kept"
        );
        // The published files are cut off: the last entry is marked and the cut is reported.
        let last = out.injects.last().unwrap();
        assert!(
            last.attributes
                .contains(&("truncated".into(), "true".into())),
            "{tag}"
        );
        assert!(out.diagnostics.iter().any(|d| d.code == "K002"), "{tag}");
        assert!(
            parse_trickbot(bytes, Mode::Strict).is_err(),
            "{tag}: strict rejects a cut file"
        );
        assert_eq!(parse_any(bytes, Mode::Tolerant).unwrap(), out);
    }
    let dinj = parse_trickbot(DINJ, Mode::Tolerant).unwrap();
    assert_eq!(
        dinj.injects.iter().flat_map(|i| &i.endpoints).count(),
        count_tags(DINJ, "hl")
    );
    assert_eq!(
        dinj.injects
            .iter()
            .flat_map(|i| &i.attributes)
            .filter(|(k, _)| k == "ignore_mask")
            .count(),
        count_tags(DINJ, "ignore_mask")
    );
    let sinj = parse_trickbot(SINJ, Mode::Tolerant).unwrap();
    // Every <srv> and <nh> is an endpoint (the last <nh> is cut inside its end tag but its
    // text is complete).
    assert_eq!(
        sinj.injects.iter().flat_map(|i| &i.endpoints).count(),
        count_tags(SINJ, "srv") + count_tags(SINJ, "nh")
    );
}
