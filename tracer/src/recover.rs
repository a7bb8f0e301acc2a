//! `oltrace recover TRACE`: decodes the spool a recording left behind
//! (`TRACE.spool`: the proxy was killed, or told to stop decoding) into
//! the trace, and removes it.
//!
//! The spool's header names its trace (so it is never applied to another)
//! and its last checkpoint: a position in the spool before which every
//! note is decoded, and the trace's length when that was so. The trace is
//! cut back to that length (dropping any blocks written after it, which
//! decoding the spool from the checkpoint writes again) and the notes from
//! the checkpoint on are decoded into it, redacted as the recording was.
//! Connections open at the checkpoint (from the trace's `conn_open` and
//! `conn_close` records) resume mid-stream. A `log` record from origin
//! `oltrace recover` marks where the recovered part starts; damaged or
//! torn frames become `gap` records. See docs/recording.md, "What a crash
//! loses".

use crate::proxy::recorder::{self, OpenConn, RecorderOptions};
use crate::proxy::spool_file::{self, Scan, HEADER_LEN};
use crate::Outcome;
use anyhow::Context;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct RecoverConfig {
    pub trace: PathBuf,
}

/// What a recovery did.
#[derive(Debug, Default)]
pub struct Recovered {
    pub notes: u64,
    pub spool_bytes: u64,
    pub damaged_bytes: u64,
    /// Of the damaged bytes, those at the spool's end (see
    /// `Scan::torn_tail`): expected after a kill, not damage.
    pub torn_tail: u64,
    pub records: u64,
    pub resumed_connections: usize,
    pub seconds: f64,
}

pub fn run(config: &RecoverConfig) -> anyhow::Result<Outcome> {
    let r = recover(&config.trace)?;
    eprintln!(
        "oltrace recover: {} notes ({:.1} MB of spool) decoded into {}: {} records, {} connections resumed mid-stream, in {:.2} s ({:.0} MB/s)",
        r.notes,
        r.spool_bytes as f64 / 1e6,
        config.trace.display(),
        r.records,
        r.resumed_connections,
        r.seconds,
        r.spool_bytes as f64 / 1e6 / r.seconds.max(1e-9)
    );
    if r.torn_tail > 0 {
        eprintln!(
            "oltrace recover: the spool's last {} bytes hold a frame cut short, being written when the proxy died: lost (a gap record says so)",
            r.torn_tail
        );
    }
    let damaged = r.damaged_bytes - r.torn_tail;
    if damaged > 0 {
        eprintln!("oltrace recover: {damaged} bytes of the spool were damaged and are lost (recorded as gaps: `oltrace cat --kind gap`)");
        return Ok(Outcome::Damaged);
    }
    Ok(Outcome::Clean)
}

/// Recovers `trace` from its spool; the spool is removed once decoded.
pub fn recover(trace: &Path) -> anyhow::Result<Recovered> {
    let started = Instant::now();
    let spool_path = spool_file::path_for(trace);
    anyhow::ensure!(
        !spool_file::in_use(&spool_path),
        "{} is still being recorded (its spool {} is in use): stop that oltrace first; nothing to recover while it runs",
        trace.display(),
        spool_path.display()
    );
    let spool = std::fs::File::open(&spool_path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!("{}: no spool to recover ({} does not exist): the recording finished cleanly, or was made with --no-spool", trace.display(), spool_path.display()),
        _ => anyhow::anyhow!("cannot open {}: {e}", spool_path.display()),
    })?;
    let header = spool_file::read_header(&spool).map_err(|e| anyhow::anyhow!("{}: {e}; it cannot be recovered (delete it to discard it)", spool_path.display()))?;
    let (id, _) = spool_file::trace_id(trace).map_err(|e| anyhow::anyhow!("{}: {e}", trace.display()))?;
    anyhow::ensure!(
        id == header.trace,
        "{} belongs to another trace than {} (recorded at another time, or the trace was replaced): it was not applied (delete it if its trace is gone)",
        spool_path.display(),
        trace.display()
    );
    let trace_file_len = std::fs::metadata(trace)?.len();
    anyhow::ensure!(
        trace_file_len >= header.trace_len,
        "{} is {} bytes, shorter than the {} its spool's checkpoint saw: the trace was cut or changed since; not recovered",
        trace.display(),
        trace_file_len,
        header.trace_len
    );
    let (open, last_ts) = open_connections(trace, header.trace_len)?;
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(trace).with_context(|| format!("cannot open {} to write", trace.display()))?;
    // What was written after the checkpoint is written again from the spool.
    file.set_len(header.trace_len)?;
    file.seek(SeekFrom::End(0))?;
    let mut writer = format::Writer::appending(file, header.trace_len, format::WriterOptions::default())?;
    let resumed_connections = open.len();
    let mark = format::LogLine {
        origin: "oltrace recover".into(),
        stream: format::LogStream::Stderr,
        text: format!(
            "the recording stopped before decoding everything (killed?); what follows was recovered from its spool by `oltrace recover`, from spool position {}, with {resumed_connections} connections resumed mid-stream (a message cut by the checkpoint may be missing or opaque)",
            header.checkpoint
        ),
        redacted: false,
    };
    writer.write(&format::Record { ts: last_ts, src: 0, body: format::Body::Log(mark) })?;
    let mut input = std::fs::File::open(&spool_path)?;
    input.seek(SeekFrom::Start(HEADER_LEN + header.checkpoint - header.restart))?;
    let mut scan = Scan::new(std::io::BufReader::with_capacity(1 << 20, input), header.checkpoint);
    let mut read_error = None;
    let found = std::iter::from_fn(|| match scan.next_item() {
        Ok(item) => item,
        Err(e) => {
            read_error = Some(e);
            None
        }
    });
    // The rules the recording blanked by are in the trace's header (format
    // 1.2 on); an older trace's were the defaults of its time, which
    // today's defaults include.
    let recorded = format::Header::read_prefix(&mut std::fs::File::open(trace)?).ok().and_then(|(h, ..)| h.redaction);
    let redact = match (header.redact, recorded) {
        (false, _) => convert::redact::Rules::off(),
        (true, Some(r)) if r.enabled => convert::redact::Rules::from_record(&r),
        (true, _) => convert::redact::Rules::default(),
    };
    let opts = RecorderOptions {
        queue: 0,
        redact,
        limits: wire::Limits::default(),
        flush_interval: Duration::from_millis(100),
        defer: 0,
        invocation_routes: Default::default(),
        stop_decoding: Default::default(),
        progress: false,
    };
    let summary = recorder::recover_notes(&mut writer, opts, open, found);
    if let Some(e) = read_error {
        anyhow::bail!("reading {}: {e}; the trace holds what was recovered before, the spool is kept", spool_path.display());
    }
    if let Some(e) = summary.error {
        anyhow::bail!("writing {}: {e}; the spool is kept (free space and run `oltrace recover` again)", trace.display());
    }
    std::fs::remove_file(&spool_path).with_context(|| format!("recovered, but cannot remove {}", spool_path.display()))?;
    Ok(Recovered {
        notes: scan.notes,
        spool_bytes: scan.note_bytes + scan.damaged_bytes,
        damaged_bytes: scan.damaged_bytes,
        torn_tail: scan.torn_tail,
        records: summary.records + 1,
        resumed_connections,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The connections open after the first `len` bytes of `trace`, with the
/// stream offsets their messages reached, and the latest record time.
fn open_connections(trace: &Path, len: u64) -> anyhow::Result<(Vec<OpenConn>, u64)> {
    let file = std::fs::File::open(trace)?;
    let reader = format::Reader::new(file.take(len)).map_err(|e| anyhow::anyhow!("{}: {e}", trace.display()))?;
    let mut open: BTreeMap<u64, OpenConn> = BTreeMap::new();
    let mut last_ts = 0;
    // Damage before the checkpoint is the trace's own (`oltrace info`
    // reports it); what reads is enough to know the open connections.
    for record in reader.flatten() {
        last_ts = last_ts.max(record.ts);
        match record.body {
            format::Body::ConnOpen(o) => {
                let protocol = match o.protocol {
                    format::Protocol::Http => wire::Protocol::Http,
                    format::Protocol::Postgres => wire::Protocol::Postgres,
                    format::Protocol::Redis => wire::Protocol::Redis,
                    _ => wire::Protocol::Tcp,
                };
                open.insert(o.conn, OpenConn { conn: o.conn, protocol, route: o.route, offsets: [0, 0] });
            }
            format::Body::ConnClose(c) => {
                open.remove(&c.conn);
            }
            format::Body::Fallback(f) => {
                // Opaque from there on: it stays so.
                if let Some(c) = open.get_mut(&f.conn) {
                    c.protocol = wire::Protocol::Tcp;
                }
            }
            format::Body::Message(m) => {
                if let Some(c) = open.get_mut(&m.conn) {
                    let i = match m.dir {
                        format::Direction::ToServer => 0,
                        format::Direction::ToClient => 1,
                    };
                    c.offsets[i] = c.offsets[i].max(m.offset + m.data.len);
                }
            }
            _ => {}
        }
    }
    Ok((open.into_values().collect(), last_ts))
}
