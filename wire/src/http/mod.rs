//! HTTP/1.x: a sans-IO decoder for both directions of a connection, the
//! pairing of requests with responses, and the encoders the replayer needs.
//!
//! # What it understands
//!
//! Requests and responses (`httparse` reads the heads); bodies framed by
//! `Content-Length`, by the chunked transfer coding (trailers included) or,
//! for responses, by the end of the connection; bodiless responses (to
//! `HEAD`, `1xx`, `204`, `304`); interim `1xx` responses such as the
//! `100 Continue` of `Expect: 100-continue`; keep-alive and pipelining
//! (responses pair with requests first in, first out); and the hand-over to
//! opaque mode after `101 Switching Protocols` or a `2xx` answer to
//! `CONNECT`, reported as a [`crate::Fallback`] whose `pending` bytes are
//! whatever followed the switch.
//!
//! # Layout
//!
//! - [`decoder`]: [`HttpDecoder`], the per-connection state machine (receive
//!   buffers, body framing, streaming of oversized messages, fallback).
//! - [`head`] (private): parsing heads with `httparse` into positions, and
//!   reading the fields that frame the body.
//! - [`chunked`] (private): the chunked transfer coding as a push parser.
//! - `at_rest.rs`: stored messages parsed at once: [`parse_request_head`],
//!   [`parse_response_head`] (a [`HeadView`]) and [`dechunk`] (with
//!   [`chunk_data_spans`], where the data is), with the
//!   decoder's own head and chunked parsers; [`head_lines`], where the
//!   fields of a head cut anywhere are (for redaction in place).
//! - `framer.rs`: [`RequestFramer`], the spans of each request's head and
//!   body in a client's stream, for proxies that rewrite heads as they
//!   forward (same parsers, same request body rule as the decoder).
//! - [`message`]: [`HttpMessage`], [`HttpRequest`], [`HttpResponse`]: what is
//!   recorded for each message.
//! - [`exchange`]: [`HttpExchange`], and the FIFO that pairs requests with
//!   responses.
//! - [`encode`]: [`encode_request`], [`encode_response`], [`rewrite_host`].
//!
//! # Events
//!
//! One [`crate::Message`] per request (emitted when its body is complete),
//! one per response (interim `1xx` included), and one [`crate::Exchange`]
//! per request once its final response is complete, or when the connection
//! ends first ([`crate::ExchangeStatus::Unanswered`]).

mod at_rest;
mod chunked;
pub mod decoder;
pub mod encode;
pub mod exchange;
mod framer;
mod head;
pub mod message;

pub use at_rest::{chunk_data_spans, dechunk, head_lines, parse_request_head, parse_response_head, HeadLine, HeadView};
pub use decoder::HttpDecoder;
pub use encode::{encode_request, encode_response, rewrite_host};
pub use exchange::HttpExchange;
pub use framer::{Framed, RequestFramer};
pub use message::{bytes_str, find_header, Header, Headers, HttpMessage, HttpRequest, HttpResponse, HttpVersion};
