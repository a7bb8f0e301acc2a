//! [`RedisRun`]: the messages one read completed on the decoder's fast
//! path, kept as one buffer and an index instead of one event each.
//!
//! A pipelined client sends commands sixteen or a hundred at a time, and the
//! server answers them as tightly. Most of them change nothing about how
//! replies pair (a `GET`, a `SET`), so the decoder frames them, notes where
//! each one and its arguments are, pairs each reply with its command, and
//! hands the lot over as one [`crate::Event::RedisRun`]: one allocation for
//! the bytes and a few for the index, where the per-message events cost
//! several allocations and reference counts per message.
//! [`RedisRun::expand`] turns a run back into exactly the events the
//! per-message path emits for the same bytes (a test checks it on every
//! fixture, split every way).

use super::exchange::{RedisExchange, ReplySummary};
use super::message::{secret_args, RedisArgs, RedisCommand, RedisMessage, RespFrame};
use super::pairing::upper;
use super::parse::{parse_value, summary_len, top_kind};
use super::scan::Spans;
use super::value::RespValue;
use crate::types::*;
use bytes::Bytes;
use smallvec::SmallVec;
use std::sync::Arc;

// A run's index, inline for a run of a few messages. An unpipelined
// client's runs hold one message each, and heap vectors for them cost more
// allocations than the run saves over per-message events.

/// Message (or argument list) ends.
pub(crate) type Ends = SmallVec<[u32; 4]>;
/// Argument spans: room for a few commands of two or three arguments.
pub(crate) type ArgSpans = SmallVec<[(u32, u32); 8]>;
/// The command runs a reply run answers: usually one.
pub(crate) type Answers = SmallVec<[Arc<RedisRun>; 1]>;

/// Messages in one direction that one read completed, back to back.
///
/// Commands in a run are plain: RESP arrays that fit the request cap and
/// that do not change how replies pair (not `MULTI`, `SUBSCRIBE`, `CLIENT`,
/// `HELLO`, ...), each awaiting one reply. Replies in a run are plain too:
/// each answers the oldest command still waiting, and fits the response
/// cap. Everything else (and everything while the connection is in a
/// special state: subscribed, in a transaction, monitoring, replies off)
/// takes the per-message path.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisRun {
    pub dir: Direction,
    /// The messages' exact bytes, back to back.
    pub data: Bytes,
    /// Stream offset of `data[0]`.
    pub offset: u64,
    /// Time the first message's first byte was fed.
    pub first_ts: u64,
    /// Time of the read that completed every message in the run; also the
    /// time of the first byte of every message but the first.
    pub last_ts: u64,
    /// End of each message in `data`.
    pub(crate) ends: Ends,
    /// Commands: every argument's span in `data`, command after command.
    pub(crate) spans: ArgSpans,
    /// Commands: where each command's spans end in `spans`.
    pub(crate) arg_ends: Ends,
    /// Replies: the command runs holding the commands they answer, oldest
    /// first. Reply 0 answers command `first_cmd` of `answers[0]`, and each
    /// next reply the command after that, continuing into the next run.
    pub(crate) answers: Answers,
    pub(crate) first_cmd: u32,
}

impl RedisRun {
    /// Number of messages.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Byte range of message `i` in [`RedisRun::data`].
    pub fn bounds(&self, i: usize) -> (usize, usize) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        (start, self.ends[i] as usize)
    }

    /// The exact bytes of message `i`.
    pub fn message(&self, i: usize) -> &[u8] {
        let (s, e) = self.bounds(i);
        &self.data[s..e]
    }

    /// Time message `i`'s first byte was fed.
    pub fn first_ts_of(&self, i: usize) -> u64 {
        if i == 0 {
            self.first_ts
        } else {
            self.last_ts
        }
    }

    /// Where command `i`'s argument spans are in `spans` (empty for no
    /// such command).
    fn arg_range(&self, i: usize) -> std::ops::Range<usize> {
        let from = if i == 0 { 0 } else { self.arg_ends.get(i - 1).map_or(0, |&e| e as usize) };
        let to = self.arg_ends.get(i).map_or(from, |&e| e as usize);
        from..to
    }

    /// Argument `k` (0: the command name) of command `i`, as sent.
    pub fn arg(&self, i: usize, k: usize) -> Option<&[u8]> {
        let &(s, e) = self.spans.get(self.arg_range(i))?.get(k)?;
        self.data.get(s as usize..e as usize)
    }

    /// The arguments (name first) of command `i`, as sent.
    pub fn args_of(&self, i: usize) -> impl Iterator<Item = &[u8]> + '_ {
        self.spans.get(self.arg_range(i)).unwrap_or_default().iter().map(|&(s, e)| self.data.get(s as usize..e as usize).unwrap_or_default())
    }

    /// [`super::RedisCommand::secret_args`] of command `i` (commands in a
    /// run keep every argument).
    pub fn secret_args(&self, i: usize) -> Vec<usize> {
        let kept = self.arg_range(i).len();
        secret_args(kept as u64, kept, |k| self.arg(i, k))
    }

    /// Reply `i` decoded, and whether the decoded value was cut short (as
    /// in [`RespFrame::truncated`]).
    pub fn reply_value(&self, i: usize) -> (RespValue, bool) {
        let raw = self.raw(i);
        parse_value(&raw, raw.first().copied())
    }

    /// The exchanges a run of replies completes: for reply `i`, the run
    /// and index of the command it answers.
    pub fn answered(&self) -> impl Iterator<Item = (&RedisRun, usize)> + '_ {
        let mut run = 0;
        let mut next = self.first_cmd as usize;
        (0..self.len()).filter_map(move |_| {
            while next >= self.answers.get(run)?.len() {
                run += 1;
                next = 0;
            }
            next += 1;
            Some((&*self.answers[run], next - 1))
        })
    }

    /// Command `i`'s arguments over `raw` (its bytes, sliced from `data`).
    pub(crate) fn args(&self, i: usize, raw: &Bytes) -> RedisArgs {
        let (start, _) = self.bounds(i);
        let base = start as u32;
        let spans: Spans = self.spans[self.arg_range(i)].iter().map(|&(s, e)| (s - base, e - base)).collect();
        RedisArgs { data: raw.clone(), count: spans.len() as u64, spans, truncated: false }
    }

    fn raw(&self, i: usize) -> Bytes {
        let (s, e) = self.bounds(i);
        self.data.slice(s..e)
    }

    fn message_event(&self, i: usize, raw: Bytes, kind: RedisMessage) -> Event {
        let (start, _) = self.bounds(i);
        Event::Message(Message {
            dir: self.dir,
            first_ts: self.first_ts_of(i),
            last_ts: self.last_ts,
            offset: self.offset + start as u64,
            raw: CappedBytes::whole(raw),
            kind: MessageKind::Redis(kind),
        })
    }

    /// Appends the events the per-message path emits for these messages:
    /// each command's message; each reply's message followed by its
    /// exchange.
    pub fn expand(&self, out: &mut Vec<Event>) {
        match self.dir {
            Direction::ToServer => {
                for i in 0..self.len() {
                    let raw = self.raw(i);
                    let args = self.args(i, &raw);
                    out.push(self.message_event(i, raw, RedisMessage::Command(RedisCommand { args, inline: false })));
                }
            }
            Direction::ToClient => {
                for (i, (run, j)) in self.answered().enumerate() {
                    let raw = self.raw(i);
                    let (value, truncated) = parse_value(&raw, raw.first().copied());
                    let command_raw = run.raw(j);
                    let args = run.args(j, &command_raw);
                    let exchange = Exchange {
                        timings: Timings {
                            request_first: run.first_ts_of(j),
                            request_last: run.last_ts,
                            response_first: Some(self.first_ts_of(i)),
                            response_last: Some(self.last_ts),
                        },
                        request_bytes: command_raw.len() as u64,
                        response_bytes: raw.len() as u64,
                        status: ExchangeStatus::Complete,
                        detail: ExchangeDetail::Redis(RedisExchange {
                            command: upper(&args),
                            args,
                            inline: false,
                            queued: false,
                            reply: Some(reply_summary(&raw, &value)),
                            value: Some(value.clone()),
                            value_truncated: truncated,
                            replies: 1,
                        }),
                    };
                    out.push(self.message_event(i, raw, RedisMessage::Reply(RespFrame { value, truncated })));
                    out.push(Event::Exchange(Box::new(exchange)));
                }
            }
        }
    }
}

/// The summary of a command's (first) reply, as [`RedisExchange::reply`]
/// holds it: `raw` is the whole frame, `value` its decoding.
pub fn reply_summary(raw: &[u8], value: &RespValue) -> ReplySummary {
    let v = value.unattributed();
    ReplySummary {
        kind: top_kind(value),
        len: summary_len(raw, value),
        integer: v.as_int(),
        error: v.error_text().cloned(),
    }
}

/// A run being gathered from one read: positions in the direction's
/// receive buffer, which is split only once, when the run is emitted.
#[derive(Default)]
pub(crate) struct RunBuilder {
    /// Bytes of the buffer taken by the run so far.
    pub pos: usize,
    pub offset: u64,
    pub first_ts: u64,
    pub ends: Ends,
    pub spans: ArgSpans,
    pub arg_ends: Ends,
    pub answers: Answers,
    pub first_cmd: u32,
}

impl RunBuilder {
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Room for `messages` messages of `args` arguments each (commands).
    pub fn reserve(&mut self, messages: usize, args: usize) {
        let n = messages.clamp(1, 1024);
        self.ends.reserve(n);
        if args > 0 {
            self.spans.reserve(n * args);
            self.arg_ends.reserve(n);
        }
    }

    /// The run, over `data` (the run's bytes, split off the buffer).
    pub fn finish(&mut self, dir: Direction, data: Bytes, last_ts: u64) -> RedisRun {
        let b = std::mem::take(self);
        RedisRun {
            dir,
            data,
            offset: b.offset,
            first_ts: b.first_ts,
            last_ts,
            ends: b.ends,
            spans: b.spans,
            arg_ends: b.arg_ends,
            answers: b.answers,
            first_cmd: b.first_cmd,
        }
    }
}
