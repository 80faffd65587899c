//! Peak memory of parse + analyse on 100 MB of ZeuS-format corpus text.
//!
//! `cargo run --release -p dropwatch-inject --example peak_memory` prints the input size, the
//! process's peak resident size before and after parsing (Linux `VmHWM`), and the ratio.

use dropwatch_inject::{analyze_with, parse_any, Mode};
use dropwatch_masks::InstitutionIndex;

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
    let mut one = Vec::new();
    for f in [
        "zeus-2.0.8.9-kit-webinjects.txt",
        "zeus-2.0.8.9-kit-httpinjects-bankofamerica.txt",
        "zeus-2.0.8.9-kit-httpinjects-paypal.txt",
        "zeus-2.0.8.9-kit-httpinjects-usaa.txt",
        "zeus-2.0.8.9-kit-webinjects-small.txt",
    ] {
        one.extend_from_slice(&std::fs::read(format!("{dir}{f}")).expect("corpus file"));
        one.extend_from_slice(b"\r\n");
    }
    let mut input = Vec::with_capacity(100 << 20);
    while input.len() < 100 << 20 {
        input.extend_from_slice(&one);
    }
    let index = InstitutionIndex::new(dropwatch_masks::bundled_registry().institutions);
    let before = vm_hwm_kib();
    let started = std::time::Instant::now();
    let out = parse_any(&input, Mode::Tolerant).expect("tolerant never fails");
    let parsed_in = started.elapsed();
    let analysis = analyze_with(&out.injects, &index, &|x| out.decode(x));
    let elapsed = started.elapsed();
    let after = vm_hwm_kib();
    let mb = input.len() as f64 / (1 << 20) as f64;
    println!(
        "input {mb:.1} MiB, {} entries, {} endpoints, {} fields",
        out.injects.len(),
        analysis.endpoints.len(),
        analysis.fields.len()
    );
    println!(
        "parse {:.2} s, analyze {:.2} s",
        parsed_in.as_secs_f64(),
        (elapsed - parsed_in).as_secs_f64()
    );
    println!(
        "parse+analyze {:.2} s = {:.1} MiB/s",
        elapsed.as_secs_f64(),
        mb / elapsed.as_secs_f64()
    );
    println!(
        "peak RSS before {:.1} MiB, after {:.1} MiB: parsing added {:.2}x the input",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 1024.0 / mb
    );
}
