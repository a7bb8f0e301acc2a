//! Small accumulators: latency histograms, a sampled set, the count of
//! invocations in flight.

use crate::report::Percentiles;
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

/// A histogram of values in a fixed unit, 2 significant digits (about
/// 33 KB each, with counts that saturate at 2^32).
pub struct Hist {
    h: Histogram<u32>,
    /// The exact largest value (the histogram's is its bucket's top).
    max: u64,
}

impl Default for Hist {
    fn default() -> Hist {
        Hist { h: Histogram::new_with_bounds(1, 1 << 40, 2).expect("valid bounds"), max: 0 }
    }
}

impl Hist {
    pub fn record(&mut self, v: u64) {
        self.h.saturating_record(v.max(1));
        self.max = self.max.max(v);
    }

    pub fn quantile(&self, q: f64) -> u64 {
        if self.h.is_empty() {
            0
        } else {
            // Never above the largest value seen (a bucket's top can be).
            self.h.value_at_quantile(q).min(self.max)
        }
    }



    /// Percentiles, each value divided by `scale`.
    pub fn percentiles(&self, scale: f64) -> Percentiles {
        Percentiles {
            mean: if self.h.is_empty() { 0.0 } else { self.h.mean() / scale },
            p50: self.quantile(0.5) as f64 / scale,
            p90: self.quantile(0.9) as f64 / scale,
            p99: self.quantile(0.99) as f64 / scale,
            max: self.max as f64 / scale,
        }
    }
}

/// A set of items kept as 64-bit hashes, at most `cap` of them: past the
/// cap it keeps only hashes whose low `level` bits are zero (a consistent
/// sample: the same items survive in every set at the same level), and
/// raises the level until it fits. Sizes and Jaccard indices are then
/// estimates.
#[derive(Clone, Debug)]
pub struct SampledSet {
    hashes: HashSet<u64>,
    level: u32,
    cap: usize,
}

impl SampledSet {
    pub fn new(cap: usize) -> SampledSet {
        SampledSet { hashes: HashSet::new(), level: 0, cap }
    }

    pub fn hash(item: &str) -> u64 {
        let mut h = DefaultHasher::new();
        item.hash(&mut h);
        h.finish()
    }

    /// [`SampledSet::hash`] of the parts joined, without joining them
    /// (the hasher takes bytes as a stream; a `str` ends with `0xff`).
    pub fn hash_joined<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
        let mut h = DefaultHasher::new();
        for p in parts {
            h.write(p.as_bytes());
        }
        h.write_u8(0xff);
        h.finish()
    }

    pub fn sampled(&self) -> bool {
        self.level > 0
    }

    /// Whether a hash is inside this set's sample.
    pub fn admits(&self, h: u64, level: u32) -> bool {
        h.trailing_zeros() >= level.max(self.level)
    }

    pub fn contains(&self, h: u64) -> bool {
        self.hashes.contains(&h)
    }

    pub fn insert(&mut self, h: u64) {
        if !self.admits(h, 0) {
            return;
        }
        self.hashes.insert(h);
        while self.hashes.len() > self.cap {
            self.level += 1;
            let level = self.level;
            self.hashes.retain(|h| h.trailing_zeros() >= level);
        }
    }

    /// Estimated number of distinct items.
    pub fn estimate(&self) -> u64 {
        (self.hashes.len() as u64) << self.level
    }

    pub fn jaccard(&self, other: &SampledSet) -> f64 {
        let level = self.level.max(other.level);
        let a: HashSet<u64> = self.hashes.iter().copied().filter(|h| h.trailing_zeros() >= level).collect();
        let b: HashSet<u64> = other.hashes.iter().copied().filter(|h| h.trailing_zeros() >= level).collect();
        let union = a.union(&b).count();
        if union == 0 {
            0.0
        } else {
            a.intersection(&b).count() as f64 / union as f64
        }
    }
}

/// Invocations in flight, from their (start, end) in roughly close order:
/// changes older than the horizon the caller gives are final and folded
/// into the running count, so memory is bounded by the invocations within
/// the horizon.
#[derive(Default)]
pub struct Concurrency {
    pending: BTreeMap<u64, i64>,
    level: i64,
    pub max: u64,
}

impl Concurrency {
    pub fn add(&mut self, start: u64, end: u64) {
        *self.pending.entry(start).or_default() += 1;
        *self.pending.entry(end.max(start + 1)).or_default() -= 1;
    }

    /// Folds every change before `horizon`.
    pub fn settle(&mut self, horizon: u64) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() >= horizon {
                break;
            }
            self.level += entry.remove();
            self.max = self.max.max(self.level.max(0) as u64);
        }
    }
}
