//! [`PacketRecorder`]: captured frames into a trace, for `oltrace import`
//! (a file) and `oltrace capture` (live). Frames become TCP segments
//! ([`capture::frame`]), segments become byte streams ([`capture::Reassembler`]),
//! and the streams go to the proxy's own recorder ([`Direct`]) as the notes
//! a proxy's forwarders would have sent: the same decoding, records,
//! redaction, invocations and attribution. What only a capture has goes
//! through [`Direct`]'s extra doors: connections picked up mid-stream, and
//! gaps inside a connection.
//!
//! A connection's protocol comes from its server's port (the well-known
//! ones, [`PortMap::well_known`], and `--port PROTO=PORT`), else from its
//! first bytes ([`guess_protocol`]), else it is plain TCP (opaque chunks).

use crate::proxy::profiles::Profile;
use crate::proxy::recorder::{Direct, RecorderOptions, Summary};
use crate::proxy::tap::Note;
use capture::frame::{self, Skip};
use capture::{CloseCause, Counters, Frame, Reassembler, StreamEvent};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use wire::{Direction, Protocol};

/// Server ports and their protocols.
#[derive(Clone, Debug)]
pub struct PortMap(pub BTreeMap<u16, Protocol>);

impl PortMap {
    /// PostgreSQL 5432, Redis 6379, HTTP 80 and 8080, MySQL 3306; then
    /// `extra` (`--port PROTO=PORT`), which wins.
    pub fn well_known(extra: &[(Protocol, u16)]) -> PortMap {
        let mut map: BTreeMap<u16, Protocol> = [(5432, Protocol::Postgres), (6379, Protocol::Redis), (80, Protocol::Http), (8080, Protocol::Http), (3306, Protocol::Mysql)].into();
        for (p, port) in extra {
            map.insert(*port, *p);
        }
        PortMap(map)
    }
}

/// Parses `PROTO=PORT` (`--port`).
pub fn parse_port(text: &str) -> Result<(Protocol, u16), String> {
    let usage = "use PROTO=PORT, e.g. --port postgres=15432 (protocols: http, postgres, redis, mysql, tcp)";
    let (proto, port) = text.split_once('=').ok_or_else(|| format!("'{text}': {usage}"))?;
    let proto: Protocol = proto.parse().map_err(|e| format!("'{text}': {e}; {usage}"))?;
    let port: u16 = port.parse().map_err(|_| format!("'{text}': '{port}' is not a port number; {usage}"))?;
    Ok((proto, port))
}

/// What decides how a capture is recorded.
#[derive(Clone, Debug)]
pub struct PacketOptions {
    pub ports: PortMap,
    pub redact: convert::redact::Rules,
    /// Requests to HTTP servers on `fronts` are invocations named by this.
    pub invocations: Option<Profile>,
    /// Server ports of the HTTP routes that front a worker; empty: every
    /// HTTP port in `ports`.
    pub fronts: Vec<u16>,
    pub limits: wire::Limits,
    /// Reassembly bounds, the idle timeout among them (`--idle-timeout`).
    pub reassembly: capture::Limits,
}

impl PacketOptions {
    fn route(protocol: Protocol, server: SocketAddr) -> String {
        format!("{}:{}", protocol.name(), server.port())
    }

    pub fn recorder_options(&self) -> RecorderOptions {
        let mut invocation_routes = HashMap::new();
        if let Some(profile) = &self.invocations {
            let profile = Arc::new(profile.clone());
            for (port, p) in &self.ports.0 {
                if *p == Protocol::Http && (self.fronts.is_empty() || self.fronts.contains(port)) {
                    invocation_routes.insert(format!("http:{port}"), profile.clone());
                }
            }
        }
        RecorderOptions {
            queue: 0,
            redact: self.redact.clone(),
            limits: self.limits,
            flush_interval: std::time::Duration::from_millis(100),
            defer: 0,
            invocation_routes,
            stop_decoding: Default::default(),
            progress: false,
        }
    }
}

/// What a capture held besides its connections.
#[derive(Clone, Debug, Default)]
pub struct PacketStats {
    pub frames: u64,
    pub skipped: BTreeMap<Skip, u64>,
    pub reassembly: Counters,
    /// Bytes missing because the snap length cut packets.
    pub snaplen_bytes: u64,
    /// Packets the kernel dropped (live capture).
    pub kernel_drops: u64,
}

/// What a connection's last gap means for the bytes that follow it.
#[derive(Clone, Copy, Default)]
struct AfterGap {
    found: u64,
    /// Requests captured before `found` were fed since: their exchanges
    /// end unanswered before anything else is fed.
    stale_fed: bool,
}

/// A connection opened by the reassembler whose protocol (or, for
/// PostgreSQL, whether it starts at its opening) is not known yet: its
/// first bytes will tell.
struct Waiting {
    /// From the server's port, if it is named.
    protocol: Option<Protocol>,
    client: SocketAddr,
    server: SocketAddr,
    mid_stream: bool,
    ts: u64,
}

pub struct PacketRecorder<'w> {
    direct: Direct<'w>,
    reassembler: Reassembler,
    options: PacketOptions,
    anchor_unix_ns: u64,
    events: Vec<StreamEvent>,
    waiting: HashMap<u64, Waiting>,
    /// HTTP connections, and the directions of theirs that lost bytes and
    /// have not found their next message start yet (see [`http_resync_at`]).
    http: HashMap<u64, [bool; 2]>,
    /// Per connection, when its last gap was found, and whether requests
    /// captured before that have been fed since (see [`PacketRecorder::event`]).
    after_gap: HashMap<u64, AfterGap>,
    pub stats: PacketStats,
    last_ts: u64,
}

impl<'w> PacketRecorder<'w> {
    /// Frames are timed from `anchor_unix_ns`, the trace header's anchor.
    pub fn new(writer: &'w mut format::Writer<std::fs::File>, options: PacketOptions, anchor_unix_ns: u64) -> PacketRecorder<'w> {
        let server_ports = options.ports.0.keys().copied().collect();
        PacketRecorder {
            direct: Direct::new(writer, options.recorder_options()),
            reassembler: Reassembler::new(options.reassembly, server_ports),
            options,
            anchor_unix_ns,
            events: Vec::new(),
            waiting: HashMap::new(),
            http: HashMap::new(),
            after_gap: HashMap::new(),
            stats: PacketStats::default(),
            last_ts: 0,
        }
    }

    /// The trace's time of a capture time.
    pub fn ts_of(&self, ts_unix_ns: u64) -> u64 {
        ts_unix_ns.saturating_sub(self.anchor_unix_ns)
    }

    /// Records one captured frame.
    pub fn frame(&mut self, f: &Frame) -> Result<(), String> {
        self.stats.frames += 1;
        let ts = self.ts_of(f.ts_unix_ns);
        self.last_ts = self.last_ts.max(ts);
        match frame::tcp_segment(f.link, f.data, f.orig_len) {
            Ok(seg) => self.reassembler.push(&seg, ts, &mut self.events),
            Err(skip) => *self.stats.skipped.entry(skip).or_default() += 1,
        }
        self.drain()
    }

    /// A gap not tied to a connection (kernel drops, a damaged file).
    pub fn lost(&mut self, bytes: u64, packets: u64, reason: String, ts_unix_ns: u64) -> Result<(), String> {
        let ts = self.ts_of(ts_unix_ns).max(self.last_ts);
        self.direct.lost(bytes, packets, reason, ts)
    }

    pub fn flush_if_due(&mut self) -> Result<(), String> {
        self.direct.flush_if_due()
    }

    pub fn summary(&self) -> &Summary {
        self.direct.summary()
    }

    /// The capture ended: connections still open close, holes become gaps.
    pub fn finish(mut self) -> (Summary, PacketStats) {
        let mut result = Ok(());
        self.reassembler.finish(self.last_ts, &mut self.events);
        if let Err(e) = self.drain() {
            result = Err(e);
        }
        self.stats.reassembly = self.reassembler.counters;
        let mut summary = self.direct.finish();
        if let Err(e) = result {
            summary.error.get_or_insert(e);
        }
        (summary, self.stats)
    }

    fn drain(&mut self) -> Result<(), String> {
        let mut events = std::mem::take(&mut self.events);
        let mut result = Ok(());
        for e in events.drain(..) {
            if result.is_ok() {
                result = self.event(e);
            }
        }
        self.events = events;
        result
    }

    /// Records what a reassembler emitted (live capture reassembles on its
    /// own thread; [`PacketRecorder::frame`] does both here).
    pub fn event(&mut self, e: StreamEvent) -> Result<(), String> {
        match e {
            StreamEvent::Open { conn, client, server, mid_stream, ts } => {
                let protocol = self.options.ports.0.get(&server.port()).copied();
                match protocol {
                    // PostgreSQL waits for its first bytes too: a startup
                    // packet, or already tagged messages (see `is_pg_opening`).
                    Some(p) if p != Protocol::Postgres || mid_stream => self.open(conn, p, client, server, mid_stream, ts),
                    _ => {
                        self.waiting.insert(conn, Waiting { protocol, client, server, mid_stream, ts });
                        Ok(())
                    }
                }
            }
            StreamEvent::Data { conn, dir, data, ts, captured } => {
                // Bytes that waited behind a hole come out when the hole is
                // given up, after the other direction's later bytes. A
                // request captured before a gap was found may have been
                // answered inside that gap (or already, before it came
                // out): it must not take a later response as its own. So
                // its exchange ends unanswered, as if the gap came after
                // it, before any other byte of the connection is fed.
                if let Some(after) = self.after_gap.get_mut(&conn) {
                    let stale = dir == Direction::ToServer && captured < after.found;
                    if !stale && std::mem::take(&mut after.stale_fed) {
                        self.direct.restart(conn, [0, 0], ts)?;
                    }
                    after.stale_fed |= stale;
                }
                if let Some(w) = self.waiting.remove(&conn) {
                    let protocol = w.protocol.unwrap_or_else(|| guess_protocol(dir, &data));
                    let mid_stream = w.mid_stream || protocol == Protocol::Postgres && !(dir == Direction::ToServer && is_pg_opening(&data));
                    self.open(conn, protocol, w.client, w.server, mid_stream, w.ts)?;
                }
                let mut data = data;
                if let Some(lost) = self.http.get_mut(&conn).filter(|l| l[dir.index()]) {
                    // After a gap, HTTP picks up at the next message start:
                    // the bytes before it are skipped, and said so.
                    let at = http_resync_at(dir, &data).unwrap_or(data.len());
                    lost[dir.index()] = at == data.len();
                    if at > 0 {
                        let reason = format!("capture: bytes after a gap skipped up to the next HTTP {}", if dir == Direction::ToServer { "request line" } else { "status line" });
                        self.direct.gap(conn, dir, at as u64, reason, ts)?;
                        data.drain(..at);
                    }
                    if data.is_empty() {
                        return Ok(());
                    }
                }
                self.direct.note(Note::Data { conn, dir, data: data.into(), ts })
            }
            StreamEvent::Gap { conn, dir, bytes, cause, ts } => {
                if let Some(w) = self.waiting.remove(&conn) {
                    self.open(conn, w.protocol.unwrap_or(Protocol::Tcp), w.client, w.server, true, w.ts)?;
                }
                if cause == capture::GapCause::Snaplen {
                    self.stats.snaplen_bytes += bytes;
                }
                if let Some(lost) = self.http.get_mut(&conn) {
                    lost[dir.index()] = true;
                }
                self.after_gap.insert(conn, AfterGap { found: ts, stale_fed: false });
                self.direct.gap(conn, dir, bytes, format!("capture: {}", cause.describe()), ts)
            }
            StreamEvent::Eof { conn, dir, ts } => {
                if self.waiting.contains_key(&conn) {
                    return Ok(());
                }
                self.direct.note(Note::Eof { conn, dir, ts })
            }
            StreamEvent::Close { conn, cause, bytes, ts } => {
                if let Some(w) = self.waiting.remove(&conn) {
                    // No byte crossed: still a connection.
                    self.open(conn, w.protocol.unwrap_or(Protocol::Tcp), w.client, w.server, w.mid_stream, w.ts)?;
                }
                self.http.remove(&conn);
                self.after_gap.remove(&conn);
                let error = match cause {
                    CloseCause::Reset => Some("reset (RST)".to_string()),
                    CloseCause::Idle => Some(format!("capture: no segment for {} s, taken as closed (--idle-timeout)", self.options.reassembly.idle_ns / 1_000_000_000)),
                    CloseCause::Fin | CloseCause::Reused | CloseCause::CaptureEnded => None,
                };
                self.direct.note(Note::Close { conn, ts, bytes_to_server: bytes[0], bytes_to_client: bytes[1], error })
            }
        }
    }

    fn open(&mut self, conn: u64, protocol: Protocol, client: SocketAddr, server: SocketAddr, mid_stream: bool, ts: u64) -> Result<(), String> {
        if protocol == Protocol::Http {
            self.http.insert(conn, [false; 2]);
        }
        let route = PacketOptions::route(protocol, server);
        if mid_stream {
            self.direct.open_mid_stream(conn, protocol, client.to_string(), server.to_string(), route, ts)
        } else {
            self.direct.note(Note::Open { conn, protocol, client: client.to_string(), server: server.to_string(), route, tls: None, ts })
        }
    }
}

/// HTTP methods, as a request line starts with them.
const METHODS: &[&[u8]] = &[b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE "];

/// Where in `data` (bytes after a gap, in `dir`) the next HTTP message
/// starts: a request line (a method at the start of a line) towards the
/// server, a status line (`HTTP/1.`) towards the client. A body that
/// happens to hold such a line would mislead it; the decoder then falls
/// back to opaque, saying why.
pub fn http_resync_at(dir: Direction, data: &[u8]) -> Option<usize> {
    let starts = |at: usize| {
        let rest = &data[at..];
        match dir {
            Direction::ToServer => METHODS.iter().any(|m| rest.starts_with(m)),
            Direction::ToClient => rest.starts_with(b"HTTP/1."),
        }
    };
    if starts(0) {
        return Some(0);
    }
    data.windows(2).enumerate().filter(|(_, w)| w == b"\r\n").map(|(i, _)| i + 2).find(|&at| at < data.len() && starts(at))
}

/// True if `data`, the first bytes a PostgreSQL client sent, open the
/// connection (startup packet, SSLRequest, GSSENCRequest, CancelRequest).
/// Otherwise the connection was already under way (a capture of a pooled
/// connection, or a trace that kept no opening) and is decoded mid-stream.
fn is_pg_opening(data: &[u8]) -> bool {
    data.len() >= 8 && matches!(u32::from_be_bytes([data[4], data[5], data[6], data[7]]), 196_608 | 80_877_102 | 80_877_103 | 80_877_104)
}

/// The protocol of a connection on a port nobody named, from the first
/// bytes seen on it (in `dir`). Plain TCP when nothing fits.
pub fn guess_protocol(dir: Direction, data: &[u8]) -> Protocol {
    let pg_tagged = |tags: &[u8]| {
        data.len() >= 5 && tags.contains(&data[0]) && {
            let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]);
            (4..1 << 30).contains(&len)
        }
    };
    match dir {
        Direction::ToServer => {
            if METHODS.iter().any(|m| data.starts_with(m)) {
                Protocol::Http
            } else if data.first() == Some(&b'*') && data.get(1).is_some_and(u8::is_ascii_digit) {
                Protocol::Redis
            } else if is_pg_opening(data) || pg_tagged(b"QPBEDSXHCF") {
                Protocol::Postgres
            } else {
                Protocol::Tcp
            }
        }
        Direction::ToClient => {
            if data.starts_with(b"HTTP/1.") {
                Protocol::Http
            } else if pg_tagged(b"RSKZTDCEINn123ts") {
                Protocol::Postgres
            } else if matches!(data.first(), Some(b'+' | b'-' | b':' | b'$' | b'*' | b'%' | b'_' | b'#')) && data.ends_with(b"\r\n") {
                Protocol::Redis
            } else {
                Protocol::Tcp
            }
        }
    }
}

/// The summary of a recording made from packets, on stderr (and as one
/// JSON object on stdout with `--json`).
pub struct Report<'a> {
    pub command: &'a str,
    /// What was read, for the first line.
    pub read_from: String,
    pub output: &'a std::path::Path,
    pub summary: &'a Summary,
    pub stats: &'a PacketStats,
    pub seconds: f64,
    /// More fields for the JSON object.
    pub extra: serde_json::Value,
}

impl Report<'_> {
    /// Prints the report; `Damaged` when bytes were missing (gaps).
    pub fn print(&self, json: bool) -> crate::Outcome {
        let (s, stats, cmd) = (self.summary, self.stats, self.command);
        if json {
            let mut v = serde_json::json!({
                "output": self.output.display().to_string(),
                "frames": stats.frames,
                "connections": s.connections,
                "exchanges": s.exchanges,
                "records": s.records,
                "gaps": s.gaps,
                "missing_bytes": stats.reassembly.missing_bytes,
                "snaplen_bytes": stats.snaplen_bytes,
                "kernel_drops": stats.kernel_drops,
                "mid_stream_connections": stats.reassembly.mid_stream,
                "retransmitted_bytes": stats.reassembly.retransmitted_bytes,
                "conflicts": stats.reassembly.conflicts,
                "skipped": stats.skipped.iter().map(|(k, v)| (k.describe(), v)).collect::<BTreeMap<_, _>>(),
                "fallbacks": s.fallbacks,
                "seconds": self.seconds,
            });
            if let (Some(v), Some(extra)) = (v.as_object_mut(), self.extra.as_object()) {
                v.extend(extra.clone());
            }
            println!("{v}");
        }
        let per: Vec<String> = s.exchanges.iter().map(|(p, n)| format!("{n} {p}")).collect();
        eprintln!(
            "{cmd}: {} frames from {} in {:.2} s: {} connections ({} picked up mid-stream), {} exchanges ({}), {} records into {}",
            stats.frames,
            self.read_from,
            self.seconds,
            s.connections,
            stats.reassembly.mid_stream,
            s.exchanges.values().sum::<u64>(),
            if per.is_empty() { "none".to_string() } else { per.join(", ") },
            s.records,
            self.output.display()
        );
        if !stats.skipped.is_empty() {
            let skipped: Vec<String> = stats.skipped.iter().map(|(k, n)| format!("{n} {}", k.describe())).collect();
            eprintln!("{cmd}: frames skipped: {}", skipped.join(", "));
        }
        if let Some(reason) = &s.first_fallback {
            eprintln!("{cmd}: {} connections fell back to opaque chunks; the first because {reason}", s.fallbacks);
        }
        if stats.kernel_drops > 0 {
            eprintln!("{cmd}: the kernel dropped {} packets before the capture read them (recorded as gaps)", stats.kernel_drops);
        }
        if s.gaps == 0 {
            return crate::Outcome::Clean;
        }
        eprintln!(
            "{cmd}: {} bytes were missing from the capture ({} of them cut by its snap length), in {} gaps (`oltrace cat --kind gap {}`)",
            stats.reassembly.missing_bytes,
            stats.snaplen_bytes,
            s.gaps,
            self.output.display()
        );
        crate::Outcome::Damaged
    }
}
