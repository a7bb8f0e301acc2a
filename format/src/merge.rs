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
    (header, plan)
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
    record: Record,
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
        (self.record.ts, self.input, self.seq).cmp(&(other.record.ts, other.input, other.seq))
    }
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
    let mut inputs: Vec<Option<Reader<R>>> = inputs.into_iter().map(Some).collect();
    let mut watermark = vec![0u64; inputs.len()];
    let mut heap = BinaryHeap::new();
    let mut stats = MergeStats::default();
    let mut seq = 0u64;
    let mut last_out = 0u64;
    loop {
        // Read from the live input that is furthest behind.
        let behind = (0..inputs.len()).filter(|&i| inputs[i].is_some()).min_by_key(|&i| watermark[i]);
        if let Some(i) = behind {
            match inputs[i].as_mut().and_then(|r| r.next()) {
                None => inputs[i] = None,
                Some(Err(d)) => {
                    stats.damaged += 1;
                    on_damage(i, &d);
                }
                Some(Ok(mut record)) => {
                    let (shift, src_offset) = plan[i];
                    record.ts += shift;
                    record.src += src_offset;
                    watermark[i] = watermark[i].max(record.ts);
                    seq += 1;
                    heap.push(Reverse(Pending { record, input: i, seq }));
                }
            }
        }
        // Everything older than the slowest live input minus the window is
        // final.
        let horizon = (0..inputs.len())
            .filter(|&i| inputs[i].is_some())
            .map(|i| watermark[i])
            .min()
            .map(|w| w.saturating_sub(window_ns));
        while let Some(Reverse(top)) = heap.peek() {
            if horizon.is_some_and(|h| top.record.ts > h) {
                break;
            }
            let Reverse(p) = heap.pop().expect("peeked");
            if p.record.ts < last_out {
                stats.late += 1;
            }
            last_out = last_out.max(p.record.ts);
            out.write(&p.record)?;
            stats.records += 1;
        }
        if behind.is_none() && heap.is_empty() {
            return Ok(stats);
        }
    }
}
