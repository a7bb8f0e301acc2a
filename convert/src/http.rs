//! HTTP messages and exchanges to records, written over a record that may
//! already hold an earlier conversion's values, reusing their allocations
//! (as `redis.rs` does for Redis): built fresh, a keep-alive exchange's
//! three records cost about eight allocations and frees.
//!
//! Each function sets every field of what it fills (the structs are
//! destructured, so a new field fails to compile until it is handled here):
//! a reused record carries nothing over from the one before.

use crate::fill::{self, set_lossy, set_opt_lossy, set_str, Placement};
use crate::{exchange_status, redact};
use format::{Decoded, ExchangeSummary};
use wire::http::{HttpMessage, HttpVersion};

/// Fills `record` with HTTP message `m` (whose kind is `h`) of connection
/// `conn`. With `redact`, secret header values and a password in the
/// target are blanked in what is recorded.
pub(crate) fn fill_message(record: &mut format::Record, conn: u64, m: &wire::Message, h: &HttpMessage, redact: bool) {
    let (data, decoded, redacted) = fill::message_fields(record, conn, &Placement::of(m), &m.raw.prefix);
    let minor = |v: HttpVersion| match v {
        HttpVersion::Http10 => 0,
        HttpVersion::Http11 => 1,
    };
    let content_type = h.header("content-type");
    let mut password = false;
    match h {
        HttpMessage::Request(r) => {
            if !matches!(decoded, Some(Decoded::HttpRequest(_))) {
                *decoded = Some(Decoded::HttpRequest(format::HttpRequest::default()));
            }
            let Some(Decoded::HttpRequest(d)) = decoded else { unreachable!("set just above") };
            let format::HttpRequest { method, target, version, content_type: d_type, body_len, chunked } = d;
            set_lossy(method, &r.method);
            password = set_target(target, r.target(), redact);
            *version = minor(r.version);
            set_opt_lossy(d_type, content_type);
            *body_len = r.body.len;
            *chunked = r.chunked;
        }
        HttpMessage::Response(r) => {
            if !matches!(decoded, Some(Decoded::HttpResponse(_))) {
                *decoded = Some(Decoded::HttpResponse(format::HttpResponse::default()));
            }
            let Some(Decoded::HttpResponse(d)) = decoded else { unreachable!("set just above") };
            let format::HttpResponse { status, reason, version, content_type: d_type, body_len, chunked } = d;
            *status = r.status;
            set_lossy(reason, &r.reason);
            *version = minor(r.version);
            set_opt_lossy(d_type, content_type);
            *body_len = r.body.len;
            *chunked = r.chunked;
        }
    }
    // The decoder has split the head into fields already: a head with no
    // secret field and no password in its target (most of them) need not
    // be read again line by line.
    let secret_field = || h.headers().iter().any(|(name, _)| redact::is_secret_header(name));
    *redacted = redact && (password || secret_field()) && redact::http_head(&mut data.0);
}

/// Fills `record` with HTTP exchange `e` (whose detail is `h`) of
/// connection `conn`.
pub(crate) fn fill_exchange(record: &mut format::Record, conn: u64, e: &wire::Exchange, h: &wire::http::HttpExchange, redact: bool) {
    let summary =
        fill::exchange_fields(record, conn, e.timings, e.request_bytes, e.response_bytes, exchange_status(e.status));
    if !matches!(summary, ExchangeSummary::Http(_)) {
        *summary = ExchangeSummary::Http(format::HttpExchange::default());
    }
    let ExchangeSummary::Http(s) = summary else { unreachable!("set just above") };
    let format::HttpExchange { method, target, host, status, request_body_len, response_body_len } = s;
    set_lossy(method, &h.method);
    set_target(target, h.target(), redact);
    set_opt_lossy(host, h.host());
    *status = h.status;
    *request_body_len = h.request_content_length;
    *response_body_len = h.response_content_length.unwrap_or(0);
}

/// A request target as text over `dst`; with `redact`, a password in it
/// blanked ([`redact::target_text`]). Returns true when it blanked one.
fn set_target(dst: &mut String, target: &[u8], redact: bool) -> bool {
    let password = redact && redact::target_password(target).is_some();
    if password {
        set_str(dst, &redact::target_text(target));
    } else {
        set_lossy(dst, target);
    }
    password
}
