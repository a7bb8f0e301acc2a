//! Peak memory of a command reading a big synthetic trace, without the
//! trace touching the disk: a thread writes the serverless mix of
//! `format::synth` (what `oltrace generate` writes) into a named pipe that
//! the command reads as its trace file (CI's disk once ran full on 10
//! million records). The peak is the child's `VmHWM`, read from /proc
//! while it runs: it only grows, and it starts afresh at `exec`, so it is
//! the command's own (unlike `wait4`'s maximum RSS, which counts the
//! parent's pages from before the `exec`). The last reading before the
//! child exits is its peak, give or take the last few milliseconds.
//!
//! Used by tracer's `export_memory` test and olanalyze's `bounded_memory`
//! test (included by path there).

pub use format::synth::SynthOptions;
use format::synth::Synth;
use format::{Header, Writer, WriterOptions};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Makes a named pipe at `path` and starts a thread that writes a trace of
/// `records` synthetic records (made with `options`) into it once a reader
/// opens it.
pub fn piped_trace(path: &Path, records: usize, options: SynthOptions) -> std::thread::JoinHandle<()> {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let header = Header::new("bounded memory test", "synth");
        let mut writer = Writer::create(&path, &header, WriterOptions::default()).unwrap();
        for record in Synth::new(options).take(records) {
            writer.write(&record).unwrap();
        }
        writer.flush().unwrap();
    })
}

/// Runs `cmd`, whose trace argument is a [`piped_trace`] of `records`
/// records at `trace`, to its end. Returns its peak resident set in KiB,
/// its exit code and its stdout.
pub fn peak_kib(cmd: &mut Command, trace: &Path, records: usize, options: SynthOptions) -> (u64, Option<i32>, String) {
    let writer = piped_trace(trace, records, options);
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    // Read the output on a thread so the child never blocks on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()) {
                peak = peak.max(kib);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = reader.join().unwrap();
    if !writer.is_finished() {
        // The child exited without reading the pipe to its end: open and
        // drain the pipe so the writer thread returns rather than hang.
        let _ = std::io::copy(&mut std::fs::File::open(trace).unwrap(), &mut std::io::sink());
    }
    assert!(writer.join().is_ok(), "the command stopped reading the trace early: {out}");
    (peak, status.code(), out)
}
