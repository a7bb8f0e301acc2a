//! Fuzz target for the PostgreSQL decoder: checks invariants beyond "no
//! panic". The input format and the invariants are in `check_pg.rs`, shared
//! with `wire/tests/pg_regressions.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod check_pg;

fuzz_target!(|data: &[u8]| check_pg::check(data));
