//! The one result type: every report olanalyze makes. The text output
//! (`text`) and `--json` both serialise an [`Analysis`].

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Analysis {
    pub inputs: Vec<String>,
    pub overview: Overview,
    pub lambdas: Vec<LambdaReport>,
    pub classes: Classes,
    pub patterns: Vec<Finding>,
    /// Reads and writes per table, key prefix and host.
    pub mix: Vec<MixRow>,
    pub locality: Locality,
    /// `--invocation ID`: that invocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waterfall: Option<Waterfall>,
    /// Each lambda's slowest invocation.
    pub waterfalls: Vec<Waterfall>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Overview {
    /// Nanoseconds since the (first) trace's anchor.
    pub first_ns: u64,
    pub last_ns: u64,
    pub duration_s: f64,
    pub records: u64,
    pub invocations: u64,
    pub invocations_by_platform: BTreeMap<String, u64>,
    /// Exchanges per protocol (invocations' own HTTP exchanges included).
    pub exchanges: BTreeMap<String, u64>,
    pub invocations_per_s: f64,
    pub calls_per_s: f64,
    /// Invocations in flight: mean (total wall time over duration) and max.
    pub concurrency_mean: f64,
    pub concurrency_max: u64,
    pub errors: Errors,
    /// Calls by how they were tied to their invocation (`traceparent`,
    /// `sqlcommenter`, `connection_window`, `none`).
    pub attribution: BTreeMap<String, u64>,
    /// Calls that named an invocation already closed (kept in classes).
    pub late_calls: u64,
    pub unanswered_invocations: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub fallbacks: u64,
    /// Damaged stretches of the inputs, skipped.
    pub damage: Vec<String>,
    /// Most invocations held open at once (the memory bound).
    pub max_open_invocations: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Errors {
    pub http_5xx: u64,
    /// By SQLSTATE.
    pub sql: BTreeMap<String, u64>,
    /// By error prefix (`ERR`, `WRONGTYPE`, ...).
    pub redis: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LambdaReport {
    pub lambda: String,
    pub platform: String,
    pub invocations: u64,
    /// Invocations answered 5xx or not at all.
    pub failed: u64,
    pub latency_ms: Percentiles,
    /// The latency histogram, log-spaced buckets in ms.
    pub latency_histogram: Vec<Bucket>,
    /// Where the time goes: `postgres`, `redis`, `http`, `own`.
    pub time: Vec<Share>,
    /// Calls per invocation, per protocol.
    pub calls: Vec<CallsPer>,
    pub round_trips: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub call_errors: u64,
    /// Failed calls over calls.
    pub error_rate: f64,
    pub fan_out: FanOut,
    pub slowest: Vec<Slow>,
    /// Calls per class (at most 200 classes), for `olanalyze diff`.
    pub calls_by_class: BTreeMap<String, u64>,
}

/// Values from `from` up to (not including) `to`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Bucket {
    pub from: f64,
    pub to: f64,
    pub count: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Share {
    pub part: String,
    /// Mean and p99 over invocations of the part's share of wall time, %.
    pub mean_pct: f64,
    pub p99_pct: f64,
    pub total_ms: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CallsPer {
    pub protocol: String,
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FanOut {
    /// Most calls outstanding at once in any invocation.
    pub max: u64,
    /// Mean over invocations of the mean outstanding while any was.
    pub mean: f64,
    /// Calls that overlap another call of their invocation, over calls.
    pub overlapping_share: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Slow {
    pub src: u16,
    pub invocation: u64,
    pub ms: f64,
    pub calls: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Classes {
    /// Calls in all classes, and their total time.
    pub calls: u64,
    pub total_ms: f64,
    /// Ranked by total time.
    pub rows: Vec<ClassRow>,
    /// The classes past the shown rows, folded into one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rest: Option<ClassRow>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ClassRow {
    pub key: String,
    pub protocol: String,
    pub count: u64,
    pub total_ms: f64,
    pub pct_time: f64,
    pub mean_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    /// Rows returned (PostgreSQL), or response bytes (Redis, HTTP).
    pub rows: u64,
    pub bytes: u64,
    /// Variance over mean of the latency, in seconds (pt-query-digest's V/M).
    pub vm: f64,
    pub errors: u64,
    /// Lambdas that issue it (`(none)`: unattributed).
    pub lambdas: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Finding {
    pub pattern: String,
    pub lambda: String,
    /// Invocations that show it, of the lambda's invocations.
    pub invocations: u64,
    pub of: u64,
    pub worst_src: u16,
    pub worst_invocation: u64,
    /// Time the worst invocation would save, and all of them together.
    pub worst_ms: f64,
    pub total_ms: f64,
    pub example: String,
    pub detail: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct MixRow {
    /// `table`, `key_prefix` or `host`.
    pub kind: String,
    pub name: String,
    pub reads: u64,
    pub writes: u64,
    pub lambdas: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Locality {
    pub lambdas: Vec<LambdaLocality>,
    /// Names of the matrix's rows and columns.
    pub names: Vec<String>,
    /// Jaccard index of the items (Redis keys, table rows by parameters,
    /// URLs) each pair of lambdas touched.
    pub affinity: Vec<Vec<f64>>,
    /// True when an item set outgrew its cap and was sampled (see
    /// docs/analysis.md); figures are then estimates.
    pub sampled: bool,
    /// How many workers each session ran on (with `--session-key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionSpread>,
}

/// Sessions and the workers (sources) their invocations ran on.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SessionSpread {
    /// The `--session-key` spec.
    pub key: String,
    pub invocations_with_key: u64,
    pub invocations_without_key: u64,
    pub sessions: u64,
    /// Workers per session: mean and max.
    pub workers_mean: f64,
    pub workers_max: u64,
    /// Share of sessions that stayed on one worker.
    pub on_one_worker: f64,
    /// True when more sessions came than are tracked (the figures cover
    /// the first ones).
    pub sampled: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LambdaLocality {
    pub lambda: String,
    pub tables: Vec<String>,
    pub key_prefixes: Vec<String>,
    pub hosts: Vec<String>,
    /// Distinct items touched (estimated when sampled).
    pub items: u64,
    /// Mean share of an invocation's items an earlier invocation on the
    /// same source (worker) touched.
    pub same_worker_hit_rate: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Waterfall {
    pub src: u16,
    pub invocation: u64,
    pub lambda: String,
    pub start_ns: u64,
    pub wall_ms: f64,
    pub status: Option<u16>,
    /// Where its time went; the parts add up to `wall_ms`.
    pub time_ms: TimeSplit,
    pub steps: Vec<Step>,
}

/// One invocation's wall time split, in ms (see `timeline::breakdown`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct TimeSplit {
    pub postgres: f64,
    pub redis: f64,
    pub http: f64,
    pub own: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Step {
    /// Offset from the invocation's start (negative: the call began
    /// before it).
    pub at_ms: f64,
    pub ms: f64,
    pub protocol: String,
    pub key: String,
    /// `traceparent`, `sqlcommenter`, `connection_window`.
    pub attribution: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
