//! The recorder: one OS thread that owns every connection's `wire::Session`
//! and the trace `Writer`. Forwarders hand it copies of what they forwarded
//! through a bounded queue and never wait for it (see `Tap`); it decodes,
//! converts, writes, and flushes at least every 100 ms.

use super::tap::{Note, Tap};
use convert::{direction, event_to_record};
use format::{Body, ConnClose, ConnOpen, Gap, Record, Writer};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wire::{Direction, Event, Limits, Protocol, Session};

/// What the recorder saw, for the summary printed at exit.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub connections: u64,
    pub exchanges: BTreeMap<&'static str, u64>,
    pub bytes_to_server: u64,
    pub bytes_to_client: u64,
    pub records: u64,
    pub log_lines: u64,
    pub dropped_bytes: u64,
    pub gaps: u64,
    pub fallbacks: u64,
    /// Why recording stopped early, if it did.
    pub error: Option<String>,
}

pub struct RecorderOptions {
    pub queue: usize,
    pub redact: bool,
    pub limits: Limits,
    pub flush_interval: Duration,
}

/// Starts the recorder thread writing to `writer`. Returns the forwarders'
/// tap and a handle that yields the summary once every tap is dropped.
pub fn start(
    mut writer: Writer<std::fs::File>,
    clock: Instant,
    opts: RecorderOptions,
) -> (Tap, std::thread::JoinHandle<Summary>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(opts.queue);
    let stopped = Arc::new(AtomicBool::new(false));
    let dropped_bytes = Arc::new(AtomicU64::new(0));
    let tap = Tap { tx, stopped: stopped.clone(), dropped_bytes: dropped_bytes.clone(), clock, block: false };
    let handle = std::thread::Builder::new()
        .name("oltrace-recorder".into())
        .spawn(move || {
            let mut r = Recorder { writer: &mut writer, opts, conns: HashMap::new(), summary: Summary::default(), events: Vec::new(), last_ts: 0 };
            r.run(&rx, &stopped);
            let mut summary = r.summary;
            if summary.error.is_none() {
                if let Err(e) = writer.flush() {
                    summary.error = Some(format!("final flush failed: {e}"));
                }
            }
            summary.dropped_bytes = dropped_bytes.load(Ordering::Relaxed);
            summary
        })
        .expect("spawn recorder thread");
    (tap, handle)
}

struct Conn {
    session: Session,
    protocol: Protocol,
}

struct Recorder<'w> {
    writer: &'w mut Writer<std::fs::File>,
    opts: RecorderOptions,
    conns: HashMap<u64, Conn>,
    summary: Summary,
    events: Vec<Event>,
    /// The latest time any note carried.
    last_ts: u64,
}

impl Recorder<'_> {
    fn run(&mut self, rx: &Receiver<Note>, stopped: &AtomicBool) {
        loop {
            match rx.recv_timeout(self.opts.flush_interval / 2) {
                Ok(note) => {
                    if self.summary.error.is_none() {
                        if let Err(e) = self.handle(note) {
                            self.fail(e, stopped);
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.summary.error.is_none() && self.writer.flush_due(self.opts.flush_interval) {
                if let Err(e) = self.writer.flush() {
                    self.fail(e.to_string(), stopped);
                }
            }
        }
        // Connections still open at shutdown: let decoders finish what they hold.
        let open: Vec<u64> = self.conns.keys().copied().collect();
        for conn in open {
            let _ = self.finish_conn(conn, self.last_ts);
        }
    }

    fn fail(&mut self, error: String, stopped: &AtomicBool) {
        eprintln!("oltrace: recording stopped: {error}; traffic keeps flowing, unrecorded (free disk space or choose another -o)");
        self.summary.error = Some(error);
        stopped.store(true, Ordering::Relaxed);
    }

    fn write(&mut self, record: Record) -> Result<(), String> {
        self.summary.records += 1;
        self.writer.write(&record).map_err(|e| e.to_string())
    }

    fn handle(&mut self, note: Note) -> Result<(), String> {
        let ts = match &note {
            Note::Open { ts, .. } | Note::Data { ts, .. } | Note::Eof { ts, .. } | Note::Lost { ts, .. } | Note::Close { ts, .. } | Note::Log { ts, .. } => *ts,
        };
        self.last_ts = self.last_ts.max(ts);
        match note {
            Note::Open { conn, protocol, client, server, route, ts } => {
                self.summary.connections += 1;
                self.conns.insert(conn, Conn { session: Session::new(protocol, self.opts.limits), protocol });
                let body = Body::ConnOpen(ConnOpen { conn, protocol: format_protocol(protocol), client, server, route });
                self.write(Record { ts, src: 0, body })
            }
            Note::Data { conn, dir, data, ts } => {
                match dir {
                    Direction::ToServer => self.summary.bytes_to_server += data.len() as u64,
                    Direction::ToClient => self.summary.bytes_to_client += data.len() as u64,
                }
                let Some(c) = self.conns.get_mut(&conn) else { return Ok(()) };
                c.session.feed(dir, &data, ts, &mut self.events);
                self.drain(conn)
            }
            Note::Eof { conn, dir, ts } => {
                let Some(c) = self.conns.get_mut(&conn) else { return Ok(()) };
                c.session.eof(dir, ts, &mut self.events);
                self.drain(conn)
            }
            Note::Lost { conn, dir, bytes, ts } => {
                self.summary.gaps += 1;
                // The decoder has lost its place: record the rest of this
                // connection as opaque chunks.
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session = Session::new(Protocol::Tcp, self.opts.limits);
                }
                let reason = "recorder queue full: the recorder fell behind the traffic".to_string();
                let body = Body::Gap(Gap { conn: Some(conn), dir: Some(direction(dir)), bytes, records: 0, reason });
                self.write(Record { ts, src: 0, body })
            }
            Note::Log { origin, stream, text, ts } => {
                self.summary.log_lines += 1;
                self.write(Record { ts, src: 0, body: Body::Log(format::LogLine { origin, stream, text }) })
            }
            Note::Close { conn, ts, bytes_to_server, bytes_to_client, error } => {
                self.finish_conn(conn, ts)?;
                let body = Body::ConnClose(ConnClose { conn, bytes_to_server, bytes_to_client, error });
                self.write(Record { ts, src: 0, body })
            }
        }
    }

    fn finish_conn(&mut self, conn: u64, ts: u64) -> Result<(), String> {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session.eof(Direction::ToServer, ts, &mut self.events);
            c.session.eof(Direction::ToClient, ts, &mut self.events);
        }
        let result = self.drain(conn);
        self.conns.remove(&conn);
        result
    }

    fn drain(&mut self, conn: u64) -> Result<(), String> {
        let protocol = self.conns.get(&conn).map(|c| c.protocol).unwrap_or(Protocol::Tcp);
        let events = std::mem::take(&mut self.events);
        for event in events {
            match &event {
                Event::Exchange(_) => *self.summary.exchanges.entry(protocol.name()).or_default() += 1,
                Event::Opaque { .. } => self.summary.fallbacks += 1,
                Event::Message(_) => {}
            }
            let record = event_to_record(conn, event, self.opts.redact);
            self.write(record)?;
        }
        Ok(())
    }
}

/// The trace's name for a wire protocol.
pub fn format_protocol(p: Protocol) -> format::Protocol {
    match p {
        Protocol::Http => format::Protocol::Http,
        Protocol::Postgres => format::Protocol::Postgres,
        Protocol::Redis => format::Protocol::Redis,
        Protocol::Tcp => format::Protocol::Tcp,
    }
}
