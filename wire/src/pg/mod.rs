//! PostgreSQL frontend/backend protocol 3.0: decoder (both directions),
//! exchange pairing, value decoding, and the frontend encoders and
//! authentication helpers (MD5, SCRAM-SHA-256) the replayer needs.
//!
//! # Layout
//!
//! - [`tags`]: message tags, startup codes, auth codes, type OIDs.
//! - [`message`]: [`PgMessage`], one decoded message, and its parts.
//! - [`values`]: [`PgValue`], parameters and column values as text.
//! - [`exchange`]: [`PgExchange`], one request/response round trip.
//! - `parse` (private): message bodies to [`PgMessage`], every read checked.
//! - `at_rest` (private): stored messages parsed at once
//!   ([`parse_backend`], [`parse_frontend`], [`parse_startup`], and
//!   [`data_rows`] with lazy [`DataRow`] views, [`bind_param_spans`] for
//!   redaction), with the decoder's frame checks and body parsers.
//! - `tracker` (private): pairs answers with requests; tracks prepared
//!   statements and portals.
//! - [`decoder`]: [`PgDecoder`], framing and the startup/SSL phase.
//! - [`encode`]: frontend message encoders for the replayer.
//! - [`auth`]: MD5 password hashing and a sans-IO SCRAM-SHA-256 client.
//!
//! # What comes out
//!
//! One [`crate::Message`] per protocol message, except that a run of
//! consecutive DataRow messages (or CopyData, either way) is coalesced into
//! one [`PgMessage::DataRows`] / [`PgMessage::CopyData`] event whose `raw`
//! covers the whole run (capped) and which decodes only the first
//! [`SAMPLE_ROWS`] rows; the other rows cost a 5-byte header read each. The
//! run ends when a message with another tag arrives in that direction, at
//! end of stream, or before a fallback.
//!
//! One [`crate::Exchange`] per round trip (see [`PgExchangeKind`]), emitted
//! after the ReadyForQuery that ends it, or, for an extended-protocol
//! sequence the client ended with Flush (asyncpg's Parse/Describe/Flush),
//! once every operation before the Flush is answered.

mod at_rest;
pub mod auth;
pub mod decoder;
pub mod encode;
pub mod exchange;
pub mod message;
mod parse;
pub mod tags;
mod tracker;
pub mod values;

pub use at_rest::{bind_param_spans, data_rows, parse_backend, parse_frontend, parse_startup, DataRow};
pub use decoder::PgDecoder;
pub use exchange::*;
pub use message::*;
pub use values::PgValue;
