//! `wire`: sans-IO protocol codecs for oltrace.
//!
//! Bytes and a timestamp go in, decoded messages and paired request/response
//! exchanges come out. Nothing here touches a socket or reads the clock: the
//! caller (the recording proxy, the pcap importer, the replayer, a test)
//! passes time in as nanoseconds, so every decoder runs on virtual time.
//!
//! # Layout
//!
//! - [`types`]: what every codec shares: [`Direction`] and [`Protocol`]
//!   (the trace format's own, re-exported: one definition for every crate,
//!   see docs/protocols.md for why they live in `format`), [`Limits`],
//!   [`CappedBytes`] (a body kept as prefix + full length + hash), the
//!   [`Event`]s a decoder emits, and the [`Decoder`] trait.
//! - [`session`]: [`Session`], one per connection. It owns the protocol's
//!   decoder, counts stream offsets, and switches the connection to opaque
//!   mode when a decoder gives up (or hands over, e.g. after TLS or an HTTP
//!   `Upgrade`), re-emitting the bytes the decoder held as opaque chunks so
//!   that nothing is lost.
//! - [`at_rest`]: [`ParseError`], what the one-shot parsers of stored
//!   messages return (each protocol module has its own: bytes at rest are
//!   parsed by the same framing code as bytes in flight).
//! - [`opaque`]: the decoder for plain TCP: timed chunks.
//! - [`http`], [`pg`], [`redis`]: one module per protocol, each with its
//!   decoder (both directions), its message and exchange types, and the
//!   encoders the replayer needs.
//! - `testing` (only with the `testing` cargo feature, which tests enable
//!   through their dev-dependencies): the split-invariance check and the
//!   fixture loader, for tests of code built on the codecs.
//!
//! Every decoder enforces [`Limits::max_frame`], never panics on any input,
//! and treats "need more bytes" as an ordinary outcome.

pub mod at_rest;
pub mod http;
pub mod opaque;
pub mod pg;
pub mod redis;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;
pub mod types;

pub use at_rest::ParseError;
pub use session::Session;
pub use types::*;
