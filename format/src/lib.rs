//! `format`: the oltrace trace file, the contract between the recorder
//! (`oltrace`), the replayer (`olreplay`) and the analyzer (`olanalyze`).
//!
//! A trace file is a fixed prefix (magic, format version, a MessagePack
//! [`Header`]) followed by checksummed, zstd-compressed blocks of
//! length-prefixed MessagePack [`Record`]s. The full layout and the
//! versioning rules are in `docs/trace-format.md`.
//!
//! # Layout
//!
//! - [`record`]: the record types: connections opened and closed, messages
//!   (exact bytes plus a decoded summary), exchanges, invocations, log
//!   lines, gaps and protocol fallbacks, each inside a [`Record`] envelope
//!   that carries its time and source.
//! - [`decoded`]: the decoded summaries of HTTP, PostgreSQL and Redis
//!   messages and exchanges that the analyzer and `oltrace cat` read.
//! - [`bytes`]: [`BStr`] and [`Payload`], byte strings that are binary in
//!   MessagePack and readable text in JSON.
//! - [`codec`]: the records' MessagePack encoding in a trace file (maps
//!   keyed by field index), written and read by hand for speed.
//! - [`header`]: the file prefix and [`Header`]; version checks.
//! - [`block`]: the on-disk block frame (magic, counts, lengths, CRC32s).
//! - [`writer`]: [`Writer`], a streaming block writer in bounded memory.
//! - [`reader`]: [`Reader`], an iterator of records that reports and skips
//!   torn or corrupt blocks ([`Damage`]) instead of failing.
//! - [`merge`]: merges traces from several sources into one, ordered by time.
//! - [`view`]: the trace view every reading tool shares: the record
//!   filter and duration syntax, connections' protocols and routes, and
//!   the invocation join.
//! - [`synth`]: a deterministic generator of realistic traces, for tests,
//!   benchmarks and sample files.

pub mod block;
pub mod bytes;
pub mod codec;
pub mod decoded;
pub mod error;
pub mod header;
pub mod merge;
pub mod reader;
pub mod record;
mod small_enum;
pub mod synth;
pub mod view;
pub mod writer;

pub use bytes::{BStr, Payload};
pub use codec::DecodeError;
pub use decoded::*;
pub use error::FormatError;
pub use header::{Header, RecordedRoute, Redaction, Source, FORMAT_MAJOR, FORMAT_MINOR};
pub use reader::{Damage, DamageKind, Reader};
pub use record::*;
pub use writer::{Writer, WriterOptions};
