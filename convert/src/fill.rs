//! Writing a record's fields over a record that may hold an earlier
//! conversion's values, reusing their allocations: the parts every message
//! and every exchange record have, and the setters that overwrite a string
//! in place. The PostgreSQL, Redis and HTTP conversions (`pg.rs`,
//! `redis.rs`, `http.rs`) fill the rest.
//!
//! Each function sets every field of what it fills (the structs are
//! destructured, so a new field fails to compile until it is handled here).

use format::{BStr, Body, Decoded, ExchangeSummary};

/// Where a message sits in its stream, and its size as the decoder saw it.
pub(crate) struct Placement {
    pub ts: u64,
    pub dir: wire::Direction,
    pub last_ts: u64,
    pub offset: u64,
    pub len: u64,
    pub hash: Option<u64>,
}

impl Placement {
    /// Where message `m` sits.
    pub fn of(m: &wire::Message) -> Placement {
        Placement { ts: m.first_ts, dir: m.dir, last_ts: m.last_ts, offset: m.offset, len: m.raw.len, hash: m.raw.hash }
    }
}

/// Sets the fields every message record has (`raw` as its recorded bytes),
/// and hands back the ones that depend on its kind: the recorded bytes (to
/// redact), the decoded summary and the redacted flag (cleared).
#[inline]
pub(crate) fn message_fields<'r>(
    record: &'r mut format::Record,
    conn: u64,
    at: &Placement,
    raw: &[u8],
) -> (&'r mut BStr, &'r mut Option<Decoded>, &'r mut bool) {
    record.ts = at.ts;
    record.src = 0;
    if !matches!(record.body, Body::Message(_)) {
        record.body = Body::Message(<format::Message as format::codec::Codec>::empty());
    }
    let Body::Message(msg) = &mut record.body else { unreachable!("set just above") };
    let format::Message { conn: msg_conn, dir, last_ts, offset, data, decoded, redacted } = msg;
    *msg_conn = conn;
    *dir = at.dir;
    *last_ts = at.last_ts;
    *offset = at.offset;
    *redacted = false;
    set_bytes(&mut data.bytes, raw);
    data.len = at.len;
    data.hash = at.hash;
    (&mut data.bytes, decoded, redacted)
}

/// Sets the fields every exchange record has, and hands back its summary
/// (whatever it held before: the caller sets it).
#[inline]
pub(crate) fn exchange_fields(
    record: &mut format::Record,
    conn: u64,
    timings: wire::Timings,
    req_bytes: u64,
    resp_bytes: u64,
    exchange_status: format::ExchangeStatus,
) -> &mut ExchangeSummary {
    record.ts = timings.request_first;
    record.src = 0;
    if !matches!(record.body, Body::Exchange(_)) {
        record.body = Body::Exchange(<format::Exchange as format::codec::Codec>::empty());
    }
    let Body::Exchange(x) = &mut record.body else { unreachable!("set just above") };
    let format::Exchange {
        conn: x_conn,
        request_last,
        response_first,
        response_last,
        request_bytes,
        response_bytes,
        status,
        summary,
        attribution,
    } = x;
    *x_conn = conn;
    *request_last = timings.request_last;
    *response_first = timings.response_first;
    *response_last = timings.response_last;
    *request_bytes = req_bytes;
    *response_bytes = resp_bytes;
    *status = exchange_status;
    *attribution = None;
    summary
}

pub(crate) fn set_str(dst: &mut String, s: &str) {
    dst.clear();
    dst.push_str(s);
}

/// `b` as text (lossy for non-UTF-8) over `dst`.
pub(crate) fn set_lossy(dst: &mut String, b: &[u8]) {
    // Most text is valid UTF-8, which `from_utf8` checks a word at a time
    // where `from_utf8_lossy` goes byte by byte.
    match std::str::from_utf8(b) {
        Ok(s) => set_str(dst, s),
        Err(_) => set_str(dst, &String::from_utf8_lossy(b)),
    }
}

/// [`set_lossy`] for an optional value.
pub(crate) fn set_opt_lossy(dst: &mut Option<String>, b: Option<&[u8]>) {
    match (b, dst.as_mut()) {
        (None, _) => *dst = None,
        (Some(b), Some(d)) => set_lossy(d, b),
        (Some(b), None) => *dst = Some(String::from_utf8_lossy(b).into_owned()),
    }
}

pub(crate) fn set_bytes(dst: &mut BStr, b: &[u8]) {
    dst.0.clear();
    dst.0.extend_from_slice(b);
}
