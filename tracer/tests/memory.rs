//! Writing and reading 5 million records stays under 64 MiB resident.
//!
//! In a test binary of its own on purpose: Linux counts a child's peak RSS
//! from before its `exec`, which includes its parent's, so the parent must
//! be a small process (not one holding other tests' records).

use std::path::Path;
use std::process::{Command, Stdio};

fn oltrace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oltrace"))
}

/// Peak resident memory of a finished child, in KiB.
fn run_measuring_rss(cmd: &mut Command) -> (i32, i64) {
    // Reaped below with wait4, which also hands back its resource usage.
    #[allow(clippy::zombie_processes)]
    let child = cmd.stdout(Stdio::null()).spawn().unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

#[test]
fn five_million_records_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mp");
    let (code, write_kib) = run_measuring_rss(oltrace().args(["generate", "--records", "5000000", "--zstd-level", "1", "-o"]).arg(&path));
    assert_eq!(code, 0);
    let (code, read_kib) = run_measuring_rss(oltrace().args(["info", "--json"]).arg(&path));
    assert_eq!(code, 0);
    let out = oltrace().args(["info", "--json"]).arg(&path).output().unwrap();
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["records"], 5_000_000);
    assert!(Path::new(&path).metadata().unwrap().len() > 50_000_000);
    eprintln!("peak RSS: write {write_kib} KiB, read {read_kib} KiB");
    assert!(write_kib < 64 * 1024, "writing 5M records peaked at {write_kib} KiB");
    assert!(read_kib < 64 * 1024, "reading 5M records peaked at {read_kib} KiB");
}

