//! The recorder: two OS threads. The spooler takes the copies forwarders
//! hand over through a bounded queue (they never wait for it, see `Tap`)
//! and appends them to the spool; the recorder reads them back in order,
//! owns every connection's `wire::Session` and the trace `Writer`, decodes,
//! converts, writes, and flushes at least every 100 ms (of what it has
//! decoded), checkpointing the spool each time (how far into it the trace
//! is complete: what `oltrace recover` starts from, [`recover_notes`]). While traffic flows the recorder runs at idle CPU priority,
//! and while it is busy it waits for a pause (see [`super::spool`] and
//! [`super::pacer`] for why).
//!
//! On routes that front a worker (`--invocations`), each request the
//! profile names becomes an `invocation` record, written just before the
//! request's message; every exchange on the other connections is then
//! attributed to the invocation that caused it, when that can be known
//! (see [`super::attribution`]).
//!
//! [`record_notes`] does the recorder thread's work on the caller's thread,
//! for the `record_cpu` bench and tests.

use super::attribution::{sqlcommenter_trace_id, traceparent_trace_id, Attributor, Evidence};
use super::pacer::Pacer;
use super::profiles::Profile;
use super::spool::{self, Next, SpoolOptions, SpoolReader, SpoolWriter};
use super::spool_file::Scanned;
use super::tap::{self, Inbox, Note, Tap};
use convert::Converter;
use format::{AttributionMethod, Body, ConnClose, ConnOpen, Gap, Invocation, Record, Writer};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wire::http::{HttpMessage, HttpRequest};
use wire::redis::RedisRun;
use wire::{Direction, Event, ExchangeDetail, Limits, MessageKind, Protocol, Session};

/// How long the recorder sleeps when it has nothing to do or holds back
/// (the spooler wakes it sooner when it writes).
const WAIT: Duration = Duration::from_millis(10);
/// While decoding, the pacer is asked again after this many notes (a few
/// milliseconds' work), so decoding stops soon after busy traffic resumes.
const PACE_EVERY: u32 = 1024;

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
    /// Connections by what became of TLS on their client side (routes
    /// that handle it), by [`format::TlsMode`] name.
    pub tls: BTreeMap<&'static str, u64>,
    /// Why the first of them switched (e.g. a Redis reply nested past
    /// `wire::redis::MAX_DEPTH`).
    pub first_fallback: Option<String>,
    /// Invocations recorded (requests the platform profile named).
    pub invocations: u64,
    /// Downstream exchanges attributed to an invocation, by method name.
    pub attributed: BTreeMap<&'static str, u64>,
    /// Downstream exchanges left unattributed (counted only when some
    /// route fronts a worker).
    pub unattributed: u64,
    /// How far decoding fell behind the traffic at most, in spooled bytes.
    pub peak_backlog: u64,
    /// Why recording stopped early, if it did.
    pub error: Option<String>,
    /// The spool, when it was left for `oltrace recover` (decoding was
    /// stopped, or recording failed), and the bytes in it not decoded.
    pub spool_left: Option<(std::path::PathBuf, u64)>,
}

pub struct RecorderOptions {
    pub queue: usize,
    /// What is blanked in the records (never in the traffic).
    pub redact: convert::redact::Rules,
    pub limits: Limits,
    pub flush_interval: Duration,
    /// How far decoding may fall behind busy traffic, in bytes (`--defer`;
    /// 0: decode as the traffic comes). See [`super::pacer`].
    pub defer: u64,
    /// Routes that front a worker, by route name, with the profile that
    /// names their invocations.
    pub invocation_routes: HashMap<String, Arc<Profile>>,
    /// Set (a second SIGINT) to stop decoding at once: the recorder
    /// checkpoints and leaves the rest in the spool for `oltrace recover`.
    pub stop_decoding: Arc<AtomicBool>,
    /// Show the progress of decoding the backlog once the traffic has
    /// ended (a bar on stderr, if it is a terminal).
    pub progress: bool,
}

/// Starts the spooler and the recorder, writing to `writer`, with the
/// spool `spool`. Returns the forwarders' tap and a handle that yields the
/// summary once every tap is dropped and everything is written.
pub fn start(
    mut writer: Writer<std::fs::File>,
    clock: Instant,
    opts: RecorderOptions,
    spool: SpoolOptions,
) -> std::io::Result<(Tap, std::thread::JoinHandle<Summary>)> {
    let (tap, mut inbox) = tap::queue(opts.queue, clock);
    let (spool_writer, mut spool_reader) = spool::create(spool)?;
    let dropped_bytes = tap.dropped_bytes.clone();
    let spooler = std::thread::Builder::new().name("oltrace-spooler".into()).spawn(move || {
        inbox.attach();
        spool_writer.attach();
        spool_notes(&mut inbox, spool_writer)
    })?;
    let handle = std::thread::Builder::new().name("oltrace-recorder".into()).spawn(move || {
        spool_reader.attach();
        let mut r = Recorder::new(&mut writer, opts);
        let decoded_all = r.run(&mut spool_reader);
        let mut summary = r.summary;
        if let Ok(Some(e)) = spooler.join() {
            summary.error.get_or_insert(e);
        }
        if summary.error.is_none() {
            if let Err(e) = writer.flush() {
                summary.error = Some(format!("final flush failed: {e}"));
            }
        }
        match spool_reader.path() {
            Some(path) if !decoded_all || summary.error.is_some() => {
                summary.spool_left = Some((path.to_path_buf(), spool_reader.spooled().saturating_sub(spool_reader.checkpointed())));
            }
            _ => {
                if let Err(e) = spool_reader.remove() {
                    eprintln!("oltrace: cannot remove the spool: {e} (everything in it is in the trace: delete it)");
                }
            }
        }
        summary.dropped_bytes = dropped_bytes.load(Ordering::Relaxed);
        summary.peak_backlog = spool_reader.peak_backlog();
        summary
    })?;
    Ok((tap, handle))
}

/// Records `notes` on this thread, without the queue, the spool or idle
/// priority: what the recorder thread does with each note, for measuring
/// the recorder's own CPU cost per exchange (`cargo bench -p
/// oltrace-tracer --bench record_cpu`). Connections still open at the end
/// are finished as at shutdown; the writer is flushed.
pub fn record_notes(writer: &mut Writer<std::fs::File>, opts: RecorderOptions, notes: impl IntoIterator<Item = Note>) -> Summary {
    let mut r = Recorder::new(writer, opts);
    for note in notes {
        if let Err(e) = r.handle(note) {
            r.summary.error = Some(e);
            break;
        }
    }
    r.finish()
}

/// The recorder's work done on the caller's thread, for recordings made
/// from packets (`oltrace import`, `oltrace capture`): the same decoding,
/// conversion, redaction and attribution as the proxy's, plus what only a
/// capture has: connections picked up mid-stream, and bytes the capture
/// missed inside a connection that goes on.
pub struct Direct<'w> {
    r: Recorder<'w>,
}

impl<'w> Direct<'w> {
    pub fn new(writer: &'w mut Writer<std::fs::File>, opts: RecorderOptions) -> Direct<'w> {
        Direct { r: Recorder::new(writer, opts) }
    }

    /// Handles a note as the proxy's recorder thread does.
    pub fn note(&mut self, note: Note) -> Result<(), String> {
        self.r.handle(note)
    }

    /// A connection whose opening the capture did not see: its record is
    /// written as for any other, and decoding starts at a message boundary
    /// (see [`wire::Session::mid_stream`]).
    pub fn open_mid_stream(&mut self, conn: u64, protocol: Protocol, client: String, server: String, route: String, ts: u64) -> Result<(), String> {
        self.r.handle(Note::Open { conn, protocol, client, server, route: route.clone(), tls: None, ts })?;
        self.r.resume(OpenConn { conn, protocol, route, offsets: [0, 0] });
        Ok(())
    }

    /// `bytes` of `conn` in `dir` were missed by the capture (`reason`
    /// says how): a gap record, and the connection's decoder starts again
    /// mid-stream after them. A protocol whose framing resynchronises
    /// decodes on; otherwise the decoder falls back to opaque, saying why.
    pub fn gap(&mut self, conn: u64, dir: Direction, bytes: u64, reason: String, ts: u64) -> Result<(), String> {
        self.r.last_ts = self.r.last_ts.max(ts);
        self.r.summary.gaps += 1;
        let mut skip = [0; 2];
        skip[dir.index()] = bytes;
        self.restart(conn, skip, ts)?;
        let body = Body::Gap(Gap { conn: Some(conn), dir: Some(dir), bytes, records: 0, reason });
        self.r.write(&Record { ts, src: 0, body })
    }

    /// The exchanges under way on `conn` end here, unanswered, as at the
    /// connection's end, and its decoder starts again mid-stream `skip`
    /// bytes further on (per direction): after a gap (requests whose
    /// responses the gap took), or after requests whose responses may
    /// have been in one (see `PacketRecorder`). What the decoders held of
    /// unfinished messages is lost.
    pub fn restart(&mut self, conn: u64, skip: [u64; 2], ts: u64) -> Result<(), String> {
        let r = &mut self.r;
        let Some(c) = r.conns.get_mut(&conn) else { return Ok(()) };
        let protocol = if c.session.is_opaque() { Protocol::Tcp } else { c.protocol };
        let mut offsets = c.session.offsets();
        offsets[0] += skip[0];
        offsets[1] += skip[1];
        c.session.eof(Direction::ToServer, ts, &mut r.events);
        c.session.eof(Direction::ToClient, ts, &mut r.events);
        r.drain(conn)?;
        r.lose_place(conn, ts);
        if let Some(c) = r.conns.get_mut(&conn) {
            c.session = Session::mid_stream(protocol, r.opts.limits, offsets);
            if let Role::Invocations { decoding, .. } = &mut c.role {
                *decoding = true;
            }
        }
        Ok(())
    }

    /// A gap not tied to one connection's stream (the kernel dropped
    /// packets during a live capture, or a capture file is damaged).
    pub fn lost(&mut self, bytes: u64, records: u64, reason: String, ts: u64) -> Result<(), String> {
        self.r.last_ts = self.r.last_ts.max(ts);
        self.r.summary.gaps += 1;
        let body = Body::Gap(Gap { conn: None, dir: None, bytes, records, reason });
        self.r.write(&Record { ts, src: 0, body })
    }

    /// Flushes when records have waited the flush interval (a live capture
    /// keeps the trace readable as it goes).
    pub fn flush_if_due(&mut self) -> Result<(), String> {
        if self.r.writer.flush_due(self.r.opts.flush_interval) {
            self.r.writer.flush().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    pub fn summary(&self) -> &Summary {
        &self.r.summary
    }

    /// Finishes the connections still open and flushes; the summary.
    pub fn finish(self) -> Summary {
        self.r.finish()
    }
}

/// A connection open when a recording's last checkpoint was taken: decoding
/// resumes on it mid-stream.
pub struct OpenConn {
    pub conn: u64,
    pub protocol: Protocol,
    pub route: String,
    /// Bytes of each direction in the trace's messages so far (index by
    /// [`Direction::index`]).
    pub offsets: [u64; 2],
}

/// Decodes what `oltrace recover` read from a spool into `writer`, after
/// the connections `open` at its checkpoint; damage is written as gaps.
pub fn recover_notes(writer: &mut Writer<std::fs::File>, opts: RecorderOptions, open: Vec<OpenConn>, found: impl IntoIterator<Item = Scanned>) -> Summary {
    let mut r = Recorder::new(writer, opts);
    for c in open {
        r.resume(c);
    }
    for item in found {
        let result = match item {
            Scanned::Note(note) => r.handle(note),
            Scanned::Damage { bytes, what } => r.lose_all(bytes, what),
        };
        if let Err(e) = result {
            r.summary.error = Some(e);
            break;
        }
    }
    r.finish()
}

/// The spooler: moves notes from the forwarders' queue to the spool until
/// every tap is gone. Returns why it stopped early, if it did.
fn spool_notes(inbox: &mut Inbox, mut spool: SpoolWriter) -> Option<String> {
    let mut error = None;
    loop {
        while let Some(note) = inbox.pop() {
            if error.is_none() && !spool.recorder_stopped() {
                if let Err(e) = spool.push(&note) {
                    error = Some(spool_failed(e, inbox));
                }
            }
        }
        if spool.recorder_stopped() {
            // Recording failed: forwarders stop copying; drain what is queued.
            inbox.stop();
        } else if error.is_none() {
            if let Err(e) = spool.write_if_due() {
                error = Some(spool_failed(e, inbox));
            }
        }
        if inbox.finished() {
            break;
        }
        inbox.wait();
    }
    match spool.finish() {
        Err(e) if error.is_none() => Some(format!("spool: {e}")),
        _ => error,
    }
}

fn spool_failed(e: std::io::Error, inbox: &Inbox) -> String {
    eprintln!("oltrace: recording stopped: spool: {e}; traffic keeps flowing, unrecorded (free disk space in the trace's directory)");
    inbox.stop();
    format!("spool: {e}")
}

struct Conn {
    session: Session,
    protocol: Protocol,
    role: Role,
}

/// What a connection is to attribution.
enum Role {
    /// A connection to a worker: its requests may be invocations.
    Invocations {
        profile: Arc<Profile>,
        /// Per request decoded and not yet answered, in order: its
        /// invocation id, if the profile named it.
        unanswered: VecDeque<Option<u64>>,
        /// Request bytes seen, and where the last decoded request ended:
        /// more seen than decoded means a request is arriving.
        fed: u64,
        decoded_end: u64,
        /// False once the decoder lost its place (a gap).
        decoding: bool,
    },
    /// Any other connection: its exchanges are calls to attribute. For HTTP,
    /// the trace id of each unanswered request's `traceparent`, in order.
    Downstream { traces: VecDeque<Option<String>> },
}

struct Recorder<'w> {
    writer: &'w mut Writer<std::fs::File>,
    opts: RecorderOptions,
    conns: HashMap<u64, Conn, ConnIds>,
    summary: Summary,
    events: Vec<Event>,
    /// Events to records, reusing the records' allocations.
    converter: Converter,
    /// The latest time any note carried.
    last_ts: u64,
    /// When the spool was last checkpointed.
    last_checkpoint: Instant,
    attributor: Attributor,
}

impl<'w> Recorder<'w> {
    fn new(writer: &'w mut Writer<std::fs::File>, opts: RecorderOptions) -> Recorder<'w> {
        let converter = Converter::with_rules(opts.redact.clone());
        Recorder {
            writer,
            opts,
            conns: HashMap::default(),
            summary: Summary::default(),
            events: Vec::new(),
            converter,
            last_ts: 0,
            last_checkpoint: Instant::now(),
            attributor: Attributor::new(),
        }
    }

    /// Decodes the spool until the spooler is done and everything is
    /// read (true), or until told to stop decoding (false: the rest stays
    /// in the spool, after a checkpoint).
    fn run(&mut self, spool: &mut SpoolReader) -> bool {
        // Idle priority while traffic flows; normal once it has ended, to
        // catch up quickly. And while it is busy, not at all (the pacer).
        spool::set_idle_priority(true);
        let mut idle = true;
        let mut pacer = Pacer::new(self.opts.defer, Instant::now());
        let mut progress = None;
        // Whether to ask the pacer before the next note: after every wait,
        // and every PACE_EVERY notes.
        let mut ask = true;
        let mut handled = 0u32;
        let decoded_all = loop {
            if ask && self.opts.stop_decoding.load(Ordering::Relaxed) {
                break false;
            }
            if idle && spool.traffic_done() {
                spool::set_idle_priority(false);
                idle = false;
                if self.opts.progress {
                    progress = super::progress::Backlog::show(spool.backlog());
                }
            }
            if idle && ask {
                ask = false;
                if pacer.hold(Instant::now(), spool.spooled(), spool.backlog()) {
                    self.checkpoint_if_due(spool);
                    std::thread::park_timeout(WAIT);
                    ask = true;
                    continue;
                }
            }
            match spool.next_note() {
                Ok(Next::Note(note)) => {
                    if self.summary.error.is_none() {
                        if let Err(e) = self.handle(note) {
                            self.fail(e, spool);
                        }
                    }
                    handled = handled.wrapping_add(1);
                    // Keep flushing on time under a steady stream.
                    if handled.is_multiple_of(4096) {
                        self.checkpoint_if_due(spool);
                        if let Some(bar) = &progress {
                            bar.set_left(spool.backlog());
                        }
                    }
                    ask |= handled.is_multiple_of(PACE_EVERY);
                }
                Ok(Next::Empty) => {
                    pacer.caught_up();
                    self.checkpoint_if_due(spool);
                    std::thread::park_timeout(WAIT);
                    ask = true;
                }
                Ok(Next::End) => break true,
                Err(e) => {
                    self.fail(format!("reading the spool: {e}"), spool);
                    break true;
                }
            }
        };
        drop(progress);
        spool::set_idle_priority(false);
        if decoded_all {
            self.finish_open();
        } else if self.summary.error.is_none() {
            // What is decoded goes into the trace; the rest is recovered
            // from this checkpoint. Connections stay unfinished: `recover`
            // carries them on.
            self.checkpoint(spool);
        }
        decoded_all
    }

    /// Flushes the trace and checkpoints the spool when records have waited
    /// the flush interval, or notes were handled since the last checkpoint
    /// that long ago.
    fn checkpoint_if_due(&mut self, spool: &mut SpoolReader) {
        if self.summary.error.is_none()
            && (self.writer.flush_due(self.opts.flush_interval) || (spool.unchecked() && self.last_checkpoint.elapsed() >= self.opts.flush_interval))
        {
            self.checkpoint(spool);
        }
    }

    fn checkpoint(&mut self, spool: &mut SpoolReader) {
        self.last_checkpoint = Instant::now();
        if let Err(e) = self.writer.flush() {
            return self.fail(e.to_string(), spool);
        }
        if let Err(e) = spool.checkpoint(self.writer.stats().bytes) {
            self.fail(format!("spool checkpoint: {e}"), spool);
        }
    }

    /// Carries on decoding a connection that was open at a recording's
    /// checkpoint (`oltrace recover`): mid-stream, from the offsets its
    /// messages reached.
    fn resume(&mut self, c: OpenConn) {
        let role = match self.opts.invocation_routes.get(&c.route) {
            Some(profile) if c.protocol == Protocol::Http => {
                Role::Invocations { profile: profile.clone(), unanswered: VecDeque::new(), fed: 0, decoded_end: 0, decoding: true }
            }
            _ => Role::Downstream { traces: VecDeque::new() },
        };
        let session = Session::mid_stream(c.protocol, self.opts.limits, c.offsets);
        self.conns.insert(c.conn, Conn { session, protocol: c.protocol, role });
    }

    /// Part of the spool was damaged (`oltrace recover`): whichever
    /// connections it held notes of have lost their place, so every open
    /// connection is recorded as opaque from here on.
    fn lose_all(&mut self, bytes: u64, what: String) -> Result<(), String> {
        self.summary.gaps += 1;
        let open: Vec<u64> = self.conns.keys().copied().collect();
        for conn in open {
            self.lose_place(conn, self.last_ts);
        }
        let body = Body::Gap(Gap { conn: None, dir: None, bytes, records: 0, reason: format!("spool damaged: {what}") });
        self.write(&Record { ts: self.last_ts, src: 0, body })
    }

    /// The decoder of `conn` has lost its place: the rest of the
    /// connection is recorded as opaque chunks.
    fn lose_place(&mut self, conn: u64, ts: u64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Session::new(Protocol::Tcp, self.opts.limits);
            if let Role::Invocations { decoding, unanswered, .. } = &mut c.role {
                *decoding = false;
                // Their responses will not be decoded: they end here.
                for id in unanswered.drain(..).flatten() {
                    self.attributor.end(id, ts);
                }
                self.attributor.arriving(conn, None);
            }
        }
    }

    /// Connections still open at shutdown: let decoders finish what they hold.
    fn finish_open(&mut self) {
        let open: Vec<u64> = self.conns.keys().copied().collect();
        for conn in open {
            let _ = self.finish_conn(conn, self.last_ts);
        }
    }

    /// Finishes the connections still open and flushes; the summary.
    fn finish(mut self) -> Summary {
        self.finish_open();
        if self.summary.error.is_none() {
            if let Err(e) = self.writer.flush() {
                self.summary.error = Some(format!("final flush failed: {e}"));
            }
        }
        self.summary
    }

    fn fail(&mut self, error: String, spool: &SpoolReader) {
        eprintln!("oltrace: recording stopped: {error}; traffic keeps flowing, unrecorded (free disk space or choose another -o)");
        self.summary.error = Some(error);
        spool.stop();
    }

    fn write(&mut self, record: &Record) -> Result<(), String> {
        write_counted(self.writer, &mut self.summary, record)
    }

    fn handle(&mut self, note: Note) -> Result<(), String> {
        let ts = match &note {
            Note::Open { ts, .. } | Note::Data { ts, .. } | Note::Eof { ts, .. } | Note::Lost { ts, .. } | Note::Close { ts, .. } | Note::Log { ts, .. } => *ts,
        };
        self.last_ts = self.last_ts.max(ts);
        match note {
            Note::Open { conn, protocol, client, server, route, tls, ts } => {
                self.summary.connections += 1;
                if let Some(mode) = tls {
                    *self.summary.tls.entry(mode.name()).or_default() += 1;
                }
                let role = match self.opts.invocation_routes.get(&route) {
                    Some(profile) if protocol == Protocol::Http => Role::Invocations {
                        profile: profile.clone(),
                        unanswered: VecDeque::new(),
                        fed: 0,
                        decoded_end: 0,
                        decoding: true,
                    },
                    _ => Role::Downstream { traces: VecDeque::new() },
                };
                self.conns.insert(conn, Conn { session: Session::new(protocol, self.opts.limits), protocol, role });
                let body = Body::ConnOpen(ConnOpen { conn, protocol, client, server, route, tls });
                self.write(&Record { ts, src: 0, body })
            }
            Note::Data { conn, dir, data, ts } => {
                match dir {
                    Direction::ToServer => self.summary.bytes_to_server += data.len() as u64,
                    Direction::ToClient => self.summary.bytes_to_client += data.len() as u64,
                }
                let Some(c) = self.conns.get_mut(&conn) else { return Ok(()) };
                // Runs: floods of small Redis messages come as one event,
                // converted straight to records (see `write_run`).
                c.session.feed_runs(dir, &data, ts, &mut self.events);
                if let (Role::Invocations { fed, .. }, Direction::ToServer) = (&mut c.role, dir) {
                    *fed += data.len() as u64;
                }
                let result = self.drain(conn);
                self.note_arrival(conn, ts);
                result
            }
            Note::Eof { conn, dir, ts } => {
                let Some(c) = self.conns.get_mut(&conn) else { return Ok(()) };
                c.session.eof(dir, ts, &mut self.events);
                self.drain(conn)
            }
            Note::Lost { conn, dir, bytes, ts } => {
                self.summary.gaps += 1;
                self.lose_place(conn, ts);
                let reason = "recorder queue full: the recorder fell behind the traffic".to_string();
                let body = Body::Gap(Gap { conn: Some(conn), dir: Some(dir), bytes, records: 0, reason });
                self.write(&Record { ts, src: 0, body })
            }
            Note::Log { origin, stream, mut text, ts } => {
                self.summary.log_lines += 1;
                // Blanked in the record only: the wrapped command's output
                // was already passed on as it wrote it.
                let redacted = convert::redact::log_line(self.converter.rules(), &mut text);
                self.write(&Record { ts, src: 0, body: Body::Log(format::LogLine { origin, stream, text, redacted }) })
            }
            Note::Close { conn, ts, bytes_to_server, bytes_to_client, error } => {
                self.finish_conn(conn, ts)?;
                let body = Body::ConnClose(ConnClose { conn, bytes_to_server, bytes_to_client, error });
                self.write(&Record { ts, src: 0, body })
            }
        }
    }

    fn finish_conn(&mut self, conn: u64, ts: u64) -> Result<(), String> {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session.eof(Direction::ToServer, ts, &mut self.events);
            c.session.eof(Direction::ToClient, ts, &mut self.events);
        }
        let result = self.drain(conn);
        self.converter.conn_closed(conn);
        if let Some(Conn { role: Role::Invocations { unanswered, .. }, .. }) = self.conns.remove(&conn) {
            for id in unanswered.into_iter().flatten() {
                self.attributor.end(id, ts);
            }
            self.attributor.arriving(conn, None);
        }
        result
    }

    /// After request bytes on an invocation connection: is a request still
    /// arriving (seen but not yet decoded)?
    fn note_arrival(&mut self, conn: u64, ts: u64) {
        if let Some(Conn { role: Role::Invocations { fed, decoded_end, decoding: true, .. }, .. }) = self.conns.get(&conn) {
            self.attributor.arriving(conn, (fed > decoded_end).then_some(ts));
        }
    }

    fn drain(&mut self, conn: u64) -> Result<(), String> {
        let protocol = self.conns.get(&conn).map(|c| c.protocol).unwrap_or(Protocol::Tcp);
        // Taken and put back, so its allocation is reused note after note.
        let mut events = std::mem::take(&mut self.events);
        let result = self.write_events(conn, protocol, &mut events);
        events.clear();
        self.events = events;
        result
    }

    fn write_events(&mut self, conn: u64, protocol: Protocol, events: &mut Vec<Event>) -> Result<(), String> {
        for event in events.drain(..) {
            let mut attribution = None;
            match &event {
                Event::Exchange(x) => {
                    *self.summary.exchanges.entry(protocol.name()).or_default() += 1;
                    attribution = self.on_exchange(conn, x);
                }
                Event::Opaque { reason, .. } => {
                    self.summary.fallbacks += 1;
                    self.summary.first_fallback.get_or_insert_with(|| reason.clone());
                }
                Event::RedisRun(run) => {
                    self.write_run(conn, protocol, run)?;
                    continue;
                }
                Event::Message(m) => {
                    if let MessageKind::Http(HttpMessage::Request(req)) = &m.kind {
                        if let Some(invocation) = self.on_request(conn, m, req) {
                            self.summary.invocations += 1;
                            self.write(&Record { ts: m.first_ts, src: 0, body: Body::Invocation(invocation) })?;
                        }
                    }
                }
            }
            let mut result = Ok(());
            // Not `self.write`: the converter is borrowed from `self`.
            let (writer, summary) = (&mut *self.writer, &mut self.summary);
            self.converter.for_each_record(conn, event, &mut |record| {
                if let Body::Exchange(x) = &mut record.body {
                    x.attribution = attribution.clone();
                }
                if result.is_ok() {
                    result = write_counted(writer, summary, record);
                }
            });
            result?;
        }
        Ok(())
    }

    /// Writes the records of a run of Redis messages, made straight from
    /// the run: the records, exchange counts and attributions its expanded
    /// events would give, without building those events.
    fn write_run(&mut self, conn: u64, protocol: Protocol, run: &RedisRun) -> Result<(), String> {
        if run.dir == Direction::ToClient {
            *self.summary.exchanges.entry(protocol.name()).or_default() += run.len() as u64;
        }
        // As `on_exchange` does for a downstream Redis exchange: no evidence
        // but the time window (a Redis connection is never a worker's).
        let attribute = !self.opts.invocation_routes.is_empty()
            && matches!(self.conns.get(&conn), Some(Conn { role: Role::Downstream { .. }, .. }));
        let mut result = Ok(());
        let (writer, summary, attributor) = (&mut *self.writer, &mut self.summary, &mut self.attributor);
        self.converter.for_each_run_record(conn, run, &mut |record| {
            if let (Body::Exchange(x), true) = (&mut record.body, attribute) {
                x.attribution = attribute_call(attributor, summary, None, record.ts, x.response_last.unwrap_or(x.request_last));
            }
            if result.is_ok() {
                result = write_counted(writer, summary, record);
            }
        });
        result
    }

    /// A request was decoded: on a worker's connection, maybe an
    /// invocation begins; elsewhere, note its trace id for its exchange.
    fn on_request(&mut self, conn: u64, m: &wire::Message, req: &HttpRequest) -> Option<Invocation> {
        if self.opts.invocation_routes.is_empty() {
            // Nothing to attribute to: no trace ids to note (and none to
            // pop in `on_exchange`).
            return None;
        }
        let trace_id = req.header("traceparent").and_then(|v| traceparent_trace_id(&String::from_utf8_lossy(v)));
        match &mut self.conns.get_mut(&conn)?.role {
            Role::Downstream { traces } => {
                traces.push_back(trace_id);
                None
            }
            Role::Invocations { profile, unanswered, decoded_end, .. } => {
                *decoded_end = m.offset + m.raw.len;
                let Some(named) = profile.match_target(&req.target_str()) else {
                    unanswered.push_back(None);
                    return None;
                };
                let id = self.attributor.begin(m.first_ts, trace_id.clone());
                unanswered.push_back(Some(id));
                let request_id = REQUEST_ID_HEADERS.iter().find_map(|h| req.header(h)).map(|v| String::from_utf8_lossy(v).into_owned());
                Some(Invocation { id, conn, lambda: named.lambda, platform: named.platform, request_id, trace_id })
            }
        }
    }

    /// An exchange completed: on a worker's connection an invocation ends;
    /// elsewhere it is a downstream call to attribute.
    fn on_exchange(&mut self, conn: u64, x: &wire::Exchange) -> Option<format::Attribution> {
        if self.opts.invocation_routes.is_empty() {
            return None;
        }
        let role = &mut self.conns.get_mut(&conn)?.role;
        let evidence = match role {
            Role::Invocations { unanswered, .. } => {
                if let Some(Some(id)) = unanswered.pop_front() {
                    self.attributor.end(id, x.timings.response_last.unwrap_or(self.last_ts.max(x.timings.request_last)));
                }
                return None;
            }
            Role::Downstream { traces } => match &x.detail {
                ExchangeDetail::Http(_) => traces.pop_front().flatten().map(|trace_id| Evidence { trace_id, method: AttributionMethod::Traceparent }),
                ExchangeDetail::Pg(pg) => pg
                    .statements
                    .iter()
                    .filter_map(|s| s.sql.as_ref())
                    .chain(pg.prepared.iter().map(|p| &p.sql))
                    .find_map(|sql| sqlcommenter_trace_id(&String::from_utf8_lossy(sql)))
                    .map(|trace_id| Evidence { trace_id, method: AttributionMethod::Sqlcommenter }),
                ExchangeDetail::Redis(_) => None,
            },
        };
        let t = &x.timings;
        attribute_call(&mut self.attributor, &mut self.summary, evidence.as_ref(), t.request_first, t.response_last.unwrap_or(t.request_last))
    }
}

/// Attributes a downstream call that ran from `start` to `end` (with
/// `evidence`, if it carried any), and counts the outcome in `summary`.
fn attribute_call(attributor: &mut Attributor, summary: &mut Summary, evidence: Option<&Evidence>, start: u64, end: u64) -> Option<format::Attribution> {
    let attribution = attributor.attribute(evidence, start, end);
    match &attribution {
        Some(a) => *summary.attributed.entry(a.method.name()).or_default() += 1,
        None => summary.unattributed += 1,
    }
    attribution
}

/// Hashing for the connection map, looked up several times per note:
/// connection ids are consecutive numbers, so a multiplication spreads
/// them well enough, at a fraction of SipHash's cost.
#[derive(Clone, Copy, Default)]
struct ConnIds;

impl std::hash::BuildHasher for ConnIds {
    type Hasher = ConnIdHasher;
    fn build_hasher(&self) -> ConnIdHasher {
        ConnIdHasher(0)
    }
}

struct ConnIdHasher(u64);

impl std::hash::Hasher for ConnIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Headers platforms put a request id in, in order of preference.
const REQUEST_ID_HEADERS: &[&str] = &["x-request-id", "x-amzn-requestid", "x-amz-request-id", "x-ms-request-id", "x-correlation-id"];

/// Writes `record` and counts it in `summary`.
fn write_counted(writer: &mut Writer<std::fs::File>, summary: &mut Summary, record: &Record) -> Result<(), String> {
    summary.records += 1;
    writer.write(record).map_err(|e| e.to_string())
}

