//! `olreplay`: re-drives a recorded trace against a backend (regression
//! runs, workload replay). This file is only the command line: it turns
//! the flags into a [`replayer::run::Config`], runs it (or
//! [`replayer::learn::learn_noise`] for `--learn-noise`), and prints what
//! came out.

use clap::Parser;
use format::view::{parse_duration, Filter};
use replayer::noise::NoiseRules;
use replayer::run::{self, Config, Timing};
use replayer::target::{Targets, TlsOptions};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const AFTER_HELP: &str = "\
Examples:
  olreplay trace.mp                                  # back to the recorded upstreams, recorded timing
  olreplay trace.mp --target postgres=postgres://app:secret@127.0.0.1:5433/app
  olreplay trace.mp --target http=http://127.0.0.1:8081 --route http   # drive only the HTTP route
  olreplay trace.mp --speed 10                       # ten times faster
  olreplay trace.mp --rate 500/s                     # exchanges at a fixed rate, open loop
  olreplay trace.mp --max --concurrency 32           # as fast as possible
  olreplay trace.mp --read-only --report json --junit replay.xml
  olreplay trace.mp --learn-noise noise.toml         # replay twice against the baseline, learn what varies
  olreplay trace.mp --target postgres=postgres://127.0.0.1:5433/app --noise noise.toml

Targets: KEY=URL, KEY a protocol (http, postgres, redis, tcp) or a route name from the trace
(`oltrace info` lists them). PostgreSQL and Redis connections authenticate afresh with the URL's
credentials (PostgreSQL: trust, password, MD5, SCRAM-SHA-256; also PGPASSWORD); recorded passwords
are redacted and never re-sent. HTTP requests get the target's Host.

TLS: https:// and rediss:// targets check the certificate and the host name against the system's
CAs; postgres:// URLs take libpq's sslmode=require|verify-ca|verify-full. In any TLS URL,
sslrootcert=FILE (else --cacert FILE) gives the CAs to check against; --insecure checks nothing.
Recorded upstreams that were TLS (upstream-tls= on the route) are met in TLS again.
  olreplay trace.mp --target http=https://api.local:8443 --cacert ca.pem
  olreplay trace.mp --target redis=rediss://:secret@cache.local:6380
  olreplay trace.mp --target pg='postgres://app@db.local/app?sslmode=verify-full&sslrootcert=ca.pem'

Exit codes:
  0  every exchange matched (after noise rules)
  1  differences, failed exchanges, or a damaged trace (what was intact was replayed)
  2  error: bad arguments, unreadable trace, unreachable target, refused credentials,
     a target's TLS certificate refused";

#[derive(Parser, Debug)]
#[command(name = "olreplay", version, about = "Replay a recorded trace against a backend and compare every response", after_help = AFTER_HELP)]
struct Args {
    /// The trace to replay (*.mp)
    trace: PathBuf,

    /// Send a protocol's (or a route's) connections to URL instead of the
    /// recorded upstream (repeatable)
    #[arg(long = "target", value_name = "PROTO=URL")]
    targets: Vec<String>,

    /// Don't check TLS certificates (curl's -k): https://, rediss:// and
    /// sslmode=require targets, and recorded upstreams that were TLS, are
    /// still encrypted
    #[arg(short = 'k', long)]
    insecure: bool,

    /// CA certificates (PEM) to check TLS targets against instead of the
    /// system's, for targets whose URL has no sslrootcert= (and recorded
    /// upstreams that were TLS)
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,

    /// Replay only these routes or protocols (repeatable); the worker under
    /// test issues the rest (its downstream calls) itself
    #[arg(long = "route", visible_alias = "drive", value_name = "ROUTE|PROTO")]
    routes: Vec<String>,

    /// Replay only the protocol (repeatable; same as --route PROTO)
    #[arg(long = "proto", value_name = "PROTO", value_parser = parse_proto)]
    protos: Vec<format::Protocol>,

    /// Replay only the invocations of this lambda, and the connections
    /// carrying its downstream calls (repeatable)
    #[arg(long = "lambda", value_name = "NAME")]
    lambdas: Vec<String>,

    /// Replay only what the trace recorded from this offset on (e.g. 30s, 2m)
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    from: Option<Duration>,

    /// ... and before this offset
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    to: Option<Duration>,

    /// Recorded timing, this many times faster (0.5: twice as slow)
    #[arg(long, value_name = "X", conflicts_with_all = ["rate", "max"])]
    speed: Option<f64>,

    /// Exchanges at a fixed rate, open loop, in recorded order (e.g. 500/s, 500)
    #[arg(long, value_name = "N/s", value_parser = run::parse_rate, conflicts_with = "max")]
    rate: Option<f64>,

    /// As fast as possible: each connection sends as soon as the responses it
    /// waited for have come
    #[arg(long)]
    max: bool,

    /// At most N connections open at once
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,

    /// Replay the trace N times, one after the other
    #[arg(long = "loop", value_name = "N")]
    loops: Option<u64>,

    /// Stop after this long (loops the trace until then unless --loop is given)
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    duration: Option<Duration>,

    /// Skip writes: SQL that modifies, Redis write commands, HTTP methods other
    /// than GET/HEAD/OPTIONS/TRACE; the report says how many
    #[arg(long)]
    read_only: bool,

    /// How long to wait for a connection or a response
    #[arg(long, value_name = "TIME", default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,

    /// Noise rules: differences that are expected (timestamps, ids), on top
    /// of the built-in ones (HTTP date, expires, set-cookie, x-request-id...);
    /// repeatable (the first file's `headers` and `defaults` apply)
    #[arg(long, value_name = "FILE")]
    noise: Vec<PathBuf>,

    /// Leave out the built-in noise rules: every difference counts unless
    /// --noise names it
    #[arg(long)]
    no_default_noise: bool,

    /// Replay twice against the target (the baseline), write one rule per
    /// field that differed between those two runs (scoped to its key) to
    /// FILE, and exit 0; differences from the recording are not learned
    #[arg(long, value_name = "FILE", conflicts_with_all = ["loops", "duration"])]
    learn_noise: Option<PathBuf>,

    /// The report on stdout: text or json
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    report: String,

    /// Also write a JUnit XML file, for CI
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Worker threads (default: one per core)
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Hide the progress line (shown on stderr when it is a terminal)
    #[arg(long)]
    no_progress: bool,
}

fn parse_proto(s: &str) -> Result<format::Protocol, String> {
    replayer::target::replayed_protocol(s).ok_or_else(|| format!("{s:?}: use http, postgres, redis or tcp"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match real_main(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("olreplay: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main(args: Args) -> anyhow::Result<u8> {
    let targets = Targets::parse(&args.targets, TlsOptions::new(args.insecure, args.cacert.clone())?)?;
    let timing = Timing::from_flags(args.max, args.rate, args.speed)?;
    if args.concurrency == Some(0) {
        anyhow::bail!("--concurrency 0: give at least 1");
    }
    let noise = NoiseRules::from_files(&args.noise, !args.no_default_noise)?;
    let mut filter = Filter {
        protocols: args.protos.clone(),
        lambdas: args.lambdas.clone(),
        from_ns: args.from.map(|d| d.as_nanos() as u64),
        to_ns: args.to.map(|d| d.as_nanos() as u64),
        ..Filter::default()
    };
    replayer::load::add_routes(&mut filter, &args.routes);
    let cfg = Config {
        trace: args.trace.clone(),
        targets,
        filter,
        read_only: args.read_only,
        timing,
        concurrency: args.concurrency,
        loops: args.loops,
        duration: args.duration,
        timeout: args.timeout,
        noise,
        progress: !args.no_progress && std::io::stderr().is_terminal(),
        keep_exchanges: args.learn_noise.is_some(),
    };
    let rt = match args.threads {
        Some(0) => anyhow::bail!("--threads 0: give at least 1"),
        Some(1) => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        Some(n) => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()?,
        None => tokio::runtime::Builder::new_multi_thread().enable_all().build()?,
    };
    if let Some(path) = &args.learn_noise {
        let l = rt.block_on(replayer::learn::learn_noise(cfg, path))?;
        println!(
            "learned {} noise rule(s) over {} key(s) from two replays of {} exchanges; wrote {}",
            l.rules,
            l.keys,
            l.exchanges,
            path.display()
        );
        if l.failed > 0 {
            eprintln!("olreplay: note: {} exchange(s) failed in the two replays; nothing was learned from them", l.failed);
        }
        return Ok(0);
    }
    let report = rt.block_on(run::run(cfg))?.report;
    match args.report.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&report.json())?),
        _ => print!("{}", report.text()),
    }
    if let Some(path) = &args.junit {
        report.write_junit(path).map_err(|e| anyhow::anyhow!("--junit {}: {e}", path.display()))?;
    }
    Ok(report.exit_code())
}
