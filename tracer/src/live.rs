//! `oltrace capture -i IFACE [FILTER] -o TRACE`: live capture with libpcap
//! (loaded at run time, see [`crate::libpcap`]) into a trace, decoded as
//! the proxy decodes.
//!
//! Two threads, as in the proxy: the capture thread only reads packets
//! from libpcap's ring and reassembles them ([`capture::Reassembler`]),
//! handing byte-stream events over a bounded channel; the recorder (this
//! thread) decodes and writes them ([`PacketRecorder::event`]), flushing
//! at least every 100 ms. If the recorder falls behind, the channel fills
//! and the capture thread waits: the kernel's buffer (64 MiB) takes the
//! burst, and what it cannot hold is dropped by the kernel, counted by
//! `pcap_stats`, and written as gap records with the time it was seen
//! (the connections' holes also become gaps with exact byte counts, from
//! the reassembler). SIGINT or SIGTERM stops reading, drains what libpcap
//! holds, closes the connections still open and flushes.

use crate::libpcap::{Handle, Libpcap, Next};
use crate::packets::{PacketOptions, PacketRecorder, PacketStats, Report};
use crate::Outcome;
use capture::frame::{self, Skip};
use capture::{Reassembler, StreamEvent};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct CaptureConfig {
    pub interface: String,
    /// tcpdump's filter language; empty: every packet (only TCP is kept).
    pub filter: String,
    pub output: PathBuf,
    pub options: PacketOptions,
    /// Load libpcap from here instead of the usual names.
    pub libpcap: Option<PathBuf>,
    /// Stop after this long (else at SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    pub source_name: Option<String>,
    pub json: bool,
}

/// What the capture thread hands the recorder.
enum Batch {
    Events(Vec<StreamEvent>),
    /// The kernel dropped `packets` more packets, noticed at `ts` (trace time).
    Drops { packets: u64, ts: u64 },
    Done { frames: u64, skipped: BTreeMap<Skip, u64>, counters: capture::Counters, error: Option<String> },
}

/// Events per batch: fewer channel operations under load.
const BATCH: usize = 256;
/// libpcap's read timeout: how soon a quiet capture notices a stop.
const READ_TIMEOUT_MS: i32 = 100;

pub fn run(config: &CaptureConfig) -> anyhow::Result<Outcome> {
    let lib = Libpcap::load(config.libpcap.as_deref())?;
    let handle = Handle::open(&lib, &config.interface, &config.filter, 64 << 20, READ_TIMEOUT_MS)?;
    let link = handle.link_type();
    let mut header = format::Header::new(&format!("oltrace {}", env!("CARGO_PKG_VERSION")), config.source_name.as_deref().unwrap_or(&config.interface));
    header.meta.insert("captured_on".into(), config.interface.clone());
    header.meta.insert("filter".into(), config.filter.clone());
    header.meta.insert("redact".into(), config.options.redact.enabled().to_string());
    header.redaction = Some(config.options.redact.record("oltrace capture"));
    let anchor = header.anchor_unix_ns;
    let mut writer = format::Writer::create(&config.output, &header, format::WriterOptions::default())
        .map_err(|e| anyhow::anyhow!("cannot create the trace {}: {e}", config.output.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone(), config.duration)?;
    eprintln!("oltrace capture: capturing on {} (link type {link}){}; Ctrl-C stops", config.interface, if config.filter.is_empty() { String::new() } else { format!(", filter '{}'", config.filter) });
    let started = Instant::now();
    let (tx, rx) = sync_channel::<Batch>(1024);
    let server_ports: Vec<u16> = config.options.ports.0.keys().copied().collect();
    let limits = config.options.reassembly;
    let (summary, stats) = std::thread::scope(|scope| {
        let capture_stop = stop.clone();
        scope.spawn(move || capture_thread(handle, link, anchor, limits, server_ports, capture_stop, tx));
        record(&mut writer, config.options.clone(), anchor, rx, &stop)
    });
    let report = Report {
        command: "oltrace capture",
        read_from: format!("interface {}", config.interface),
        output: &config.output,
        summary: &summary,
        stats: &stats,
        seconds: started.elapsed().as_secs_f64(),
        extra: serde_json::json!({ "interface": config.interface, "filter": config.filter }),
    };
    let outcome = report.print(config.json);
    if let Some(e) = &summary.error {
        anyhow::bail!("{e}");
    }
    Ok(outcome)
}

/// Sets `stop` at SIGINT or SIGTERM, or after `duration`.
fn watch_signals(stop: Arc<AtomicBool>, duration: Option<Duration>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Registered here, before capturing starts, so an early Ctrl-C counts.
    let (mut int, mut term) = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
    })?;
    std::thread::Builder::new().name("oltrace-signals".into()).spawn(move || {
        runtime.block_on(async {
            let timer = async {
                match duration {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = timer => {}
            }
        });
        stop.store(true, Ordering::Relaxed);
    })?;
    Ok(())
}

/// Reads packets and reassembles them until `stop`, then drains what
/// libpcap still holds.
#[allow(clippy::too_many_arguments)]
fn capture_thread(mut handle: Handle, link: u32, anchor: u64, limits: capture::Limits, server_ports: Vec<u16>, stop: Arc<AtomicBool>, tx: SyncSender<Batch>) {
    let mut reassembler = Reassembler::new(limits, server_ports);
    let mut events = Vec::new();
    let mut skipped: BTreeMap<Skip, u64> = BTreeMap::new();
    let mut frames = 0u64;
    let mut last_ts = 0;
    let mut drops = 0u64;
    let mut last_stats = Instant::now();
    let mut error = None;
    let mut stopping = false;
    loop {
        match handle.next_packet() {
            Ok(Next::Packet { ts_unix_ns, data, orig_len }) => {
                frames += 1;
                let ts = ts_unix_ns.saturating_sub(anchor);
                last_ts = last_ts.max(ts);
                match frame::tcp_segment(link, data, orig_len) {
                    Ok(seg) => reassembler.push(&seg, ts, &mut events),
                    Err(skip) => *skipped.entry(skip).or_default() += 1,
                }
                if events.len() >= BATCH && tx.send(Batch::Events(std::mem::take(&mut events))).is_err() {
                    return;
                }
            }
            Ok(Next::Timeout) => {
                // Quiet: connections idle past the timeout close now, not
                // at the next packet; what is pending is handed over.
                // Stopping: libpcap is drained once a read finds nothing.
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
                reassembler.expire_idle(now.saturating_sub(anchor).max(last_ts), &mut events);
                if !events.is_empty() && tx.send(Batch::Events(std::mem::take(&mut events))).is_err() {
                    return;
                }
                if stopping {
                    break;
                }
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        if !stopping && stop.load(Ordering::Relaxed) {
            stopping = true;
        }
        if last_stats.elapsed() >= Duration::from_secs(1) || stopping {
            last_stats = Instant::now();
            let now = handle.drops();
            if now > drops {
                let _ = tx.send(Batch::Drops { packets: now - drops, ts: last_ts });
                drops = now;
            }
        }
    }
    let now = handle.drops();
    if now > drops {
        let _ = tx.send(Batch::Drops { packets: now - drops, ts: last_ts });
    }
    reassembler.finish(last_ts, &mut events);
    let _ = tx.send(Batch::Events(events));
    let _ = tx.send(Batch::Done { frames, skipped, counters: reassembler.counters, error });
}

/// The recorder's side: decodes and writes what the capture thread sends.
fn record(writer: &mut format::Writer<std::fs::File>, options: PacketOptions, anchor: u64, rx: Receiver<Batch>, stop: &AtomicBool) -> (crate::proxy::recorder::Summary, PacketStats) {
    let mut recorder = PacketRecorder::new(writer, options, anchor);
    let mut failed = None;
    let mut done = None;
    let mut kernel_drops = 0;
    loop {
        let batch = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(b) => b,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if failed.is_none() {
                    if let Err(e) = recorder.flush_if_due() {
                        failed = Some(e);
                    }
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if failed.is_some() {
            // Recording failed: the capture thread is told to stop, and
            // what it still sends is read and dropped so it can finish.
            stop.store(true, Ordering::Relaxed);
            if matches!(batch, Batch::Done { .. }) {
                break;
            }
            continue;
        }
        let result = match batch {
            Batch::Events(events) => events.into_iter().try_for_each(|e| recorder.event(e)),
            Batch::Drops { packets, ts } => {
                kernel_drops += packets;
                recorder.lost(0, 0, format!("the kernel dropped {packets} packets before the capture read them (pcap_stats): their bytes show as gaps in their connections"), ts + anchor)
            }
            Batch::Done { frames, skipped, counters, error } => {
                done = Some((frames, skipped, counters, error));
                break;
            }
        };
        if let Err(e) = result.and_then(|_| recorder.flush_if_due()) {
            failed = Some(format!("writing the trace: {e}"));
        }
    }
    let (mut summary, mut stats) = recorder.finish();
    if let Some((frames, skipped, counters, error)) = done {
        stats.frames = frames;
        stats.skipped = skipped;
        stats.reassembly = counters;
        if let Some(e) = error {
            summary.error.get_or_insert(e);
        }
    }
    stats.kernel_drops = kernel_drops;
    if let Some(e) = failed {
        summary.error.get_or_insert(e);
    }
    (summary, stats)
}
