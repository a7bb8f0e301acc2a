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
//! The same records come from two sources: the per-message events of
//! `Session::feed` (`fill_message`, `fill_exchange`), and the runs of
//! `Session::feed_runs` read in place (`fill_run_command`, `fill_run_reply`,
//! `fill_run_exchange`), which the recorder uses. Both go through the same
//! field setters (`message_fields`, `fill_command`, `fill_reply_message`,
//! `redis_summary`, `fill_exchange_summary`, over `fill.rs`), so they
//! cannot drift apart.
//!
//! Each function sets every field of what it fills (the structs are
//! destructured, so a new field fails to compile until it is handled here):
//! a reused record carries nothing over from the one before.

use crate::fill::{self, set_bytes, set_str, Placement};
use crate::{exchange_status, redact, MAX_ARGS, TEXT_CAP};
use format::{BStr, Decoded, ExchangeSummary, RedisKind};
use wire::redis::{RedisMessage, RedisRun, ReplySummary, RespKind, RespValue};

/// Argument byte strings a shorter command left over, kept for the next
/// longer one (`GET` after `SET` would otherwise free one, and `SET` after
/// `GET` allocate it again).
#[derive(Default)]
pub(crate) struct Spare(Vec<BStr>);

/// Fills `record` with Redis message `m` (whose kind is `r`) of connection
/// `conn`.
pub(crate) fn fill_message(record: &mut format::Record, conn: u64, m: &wire::Message, r: &RedisMessage, redact: bool, spare: &mut Spare) {
    let (data, d, redacted) = message_fields(record, conn, &Placement::of(m), &m.raw.prefix);
    match r {
        RedisMessage::Command(c) => {
            let secret = if redact { c.secret_args() } else { Vec::new() };
            fill_command(data, d, redacted, c.args.iter(), &secret, spare);
        }
        RedisMessage::Reply(f) | RedisMessage::Push(f) => {
            let kind = if matches!(r, RedisMessage::Reply(_)) { RedisKind::Reply } else { RedisKind::Push }.name();
            fill_reply_message(d, kind, &f.value, &m.raw.prefix, spare);
        }
    }
}

/// Fills `record` with command `i` of `run` (a run of commands) of
/// connection `conn`: the record [`fill_message`] makes of the message
/// [`RedisRun::expand`] would give, without building that message.
pub(crate) fn fill_run_command(record: &mut format::Record, conn: u64, run: &RedisRun, i: usize, redact: bool, spare: &mut Spare) {
    let raw = run.message(i);
    let at = run_placement(run, i);
    let (data, d, redacted) = message_fields(record, conn, &at, raw);
    let secret = if redact { run.secret_args(i) } else { Vec::new() };
    fill_command(data, d, redacted, run.args_of(i), &secret, spare);
}

/// Fills `record` with reply `i` of `run` (a run of replies), decoded as
/// `value`: as [`fill_run_command`] does for commands.
pub(crate) fn fill_run_reply(record: &mut format::Record, conn: u64, run: &RedisRun, i: usize, value: &RespValue, spare: &mut Spare) {
    let raw = run.message(i);
    let at = run_placement(run, i);
    let (_, d, _) = message_fields(record, conn, &at, raw);
    fill_reply_message(d, RedisKind::Reply.name(), value, raw, spare);
}

/// Message `i` of `run`: whole (a run holds only messages within the cap).
fn run_placement(run: &RedisRun, i: usize) -> Placement {
    let (start, end) = run.bounds(i);
    Placement {
        ts: run.first_ts_of(i),
        dir: run.dir,
        last_ts: run.last_ts,
        offset: run.offset + start as u64,
        len: (end - start) as u64,
        hash: None,
    }
}

/// Sets the fields every Redis message record has, and hands back the
/// ones that depend on its kind: the recorded bytes, the decoded summary
/// and the redacted flag.
fn message_fields<'r>(
    record: &'r mut format::Record,
    conn: u64,
    at: &Placement,
    raw: &[u8],
) -> (&'r mut BStr, &'r mut format::RedisMessage, &'r mut bool) {
    let (data, decoded, redacted) = fill::message_fields(record, conn, at, raw);
    if !matches!(decoded, Some(Decoded::Redis(_))) {
        *decoded = Some(Decoded::Redis(format::RedisMessage::default()));
    }
    let Some(Decoded::Redis(d)) = decoded else { unreachable!("set just above") };
    (data, d, redacted)
}

/// A command's decoded summary; with `secret` (argument indices, name = 0)
/// not empty, also blanks those arguments in the recorded bytes `data`.
fn fill_command<'a>(
    data: &mut BStr,
    d: &mut format::RedisMessage,
    redacted: &mut bool,
    args: impl Iterator<Item = &'a [u8]>,
    secret: &[usize],
    spare: &mut Spare,
) {
    let format::RedisMessage { kind, args: d_args, reply } = d;
    set_str(kind, RedisKind::Command.name());
    set_args(d_args, args.take(MAX_ARGS), spare);
    *reply = None;
    *redacted = !secret.is_empty();
    if *redacted {
        redact::redis_command(&mut data.0, secret);
        blank_args(d_args, secret, 0);
    }
}

/// A reply's (or push's: `kind`) decoded summary; `raw` is its frame.
fn fill_reply_message(d: &mut format::RedisMessage, kind: &str, value: &RespValue, raw: &[u8], spare: &mut Spare) {
    let format::RedisMessage { kind: d_kind, args, reply } = d;
    set_str(d_kind, kind);
    set_args(args, std::iter::empty(), spare);
    fill_reply(reply.get_or_insert_with(Default::default), value, Some(raw));
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
    let status = exchange_status(e.status);
    let s = redis_summary(fill::exchange_fields(record, conn, e.timings, e.request_bytes, e.response_bytes, status));
    let secret = if redact { r.args.secret_args() } else { Vec::new() };
    fill_exchange_summary(s, &r.command, r.args.iter(), &secret, r.reply.as_ref(), r.value.as_ref(), spare);
}

/// Fills `record` with the exchange that reply `i` of `replies` completes,
/// decoded as `value`: the answer to command `j` of `commands`. As
/// [`fill_run_command`], for exchanges.
#[allow(clippy::too_many_arguments)] // the run, reply and command say which exchange
pub(crate) fn fill_run_exchange(
    record: &mut format::Record,
    conn: u64,
    (replies, i): (&RedisRun, usize),
    (commands, j): (&RedisRun, usize),
    value: &RespValue,
    redact: bool,
    spare: &mut Spare,
) {
    let (command, reply) = (commands.message(j), replies.message(i));
    let timings = wire::Timings {
        request_first: commands.first_ts_of(j),
        request_last: commands.last_ts,
        response_first: Some(replies.first_ts_of(i)),
        response_last: Some(replies.last_ts),
    };
    let status = format::ExchangeStatus::Complete;
    let s = redis_summary(fill::exchange_fields(record, conn, timings, command.len() as u64, reply.len() as u64, status));
    let name = commands.args_of(j).next().unwrap_or_default();
    let secret = if redact { commands.secret_args(j) } else { Vec::new() };
    let summary = wire::redis::reply_summary(reply, value);
    fill_exchange_summary(s, name, commands.args_of(j), &secret, Some(&summary), Some(value), spare);
}

/// An exchange record's summary, made a Redis one if it is not.
fn redis_summary(summary: &mut ExchangeSummary) -> &mut format::RedisExchange {
    if !matches!(summary, ExchangeSummary::Redis(_)) {
        *summary = ExchangeSummary::Redis(format::RedisExchange::default());
    }
    let ExchangeSummary::Redis(s) = summary else { unreachable!("set just above") };
    s
}

/// An exchange's summary: the command `name` in upper case, the arguments
/// after it (`args` is all of them, name first) with those at `secret`
/// blanked, and the first reply's `summary` (with its decoded `value`, when
/// kept).
fn fill_exchange_summary<'a>(
    s: &mut format::RedisExchange,
    name: &[u8],
    args: impl Iterator<Item = &'a [u8]>,
    secret: &[usize],
    summary: Option<&ReplySummary>,
    value: Option<&RespValue>,
    spare: &mut Spare,
) {
    let format::RedisExchange { command, args: s_args, reply } = s;
    // Upper-cased after the lossy conversion, which leaves ASCII as it is:
    // the same text as upper-casing the bytes first, without a copy.
    set_str(command, &String::from_utf8_lossy(name));
    command.make_ascii_uppercase();
    set_args(s_args, args.skip(1).take(MAX_ARGS - 1), spare);
    blank_args(s_args, secret, 1);
    let Some(summary) = summary else {
        *reply = None;
        return;
    };
    let reply = reply.get_or_insert_with(Default::default);
    match value {
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

/// The RESP type of [`format::RedisReply::kind`].
fn kind_name(k: RespKind) -> &'static str {
    use format::ReplyType as T;
    let t = match k {
        RespKind::Simple => T::Simple,
        RespKind::Error | RespKind::BulkError => T::Error,
        RespKind::Integer => T::Integer,
        RespKind::Bulk => T::Bulk,
        RespKind::NullBulk | RespKind::NullArray | RespKind::Null => T::Null,
        RespKind::Array => T::Array,
        RespKind::Map => T::Map,
        RespKind::Set => T::Set,
        RespKind::Push => T::Push,
        RespKind::Boolean => T::Bool,
        RespKind::Double => T::Double,
        RespKind::BigNumber => T::BigNumber,
        RespKind::Verbatim => T::Verbatim,
        // Looked through before naming; kept total for safety.
        RespKind::Attribute => T::Attribute,
    };
    t.name()
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
