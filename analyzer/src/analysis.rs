//! The accumulator behind [`Analysis`]: fed closed invocations and loose
//! calls, in memory bounded by lambdas, call classes and the capped
//! locality sets, never by the number of records.

use crate::assemble::Closed;
use crate::call::{Call, CallProtocol};
use crate::patterns::{self, Hit};
use crate::report::*;
use crate::session::{SessionAcc, SessionKey};
use crate::stats::{Concurrency, Hist, SampledSet};
use crate::timeline::{breakdown, calls_per_protocol, PARTS};
// foldhash, not SipHash, for the per-call maps (see docs/analysis.md).
use foldhash::HashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Call classes shown; the rest fold into one row.
pub const TOP_CLASSES: usize = 20;
/// Distinct classes kept (each holds a 33 KB histogram); calls of classes
/// past this count go to `(other)`.
pub const MAX_CLASSES: usize = 1_000;
/// Classes counted per lambda (for `diff`).
pub const MAX_CLASSES_PER_LAMBDA: usize = 200;
/// Slowest invocations listed per lambda.
pub const SLOWEST: usize = 5;
/// Items kept exactly per lambda (and per source) before sampling.
pub const MAX_ITEMS: usize = 1 << 16;
/// Objects (tables, prefixes, hosts) kept per lambda and mix rows kept.
pub const MAX_OBJECTS: usize = 1_000;
/// The lambda name of calls tied to no invocation.
pub const NO_LAMBDA: &str = "(none)";

#[derive(Default)]
struct LambdaAcc {
    platform: String,
    invocations: u64,
    failed: u64,
    latency_us: Hist,
    /// Shares in basis points, per part.
    shares: [Hist; 4],
    totals_ns: [f64; 4],
    share_sum: [f64; 4],
    calls: [Hist; 3],
    round_trips: u64,
    bytes_out: u64,
    bytes_in: u64,
    call_errors: u64,
    fan_max: u64,
    fan_mean_sum: f64,
    overlapping: u64,
    slowest: Vec<Slow>,
    by_class: BTreeMap<String, u64>,
    slowest_waterfall: Option<Waterfall>,
    tables: BTreeSet<String>,
    prefixes: BTreeSet<String>,
    hosts: BTreeSet<String>,
    items: Option<SampledSet>,
    hit_rate_sum: f64,
    hit_rate_n: u64,
}

struct ClassAcc {
    protocol: CallProtocol,
    count: u64,
    total_ns: u128,
    sum_sq_s: f64,
    latency_us: Hist,
    max_ns: u64,
    rows: u64,
    bytes: u64,
    errors: u64,
    lambdas: BTreeSet<String>,
}

/// One object's reads, writes and lambdas (some).
type MixAcc = (u64, u64, BTreeSet<String>);

#[derive(Default)]
struct PatternAcc {
    invocations: u64,
    total_ns: u64,
    worst: Option<(u64, u16, u64, Hit)>,
}

/// Builds an [`Analysis`].
#[derive(Default)]
pub struct Analyzer {
    pub analysis: Analysis,
    lambdas: BTreeMap<String, LambdaAcc>,
    classes: HashMap<Arc<str>, ClassAcc>,
    patterns: BTreeMap<(String, &'static str), PatternAcc>,
    /// Kind, then object name.
    mix: BTreeMap<&'static str, BTreeMap<String, MixAcc>>,
    mix_rows: usize,
    /// Items each source (worker) has seen, for the same-worker hit rate.
    by_source: HashMap<u16, SampledSet>,
    concurrency: Concurrency,
    wall_ns: u128,
    calls: u64,
    /// `--invocation`: the one to draw.
    pub waterfall_of: Option<u64>,
    /// `--session-key`: sessions are counted per worker.
    pub session_key: Option<SessionKey>,
    sessions: SessionAcc,
}

impl Analyzer {
    /// Takes one closed invocation.
    pub fn invocation(&mut self, inv: &Closed) {
        let o = &mut self.analysis.overview;
        o.invocations += 1;
        *o.invocations_by_platform.entry(inv.platform.to_string()).or_default() += 1;
        if !inv.answered {
            o.unanswered_invocations += 1;
        }
        self.wall_ns += inv.wall() as u128;
        if self.session_key.is_some() {
            self.sessions.add(inv.session.as_deref(), inv.src);
        }
        self.concurrency.add(inv.start, inv.end);
        let b = breakdown(inv);
        let hits = patterns::find_all(inv, &b);
        let lambda = inv.lambda.to_string();
        let acc = self.lambdas.entry(lambda.clone()).or_default();
        acc.platform = inv.platform.to_string();
        acc.invocations += 1;
        if !inv.answered || inv.status.is_some_and(|s| s >= 500) {
            acc.failed += 1;
        }
        acc.latency_us.record(inv.wall() / 1000);
        // Shares of the wall time (end less start), not of the parts' sum,
        // so a breakdown that lost or doubled time shows in the shares.
        let wall = inv.wall().max(1) as f64;
        for (i, part) in b.parts().iter().enumerate() {
            acc.shares[i].record((10_000.0 * part / wall).round() as u64);
            acc.totals_ns[i] += part;
            acc.share_sum[i] += 100.0 * part / wall;
        }
        for (i, n) in calls_per_protocol(inv).iter().enumerate() {
            // Recorded plus one: the histogram starts at 1.
            acc.calls[i].record(n + 1);
        }
        acc.round_trips += inv.calls.len() as u64;
        acc.fan_max = acc.fan_max.max(b.max_outstanding as u64);
        acc.fan_mean_sum += b.mean_outstanding;
        acc.overlapping += b.overlapping_calls as u64;
        acc.slowest.push(Slow { src: inv.src, invocation: inv.id, ms: inv.wall() as f64 / 1e6, calls: inv.calls.len() as u64 });
        acc.slowest.sort_by(|a, b| b.ms.total_cmp(&a.ms).then(a.invocation.cmp(&b.invocation)));
        acc.slowest.truncate(SLOWEST);
        if acc.slowest_waterfall.as_ref().is_none_or(|w| inv.wall() as f64 / 1e6 > w.wall_ms) {
            acc.slowest_waterfall = Some(waterfall(inv));
        }
        // Locality: this invocation's items against what its worker saw.
        let items = acc.items.get_or_insert_with(|| SampledSet::new(MAX_ITEMS));
        let seen = self.by_source.entry(inv.src).or_insert_with(|| SampledSet::new(MAX_ITEMS * 16));
        let mut mine: Vec<u64> = inv.calls.iter().flat_map(|c| c.items.iter().copied()).collect();
        mine.sort_unstable();
        mine.dedup();
        let admitted: Vec<u64> = mine.iter().copied().filter(|h| seen.admits(*h, 0)).collect();
        if !admitted.is_empty() {
            acc.hit_rate_sum += admitted.iter().filter(|h| seen.contains(**h)).count() as f64 / admitted.len() as f64;
            acc.hit_rate_n += 1;
        }
        for h in mine {
            items.insert(h);
            seen.insert(h);
        }
        for call in &inv.calls {
            self.call(call, &lambda);
        }
        for hit in hits {
            let p = self.patterns.entry((lambda.clone(), hit.pattern)).or_default();
            p.invocations += 1;
            p.total_ns += hit.cost_ns;
            if p.worst.as_ref().is_none_or(|w| hit.cost_ns > w.0) {
                p.worst = Some((hit.cost_ns, inv.src, inv.id, hit));
            }
        }
        if self.waterfall_of == Some(inv.id) && self.analysis.waterfall.is_none() {
            self.analysis.waterfall = Some(waterfall(inv));
        }
    }

    /// Takes a call tied to no open invocation.
    pub fn loose(&mut self, call: &Call, late: bool) {
        if late {
            self.analysis.overview.late_calls += 1;
        }
        self.call(call, NO_LAMBDA);
    }

    /// The stream has reached `now`: invocations in flight before the
    /// horizon are final.
    pub fn settle(&mut self, horizon: u64) {
        self.concurrency.settle(horizon);
    }

    fn call(&mut self, call: &Call, lambda: &str) {
        self.calls += 1;
        let o = &mut self.analysis.overview;
        let method = call.method.map_or("none", |m| m.name());
        // Looked up before inserting: most calls find their entries, and
        // an owned key per call was a tenth of the analysis.
        match o.attribution.get_mut(method) {
            Some(n) => *n += 1,
            None => {
                o.attribution.insert(method.to_owned(), 1);
            }
        }
        if let Some(e) = &call.error {
            match e.split_once(' ') {
                Some(("SQLSTATE", code)) => *o.errors.sql.entry(code.to_owned()).or_default() += 1,
                Some(("redis", code)) => *o.errors.redis.entry(code.to_owned()).or_default() += 1,
                _ => o.errors.http_5xx += 1,
            }
        }
        if let Some(acc) = self.lambdas.get_mut(lambda) {
            if let Some(n) = acc.by_class.get_mut(&*call.key) {
                *n += 1;
            } else if acc.by_class.len() < MAX_CLASSES_PER_LAMBDA {
                acc.by_class.insert(call.key.to_string(), 1);
            }
            acc.bytes_out += call.bytes_out;
            acc.bytes_in += call.bytes_in;
            acc.call_errors += call.error.is_some() as u64;
            for o in &call.objects {
                let set = match call.protocol {
                    CallProtocol::Postgres => &mut acc.tables,
                    CallProtocol::Redis => &mut acc.prefixes,
                    CallProtocol::Http => &mut acc.hosts,
                };
                if set.len() < MAX_OBJECTS && !set.contains(o) {
                    set.insert(o.clone());
                }
            }
        }
        let kind = match call.protocol {
            CallProtocol::Postgres => "table",
            CallProtocol::Redis => "key_prefix",
            CallProtocol::Http => "host",
        };
        for o in &call.objects {
            let rows = self.mix.entry(kind).or_default();
            let m = match rows.get_mut(o) {
                Some(m) => m,
                None if self.mix_rows < MAX_OBJECTS => {
                    self.mix_rows += 1;
                    rows.entry(o.clone()).or_default()
                }
                None => continue,
            };
            if call.write {
                m.1 += 1;
            } else {
                m.0 += 1;
            }
            if m.2.len() < 16 && !m.2.contains(lambda) {
                m.2.insert(lambda.to_owned());
            }
        }
        let key = if self.classes.len() < MAX_CLASSES || self.classes.contains_key(&call.key) {
            call.key.clone()
        } else {
            "(other)".into()
        };
        let c = self.classes.entry(key).or_insert_with(|| ClassAcc {
            protocol: call.protocol,
            count: 0,
            total_ns: 0,
            sum_sq_s: 0.0,
            latency_us: Hist::default(),
            max_ns: 0,
            rows: 0,
            bytes: 0,
            errors: 0,
            lambdas: BTreeSet::new(),
        });
        let d = call.duration();
        c.count += 1;
        c.total_ns += d as u128;
        c.sum_sq_s += (d as f64 / 1e9).powi(2);
        c.latency_us.record(d / 1000);
        c.max_ns = c.max_ns.max(d);
        c.rows += call.rows;
        c.bytes += call.bytes_in;
        c.errors += call.error.is_some() as u64;
        if c.lambdas.len() < 16 && !c.lambdas.contains(lambda) {
            c.lambdas.insert(lambda.to_owned());
        }
    }

    /// The finished analysis.
    pub fn finish(mut self) -> Analysis {
        self.concurrency.settle(u64::MAX);
        let mut a = std::mem::take(&mut self.analysis);
        let o = &mut a.overview;
        o.duration_s = o.last_ns.saturating_sub(o.first_ns) as f64 / 1e9;
        let secs = o.duration_s.max(1e-9);
        o.invocations_per_s = o.invocations as f64 / secs;
        o.calls_per_s = self.calls as f64 / secs;
        o.concurrency_mean = self.wall_ns as f64 / 1e9 / secs;
        o.concurrency_max = self.concurrency.max;
        for (name, acc) in &self.lambdas {
            let calls: u64 = acc.round_trips;
            a.lambdas.push(LambdaReport {
                lambda: name.clone(),
                platform: acc.platform.clone(),
                invocations: acc.invocations,
                failed: acc.failed,
                latency_ms: acc.latency_us.percentiles(1e3),
                latency_histogram: acc.latency_us.buckets(1e3),
                time: PARTS
                    .iter()
                    .enumerate()
                    .map(|(i, part)| Share {
                        part: part.to_string(),
                        mean_pct: acc.share_sum[i] / acc.invocations.max(1) as f64,
                        p99_pct: acc.shares[i].quantile(0.99) as f64 / 100.0,
                        total_ms: acc.totals_ns[i] / 1e6,
                    })
                    .collect(),
                calls: CallProtocol::ALL
                    .iter()
                    .map(|p| {
                        let h = &acc.calls[p.index()];
                        let pc = h.percentiles(1.0);
                        CallsPer { protocol: p.name().into(), mean: pc.mean - 1.0, p50: pc.p50 - 1.0, p99: pc.p99 - 1.0, max: pc.max - 1.0 }
                    })
                    .collect(),
                round_trips: calls,
                bytes_out: acc.bytes_out,
                bytes_in: acc.bytes_in,
                call_errors: acc.call_errors,
                error_rate: acc.call_errors as f64 / calls.max(1) as f64,
                fan_out: FanOut {
                    max: acc.fan_max,
                    mean: acc.fan_mean_sum / acc.invocations.max(1) as f64,
                    overlapping_share: acc.overlapping as f64 / calls.max(1) as f64,
                },
                slowest: acc.slowest.clone(),
                calls_by_class: acc.by_class.clone(),
            });
        }
        a.waterfalls = self.lambdas.values().filter_map(|l| l.slowest_waterfall.clone()).collect();
        a.classes = self.class_report();
        for ((lambda, pattern), p) in &self.patterns {
            let (worst_ns, src, id, hit) = p.worst.clone().expect("a pattern with a hit");
            a.patterns.push(Finding {
                pattern: pattern.to_string(),
                lambda: lambda.clone(),
                invocations: p.invocations,
                of: self.lambdas.get(lambda).map_or(0, |l| l.invocations),
                worst_src: src,
                worst_invocation: id,
                worst_ms: worst_ns as f64 / 1e6,
                total_ms: p.total_ns as f64 / 1e6,
                example: hit.example,
                detail: hit.detail,
            });
        }
        a.patterns.sort_by(|x, y| y.total_ms.total_cmp(&x.total_ms).then(x.lambda.cmp(&y.lambda)));
        a.mix = self
            .mix
            .iter()
            .flat_map(|(kind, rows)| rows.iter().map(move |(name, m)| (kind, name, m)))
            .map(|(kind, name, (r, w, l))| MixRow { kind: kind.to_string(), name: name.clone(), reads: *r, writes: *w, lambdas: l.iter().cloned().collect() })
            .collect();
        a.mix.sort_by(|x, y| (y.reads + y.writes).cmp(&(x.reads + x.writes)).then(x.name.cmp(&y.name)));
        a.locality = self.locality();
        a
    }

    fn class_report(&self) -> Classes {
        let total_ns: u128 = self.classes.values().map(|c| c.total_ns).sum();
        let mut rows: Vec<ClassRow> = self
            .classes
            .iter()
            .map(|(key, c)| {
                let mean_s = c.total_ns as f64 / 1e9 / c.count as f64;
                let variance = (c.sum_sq_s / c.count as f64 - mean_s * mean_s).max(0.0);
                ClassRow {
                    key: key.to_string(),
                    protocol: c.protocol.name().into(),
                    count: c.count,
                    total_ms: c.total_ns as f64 / 1e6,
                    pct_time: 100.0 * c.total_ns as f64 / total_ns.max(1) as f64,
                    mean_ms: mean_s * 1e3,
                    p95_ms: (c.latency_us.quantile(0.95) as f64 / 1e3).min(c.max_ns as f64 / 1e6),
                    max_ms: c.max_ns as f64 / 1e6,
                    rows: if c.protocol == CallProtocol::Postgres { c.rows } else { 0 },
                    bytes: c.bytes,
                    vm: if mean_s > 0.0 { variance / mean_s } else { 0.0 },
                    errors: c.errors,
                    lambdas: c.lambdas.iter().cloned().collect(),
                }
            })
            .collect();
        rows.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms).then(a.key.cmp(&b.key)));
        let rest = (rows.len() > TOP_CLASSES).then(|| {
            let tail = rows.split_off(TOP_CLASSES);
            let mut r = ClassRow { key: format!("({} more classes)", tail.len()), protocol: "mixed".into(), ..ClassRow::default() };
            let mut lambdas = BTreeSet::new();
            for t in &tail {
                r.count += t.count;
                r.total_ms += t.total_ms;
                r.pct_time += t.pct_time;
                r.max_ms = r.max_ms.max(t.max_ms);
                r.p95_ms = r.p95_ms.max(t.p95_ms);
                r.rows += t.rows;
                r.bytes += t.bytes;
                r.errors += t.errors;
                lambdas.extend(t.lambdas.iter().cloned());
            }
            r.mean_ms = r.total_ms / r.count.max(1) as f64;
            r.lambdas = lambdas.into_iter().collect();
            r
        });
        Classes { calls: self.classes.values().map(|c| c.count).sum(), total_ms: total_ns as f64 / 1e6, rows, rest }
    }

    fn locality(&self) -> Locality {
        let names: Vec<String> = self.lambdas.keys().cloned().collect();
        let empty = SampledSet::new(1);
        let sets: Vec<&SampledSet> = self.lambdas.values().map(|l| l.items.as_ref().unwrap_or(&empty)).collect();
        let affinity = sets.iter().map(|a| sets.iter().map(|b| a.jaccard(b)).collect()).collect();
        Locality {
            lambdas: self
                .lambdas
                .iter()
                .map(|(name, l)| LambdaLocality {
                    lambda: name.clone(),
                    tables: l.tables.iter().cloned().collect(),
                    key_prefixes: l.prefixes.iter().cloned().collect(),
                    hosts: l.hosts.iter().cloned().collect(),
                    items: l.items.as_ref().map_or(0, |s| s.estimate()),
                    same_worker_hit_rate: l.hit_rate_sum / l.hit_rate_n.max(1) as f64,
                })
                .collect(),
            names,
            affinity,
            sampled: sets.iter().any(|s| s.sampled()) || self.by_source.values().any(|s| s.sampled()),
            sessions: self.session_key.as_ref().map(|k| self.sessions.report(k)),
        }
    }
}

fn waterfall(inv: &Closed) -> Waterfall {
    let [postgres, redis, http, own] = breakdown(inv).parts().map(|ns| ns / 1e6);
    Waterfall {
        src: inv.src,
        invocation: inv.id,
        lambda: inv.lambda.to_string(),
        start_ns: inv.start,
        wall_ms: inv.wall() as f64 / 1e6,
        status: inv.status,
        time_ms: TimeSplit { postgres, redis, http, own },
        steps: inv
            .calls
            .iter()
            .map(|c| Step {
                // Negative for a call that began before the invocation did.
                at_ms: (c.start as f64 - inv.start as f64) / 1e6,
                ms: c.duration() as f64 / 1e6,
                protocol: c.protocol.name().into(),
                key: c.key.to_string(),
                attribution: c.method.map_or("none", |m| m.name()).into(),
                error: c.error.clone(),
            })
            .collect(),
    }
}
