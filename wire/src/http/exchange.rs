//! Pairing requests with responses: [`HttpExchange`] (what an analyzer reads)
//! and the FIFO of requests waiting for their responses.
//!
//! HTTP/1.1 answers requests in the order they were sent, even when the
//! client pipelines several before the first response. An entry joins the
//! queue when its request's head is parsed (so that the response decoder
//! knows it answers a `HEAD` or a `CONNECT`), is filled in as the request and
//! then the response complete, and leaves as an [`Exchange`] event once both
//! are done, or when the connection ends without a response.

use std::collections::VecDeque;

use bytes::Bytes;

use super::head::Span;
use crate::types::{Event, Exchange, ExchangeDetail, ExchangeStatus, Timings};

/// The HTTP summary of one request/response pair.
///
/// The request's target, host and content type are read through methods:
/// they are positions in the request's bytes, which the exchange holds once.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpExchange {
    /// The request method, e.g. `GET`.
    pub method: Bytes,
    /// Target, host and content type of the request.
    request: RequestFields,
    /// The final response's status code; `None` when no response head came.
    pub status: Option<u16>,
    /// Decoded request body length in bytes (de-chunked, uncapped).
    pub request_content_length: u64,
    /// Decoded response body length in bytes; `None` without a response.
    pub response_content_length: Option<u64>,
    /// The response's `Content-Type`.
    pub response_content_type: Option<Bytes>,
    /// How many interim `1xx` responses (`100 Continue`, `103 Early Hints`,
    /// ...) came before the final one. Their bytes are counted in
    /// [`Exchange::response_bytes`], but the response timings are those of
    /// the final response.
    pub interim_responses: u32,
    /// Time (caller's nanoseconds) of the first byte of the first interim
    /// response, e.g. when `100 Continue` arrived.
    pub interim_first: Option<u64>,
    /// False when the request was cut short (connection closed or decoder
    /// fell back before its last byte).
    pub request_complete: bool,
    /// Either side sent `Connection: close` (or spoke HTTP/1.0 without
    /// keep-alive): the connection ends after this exchange.
    pub connection_close: bool,
    /// The connection switched protocols after this exchange: the `Upgrade`
    /// value of a `101` response (e.g. `websocket`), or the authority of a
    /// `CONNECT` answered with `2xx`.
    pub switched_to: Option<Bytes>,
}

impl HttpExchange {
    /// The request target as sent (see [`super::HttpRequest::target`]).
    pub fn target(&self) -> &[u8] {
        self.request.target.get(&self.request.bytes)
    }

    /// The `Host` header, else the authority of an absolute-form target.
    pub fn host(&self) -> Option<&[u8]> {
        self.request.host.map(|s| s.get(&self.request.bytes))
    }

    /// The request's `Content-Type`.
    pub fn request_content_type(&self) -> Option<&[u8]> {
        self.request.content_type.map(|s| s.get(&self.request.bytes))
    }

    /// [`HttpExchange::target`] as a zero-copy [`Bytes`].
    pub(crate) fn target_bytes(&self) -> Bytes {
        self.request.target.bytes(&self.request.bytes)
    }

    /// Keeps the request's bytes (head first) and where its fields lie in them.
    pub(crate) fn set_request(&mut self, bytes: Bytes, target: Span, host: Option<Span>, content_type: Option<Span>) {
        self.request = RequestFields { bytes, target, host, content_type };
    }
}

/// The request fields an exchange keeps: positions in the request's bytes.
/// Equality and `Debug` go by the text, not the positions.
#[derive(Clone, Default)]
struct RequestFields {
    bytes: Bytes,
    target: Span,
    host: Option<Span>,
    content_type: Option<Span>,
}

impl RequestFields {
    fn texts(&self) -> (&[u8], Option<&[u8]>, Option<&[u8]>) {
        let get = |s: Option<Span>| s.map(|s| s.get(&self.bytes));
        (self.target.get(&self.bytes), get(self.host), get(self.content_type))
    }
}

impl PartialEq for RequestFields {
    fn eq(&self, other: &RequestFields) -> bool {
        self.texts() == other.texts()
    }
}

impl std::fmt::Debug for RequestFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (target, host, content_type) = self.texts();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        f.debug_struct("Request")
            .field("target", &text(target))
            .field("host", &host.map(text))
            .field("content_type", &content_type.map(text))
            .finish()
    }
}

/// Where an entry's response stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResponseState {
    /// No final response head yet.
    None,
    /// A final response began but was cut short.
    Partial,
    /// The final response is complete.
    Complete,
}

/// A request waiting for (or paired with) its response.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The exchange this entry becomes: built when the request's head
    /// arrives, completed in place, and emitted as is. Boxed once, so that
    /// queueing and emitting it moves a pointer (a deep pipeline then costs
    /// pointers, not whole exchanges).
    pub x: Box<Exchange>,
    /// The request was `HEAD`: its response has no body.
    pub is_head: bool,
    /// The request was `CONNECT`: a `2xx` answer opens a tunnel.
    pub is_connect: bool,
    /// The request (`CONNECT` or with `Upgrade`) may switch protocols:
    /// request bytes after it wait for its response.
    pub pauses: bool,
    /// The request message was emitted (complete or cut short).
    pub request_done: bool,
    pub response: ResponseState,
}

impl Entry {
    pub fn new(is_head: bool, is_connect: bool, pauses: bool) -> Entry {
        let ex = HttpExchange {
            method: Bytes::new(),
            request: RequestFields::default(),
            status: None,
            request_content_length: 0,
            response_content_length: None,
            response_content_type: None,
            interim_responses: 0,
            interim_first: None,
            request_complete: false,
            connection_close: false,
            switched_to: None,
        };
        Entry {
            x: Box::new(Exchange {
                timings: Timings::default(),
                request_bytes: 0,
                response_bytes: 0,
                status: ExchangeStatus::Unanswered,
                detail: ExchangeDetail::Http(ex),
            }),
            is_head,
            is_connect,
            pauses,
            request_done: false,
            response: ResponseState::None,
        }
    }

    fn into_event(mut self) -> Event {
        if self.response == ResponseState::Complete {
            self.x.status = ExchangeStatus::Complete;
        }
        Event::Exchange(self.x)
    }
}

/// Requests in flight, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Pipeline {
    queue: VecDeque<Entry>,
    /// How many entries at the front already have their final response
    /// (they wait for their request to finish, e.g. an early `413`).
    answered: usize,
    /// How many entries at the front have their request done (requests
    /// finish in order, so these form a prefix).
    sent: usize,
}

impl Pipeline {
    pub fn push(&mut self, e: Entry) {
        self.queue.push_back(e);
    }

    /// The entry the next response answers, if its request was seen.
    pub fn current(&self) -> Option<&Entry> {
        self.queue.get(self.answered)
    }

    pub fn current_mut(&mut self) -> Option<&mut Entry> {
        self.queue.get_mut(self.answered)
    }

    /// The oldest entry whose request is not done yet: the request being
    /// decoded. Marks it done.
    pub fn next_sent(&mut self) -> Option<&mut Entry> {
        let e = self.queue.get_mut(self.sent)?;
        self.sent += 1;
        e.request_done = true;
        Some(e)
    }

    /// The current entry got its final response.
    pub fn answer(&mut self) {
        if self.answered < self.queue.len() {
            self.answered += 1;
        }
    }

    /// Emits, in order, the entries that are finished: request done and
    /// response complete, or (when `closed`, the response side is over)
    /// request done at all.
    pub fn emit_ready(&mut self, closed: bool, out: &mut Vec<Event>) {
        while let Some(front) = self.queue.front() {
            if !(front.request_done && (closed || front.response == ResponseState::Complete)) {
                break;
            }
            if let Some(e) = self.queue.pop_front() {
                if self.answered > 0 && e.response == ResponseState::Complete {
                    self.answered -= 1;
                }
                self.sent = self.sent.saturating_sub(1);
                out.push(e.into_event());
            }
        }
    }

    /// Emits every entry whose request was emitted, and forgets the rest
    /// (their bytes are handed back as opaque). Used when decoding stops.
    pub fn drain(&mut self, out: &mut Vec<Event>) {
        for e in self.queue.drain(..) {
            if e.request_done {
                out.push(e.into_event());
            }
        }
        self.answered = 0;
        self.sent = 0;
    }
}
