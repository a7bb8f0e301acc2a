//! Redis: a sans-IO codec for RESP2 and RESP3, both directions.
//!
//! Client side, commands are RESP arrays of bulk strings or inline command
//! lines (as Redis itself parses them). Server side, every RESP2 and RESP3
//! type is understood: simple strings, errors, integers, bulk strings and
//! their null, arrays and their null, RESP3 null `_`, booleans `#`, doubles
//! `,`, big numbers `(`, bulk errors `!`, verbatim strings `=`, maps `%`,
//! sets `~`, attributes `|` (attached to the value that follows) and pushes
//! `>`, nested up to [`MAX_DEPTH`] levels.
//!
//! Commands and replies are paired in order (pipelines included), with the
//! protocol's exceptions: pub/sub pushes and RESP3 `>` frames answer no
//! command, subscribe confirmations count one per channel, `CLIENT REPLY
//! OFF|SKIP` silence the server, commands between `MULTI` and `EXEC` are
//! marked queued; see [`pairing`](self#pairing) below.
//!
//! # Layout
//!
//! - `decoder.rs`: [`RedisDecoder`], the [`crate::Decoder`]: per-direction
//!   buffers, message framing and emission, fallback to opaque.
//! - `scan.rs`: the resumable framer (where does this message end?),
//!   which also records command argument spans in the same pass.
//! - `at_rest.rs`: [`parse_reply`], one stored reply parsed at once (the
//!   scanner frames it, with its limits, then `parse.rs` builds it).
//! - `parse.rs`: values from complete frames (zero-copy, cut at the cap),
//!   inline command splitting, pub/sub frame classification.
//! - `value.rs`: [`RespValue`] and [`RespKind`].
//! - `message.rs`: [`RedisMessage`], [`RedisCommand`], [`RedisArgs`],
//!   [`RespFrame`].
//! - `exchange.rs`: [`RedisExchange`] and [`ReplySummary`].
//! - `pairing.rs`: the command/reply pairing state machine.
//! - `run.rs`: [`RedisRun`], what the decoder's fast path emits for the
//!   plain commands and replies of one read, and its expansion into
//!   per-message events.
//! - `encode.rs`: [`encode_command`] (for the replayer), [`encode_inline`],
//!   [`encode_value`].
//!
//! # Pairing
//!
//! Redis answers commands in order, so pending commands form a FIFO. The
//! exceptions: RESP3 push frames (`>`) are never plain replies; RESP2
//! `message`/`pmessage`/`smessage` arrays on a subscribed connection and
//! `MONITOR` lines are pushes too ([`RedisMessage::Push`]). `SUBSCRIBE a b`
//! takes two confirmations as its replies (under RESP3 those are `>` pushes,
//! emitted as pushes but still counted); a bare `UNSUBSCRIBE` takes one per
//! channel the connection had (counted from the confirmations' counts).
//! `CLIENT REPLY OFF` (until `ON`) and `CLIENT REPLY SKIP` (the next command)
//! give [`crate::ExchangeStatus::NoReply`] exchanges, emitted in command
//! order. Commands between `MULTI` and `EXEC`/`DISCARD` are
//! [`RedisExchange::queued`]. `HELLO 3` (a map reply) switches the
//! connection to RESP3, which only changes how pub/sub messages look: the
//! decoder reads both protocols at any time.
//!
//! # Redaction
//!
//! [`RedisMessage::is_auth`] / [`RedisCommand::is_auth`] flag `AUTH` and
//! `HELLO ... AUTH`; [`RedisCommand::secret_args`] says which arguments hold
//! secrets (also `MIGRATE ... AUTH`, `CONFIG SET requirepass`, `ACL SETUSER`
//! passwords).

mod at_rest;
mod decoder;
mod encode;
mod exchange;
mod message;
mod pairing;
mod parse;
mod run;
mod scan;
mod value;

pub use at_rest::parse_reply;
pub use decoder::RedisDecoder;
pub use encode::{
    encode_command, encode_command_into, encode_inline, encode_value, encode_value_into,
};
pub use exchange::{RedisExchange, ReplySummary};
pub use message::{secret_args_of, RedisArgs, RedisCommand, RedisMessage, RespFrame};
pub use pairing::MAX_PENDING;
pub use parse::{command_raw_spans, inline_raw_spans};
pub use run::{reply_summary, RedisRun};
pub use scan::MAX_DEPTH;
pub use value::{RespKind, RespValue};
