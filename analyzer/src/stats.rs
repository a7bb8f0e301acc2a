//! Small accumulators: latency histograms, a sampled set, the count of
//! invocations in flight.

use crate::report::{Bucket, Percentiles};
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

    /// The histogram in log-spaced buckets, twelve a decade at the E12
    /// series (1, 1.2, 1.5, 1.8, 2.2, 2.7, 3.3, 3.9, 4.7, 5.6, 6.8, 8.2
    /// times a power of ten: round bounds that read well, each about 21%
    /// above the one before), from the first bucket with a count to the
    /// last, bounds divided by `scale`. Counts add up to the values
    /// recorded.
    pub fn buckets(&self, scale: f64) -> Vec<Bucket> {
        let mut counts: BTreeMap<(u32, usize), u64> = BTreeMap::new();
        for v in self.h.iter_recorded() {
            let at = e12_bucket(self.h.median_equivalent(v.value_iterated_to()));
            *counts.entry(at).or_default() += u64::from(v.count_at_value());
        }
        let (Some(&first), Some(&last)) = (counts.keys().next(), counts.keys().next_back()) else { return Vec::new() };
        let mut out = Vec::new();
        let mut at = first;
        loop {
            let next = if at.1 + 1 == E12.len() { (at.0 + 1, 0) } else { (at.0, at.1 + 1) };
            out.push(Bucket {
                from: e12_bound(at) / scale,
                to: e12_bound(next) / scale,
                count: counts.get(&at).copied().unwrap_or(0),
            });
            if at == last {
                return out;
            }
            at = next;
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

/// The E12 series, times ten.
const E12: [u64; 12] = [10, 12, 15, 18, 22, 27, 33, 39, 47, 56, 68, 82];

/// The E12 bucket of `v` (at least 1): (power of ten, index in [`E12`]).
fn e12_bucket(v: u64) -> (u32, usize) {
    let v = v.max(1) as u128;
    let mut decade = 0;
    while 10u128.pow(decade + 1) <= v {
        decade += 1;
    }
    // v * 10 against the bounds times ten, in integers.
    let i = E12.iter().rposition(|&m| v * 10 >= m as u128 * 10u128.pow(decade)).unwrap_or(0);
    (decade, i)
}

/// A bucket's lower bound.
fn e12_bound((decade, i): (u32, usize)) -> f64 {
    E12[i] as f64 * 10f64.powi(decade as i32) / 10.0
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e12_buckets() {
        assert_eq!(e12_bucket(0), (0, 0));
        assert_eq!(e12_bucket(1), (0, 0));
        assert_eq!(e12_bucket(2), (0, 3));
        assert_eq!(e12_bucket(9), (0, 11));
        assert_eq!(e12_bucket(10), (1, 0));
        assert_eq!(e12_bucket(11), (1, 0));
        assert_eq!(e12_bucket(12), (1, 1));
        assert_eq!(e12_bucket(6_799), (3, 9));
        assert_eq!(e12_bucket(6_800), (3, 10));
        assert_eq!(e12_bucket(u64::MAX), (19, 3));
        assert_eq!(e12_bound((3, 10)), 6_800.0);
    }

    #[test]
    fn buckets_hold_every_value() {
        let mut h = Hist::default();
        for v in [1_000, 1_100, 1_600, 2_000, 4_000, 4_000, 4_000] {
            h.record(v);
        }
        let b = h.buckets(1e3);
        // 1 to 1.2 ms: two; 1.5 to 1.8: one; 1.8 to 2.2: one; empty up to
        // 3.9 to 4.7: three.
        let shown: Vec<(f64, f64, u64)> = b.iter().map(|b| (b.from, b.to, b.count)).collect();
        assert_eq!(shown, [(1.0, 1.2, 2), (1.2, 1.5, 0), (1.5, 1.8, 1), (1.8, 2.2, 1), (2.2, 2.7, 0), (2.7, 3.3, 0), (3.3, 3.9, 0), (3.9, 4.7, 3)]);
        assert!(Hist::default().buckets(1.0).is_empty());
    }
}
