//! Bounded memory: olanalyze's peak RSS on a trace of 10 million records is
//! within 1.5x of its peak on one of 1 million (issue 19). Memory is meant
//! to be bounded by what is in flight (invocations, classes, capped sets),
//! never by the trace's size.
//!
//! The traces are piped, never on disk, and the peak is read from /proc
//! (`tracer/tests/common/peak.rs`, shared with `oltrace export`'s test).

#[path = "../../tracer/tests/common/peak.rs"]
mod peak;

use std::path::Path;
use std::process::Command;

/// olanalyze's peak resident set on a piped trace of `records` records, in
/// KiB, and the records count it reports.
fn peak_kib(dir: &Path, records: usize) -> (u64, u64) {
    let trace = dir.join(format!("{records}.mp"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_olanalyze"));
    cmd.args(["--no-progress", "--json"]).arg(&trace);
    let (peak, code, out) = peak::peak_kib(&mut cmd, &trace, records, peak::SynthOptions::default());
    assert_eq!(code, Some(0), "{out}");
    let analysis: serde_json::Value = serde_json::from_str(&out).unwrap();
    (peak, analysis["overview"]["records"].as_u64().unwrap())
}

#[test]
fn peak_memory_on_10_million_records_is_within_1_5x_of_1_million() {
    let dir = tempfile::tempdir().unwrap();
    let (small_kib, small_records) = peak_kib(dir.path(), 1_000_000);
    let (large_kib, large_records) = peak_kib(dir.path(), 10_000_000);
    assert_eq!((small_records, large_records), (1_000_000, 10_000_000));
    assert!(small_kib > 1000, "a peak was read: {small_kib} KiB");
    let ratio = large_kib as f64 / small_kib as f64;
    eprintln!("peak RSS: {small_kib} KiB on 1M records, {large_kib} KiB on 10M ({ratio:.2}x)");
    assert!(ratio <= 1.5, "peak RSS {large_kib} KiB on 10M records vs {small_kib} KiB on 1M: {ratio:.2}x");
}
