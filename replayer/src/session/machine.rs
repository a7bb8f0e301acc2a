//! [`Replay`]: the replay of one connection as a state machine without
//! I/O, in the style of quinn-proto.
//!
//! The machine is told what happened (bytes came from the server, the
//! server closed, bytes were written, a timer fired, the socket failed),
//! always with the time it happened, and says what to do: which bytes to
//! write ([`Replay::pending`]), when to wake it next
//! ([`Replay::next_due`] for a send, [`Replay::idle_deadline`] for the
//! response timeout), whether to half-close ([`Replay::take_shutdown`]),
//! and which exchanges are answered ([`Replay::poll_replayed`]). It never
//! reads a clock or touches a socket, so its decisions are tested on
//! virtual time (`tests/machine.rs`); the I/O loop in
//! [`super::replay_connection`] only carries bytes and wake-ups.
//!
//! The rules it keeps: a recorded client message goes out no earlier than
//! its due time and only once the responses the recorded client had waited
//! for have come back ([`crate::load::Send::wait_for`]); at most about a
//! megabyte waits unwritten; a reply the decoder gives up on ends the
//! replay at once (except HTTP, which hands a connection over on purpose);
//! once all is sent, an HTTP connection quiet for a second is half-closed
//! (a response may end only when the server closes); otherwise no answer
//! within the timeout fails what is pending.

use super::{http, redis, ConnOutcome, Sides};
use crate::load::ConnScript;
use crate::model::{Replayed, Side};
use crate::target::Target;
use bytes::{Buf, BytesMut};
use format::Protocol;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Above this many unwritten bytes, no more messages are queued.
const MAX_UNWRITTEN: usize = 1 << 20;

/// After everything is sent, how long an HTTP connection may stay quiet
/// before the replay half-closes it (capped by the timeout).
const HTTP_QUIET: Duration = Duration::from_secs(1);

/// Builds the [`Replayed`] of a connection's exchanges: the recorded side
/// from the script, the replayed side (or why there is none) and the times.
pub struct Reporter {
    script: Arc<ConnScript>,
    /// The Host header was rewritten on purpose (`--target` for HTTP).
    rewrote_host: bool,
    /// When each exchange's request was due (ns since the replay's zero;
    /// 0 when it was due as soon as it could go).
    scheduled: Vec<u64>,
}

impl Reporter {
    pub fn new(script: Arc<ConnScript>, target: &Target, dues: &[Option<Instant>], clock: Instant) -> Reporter {
        let mut scheduled = vec![0u64; script.exchanges.len()];
        for (i, s) in script.sends.iter().enumerate() {
            if let Some(x) = s.starts {
                scheduled[x] = dues[i].map_or(0, |d| ns_since(clock, d));
            }
        }
        Reporter { script, rewrote_host: target.host_header.is_some(), scheduled }
    }

    /// Exchange `k`'s report, or `None` for one that is not compared.
    pub fn replayed(&self, k: usize, mut side: Result<Side, String>, sent: u64) -> Option<Replayed> {
        let script = &self.script;
        let e = &script.exchanges[k];
        if !e.compare {
            return None;
        }
        // The Host header was changed on purpose: it is not a difference
        // (the summary's host is the request's, not the server's answer).
        if let (true, Ok(side), format::ExchangeSummary::Http(rec)) = (self.rewrote_host, &mut side, &e.recorded.summary) {
            if let format::ExchangeSummary::Http(rep) = &mut side.summary {
                rep.host.clone_from(&rec.host);
            }
        }
        let sched = self.scheduled[k];
        Some(Replayed {
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
        })
    }

    /// Every exchange failed with `why` before anything was sent (the
    /// connection could not be opened).
    pub fn all_failed(&self, why: &str, now: u64) -> Vec<Replayed> {
        let n = self.script.exchanges.len();
        (0..n).filter_map(|k| self.replayed(k, Err(why.to_owned()), now)).collect()
    }
}

fn ns_since(clock: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(clock).as_nanos() as u64
}

/// How the machine is set up for one connection.
pub struct ReplayParams {
    /// `dues[i]`: when `script.sends[i]` is due (`None`: as soon as it may go).
    pub dues: Vec<Option<Instant>>,
    /// The replay's time zero (reported times count from it).
    pub clock: Instant,
    /// How long to wait for a response.
    pub timeout: Duration,
    /// No message is sent after this (`--duration`).
    pub deadline: Option<Instant>,
}

/// The replay of one connection, opened and authenticated, without I/O.
pub struct Replay {
    script: Arc<ConnScript>,
    target: Target,
    params: ReplayParams,
    reporter: Reporter,
    /// The decoder of both directions, as left by the opening.
    session: wire::Session,
    events: Vec<wire::Event>,
    sides: Sides,
    /// When each exchange's request went out (ns since the clock's zero).
    sent: Vec<u64>,
    /// Exchanges answered (or closed) so far.
    matched: usize,
    /// Exchanges whose request went out.
    started: usize,
    /// The next message of the script to send.
    next: usize,
    /// Bytes queued and not yet written.
    out: BytesMut,
    /// `--duration` ran out: nothing more is sent.
    stop_sending: bool,
    failure: Option<String>,
    server_closed: bool,
    /// The transport holds no bytes of its own still to write (TLS records).
    flushed: bool,
    /// A half-close was decided; `shutdown_due` until the I/O loop did it.
    shut_write: bool,
    shutdown_due: bool,
    /// When the last answer came (to tell the target's delays from ours).
    last_answer: Option<Instant>,
    last_activity: Instant,
    /// What the last [`Replay::advance`] found blocking the next send.
    due_wait: Option<Instant>,
    dep_wait: bool,
    replayed: VecDeque<Replayed>,
    outcome: ConnOutcome,
}

impl Replay {
    /// A replay starting at `now` on a connection whose opening `session`
    /// has decoded.
    pub fn new(script: Arc<ConnScript>, target: Target, params: ReplayParams, session: wire::Session, now: Instant) -> Replay {
        let n_ex = script.exchanges.len();
        let reporter = Reporter::new(script.clone(), &target, &params.dues, params.clock);
        Replay {
            sides: Sides::new(script.conn),
            script,
            target,
            params,
            reporter,
            session,
            events: Vec::new(),
            sent: vec![0; n_ex],
            matched: 0,
            started: 0,
            next: 0,
            out: BytesMut::new(),
            stop_sending: false,
            failure: None,
            server_closed: false,
            flushed: true,
            shut_write: false,
            shutdown_due: false,
            last_answer: None,
            last_activity: now,
            due_wait: None,
            dep_wait: false,
            replayed: VecDeque::new(),
            outcome: ConnOutcome::default(),
        }
    }

    fn ns(&self, t: Instant) -> u64 {
        ns_since(self.params.clock, t)
    }

    /// Bytes came from the server at `now`.
    pub fn handle_received(&mut self, bytes: &[u8], now: Instant) {
        let ts = self.ns(now);
        self.session.feed(wire::Direction::ToClient, bytes, ts, &mut self.events);
        self.last_activity = now;
        self.answers(self.script.exchanges.len(), now);
    }

    /// The server closed its side at `now`.
    pub fn handle_server_closed(&mut self, now: Instant) {
        let ts = self.ns(now);
        self.session.eof(wire::Direction::ToClient, ts, &mut self.events);
        self.server_closed = true;
        self.last_activity = now;
        let all_sent = self.all_sent();
        self.answers(self.script.exchanges.len(), now);
        if !all_sent && self.next < self.script.sends.len() {
            self.fail("the server closed the connection".into());
        }
    }

    /// The socket failed (reading or writing): the replay ends, what is
    /// pending fails with `why`.
    pub fn fail(&mut self, why: String) {
        self.failure.get_or_insert(why);
    }

    /// Answers first (they may free the next sends), then queues every
    /// message that may go at `now`.
    pub fn advance(&mut self, now: Instant) {
        if self.failure.is_some() {
            return;
        }
        let n_ex = self.script.exchanges.len();
        self.answers(n_ex, now);
        self.due_wait = None;
        self.dep_wait = false;
        let script = self.script.clone();
        while self.next < script.sends.len() && !self.stop_sending {
            if self.params.deadline.is_some_and(|d| now >= d) {
                self.stop_sending = true;
                break;
            }
            let s = &script.sends[self.next];
            if self.matched < s.wait_for {
                self.dep_wait = true;
                break;
            }
            let due = self.params.dues[self.next];
            if let Some(due) = due.filter(|d| now < *d) {
                self.due_wait = Some(due);
                break;
            }
            if self.out.len() > MAX_UNWRITTEN {
                break;
            }
            let bytes = match script.protocol {
                Protocol::Http => http::request_bytes(&s.bytes, &self.target),
                Protocol::Redis => redis::command_bytes(s, &self.target),
                _ => std::borrow::Cow::Borrowed(&s.bytes[..]),
            };
            let ts = self.ns(now);
            self.session.feed(wire::Direction::ToServer, &bytes, ts, &mut self.events);
            if let Some(x) = s.starts {
                self.sent[x] = ts;
                self.started = x + 1;
                if let Some(due) = due {
                    // Held back by the target if what it waited for came after it was due.
                    let held = s.wait_for > 0 && self.last_answer.is_some_and(|a| a > due);
                    if !held {
                        let late = now.saturating_duration_since(due).as_micros() as u64;
                        let _ = self.outcome.own_lateness.record(late);
                    }
                }
            }
            self.out.extend_from_slice(&bytes);
            self.last_activity = now;
            self.next += 1;
        }
        self.answers(n_ex, now);
        // HTTP hands a connection over on purpose (`101`, `CONNECT`); for
        // the other protocols a reply the decoder gave up on ends the replay
        // of this connection at once.
        if let (Some(why), false) = (&self.sides.undecodable, script.protocol == Protocol::Http) {
            let why = format!("the target's reply cannot be decoded: {why}");
            self.fail(why);
        }
    }

    /// The bytes to write now.
    pub fn pending(&self) -> &[u8] {
        &self.out
    }

    /// `n` bytes of [`Replay::pending`] were written at `now`.
    pub fn wrote(&mut self, n: usize, now: Instant) {
        self.out.advance(n);
        if n > 0 {
            self.last_activity = now;
        }
    }

    /// Whether the transport has written everything it took (TLS may hold
    /// encrypted bytes after [`Replay::pending`] is empty).
    pub fn set_flushed(&mut self, flushed: bool) {
        self.flushed = flushed;
    }

    /// True (once) when the I/O loop should half-close the connection.
    pub fn take_shutdown(&mut self) -> bool {
        std::mem::take(&mut self.shutdown_due)
    }

    /// The next exchange answered (or closed) since the last call.
    pub fn poll_replayed(&mut self) -> Option<Replayed> {
        self.replayed.pop_front()
    }

    /// When the next message is due, if that is what holds it back.
    pub fn next_due(&self) -> Option<Instant> {
        self.due_wait
    }

    /// When the replay gives up waiting for the server (or, for HTTP with
    /// everything sent, half-closes), if it waits for the server at all.
    pub fn idle_deadline(&self) -> Option<Instant> {
        let waiting_for_server = self.dep_wait || self.all_sent();
        (waiting_for_server || !self.out.is_empty()).then(|| self.last_activity + self.quiet())
    }

    /// The idle deadline came at `now`: half-close an HTTP connection whose
    /// response may end at close, else fail what is pending. Does nothing
    /// if there was activity since the deadline was read.
    pub fn handle_idle(&mut self, now: Instant) {
        if now < self.last_activity + self.quiet() {
            return;
        }
        if self.all_sent() && !self.shut_write && self.matched < self.started {
            // A response that ends when the server closes (an HTTP body
            // without a length): say we are done.
            self.shut_write = true;
            self.shutdown_due = true;
            self.last_activity = now;
            return;
        }
        self.fail(format!("no response within {:?}", self.params.timeout));
    }

    /// True when the I/O loop should stop: failed, or everything sent and
    /// answered (or the server closed).
    pub fn is_finished(&self) -> bool {
        self.failure.is_some() || (self.all_sent() && (self.matched >= self.started || self.server_closed))
    }

    /// Ends the replay at `now`: what the decoder still holds is decided
    /// (as the recorder decides it at close), the rest fails or counts as
    /// unsent. Returns the remaining reports and the connection's figures.
    pub fn finish(mut self, now: Instant) -> (Vec<Replayed>, ConnOutcome) {
        // Both sides are done: whatever was pending (a request whose body
        // the server did not wait for, a response that ends at close) is
        // now decided by the decoder, as the recorder decided it. (After a
        // failure, what is pending failed: it is not decided.)
        let ts = self.ns(now);
        if self.failure.is_none() {
            self.session.eof(wire::Direction::ToServer, ts, &mut self.events);
            if !self.server_closed {
                self.session.eof(wire::Direction::ToClient, ts, &mut self.events);
            }
        }
        self.answers(self.started, now);
        let why = self.failure.take().unwrap_or_else(|| "the connection ended before the response".into());
        for k in self.matched..self.script.exchanges.len() {
            let r = if k < self.started {
                self.reporter.replayed(k, Err(why.clone()), self.sent[k])
            } else if self.stop_sending {
                if self.script.exchanges[k].compare {
                    self.outcome.unsent += 1;
                }
                None
            } else {
                self.reporter.replayed(k, Err(format!("not sent: {why}")), ts)
            };
            self.replayed.extend(r);
        }
        (self.replayed.into(), self.outcome)
    }

    fn all_sent(&self) -> bool {
        (self.next == self.script.sends.len() || self.stop_sending) && self.out.is_empty() && self.flushed
    }

    fn quiet(&self) -> Duration {
        if self.all_sent() && !self.shut_write && self.script.protocol == Protocol::Http {
            self.params.timeout.min(HTTP_QUIET)
        } else {
            self.params.timeout
        }
    }

    /// Decodes what arrived and queues the exchanges it completed, in
    /// order, up to `limit`.
    fn answers(&mut self, limit: usize, now: Instant) {
        self.sides.absorb(&mut self.events);
        let mut any = false;
        for side in self.sides.done.drain(..) {
            if self.matched < limit {
                let k = self.matched;
                self.replayed.extend(self.reporter.replayed(k, Ok(side), self.sent[k]));
                self.matched += 1;
                any = true;
            }
        }
        if any {
            self.last_answer = Some(now);
        }
    }
}
