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
/// `conn`. What `rules` say is secret (header values, a password in the
/// target, query parameters, form and JSON body fields) is blanked in what
/// is recorded: the bytes and the decoded target.
pub(crate) fn fill_message(record: &mut format::Record, conn: u64, m: &wire::Message, h: &HttpMessage, rules: &redact::Rules) {
    let (data, decoded, redacted) = fill::message_fields(record, conn, &Placement::of(m), &m.raw.prefix);
    let minor = |v: HttpVersion| match v {
        HttpVersion::Http10 => 0,
        HttpVersion::Http11 => 1,
    };
    let content_type = h.header("content-type");
    let mut target_secret = false;
    match h {
        HttpMessage::Request(r) => {
            if !matches!(decoded, Some(Decoded::HttpRequest(_))) {
                *decoded = Some(Decoded::HttpRequest(format::HttpRequest::default()));
            }
            let Some(Decoded::HttpRequest(d)) = decoded else { unreachable!("set just above") };
            let format::HttpRequest { method, target, version, content_type: d_type, body_len, chunked } = d;
            set_lossy(method, &r.method);
            target_secret = set_target(target, r.target(), rules);
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
    if !rules.enabled() {
        return;
    }
    // The decoder has split the head into fields already: a head with no
    // secret field and no secret in its target (most of them) need not
    // be read again line by line.
    let secret_field = || h.headers().iter().any(|(name, _)| rules.is_secret_header(name));
    let head = (target_secret || secret_field()) && redact::http_head_with(rules, &mut data.0);
    // Only form and JSON bodies are read, and only when some was kept.
    let body = match content_type.and_then(redact::body_kind) {
        Some(kind) if h.body().len > 0 => redact::http_body(rules, &mut data.0, h.request().is_some(), kind),
        _ => false,
    };
    *redacted = head || body;
}

/// Fills `record` with HTTP exchange `e` (whose detail is `h`) of
/// connection `conn`.
pub(crate) fn fill_exchange(record: &mut format::Record, conn: u64, e: &wire::Exchange, h: &wire::http::HttpExchange, rules: &redact::Rules) {
    let summary =
        fill::exchange_fields(record, conn, e.timings, e.request_bytes, e.response_bytes, exchange_status(e.status));
    if !matches!(summary, ExchangeSummary::Http(_)) {
        *summary = ExchangeSummary::Http(format::HttpExchange::default());
    }
    let ExchangeSummary::Http(s) = summary else { unreachable!("set just above") };
    let format::HttpExchange { method, target, host, status, request_body_len, response_body_len } = s;
    set_lossy(method, &h.method);
    set_target(target, h.target(), rules);
    set_opt_lossy(host, h.host());
    *status = h.status;
    *request_body_len = h.request_content_length;
    *response_body_len = h.response_content_length.unwrap_or(0);
}

/// A request target as text over `dst`, with what `rules` say is secret
/// in it blanked ([`redact::target_text_with`]). Returns true when it
/// blanked something.
fn set_target(dst: &mut String, target: &[u8], rules: &redact::Rules) -> bool {
    // A target without `?` and userinfo (most) is copied as it is.
    let secret = rules.enabled() && !redact::target_spans(rules, target).is_empty();
    if secret {
        set_str(dst, &redact::target_text_with(rules, target));
    } else {
        set_lossy(dst, target);
    }
    secret
}
