//! Comparing a replayed response with the recorded one.
//!
//! Both sides are trace records (the driver decodes what the target
//! answered with the recorder's own codecs), so they are compared like with
//! like, on their real content rather than on the summaries:
//!
//! - [`http`]: the final status, the chosen headers ([`NoiseRules::headers`],
//!   `content-type` by default) and the body: JSON structurally (`body
//!   $.items[2].price`), anything else byte for byte; a body cut by the
//!   recorder's cap is compared by length, by the part both sides kept, and
//!   by hash when the heads are byte-identical.
//! - [`pg`]: per statement, the columns of RowDescription (`column[1]`),
//!   every row value parsed from the DataRow bytes (`row[3].balance`; a
//!   run cut by the cap compares by row count and hash past the kept rows),
//!   the command tags (`tag[0]`) and the error code (`error.code`).
//! - [`redis`]: each reply, type and value, aggregates element by element
//!   (`reply[2]`, `reply[2][0]`).
//! - other protocols: the response bytes (`bytes`).
//!
//! The stored bytes are parsed by `wire`'s at-rest parsers
//! (`wire::redis::parse_reply`, `wire::pg::parse_backend` and
//! `data_rows`, `wire::http::parse_response_head` and `dechunk`): the same
//! code that decoded them in flight, with the same limits.
//!
//! Every difference goes through the [`NoiseRules`] with the raw values
//! (so a `pattern` rule sees `2024-05-01T10:00:00Z`, not its quoted
//! rendering) and the exchange's scope (key, route, lambda) before it is
//! kept; the values kept for people are shortened by [`show`].

use crate::model::{Difference, Replayed, Side};
use crate::noise::{NoiseRules, Scope};

pub mod http;
pub mod json;
pub mod pg;
pub mod redis;

/// Longest value shown in a [`Difference`], in characters.
pub const SHOW_MAX: usize = 120;
/// Most differences kept for one exchange; past it one `more` difference
/// says how many were left out.
pub const MAX_DIFFS: usize = 100;

/// Every difference between `recorded` and `replayed` that `rules` do not
/// call noise. Empty means they match. Rules scoped to a key, route or
/// lambda do not apply here (there is no scope); use [`compare_exchange`].
pub fn compare(protocol: format::Protocol, recorded: &Side, replayed: &Side, rules: &NoiseRules) -> Vec<Difference> {
    compare_scoped(protocol, recorded, replayed, rules, &Scope::default())
}

/// [`compare`] for one replayed exchange, with scoped rules applying. A
/// failed replay (no replayed side) gives no differences: the report
/// counts it as failed.
pub fn compare_exchange(ex: &Replayed, rules: &NoiseRules) -> Vec<Difference> {
    match &ex.replayed {
        Ok(side) => compare_scoped(ex.protocol, &ex.recorded, side, rules, &Scope::of(ex)),
        Err(_) => Vec::new(),
    }
}

/// [`compare`] with the scope scoped rules match on.
pub fn compare_scoped(protocol: format::Protocol, recorded: &Side, replayed: &Side, rules: &NoiseRules, scope: &Scope) -> Vec<Difference> {
    let mut sink = Sink { rules, scope, diffs: Vec::new(), dropped: 0 };
    if recorded.status != replayed.status {
        sink.push("exchange.status".into(), &status_name(recorded.status), &status_name(replayed.status));
    }
    match protocol {
        format::Protocol::Http => http::compare(&recorded.responses, &replayed.responses, &mut sink),
        format::Protocol::Postgres => pg::compare(&recorded.responses, &replayed.responses, &mut sink),
        format::Protocol::Redis => redis::compare(&recorded.responses, &replayed.responses, &mut sink),
        format::Protocol::Tcp | format::Protocol::Mysql => compare_bytes("bytes", &recorded.responses, &replayed.responses, &mut sink),
    }
    let mut diffs = sink.diffs;
    if sink.dropped > 0 {
        diffs.push(Difference { field: "more".into(), recorded: String::new(), replayed: format!("{} more differences not listed", sink.dropped) });
    }
    diffs
}

/// Where comparators put differences: filters noise, shortens values,
/// caps the count.
pub struct Sink<'a> {
    rules: &'a NoiseRules,
    scope: &'a Scope<'a>,
    diffs: Vec<Difference>,
    dropped: usize,
}

impl Sink<'_> {
    /// A difference at `field` between raw values; `recorded`/`replayed`
    /// are what noise patterns match and what is shown (shortened).
    pub fn push(&mut self, field: String, recorded: &str, replayed: &str) {
        self.push_shown(field, recorded, replayed, show(recorded), show(replayed));
    }

    /// A difference whose shown values differ from the raw ones (quoted
    /// JSON strings, Redis types).
    pub fn push_shown(&mut self, field: String, raw_rec: &str, raw_rep: &str, recorded: String, replayed: String) {
        if self.rules.is_noise_raw(&field, raw_rec, raw_rep, self.scope) {
            return;
        }
        if self.diffs.len() >= MAX_DIFFS {
            self.dropped += 1;
            return;
        }
        self.diffs.push(Difference { field, recorded, replayed });
    }

    /// The headers to compare (lower case).
    pub fn headers(&self) -> &[String] {
        self.rules.headers()
    }
}

/// `s`, cut to [`SHOW_MAX`] characters with the full length said.
pub fn show(s: &str) -> String {
    match s.char_indices().nth(SHOW_MAX) {
        None => s.to_owned(),
        Some((end, _)) => format!("{}… ({} bytes)", &s[..end], s.len()),
    }
}

/// Bytes as text for people: UTF-8 as is, other bytes escaped.
pub fn bytes_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => format::bytes::escape(b),
    }
}

fn status_name(s: format::ExchangeStatus) -> String {
    match s {
        format::ExchangeStatus::Complete => "complete".into(),
        format::ExchangeStatus::Unanswered => "unanswered".into(),
        format::ExchangeStatus::NoReply => "no reply".into(),
    }
}

/// The server's bytes of `msgs`, whether any was cut, the full length, and
/// the hashes of the cut ones.
struct Joined {
    bytes: Vec<u8>,
    cut: bool,
    len: u64,
    hashes: Vec<Option<u64>>,
}

fn join(msgs: &[format::Message]) -> Joined {
    let mut j = Joined { bytes: Vec::new(), cut: false, len: 0, hashes: Vec::new() };
    for m in msgs.iter().filter(|m| m.dir == format::Direction::ToClient) {
        j.bytes.extend_from_slice(&m.data.bytes.0);
        j.cut |= (m.data.bytes.0.len() as u64) < m.data.len;
        j.len += m.data.len;
        j.hashes.push(m.data.hash);
    }
    j
}

/// Opaque responses: byte for byte, or by length and hash when cut.
fn compare_bytes(field: &str, rec: &[format::Message], rep: &[format::Message], sink: &mut Sink) {
    let (a, b) = (join(rec), join(rep));
    bytes_difference(field, &a.bytes, a.len, a.cut, &b.bytes, b.len, b.cut, Some(a.hashes == b.hashes), sink);
}

/// The one difference between two byte strings, each maybe a prefix of a
/// longer whole of `len` bytes: where they first differ, else the lengths,
/// else (when both were cut at the same place) whether the hashes of the
/// wholes agree: `same_hash` is `None` when they cannot be compared.
#[allow(clippy::too_many_arguments)]
pub(crate) fn bytes_difference(field: &str, a: &[u8], a_len: u64, a_cut: bool, b: &[u8], b_len: u64, b_cut: bool, same_hash: Option<bool>, sink: &mut Sink) {
    let n = a.len().min(b.len());
    if let Some(at) = (0..n).find(|&i| a[i] != b[i]) {
        let from = at.saturating_sub(16);
        // Escaped (`\r\n`, `\xNN`) so the excerpt stays on one line.
        let (ra, rb) = (format::bytes::escape(&a[from..(at + 64).min(a.len())]), format::bytes::escape(&b[from..(at + 64).min(b.len())]));
        let raw_a = bytes_text(a);
        let raw_b = bytes_text(b);
        sink.push_shown(field.to_owned(), &raw_a, &raw_b, format!("at byte {at}: {}", show(&ra)), format!("at byte {at}: {}", show(&rb)));
        return;
    }
    if a_len != b_len {
        sink.push(format!("{field}.len"), &a_len.to_string(), &b_len.to_string());
        return;
    }
    if a_cut || b_cut {
        if a_cut && b_cut && a.len() == b.len() && same_hash == Some(false) {
            sink.push_shown(field.to_owned(), "", "", format!("{a_len} bytes (past byte {}: hash)", a.len()), "differs".into());
        }
        return;
    }
    if a.len() != b.len() {
        sink.push(format!("{field}.len"), &a.len().to_string(), &b.len().to_string());
    }
}
