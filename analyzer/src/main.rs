//! `olanalyze`: the clap layer over [`analyzer::run`].

use clap::Parser;
use format::view::{parse_ns, Filter};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Explain a trace: where each invocation's time goes (PostgreSQL, Redis,
/// outbound HTTP, its own), its call patterns (N+1, repeated calls, serial
/// calls, fan-out, chattiness, transactions held across waits), the call
/// classes, and the locality a load balancer could use.
#[derive(Parser)]
#[command(
    name = "olanalyze",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Exit codes: 0 done; 1 done, but damaged parts of a trace were skipped (listed under DAMAGE), or for `diff` a --fail-on rule broke; 2 error (unreadable input, not a trace, bad arguments).\n\nReports and thresholds: docs/analysis.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Trace files (several: merged by time, as `oltrace merge` does)
    #[arg(required = true, value_name = "TRACE")]
    traces: Vec<PathBuf>,
    /// Only invocations of this lambda, and their calls (repeatable)
    #[arg(long = "lambda", value_name = "NAME")]
    lambdas: Vec<String>,
    /// Only invocations starting at or after this time since the trace's
    /// start (seconds, or 250ms, 30s, 2m)
    #[arg(long, value_name = "TIME", value_parser = parse_ns)]
    from: Option<u64>,
    /// ... and before this time
    #[arg(long, value_name = "TIME", value_parser = parse_ns)]
    to: Option<u64>,
    /// Print the analysis as JSON (the same result type as the text)
    #[arg(long)]
    json: bool,
    /// Draw this invocation and every call it made on one time axis
    #[arg(long, value_name = "ID")]
    invocation: Option<u64>,
    /// Also write the analysis as one self-contained HTML page (charts
    /// drawn inline, nothing fetched) to FILE
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// No progress bar
    #[arg(long)]
    no_progress: bool,
    /// Count how many workers each session ran on, its key taken from each
    /// invocation's request: header:NAME, query:NAME, json:FIELD or
    /// path:REGEX (first group), e.g. 'path:/users/(\d+)'
    #[arg(long, value_name = "SPEC")]
    session_key: Option<analyzer::session::SessionKey>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Compare the call patterns of two recordings of one workload (before
    /// and after a change): calls per invocation by class, classes and
    /// patterns new or gone, latency; exit 1 when a --fail-on rule breaks
    Diff(DiffArgs),
}

#[derive(clap::Args)]
struct DiffArgs {
    base: PathBuf,
    new: PathBuf,
    /// A rule NEW must keep (repeatable): calls-per-invocation:+10%,
    /// p99:+20%, new-pattern:ID (n_plus_one or n+1, repeated_call,
    /// serial_calls, fan_out, chatty, txn_across_wait), new-pattern (any),
    /// new-class
    #[arg(long = "fail-on", value_name = "RULE")]
    rules: Vec<analyzer::diff::Rule>,
    /// Print the comparison as JSON
    #[arg(long)]
    json: bool,
}

fn diff(a: DiffArgs) -> ExitCode {
    let analyse = |path: &PathBuf| analyzer::run(&analyzer::Config { traces: vec![path.clone()], ..analyzer::Config::default() });
    let (base, new) = match (analyse(&a.base), analyse(&a.new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("olanalyze: error: {e}");
            return ExitCode::from(2);
        }
    };
    let d = analyzer::diff::diff(&base, &new, &a.rules);
    let text = if a.json { serde_json::to_string_pretty(&d).unwrap_or_default() + "\n" } else { analyzer::diff::render(&d) };
    print!("{text}");
    if d.broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Diff(a)) = cli.command {
        return diff(a);
    }
    let config = analyzer::Config {
        traces: cli.traces,
        filter: Filter { lambdas: cli.lambdas, from_ns: cli.from, to_ns: cli.to, ..Filter::default() },
        invocation: cli.invocation,
        progress: !cli.no_progress,
        session_key: cli.session_key,
    };
    let analysis = match analyzer::run(&config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("olanalyze: error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &cli.html {
        if let Err(e) = std::fs::write(path, analyzer::html::render(&analysis)) {
            eprintln!("olanalyze: error: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    let text = if cli.json {
        serde_json::to_string_pretty(&analysis).map(|j| j + "\n").unwrap_or_default()
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        analyzer::text::render(&analysis, colour)
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("olanalyze: error: writing the report: {e}");
            return ExitCode::from(2);
        }
    }
    if analysis.overview.damage.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("olanalyze: {} damaged stretch(es) skipped; the report covers the rest", analysis.overview.damage.len());
        ExitCode::from(1)
    }
}
