//! [`PgDecoder`]: framing for both directions, the untagged startup phase,
//! SSL/GSS negotiation, and the coalescing of DataRow/CopyData runs.

use super::at_rest::{frame_header, startup_header};
use super::exchange::SAMPLE_ROWS;
use super::message::*;
use super::parse::{self, AuthState};
use super::tags::backend as b;
use super::tracker::{Tracker, Wire};
use super::values::{decode_value, PgValue};
use crate::types::*;
use bytes::{Buf, Bytes, BytesMut};

/// Which kind of run of tiny messages is being coalesced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunKind {
    DataRows,
    CopyData,
}

/// A run of consecutive DataRow (or CopyData) messages in one direction,
/// emitted as one [`Message`] when the first other message's header arrives
/// (or at end of stream, or before a fallback).
#[derive(Debug)]
struct Run {
    kind: RunKind,
    first_ts: u64,
    last_ts: u64,
    offset: u64,
    raw: CappedBuilder,
    count: u64,
    len: u64,
    rows: Vec<Vec<PgValue>>,
    formats: Vec<(u32, i16)>,
}

/// One direction's state.
#[derive(Debug, Default)]
struct Side {
    /// Accepted bytes not yet part of an emitted message (a partial message).
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    offset: u64,
    /// Time `buf[0]` was fed.
    head_ts: u64,
    /// Bytes of the current run message still to stream into the run
    /// without buffering (the message was counted at its header).
    skip: usize,
    run: Option<Run>,
}

enum Step {
    Progress,
    NeedMore,
}

/// The PostgreSQL protocol 3.0 decoder: one per connection, both directions.
/// See the [module docs](super) for what it emits.
#[derive(Debug)]
pub struct PgDecoder {
    limits: Limits,
    sides: [Side; 2],
    /// The client has not sent its StartupMessage yet: its next packet is untagged.
    startup_phase: bool,
    /// The server's next byte answers an SSLRequest (`b'S'`) or GSSENCRequest (`b'G'`).
    await_encryption: Option<u8>,
    auth: AuthState,
    tracker: Tracker,
    scratch: Vec<Event>,
    dead: bool,
}

impl PgDecoder {
    /// A decoder for a connection seen from its first byte.
    pub fn new(limits: Limits) -> PgDecoder {
        PgDecoder {
            limits,
            sides: Default::default(),
            startup_phase: true,
            await_encryption: None,
            auth: AuthState::None,
            tracker: Tracker::default(),
            scratch: Vec::new(),
            dead: false,
        }
    }

    /// A decoder for a connection already past its startup (e.g. a capture
    /// that began mid-connection): the client's first bytes are tagged.
    pub fn new_mid_stream(limits: Limits) -> PgDecoder {
        let mut d = PgDecoder::new(limits);
        d.startup_phase = false;
        d
    }

    fn fallback(&mut self, dir: Direction, reason: String, ts: u64, out: &mut Vec<Event>) -> Fallback {
        for d in [Direction::ToServer, Direction::ToClient] {
            self.flush_run(d, out);
        }
        let _ = ts;
        self.dead = true;
        let pending = [self.sides[0].buf.split().freeze(), self.sides[1].buf.split().freeze()];
        Fallback { reason, dir, pending }
    }

    /// Emits the run in `dir`, if any.
    fn flush_run(&mut self, dir: Direction, out: &mut Vec<Event>) {
        let Some(run) = self.sides[dir.index()].run.take() else { return };
        let kind = match run.kind {
            RunKind::DataRows => PgMessage::DataRows { count: run.count, len: run.len, rows: run.rows },
            RunKind::CopyData => PgMessage::CopyData { count: run.count, len: run.len },
        };
        let w = Wire { first_ts: run.first_ts, last_ts: run.last_ts, len: run.len };
        if let PgMessage::DataRows { count, rows, .. } = &kind {
            self.tracker.rows(*count, rows);
        }
        match dir {
            Direction::ToServer => self.tracker.frontend(&kind, w, &mut self.scratch),
            Direction::ToClient => self.tracker.backend(&kind, w, &mut self.scratch),
        }
        out.push(Event::Message(Message {
            dir,
            first_ts: run.first_ts,
            last_ts: run.last_ts,
            offset: run.offset,
            raw: run.raw.finish(),
            kind: MessageKind::Pg(kind),
        }));
        out.append(&mut self.scratch);
    }

    /// Splits the first `total` bytes off `dir`'s buffer as one message and
    /// emits it (then the tracker's exchanges).
    fn emit(&mut self, dir: Direction, total: usize, ts: u64, out: &mut Vec<Event>, decode: impl FnOnce(Bytes) -> PgMessage) {
        let side = &mut self.sides[dir.index()];
        let bytes = side.buf.split_to(total).freeze();
        let first_ts = side.head_ts;
        let offset = side.offset;
        side.offset += total as u64;
        side.head_ts = ts;
        let cap = self.limits.cap(dir);
        let raw = if bytes.len() <= cap { CappedBytes::whole(bytes.clone()) } else { CappedBytes::new(&bytes, cap) };
        let msg = decode(bytes);
        let w = Wire { first_ts, last_ts: ts, len: total as u64 };
        match dir {
            Direction::ToServer => self.tracker.frontend(&msg, w, &mut self.scratch),
            Direction::ToClient => self.tracker.backend(&msg, w, &mut self.scratch),
        }
        // Connection state that later framing depends on.
        match &msg {
            PgMessage::SslRequest => self.await_encryption = Some(b'S'),
            PgMessage::GssEncRequest => self.await_encryption = Some(b'G'),
            PgMessage::Startup(_) => self.startup_phase = false,
            PgMessage::Authentication(a) => {
                self.auth = match a {
                    Authentication::CleartextPassword | Authentication::Md5Password { .. } => AuthState::Password,
                    Authentication::Sasl { .. } => AuthState::SaslInitial,
                    Authentication::SaslContinue { .. } => AuthState::SaslContinue,
                    Authentication::Other { code: 7..=9, .. } => AuthState::Gss,
                    _ => AuthState::None,
                }
            }
            _ => {}
        }
        out.push(Event::Message(Message { dir, first_ts, last_ts: ts, offset, raw, kind: MessageKind::Pg(msg) }));
        out.append(&mut self.scratch);
    }

    fn step(&mut self, dir: Direction, ts: u64, out: &mut Vec<Event>) -> Result<Step, Fallback> {
        let i = dir.index();
        // Stream the rest of a skipped run message.
        if self.sides[i].skip > 0 {
            let side = &mut self.sides[i];
            let n = side.skip.min(side.buf.len());
            if n == 0 {
                return Ok(Step::NeedMore);
            }
            if let Some(run) = &mut side.run {
                run.raw.push(&side.buf[..n]);
                run.len += n as u64;
                run.last_ts = ts;
            }
            side.buf.advance(n);
            side.offset += n as u64;
            side.skip -= n;
            side.head_ts = ts;
            return Ok(if side.skip > 0 { Step::NeedMore } else { Step::Progress });
        }
        if self.sides[i].buf.is_empty() {
            return Ok(Step::NeedMore);
        }
        match dir {
            Direction::ToServer if self.startup_phase => self.startup_packet(ts, out),
            Direction::ToClient if self.await_encryption.is_some() => self.encryption_answer(ts, out),
            _ => self.tagged(dir, ts, out),
        }
    }

    fn startup_packet(&mut self, ts: u64, out: &mut Vec<Event>) -> Result<Step, Fallback> {
        let buf = &self.sides[0].buf;
        let Some(head) = buf.get(..8) else { return Ok(Step::NeedMore) };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if let Err(reason) = startup_header(len, code, self.limits.max_frame) {
            return Err(self.fallback(Direction::ToServer, reason, ts, out));
        }
        if buf.len() < len {
            return Ok(Step::NeedMore);
        }
        self.emit(Direction::ToServer, len, ts, out, |bytes| parse::startup(code, bytes.slice(8..)));
        Ok(Step::Progress)
    }

    fn encryption_answer(&mut self, ts: u64, out: &mut Vec<Event>) -> Result<Step, Fallback> {
        let want = self.await_encryption.unwrap_or(b'S');
        let Some(&byte) = self.sides[1].buf.first() else { return Ok(Step::NeedMore) };
        if byte != want && byte != b'N' {
            // Not a one-byte answer (e.g. an old server's ErrorResponse):
            // read tagged messages.
            self.await_encryption = None;
            return Ok(Step::Progress);
        }
        self.await_encryption = None;
        let accepted = byte == want;
        self.emit(Direction::ToClient, 1, ts, out, |_| {
            if want == b'S' {
                PgMessage::SslResponse { accepted }
            } else {
                PgMessage::GssEncResponse { accepted }
            }
        });
        if accepted {
            let what = if want == b'S' { "TLS" } else { "GSS encryption" };
            return Err(self.fallback(Direction::ToClient, format!("pg: {what} accepted, connection encrypted"), ts, out));
        }
        Ok(Step::Progress)
    }

    fn tagged(&mut self, dir: Direction, ts: u64, out: &mut Vec<Event>) -> Result<Step, Fallback> {
        let i = dir.index();
        let Some(head) = self.sides[i].buf.get(..5) else { return Ok(Step::NeedMore) };
        let tag = head[0];
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let total = match frame_header(dir, tag, len, self.limits.max_frame) {
            Ok(total) => total,
            Err(reason) => return Err(self.fallback(dir, reason, ts, out)),
        };
        let run_kind = match (dir, tag) {
            (Direction::ToClient, b::DATA_ROW) => Some(RunKind::DataRows),
            (_, b::COPY_DATA) => Some(RunKind::CopyData),
            _ => None,
        };
        if self.sides[i].run.as_ref().map(|r| r.kind) != run_kind || run_kind.is_none() {
            self.flush_run(dir, out);
        }
        let Some(kind) = run_kind else {
            if self.sides[i].buf.len() < total {
                return Ok(Step::NeedMore);
            }
            let auth = self.auth;
            self.emit(dir, total, ts, out, |bytes| {
                let body = bytes.slice(5..);
                match dir {
                    Direction::ToServer => parse::frontend(tag, body, auth),
                    Direction::ToClient => parse::backend(tag, body),
                }
            });
            return Ok(Step::Progress);
        };
        // A run message.
        if self.sides[i].run.is_none() {
            let formats = if kind == RunKind::DataRows { self.tracker.row_formats() } else { Vec::new() };
            let side = &mut self.sides[i];
            side.run = Some(Run {
                kind,
                first_ts: side.head_ts,
                last_ts: ts,
                offset: side.offset,
                raw: CappedBuilder::new(self.limits.cap(dir)),
                count: 0,
                len: 0,
                rows: Vec::new(),
                formats,
            });
        }
        let max_frame = self.limits.max_frame;
        let side = &mut self.sides[i];
        let Some(run) = side.run.as_mut() else { return Ok(Step::NeedMore) };
        if kind == RunKind::DataRows && run.rows.len() < SAMPLE_ROWS {
            // A sampled row: buffer it whole and decode it.
            if side.buf.len() < total {
                return Ok(Step::NeedMore);
            }
            let bytes = side.buf.split_to(total).freeze();
            run.raw.push(&bytes);
            run.count += 1;
            run.len += total as u64;
            run.last_ts = ts;
            if let Ok(values) = parse::data_row(bytes.slice(5..)) {
                let row = values
                    .iter()
                    .enumerate()
                    .map(|(c, v)| {
                        let (oid, fmt) = run.formats.get(c).copied().unwrap_or((0, 0));
                        decode_value(oid, fmt, v.as_ref())
                    })
                    .collect();
                run.rows.push(row);
            }
            side.offset += total as u64;
            side.head_ts = ts;
            return Ok(Step::Progress);
        }
        // Fast path: count every following message of the same tag from its
        // header alone; the last one may be partial and is streamed through.
        let buf = &side.buf[..];
        let mut pos = 0usize;
        let mut count = 0u64;
        let mut skip = 0usize;
        while let Some(h) = buf.get(pos..pos + 5) {
            if h[0] != tag {
                break;
            }
            let l = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
            if l < 4 || l + 1 > max_frame {
                break; // the next step reports it
            }
            count += 1;
            let end = pos + l + 1;
            if end > buf.len() {
                skip = end - buf.len();
                pos = buf.len();
                break;
            }
            pos = end;
        }
        run.raw.push(&buf[..pos]);
        run.count += count;
        run.len += pos as u64;
        run.last_ts = ts;
        side.buf.advance(pos);
        side.offset += pos as u64;
        side.skip = skip;
        side.head_ts = ts;
        Ok(Step::Progress)
    }
}

impl Decoder for PgDecoder {
    fn feed(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>) -> Result<(), Fallback> {
        if self.dead {
            return Err(Fallback { reason: "pg: decoder already fell back".into(), dir, pending: [Bytes::new(), Bytes::new()] });
        }
        let side = &mut self.sides[dir.index()];
        let mut input = data;
        // A skipped message's body goes straight from the input to the run.
        if side.skip > 0 && side.buf.is_empty() {
            let n = side.skip.min(input.len());
            if let Some(run) = &mut side.run {
                run.raw.push(&input[..n]);
                run.len += n as u64;
                run.last_ts = ts;
            }
            side.skip -= n;
            side.offset += n as u64;
            input = &input[n..];
        }
        if !input.is_empty() {
            if side.buf.is_empty() {
                side.head_ts = ts;
            }
            side.buf.extend_from_slice(input);
        }
        while let Step::Progress = self.step(dir, ts, out)? {}
        Ok(())
    }

    fn eof(&mut self, dir: Direction, ts: u64, out: &mut Vec<Event>) {
        if self.dead {
            return;
        }
        self.flush_run(dir, out);
        let side = &mut self.sides[dir.index()];
        if !side.buf.is_empty() {
            // A torn message: keep its bytes, undecoded.
            let bytes = side.buf.split().freeze();
            let cap = self.limits.cap(dir);
            out.push(Event::Message(Message {
                dir,
                first_ts: side.head_ts,
                last_ts: ts,
                offset: side.offset,
                raw: CappedBytes::new(&bytes, cap),
                kind: MessageKind::Opaque,
            }));
            side.offset += bytes.len() as u64;
        }
        match dir {
            Direction::ToClient => self.tracker.server_closed(out),
            Direction::ToServer => self.tracker.client_closed(out),
        }
    }
}
