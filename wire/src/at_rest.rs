//! [`ParseError`]: why a stored message (bytes at rest, e.g. a trace's
//! recorded reply) does not parse. The one-shot parsers that return it
//! live with their protocol: [`crate::redis::parse_reply`],
//! [`crate::pg::parse_backend`] and friends, [`crate::http::parse_head`].
//! They reuse the stream decoders' framing and limits, so a message at rest
//! reads exactly as it did in flight.

/// Why a stored message does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The bytes end before the message does (a message cut by the
    /// recorder's cap, or a torn read).
    #[error("{protocol}: message incomplete ({have} bytes)")]
    Incomplete {
        /// `redis`, `pg` or `http`.
        protocol: &'static str,
        /// How many bytes there were.
        have: usize,
    },
    /// Not a valid message: the stream decoder's own reason (e.g. `redis:
    /// aggregates nested deeper than 128`), which it would have fallen back
    /// to opaque mode for.
    #[error("{0}")]
    Invalid(String),
}
