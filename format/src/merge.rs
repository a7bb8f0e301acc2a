//! Merging traces from several sources into one, ordered by time.
//!
//! Every input keeps its records; they are shifted onto the earliest
//! input's wall-clock anchor, and their `src` is renumbered into the merged
//! header's source list, so each record still says where it came from.
//! Connection and invocation ids stay as they were: they are unique per
//! source, and `(src, conn)` names a connection in the merged trace.
//!
//! Recorders write records in nearly, not exactly, time order (a message is
//! written when it completes, stamped with its first byte). The merge is a
//! k-way merge behind a reorder window: a record is emitted once every
//! input has moved `window_ns` past it, so the output is sorted whenever no
//! input is more than the window out of order, in memory bounded by the
//! records inside the window. Records later than that are still written,
//! and counted as late.

use crate::error::FormatError;
use crate::header::Header;
use crate::reader::{Damage, Reader};
use crate::record::Record;
use crate::writer::Writer;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{Read, Write};

/// The default reorder window: 5 seconds.
pub const DEFAULT_WINDOW_NS: u64 = 5_000_000_000;

/// The header of the merge of `headers`: the earliest anchor, and every
/// input's sources in input order. Also returns, per input, the shift to
/// add to its `ts` and the offset to add to its `src`.
pub fn merged_header(tool: &str, headers: &[&Header]) -> (Header, Vec<(u64, u16)>) {
    let anchor = headers.iter().map(|h| h.anchor_unix_ns).min().unwrap_or(0);
    let mut sources = Vec::new();
    let mut plan = Vec::new();
    for h in headers {
        plan.push((h.anchor_unix_ns - anchor, sources.len() as u16));
        for s in &h.sources {
            sources.push(s.clone());
        }
    }
    let mut header = Header::new(tool, "merged");
    header.anchor_unix_ns = anchor;
    header.sources = sources;
    header.meta.insert("merged_from".into(), headers.len().to_string());
    if let Some(routes) = merged_routes(headers) {
        header.meta.insert("routes".into(), routes);
    }
    header.redaction = merged_redaction(headers);
    (header, plan)
}

/// The inputs' `routes` (see [`Header::routes`]), each once, where no two
/// inputs give one route name different upstreams or options: olreplay
/// meets a recorded TLS upstream in TLS again by them. Where two do, the
/// route names no longer say which was meant, and none is kept.
fn merged_routes(headers: &[&Header]) -> Option<String> {
    let mut by_name: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    for h in headers {
        for route in h.meta.get("routes").map(|r| r.split_whitespace()).into_iter().flatten() {
            let name = route.split_once('=').map_or(route, |(n, _)| n);
            if *by_name.entry(name).or_insert(route) != route {
                return None;
            }
        }
    }
    (!by_name.is_empty()).then(|| by_name.into_values().collect::<Vec<_>>().join(" "))
}

/// What the merged records can be said to have blanked: what every input
/// blanked. `None` (not known) where an input does not say.
fn merged_redaction(headers: &[&Header]) -> Option<crate::Redaction> {
    let all: Vec<&crate::Redaction> = headers.iter().map(|h| h.redaction.as_ref()).collect::<Option<_>>()?;
    let (first, rest) = all.split_first()?;
    let mut merged = (*first).clone();
    for r in rest {
        merged.enabled &= r.enabled;
        merged.rules_version = merged.rules_version.min(r.rules_version);
        merged.fields.retain(|f| r.fields.contains(f));
        merged.headers.retain(|f| r.headers.contains(f));
        for (mine, theirs) in [(&mut merged.kept, &r.kept), (&mut merged.by, &r.by)] {
            for x in theirs {
                if !mine.contains(x) {
                    mine.push(x.clone());
                }
            }
        }
    }
    Some(merged)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeStats {
    pub records: u64,
    /// Records written after a record with a later `ts` (more than the
    /// window out of order in their input).
    pub late: u64,
    pub damaged: u64,
}

struct Pending {
    /// The record's `ts`, kept inline: the heap compares entries as it
    /// sifts, and moves them, and a record is large (so it is boxed).
    ts: u64,
    record: Box<Record>,
    input: usize,
    seq: u64,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, self.input, self.seq).cmp(&(other.ts, other.input, other.seq))
    }
}

/// The records of several inputs, in time order behind a reorder window
/// (see the module doc); damaged stretches come as `Err((input, damage))`
/// where they are met, and reading goes on.
pub struct Merged<R: Read> {
    inputs: Vec<Option<Reader<R>>>,
    plan: Vec<(u64, u16)>,
    window_ns: u64,
    watermark: Vec<u64>,
    heap: BinaryHeap<Reverse<Pending>>,
    stats: MergeStats,
    seq: u64,
    last_out: u64,
}

impl<R: Read> Merged<R> {
    /// Merges `inputs`, shifted and renumbered by `plan` (from
    /// [`merged_header`]).
    pub fn new(inputs: Vec<Reader<R>>, plan: &[(u64, u16)], window_ns: u64) -> Merged<R> {
        let n = inputs.len();
        Merged {
            inputs: inputs.into_iter().map(Some).collect(),
            plan: plan.to_vec(),
            window_ns,
            watermark: vec![0; n],
            heap: BinaryHeap::new(),
            stats: MergeStats::default(),
            seq: 0,
            last_out: 0,
        }
    }

    /// What was emitted so far.
    pub fn stats(&self) -> MergeStats {
        self.stats
    }

    fn pop_final(&mut self, horizon: Option<u64>) -> Option<Record> {
        let Reverse(top) = self.heap.peek()?;
        if horizon.is_some_and(|h| top.ts > h) {
            return None;
        }
        let Reverse(p) = self.heap.pop().expect("peeked");
        if p.record.ts < self.last_out {
            self.stats.late += 1;
        }
        self.last_out = self.last_out.max(p.record.ts);
        self.stats.records += 1;
        Some(*p.record)
    }
}

impl<R: Read> Merged<R> {
    /// The next record (as [`Iterator::next`]) over `record`: with one
    /// input and no reorder window it is decoded in place, reusing
    /// `record`'s allocations (see [`Reader::next_into`]); otherwise the
    /// merged record is moved in. On damage or at the end `record` holds
    /// unspecified contents.
    pub fn next_into(&mut self, record: &mut Record) -> Option<Result<(), (usize, Damage)>> {
        let one = self.window_ns == 0 && self.heap.is_empty() && self.inputs.len() == 1;
        let Some(reader) = self.inputs.first_mut().and_then(|r| r.as_mut()).filter(|_| one) else {
            return Some(self.next()?.map(|r| *record = r));
        };
        match reader.next_into(record) {
            None => {
                self.inputs[0] = None;
                None
            }
            Some(Err(d)) => {
                self.stats.damaged += 1;
                Some(Err((0, d)))
            }
            Some(Ok(())) => {
                let (shift, src_offset) = self.plan[0];
                record.shift(shift);
                record.src += src_offset;
                self.watermark[0] = self.watermark[0].max(record.ts);
                if record.ts < self.last_out {
                    self.stats.late += 1;
                }
                self.last_out = self.last_out.max(record.ts);
                self.stats.records += 1;
                Some(Ok(()))
            }
        }
    }
}

impl<R: Read> Iterator for Merged<R> {
    type Item = Result<Record, (usize, Damage)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            // Everything older than the slowest live input minus the
            // window is final.
            let horizon = live(&self.inputs).map(|i| self.watermark[i]).min().map(|w| w.saturating_sub(self.window_ns));
            if let Some(record) = self.pop_final(horizon) {
                return Some(Ok(record));
            }
            // Read from the live input that is furthest behind.
            let i = live(&self.inputs).min_by_key(|&i| self.watermark[i])?;
            match self.inputs[i].as_mut().and_then(|r| r.next()) {
                None => {
                    self.inputs[i] = None;
                    if live(&self.inputs).next().is_none() {
                        return self.pop_final(None).map(Ok);
                    }
                }
                Some(Err(d)) => {
                    self.stats.damaged += 1;
                    return Some(Err((i, d)));
                }
                Some(Ok(mut record)) => {
                    let (shift, src_offset) = self.plan[i];
                    record.shift(shift);
                    record.src += src_offset;
                    self.watermark[i] = self.watermark[i].max(record.ts);
                    if self.window_ns == 0 && self.heap.is_empty() && live(&self.inputs).nth(1).is_none() {
                        // One input and no reorder window: the record is
                        // final as it comes (no box, no heap: the common
                        // case of reading one trace).
                        if record.ts < self.last_out {
                            self.stats.late += 1;
                        }
                        self.last_out = self.last_out.max(record.ts);
                        self.stats.records += 1;
                        return Some(Ok(record));
                    }
                    self.seq += 1;
                    self.heap.push(Reverse(Pending { ts: record.ts, record: Box::new(record), input: i, seq: self.seq }));
                }
            }
        }
    }
}

/// The indices of the inputs not yet exhausted.
fn live<R: Read>(inputs: &[Option<Reader<R>>]) -> impl Iterator<Item = usize> + '_ {
    (0..inputs.len()).filter(move |&i| inputs[i].is_some())
}

/// Merges `inputs` into `out` (whose header should come from
/// [`merged_header`] with the same `plan`). `on_damage` hears of each
/// damaged stretch in an input (input index, damage); the merge goes on.
pub fn merge<R: Read, W: Write>(
    inputs: Vec<Reader<R>>,
    plan: &[(u64, u16)],
    window_ns: u64,
    out: &mut Writer<W>,
    mut on_damage: impl FnMut(usize, &Damage),
) -> Result<MergeStats, FormatError> {
    let mut merged = Merged::new(inputs, plan, window_ns);
    for item in merged.by_ref() {
        match item {
            Ok(record) => out.write(&record)?,
            Err((i, d)) => on_damage(i, &d),
        }
    }
    Ok(merged.stats())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_redaction_of_merged_inputs() {
        let mut a = Header::new("oltrace", "w1");
        let mut b = Header::new("oltrace", "w2");
        a.meta.insert("routes".into(), "redis:0=127.0.0.1:6379 rediss:16380=db:6380,upstream-tls=verify-full".into());
        b.meta.insert("routes".into(), "rediss:16380=db:6380,upstream-tls=verify-full postgres:15432=db:5432".into());
        let (merged, _) = merged_header("oltrace merge", &[&a, &b]);
        let names: Vec<String> = merged.routes().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["postgres:15432", "redis:0", "rediss:16380"]);
        // One name, two upstreams: which one a connection went to is lost.
        b.meta.insert("routes".into(), "redis:0=10.0.0.9:6379".into());
        assert!(merged_header("oltrace merge", &[&a, &b]).0.routes().is_empty());

        assert_eq!(merged.redaction, None, "an input that does not say");
        let rules = |fields: &[&str], by: &str| crate::Redaction {
            enabled: true,
            rules_version: 2,
            fields: fields.iter().map(|f| f.to_string()).collect(),
            headers: vec!["authorization".into()],
            kept: vec![],
            by: vec![by.into()],
        };
        a.redaction = Some(rules(&["password", "token"], "oltrace proxy"));
        b.redaction = Some(rules(&["password", "ssn"], "oltrace redact"));
        let r = merged_header("oltrace merge", &[&a, &b]).0.redaction.unwrap();
        assert_eq!((r.enabled, r.fields, r.by), (true, vec!["password".to_string()], vec!["oltrace proxy".to_string(), "oltrace redact".to_string()]));
        b.redaction = Some(crate::Redaction { enabled: false, ..crate::Redaction::default() });
        assert!(!merged_header("oltrace merge", &[&a, &b]).0.redaction.unwrap().enabled);
    }
    use crate::record::{Body, Exchange, ExchangeStatus};
    use crate::{ExchangeSummary, HttpExchange, WriterOptions};

    fn trace(anchor: u64, ts: u64) -> Vec<u8> {
        let mut header = Header::new("test", "w");
        header.anchor_unix_ns = anchor;
        let mut w = Writer::new(Vec::new(), &header, WriterOptions::default()).unwrap();
        let e = Exchange {
            conn: 1,
            request_last: ts + 10,
            response_first: Some(ts + 20),
            response_last: Some(ts + 30),
            request_bytes: 1,
            response_bytes: 1,
            status: ExchangeStatus::Complete,
            summary: ExchangeSummary::Http(HttpExchange::default()),
            attribution: None,
        };
        w.write(&Record { ts, src: 0, body: Body::Exchange(e) }).unwrap();
        w.finish().unwrap()
    }

    /// A later input's records move onto the earlier anchor whole: an
    /// exchange keeps its latency (its inner times move with its `ts`).
    #[test]
    fn shifted_records_keep_their_durations() {
        let (a, b) = (trace(1_000, 5), trace(1_500, 5));
        let readers = vec![Reader::new(&a[..]).unwrap(), Reader::new(&b[..]).unwrap()];
        let headers: Vec<Header> = readers.iter().map(|r| r.header().clone()).collect();
        let (_, plan) = merged_header("test", &headers.iter().collect::<Vec<_>>());
        let out: Vec<Record> = Merged::new(readers, &plan, 0).map(|r| r.unwrap()).collect();
        assert_eq!(out.iter().map(|r| (r.ts, r.src)).collect::<Vec<_>>(), [(5, 0), (505, 1)]);
        for r in &out {
            let Body::Exchange(e) = &r.body else { panic!() };
            assert_eq!((e.request_last - r.ts, e.response_first.unwrap() - r.ts, e.latency(r.ts)), (10, 20, Some(30)));
        }
    }
}
