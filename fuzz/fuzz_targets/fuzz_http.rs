//! Fuzzes the HTTP decoder through a `Session` and checks invariants, not
//! only the absence of panics. The input layout and the invariants are in
//! `check_http.rs`, shared with `wire/tests/http_regressions.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod check_http;

fuzz_target!(|data: &[u8]| check_http::check(data));
