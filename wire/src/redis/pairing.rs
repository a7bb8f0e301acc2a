//! Pairing commands with replies.
//!
//! Redis answers commands in order, so pairing is a FIFO of commands
//! awaiting replies, with these exceptions (all tracked here):
//!
//! - **Pushes** are not replies: RESP3 `>` frames, RESP2 `message` /
//!   `pmessage` / `smessage` arrays on a subscribed connection, and the
//!   lines of a `MONITOR` stream. They are emitted as
//!   [`super::RedisMessage::Push`] and consume no pending command.
//! - **Subscribe confirmations** are replies, one per channel:
//!   `SUBSCRIBE a b` gets two. A bare `UNSUBSCRIBE` gets one per channel it
//!   drops (one with a null channel when there was none); the decoder
//!   counts the connection's channels, patterns and shard channels from the
//!   counts in the confirmations themselves. Under RESP3 the confirmations
//!   are `>` pushes: they are emitted as pushes *and* counted as the
//!   command's replies, or pairing would break.
//! - **`CLIENT REPLY OFF` / `SKIP`**: the server stays silent; the commands
//!   affected get [`ExchangeStatus::NoReply`], emitted in command order.
//! - **`MULTI`**: commands up to `EXEC`/`DISCARD` are marked `queued`
//!   (they still get one reply each: `+QUEUED`).
//! - **`HELLO`**: a map reply means the connection now speaks RESP3 (which
//!   changes how pub/sub messages look); `RESET` goes back to RESP2.

use super::exchange::RedisExchange;
use super::run::reply_summary;
use super::message::RedisArgs;
use super::parse::{peek_pubsub, PubSub, SubKind};
use super::value::RespValue;
use crate::types::*;
use bytes::Bytes;
use std::collections::VecDeque;

/// Most commands awaiting replies before the decoder gives up (falls back
/// to opaque) rather than hold more.
pub const MAX_PENDING: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReplyMode {
    /// Replies are sent.
    On,
    /// `CLIENT REPLY OFF`: no replies until `CLIENT REPLY ON`.
    Off,
    /// `CLIENT REPLY SKIP`: the next command gets no reply.
    Skip,
}

/// Commands that change how replies flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    Other,
    Hello,
    Reset,
    Monitor,
    Multi,
    Exec,
    Discard,
    Sub(SubKind),
    Unsub(SubKind),
    ClientReply(ReplyMode),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// One reply.
    One,
    /// No reply will come.
    NoReply,
    /// (Un)subscribe confirmations; `remaining: None` for a bare
    /// `UNSUBSCRIBE` until its first confirmation says how many.
    Confirm {
        kind: SubKind,
        unsub: bool,
        remaining: Option<u64>,
    },
}

/// A command awaiting its reply: the exchange it will become, built in
/// place so that completing it is one move.
#[derive(Debug)]
struct Pending {
    /// Boxed so that queueing and emitting it moves a pointer.
    x: Box<Exchange>,
    special: Special,
    expect: Expect,
    /// All its replies are in: emit it when it reaches the front.
    done: bool,
}

impl Pending {
    fn redis(&mut self) -> Option<&mut RedisExchange> {
        match &mut self.x.detail {
            ExchangeDetail::Redis(r) => Some(r),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    fn replies(&self) -> u32 {
        match &self.x.detail {
            ExchangeDetail::Redis(r) => r.replies,
            #[allow(unreachable_patterns)]
            _ => 0,
        }
    }
}

/// How a server frame was routed by [`Pairing::on_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// A push: it answers no command.
    Push,
    /// A reply to a pending command (or to none, when nothing was pending).
    Reply,
    /// A RESP3 `>` confirmation counted as a command's reply.
    PushReply,
}

/// A complete server frame, as the pairing sees it.
pub(crate) struct FrameRef<'a> {
    /// The whole message (not capped).
    pub raw: &'a [u8],
    /// Its value, capped.
    pub value: &'a RespValue,
    pub truncated: bool,
    pub first_ts: u64,
    pub last_ts: u64,
}

/// The pairing state of one connection.
#[derive(Debug)]
pub(crate) struct Pairing {
    pending: VecDeque<Pending>,
    mode: ReplyMode,
    in_multi: bool,
    resp3: bool,
    monitor: bool,
    pubsub_used: bool,
    channels: u64,
    patterns: u64,
    shard: u64,
    server_closed: bool,
}

/// The command name in upper case: static for the common commands (a
/// static [`Bytes`] costs nothing to clone and drop, a slice of the message
/// two atomic operations on its reference count), else zero-copy when it
/// already is upper case.
pub(crate) fn upper(args: &RedisArgs) -> Bytes {
    let Some(n) = args.get(0) else { return Bytes::new() };
    if n.len() <= 8 {
        let mut buf = [0u8; 8];
        let up = &mut buf[..n.len()];
        up.copy_from_slice(n);
        up.make_ascii_uppercase();
        macro_rules! known {
            ($($k:literal)*) => {
                match &*up {
                    $($k => return Bytes::from_static($k),)*
                    _ => {}
                }
            };
        }
        known!(b"GET" b"SET" b"DEL" b"INCR" b"DECR" b"INCRBY" b"EXPIRE" b"EXISTS" b"TTL" b"MGET" b"MSET"
            b"SETEX" b"GETDEL" b"HGET" b"HSET" b"HGETALL" b"HDEL" b"HINCRBY" b"LPUSH" b"RPUSH" b"LPOP"
            b"RPOP" b"LRANGE" b"LLEN" b"SADD" b"SREM" b"SMEMBERS" b"ZADD" b"ZRANGE" b"ZSCORE" b"PING"
            b"PUBLISH" b"EVALSHA" b"MULTI" b"EXEC" b"SELECT" b"AUTH" b"HELLO" b"CLIENT" b"INFO");
    }
    match args.bytes(0) {
        Some(n) if n.iter().any(u8::is_ascii_lowercase) => Bytes::from(n.to_ascii_uppercase()),
        Some(n) => n,
        None => Bytes::new(),
    }
}

/// True when `name` (any case) is a command that [`classify`] may find
/// special: only these can change how replies pair. The decoder's fast
/// path takes every other command without building its exchange first.
pub(crate) fn may_be_special(name: &[u8]) -> bool {
    const NAMES: &[&[u8]] = &[
        b"HELLO", b"RESET", b"MONITOR", b"MULTI", b"EXEC", b"DISCARD", b"SUBSCRIBE", b"PSUBSCRIBE",
        b"SSUBSCRIBE", b"UNSUBSCRIBE", b"PUNSUBSCRIBE", b"SUNSUBSCRIBE", b"CLIENT",
    ];
    // Most names are 3 or 4 letters (GET, SET, HGET, INCR): none of these.
    (4..=12).contains(&name.len()) && NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

fn classify(name: &[u8], args: &RedisArgs) -> Special {
    if !may_be_special(name) {
        return Special::Other;
    }
    match name {
        b"HELLO" => Special::Hello,
        b"RESET" => Special::Reset,
        b"MONITOR" => Special::Monitor,
        b"MULTI" => Special::Multi,
        b"EXEC" => Special::Exec,
        b"DISCARD" => Special::Discard,
        b"SUBSCRIBE" => Special::Sub(SubKind::Channel),
        b"PSUBSCRIBE" => Special::Sub(SubKind::Pattern),
        b"SSUBSCRIBE" => Special::Sub(SubKind::Shard),
        b"UNSUBSCRIBE" => Special::Unsub(SubKind::Channel),
        b"PUNSUBSCRIBE" => Special::Unsub(SubKind::Pattern),
        b"SUNSUBSCRIBE" => Special::Unsub(SubKind::Shard),
        b"CLIENT"
            if args.count == 3
                && args
                    .get(1)
                    .is_some_and(|a| a.eq_ignore_ascii_case(b"REPLY")) =>
        {
            match args.get(2) {
                Some(m) if m.eq_ignore_ascii_case(b"ON") => Special::ClientReply(ReplyMode::On),
                Some(m) if m.eq_ignore_ascii_case(b"OFF") => Special::ClientReply(ReplyMode::Off),
                Some(m) if m.eq_ignore_ascii_case(b"SKIP") => Special::ClientReply(ReplyMode::Skip),
                _ => Special::Other,
            }
        }
        _ => Special::Other,
    }
}

impl Pairing {
    pub(crate) fn new() -> Pairing {
        Pairing {
            pending: VecDeque::new(),
            mode: ReplyMode::On,
            in_multi: false,
            resp3: false,
            monitor: false,
            pubsub_used: false,
            channels: 0,
            patterns: 0,
            shard: 0,
            server_closed: false,
        }
    }

    /// A command was decoded. `Err` (a fallback reason) when too many
    /// commands await replies.
    pub(crate) fn on_command(
        &mut self,
        args: RedisArgs,
        inline: bool,
        first_ts: u64,
        last_ts: u64,
        bytes: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), String> {
        if args.count == 0 {
            // `*0` or a blank inline line: Redis ignores it, no reply.
            return Ok(());
        }
        let command = upper(&args);
        let mut special = classify(&command, &args);
        let queued = self.in_multi
            && !matches!(
                special,
                Special::Exec | Special::Discard | Special::Multi | Special::Reset
            );
        if queued {
            // Runs at EXEC: no effect on how replies flow now.
            special = Special::Other;
        }
        // Mirrors Redis: OFF and SKIP are silent themselves, ON always
        // answers, and RESET clears OFF but not a pending SKIP.
        let (no_reply, mode) = match (special, self.mode) {
            (Special::ClientReply(ReplyMode::On), _) => (false, ReplyMode::On),
            (Special::ClientReply(ReplyMode::Off), _) => (true, ReplyMode::Off),
            (Special::ClientReply(ReplyMode::Skip), m) => (
                true,
                if m == ReplyMode::Off {
                    m
                } else {
                    ReplyMode::Skip
                },
            ),
            (Special::Reset, m) => (m == ReplyMode::Skip, ReplyMode::On),
            (_, ReplyMode::On) => (false, ReplyMode::On),
            (_, ReplyMode::Off) => (true, ReplyMode::Off),
            (_, ReplyMode::Skip) => (true, ReplyMode::On),
        };
        self.mode = mode;
        match special {
            Special::Multi => self.in_multi = true,
            Special::Exec | Special::Discard | Special::Reset => self.in_multi = false,
            Special::Sub(_) | Special::Unsub(_) => self.pubsub_used = true,
            _ => {}
        }
        let channels = args.count.saturating_sub(1);
        let expect = match special {
            _ if no_reply => Expect::NoReply,
            Special::Sub(kind) if channels > 0 => Expect::Confirm {
                kind,
                unsub: false,
                remaining: Some(channels),
            },
            Special::Unsub(kind) => Expect::Confirm {
                kind,
                unsub: true,
                remaining: if channels > 0 { Some(channels) } else { None },
            },
            _ => Expect::One,
        };
        let p = Pending {
            x: Box::new(Exchange {
                timings: Timings {
                    request_first: first_ts,
                    request_last: last_ts,
                    response_first: None,
                    response_last: None,
                },
                request_bytes: bytes,
                response_bytes: 0,
                status: ExchangeStatus::Complete,
                detail: ExchangeDetail::Redis(RedisExchange {
                    command,
                    args,
                    inline,
                    queued,
                    reply: None,
                    value: None,
                    value_truncated: false,
                    replies: 0,
                }),
            }),
            special,
            expect,
            done: false,
        };
        if self.server_closed {
            let status = if no_reply {
                ExchangeStatus::NoReply
            } else {
                ExchangeStatus::Unanswered
            };
            emit(p, status, out);
        } else if no_reply && self.pending.is_empty() {
            emit(p, ExchangeStatus::NoReply, out);
        } else if self.pending.len() >= MAX_PENDING {
            return Err(format!(
                "redis: more than {MAX_PENDING} commands awaiting replies"
            ));
        } else {
            self.pending.push_back(p);
        }
        Ok(())
    }

    fn count_of(&self, kind: SubKind) -> u64 {
        match kind {
            SubKind::Channel => self.channels,
            SubKind::Pattern => self.patterns,
            SubKind::Shard => self.shard,
        }
    }

    /// Updates the subscription counts from a confirmation. Channel and
    /// pattern confirmations report their sum; shard ones their own count.
    fn apply_confirm(&mut self, kind: SubKind, unsub: bool, count: i64) {
        self.pubsub_used = true;
        let count = count.max(0) as u64;
        if kind == SubKind::Shard {
            self.shard = count;
            return;
        }
        let total = self.channels + self.patterns;
        let slot = if kind == SubKind::Channel {
            &mut self.channels
        } else {
            &mut self.patterns
        };
        if !unsub && count > total {
            *slot += count - total;
        } else if unsub && count < total {
            *slot = slot.saturating_sub(total - count);
        }
        // Keep the sum equal to what the server said (e.g. when the
        // recording started on a connection already subscribed).
        let total = self.channels + self.patterns;
        if total > count {
            let extra = total - count;
            let other = if kind == SubKind::Channel {
                &mut self.patterns
            } else {
                &mut self.channels
            };
            *other = other.saturating_sub(extra);
        } else if total < count {
            let slot = if kind == SubKind::Channel {
                &mut self.channels
            } else {
                &mut self.patterns
            };
            *slot += count - total;
        }
    }

    /// True when commands and replies pair one to one with no bookkeeping
    /// beyond their order: nothing is pending here, replies are on, and
    /// the connection is not subscribed, monitoring or in a transaction.
    /// The decoder's fast path runs only then.
    pub(crate) fn is_plain(&self) -> bool {
        self.pending.is_empty()
            && self.mode == ReplyMode::On
            && !self.in_multi
            && !self.monitor
            && !self.server_closed
            && !self.subscribed()
    }

    fn subscribed(&self) -> bool {
        self.channels + self.patterns + self.shard > 0
    }

    /// A server frame was decoded: routes it, attaching it to the command
    /// it answers. Call [`Pairing::emit_done`] after emitting the frame's
    /// message.
    pub(crate) fn on_frame(&mut self, f: &FrameRef<'_>) -> Route {
        let push_type = f.raw.first() == Some(&b'>');
        let pk = if matches!(f.raw.first(), Some(b'*' | b'>')) {
            peek_pubsub(f.raw)
        } else {
            PubSub::Other
        };
        if let PubSub::Confirm { kind, unsub, count } = pk {
            let before = self.count_of(kind);
            let used = self.pubsub_used;
            let mut counted = false;
            if let Some(p) = self.pending.iter_mut().find(|p| !p.done && p.expect != Expect::NoReply) {
                if let Expect::Confirm {
                    kind: k,
                    unsub: u,
                    remaining,
                } = &mut p.expect
                {
                    if *k == kind && *u == unsub {
                        let left = remaining.get_or_insert(before.max(1));
                        *left = left.saturating_sub(1);
                        p.done = *left == 0;
                        attach(p, f);
                        counted = true;
                    }
                }
            }
            self.apply_confirm(kind, unsub, count);
            if counted {
                return if push_type {
                    Route::PushReply
                } else {
                    Route::Reply
                };
            }
            if push_type || used {
                return Route::Push;
            }
        }
        if push_type {
            return Route::Push;
        }
        if pk == PubSub::Message
            && !self.resp3
            && (self.subscribed() || self.pending.iter().all(|p| p.done))
        {
            return Route::Push;
        }
        if self.monitor
            && matches!(f.value, RespValue::Simple(s) if s.first().is_some_and(u8::is_ascii_digit))
        {
            return Route::Push;
        }
        let mut special = None;
        for p in self.pending.iter_mut().filter(|p| !p.done && p.expect != Expect::NoReply) {
            if matches!(p.expect, Expect::Confirm { .. }) && p.replies() > 0 {
                // It had its confirmations; this reply is the next command's.
                p.done = true;
                continue;
            }
            attach(p, f);
            p.done = true;
            special = Some(p.special);
            break;
        }
        if let Some(special) = special {
            self.after_reply(special, f.value);
        }
        Route::Reply
    }

    fn after_reply(&mut self, special: Special, value: &RespValue) {
        match (special, value.unattributed()) {
            (Special::Hello, RespValue::Map(_)) => self.resp3 = true,
            (Special::Hello, RespValue::Array(_)) => self.resp3 = false,
            (Special::Reset, RespValue::Simple(s)) if &s[..] == b"RESET" => {
                self.resp3 = false;
                self.monitor = false;
                self.channels = 0;
                self.patterns = 0;
                self.shard = 0;
            }
            (Special::Monitor, RespValue::Simple(s)) if &s[..] == b"OK" => self.monitor = true,
            _ => {}
        }
    }

    /// Emits the exchanges of the commands at the front that are done, and
    /// of those behind them that expect no reply.
    pub(crate) fn emit_done(&mut self, out: &mut Vec<Event>) {
        while let Some(front) = self.pending.front() {
            let status = if front.done {
                ExchangeStatus::Complete
            } else if front.expect == Expect::NoReply {
                ExchangeStatus::NoReply
            } else {
                break;
            };
            if let Some(p) = self.pending.pop_front() {
                emit(p, status, out);
            }
        }
    }

    /// The server's stream ended: every command still waiting is
    /// unanswered (or, when it expected nothing, `NoReply`).
    pub(crate) fn server_eof(&mut self, out: &mut Vec<Event>) {
        self.server_closed = true;
        while let Some(p) = self.pending.pop_front() {
            let status = if p.done {
                ExchangeStatus::Complete
            } else if p.expect == Expect::NoReply {
                ExchangeStatus::NoReply
            } else {
                ExchangeStatus::Unanswered
            };
            emit(p, status, out);
        }
    }
}

fn attach(p: &mut Pending, f: &FrameRef<'_>) {
    let t = &mut p.x.timings;
    t.response_first.get_or_insert(f.first_ts);
    t.response_last = Some(f.last_ts);
    p.x.response_bytes += f.raw.len() as u64;
    let Some(r) = p.redis() else { return };
    r.replies = r.replies.saturating_add(1);
    if r.replies == 1 {
        r.reply = Some(reply_summary(f.raw, f.value));
        r.value = Some(f.value.clone());
        r.value_truncated = f.truncated;
    }
}

fn emit(mut p: Pending, status: ExchangeStatus, out: &mut Vec<Event>) {
    p.x.status = status;
    out.push(Event::Exchange(p.x));
}
