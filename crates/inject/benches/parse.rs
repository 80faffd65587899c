//! Parse + analyse throughput on the public corpus.
//!
//! - `zeus_100mb`: the five ZeuS-format corpus files concatenated and repeated to 100 MB (the
//!   issue's measure), parsed tolerant with charset detection and analysed against the bundled
//!   registry.
//! - `trickbot_dinj` and `tinynuke`: the real files repeated inside one document (~10 MB).
//!
//! Run: `cargo bench -p dropwatch-inject --bench parse`. Peak memory: `cargo run --release -p
//! dropwatch-inject --example peak_memory`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dropwatch_inject::{analyze_with, parse_any, Mode};
use dropwatch_masks::InstitutionIndex;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The ZeuS corpus files, concatenated and repeated to at least `target` bytes.
pub fn zeus_corpus(target: usize) -> Vec<u8> {
    let files = [
        "zeus-2.0.8.9-kit-webinjects.txt",
        "zeus-2.0.8.9-kit-httpinjects-bankofamerica.txt",
        "zeus-2.0.8.9-kit-httpinjects-paypal.txt",
        "zeus-2.0.8.9-kit-httpinjects-usaa.txt",
        "zeus-2.0.8.9-kit-webinjects-small.txt",
    ];
    let mut one = Vec::new();
    for f in files {
        one.extend_from_slice(&read(f));
        one.extend_from_slice(b"\r\n");
    }
    let mut out = Vec::with_capacity(target + one.len());
    while out.len() < target {
        out.extend_from_slice(&one);
    }
    out
}

/// Repeats the elements between the first `open` and the last `close` of a document.
fn repeat_inner(doc: &[u8], open: &[u8], close: &[u8], target: usize) -> Vec<u8> {
    let start = doc
        .windows(open.len())
        .position(|w| w == open)
        .expect("open tag");
    let end = doc
        .windows(close.len())
        .rposition(|w| w == close)
        .expect("close tag")
        + close.len();
    let (head, body, tail) = (&doc[..start], &doc[start..end], &doc[end..]);
    let mut out = head.to_vec();
    while out.len() < target {
        out.extend_from_slice(body);
        out.push(b'\n');
    }
    out.extend_from_slice(tail);
    out
}

fn bench(c: &mut Criterion) {
    let index = InstitutionIndex::new(dropwatch_masks::bundled_registry().institutions);
    let mut group = c.benchmark_group("parse_analyze");
    group.sample_size(10);

    let zeus = zeus_corpus(100 << 20);
    group.throughput(Throughput::Bytes(zeus.len() as u64));
    group.bench_function("zeus_100mb", |b| {
        b.iter(|| {
            let out = parse_any(&zeus, Mode::Tolerant).expect("tolerant never fails");
            analyze_with(&out.injects, &index, &|x| out.decode(x))
                .targets
                .len()
        })
    });

    let dinj = repeat_inner(&read("trickbot-dinj.xml"), b"<dinj>", b"</dinj>", 10 << 20);
    group.throughput(Throughput::Bytes(dinj.len() as u64));
    group.bench_function("trickbot_dinj_10mb", |b| {
        b.iter(|| {
            let out = parse_any(&dinj, Mode::Tolerant).expect("tolerant never fails");
            analyze_with(&out.injects, &index, &|x| out.decode(x))
                .targets
                .len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
