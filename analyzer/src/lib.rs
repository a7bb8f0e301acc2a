//! `analyzer`: the library behind `olanalyze`, which explains a trace:
//! where each invocation's time goes, its call patterns, the call classes,
//! and the locality a load balancer could use.
//!
//! The pipeline streams: [`format::merge::Merged`] interleaves the traces
//! by time; [`assemble`] joins calls to their invocations through the
//! trace view (`format::view`) and hands on each invocation once it has
//! closed; [`analysis`] folds each closed invocation into the reports
//! ([`timeline`] splits its time, [`patterns`] finds its patterns) and
//! forgets it. Memory is bounded by the invocations in flight, the call
//! classes and capped locality sets (see docs/analysis.md).
//!
//! - [`call`]: one downstream call: its class key, identity and objects.
//! - [`statement`]: SQL statements' classes, cached by text and by
//!   fingerprint.
//! - [`report`]: the one result type, [`Analysis`]; [`text`] renders it
//!   for a terminal, `--json` is its serde form.
//! - [`stats`]: histograms, sampled sets, invocations in flight.
//! - [`session`]: `--session-key`, how many workers each session ran on.
//! - [`diff`]: `olanalyze diff`, two analyses compared against rules.
//! - [`html`]: the analysis as one self-contained HTML page (`--html`).

pub mod analysis;
pub mod assemble;
pub mod call;
pub mod diff;
pub mod html;
pub mod patterns;
pub mod report;
pub mod session;
pub mod statement;
pub mod stats;
pub mod text;
pub mod timeline;

pub use report::Analysis;

use assemble::{Assembler, Out};
use format::view::Filter;
use format::{Body, Reader};
use std::io::IsTerminal;
use std::path::PathBuf;

/// What to analyse.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub traces: Vec<PathBuf>,
    /// Lambdas and time window (the other criteria are not used).
    pub filter: Filter,
    /// Draw this invocation's waterfall.
    pub invocation: Option<u64>,
    /// Show a progress bar on stderr when it is a terminal.
    pub progress: bool,
    /// Where invocations' session keys are (sessions per worker).
    pub session_key: Option<session::SessionKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("{path}: {source} (olanalyze reads trace files written by oltrace)")]
    Open { path: String, source: format::FormatError },
    #[error("no invocation {0} in the trace (`oltrace cat --kind invocation TRACE` lists the ids)")]
    NoInvocation(u64),
    #[error("no trace given")]
    NoInput,
}

/// Reads the traces and builds the analysis. Damage inside a trace is not
/// an error: it is skipped and listed in `overview.damage`.
pub fn run(config: &Config) -> Result<Analysis, AnalyzeError> {
    if config.traces.is_empty() {
        return Err(AnalyzeError::NoInput);
    }
    let mut readers = Vec::new();
    for path in &config.traces {
        let mut reader = Reader::open(path).map_err(|source| AnalyzeError::Open { path: path.display().to_string(), source })?;
        // Server messages are only counted: their bytes and decoded form
        // are skipped unread (half the records, most of the decoding).
        reader.lean_messages(format::Direction::ToClient);
        // Client messages' bytes are read only for session keys (their
        // decoded form gives Bind's parameters).
        if config.session_key.is_none() {
            reader.lean_message_bytes(format::Direction::ToServer);
        }
        readers.push(reader);
    }
    let headers: Vec<format::Header> = readers.iter().map(|r| r.header().clone()).collect();
    let (_, plan) = format::merge::merged_header("olanalyze", &headers.iter().collect::<Vec<_>>());
    // No reorder window: the inputs are interleaved by time, but records a
    // little out of order within one input are passed on as they come.
    // The assembler tolerates that (an invocation closes CLOSE_WINDOW_NS
    // after its end), and sorting each input would cost a heap of every
    // record in the window.
    let merged = format::merge::Merged::new(readers, &plan, 0);
    let batches = read_ahead(merged);
    let progress = progress_bar(config.progress);
    let mut assembler = Assembler::new(config.filter.clone(), config.session_key.clone());
    let mut analyzer = analysis::Analyzer::default();
    analyzer.session_key = config.session_key.clone();
    analyzer.waterfall_of = config.invocation;
    analyzer.analysis.inputs = config.traces.iter().map(|p| p.display().to_string()).collect();
    let mut out = Vec::new();
    while let Some(batch) = batches.recv() {
        for item in batch.iter() {
            let record = match item {
                Ok(r) => r,
                Err((i, damage)) => {
                    analyzer.analysis.overview.damage.push(format!("{}: {damage}", config.traces[*i].display()));
                    continue;
                }
            };
            let o = &mut analyzer.analysis.overview;
            o.records += 1;
            if o.records % 65_536 == 0 {
                progress.set_position(o.records);
            }
            o.first_ns = if o.records == 1 { record.ts } else { o.first_ns.min(record.ts) };
            o.last_ns = o.last_ns.max(record.ts);
            assembler.push(record, &mut out);
            match &record.body {
                Body::Exchange(_) => {
                    if let Some(p) = assembler.view().conns.protocol_of(record) {
                        *o.exchanges.entry(p.name().to_owned()).or_default() += 1;
                    }
                }
                Body::Gap(g) => {
                    o.gaps += 1;
                    o.gap_bytes += g.bytes;
                }
                Body::Fallback(_) => o.fallbacks += 1,
                _ => {}
            }
            drain(&mut analyzer, &mut out);
            analyzer.settle(assembler.horizon(record.ts));
        }
    }
    assembler.finish(&mut out);
    drain(&mut analyzer, &mut out);
    progress.finish_and_clear();
    analyzer.analysis.overview.max_open_invocations = assembler.max_open as u64;
    if let Some(id) = config.invocation {
        if analyzer.analysis.waterfall.is_none() {
            return Err(AnalyzeError::NoInvocation(id));
        }
    }
    Ok(analyzer.finish())
}

/// Records read, decompressed and decoded per batch handed over.
const BATCH: usize = 4096;
/// Batches decoded ahead of the analysis.
const BATCHES_AHEAD: usize = 4;

/// One record read, or a damaged stretch of input `usize`.
type Item = Result<format::Record, (usize, format::Damage)>;

/// Reads and decodes `merged` on a thread of its own, a few batches ahead
/// of the analysis: reading is about half of the work, so the two halves
/// run side by side on two cores. Memory stays bounded (at most
/// `BATCHES_AHEAD` batches in flight, and those handed back).
fn read_ahead<R: std::io::Read + Send + 'static>(merged: format::merge::Merged<R>) -> Batches<Item> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Item>>(BATCHES_AHEAD);
    let (back, done) = std::sync::mpsc::channel::<Vec<Item>>();
    std::thread::spawn(move || {
        let mut merged = merged;
        loop {
            // A batch the analysis is done with: its records are decoded
            // over (their allocations reused, none moved) and freed here,
            // on the thread that allocated them (freeing them on the
            // analysis thread was a sixth of its work).
            let mut batch = done.try_recv().unwrap_or_default();
            let last = !fill(&mut merged, &mut batch);
            // The receiver gone (the analysis stopped early) ends reading.
            if tx.send(batch).is_err() || last {
                return;
            }
        }
    });
    Batches { rx, back }
}

/// Decodes up to `BATCH` records of `merged` over the items of `batch`
/// (adding or dropping items to fit). False once the input has ended.
fn fill<R: std::io::Read>(merged: &mut format::merge::Merged<R>, batch: &mut Vec<Item>) -> bool {
    for n in 0..BATCH {
        if n == batch.len() {
            batch.push(Ok(<format::Record as format::codec::Codec>::empty()));
        }
        let slot = &mut batch[n];
        if slot.is_err() {
            *slot = Ok(<format::Record as format::codec::Codec>::empty());
        }
        let Ok(record) = slot else { unreachable!("set just above") };
        match merged.next_into(record) {
            Some(Ok(())) => {}
            Some(Err(damage)) => *slot = Err(damage),
            None => {
                batch.truncate(n);
                return false;
            }
        }
    }
    batch.truncate(BATCH);
    true
}

/// The batches [`read_ahead`] decodes, each handed back once used.
struct Batches<T> {
    rx: std::sync::mpsc::Receiver<Vec<T>>,
    back: std::sync::mpsc::Sender<Vec<T>>,
}

impl<T> Batches<T> {
    /// The next batch, lent until dropped.
    fn recv(&self) -> Option<Lent<'_, T>> {
        self.rx.recv().ok().map(|batch| Lent { batch, back: &self.back })
    }
}

/// A batch lent to the analysis; dropped, it goes back to the reader.
struct Lent<'a, T> {
    batch: Vec<T>,
    back: &'a std::sync::mpsc::Sender<Vec<T>>,
}

impl<T> std::ops::Deref for Lent<'_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.batch
    }
}

impl<T> Drop for Lent<'_, T> {
    fn drop(&mut self) {
        // The reader gone (it read everything), the batch is freed here.
        let _ = self.back.send(std::mem::take(&mut self.batch));
    }
}

fn drain(analyzer: &mut analysis::Analyzer, out: &mut Vec<Out>) {
    for o in out.drain(..) {
        match o {
            Out::Invocation(inv) => analyzer.invocation(&inv),
            Out::Loose { call, late } => analyzer.loose(&call, late),
        }
    }
}

fn progress_bar(wanted: bool) -> indicatif::ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {pos} records read {elapsed}").expect("valid template"));
    bar
}
