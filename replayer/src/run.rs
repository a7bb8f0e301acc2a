//! [`run`]: a whole replay from a [`Config`]: load the plan, check every
//! target answers, schedule and replay the connections, compare each
//! exchange and fill the report.

use crate::compare;
use crate::load::{self, ConnScript, Plan};
use crate::model::Replayed;
use crate::noise::NoiseRules;
use crate::report::{Report, RunFigures};
use crate::session::{self, SessionOpts};
use crate::target::{Target, Targets};
use crate::timer::Timer;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

/// When requests go out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Timing {
    /// At their recorded times, divided by the speed (1: as recorded).
    Recorded { speed: f64 },
    /// Exchanges at a fixed rate per second, in recorded order, open loop.
    Rate { per_sec: f64 },
    /// As fast as each connection's responses allow.
    Max,
}

impl Timing {
    /// The timing `--max`, `--rate` or `--speed` ask for (clap keeps them
    /// exclusive); recorded at 1x when none is given.
    pub fn from_flags(max: bool, rate: Option<f64>, speed: Option<f64>) -> anyhow::Result<Timing> {
        if max {
            return Ok(Timing::Max);
        }
        if let Some(per_sec) = rate {
            return Ok(Timing::Rate { per_sec });
        }
        let speed = speed.unwrap_or(1.0);
        if !(speed > 0.0 && speed.is_finite()) {
            anyhow::bail!("--speed {speed}: give a positive factor, e.g. --speed 2 (twice as fast)");
        }
        Ok(Timing::Recorded { speed })
    }
}

/// Parses a `--rate`: `500/s`, `30/m`, `2/h`, or a bare number per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let (n, unit) = match s.split_once('/') {
        Some((n, u)) => (n, u),
        None => (s, "s"),
    };
    let n: f64 = n.trim().parse().map_err(|_| format!("{s:?}: write e.g. 500/s or 30/m"))?;
    let per = match unit.trim() {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        u => return Err(format!("unknown unit {u:?}: use /s, /m or /h")),
    };
    let r = n / per;
    if r > 0.0 && r.is_finite() {
        Ok(r)
    } else {
        Err(format!("{s:?}: the rate must be positive"))
    }
}

/// Everything a replay needs, as the command line gave it.
#[derive(Clone)]
pub struct Config {
    pub trace: PathBuf,
    pub targets: Targets,
    /// What to replay: routes and protocols (alternatives), lambdas and a
    /// time window (see [`load::load`]).
    pub filter: format::view::Filter,
    /// Skip writes (`--read-only`).
    pub read_only: bool,
    pub timing: Timing,
    /// At most this many connections open at once.
    pub concurrency: Option<usize>,
    /// Replay the trace this many times (`None`: until `duration` ends, or once).
    pub loops: Option<u64>,
    pub duration: Option<Duration>,
    pub timeout: Duration,
    pub noise: NoiseRules,
    /// A progress line on stderr.
    pub progress: bool,
    /// Keep every replayed exchange in [`Outcome::exchanges`].
    pub keep_exchanges: bool,
}

/// What a run produced: the report (with the driver's figures in
/// [`Report::run`]) and, when [`Config::keep_exchanges`] asked, every
/// replayed exchange in recorded order per connection (for learning noise).
pub struct Outcome {
    pub report: Report,
    pub exchanges: Vec<Replayed>,
}

/// A problem that stops the replay before it starts (exit 2).
#[derive(Debug)]
pub struct Fatal(pub String);

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Fatal {}

pub async fn run(mut cfg: Config) -> Result<Outcome, Fatal> {
    let plan = load::load(&cfg.trace, &cfg.filter, cfg.read_only).map_err(|e| Fatal(format!("{e:#}")))?;
    // Recorded upstreams that were TLS, among the routes replayed.
    let tls_routes: Vec<_> = plan.upstream_tls.iter().filter(|(r, _)| plan.conns.iter().any(|c| c.route == *r)).cloned().collect();
    cfg.targets.set_recorded_tls(&tls_routes).map_err(|e| Fatal(format!("{e:#}")))?;
    let unknown = cfg.targets.unknown_keys(&plan.routes);
    if !unknown.is_empty() {
        return Err(Fatal(format!(
            "--target {}: no such protocol or route in the trace; routes are: {}",
            unknown.join(", "),
            plan.routes.join(", ")
        )));
    }
    for r in &cfg.filter.routes {
        let known = crate::target::replayed_protocol(r).is_some() || plan.routes.contains(r);
        if !known {
            return Err(Fatal(format!("--route {r}: no such protocol or route in the trace; routes are: {}", plan.routes.join(", "))));
        }
    }
    if plan.conns.is_empty() {
        let mut msg = "nothing to replay: no connection of the trace is left".to_string();
        if plan.filtered > 0 {
            msg.push_str(&format!(" ({} exchanges left out by the filters)", plan.filtered));
        }
        for (why, n) in &plan.skipped {
            msg.push_str(&format!("; {n} skipped: {why}"));
        }
        for d in &plan.damage {
            msg.push_str(&format!("; damaged: {d}"));
        }
        return Err(Fatal(msg));
    }
    let timer = Timer::start();
    let result = drive(&cfg, plan, timer.clone()).await;
    timer.shutdown();
    result
}

fn target_of(cfg: &Config, c: &ConnScript) -> Target {
    cfg.targets.resolve(&c.route, c.protocol.name(), &c.server)
}

/// Opens one connection to every distinct target (with its opening:
/// PostgreSQL authentication, Redis AUTH), so that a wrong address or
/// password is one clear error rather than every exchange failing.
async fn preflight(cfg: &Config, plan: &Plan, opts: &SessionOpts) -> Result<(), Fatal> {
    let mut seen = HashSet::new();
    for c in &plan.conns {
        let t = target_of(cfg, c);
        let user = c.startup.as_ref().and_then(|p| p.iter().find(|(k, _)| k == "user").map(|(_, v)| v.clone()));
        if !seen.insert((t.addr.clone(), c.protocol as u8, user)) {
            continue;
        }
        if let Err(e) = session::open(c, &t, opts).await {
            let given = if t.addr != c.server {
                format!("target {} from --target", t.addr)
            } else {
                format!("recorded upstream {}; point it elsewhere with --target", t.addr)
            };
            return Err(Fatal(format!("route {} ({given}): {e}", c.route)));
        }
    }
    Ok(())
}

/// Per connection: when it opens and when each message is due, from `base`.
fn schedule(cfg: &Config, plan: &Plan, base: Instant) -> Vec<(Option<Instant>, Vec<Option<Instant>>)> {
    let at = |ns: f64| base + Duration::from_nanos(ns.max(0.0) as u64);
    match cfg.timing {
        Timing::Max => plan.conns.iter().map(|c| (None, vec![None; c.sends.len()])).collect(),
        Timing::Recorded { speed } => plan
            .conns
            .iter()
            .map(|c| {
                let rel = |ts: u64| at(ts.saturating_sub(plan.start_ts) as f64 / speed);
                (Some(rel(c.open_ts)), c.sends.iter().map(|s| Some(rel(s.ts))).collect())
            })
            .collect(),
        Timing::Rate { per_sec } => {
            let mut starts: Vec<(u64, usize, usize)> = Vec::new();
            for (ci, c) in plan.conns.iter().enumerate() {
                for (si, s) in c.sends.iter().enumerate() {
                    if s.starts.is_some() {
                        starts.push((s.ts, ci, si));
                    }
                }
            }
            starts.sort();
            let mut due: Vec<Vec<Option<Instant>>> = plan.conns.iter().map(|c| vec![None; c.sends.len()]).collect();
            for (k, (_, ci, si)) in starts.iter().enumerate() {
                due[*ci][*si] = Some(at(k as f64 * 1e9 / per_sec));
            }
            plan.conns
                .iter()
                .zip(due)
                .map(|(_, mut d)| {
                    // Messages that start no exchange go with the one before.
                    let mut last = d.iter().flatten().next().copied().unwrap_or(base);
                    for x in d.iter_mut() {
                        match x {
                            Some(t) => last = *t,
                            None => *x = Some(last),
                        }
                    }
                    let open = d.iter().flatten().next().copied().or(Some(base));
                    (open, d)
                })
                .collect()
        }
    }
}

async fn drive(cfg: &Config, plan: Plan, timer: Timer) -> Result<Outcome, Fatal> {
    let started = Instant::now();
    let deadline = cfg.duration.map(|d| started + d);
    let opts = SessionOpts { clock: started, timeout: cfg.timeout, deadline, timer };
    preflight(cfg, &plan, &opts).await?;
    let mut report = Report::new();
    for (why, n) in &plan.skipped {
        report.skip(why, *n);
    }
    let mut exchanges = Vec::new();
    let loops = cfg.loops.unwrap_or(if cfg.duration.is_some() { u64::MAX } else { 1 });
    let per_loop = plan.exchange_count();
    // Unknown (0) when looping until --duration ends.
    let total = if loops == u64::MAX { 0 } else { per_loop.saturating_mul(loops) };
    let scripts: Vec<Arc<ConnScript>> = plan.conns.iter().cloned().map(Arc::new).collect();
    let targets: Vec<Target> = plan.conns.iter().map(|c| target_of(cfg, c)).collect();
    let limit = cfg.concurrency.map(|n| Arc::new(Semaphore::new(n.max(1))));
    let mut unsent = 0u64;
    let mut own_lateness = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant figures is valid");
    let mut loops_done = 0;
    let mut progress = Progress::new(cfg.progress, total, loops > 1 && cfg.loops.is_some());
    // Start a little ahead so that the first connections are not late.
    let lead = Duration::from_millis(20);
    while loops_done < loops {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let base = Instant::now() + lead;
        let plan_times = schedule(cfg, &plan, base);
        let (tx, mut rx) = mpsc::unbounded_channel::<Replayed>();
        let mut tasks = tokio::task::JoinSet::new();
        for ((script, target), (open_at, dues)) in scripts.iter().zip(&targets).zip(plan_times) {
            let (script, target, opts, tx, limit) = (script.clone(), target.clone(), opts.clone(), tx.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = match &limit {
                    Some(s) => s.clone().acquire_owned().await.ok(),
                    None => None,
                };
                session::replay_connection(script, target, dues, open_at, opts, tx).await
            });
        }
        drop(tx);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                r = rx.recv() => {
                    let Some(ex) = r else { break };
                    let diffs = compare::compare_exchange(&ex, &cfg.noise);
                    report.add(&ex, &diffs);
                    progress.count(&ex, &diffs);
                    if cfg.keep_exchanges {
                        exchanges.push(ex);
                    }
                }
                _ = tick.tick() => progress.show(loops_done),
            }
        }
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(o) => {
                    unsent += o.unsent;
                    let _ = own_lateness.add(&o.own_lateness);
                }
                Err(e) => return Err(Fatal(format!("internal error: a connection task failed: {e}"))),
            }
        }
        loops_done += 1;
    }
    progress.finish();
    if unsent > 0 {
        report.skip("not sent before --duration ended", unsent);
    }
    report.run = RunFigures {
        own_lateness,
        elapsed: started.elapsed(),
        recorded_span: Duration::from_nanos(plan.end_ts - plan.start_ts),
        loops: loops_done,
        filtered: plan.filtered,
        damage: plan.damage,
        notes: plan.notes,
    };
    // Exchanges of one connection arrive in order; connections interleave.
    exchanges.sort_by_key(|e| (e.src, e.conn));
    Ok(Outcome { report, exchanges })
}

/// The progress line: on stderr, only when asked (a terminal).
struct Progress {
    on: bool,
    total: u64,
    done: u64,
    bad: u64,
    shown: bool,
    loops: bool,
}

impl Progress {
    fn new(on: bool, total: u64, loops: bool) -> Progress {
        Progress { on, total, done: 0, bad: 0, shown: false, loops }
    }

    fn count(&mut self, ex: &Replayed, diffs: &[crate::model::Difference]) {
        self.done += 1;
        if ex.replayed.is_err() || !diffs.is_empty() {
            self.bad += 1;
        }
    }

    fn show(&mut self, loops_done: u64) {
        if !self.on {
            return;
        }
        let mut line = if self.total > 0 {
            format!("olreplay: {} / {} exchanges", self.done, self.total)
        } else {
            format!("olreplay: {} exchanges", self.done)
        };
        if self.total > 0 {
            let width = 30;
            let filled = ((self.done.min(self.total) * width) / self.total.max(1)) as usize;
            line = format!("[{}{}] {line}", "#".repeat(filled), ".".repeat(width as usize - filled));
        }
        if self.bad > 0 {
            line.push_str(&format!(", {} differed or failed", self.bad));
        }
        if self.loops {
            line.push_str(&format!(", loop {}", loops_done + 1));
        }
        eprint!("\r{line}\x1b[K");
        let _ = std::io::stderr().flush();
        self.shown = true;
    }

    fn finish(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        }
    }
}
