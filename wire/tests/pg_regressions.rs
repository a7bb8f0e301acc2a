//! Regression inputs for the PostgreSQL decoder, checked with the fuzz
//! target's invariants (`fuzz/fuzz_targets/check_pg.rs`, shared with
//! `fuzz_pg.rs`): byte accounting per direction, and split invariance up to
//! any fallback. Every file in `fuzz/artifacts/fuzz_pg/` is replayed as the
//! fuzzer ran it; the hand-written conversations below are checked with both
//! limit sets at every split point.

#[path = "../../fuzz/fuzz_targets/check_pg.rs"]
mod check_pg;

use check_pg::{check_accounting, check_split, limits, records, run};

#[test]
fn fuzz_artifacts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/artifacts/fuzz_pg");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        check_pg::check(&std::fs::read(e.path()).unwrap());
    }
}

/// Every invariant at every split point, with both limit sets. `input` is
/// the fuzz input without byte 0 (the records only).
fn check_all_splits(input: &[u8]) {
    let conv = records(input);
    let total: usize = conv.iter().map(|c| c.1.len()).sum();
    for ctl in [0, 1] {
        let limits = limits(ctl);
        let whole = run(limits, &conv);
        check_accounting(limits, &conv, &whole);
        for at in 1..total {
            check_split(limits, &conv, &whole, at);
        }
    }
}

fn rec(server: bool, b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in b.chunks(127) {
        out.push(if server { 0x80 } else { 0 } | c.len() as u8);
        out.extend_from_slice(c);
    }
    out
}

const STARTUP: &[u8] = b"\0\0\0\x0d\0\x03\0\0u\0x\0\0";

#[test]
fn run_cut_by_a_fallback_in_the_other_direction() {
    // A DataRow run with a row half received, then the client sends garbage:
    // the run (with its partial row) is emitted before the hand-over.
    let mut rows = Vec::new();
    for _ in 0..12 {
        rows.extend_from_slice(b"D\0\0\0\x0a\0\x01\0\0\0\x00");
    }
    rows.extend_from_slice(b"D\0\0\0\x40\0\x01");
    let input = [rec(false, STARTUP), rec(false, b"Q\0\0\0\x05\0"), rec(true, &rows), rec(false, b"\xff\0\0\0\x04")].concat();
    check_all_splits(&input);
}

#[test]
fn eof_inside_a_skipped_row_and_inside_a_header() {
    let mut rows = Vec::new();
    for _ in 0..11 {
        rows.extend_from_slice(b"D\0\0\0\x0a\0\x01\0\0\0\x00");
    }
    rows.extend_from_slice(b"D\0\0\x01\0\0\x01\0\0");
    check_all_splits(&[rec(false, STARTUP), rec(false, b"Q\0\0\0\x05\0"), rec(true, &rows)].concat());
    check_all_splits(&[rec(false, STARTUP), rec(false, b"Q\0\0"), rec(true, b"T\0")].concat());
}

#[test]
fn copy_data_both_ways_with_tiny_caps() {
    let d = b"d\0\0\0\x08abcd".repeat(9);
    check_all_splits(&[rec(false, STARTUP), rec(false, &d), rec(true, &d), rec(false, b"c\0\0\0\x04"), rec(true, b"c\0\0\0\x04Z\0\0\0\x05I")].concat());
}
