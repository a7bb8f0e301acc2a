//! [`HttpDecoder`]: the sans-IO HTTP/1.x decoder for one connection, both
//! directions.
//!
//! Each direction owns a receive buffer ([`BytesMut`]). A message's bytes
//! stay in it until the message completes, then split off and freeze into
//! one [`Bytes`] that the message's raw bytes, header fields and body all
//! slice (zero-copy). A message that grows past the direction's cap before it
//! completes switches to *streaming*: its head is frozen, and from then on
//! its bytes are fed to [`CappedBuilder`]s (raw and body) and dropped from the
//! buffer, so a 1 GB body costs at most two caps of memory.
//!
//! Every decision depends only on the bytes received so far, never on where
//! reads ended, so feeding a stream whole, split or byte by byte gives the
//! same events.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use xxhash_rust::xxh3::xxh3_64;

use super::chunked::{ChunkState, Step};
use super::exchange::{Entry, Pipeline, ResponseState};
use super::head::{
    content_type_bytes, find_head_end, parse_head, request_body, HeadInfo, Parsed, Parts, PartsStart, RequestBody, Span,
    StartLine,
};
use super::message::{authority_range, Header, HttpMessage, HttpRequest, HttpResponse};
use crate::types::*;

/// Longest chunk-size line accepted (extensions included), before the
/// `max_frame` bound applies.
const CHUNK_LINE_MAX: usize = 4096;

/// Initial capacity of a receive buffer.
const BUF_CHUNK: usize = 4096;

/// Decodes one HTTP/1.x connection: requests on [`Direction::ToServer`],
/// responses on [`Direction::ToClient`], paired in order into exchanges.
///
/// ```
/// use wire::{Decoder, Direction, Event, Limits};
/// use wire::http::HttpDecoder;
/// let mut d = HttpDecoder::new(Limits::default());
/// let mut out = Vec::new();
/// d.feed(Direction::ToServer, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, &mut out).unwrap();
/// d.feed(Direction::ToClient, b"HTTP/1.1 204 No Content\r\n\r\n", 2, &mut out).unwrap();
/// assert_eq!(out.len(), 3); // request, response, exchange
/// assert!(matches!(out[2], Event::Exchange(_)));
/// ```
pub struct HttpDecoder {
    limits: Limits,
    sides: [Side; 2],
    pipeline: Pipeline,
    /// The request side waits for the response to a `CONNECT` or `Upgrade`
    /// request: bytes after it may belong to another protocol.
    paused: bool,
    /// The response side ended: requests still waiting are unanswered.
    closed: bool,
    /// Decoding stopped (the connection was handed over as opaque).
    dead: bool,
}

/// One direction's state.
#[derive(Default)]
struct Side {
    /// Bytes received and not yet emitted (or streamed).
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Arrival times of the bytes in `buf`: `(end offset, ts)`, oldest first,
    /// one entry per run of feeds with the same timestamp.
    marks: VecDeque<(u64, u64)>,
    /// Time of the latest byte fed.
    last_ts: u64,
    /// Progress looking for the end of the next head.
    head: HeadScan,
    /// The message being decoded, once its head is parsed.
    cur: Option<Current>,
    /// Header field positions of `cur`'s head.
    spans: Vec<(Span, Span)>,
}

/// Bookkeeping that keeps head detection linear in the bytes received.
#[derive(Default)]
struct HeadScan {
    /// The fast path (parse whatever is buffered) was tried.
    tried: bool,
    /// Leading CR/LF bytes (empty lines before a start line, allowed).
    lead: usize,
    /// A byte other than CR/LF was seen: `lead` is final.
    lead_done: bool,
    /// Where to resume looking for the empty line ending the head.
    searched: usize,
    /// Longest prefix already checked for syntax errors.
    prefix_checked: usize,
}

/// How the body of the current message ends.
#[derive(Debug)]
enum Framing {
    /// No body.
    Empty,
    /// `Content-Length`: this many body bytes still to come.
    Length(u64),
    /// Chunked transfer coding.
    Chunked(ChunkState),
    /// A response body delimited by the end of the connection.
    Close,
}

/// A protocol switch a response announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Switch {
    None,
    /// `101 Switching Protocols`.
    Upgrade,
    /// `2xx` to `CONNECT`.
    Tunnel,
}

/// The message being decoded in one direction.
struct Current {
    info: HeadInfo,
    /// Stream offset of its first byte.
    offset: u64,
    first_ts: u64,
    framing: Framing,
    /// Bytes at the front of the buffer that are parsed parts of this
    /// message (head included until streaming starts; after that, bytes
    /// parsed in this step and not yet moved to the builders).
    scan: usize,
    /// Decoded body: the de-chunked content of a chunked body, or the body
    /// of a streaming message. `None` while a non-chunked body is still a
    /// slice of the buffer.
    /// Boxed: a builder carries a hasher of several hundred bytes, and the
    /// common small message needs none.
    body: Option<Box<CappedBuilder>>,
    trailers: Vec<Header>,
    /// Set once the message streams.
    stream: Option<Box<Stream>>,
    /// Response only: the protocol switch it announces.
    switch: Switch,
    /// Response only: an interim `1xx`.
    interim: bool,
    /// Response only: a request was waiting for it when its head arrived.
    answers: bool,
}

/// A message too big to keep in the buffer: its frozen head (in `parts`)
/// and builders.
struct Stream {
    parts: Parts,
    raw: CappedBuilder,
    /// Time of the last byte moved to `raw`.
    last_ts: u64,
}

/// What emitting a message changed.
struct Delivered {
    /// It was the final response to the request that paused the request side.
    unpauses: bool,
    /// The protocol the connection switches to after it, if any.
    switched_to: Option<Bytes>,
}

/// Why decoding stops.
struct Stop {
    dir: Direction,
    reason: String,
}

impl Stop {
    fn new(dir: Direction, reason: String) -> Stop {
        Stop { dir, reason }
    }
}

/// What the exchange bookkeeping needs from an emitted message.
struct Summary {
    complete: bool,
    first: u64,
    last: u64,
    raw_len: u64,
    body_len: u64,
    /// `None` for a request.
    status: Option<u16>,
    /// Positions in the message's head (its [`super::Headers`]' bytes).
    host: Option<Span>,
    content_type: Option<Span>,
    upgrade: Option<Span>,
    close: bool,
    switch: Switch,
    interim: bool,
    answers: bool,
}

impl Side {
    fn push(&mut self, data: &[u8], ts: u64) {
        if self.buf.capacity() == 0 {
            // Room for a few small messages per allocation: frozen messages
            // keep their buffer alive, so a fresh one is needed now and then.
            self.buf.reserve(data.len().max(BUF_CHUNK));
        }
        self.buf.extend_from_slice(data);
        let end = self.base + self.buf.len() as u64;
        match self.marks.back_mut() {
            Some(m) if m.1 == ts => m.0 = end,
            _ => self.marks.push_back((end, ts)),
        }
        self.last_ts = ts;
    }

    /// When the byte at stream offset `off` arrived.
    fn ts_at(&self, off: u64) -> u64 {
        self.marks.iter().find(|m| m.0 > off).map_or(self.last_ts, |m| m.1)
    }

    /// Time of the last of the first `n` bytes in the buffer.
    fn ts_of_first(&self, n: usize) -> u64 {
        self.ts_at((self.base + n as u64).saturating_sub(1))
    }

    fn advance_base(&mut self, n: usize) {
        self.base += n as u64;
        while self.marks.front().is_some_and(|m| m.0 <= self.base) {
            self.marks.pop_front();
        }
    }

    /// Splits off and freezes the first `n` buffered bytes.
    fn take(&mut self, n: usize) -> Bytes {
        let n = n.min(self.buf.len());
        let b = self.buf.split_to(n).freeze();
        self.advance_base(n);
        b
    }

    /// Drops the first `n` buffered bytes (already copied to builders).
    fn discard(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.advance(n);
        self.advance_base(n);
    }
}

/// Keeps `b` whole when it fits under `cap`, else a prefix slice and the
/// hash of the whole (the same result [`CappedBuilder`] gives).
fn capped(b: Bytes, cap: usize) -> CappedBytes {
    if b.len() <= cap {
        CappedBytes::whole(b)
    } else {
        CappedBytes { hash: Some(xxh3_64(&b)), len: b.len() as u64, prefix: b.slice(..cap) }
    }
}

fn side_name(dir: Direction) -> &'static str {
    match dir {
        Direction::ToServer => "request",
        Direction::ToClient => "response",
    }
}

fn prev_power_of_two(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

impl HttpDecoder {
    /// A decoder for a new connection.
    pub fn new(limits: Limits) -> Self {
        HttpDecoder {
            limits,
            sides: [Side::default(), Side::default()],
            pipeline: Pipeline::default(),
            paused: false,
            closed: false,
            dead: false,
        }
    }

    /// Decodes as many messages in `dir` as the buffered bytes allow.
    fn process(&mut self, dir: Direction, out: &mut Vec<Event>) -> Result<(), Stop> {
        loop {
            if self.sides[dir.index()].cur.is_none() {
                if dir == Direction::ToServer && self.paused {
                    let held = self.sides[0].buf.len();
                    if held > self.limits.max_frame {
                        return Err(Stop::new(
                            dir,
                            format!(
                                "http: bytes sent after a CONNECT/Upgrade request, before its response, exceed max_frame ({} bytes)",
                                self.limits.max_frame
                            ),
                        ));
                    }
                    return Ok(());
                }
                let info = match self.scan_head(dir) {
                    Ok(Some(info)) => info,
                    Ok(None) => return Ok(()),
                    Err(reason) => return Err(Stop::new(dir, reason)),
                };
                self.start(dir, info)?;
            }
            if !self.advance(dir)? {
                return Ok(());
            }
            self.finish(dir, out)?;
        }
    }

    /// Looks for a complete head at the front of `dir`'s buffer.
    ///
    /// The outcome after any read depends only on the bytes buffered, never
    /// on where earlier reads ended (so a split feed falls back, or not, for
    /// the same reason as a whole one):
    /// - a head whose end is within `max_frame` is parsed whole;
    /// - otherwise, a syntax error within the first `p` bytes, `p` the
    ///   largest power of two not above `min(buffered, max_frame)`, is
    ///   reported first (prefixes of doubling length keep the work linear and
    ///   catch TLS or another protocol early, long before any end of head);
    /// - otherwise more than `max_frame` bytes without an end is "too big".
    fn scan_head(&mut self, dir: Direction) -> Result<Option<HeadInfo>, String> {
        let max = self.limits.max_frame;
        let request = dir == Direction::ToServer;
        let Side { buf, head: hs, spans, .. } = &mut self.sides[dir.index()];
        let buf: &[u8] = buf;
        if buf.is_empty() {
            return Ok(None);
        }
        if !hs.tried {
            hs.tried = true;
            // Fast path: most heads arrive whole in one read, so parse right
            // away. A partial head or an error falls through to the rules
            // above (an error counts only once they make it certain).
            if let Ok(Parsed::Complete(info)) = parse_head(buf, request, spans) {
                if info.len <= max {
                    return Ok(Some(info));
                }
            }
        }
        if !hs.lead_done {
            // Empty lines before a start line are allowed: look for the end
            // of the head after them.
            while let Some(b) = buf.get(hs.lead) {
                if matches!(b, b'\r' | b'\n') {
                    hs.lead += 1;
                } else {
                    hs.lead_done = true;
                    hs.searched = hs.lead;
                    break;
                }
            }
        }
        let end = if hs.lead_done {
            match find_head_end(buf, hs.searched) {
                Ok(end) => Some(end),
                Err(resume) => {
                    hs.searched = resume;
                    None
                }
            }
        } else {
            None
        };
        if let Some(end) = end.filter(|&e| e <= max) {
            return match parse_head(buf.get(..end).unwrap_or_default(), request, spans)? {
                Parsed::Complete(info) => Ok(Some(info)),
                Parsed::Partial => Err(format!("http: malformed {} head", side_name(dir))),
            };
        }
        let p = prev_power_of_two(buf.len().min(max));
        if p > hs.prefix_checked {
            hs.prefix_checked = p;
            parse_head(buf.get(..p).unwrap_or_default(), request, spans)?;
        }
        if end.is_some() || buf.len() > max {
            // The reason names the limit, not the size seen: that depends on
            // where reads ended.
            return Err(format!("http: {} head exceeds max_frame ({max} bytes)", side_name(dir)));
        }
        Ok(None)
    }

    /// A head was parsed: decide how the body is framed.
    fn start(&mut self, dir: Direction, info: HeadInfo) -> Result<(), Stop> {
        let stop = |r: &str| Stop::new(dir, r.to_string());
        let length = |cl: Option<u64>| match cl {
            Some(u64::MAX) => Err(stop("http: invalid or conflicting Content-Length")),
            Some(0) => Ok(Framing::Empty),
            Some(n) => Ok(Framing::Length(n)),
            None => Ok(Framing::Close),
        };
        let (mut switch, mut interim, mut answers) = (Switch::None, false, false);
        let framing = match info.start {
            StartLine::Request { method, .. } => {
                let framing = match request_body(&info).map_err(stop)? {
                    RequestBody::Chunked => Framing::Chunked(ChunkState::Size),
                    RequestBody::Length(0) => Framing::Empty,
                    RequestBody::Length(n) => Framing::Length(n),
                };
                let m = method.get(&self.sides[dir.index()].buf);
                let is_connect = m == b"CONNECT";
                self.pipeline.push(Entry::new(m == b"HEAD", is_connect, is_connect || info.upgrade.is_some()));
                framing
            }
            StartLine::Response { status, .. } => {
                let entry = self.pipeline.current();
                answers = entry.is_some();
                let (is_head, is_connect) = entry.map_or((false, false), |e| (e.is_head, e.is_connect));
                if (100..200).contains(&status) {
                    if status == 101 {
                        switch = Switch::Upgrade;
                    } else {
                        interim = true;
                    }
                    Framing::Empty
                } else if is_connect && (200..300).contains(&status) {
                    switch = Switch::Tunnel;
                    Framing::Empty
                } else if is_head || status == 204 || status == 304 {
                    Framing::Empty
                } else if info.chunked {
                    Framing::Chunked(ChunkState::Size)
                } else if info.te_present {
                    Framing::Close
                } else {
                    length(info.content_length)?
                }
            }
        };
        let body = matches!(framing, Framing::Chunked(_)).then(|| Box::new(CappedBuilder::new(self.limits.cap(dir))));
        let side = &mut self.sides[dir.index()];
        side.head = HeadScan::default();
        let offset = side.base;
        side.cur = Some(Current {
            offset,
            first_ts: side.ts_at(offset),
            framing,
            scan: info.len,
            body,
            trailers: Vec::new(),
            stream: None,
            switch,
            interim,
            answers,
            info,
        });
        Ok(())
    }

    /// Parses as much of the current message's body as is buffered. True
    /// when the message is complete.
    fn advance(&mut self, dir: Direction) -> Result<bool, Stop> {
        let cap = self.limits.cap(dir);
        let line_max = CHUNK_LINE_MAX.min(self.limits.max_frame);
        let trailer_max = self.limits.max_frame;
        let side = &mut self.sides[dir.index()];
        let Side { buf, cur, .. } = &mut *side;
        let Some(cur) = cur.as_mut() else { return Ok(false) };
        let buf: &[u8] = buf;
        let mut scan = cur.scan.min(buf.len());
        let result = match &mut cur.framing {
            Framing::Empty => Ok(true),
            Framing::Length(left) => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len() - scan);
                if let Some(body) = &mut cur.body {
                    body.push(buf.get(scan..scan + n).unwrap_or_default());
                }
                scan += n;
                *left -= n as u64;
                Ok(*left == 0)
            }
            Framing::Close => {
                if let Some(body) = &mut cur.body {
                    body.push(buf.get(scan..).unwrap_or_default());
                }
                scan = buf.len();
                Ok(false)
            }
            Framing::Chunked(state) => loop {
                let avail = buf.get(scan..).unwrap_or_default();
                match state.step(avail, line_max, trailer_max) {
                    Ok(Step::Framing(n)) => scan += n,
                    Ok(Step::Data(n)) => {
                        if let Some(body) = &mut cur.body {
                            body.push(avail.get(..n).unwrap_or_default());
                        }
                        scan += n;
                    }
                    Ok(Step::Done(n, trailers)) => {
                        scan += n;
                        cur.trailers = trailers;
                        break Ok(true);
                    }
                    Ok(Step::NeedMore) => break Ok(false),
                    Err(reason) => break Err(Stop::new(dir, reason)),
                }
            },
        };
        cur.scan = scan;
        // On an error too, first reach the state these bytes would have led
        // to had they come in separate reads (streaming or not), so that the
        // hand-over does not depend on read boundaries.
        let complete = *result.as_ref().unwrap_or(&false);
        let streaming = cur.stream.is_some();
        if result.is_err() {
            if !streaming && scan > cap {
                start_streaming(side, cap);
            }
            return result;
        }
        if let (Some(stream), true) = (&mut cur.stream, scan > 0) {
            // Streaming: move what was parsed to the builders right away.
            stream.raw.push(buf.get(..scan).unwrap_or_default());
            cur.scan = 0;
            let ts = side.ts_of_first(scan);
            if let Some(Current { stream: Some(stream), .. }) = &mut side.cur {
                stream.last_ts = ts;
            }
            side.discard(scan);
        } else if !streaming && !complete && scan > cap {
            start_streaming(side, cap);
        }
        Ok(complete)
    }

    /// The current message in `dir` is complete: emit it.
    fn finish(&mut self, dir: Direction, out: &mut Vec<Event>) -> Result<(), Stop> {
        let Some(cur) = &self.sides[dir.index()].cur else { return Ok(()) };
        let (status, switch) = (cur.info.status().unwrap_or(0), cur.switch);
        let Some(done) = self.emit(dir, true, false, out) else { return Ok(()) };
        if switch != Switch::None {
            let to = done.switched_to.as_ref().map(|b| String::from_utf8_lossy(b));
            let reason = match (switch, to) {
                (Switch::Tunnel, Some(to)) => format!("http: CONNECT tunnel to {to}"),
                (_, Some(to)) => format!("http: upgraded to {to}"),
                (_, None) => format!("http: switched protocols after status {status}"),
            };
            return Err(Stop::new(dir, reason));
        }
        if done.unpauses && self.paused {
            self.paused = false;
            self.process(Direction::ToServer, out)?;
        }
        Ok(())
    }

    /// Emits the current message of `dir` and records it in its exchange.
    /// `complete`: it ended normally; `take_all`: every buffered byte belongs
    /// to it (the stream ended).
    fn emit(&mut self, dir: Direction, complete: bool, take_all: bool, out: &mut Vec<Event>) -> Option<Delivered> {
        let cap = self.limits.cap(dir);
        let side = &mut self.sides[dir.index()];
        let mut cur = side.cur.take()?;
        let n = if take_all { side.buf.len() } else { cur.scan.min(side.buf.len()) };
        let info = &cur.info;
        let (parts, raw, body, last_ts) = match cur.stream.take() {
            Some(stream) => {
                let Stream { parts, mut raw, mut last_ts } = *stream;
                if n > 0 {
                    raw.push(side.buf.get(..n).unwrap_or_default());
                    last_ts = side.ts_of_first(n);
                    side.discard(n);
                }
                let body = cur.body.take().map(|b| b.finish()).unwrap_or_default();
                (parts, raw.finish(), body, last_ts)
            }
            None => {
                let last_ts = side.ts_of_first(n);
                let bytes = side.take(n);
                let parts = info.parts(&bytes, &side.spans);
                let body = match cur.body.take() {
                    Some(b) => b.finish(),
                    None if matches!(cur.framing, Framing::Empty) => CappedBytes::default(),
                    None => capped(bytes.slice(info.len.min(bytes.len())..cur.scan.min(bytes.len())), cap),
                };
                (parts, capped(bytes, cap), body, last_ts)
            }
        };
        let summary = Summary {
            complete,
            first: cur.first_ts,
            last: last_ts,
            raw_len: raw.len,
            body_len: body.len,
            status: info.status(),
            host: info.host,
            content_type: info.content_type,
            upgrade: info.upgrade,
            close: info.close,
            switch: cur.switch,
            interim: cur.interim,
            answers: cur.answers,
        };
        let chunked = matches!(cur.framing, Framing::Chunked(_));
        let trailers = std::mem::take(&mut cur.trailers);
        let Parts { start, version, headers } = parts;
        let kind = match start {
            PartsStart::Request { method, target } => HttpMessage::Request(Box::new(HttpRequest {
                method,
                target,
                version,
                headers,
                body,
                chunked,
                trailers,
                complete,
            })),
            PartsStart::Response { status, reason } => HttpMessage::Response(Box::new(HttpResponse {
                status,
                reason,
                version,
                headers,
                body,
                chunked,
                trailers,
                complete,
            })),
        };
        out.push(Event::Message(Message {
            dir,
            first_ts: summary.first,
            last_ts,
            offset: cur.offset,
            raw,
            kind: MessageKind::Http(kind),
        }));
        Some(self.record(summary, out))
    }

    /// Records the message just emitted (the last event in `out`) in its
    /// exchange, and emits the exchanges that are now finished.
    fn record(&mut self, m: Summary, out: &mut Vec<Event>) -> Delivered {
        let mut done = Delivered { unpauses: false, switched_to: None };
        if let Some(Event::Message(Message { kind: MessageKind::Http(message), .. })) = out.last() {
            let entry = match m.status {
                None => self.pipeline.next_sent(),
                Some(_) if m.answers => self.pipeline.current_mut(),
                Some(_) => None,
            };
            // The pipeline builds every exchange as HTTP.
            let entry = entry.map(|e| (&mut *e.x, e.pauses, &mut e.response));
            if let Some((
                Exchange { timings, request_bytes, response_bytes, detail: ExchangeDetail::Http(ex), .. },
                pauses,
                response,
            )) = entry
            {
                let head = message.headers().data();
                match (m.status, message) {
                    (None, HttpMessage::Request(req)) => {
                        timings.request_first = m.first;
                        timings.request_last = m.last;
                        *request_bytes = m.raw_len;
                        let target = req.target;
                        let host = m.host.or_else(|| {
                            let a = authority_range(target.get(head))?;
                            Some(Span::new(target.start() + a.start, target.start() + a.end))
                        });
                        ex.set_request(head.clone(), target, host, m.content_type);
                        ex.method = req.method.clone();
                        ex.request_content_length = m.body_len;
                        ex.request_complete = m.complete;
                        ex.connection_close |= m.close;
                        // Bytes after a CONNECT/Upgrade request wait for its
                        // answer, unless that answer already came.
                        if pauses && m.complete && *response == ResponseState::None {
                            self.paused = true;
                        }
                    }
                    (Some(_), _) if m.interim => {
                        *response_bytes += m.raw_len;
                        ex.interim_responses += 1;
                        ex.interim_first.get_or_insert(m.first);
                    }
                    (Some(status), _) => {
                        *response_bytes += m.raw_len;
                        timings.response_first = Some(m.first);
                        timings.response_last = Some(m.last);
                        ex.status = Some(status);
                        ex.response_content_length = Some(m.body_len);
                        ex.response_content_type = m.content_type.map(|s| content_type_bytes(s, head));
                        ex.connection_close |= m.close;
                        ex.switched_to = match m.switch {
                            Switch::None => None,
                            Switch::Upgrade => Some(
                                m.upgrade.map_or_else(|| Bytes::from_static(b"unknown protocol"), |s| s.bytes(head)),
                            ),
                            Switch::Tunnel => Some(ex.target_bytes()),
                        };
                        *response = if m.complete { ResponseState::Complete } else { ResponseState::Partial };
                        done.unpauses = pauses && m.complete;
                        done.switched_to = ex.switched_to.clone();
                        if m.complete {
                            self.pipeline.answer();
                        }
                    }
                    // A request's summary has no status.
                    (None, HttpMessage::Response(_)) => {}
                }
            }
        }
        self.pipeline.emit_ready(self.closed, out);
        done
    }

    /// Emits whatever `dir` still holds when its stream ends: the current
    /// message (complete if delimited by the close, else cut short), or bytes
    /// that never formed a head, as an opaque message.
    fn flush(&mut self, dir: Direction, out: &mut Vec<Event>) {
        let complete = matches!(self.sides[dir.index()].cur.as_ref().map(|c| &c.framing), Some(Framing::Close));
        if self.emit(dir, complete, true, out).is_none() {
            self.flush_opaque(dir, out);
        }
    }

    /// Emits the buffered bytes of `dir` as one opaque message.
    fn flush_opaque(&mut self, dir: Direction, out: &mut Vec<Event>) {
        let cap = self.limits.cap(dir);
        let side = &mut self.sides[dir.index()];
        if side.buf.is_empty() {
            return;
        }
        let n = side.buf.len();
        let (offset, first_ts, last_ts) = (side.base, side.ts_at(side.base), side.ts_of_first(n));
        let bytes = side.take(n);
        side.head = HeadScan::default();
        out.push(Event::Message(Message {
            dir,
            first_ts,
            last_ts,
            offset,
            raw: capped(bytes, cap),
            kind: MessageKind::Opaque,
        }));
    }

    /// Stops decoding: emits streaming messages cut short and the exchanges
    /// whose requests were emitted, and hands every other buffered byte back.
    fn bail(&mut self, stop: Stop, out: &mut Vec<Event>) -> Fallback {
        self.dead = true;
        for dir in [Direction::ToServer, Direction::ToClient] {
            let streaming = self.sides[dir.index()].cur.as_ref().is_some_and(|c| c.stream.is_some());
            if streaming {
                self.emit(dir, false, false, out);
            }
        }
        self.pipeline.drain(out);
        let pending = [self.sides[0].buf.split().freeze(), self.sides[1].buf.split().freeze()];
        Fallback { reason: stop.reason, dir: stop.dir, pending }
    }
}

/// The current message outgrew the cap before completing: freeze its head
/// and move its parsed bytes to builders.
fn start_streaming(side: &mut Side, cap: usize) {
    let Some(mut cur) = side.cur.take() else { return };
    let last_ts = side.ts_of_first(cur.scan);
    let head_len = cur.info.len.min(cur.scan);
    let head = side.take(head_len);
    let parts = cur.info.parts(&head, &side.spans);
    let mut raw = CappedBuilder::new(cap);
    raw.push(&head);
    let rest = cur.scan - head_len;
    let parsed = side.buf.get(..rest).unwrap_or_default();
    raw.push(parsed);
    if cur.body.is_none() {
        // Content-Length or close-delimited: every byte after the head is content.
        let mut body = Box::new(CappedBuilder::new(cap));
        body.push(parsed);
        cur.body = Some(body);
    }
    side.discard(rest);
    cur.scan = 0;
    cur.stream = Some(Box::new(Stream { parts, raw, last_ts }));
    side.cur = Some(cur);
}

impl Decoder for HttpDecoder {
    fn feed(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>) -> Result<(), Fallback> {
        if self.dead {
            let mut pending = [Bytes::new(), Bytes::new()];
            pending[dir.index()] = Bytes::copy_from_slice(data);
            return Err(Fallback { reason: "http: decoder already handed the connection over".into(), dir, pending });
        }
        if data.is_empty() {
            return Ok(());
        }
        self.sides[dir.index()].push(data, ts);
        self.process(dir, out).map_err(|stop| self.bail(stop, out))
    }

    fn eof(&mut self, dir: Direction, _ts: u64, out: &mut Vec<Event>) {
        if self.dead {
            return;
        }
        match dir {
            Direction::ToServer => {
                if self.paused {
                    self.flush_opaque(dir, out);
                } else {
                    self.flush(dir, out);
                }
            }
            Direction::ToClient => {
                self.flush(dir, out);
                self.closed = true;
                if self.paused {
                    // The switch never came: what the client sent after its
                    // CONNECT/Upgrade request stays undecoded.
                    self.flush_opaque(Direction::ToServer, out);
                }
            }
        }
        self.pipeline.emit_ready(self.closed, out);
    }
}
