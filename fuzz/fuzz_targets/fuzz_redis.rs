//! Fuzzes the Redis decoder through `Session` and checks invariants, not
//! only "no panic". The input format and the invariants are in
//! `check_redis.rs`, shared with `wire/tests/redis_regressions.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod check_redis;

fuzz_target!(|data: &[u8]| check_redis::check(data));
