//! [`RedisDecoder`]: the sans-IO Redis decoder, both directions.

use super::message::{RedisArgs, RedisCommand, RedisMessage, RespFrame};
use super::pairing::{FrameRef, Pairing, Route};
use super::parse::{parse_value, split_inline, split_words};
use super::scan::{Scan, Scanner};
use crate::types::*;
use bytes::{Bytes, BytesMut};

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
        }
    }

    fn fallback(&mut self, dir: Direction, reason: String) -> Fallback {
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

impl Decoder for RedisDecoder {
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
        let side = &mut self.sides[d];
        if side.buf.is_empty() {
            side.head_ts = ts;
        }
        side.buf.extend_from_slice(data);
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
