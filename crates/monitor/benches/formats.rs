//! Drop-format parse rate on one core: the testkit generator's drops (40 seeds) written in
//! each format the monitors read, parsed whole by `formats::parse_chunk` (no analysis, no
//! store). Criterion reports bytes/s of the encoded data and the records it held.
//!
//! `cargo bench -p dropwatch-monitor --bench formats`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dropwatch_monitor::formats::{self as mf, parse_chunk};
use dropwatch_testkit::formats::{encode, DropFormat};
use dropwatch_testkit::{generate, GenerateOptions};

fn monitor_format(f: DropFormat) -> mf::DropFormat {
    match f {
        DropFormat::JsonLines => mf::DropFormat::JsonLines,
        DropFormat::JsonArray => mf::DropFormat::JsonArray,
        DropFormat::Csv => mf::DropFormat::Csv,
        DropFormat::ReportsTxt => mf::DropFormat::ReportsTxt,
        DropFormat::SqlDump => mf::DropFormat::SqlDump,
    }
}

fn bench(c: &mut Criterion) {
    let drops: Vec<_> = (0..40)
        .flat_map(|seed| {
            generate(&GenerateOptions {
                seed,
                drop_base: "http://127.0.0.1:18080".into(),
            })
            .drops
        })
        .collect();
    let mut group = c.benchmark_group("parse");
    for format in DropFormat::ALL {
        // Each drop encoded on its own (a JSON array or a dump is one document per drop).
        let docs: Vec<Vec<u8>> = drops
            .iter()
            .map(|d| encode(format, d).expect("encodes"))
            .collect();
        let bytes: usize = docs.iter().map(Vec::len).sum();
        let records: usize = docs
            .iter()
            .map(|d| {
                parse_chunk(monitor_format(format), 0, d, None)
                    .records
                    .len()
            })
            .sum();
        eprintln!("{format:?}: {bytes} bytes, {records} records");
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(format!("{format:?}"), |b| {
            b.iter(|| {
                let mut n = 0;
                for d in &docs {
                    n += parse_chunk(monitor_format(format), 0, black_box(d), None)
                        .records
                        .len();
                }
                n
            })
        });
    }
    // A hostile dump: one CREATE TABLE of 256 columns with 255-byte names, then 1 MiB of tiny
    // INSERTs into that table. The columns are shared, not copied per statement: this runs
    // at the speed of the plain dumps above (a copy per statement once made it ~100x slower).
    let mut wide = String::from("CREATE TABLE `x` (");
    for c in 0..256 {
        if c > 0 {
            wide.push(',');
        }
        wide.push_str(&format!("`{:0>255}` int", c));
    }
    wide.push_str(");\n");
    while wide.len() < (1 << 20) {
        wide.push_str("INSERT INTO `x` VALUE ();\n");
    }
    let wide = wide.into_bytes();
    group.throughput(Throughput::Bytes(wide.len() as u64));
    group.bench_function("SqlDump_wide_create_tiny_inserts", |b| {
        b.iter(|| parse_chunk(mf::DropFormat::SqlDump, 0, black_box(&wide), None).consumed)
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
