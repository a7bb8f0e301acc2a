//! Bounded memory: olanalyze's peak RSS on a trace of 10 million records is
//! within 1.5x of its peak on one of 1 million (issue 19). Memory is meant
//! to be bounded by what is in flight (invocations, classes, capped sets),
//! never by the trace's size.
//!
//! The traces are the serverless mix of `format::synth` (what `oltrace
//! generate` writes), written by a thread of the test into a named pipe
//! that olanalyze reads as its trace file: the 10 million records never
//! touch the disk (CI's disk once ran full on them). The peak is the
//! child's `VmHWM`, read from /proc while it runs (it only grows, so the
//! last reading before it exits is its peak, give or take the last few
//! milliseconds).

use format::synth::{Synth, SynthOptions};
use format::{Header, Writer, WriterOptions};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Makes a named pipe at `path` and starts a thread that writes a trace of
/// `records` synthetic records into it once a reader opens it.
fn piped_trace(path: &Path, records: usize) -> std::thread::JoinHandle<()> {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let header = Header::new("bounded_memory test", "synth");
        let mut writer = Writer::create(&path, &header, WriterOptions::default()).unwrap();
        for record in Synth::new(SynthOptions::default()).take(records) {
            writer.write(&record).unwrap();
        }
        writer.flush().unwrap();
    })
}

/// olanalyze's peak resident set on a piped trace of `records` records, in
/// KiB, and the records count it reports.
fn peak_kib(dir: &Path, records: usize) -> (u64, u64) {
    let trace = dir.join(format!("{records}.mp"));
    let writer = piped_trace(&trace, records);
    let mut child = Command::new(env!("CARGO_BIN_EXE_olanalyze"))
        .args(["--no-progress", "--json"])
        .arg(&trace)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    // Read the output on a thread so the child never blocks on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()) {
                peak = peak.max(kib);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = reader.join().unwrap();
    if !writer.is_finished() {
        // olanalyze exited without reading the pipe to its end: open and
        // drain the pipe so the writer thread returns rather than hang.
        let _ = std::io::copy(&mut std::fs::File::open(&trace).unwrap(), &mut std::io::sink());
    }
    assert!(writer.join().is_ok(), "olanalyze stopped reading the trace early: {out}");
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
