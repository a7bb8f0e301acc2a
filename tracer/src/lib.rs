//! `tracer`: the library behind the `oltrace` command.
//!
//! `main.rs` is a thin clap layer: it turns arguments into the plain config
//! structs below and calls one `run` function per subcommand, which returns
//! an [`Outcome`] that becomes the exit code.
//!
//! # Layout
//!
//! - Record filters, connection tables and the invocation join come from
//!   the trace view shared with olreplay and olanalyze, `format::view`.
//! - [`json`]: the JSON-lines view of a record that `cat` prints.
//! - [`cat`]: `oltrace cat`, records as JSON lines.
//! - [`info`]: `oltrace info`, a summary of a trace and any damage in it.
//! - [`merge_cmd`]: `oltrace merge`, several traces into one.
//! - [`wrap`]: `oltrace wrap`, a worker run behind recording proxies.
//! - [`logfollow`]: `--log FILE`, log files folded into a trace as they grow.
//! - [`config`]: the recording options of `proxy` and `wrap` in one place:
//!   flags over the `--config FILE` TOML over defaults, merged and checked
//!   once into a `proxy::ProxyConfig`.
//! - [`proxy`]: `oltrace proxy`, recording proxies (routes, forwarding
//!   threads, the spool and the recorder).
//! - [`ca_cmd`]: `oltrace ca`, the CA that `--tls-intercept` signs its
//!   per-host certificates with.
//! - [`recover`]: `oltrace recover`, decoding the spool a killed
//!   recording left (`TRACE.spool`) into its trace.
//! - [`redact_cmd`]: `oltrace redact`, a trace rewritten with secrets
//!   blanked (the rules are `convert::redact`'s).
//! - [`generate`]: `oltrace generate`, synthetic traces for trying the
//!   tools, tests and benchmarks.
//! - [`packets`]: captured frames into a trace through the proxy's
//!   recorder (the `capture` crate reassembles them); [`import`]:
//!   `oltrace import`, a pcap/pcapng file into a trace (`oltrace export
//!   --format pcap` writes a trace back out as packets: [`export::pcap`]).
//! - [`live`]: `oltrace capture`, live capture with [`libpcap`], which is
//!   loaded at run time (nothing else needs it).
//! - [`export`]: `oltrace export`, a trace as Perfetto, OTLP, HAR, Parquet
//!   or JSON lines, one file per format.
//! - [`logs`]: `oltrace logs`, every source's log lines on one timeline,
//!   tagged with their invocation ([`log_join`] decides which).
//! - [`progress`]: the records-read progress bar of `export` and `logs`.

pub mod ca_cmd;
pub mod cat;
pub mod config;
pub mod export;
pub mod generate;
pub mod import;
pub mod info;
pub mod json;
pub mod libpcap;
pub mod live;
pub mod log_join;
pub mod logfollow;
pub mod logs;
pub mod merge_cmd;
pub mod packets;
pub mod progress;
pub mod proxy;
pub mod recover;
pub mod redact_cmd;
pub mod wrap;

/// How a command ended; `main` maps it to the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: done, nothing wrong.
    Clean,
    /// Exit 1: done, but damaged stretches of input were skipped.
    Damaged,
    /// Exit with this code: `oltrace wrap` passes on its command's.
    Exit(u8),
}

/// Opens a trace, with an error that names the file and the problem.
/// Says on stderr when a recording left a spool beside it.
pub fn open_trace(path: &std::path::Path) -> anyhow::Result<format::Reader<std::fs::File>> {
    warn_leftover_spool(path);
    format::Reader::open(path).map_err(|e| match e {
        format::FormatError::Io { .. } => anyhow::anyhow!(e),
        other => anyhow::anyhow!("{}: {other}", path.display()),
    })
}

/// Tells the user, on stderr, that `trace` has a spool left over from a
/// recording that did not finish: the trace lacks what is in it.
pub fn warn_leftover_spool(trace: &std::path::Path) {
    let spool = proxy::spool_file::path_for(trace);
    if spool.exists() && !proxy::spool_file::in_use(&spool) {
        eprintln!(
            "oltrace: {} is left over from a recording that did not finish (killed?): the trace lacks what it holds; run `oltrace recover {}` to decode it into the trace",
            spool.display(),
            trace.display()
        );
    }
}
