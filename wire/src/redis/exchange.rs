//! [`RedisExchange`]: a command paired with its reply, and [`ReplySummary`].

use super::message::RedisArgs;
use super::value::{RespKind, RespValue};
use bytes::Bytes;
use std::borrow::Cow;

/// The Redis side of an [`crate::Exchange`]: one command and what came back.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisExchange {
    /// The command name in upper case (`GET`, `CLIENT`), zero-copy when it
    /// was sent in upper case.
    pub command: Bytes,
    /// All arguments, name first, as sent and capped by the request cap.
    pub args: RedisArgs,
    /// True for an inline command (a text line).
    pub inline: bool,
    /// True when the command was sent between `MULTI` and `EXEC`/`DISCARD`:
    /// Redis queues it (reply `+QUEUED`, or an error that makes `EXEC`
    /// abort) and runs it at `EXEC`, whose reply array holds its result.
    pub queued: bool,
    /// Summary of the (first) reply; `None` when none came.
    pub reply: Option<ReplySummary>,
    /// The (first) reply's value, capped by the response cap; `None` when
    /// no reply came.
    pub value: Option<RespValue>,
    /// True when `value` was cut by the response cap.
    pub value_truncated: bool,
    /// Number of server frames counted as this command's replies: 1 for
    /// most commands, one per channel for `SUBSCRIBE`-like commands (and
    /// per subscription dropped for a bare `UNSUBSCRIBE`), 0 when none came.
    pub replies: u32,
}

impl RedisExchange {
    /// [`RedisExchange::command`] as text.
    pub fn command_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.command)
    }

    /// True when the reply is an error (`-` or `!`).
    pub fn is_error(&self) -> bool {
        self.reply.as_ref().is_some_and(|r| r.kind.is_error())
    }
}

/// What a reply was, in a few fields an analysis can aggregate.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplySummary {
    /// The reply's type (of the value proper, looking through attributes).
    pub kind: RespKind,
    /// Bulk strings, bulk errors, verbatim strings: payload length in
    /// bytes; arrays, sets, pushes: element count; maps: pair count; as
    /// the header said, even when the value was capped. `None` for other
    /// types and nulls.
    pub len: Option<u64>,
    /// The integer of an integer reply.
    pub integer: Option<i64>,
    /// The text of an error reply (`ERR ...`, `WRONGTYPE ...`), capped.
    pub error: Option<Bytes>,
}

impl ReplySummary {
    /// The error text, lossy.
    pub fn error_str(&self) -> Option<Cow<'_, str>> {
        self.error.as_ref().map(|b| String::from_utf8_lossy(b))
    }
}
