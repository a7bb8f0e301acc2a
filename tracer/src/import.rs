//! `oltrace import CAPTURE -o TRACE`: a `.pcap` or `.pcapng` file (tcpdump,
//! Wireshark) into a trace, through the same recorder the proxy uses (see
//! [`crate::packets`]). Reading is pure Rust: no libpcap needed.
//!
//! The trace's anchor is the first packet's time, so its records carry the
//! capture's times. A file cut short or damaged part way is imported up to
//! the damage (exit 1); packets the snap length cut, and segments the
//! capture missed, become gap records with their byte counts (exit 1).

use crate::packets::{PacketOptions, PacketRecorder, PacketStats, Report};
use crate::proxy::recorder::Summary;
use crate::Outcome;
use anyhow::Context;
use capture::CaptureFile;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct ImportConfig {
    pub input: PathBuf,
    pub output: PathBuf,
    pub options: PacketOptions,
    pub source_name: Option<String>,
    pub json: bool,
}

/// What an import did.
#[derive(Debug)]
pub struct Imported {
    pub summary: Summary,
    pub stats: PacketStats,
    /// Why reading stopped before the end of the file, if it did.
    pub damage: Option<String>,
    pub seconds: f64,
    pub input_bytes: u64,
}

pub fn run(config: &ImportConfig) -> anyhow::Result<Outcome> {
    let r = import(config)?;
    let report = Report {
        command: "oltrace import",
        read_from: format!("{} ({:.1} MB, {:.0} MB/s)", config.input.display(), r.input_bytes as f64 / 1e6, r.input_bytes as f64 / 1e6 / r.seconds.max(1e-9)),
        output: &config.output,
        summary: &r.summary,
        stats: &r.stats,
        seconds: r.seconds,
        extra: serde_json::json!({ "input": config.input.display().to_string(), "damage": r.damage }),
    };
    let mut outcome = report.print(config.json);
    if let Some(d) = &r.damage {
        eprintln!("oltrace import: {}: {d}; what came before it is imported", config.input.display());
        outcome = Outcome::Damaged;
    }
    if let Some(e) = &r.summary.error {
        anyhow::bail!("writing {}: {e}", config.output.display());
    }
    Ok(outcome)
}

/// Counts the bytes read through it, for the progress bar and the rate.
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

pub fn import(config: &ImportConfig) -> anyhow::Result<Imported> {
    let started = std::time::Instant::now();
    let file = std::fs::File::open(&config.input).with_context(|| format!("cannot open {}", config.input.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let read = Arc::new(AtomicU64::new(0));
    let counted = Counted { inner: std::io::BufReader::with_capacity(1 << 20, file), read: read.clone() };
    let mut capture = CaptureFile::open(counted).map_err(|e| anyhow::anyhow!("{}: {e}", config.input.display()))?;
    // The first frame gives the trace its anchor; it is read before the
    // trace is created, so a file with no intact packet leaves none.
    let first = match capture.peek_ts() {
        None => None,
        Some(Ok(ts)) => Some(ts),
        Some(Err(e)) => anyhow::bail!("{}: {e}; no packet could be read", config.input.display()),
    };
    let mut header = format::Header::new(&format!("oltrace {}", env!("CARGO_PKG_VERSION")), config.source_name.as_deref().unwrap_or(&source_name(&config.input)));
    if let Some(ts) = first {
        header.anchor_unix_ns = ts;
        for s in &mut header.sources {
            s.anchor_unix_ns = ts;
        }
    }
    header.meta.insert("imported_from".into(), config.input.display().to_string());
    header.meta.insert("redact".into(), config.options.redact.enabled().to_string());
    header.redaction = Some(config.options.redact.record("oltrace import"));
    let ports: Vec<String> = config.options.ports.0.iter().map(|(port, p)| format!("{}={port}", p.name())).collect();
    header.meta.insert("ports".into(), ports.join(" "));
    let mut writer = format::Writer::create(&config.output, &header, format::WriterOptions::default())
        .map_err(|e| anyhow::anyhow!("cannot create the trace {}: {e}", config.output.display()))?;
    let bar = progress_bar(size);
    let mut recorder = PacketRecorder::new(&mut writer, config.options.clone(), header.anchor_unix_ns);
    let mut failed = None;
    let mut damage = None;
    let mut handled = 0u64;
    loop {
        let frame = match capture.next_frame() {
            None => break,
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                let lost = size.saturating_sub(read.load(Ordering::Relaxed));
                // The damage goes in the trace too, where readers see it.
                let reason = format!("capture file {}: {e}", config.input.display());
                if let Err(e) = recorder.lost(lost, 0, reason, 0) {
                    failed = Some(e);
                }
                damage = Some(e.to_string());
                break;
            }
        };
        if let Err(e) = recorder.frame(&frame) {
            failed = Some(e);
            break;
        }
        handled += 1;
        if handled.is_multiple_of(4096) {
            if let Some(bar) = &bar {
                bar.set_position(read.load(Ordering::Relaxed));
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let (mut summary, stats) = recorder.finish();
    if let Some(e) = failed {
        summary.error.get_or_insert(e);
    }
    Ok(Imported { summary, stats, damage, seconds: started.elapsed().as_secs_f64(), input_bytes: read.load(Ordering::Relaxed) })
}

fn source_name(input: &Path) -> String {
    input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "capture".into())
}

/// A bar over the file's bytes, on stderr when it is a terminal, for files
/// big enough to wait for.
fn progress_bar(size: u64) -> Option<indicatif::ProgressBar> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if size < 64 << 20 {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("oltrace import {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)").unwrap_or_else(|_| ProgressStyle::default_bar()));
    Some(bar)
}
