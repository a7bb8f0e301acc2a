//! Bounded memory of `oltrace export`:
//!
//! - `--format otlp`: the peak RSS on a trace of LARGE records is within
//!   1.5x of its peak on one of SMALL records;
//! - `--format parquet`: the peak on LARGE records is under PARQUET_MAX_KIB.
//!   The writer holds a row group (256 Ki rows) of each of its four tables
//!   until it is full, so its memory grows until every table has filled
//!   one: the logs and invocations tables get a row per ~14 records, so
//!   that takes ~3.7 million records, and a ratio against a smaller trace
//!   would measure the filling, not a leak. Measured (debug build): 156 MiB
//!   on this test's 5 million records; on the generator's default, denser
//!   trace (below), 271 MiB on 5 million and 287 MiB on 8 million.
//!
//! What bounds an export's memory besides: the trace view keeps each
//! invocation for `STREAM_RETENTION_NS` (600 s of trace time) for its
//! calls to find, so memory grows with the trace until it spans that much
//! time, then stays. The generator's default trace is dense (an invocation
//! every 2 ms: 600 s is ~4 million records), so these traces have one
//! every 50 ms, and both sizes span well over 600 s. (With the default,
//! OTLP measured 45 MiB on 1 million records and 142 MiB on 5 million: the
//! window filling, ~350 bytes an invocation.)
//!
//! The traces are piped, never on disk, and the peak is read from /proc
//! (`common/peak.rs`); the OTLP spans go to /dev/null, the Parquet folder
//! to a temporary folder removed after each run. A test binary of its own,
//! so that nothing else runs beside it.

#[path = "common/peak.rs"]
mod peak;

use std::path::Path;
use std::process::Command;

/// Small enough to be quick, large enough for OTLP to have sent many
/// batches and for every Parquet table to have filled a row group.
const SMALL: usize = 1_000_000;
const LARGE: usize = 5_000_000;
/// Four tables' row groups in progress, and room for the allocator.
const PARQUET_MAX_KIB: u64 = 256 * 1024;

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
    let options = peak::SynthOptions { mean_gap_ns: 50_000_000, ..peak::SynthOptions::default() };
    let (peak, code, stdout) = peak::peak_kib(&mut cmd, &trace, records, options);
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
    let parquet = export_peak(dir.path(), "parquet", LARGE);
    eprintln!("export --format parquet: peak RSS {parquet} KiB on {LARGE} records");
    assert!(parquet > 1000, "a peak was read: {parquet} KiB");
    assert!(parquet < PARQUET_MAX_KIB, "export --format parquet: peak RSS {parquet} KiB on {LARGE} records");

    let small = export_peak(dir.path(), "otlp", SMALL);
    let large = export_peak(dir.path(), "otlp", LARGE);
    assert!(small > 1000, "a peak was read: {small} KiB");
    let ratio = large as f64 / small as f64;
    eprintln!("export --format otlp: peak RSS {small} KiB on {SMALL} records, {large} KiB on {LARGE} ({ratio:.2}x)");
    assert!(ratio <= 1.5, "export --format otlp: peak RSS {large} KiB on {LARGE} records vs {small} KiB on {SMALL}: {ratio:.2}x");
}
