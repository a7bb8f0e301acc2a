//! Helpers shared by the wire tests: captured fixtures, feeding them to a
//! `Session` whole or split, comparing the events. They live in
//! `wire::testing` so other crates' tests use the same ones.
#![allow(dead_code, unused_imports)]

pub use wire::testing::{
    assert_split_invariant, bytewise, coalesce, decode, fixture_path, fixtures_in, load_fixture as load, split_at, Chunk,
};
