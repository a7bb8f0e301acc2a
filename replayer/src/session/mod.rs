//! Replaying one recorded connection against its target.
//!
//! [`replay_connection`] opens the connection ([`conn::Conn`]), redoes the
//! protocol's opening with the target's credentials ([`pg`]: startup and
//! authentication; [`redis`]: `AUTH` and `SELECT`), then hands the socket's
//! bytes and wake-ups to [`machine::Replay`], a state machine without I/O
//! that decides what is sent when: the recorded client messages in order,
//! each no earlier than its due time and only once the responses the
//! recorded client had waited for have come back ([`http`] and [`redis`]
//! rewrite a request for the target on the way). Everything sent and
//! received goes through a [`wire::Session`], and each exchange it
//! completes is turned into a replayed side ([`sides::Sides`], with
//! `convert::event_to_records`, exactly as the recorder built the recorded
//! one), then paired with the recorded exchange in order.
//!
//! One task owns the socket: it writes without blocking (what the socket
//! does not take waits in the machine's buffer) and reads whenever bytes
//! come, so a pipelining client's replay cannot deadlock against a server
//! that stops reading until its replies are read. The socket is a
//! [`transport`]: plain TCP, or TLS driven by the same readiness.

pub mod conn;
pub mod http;
pub mod machine;
pub mod pg;
pub mod redis;
pub mod sides;
pub mod transport;

pub use conn::Conn;
pub use machine::{Replay, ReplayParams, Reporter};
pub use sides::Sides;

use crate::load::ConnScript;
use crate::model::Replayed;
use crate::target::Target;
use crate::timer::Timer;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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
///
/// This is the I/O half: it opens the connection, then carries bytes and
/// wake-ups between the socket and the [`Replay`] machine, which decides
/// everything else.
pub async fn replay_connection(
    script: Arc<ConnScript>,
    target: Target,
    dues: Vec<Option<Instant>>,
    open_at: Option<Instant>,
    opts: SessionOpts,
    out: mpsc::UnboundedSender<Replayed>,
) -> ConnOutcome {
    if let Some(at) = open_at {
        opts.timer.sleep_until(at).await;
    }
    if opts.deadline.is_some_and(|d| Instant::now() >= d) {
        return ConnOutcome { unsent: script.compared() as u64, ..ConnOutcome::default() };
    }
    let (mut stream, session) = match open(&script, &target, &opts).await {
        Ok(c) => c.into_parts(),
        Err(e) => {
            let reporter = Reporter::new(script.clone(), &target, &dues, opts.clock);
            for r in reporter.all_failed(&e, opts.clock.elapsed().as_nanos() as u64) {
                let _ = out.send(r);
            }
            return ConnOutcome::default();
        }
    };
    let params = ReplayParams { dues, clock: opts.clock, timeout: opts.timeout, deadline: opts.deadline };
    let mut m = Replay::new(script, target, params, session, Instant::now());
    let mut rbuf = vec![0u8; 64 << 10];
    let mut server_closed = false;
    let mut timer: Option<(Instant, Sleep)> = None;
    // One idle timer for the connection, pushed back only when it fires
    // early (re-arming a timer on every turn costs more than the rest of
    // a small exchange).
    let mut idle_at = Instant::now() + opts.timeout;
    let mut idle = Box::pin(tokio::time::sleep_until(idle_at.into()));
    loop {
        m.advance(Instant::now());
        // Write what the socket takes (and what TLS still holds).
        while !m.pending().is_empty() || stream.wants_write() {
            match stream.try_write(m.pending()) {
                Ok(n) => m.wrote(n, Instant::now()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    m.fail(format!("sending failed: {e}"));
                    break;
                }
            }
        }
        m.set_flushed(!stream.wants_write());
        if m.take_shutdown() {
            let _ = stream.shutdown_write();
        }
        while let Some(r) = m.poll_replayed() {
            let _ = out.send(r);
        }
        if m.is_finished() {
            break;
        }
        let due = m.next_due();
        if let Some(due) = due {
            if timer.as_ref().is_none_or(|(d, _)| *d != due) {
                let t = opts.timer.clone();
                timer = Some((due, Box::pin(async move { t.sleep_until(due).await })));
            }
        } else {
            timer = None;
        }
        let idle_want = m.idle_deadline();
        if let Some(want) = idle_want.filter(|w| *w < idle_at) {
            idle_at = want;
            idle.as_mut().reset(want.into());
        }
        let wants_write = !m.pending().is_empty() || stream.wants_write();
        let wake = tokio::select! {
            biased;
            _ = stream.tcp.readable(), if !server_closed => Wake::Read,
            _ = stream.tcp.writable(), if wants_write => Wake::Write,
            _ = async { timer.as_mut().expect("set with a due send").1.as_mut().await }, if due.is_some() => Wake::Timer,
            _ = &mut idle, if idle_want.is_some() => Wake::Timeout,
        };
        match wake {
            Wake::Read => match stream.read_available(&mut rbuf, |bytes| match bytes {
                Some(b) => m.handle_received(b, Instant::now()),
                None => m.handle_server_closed(Instant::now()),
            }) {
                Ok(true) => {}
                Ok(false) => server_closed = true,
                Err(e) => m.fail(e),
            },
            Wake::Write | Wake::Timer => {}
            Wake::Timeout => {
                m.handle_idle(Instant::now());
                // Not idle after all (activity since it was armed), or
                // half-closed: wait again from the machine's deadline.
                idle_at = m.idle_deadline().unwrap_or_else(|| Instant::now() + opts.timeout);
                idle.as_mut().reset(idle_at.into());
            }
        }
    }
    let (rest, outcome) = m.finish(Instant::now());
    for r in rest {
        let _ = out.send(r);
    }
    outcome
}
