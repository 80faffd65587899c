//! Record parse + analyze rate on one core: the testkit generator's drop lines (ZeuS form
//! grabs at fictional banks, duplicates, webmail noise, a truncated line per drop), parsed
//! from JSON and analysed against the generated registry.
//!
//! `cargo bench -p dropwatch-records --bench analyze`; criterion reports elements/s, which
//! is records per second per core (the benchmark is single-threaded).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dropwatch_masks::InstitutionIndex;
use dropwatch_records::{parse_report_line, RecordAnalyzer, SecretKey};
use dropwatch_testkit::{generate, GenerateOptions};

fn lines() -> (Vec<String>, RecordAnalyzer) {
    let mut lines = Vec::new();
    let mut registry = None;
    for seed in 0..40 {
        let g = generate(&GenerateOptions {
            seed,
            drop_base: "http://127.0.0.1:18080".into(),
        });
        registry.get_or_insert(g.registry);
        lines.extend(g.drops.into_iter().flat_map(|d| d.lines));
    }
    let index = InstitutionIndex::new(registry.unwrap_or_default().institutions);
    (
        lines,
        RecordAnalyzer::new(index, SecretKey::from_bytes([5; 32])),
    )
}

fn bench(c: &mut Criterion) {
    let (lines, analyzer) = lines();
    let mut group = c.benchmark_group("records");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("parse_and_analyze", |b| {
        b.iter(|| {
            let mut attributed = 0usize;
            for line in &lines {
                if let Ok(report) = parse_report_line(black_box(line.as_bytes())) {
                    attributed += usize::from(analyzer.analyze(&report).account.is_some());
                }
            }
            black_box(attributed)
        })
    });
    let reports: Vec<_> = lines
        .iter()
        .filter_map(|l| parse_report_line(l.as_bytes()).ok())
        .collect();
    group.throughput(Throughput::Elements(reports.len() as u64));
    group.bench_function("analyze_only", |b| {
        b.iter(|| {
            for r in &reports {
                black_box(analyzer.analyze(black_box(r)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
