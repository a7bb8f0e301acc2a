//! The replay report: counts, the first differences, latencies, schedule
//! lateness; [`Report::text`] for people, [`Report::json`] and
//! [`Report::junit`] for CI. Field names of the JSON are documented in
//! `docs/replay.md` and kept stable.
//!
//! Latencies are kept per lambda, per route and per key (HTTP `GET /path`,
//! the PostgreSQL query fingerprint, the Redis command) in HdrHistograms of
//! microseconds (3 significant digits, growing as values need), one for the
//! recorded side and one for the replayed side; lateness (`sent -
//! scheduled`) in one more. Microseconds rather than the trace's
//! nanoseconds keep each histogram small (tens of kB up to minutes).
//!
//! The driver adds what it measured of the run as a whole ([`RunFigures`]:
//! the lateness the target did not cause, elapsed time, loops, trace
//! damage), which the three renderers show too.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::model::{Difference, Replayed};

/// How many differing (or failed) exchanges the report lists by default.
pub const DEFAULT_MAX_LISTED: usize = 20;
/// How many differences of one exchange the text and JUnit list.
const DIFFS_SHOWN: usize = 10;
/// How many differing exchanges a JUnit test case lists.
const JUNIT_SAMPLES: usize = 5;

/// One differing or failed exchange, as listed.
#[derive(Clone, Debug)]
pub struct Listed {
    pub src: u16,
    pub conn: u64,
    pub route: String,
    pub key: String,
    pub lambda: Option<String>,
    /// Why the replay failed (no replayed side), else `None`.
    pub failure: Option<String>,
    pub differences: Vec<Difference>,
}

/// Recorded and replayed latencies of one group.
#[derive(Clone, Debug)]
pub struct Latency {
    pub recorded: Histogram<u64>,
    pub replayed: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Latency {
        Latency { recorded: histogram(), replayed: histogram() }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is valid")
}

/// Records `ns` nanoseconds as microseconds (rounded to nearest); the
/// histogram grows to hold it.
fn record(h: &mut Histogram<u64>, ns: u64) {
    // Only fails past u64 range, which auto-resizing cannot reach.
    let _ = h.record(ns.saturating_add(500) / 1000);
}

/// Per-key outcome counts (for JUnit), with the first differing exchanges.
#[derive(Clone, Debug, Default)]
pub struct KeyOutcome {
    pub protocol: String,
    pub replayed: u64,
    pub differed: u64,
    pub failed: u64,
    pub samples: Vec<Listed>,
}

#[derive(Debug)]
pub struct Report {
    pub replayed: u64,
    pub matched: u64,
    pub differed: u64,
    pub failed: u64,
    /// Exchanges not replayed, by reason (`--read-only` writes, requests
    /// whose bytes were truncated or redacted, damaged trace stretches).
    pub skipped: BTreeMap<String, u64>,
    /// How many differing or failed exchanges [`Report::listed`] keeps.
    pub max_listed: usize,
    /// The first differing or failed exchanges, in the order added.
    pub listed: Vec<Listed>,
    pub by_lambda: BTreeMap<String, Latency>,
    pub by_route: BTreeMap<String, Latency>,
    pub by_key: BTreeMap<String, Latency>,
    pub keys: BTreeMap<String, KeyOutcome>,
    /// `sent - scheduled`, microseconds.
    pub lateness: Histogram<u64>,
    /// What the driver measured of the whole run.
    pub run: RunFigures,
}

/// What the driver measured of a run, besides the exchanges.
#[derive(Clone, Debug)]
pub struct RunFigures {
    /// The lateness of the sends the target did not hold back (the answer
    /// they waited for had come before they were due): the replayer's own
    /// timing error, microseconds. [`Report::lateness`] includes waiting
    /// for a target slower than the recorded server.
    pub own_lateness: Histogram<u64>,
    pub elapsed: Duration,
    /// The recorded span of what was replayed.
    pub recorded_span: Duration,
    pub loops: u64,
    /// Exchanges left out by `--lambda`, `--from`, `--to`, `--route`.
    pub filtered: u64,
    /// Damaged stretches of the trace (what was intact was replayed).
    pub damage: Vec<String>,
    pub notes: Vec<String>,
}

impl Default for RunFigures {
    fn default() -> RunFigures {
        RunFigures {
            own_lateness: histogram(),
            elapsed: Duration::ZERO,
            recorded_span: Duration::ZERO,
            loops: 0,
            filtered: 0,
            damage: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl Default for Report {
    fn default() -> Report {
        Report {
            replayed: 0,
            matched: 0,
            differed: 0,
            failed: 0,
            skipped: BTreeMap::new(),
            max_listed: DEFAULT_MAX_LISTED,
            listed: Vec::new(),
            by_lambda: BTreeMap::new(),
            by_route: BTreeMap::new(),
            by_key: BTreeMap::new(),
            keys: BTreeMap::new(),
            lateness: histogram(),
            run: RunFigures::default(),
        }
    }
}

/// The key exchanges are grouped by: the trace view's report key.
pub use convert::call_key::report_key as key_of;

/// The lambda group of exchanges not attributed to any.
pub const NO_LAMBDA: &str = "(none)";

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    /// A report listing at most `n` differing exchanges.
    pub fn with_max_listed(n: usize) -> Report {
        Report { max_listed: n, ..Report::default() }
    }

    /// Adds one replayed exchange and its differences (empty: matched).
    pub fn add(&mut self, exchange: &Replayed, diffs: &[Difference]) {
        self.replayed += 1;
        let failure = exchange.replayed.as_ref().err().cloned();
        let bad = failure.is_some() || !diffs.is_empty();
        match (&failure, diffs.is_empty()) {
            (Some(_), _) => self.failed += 1,
            (None, true) => self.matched += 1,
            (None, false) => self.differed += 1,
        }
        let listed = bad.then(|| Listed {
            src: exchange.src,
            conn: exchange.conn,
            route: exchange.route.clone(),
            key: exchange.key.clone(),
            lambda: exchange.lambda.clone(),
            failure: failure.clone(),
            differences: diffs.to_vec(),
        });
        let outcome = self.keys.entry(exchange.key.clone()).or_default();
        outcome.protocol = exchange.protocol.to_string();
        outcome.replayed += 1;
        if failure.is_some() {
            outcome.failed += 1;
        } else if !diffs.is_empty() {
            outcome.differed += 1;
        }
        if let Some(l) = &listed {
            if outcome.samples.len() < JUNIT_SAMPLES {
                outcome.samples.push(l.clone());
            }
        }
        if let Some(l) = listed {
            if self.listed.len() < self.max_listed {
                self.listed.push(l);
            }
        }
        let rec = exchange.recorded.latency;
        let rep = exchange.replayed.as_ref().ok().and_then(|s| s.latency);
        let lambda = exchange.lambda.as_deref().unwrap_or(NO_LAMBDA);
        for group in [
            self.by_lambda.entry(lambda.to_owned()).or_default(),
            self.by_route.entry(exchange.route.clone()).or_default(),
            self.by_key.entry(exchange.key.clone()).or_default(),
        ] {
            if let Some(v) = rec {
                record(&mut group.recorded, v);
            }
            if let Some(v) = rep {
                record(&mut group.replayed, v);
            }
        }
        record(&mut self.lateness, exchange.sent.saturating_sub(exchange.scheduled));
    }

    /// Counts `n` exchanges not replayed, for `reason`.
    pub fn skip(&mut self, reason: &str, n: u64) {
        *self.skipped.entry(reason.to_string()).or_default() += n;
    }

    /// Exit code: 0 clean, 1 differences, failures or a damaged trace.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.differed + self.failed > 0 || !self.run.damage.is_empty())
    }

    /// The text report for people (no colour).
    pub fn text(&self) -> String {
        let mut s = String::new();
        let skipped: u64 = self.skipped.values().sum();
        let _ = writeln!(
            s,
            "replayed {}, matched {}, differed {}, failed {}, skipped {}",
            self.replayed, self.matched, self.differed, self.failed, skipped
        );
        for (reason, n) in &self.skipped {
            let _ = writeln!(s, "  skipped {n}: {reason}");
        }
        if self.run.filtered > 0 {
            let _ = writeln!(s, "  left out by the filters: {} exchanges", self.run.filtered);
        }
        for d in &self.run.damage {
            let _ = writeln!(s, "damaged trace: {d}");
        }
        for n in &self.run.notes {
            let _ = writeln!(s, "note: {n}");
        }
        if !self.listed.is_empty() {
            let bad = self.differed + self.failed;
            let _ = writeln!(s, "\nfirst {} of {} differing or failed exchanges:", self.listed.len(), bad);
            for l in &self.listed {
                let lambda = l.lambda.as_deref().map(|x| format!(" lambda {x}")).unwrap_or_default();
                let _ = writeln!(s, "- conn {}:{} {}{} ({})", l.src, l.conn, l.key, lambda, l.route);
                if let Some(f) = &l.failure {
                    let _ = writeln!(s, "    failed: {f}");
                }
                for d in l.differences.iter().take(DIFFS_SHOWN) {
                    let _ = writeln!(s, "    {}\n      - recorded: {}\n      + replayed: {}", d.field, d.recorded, d.replayed);
                }
                if l.differences.len() > DIFFS_SHOWN {
                    let _ = writeln!(s, "    ... {} more", l.differences.len() - DIFFS_SHOWN);
                }
            }
        }
        for (title, groups) in [("lambda", &self.by_lambda), ("route", &self.by_route), ("key", &self.by_key)] {
            if groups.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\nlatency by {title} (ms, recorded -> replayed):");
            s.push_str(&latency_table(title, groups));
        }
        if !self.lateness.is_empty() {
            let _ = writeln!(
                s,
                "\nschedule lateness (ms): p50 {}  p99 {}  max {}",
                ms(self.lateness.value_at_quantile(0.5)),
                ms(self.lateness.value_at_quantile(0.99)),
                ms(self.lateness.max())
            );
        }
        let own = &self.run.own_lateness;
        if !own.is_empty() {
            let _ = writeln!(
                s,
                "  of which not held back by the target ({} sends): p50 {}  p99 {}  max {}",
                own.len(),
                ms(own.value_at_quantile(0.5)),
                ms(own.value_at_quantile(0.99)),
                ms(own.max())
            );
        }
        if self.run.loops > 0 {
            let _ = writeln!(
                s,
                "{} loop(s) in {:.3} s (recorded span {:.3} s)",
                self.run.loops,
                self.run.elapsed.as_secs_f64(),
                self.run.recorded_span.as_secs_f64()
            );
        }
        s
    }

    /// The JSON report (see `docs/replay.md` for the fields).
    pub fn json(&self) -> Value {
        let groups = |m: &BTreeMap<String, Latency>| -> Value {
            Value::Array(
                m.iter()
                    .map(|(name, l)| json!({"name": name, "recorded": percentiles(&l.recorded), "replayed": percentiles(&l.replayed)}))
                    .collect(),
            )
        };
        json!({
            "replayed": self.replayed,
            "matched": self.matched,
            "differed": self.differed,
            "failed": self.failed,
            "skipped": self.skipped,
            "exit_code": self.exit_code(),
            "differences": self.listed.iter().map(|l| json!({
                "src": l.src,
                "conn": l.conn,
                "route": l.route,
                "key": l.key,
                "lambda": l.lambda,
                "failure": l.failure,
                "differences": l.differences,
            })).collect::<Vec<_>>(),
            "latency": {
                "by_lambda": groups(&self.by_lambda),
                "by_route": groups(&self.by_route),
                "by_key": groups(&self.by_key),
            },
            "lateness": lateness(&self.lateness),
            "own_lateness": lateness(&self.run.own_lateness),
            "filtered": self.run.filtered,
            "elapsed_s": self.run.elapsed.as_secs_f64(),
            "recorded_span_s": self.run.recorded_span.as_secs_f64(),
            "loops": self.run.loops,
            "damage": self.run.damage,
            "notes": self.run.notes,
        })
    }

    /// [`Report::junit`] into the file at `path`.
    pub fn write_junit(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        self.junit(&mut f)?;
        f.flush()
    }

    /// JUnit XML: one test suite, one test case per key (failing when any
    /// of its exchanges differed or failed, listing the first ones), one
    /// skipped test case per skip reason.
    pub fn junit(&self, out: &mut impl Write) -> std::io::Result<()> {
        let skipped: u64 = self.skipped.len() as u64;
        let damaged = !self.run.damage.is_empty();
        let failures = self.keys.values().filter(|k| k.differed + k.failed > 0).count() + usize::from(damaged);
        let tests = self.keys.len() as u64 + skipped + u64::from(damaged);
        writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        writeln!(
            out,
            r#"<testsuites name="olreplay" tests="{tests}" failures="{failures}" skipped="{skipped}">"#
        )?;
        writeln!(
            out,
            r#"  <testsuite name="olreplay" tests="{tests}" failures="{failures}" errors="0" skipped="{skipped}">"#
        )?;
        if damaged {
            writeln!(out, r#"    <testcase classname="olreplay.trace" name="trace integrity">"#)?;
            let msg = format!("{} damaged stretches of the trace", self.run.damage.len());
            writeln!(out, r#"      <failure message="{}" type="damage">{}</failure>"#, xml(&msg), xml(&self.run.damage.join("\n")))?;
            writeln!(out, "    </testcase>")?;
        }
        for (key, k) in &self.keys {
            let time = self.by_key.get(key).map_or(0.0, |l| l.replayed.mean() * l.replayed.len() as f64 / 1e6);
            write!(out, r#"    <testcase classname="olreplay.{}" name="{}" time="{time:.6}""#, xml(&k.protocol), xml(key))?;
            if k.differed + k.failed == 0 {
                writeln!(out, "/>")?;
                continue;
            }
            writeln!(out, ">")?;
            let msg = format!("{} of {} exchanges differed, {} failed", k.differed, k.replayed, k.failed);
            let mut body = String::new();
            for l in &k.samples {
                let _ = writeln!(body, "conn {}:{} ({})", l.src, l.conn, l.route);
                if let Some(f) = &l.failure {
                    let _ = writeln!(body, "  failed: {f}");
                }
                for d in l.differences.iter().take(DIFFS_SHOWN) {
                    let _ = writeln!(body, "  {}: recorded {} / replayed {}", d.field, d.recorded, d.replayed);
                }
            }
            writeln!(out, r#"      <failure message="{}" type="difference">{}</failure>"#, xml(&msg), xml(&body))?;
            writeln!(out, "    </testcase>")?;
        }
        for (reason, n) in &self.skipped {
            writeln!(
                out,
                r#"    <testcase classname="olreplay.skipped" name="{}"><skipped message="{n} exchanges not replayed"/></testcase>"#,
                xml(reason)
            )?;
        }
        writeln!(out, "  </testsuite>")?;
        writeln!(out, "</testsuites>")?;
        Ok(())
    }
}

/// Text escaped for XML attributes and content; characters XML 1.0 cannot
/// hold at all (most control characters) become `\xNN`.
pub fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' | '\t' => o.push(c),
            '\r' => o.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// Microseconds as milliseconds.
fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1e3)
}

/// The percentiles of a histogram (microseconds), as the JSON report has
/// them; all zero when empty.
pub fn percentiles(h: &Histogram<u64>) -> Value {
    let q = |x: f64| if h.is_empty() { 0 } else { h.value_at_quantile(x) };
    json!({
        "count": h.len(),
        "p50_us": q(0.5),
        "p90_us": q(0.9),
        "p99_us": q(0.99),
        "p999_us": q(0.999),
        "max_us": h.max(),
    })
}

/// A lateness histogram (microseconds) as the JSON report has it.
fn lateness(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(),
        "p50_us": h.value_at_quantile(0.5),
        "p99_us": h.value_at_quantile(0.99),
        "max_us": h.max(),
    })
}

/// An aligned table: one row per group, recorded -> replayed percentiles.
fn latency_table(title: &str, groups: &BTreeMap<String, Latency>) -> String {
    let cols = ["n", "p50", "p90", "p99", "p99.9", "max"];
    let mut rows: Vec<Vec<String>> = vec![std::iter::once(title.to_owned()).chain(cols.iter().map(|c| (*c).to_owned())).collect()];
    for (name, l) in groups {
        let cell = |q: Option<f64>| {
            let v = |h: &Histogram<u64>| {
                if h.is_empty() {
                    "-".to_owned()
                } else {
                    ms(q.map_or(h.max(), |q| h.value_at_quantile(q)))
                }
            };
            format!("{} -> {}", v(&l.recorded), v(&l.replayed))
        };
        let mut row = vec![name.clone(), l.recorded.len().max(l.replayed.len()).to_string()];
        row.extend([Some(0.5), Some(0.9), Some(0.99), Some(0.999), None].map(cell));
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut s = String::new();
    for r in rows {
        s.push_str("  ");
        for (c, cell) in r.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str("  ");
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            }
        }
        s.push('\n');
    }
    s
}
