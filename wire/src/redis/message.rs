//! [`RedisMessage`]: what one decoded Redis message says.

use super::scan::Spans;
use super::value::RespValue;
use bytes::Bytes;
use std::borrow::Cow;
use std::fmt;

/// One decoded Redis message, in either direction.
#[derive(Clone, Debug, PartialEq)]
pub enum RedisMessage {
    /// A command from the client: an array of bulk strings, or an inline
    /// command line.
    Command(RedisCommand),
    /// A server frame that answers a command (paired with it in a
    /// [`super::RedisExchange`]).
    Reply(RespFrame),
    /// A server frame that answers no command: a RESP3 `>` push (pub/sub
    /// messages, client-tracking invalidations, and also RESP3 subscribe
    /// confirmations, which do count as the replies of their `SUBSCRIBE`),
    /// a RESP2 pub/sub `message`/`pmessage`/`smessage` array, or a line of a
    /// `MONITOR` stream.
    Push(RespFrame),
}

impl RedisMessage {
    /// The command, when this is one.
    pub fn command(&self) -> Option<&RedisCommand> {
        match self {
            RedisMessage::Command(c) => Some(c),
            _ => None,
        }
    }

    /// The server frame (reply or push), when this is one.
    pub fn frame(&self) -> Option<&RespFrame> {
        match self {
            RedisMessage::Reply(f) | RedisMessage::Push(f) => Some(f),
            RedisMessage::Command(_) => None,
        }
    }

    /// True for a command that carries credentials (see
    /// [`RedisCommand::is_auth`]): redact it before storing.
    pub fn is_auth(&self) -> bool {
        self.command().is_some_and(RedisCommand::is_auth)
    }
}

/// A server frame: one RESP value, possibly cut by the response cap.
#[derive(Clone, Debug, PartialEq)]
pub struct RespFrame {
    /// The value, as far as the cap allowed (see `truncated`).
    pub value: RespValue,
    /// True when the message was longer than the cap: aggregates then hold
    /// fewer elements than their header said and the last string kept may
    /// be a prefix ([`crate::Message::raw`] has the full length and a hash).
    pub truncated: bool,
}

/// A client command.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisCommand {
    /// The arguments, command name first, as sent (not case-folded).
    pub args: RedisArgs,
    /// True when sent as an inline command (a plain text line, as `telnet`,
    /// `nc` or health checks do) rather than as a RESP array.
    pub inline: bool,
}

impl RedisCommand {
    /// The command name (first argument) in upper case; `None` for an empty
    /// command (`*0`, a blank inline line). Borrowed when already upper case.
    pub fn name(&self) -> Option<Cow<'_, [u8]>> {
        let n = self.args.get(0)?;
        if n.iter().any(u8::is_ascii_lowercase) {
            Some(Cow::Owned(n.to_ascii_uppercase()))
        } else {
            Some(Cow::Borrowed(n))
        }
    }

    /// [`RedisCommand::name`] as text (`""` for an empty command).
    pub fn name_str(&self) -> Cow<'_, str> {
        match self.name() {
            Some(Cow::Borrowed(b)) => String::from_utf8_lossy(b),
            Some(Cow::Owned(b)) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
            None => Cow::Borrowed(""),
        }
    }

    /// True for `AUTH`, and for `HELLO` with an `AUTH` option: commands
    /// whose arguments hold credentials.
    pub fn is_auth(&self) -> bool {
        let Some(name) = self.args.get(0) else {
            return false;
        };
        name.eq_ignore_ascii_case(b"AUTH")
            || (name.eq_ignore_ascii_case(b"HELLO")
                && self
                    .args
                    .iter()
                    .skip(2)
                    .any(|a| a.eq_ignore_ascii_case(b"AUTH")))
    }

    /// Indices (into [`RedisCommand::args`], name = 0) of arguments that
    /// hold secrets, for redaction: every argument of `AUTH`; the user and
    /// password after `HELLO ... AUTH`; the password after `MIGRATE ... AUTH`
    /// and user and password after `AUTH2`; the value of `CONFIG SET
    /// requirepass|masterauth`; `>pass`, `<pass`, `#hash`, `!hash` rules of
    /// `ACL SETUSER`. Indices can exceed the kept arguments when the
    /// command was cut by the cap.
    pub fn secret_args(&self) -> Vec<usize> {
        self.args.secret_args()
    }
}

/// A command's arguments without a heap allocation per argument: one
/// [`Bytes`] buffer (normally the message's own raw bytes, zero-copy) and
/// the byte span of each argument in it.
///
/// Equality compares the arguments, not how they are stored.
#[derive(Clone)]
pub struct RedisArgs {
    /// The buffer the spans point into.
    pub data: Bytes,
    /// `(start, end)` byte offsets in `data` of each kept argument, in order.
    pub spans: Spans,
    /// How many arguments the command had on the wire (can exceed
    /// `spans.len()` when the command was cut by the request cap).
    pub count: u64,
    /// True when the cap cut an argument short or dropped arguments.
    pub truncated: bool,
}

impl RedisArgs {
    /// [`RedisCommand::secret_args`] of a command with these arguments.
    pub fn secret_args(&self) -> Vec<usize> {
        secret_args(self.count, self.len(), |i| self.get(i))
    }

    /// Arguments copied from slices (for tests and the replayer).
    pub fn from_slices(args: &[&[u8]]) -> RedisArgs {
        let mut data = Vec::with_capacity(args.iter().map(|a| a.len()).sum());
        let mut spans = Spans::new();
        for a in args {
            let s = data.len();
            data.extend_from_slice(a);
            spans.push((s as u32, data.len() as u32));
        }
        RedisArgs {
            data: Bytes::from(data),
            spans,
            count: args.len() as u64,
            truncated: false,
        }
    }

    /// Arguments over `data` (spans relative to it), cut to the first `keep`
    /// bytes of `data`.
    pub(crate) fn clipped(data: Bytes, mut spans: Spans, count: u64, keep: usize) -> RedisArgs {
        let mut truncated = (spans.len() as u64) < count;
        let limit = keep.min(data.len());
        if spans.iter().any(|&(_, e)| e as usize > limit) {
            truncated = true;
            spans.retain(|(s, _)| (*s as usize) < limit);
            let l = limit as u32;
            for sp in spans.iter_mut() {
                sp.1 = sp.1.min(l);
            }
        }
        let data = if data.len() > keep {
            data.slice(..limit)
        } else {
            data
        };
        RedisArgs {
            data,
            spans,
            count,
            truncated,
        }
    }

    /// Number of arguments kept.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when no argument was kept (an empty command).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i` (0 = the command name), if kept.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let &(s, e) = self.spans.get(i)?;
        self.data.get(s as usize..e as usize)
    }

    /// Argument `i` as a zero-copy [`Bytes`], if kept.
    pub fn bytes(&self, i: usize) -> Option<Bytes> {
        let &(s, e) = self.spans.get(i)?;
        if (s as usize) <= (e as usize) && (e as usize) <= self.data.len() {
            Some(self.data.slice(s as usize..e as usize))
        } else {
            None
        }
    }

    /// Argument `i` as (lossy) text.
    pub fn str(&self, i: usize) -> Option<Cow<'_, str>> {
        self.get(i).map(String::from_utf8_lossy)
    }

    /// The kept arguments, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.spans.len()).filter_map(move |i| self.get(i))
    }

    /// The kept arguments as separate [`Bytes`] (zero-copy).
    pub fn to_vec(&self) -> Vec<Bytes> {
        (0..self.spans.len())
            .filter_map(|i| self.bytes(i))
            .collect()
    }
}

impl PartialEq for RedisArgs {
    fn eq(&self, other: &RedisArgs) -> bool {
        self.count == other.count
            && self.truncated == other.truncated
            && self.spans.len() == other.spans.len()
            && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for RedisArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for a in self.iter() {
            l.entry(&String::from_utf8_lossy(a));
        }
        if self.truncated || self.count != self.spans.len() as u64 {
            l.entry(&format_args!("... ({} args on the wire)", self.count));
        }
        l.finish()
    }
}

/// [`RedisCommand::secret_args`] of a command whose arguments, name first,
/// are `args` (as a stored command's bytes give them through
/// [`super::command_raw_spans`]).
pub fn secret_args_of(args: &[&[u8]]) -> Vec<usize> {
    secret_args(args.len() as u64, args.len(), |i| args.get(i).copied())
}

/// [`RedisCommand::secret_args`] of a command of `count` arguments on the
/// wire, of which the first `kept` can be read through `get` (name = 0).
pub(crate) fn secret_args<'a>(count: u64, kept: usize, get: impl Fn(usize) -> Option<&'a [u8]>) -> Vec<usize> {
    // Every command is asked, most are GET or SET: the names below start
    // with one of four letters.
    if !get(0).and_then(|n| n.first()).is_some_and(|c| matches!(c.to_ascii_uppercase(), b'A' | b'H' | b'M' | b'C')) {
        return Vec::new();
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let eq = |i: usize, s: &str| get(i).is_some_and(|x| x.eq_ignore_ascii_case(s.as_bytes()));
    let mut out = Vec::new();
    if eq(0, "AUTH") {
        out.extend(1..count);
    } else if eq(0, "HELLO") || eq(0, "MIGRATE") {
        for i in 1..kept {
            if eq(i, "AUTH") {
                let n = if eq(0, "HELLO") { 2 } else { 1 };
                out.extend((i + 1..=i + n).filter(|&j| j < count));
            } else if eq(i, "AUTH2") && eq(0, "MIGRATE") {
                out.extend((i + 1..=i + 2).filter(|&j| j < count));
            }
        }
    } else if eq(0, "CONFIG") && eq(1, "SET") {
        let mut i = 2;
        while i + 1 < count {
            if eq(i, "requirepass") || eq(i, "masterauth") {
                out.push(i + 1);
            }
            i += 2;
        }
    } else if eq(0, "ACL") && eq(1, "SETUSER") {
        for i in 3..kept {
            if get(i).is_some_and(|r| matches!(r.first(), Some(b'>' | b'<' | b'#' | b'!'))) {
                out.push(i);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}
