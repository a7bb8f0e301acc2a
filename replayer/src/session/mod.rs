//! Replaying one recorded connection against its target.
//!
//! [`replay_connection`] opens the connection, redoes the protocol's
//! opening with the target's credentials ([`pg`]: startup and
//! authentication; [`redis`]: `AUTH` and `SELECT`), then sends the recorded
//! client messages in order, each no earlier than its due time and only
//! once the responses the recorded client had waited for have come back.
//! Everything sent and received goes through a [`wire::Session`], and each
//! exchange it completes is turned into a replayed [`Side`] with
//! `convert::event_to_records`, exactly as the recorder built the recorded
//! one, then paired with the recorded exchange in order.
//!
//! One task owns the socket: it writes without blocking (what the socket
//! does not take waits in a buffer) and reads whenever bytes come, so a
//! pipelining client's replay cannot deadlock against a server that stops
//! reading until its replies are read. The socket is a [`transport`]:
//! plain TCP, or TLS driven by the same readiness.

pub mod http;
pub mod pg;
pub mod redis;
pub mod transport;

use crate::load::{ConnScript, RecExchange};
use crate::model::{Replayed, Side};
use crate::target::Target;
use crate::timer::Timer;
use bytes::{Buf, BytesMut};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use transport::Transport;

/// Settings shared by every connection of a run.
#[derive(Clone)]
pub struct SessionOpts {
    /// The replay's time zero.
    pub clock: Instant,
    /// How long to wait for a connection, or for a response.
    pub timeout: Duration,
    /// No message is sent after this.
    pub deadline: Option<Instant>,
    pub timer: Timer,
}

/// What one connection's replay did besides the exchanges it reported.
#[derive(Debug)]
pub struct ConnOutcome {
    /// Exchanges not sent because `--duration` ran out.
    pub unsent: u64,
    /// Lateness (µs) of the scheduled sends that were not held back by the
    /// target: the response they waited for had come before they were
    /// due. This is the replayer's own timing error; the rest of the
    /// lateness is the target being slower than the recorded server.
    pub own_lateness: hdrhistogram::Histogram<u64>,
}

impl Default for ConnOutcome {
    fn default() -> ConnOutcome {
        ConnOutcome { unsent: 0, own_lateness: hdrhistogram::Histogram::new(3).expect("3 significant figures is valid") }
    }
}

/// A connection to a target, with the decoder that reads both directions.
pub struct Conn {
    pub stream: Transport,
    pub session: wire::Session,
    clock: Instant,
    pub events: Vec<wire::Event>,
    rbuf: Vec<u8>,
    pub eof: bool,
}

impl Conn {
    /// Connects to `target`, in TLS when it asks (for PostgreSQL, after
    /// an SSLRequest the server must answer `S`).
    pub async fn connect(target: &Target, protocol: wire::Protocol, clock: Instant, timeout: Duration) -> Result<Conn, String> {
        let addr = &target.addr;
        let opened = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
            let _ = tcp.set_nodelay(true);
            if !target.tls {
                return Ok(Transport::plain(tcp));
            }
            let tcp = if protocol == wire::Protocol::Postgres { pg::ask_for_tls(tcp, addr).await? } else { tcp };
            let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
            Transport::tls(tcp, host).await.map_err(|e| format!("{addr}: {e}"))
        };
        let stream = match tokio::time::timeout(timeout, opened).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(format!("cannot connect to {addr}: no answer within {timeout:?}")),
        };
        let limits = wire::Limits::default();
        Ok(Conn {
            stream,
            session: wire::Session::new(protocol, limits),
            clock,
            events: Vec::new(),
            rbuf: vec![0; 64 << 10],
            eof: false,
        })
    }

    pub fn now_ns(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Feeds bytes about to be sent to the decoder.
    pub fn note_sent(&mut self, bytes: &[u8]) {
        let now = self.now_ns();
        self.session.feed(wire::Direction::ToServer, bytes, now, &mut self.events);
    }

    /// Sends `bytes` whole (for the short openings; the replay proper
    /// writes without blocking).
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.note_sent(bytes);
        self.stream.write_all(bytes).await.map_err(|e| format!("sending failed: {e}"))
    }

    /// Reads what is there without waiting, feeding the decoder. Returns
    /// false once the server has closed.
    pub fn read_ready(&mut self) -> Result<bool, String> {
        loop {
            match self.stream.try_read(&mut self.rbuf) {
                Ok(0) => {
                    let now = self.now_ns();
                    self.session.eof(wire::Direction::ToClient, now, &mut self.events);
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    let now = self.now_ns();
                    self.session.feed(wire::Direction::ToClient, &self.rbuf[..n], now, &mut self.events);
                    if n < self.rbuf.len() {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading failed: {e}")),
            }
        }
    }

    /// Waits until the server sends something (or closes), within `timeout`.
    pub async fn read_some(&mut self, timeout: Duration) -> Result<(), String> {
        if self.eof {
            return Err("the server closed the connection".into());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.tcp.readable()).await {
                Err(_) => return Err(format!("no answer within {timeout:?}")),
                Ok(Err(e)) => return Err(format!("reading failed: {e}")),
                Ok(Ok(())) => {}
            }
            let before = self.events.len();
            let open = self.read_ready()?;
            if self.events.len() > before || !open {
                return Ok(());
            }
        }
    }
}

/// Turns decoder events into replayed sides, in exchange order.
#[derive(Default)]
pub struct Sides {
    conn: u64,
    responses: Vec<format::Message>,
    pub done: Vec<Side>,
    /// Why the decoder gave up on the target's replies, if it did: from
    /// there on it cannot tell where a reply ends, so waiting for one is
    /// pointless (e.g. a Redis reply nested past `wire::redis::MAX_DEPTH`).
    pub undecodable: Option<String>,
}

impl Sides {
    pub fn new(conn: u64) -> Sides {
        Sides { conn, ..Sides::default() }
    }

    pub fn absorb(&mut self, events: &mut Vec<wire::Event>) {
        let mut records = Vec::new();
        for ev in events.drain(..) {
            convert::event_to_records(self.conn, ev, false, &mut records);
        }
        for rec in records {
            match rec.body {
                format::Body::Message(m)
                    if m.dir == format::Direction::ToClient && !m.decoded.as_ref().is_some_and(format::Decoded::is_unsolicited) =>
                {
                    self.responses.push(m);
                }
                format::Body::Fallback(f) if f.dir == format::Direction::ToClient => {
                    self.undecodable.get_or_insert(f.reason);
                }
                format::Body::Exchange(e) => self.done.push(Side {
                    latency: e.latency(rec.ts),
                    status: e.status,
                    summary: e.summary,
                    responses: std::mem::take(&mut self.responses),
                }),
                _ => {}
            }
        }
    }
}

/// Opens a connection and redoes the protocol's opening. `Sides` left
/// over from the opening are discarded.
pub async fn open(script: &ConnScript, target: &Target, opts: &SessionOpts) -> Result<Conn, String> {
    if script.protocol == format::Protocol::Mysql {
        return Err("protocol not replayed".into());
    }
    let mut conn = Conn::connect(target, script.protocol, opts.clock, opts.timeout).await?;
    match script.protocol {
        format::Protocol::Postgres => {
            let empty = Vec::new();
            pg::startup(&mut conn, script.startup.as_ref().unwrap_or(&empty), target, opts.timeout).await?
        }
        format::Protocol::Redis => redis::preamble(&mut conn, target, opts.timeout).await?,
        _ => {}
    }
    conn.events.clear();
    Ok(conn)
}

/// A pending precise sleep, kept across loop turns while its deadline holds.
type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

enum Wake {
    Read,
    Write,
    Timer,
    Timeout,
}

/// Replays one connection: `dues[i]` is when `script.sends[i]` is due
/// (`None`: as soon as it may go). Every compared exchange is reported on
/// `out`, answered or failed.
pub async fn replay_connection(
    script: Arc<ConnScript>,
    target: Target,
    dues: Vec<Option<Instant>>,
    open_at: Option<Instant>,
    opts: SessionOpts,
    out: mpsc::UnboundedSender<Replayed>,
) -> ConnOutcome {
    let mut outcome = ConnOutcome::default();
    let n_ex = script.exchanges.len();
    let mut scheduled = vec![0u64; n_ex];
    let mut sent = vec![0u64; n_ex];
    for (i, s) in script.sends.iter().enumerate() {
        if let Some(x) = s.starts {
            scheduled[x] = dues[i].map_or(0, |d| d.saturating_duration_since(opts.clock).as_nanos() as u64);
        }
    }
    let rewrote_host = target.host_header.is_some();
    let report = |k: usize, mut side: Result<Side, String>, sched: u64, sent: u64| {
        let e: &RecExchange = &script.exchanges[k];
        if !e.compare {
            return;
        }
        // The Host header was changed on purpose: it is not a difference
        // (the summary's host is the request's, not the server's answer).
        if let (true, Ok(side), format::ExchangeSummary::Http(rec)) = (rewrote_host, &mut side, &e.recorded.summary) {
            if let format::ExchangeSummary::Http(rep) = &mut side.summary {
                rep.host.clone_from(&rec.host);
            }
        }
        let _ = out.send(Replayed {
            src: script.src,
            conn: script.conn,
            route: script.route.clone(),
            protocol: script.protocol,
            lambda: e.lambda.clone(),
            key: e.key.clone(),
            recorded: e.recorded.clone(),
            replayed: side,
            scheduled: if sched == 0 { sent } else { sched },
            sent,
        });
    };
    // Decodes what arrived and reports the exchanges it completed, in
    // order, up to `limit`; true if any was.
    let report_answers = |sides: &mut Sides, events: &mut Vec<wire::Event>, matched: &mut usize, limit: usize, sent: &[u64]| {
        sides.absorb(events);
        let mut any = false;
        for side in sides.done.drain(..) {
            if *matched < limit {
                report(*matched, Ok(side), scheduled[*matched], sent[*matched]);
                *matched += 1;
                any = true;
            }
        }
        any
    };
    if let Some(at) = open_at {
        opts.timer.sleep_until(at).await;
    }
    if opts.deadline.is_some_and(|d| Instant::now() >= d) {
        outcome.unsent = script.compared() as u64;
        return outcome;
    }
    let mut conn = match open(&script, &target, &opts).await {
        Ok(c) => c,
        Err(e) => {
            let now = opts.clock.elapsed().as_nanos() as u64;
            for (k, sched) in scheduled.iter().enumerate() {
                report(k, Err(e.clone()), *sched, now);
            }
            return outcome;
        }
    };
    let mut sides = Sides::new(script.conn);
    let mut matched = 0usize; // exchanges answered (or closed) so far
    let mut started = 0usize; // exchanges whose request went out
    let mut next = 0usize; // next message to send
    let mut outbuf = BytesMut::new();
    let mut stop_sending = false;
    let mut failure: Option<String> = None;
    let mut timer: Option<(Instant, Sleep)> = None;
    let mut shut_write = false;
    // When the last answer came (for telling the target's delays from ours).
    let mut last_answer: Option<Instant> = None;
    // One idle timer for the connection, pushed back only when it fires
    // early (re-arming a timer on every turn costs more than the rest of
    // a small exchange).
    let mut last_activity = Instant::now();
    let mut idle_at = last_activity + opts.timeout;
    let mut idle = Box::pin(tokio::time::sleep_until(idle_at.into()));
    loop {
        // Answers first: they may free the next sends.
        if report_answers(&mut sides, &mut conn.events, &mut matched, n_ex, &sent) {
            last_answer = Some(Instant::now());
        }
        // Queue what is due.
        let mut due_wait = None;
        let mut dep_wait = false;
        while next < script.sends.len() && !stop_sending {
            if opts.deadline.is_some_and(|d| Instant::now() >= d) {
                stop_sending = true;
                break;
            }
            let s = &script.sends[next];
            if matched < s.wait_for {
                dep_wait = true;
                break;
            }
            if let Some(due) = dues[next] {
                if Instant::now() < due {
                    due_wait = Some(due);
                    break;
                }
            }
            if outbuf.len() > 1 << 20 {
                break;
            }
            let bytes = match script.protocol {
                format::Protocol::Http => http::request_bytes(&s.bytes, &target),
                format::Protocol::Redis => redis::command_bytes(s, &target),
                _ => std::borrow::Cow::Borrowed(&s.bytes[..]),
            };
            conn.note_sent(&bytes);
            if let Some(x) = s.starts {
                sent[x] = conn.now_ns();
                started = x + 1;
                if let Some(due) = dues[next] {
                    // Held back by the target if what it waited for came after it was due.
                    let held = s.wait_for > 0 && last_answer.is_some_and(|a| a > due);
                    if !held {
                        let late = Instant::now().saturating_duration_since(due).as_micros() as u64;
                        let _ = outcome.own_lateness.record(late);
                    }
                }
            }
            outbuf.extend_from_slice(&bytes);
            next += 1;
        }
        // Write what the socket takes (and what TLS still holds).
        while !outbuf.is_empty() || conn.stream.wants_write() {
            match conn.stream.try_write(&outbuf) {
                Ok(n) => outbuf.advance(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(format!("sending failed: {e}"));
                    break;
                }
            }
        }
        if report_answers(&mut sides, &mut conn.events, &mut matched, n_ex, &sent) {
            last_answer = Some(Instant::now());
        }
        if failure.is_some() {
            break;
        }
        // HTTP hands a connection over on purpose (`101`, `CONNECT`); for
        // the other protocols a reply the decoder gave up on ends the replay
        // of this connection at once.
        if let (Some(why), false) = (&sides.undecodable, script.protocol == format::Protocol::Http) {
            failure = Some(format!("the target's reply cannot be decoded: {why}"));
            break;
        }
        let all_sent = (next == script.sends.len() || stop_sending) && outbuf.is_empty() && !conn.stream.wants_write();
        if all_sent && matched >= started {
            break;
        }
        if all_sent && conn.eof {
            break;
        }
        let waiting_for_server = dep_wait || all_sent;
        if let Some(due) = due_wait {
            if timer.as_ref().is_none_or(|(d, _)| *d != due) {
                let t = opts.timer.clone();
                timer = Some((due, Box::pin(async move { t.sleep_until(due).await })));
            }
        }
        // An HTTP response may end only when the server closes: once all
        // is sent and the server has been quiet for a second, half-close.
        let quiet = if all_sent && !shut_write && script.protocol == format::Protocol::Http {
            opts.timeout.min(Duration::from_secs(1))
        } else {
            opts.timeout
        };
        let want = last_activity + quiet;
        if want < idle_at {
            idle_at = want;
            idle.as_mut().reset(want.into());
        }
        let wake = tokio::select! {
            biased;
            r = conn.stream.tcp.readable(), if !conn.eof => match r { Ok(()) => Wake::Read, Err(_) => Wake::Read },
            _ = conn.stream.tcp.writable(), if !outbuf.is_empty() || conn.stream.wants_write() => Wake::Write,
            _ = async { timer.as_mut().expect("set with due_wait").1.as_mut().await }, if due_wait.is_some() => Wake::Timer,
            _ = &mut idle, if waiting_for_server || !outbuf.is_empty() => Wake::Timeout,
        };
        if !matches!(wake, Wake::Timeout) {
            last_activity = Instant::now();
        }
        match wake {
            Wake::Read => {
                if let Err(e) = conn.read_ready() {
                    failure = Some(e);
                }
                if conn.eof && !all_sent {
                    report_answers(&mut sides, &mut conn.events, &mut matched, n_ex, &sent);
                    if next < script.sends.len() {
                        failure = Some("the server closed the connection".into());
                    }
                }
            }
            Wake::Write | Wake::Timer => {}
            Wake::Timeout => {
                if Instant::now() < last_activity + quiet {
                    // Activity since it was armed: not idle yet.
                    idle_at = last_activity + quiet;
                    idle.as_mut().reset(idle_at.into());
                    continue;
                }
                if all_sent && !shut_write && matched < started {
                    // A response that ends when the server closes (an
                    // HTTP body without a length): say we are done.
                    shut_write = true;
                    let _ = conn.stream.shutdown_write();
                    last_activity = Instant::now();
                    idle_at = last_activity + opts.timeout;
                    idle.as_mut().reset(idle_at.into());
                    continue;
                }
                failure = Some(format!("no response within {:?}", opts.timeout));
            }
        }
        if failure.is_some() {
            break;
        }
        if due_wait.is_none() {
            timer = None;
        }
    }
    // Both sides are done: whatever was pending (a request whose body the
    // server did not wait for, a response that ends at close) is now
    // decided by the decoder, as the recorder decided it.
    // (After a failure, what is pending failed: it is not decided.)
    if failure.is_none() {
        let now = conn.now_ns();
        conn.session.eof(wire::Direction::ToServer, now, &mut conn.events);
        if !conn.eof {
            conn.session.eof(wire::Direction::ToClient, now, &mut conn.events);
        }
    }
    report_answers(&mut sides, &mut conn.events, &mut matched, started, &sent);
    let why = failure.unwrap_or_else(|| "the connection ended before the response".into());
    let now = opts.clock.elapsed().as_nanos() as u64;
    for k in matched..n_ex {
        if k < started {
            report(k, Err(why.clone()), scheduled[k], sent[k]);
        } else if stop_sending {
            if script.exchanges[k].compare {
                outcome.unsent += 1;
            }
        } else {
            report(k, Err(format!("not sent: {why}")), scheduled[k], now);
        }
    }
    outcome
}
