//! `oltrace export`: a trace in the formats other tools read.
//!
//! The traces are read as one time-ordered stream (`format::merge`, as
//! `olanalyze` reads them), each record observed once by the shared trace
//! view (`format::view`: connections and the invocation join), then handed
//! to one [`Sink`] per format. Sinks stream: what they keep is bounded by
//! connections and invocations in flight, never by records.
//!
//! - [`facts`]: what every format says about one exchange (role,
//!   statement, operation, class key, status, error, rows), derived once.
//! - [`jsonl`]: what `oltrace cat` prints.
//! - [`perfetto`]: Chrome Trace Event JSON for ui.perfetto.dev.
//! - [`otlp`]: OTLP/JSON spans, to a file and/or pushed to a collector
//!   ([`otlp_push`]).
//! - [`har`]: HAR 1.2 of the HTTP exchanges.
//! - [`parquet`]: a folder of Parquet tables for DuckDB, Spark and friends
//!   (schema in docs/export.md).
//! - [`pcap`]: synthetic TCP/IP packets (Wireshark, tshark, `oltrace
//!   import`).
//!
//! Adding a format: a file here with a type that implements [`Sink`], a
//! variant of [`ExportFormat`], and its arm in [`open_sink`].

pub mod facts;
pub mod har;
pub mod jsonl;
pub mod otlp;
pub mod otlp_push;
pub mod parquet;
pub mod pcap;
pub mod perfetto;

use crate::log_join::LogJoin;
use crate::{open_trace, Outcome};
use anyhow::Context as _;
use format::view::{Seen, View, STREAM_RETENTION_NS};
use format::{Header, Record};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The formats `oltrace export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Chrome Trace Event JSON (ui.perfetto.dev, chrome://tracing)
    Perfetto,
    /// OpenTelemetry spans as OTLP/JSON (Jaeger, Grafana Tempo)
    Otlp,
    /// HAR 1.2 of the HTTP exchanges (browser devtools, HAR viewers)
    Har,
    /// A folder of Parquet files: exchanges, invocations, connections, logs
    Parquet,
    /// JSON lines, as `oltrace cat` prints them
    Jsonl,
    /// Synthetic TCP/IP packets of the recorded messages (Wireshark, tshark;
    /// `oltrace import` reads them back)
    Pcap,
}

impl ExportFormat {
    /// True when the output is a folder rather than one file.
    pub fn is_folder(self) -> bool {
        self == ExportFormat::Parquet
    }
}

pub struct ExportConfig {
    pub format: ExportFormat,
    pub traces: Vec<PathBuf>,
    /// The file (folder for parquet) to write; `-` is stdout. `None` only
    /// with an OTLP endpoint.
    pub output: Option<PathBuf>,
    /// Push OTLP/HTTP JSON to this collector (`http://host:port`; the path
    /// `/v1/traces` is added when absent).
    pub otlp_endpoint: Option<String>,
    /// Where a log line holds its request id (as `oltrace logs
    /// --request-id-regex`), for the invocation of each exported log line.
    pub request_id: Option<regex::Regex>,
    /// Show a progress bar on stderr (hidden when not a terminal).
    pub progress: bool,
}

/// What a sink is told about each record, beyond the record itself.
pub struct Context<'a> {
    pub seen: &'a Seen<'a>,
    /// The invocation a log line belongs to, and how that was decided.
    pub log_invocation: Option<&'a crate::log_join::LogAttribution>,
}

/// One export format.
pub trait Sink {
    /// Takes the next record (in time order, within the merge window).
    fn record(&mut self, record: &Record, cx: &Context<'_>) -> anyhow::Result<()>;
    /// Writes what is still held and closes the output; returns a summary
    /// line for stderr.
    fn finish(self: Box<Self>) -> anyhow::Result<String>;
}

/// The sink of `format` writing to `out` (and/or the OTLP endpoint).
pub fn open_sink(config: &ExportConfig, header: &Header) -> anyhow::Result<Box<dyn Sink>> {
    let file = |path: &Option<PathBuf>| -> anyhow::Result<Option<Box<dyn Write>>> { path.as_deref().map(create_output).transpose() };
    Ok(match config.format {
        ExportFormat::Jsonl => Box::new(jsonl::Jsonl::new(need(file(&config.output)?)?)),
        ExportFormat::Perfetto => Box::new(perfetto::Perfetto::new(need(file(&config.output)?)?, header)?),
        ExportFormat::Har => Box::new(har::Har::new(need(file(&config.output)?)?, header)?),
        ExportFormat::Pcap => Box::new(pcap::Pcap::new(need(file(&config.output)?)?, header)?),
        ExportFormat::Otlp => {
            let push = config.otlp_endpoint.as_deref().map(otlp_push::Pusher::new).transpose()?;
            Box::new(otlp::Otlp::new(file(&config.output)?, push, header)?)
        }
        ExportFormat::Parquet => {
            let dir = config.output.as_deref().context("parquet needs -o FOLDER")?;
            Box::new(parquet::ParquetSink::create(dir, header)?)
        }
    })
}

fn need(out: Option<Box<dyn Write>>) -> anyhow::Result<Box<dyn Write>> {
    out.context("no output: give -o FILE (or -o - for stdout)")
}

/// Opens `path` for writing (`-` is stdout), buffered, with an error that
/// names the file and what to do.
pub fn create_output(path: &Path) -> anyhow::Result<Box<dyn Write>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout())));
    }
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot write {}: choose a writable path with -o", path.display()))?;
    Ok(Box::new(std::io::BufWriter::with_capacity(1 << 16, file)))
}

/// Runs an export. Damaged stretches of the input are reported on stderr
/// and skipped (exit 1); everything intact is exported.
pub fn run(config: &ExportConfig) -> anyhow::Result<Outcome> {
    if config.output.is_none() && config.otlp_endpoint.is_none() {
        anyhow::bail!("no output: give -o {} (or --otlp-endpoint URL with --format otlp)", if config.format.is_folder() { "FOLDER" } else { "FILE" });
    }
    if config.format.is_folder() && config.output.as_deref().is_some_and(|o| o.as_os_str() == "-") {
        anyhow::bail!("parquet writes a folder of files, not stdout: give -o FOLDER");
    }
    if config.otlp_endpoint.is_some() && config.format != ExportFormat::Otlp {
        anyhow::bail!("--otlp-endpoint goes with --format otlp");
    }
    let mut readers = Vec::new();
    for path in &config.traces {
        readers.push(open_trace(path)?);
    }
    let headers: Vec<Header> = readers.iter().map(|r| r.header().clone()).collect();
    let (header, plan) = format::merge::merged_header("oltrace export", &headers.iter().collect::<Vec<_>>());
    let header = if headers.len() == 1 { headers[0].clone() } else { header };
    let mut sink = open_sink(config, &header)?;
    let progress = crate::progress::records_bar(config.progress, "exported");
    // No reorder window, as olanalyze reads: records a little out of order
    // within one input are fine for every sink (they key by ids, not by
    // order), and sorting would hold every record in the window.
    let merged = format::merge::Merged::new(readers, &plan, 0);
    let mut view = View::with_retention(STREAM_RETENTION_NS);
    let mut logs = LogJoin::new(config.request_id.clone());
    let mut outcome = Outcome::Clean;
    let mut n = 0u64;
    for item in merged {
        let record = match item {
            Ok(r) => r,
            Err((i, damage)) => {
                outcome = Outcome::Damaged;
                progress.suspend(|| eprintln!("oltrace export: {}: damaged: {damage} (skipped; the rest is exported)", config.traces[i].display()));
                continue;
            }
        };
        n += 1;
        if n.is_multiple_of(65_536) {
            progress.set_position(n);
        }
        let seen = view.observe(&record);
        logs.observe(&record, &seen);
        let attributed = match &record.body {
            format::Body::Log(line) => logs.attribute(&record, line),
            _ => None,
        };
        sink.record(&record, &Context { seen: &seen, log_invocation: attributed.as_ref() })?;
    }
    progress.finish_and_clear();
    let summary = sink.finish()?;
    eprintln!("oltrace export: {n} records read; {summary}");
    Ok(outcome)
}
