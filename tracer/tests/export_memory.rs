//! Bounded memory of `oltrace export`: the peak RSS of `--format parquet`
//! and of `--format otlp` on a trace of LARGE records is within 1.5x of
//! their peak on one of SMALL records. What a sink keeps is meant to be
//! bounded by connections and invocations in flight and by one row group
//! (parquet) or span batch (otlp), never by the trace's size.
//!
//! The traces are piped, never on disk, and the peak is read from /proc
//! (`common/peak.rs`); the OTLP spans go to /dev/null, the Parquet folder
//! to a temporary folder removed after each run. A test binary of its own,
//! so that nothing else runs beside it.

#[path = "common/peak.rs"]
mod peak;

use std::path::Path;
use std::process::Command;

/// Small enough to be quick, large enough for every Parquet table to have
/// filled a row group (256 Ki rows; the logs table gets one row per ~15
/// records) and for OTLP to have sent many batches.
const SMALL: usize = 1_000_000;
const LARGE: usize = 5_000_000;

/// The export's peak resident set in KiB on a piped trace of `records`.
fn export_peak(dir: &Path, format: &str, records: usize) -> u64 {
    let trace = dir.join(format!("{format}-{records}.mp"));
    let out = dir.join(format!("{format}-{records}.out"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oltrace"));
    cmd.args(["export", "--format", format]).arg(&trace).arg("-o");
    if format == "otlp" {
        cmd.arg("/dev/null");
    } else {
        cmd.arg(&out);
    }
    let (peak, code, stdout) = peak::peak_kib(&mut cmd, &trace, records);
    assert_eq!(code, Some(0), "export {format}: {stdout}");
    if format == "parquet" {
        let size: u64 = std::fs::read_dir(&out).unwrap().map(|f| f.unwrap().metadata().unwrap().len()).sum();
        assert!(size > records as u64, "the export wrote its tables: {size} bytes");
        std::fs::remove_dir_all(&out).unwrap();
    }
    std::fs::remove_file(&trace).unwrap();
    peak
}

#[test]
fn parquet_and_otlp_exports_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["parquet", "otlp"] {
        let small = export_peak(dir.path(), format, SMALL);
        let large = export_peak(dir.path(), format, LARGE);
        assert!(small > 1000, "a peak was read: {small} KiB");
        let ratio = large as f64 / small as f64;
        eprintln!("export --format {format}: peak RSS {small} KiB on {SMALL} records, {large} KiB on {LARGE} ({ratio:.2}x)");
        assert!(ratio <= 1.5, "export --format {format}: peak RSS {large} KiB on {LARGE} records vs {small} KiB on {SMALL}: {ratio:.2}x");
    }
}
