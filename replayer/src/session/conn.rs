//! [`Conn`]: a connection to a target with the decoder that reads both
//! directions, for the openings (PostgreSQL startup, Redis `AUTH`), which
//! send and wait in turn; the replay proper then takes its socket and
//! decoder apart ([`Conn::into_parts`]) and drives them without blocking.

use super::{pg, transport::Transport};
use crate::target::Target;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

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
    /// an SSLRequest the server must answer `S`; others from the first
    /// byte, as `https://` and a Redis `--tls-port` expect).
    pub async fn connect(target: &Target, protocol: wire::Protocol, clock: Instant, timeout: Duration) -> Result<Conn, String> {
        let addr = &target.addr;
        let opened = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let Some(tls) = &target.tls else { return Ok(Transport::plain(tcp)) };
            let tcp = if protocol == wire::Protocol::Postgres { pg::ask_for_tls(tcp, addr).await? } else { tcp };
            let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
            Transport::tls(tcp, host, tls).await.map_err(|e| format!("{addr}: {e}"))
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

    /// The socket and the decoder, for the replay proper (see
    /// [`super::machine::Replay`]); what the opening decoded is dropped.
    pub fn into_parts(self) -> (Transport, wire::Session) {
        (self.stream, self.session)
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
        let Conn { stream, session, clock, events, rbuf, eof } = self;
        stream.read_available(rbuf, |bytes| {
            let now = clock.elapsed().as_nanos() as u64;
            match bytes {
                Some(b) => session.feed(wire::Direction::ToClient, b, now, events),
                None => {
                    session.eof(wire::Direction::ToClient, now, events);
                    *eof = true;
                }
            }
        })
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

