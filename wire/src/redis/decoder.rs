//! [`RedisDecoder`]: the sans-IO Redis decoder, both directions.

use super::message::{RedisArgs, RedisCommand, RedisMessage, RespFrame};
use super::pairing::{FrameRef, Pairing, Route};
use super::parse::{parse_value, split_inline, split_words};
use super::pairing::{may_be_special, MAX_PENDING};
use super::parse::{peek_pubsub, PubSub};
use super::run::{RedisRun, RunBuilder};
use super::scan::{frame_plain_command, frame_plain_reply, Scan, Scanner, RUN_MAX, RUN_MESSAGE_MAX};
use crate::types::*;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::Arc;

/// Decodes one Redis connection: commands from the client, replies and
/// pushes from the server, and pairs them into exchanges.
///
/// Each direction owns a [`BytesMut`]; a [`Scanner`] finds where the
/// message at its front ends (resuming where it stopped when the message
/// arrives in pieces), the message is split off zero-copy
/// (`split_to(..).freeze()`) and its arguments or value are slices of it.
/// A message longer than [`Limits::max_frame`], a bulk string or count that
/// cannot fit it, nesting deeper than [`super::MAX_DEPTH`], or bytes that
/// are not RESP make [`Decoder::feed`] return a [`Fallback`] holding every
/// buffered byte.
///
/// ```
/// use wire::redis::{RedisDecoder, RedisMessage};
/// use wire::{Decoder, Direction, Event, Limits, MessageKind};
/// let mut d = RedisDecoder::new(Limits::default());
/// let mut out = Vec::new();
/// d.feed(Direction::ToServer, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 1, &mut out).unwrap();
/// d.feed(Direction::ToClient, b"$1\r\nv\r\n", 2, &mut out).unwrap();
/// assert_eq!(out.len(), 3); // the command, the reply, the exchange
/// let Event::Message(m) = &out[0] else { panic!() };
/// let MessageKind::Redis(RedisMessage::Command(c)) = &m.kind else { panic!() };
/// assert_eq!(c.args.get(1), Some(&b"k"[..]));
/// ```
pub struct RedisDecoder {
    limits: Limits,
    sides: [Side; 2],
    pairing: Pairing,
    /// Fast path ([`Decoder::feed_runs`]): runs of commands awaiting
    /// replies, oldest first. Only ever non-empty while `pairing` has
    /// nothing pending: before anything takes the per-message path, these
    /// commands are handed to `pairing` ([`RedisDecoder::hand_over`]).
    waiting: VecDeque<Arc<RedisRun>>,
    /// Commands of `waiting[0]` already answered.
    answered: usize,
    /// Commands awaiting replies in `waiting`, in all.
    waiting_count: usize,
    /// Length of the last run per direction: the capacity the next run's
    /// index starts with (pipelines keep their depth).
    run_hint: [usize; 2],
}

/// One direction's buffer and framing state.
struct Side {
    /// Bytes received but not yet emitted in a message: a strict prefix of
    /// the next message (between feeds).
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    offset: u64,
    /// Time the first byte of `buf` was fed.
    head_ts: u64,
    scan: Scanner,
}

impl Side {
    /// Appends a read's bytes to the buffer.
    fn receive(&mut self, data: &[u8], ts: u64) {
        if self.buf.is_empty() {
            self.head_ts = ts;
        }
        self.buf.extend_from_slice(data);
    }

    /// Accounts for a message of `len` bytes split off the front; returns
    /// its first timestamp and stream offset.
    fn advance(&mut self, len: usize, ts: u64) -> (u64, u64) {
        let first = self.head_ts;
        self.head_ts = ts;
        let offset = self.offset;
        self.offset += len as u64;
        (first, offset)
    }

    /// Every buffered byte, for a fallback or the end of the stream.
    fn take_all(&mut self) -> Bytes {
        self.scan.reset();
        self.scan.take_command();
        self.buf.split().freeze()
    }
}

impl RedisDecoder {
    pub fn new(limits: Limits) -> RedisDecoder {
        let side = |client: bool| Side {
            buf: BytesMut::new(),
            offset: 0,
            head_ts: 0,
            scan: Scanner::new(client, limits.request_cap),
        };
        RedisDecoder {
            limits,
            sides: [side(true), side(false)],
            pairing: Pairing::new(),
            waiting: VecDeque::new(),
            answered: 0,
            waiting_count: 0,
            run_hint: [0; 2],
        }
    }

    /// A decoder whose stream offsets start at `offsets` (index by
    /// [`Direction::index`]): for a connection joined mid-stream.
    pub fn starting_at(limits: Limits, offsets: [u64; 2]) -> RedisDecoder {
        let mut d = RedisDecoder::new(limits);
        d.sides[0].offset = offsets[0];
        d.sides[1].offset = offsets[1];
        d
    }

    fn fallback(&mut self, dir: Direction, reason: String) -> Fallback {
        self.waiting.clear();
        self.waiting_count = 0;
        self.answered = 0;
        let pending = [self.sides[0].take_all(), self.sides[1].take_all()];
        Fallback {
            reason,
            dir,
            pending,
        }
    }

    /// Emits the command that is the first `len` buffered client bytes.
    fn command(&mut self, len: usize, ts: u64, out: &mut Vec<Event>) -> Result<(), String> {
        let cap = self.limits.request_cap;
        let side = &mut self.sides[0];
        let scanned = side.scan.take_command();
        let inline = scanned.inline.then(|| {
            let mut line = side.buf.get(..len).unwrap_or_default();
            line = line.strip_suffix(b"\n").unwrap_or(line);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            split_inline(line).unwrap_or_else(|| split_words(line))
        });
        let raw = side.buf.split_to(len).freeze();
        let (first_ts, offset) = side.advance(len, ts);
        let raw = if len <= cap {
            CappedBytes::whole(raw)
        } else {
            CappedBytes::new(&raw, cap)
        };
        let args = match inline {
            Some((data, spans)) => {
                let n = spans.len() as u64;
                RedisArgs::clipped(Bytes::from(data), spans, n, cap)
            }
            None => RedisArgs::clipped(raw.prefix.clone(), scanned.spans, scanned.argc, cap),
        };
        let inline = scanned.inline;
        out.push(Event::Message(Message {
            dir: Direction::ToServer,
            first_ts,
            last_ts: ts,
            offset,
            raw,
            kind: MessageKind::Redis(RedisMessage::Command(RedisCommand {
                args: args.clone(),
                inline,
            })),
        }));
        self.pairing
            .on_command(args, inline, first_ts, ts, len as u64, out)
    }

    /// Emits the server frame that is the first `len` buffered server bytes.
    fn reply(&mut self, len: usize, ts: u64, out: &mut Vec<Event>) {
        let cap = self.limits.response_cap;
        let side = &mut self.sides[1];
        let full = side.buf.split_to(len).freeze();
        let (first_ts, offset) = side.advance(len, ts);
        let (raw, value, truncated, route);
        if len <= cap {
            let (v, cut) = parse_value(&full, full.first().copied());
            route = self.pairing.on_frame(&FrameRef {
                raw: &full,
                value: &v,
                truncated: cut,
                first_ts,
                last_ts: ts,
            });
            raw = CappedBytes::whole(full);
            value = v;
            truncated = cut;
        } else {
            // Keep a copy of the prefix only, so the big buffer is freed.
            let capped = CappedBytes::new(&full, cap);
            let (v, _) = parse_value(&capped.prefix, full.first().copied());
            route = self.pairing.on_frame(&FrameRef {
                raw: &full,
                value: &v,
                truncated: true,
                first_ts,
                last_ts: ts,
            });
            raw = capped;
            value = v;
            truncated = true;
        }
        let frame = RespFrame { value, truncated };
        let kind = match route {
            Route::Reply => RedisMessage::Reply(frame),
            Route::Push | Route::PushReply => RedisMessage::Push(frame),
        };
        out.push(Event::Message(Message {
            dir: Direction::ToClient,
            first_ts,
            last_ts: ts,
            offset,
            raw,
            kind: MessageKind::Redis(kind),
        }));
        self.pairing.emit_done(out);
    }
}

/// The fast path.
impl RedisDecoder {
    /// The command just framed (`len` bytes at `run.pos` in the client
    /// buffer) joins the run if it is plain: a RESP array of at least one
    /// argument, whole under the request cap, whose name cannot change how
    /// replies pair, on a connection in the plain state.
    fn run_command(&mut self, run: &mut RunBuilder, len: usize, ts: u64) -> bool {
        let room = self.room(run) && self.pairing.is_plain();
        let side = &mut self.sides[0];
        let cmd = side.scan.command();
        let plain = !cmd.inline
            && cmd.argc >= 1
            && cmd.spans.len() as u64 == cmd.argc
            && len <= self.limits.request_cap.min(RUN_MESSAGE_MAX)
            && room;
        if !plain {
            return false;
        }
        if run.is_empty() {
            run.reserve(self.run_hint[0], cmd.spans.len());
        }
        let mark = run.spans.len();
        let base = run.pos as u32;
        run.spans.extend(cmd.spans.iter().map(|&(s, e)| (s + base, e + base)));
        if !Self::join_command(side, run, mark, len, ts) {
            return false;
        }
        side.scan.take_command();
        true
    }

    /// Joins the command whose argument spans start at `run.spans[mark]`,
    /// unless its name may change how replies pair: then its spans are
    /// dropped again and it is left to the per-message path.
    fn join_command(side: &mut Side, run: &mut RunBuilder, mark: usize, len: usize, ts: u64) -> bool {
        let (s, e) = run.spans[mark];
        if may_be_special(side.buf.get(s as usize..e as usize).unwrap_or_default()) {
            run.spans.truncate(mark);
            return false;
        }
        run.arg_ends.push(run.spans.len() as u32);
        Self::join(side, run, len, ts);
        true
    }

    /// The reply just framed joins the run if it is plain: it answers the
    /// oldest waiting command of the fast path, fits the response cap, and
    /// is no push (`>`) nor an array shaped like a pub/sub frame.
    fn run_reply(&mut self, run: &mut RunBuilder, len: usize, ts: u64) -> bool {
        if self.waiting_count == 0 || len > self.limits.response_cap.min(RUN_MESSAGE_MAX) || !self.pairing.is_plain() {
            return false;
        }
        let raw = self.sides[1].buf.get(run.pos..run.pos + len).unwrap_or_default();
        match raw.first() {
            Some(b'>') | None => return false,
            Some(b'*') if peek_pubsub(raw) != PubSub::Other => return false,
            _ => {}
        }
        self.answer(run, len, ts)
    }

    /// Joins a plain reply of `len` bytes to the run, answering the oldest
    /// waiting command (`false` when none waits).
    fn answer(&mut self, run: &mut RunBuilder, len: usize, ts: u64) -> bool {
        let Some(front) = self.waiting.front() else { return false };
        if run.answers.is_empty() {
            run.first_cmd = self.answered as u32;
            run.reserve(self.run_hint[1], 0);
            run.answers.push(front.clone());
        } else if !run.answers.last().is_some_and(|last| Arc::ptr_eq(last, front)) {
            run.answers.push(front.clone());
        }
        self.answered += 1;
        self.waiting_count -= 1;
        if self.answered == front.len() {
            self.waiting.pop_front();
            self.answered = 0;
        }
        Self::join(&mut self.sides[1], run, len, ts);
        true
    }

    /// Whether one more command may wait on the fast path: the per-message
    /// path gives up beyond [`MAX_PENDING`], and so must this one, at the
    /// same command.
    fn room(&self, run: &RunBuilder) -> bool {
        self.waiting_count + run.ends.len() < MAX_PENDING
    }

    /// The quickest way in: frames a plain message at `run.pos` in one
    /// pass ([`frame_plain_command`], [`frame_plain_reply`]) and joins it to
    /// the run, when the connection is in the plain state. `false` leaves
    /// everything as it was, for the resumable scanner.
    fn quick(&mut self, dir: Direction, run: &mut RunBuilder, ts: u64) -> bool {
        let Limits { max_frame, request_cap, response_cap } = self.limits;
        let room = self.room(run);
        let side = &mut self.sides[dir.index()];
        let rest = side.buf.get(run.pos..).unwrap_or_default();
        if dir == Direction::ToClient {
            if self.waiting_count == 0 || !self.pairing.is_plain() {
                return false;
            }
            let Some(len) = frame_plain_reply(rest, response_cap, max_frame) else { return false };
            return self.answer(run, len, ts);
        }
        if !room || !self.pairing.is_plain() {
            return false;
        }
        if run.is_empty() {
            run.reserve(self.run_hint[0], 3);
        }
        let mark = run.spans.len();
        let Some(len) = frame_plain_command(rest, request_cap, max_frame, run.pos as u32, &mut run.spans) else {
            return false;
        };
        Self::join_command(side, run, mark, len, ts)
    }

    fn join(side: &mut Side, run: &mut RunBuilder, len: usize, ts: u64) {
        let (first_ts, offset) = side.advance(len, ts);
        if run.is_empty() {
            run.first_ts = first_ts;
            run.offset = offset;
        }
        run.pos += len;
        run.ends.push(run.pos as u32);
    }

    /// Emits the run gathered so far, if any: its bytes are split off the
    /// front of the buffer.
    fn emit_run(&mut self, dir: Direction, run: &mut RunBuilder, ts: u64, out: &mut Vec<Event>) {
        if run.is_empty() {
            return;
        }
        self.run_hint[dir.index()] = run.ends.len();
        let data = self.sides[dir.index()].buf.split_to(run.pos).freeze();
        let done = Arc::new(run.finish(dir, data, ts));
        if dir == Direction::ToServer {
            self.waiting_count += done.len();
            self.waiting.push_back(done.clone());
        }
        out.push(Event::RedisRun(done));
    }

    /// Hands the fast path's waiting commands to the per-message pairing,
    /// in order, before anything takes that path.
    fn hand_over(&mut self, out: &mut Vec<Event>) -> Result<(), String> {
        let mut skip = std::mem::take(&mut self.answered);
        self.waiting_count = 0;
        while let Some(run) = self.waiting.pop_front() {
            for j in skip..run.len() {
                let (s, e) = run.bounds(j);
                let raw = run.data.slice(s..e);
                let args = run.args(j, &raw);
                self.pairing.on_command(args, false, run.first_ts_of(j), run.last_ts, (e - s) as u64, out)?;
            }
            skip = 0;
        }
        Ok(())
    }
}

impl Decoder for RedisDecoder {
    /// Like `feed`, with plain commands and replies gathered into
    /// [`Event::RedisRun`]s (see [`RedisRun`]); the rest is decoded exactly
    /// as `feed` does.
    fn feed_runs(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>) -> Result<(), Fallback> {
        if data.is_empty() {
            return Ok(());
        }
        let d = dir.index();
        self.sides[d].receive(data, ts);
        let mut run = RunBuilder::default();
        loop {
            if self.sides[d].buf.len() <= run.pos {
                break;
            }
            if run.pos >= RUN_MAX {
                self.emit_run(dir, &mut run, ts, out);
            }
            if !self.sides[d].scan.in_progress() && self.quick(dir, &mut run, ts) {
                continue;
            }
            let side = &mut self.sides[d];
            let Some(rest) = side.buf.get(run.pos..) else { break };
            match side.scan.scan(rest, self.limits.max_frame) {
                Scan::Incomplete => break,
                Scan::Invalid => {
                    let reason = std::mem::take(&mut side.scan.error);
                    self.emit_run(dir, &mut run, ts, out);
                    return Err(self.fallback(dir, reason));
                }
                Scan::Complete(len) => {
                    let joined = match dir {
                        Direction::ToServer => self.run_command(&mut run, len, ts),
                        Direction::ToClient => self.run_reply(&mut run, len, ts),
                    };
                    if joined {
                        continue;
                    }
                    self.emit_run(dir, &mut run, ts, out);
                    let r = self.hand_over(out).and_then(|()| match dir {
                        Direction::ToServer => self.command(len, ts, out),
                        Direction::ToClient => {
                            self.reply(len, ts, out);
                            Ok(())
                        }
                    });
                    if let Err(reason) = r {
                        return Err(self.fallback(dir, reason));
                    }
                }
            }
        }
        self.emit_run(dir, &mut run, ts, out);
        Ok(())
    }

    fn feed(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), Fallback> {
        if data.is_empty() {
            return Ok(());
        }
        let d = dir.index();
        self.sides[d].receive(data, ts);
        loop {
            let side = &mut self.sides[d];
            if side.buf.is_empty() {
                return Ok(());
            }
            match side.scan.scan(&side.buf, self.limits.max_frame) {
                Scan::Incomplete => return Ok(()),
                Scan::Invalid => {
                    let reason = std::mem::take(&mut side.scan.error);
                    return Err(self.fallback(dir, reason));
                }
                Scan::Complete(len) => match dir {
                    Direction::ToServer => {
                        if let Err(reason) = self.command(len, ts, out) {
                            return Err(self.fallback(dir, reason));
                        }
                    }
                    Direction::ToClient => self.reply(len, ts, out),
                },
            }
        }
    }

    /// A torn message left at the end of a stream is emitted as one
    /// [`MessageKind::Opaque`] message (so no byte goes missing). When the
    /// server's side ends, every command still awaiting a reply is emitted
    /// as [`ExchangeStatus::Unanswered`].
    fn eof(&mut self, dir: Direction, ts: u64, out: &mut Vec<Event>) {
        if dir == Direction::ToClient {
            // Cannot fail: the fast path holds fewer than MAX_PENDING
            // commands, and the per-message pairing none while it holds any.
            let _ = self.hand_over(out);
        }
        let side = &mut self.sides[dir.index()];
        if !side.buf.is_empty() {
            let raw = side.take_all();
            let (first_ts, offset) = side.advance(raw.len(), ts);
            out.push(Event::Message(Message {
                dir,
                first_ts,
                last_ts: ts,
                offset,
                raw: CappedBytes::new(&raw, self.limits.cap(dir)),
                kind: MessageKind::Opaque,
            }));
        }
        if dir == Direction::ToClient {
            self.pairing.server_eof(out);
        }
    }
}
