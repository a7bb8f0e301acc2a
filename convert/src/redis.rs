//! Redis messages and exchanges to records, written over a record that may
//! already hold an earlier conversion's values, reusing their allocations.
//!
//! Every pipelined Redis command becomes three records (command, reply,
//! exchange), each with a few strings and byte strings of its own. Built
//! fresh and dropped after encoding, they made sixteen allocations per
//! command: a fifth of the recorder's CPU on `redis-benchmark -P 16`.
//! [`crate::Converter`] keeps one record of each shape and has these
//! functions overwrite it; the one-off path ([`crate::event_to_records`])
//! calls them on empty records, so there is one conversion either way.
//!
//! Each function sets every field of what it fills (the structs are
//! destructured, so a new field fails to compile until it is handled here):
//! a reused record carries nothing over from the one before.

use crate::{direction, exchange_status, redact, MAX_ARGS, TEXT_CAP};
use format::{BStr, Body, Decoded, ExchangeSummary};
use wire::redis::{RedisMessage, RespKind, RespValue};

/// Argument byte strings a shorter command left over, kept for the next
/// longer one (`GET` after `SET` would otherwise free one, and `SET` after
/// `GET` allocate it again).
#[derive(Default)]
pub(crate) struct Spare(Vec<BStr>);

/// Fills `record` with Redis message `m` (whose kind is `r`) of connection
/// `conn`.
pub(crate) fn fill_message(record: &mut format::Record, conn: u64, m: &wire::Message, r: &RedisMessage, redact: bool, spare: &mut Spare) {
    record.ts = m.first_ts;
    record.src = 0;
    if !matches!(record.body, Body::Message(_)) {
        record.body = Body::Message(<format::Message as format::codec::Codec>::empty());
    }
    let Body::Message(msg) = &mut record.body else { unreachable!("set just above") };
    let format::Message { conn: msg_conn, dir, last_ts, offset, data, decoded, redacted } = msg;
    *msg_conn = conn;
    *dir = direction(m.dir);
    *last_ts = m.last_ts;
    *offset = m.offset;
    set_bytes(&mut data.bytes, &m.raw.prefix);
    data.len = m.raw.len;
    data.hash = m.raw.hash;
    if !matches!(decoded, Some(Decoded::Redis(_))) {
        *decoded = Some(Decoded::Redis(format::RedisMessage::default()));
    }
    let Some(Decoded::Redis(d)) = decoded else { unreachable!("set just above") };
    let format::RedisMessage { kind, args, reply } = d;
    *redacted = false;
    match r {
        RedisMessage::Command(c) => {
            set_str(kind, "command");
            set_args(args, c.args.iter().take(MAX_ARGS), spare);
            *reply = None;
            if redact {
                let secret = c.secret_args();
                if !secret.is_empty() {
                    redact::redis_command(&mut data.bytes.0, c.inline, &secret);
                    blank_args(args, &secret, 0);
                    *redacted = true;
                }
            }
        }
        RedisMessage::Reply(f) | RedisMessage::Push(f) => {
            set_str(kind, if matches!(r, RedisMessage::Reply(_)) { "reply" } else { "push" });
            set_args(args, std::iter::empty(), spare);
            fill_reply(reply.get_or_insert_with(Default::default), &f.value, Some(&m.raw.prefix));
        }
    }
}

/// Fills `record` with Redis exchange `e` (whose detail is `r`) of
/// connection `conn`.
pub(crate) fn fill_exchange(
    record: &mut format::Record,
    conn: u64,
    e: &wire::Exchange,
    r: &wire::redis::RedisExchange,
    redact: bool,
    spare: &mut Spare,
) {
    record.ts = e.timings.request_first;
    record.src = 0;
    if !matches!(&record.body, Body::Exchange(x) if matches!(x.summary, ExchangeSummary::Redis(_))) {
        record.body = Body::Exchange(format::Exchange {
            summary: ExchangeSummary::Redis(format::RedisExchange::default()),
            ..<format::Exchange as format::codec::Codec>::empty()
        });
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
    *request_last = e.timings.request_last;
    *response_first = e.timings.response_first;
    *response_last = e.timings.response_last;
    *request_bytes = e.request_bytes;
    *response_bytes = e.response_bytes;
    *status = exchange_status(e.status);
    *attribution = None;
    let ExchangeSummary::Redis(s) = summary else { unreachable!("set just above") };
    let format::RedisExchange { command, args, reply } = s;
    set_str(command, &String::from_utf8_lossy(&r.command));
    set_args(args, r.args.iter().skip(1).take(MAX_ARGS - 1), spare);
    if redact {
        blank_args(args, &r.args.secret_args(), 1);
    }
    let Some(summary) = &r.reply else {
        *reply = None;
        return;
    };
    let reply = reply.get_or_insert_with(Default::default);
    match &r.value {
        Some(v) => fill_reply(reply, v, None),
        None => {
            let format::RedisReply { kind, text, integer, len } = reply;
            set_str(kind, kind_name(summary.kind));
            (*text, *integer, *len) = (None, None, None);
        }
    }
    if is_aggregate(summary.kind) {
        reply.len = summary.len.or(reply.len);
    }
    if reply.integer.is_none() {
        reply.integer = summary.integer;
    }
    if reply.text.is_none() {
        if let Some(error) = &summary.error {
            set_opt_bytes(&mut reply.text, Some(error));
        }
    }
}

/// The summary of a value. `raw`, when given, is the frame's raw bytes:
/// an aggregate's element count is then read from its header, which stays
/// right when the cap cut the value.
fn fill_reply(reply: &mut format::RedisReply, v: &RespValue, raw: Option<&[u8]>) {
    let format::RedisReply { kind: kind_text, text, integer, len } = reply;
    let top = v.unattributed();
    let kind = top.kind();
    set_str(kind_text, kind_name(kind));
    *integer = None;
    *len = None;
    let mut text_bytes: Option<&[u8]> = None;
    match top {
        RespValue::Integer(n) => *integer = Some(*n),
        RespValue::Boolean(b) => text_bytes = Some(if *b { b"true" } else { b"false" }),
        RespValue::Verbatim(_) => {
            text_bytes = top.verbatim_parts().map(|(_, t)| t).or(top.as_bytes().map(|b| &b[..]));
        }
        RespValue::Array(v) | RespValue::Set(v) | RespValue::Push(v) => *len = Some(v.len() as u64),
        RespValue::Map(m) => *len = Some(m.len() as u64),
        other => text_bytes = other.as_bytes().map(|b| &b[..]),
    }
    set_opt_bytes(text, text_bytes);
    if is_aggregate(kind) && std::ptr::eq(top, v) {
        if let Some(n) = raw.and_then(|raw| header_count(raw, kind.type_byte())) {
            *len = Some(n);
        }
    }
}

/// Replaces the arguments at `indices` (shifted down by `shift`) with stars.
fn blank_args(args: &mut [BStr], indices: &[usize], shift: usize) {
    for &i in indices {
        if let Some(a) = i.checked_sub(shift).and_then(|j| args.get_mut(j)) {
            a.0 = redact::stars(a.0.len());
        }
    }
}

/// The RESP type names of [`format::RedisReply::kind`].
fn kind_name(k: RespKind) -> &'static str {
    match k {
        RespKind::Simple => "simple",
        RespKind::Error | RespKind::BulkError => "error",
        RespKind::Integer => "integer",
        RespKind::Bulk => "bulk",
        RespKind::NullBulk | RespKind::NullArray | RespKind::Null => "null",
        RespKind::Array => "array",
        RespKind::Map => "map",
        RespKind::Set => "set",
        RespKind::Push => "push",
        RespKind::Boolean => "bool",
        RespKind::Double => "double",
        RespKind::BigNumber => "big_number",
        RespKind::Verbatim => "verbatim",
        // Looked through before naming; kept total for safety.
        RespKind::Attribute => "attribute",
    }
}

fn is_aggregate(k: RespKind) -> bool {
    matches!(k, RespKind::Array | RespKind::Map | RespKind::Set | RespKind::Push)
}

/// The count of `<ty>N\r\n` at the start of `raw`.
fn header_count(raw: &[u8], ty: u8) -> Option<u64> {
    if *raw.first()? != ty {
        return None;
    }
    let cr = raw.iter().position(|&b| b == b'\r')?;
    std::str::from_utf8(&raw[1..cr]).ok()?.parse().ok()
}

// ----- overwriting in place -----

fn set_str(dst: &mut String, s: &str) {
    dst.clear();
    dst.push_str(s);
}

fn set_bytes(dst: &mut BStr, b: &[u8]) {
    dst.0.clear();
    dst.0.extend_from_slice(b);
}

/// `b` capped at [`TEXT_CAP`] bytes.
fn set_opt_bytes(dst: &mut Option<BStr>, b: Option<&[u8]>) {
    let Some(b) = b else {
        *dst = None;
        return;
    };
    let b = &b[..b.len().min(TEXT_CAP)];
    match dst {
        Some(d) => set_bytes(d, b),
        None => *dst = Some(BStr(b.to_vec())),
    }
}

/// `args`, each capped at [`TEXT_CAP`] bytes, over `dst`.
fn set_args<'a>(dst: &mut Vec<BStr>, args: impl Iterator<Item = &'a [u8]>, spare: &mut Spare) {
    let mut n = 0;
    for a in args {
        let a = &a[..a.len().min(TEXT_CAP)];
        match dst.get_mut(n) {
            Some(d) => set_bytes(d, a),
            None => {
                let mut d = spare.0.pop().unwrap_or_default();
                set_bytes(&mut d, a);
                dst.push(d);
            }
        }
        n += 1;
    }
    if dst.len() > n && spare.0.len() < MAX_ARGS {
        spare.0.extend(dst.drain(n..));
    }
    dst.truncate(n);
}
