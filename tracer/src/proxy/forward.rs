//! Forwarding: per client connection, connect to the upstream and pump
//! bytes both ways exactly as they come. Each chunk is written onward
//! first; only then is a copy offered to the recorder, without waiting.
//!
//! On a route that fronts a worker ([`Front`]) the request direction is
//! offered to the recorder *before* it is forwarded: the worker cannot make
//! a downstream call before its invocation's request is in the recorder's
//! queue, so the recorder always knows an invocation began before it sees
//! the calls it caused. With `--inject-traceparent`, requests pass through
//! an [`Injector`] on their way, and what is recorded is what was forwarded.

use super::inject::Injector;
use super::pg_opening::{read_opening, upstream_tls};
use super::refusal::refusal;
use super::tls::{tls_failed, RouteTls};
use super::profiles::Profile;
use super::tap::{Note, Tap};
use super::route::Route;
use super::workers::{adopt, Workers};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use wire::Direction;

/// How long a refused client's connection is kept to read what it still
/// sends (see [`End::drain`]).
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

/// Read buffer per direction. 16 KiB keeps 1,000 open connections near
/// 32 MiB of buffers while still moving large bodies in few reads.
const READ_BUFFER: usize = 16 << 10;

/// A route that fronts a worker: its invocations' profile, and whether to
/// add `traceparent` to them.
#[derive(Clone)]
pub struct Front {
    pub profile: Arc<Profile>,
    pub inject: bool,
}

/// Accepts on `listener` until `stop` fires, spawning one task per
/// connection into `tasks`, on the forwarding threads in turn.
#[allow(clippy::too_many_arguments)]
pub async fn accept_loop(
    route: Arc<Route>,
    tls: RouteTls,
    front: Option<Front>,
    listener: TcpListener,
    tap: Tap,
    next_conn: Arc<AtomicU64>,
    workers: &Workers,
    tasks: &mut JoinSet<()>,
    stop: tokio::sync::watch::Receiver<bool>,
    connect_timeout: Duration,
) {
    let name = route.name.clone();
    accept_until_stopped(&name, listener, workers, tasks, stop, |client, peer| {
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        proxy_conn(conn, route.clone(), tls.clone(), front.clone(), client, peer, tap.clone(), connect_timeout)
    })
    .await;
}

/// The accept loop every listener shares: until `stop` fires, spawns
/// `serve(client, peer)` into `tasks` for each connection, on the
/// forwarding threads in turn, reaping finished ones as it goes so the set
/// stays small. `serve` gets the socket as a std stream and makes it a
/// tokio one on its own thread ([`adopt`]). Accept errors (out of
/// descriptors and the like) are reported and retried: the other
/// connections keep being served.
pub async fn accept_until_stopped<F, Fut>(
    name: &str,
    listener: TcpListener,
    workers: &Workers,
    tasks: &mut JoinSet<()>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut serve: F,
) where
    F: FnMut(std::net::TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted.and_then(|(client, peer)| Ok((client.into_std()?, peer))) {
                Ok((client, peer)) => workers.spawn(tasks, serve(client, peer)),
                Err(e) => {
                    // The connection waits in the kernel's queue and is
                    // accepted once descriptors free up.
                    log_now_and_then(&format!("oltrace: {name}: accept failed: {e}{}", fd_advice(&e)));
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// What to do about `e`, when it is running out of file descriptors.
fn fd_advice(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => " (out of file descriptors: open connections keep working, new ones wait or are closed until some end; raise the limit, e.g. `ulimit -n`)",
        _ => "",
    }
}

/// Prints `line` on stderr, at most once a second (a condition that
/// repeats, such as running out of descriptors, is said, not streamed).
pub(super) fn log_now_and_then(line: &str) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if LAST.swap(now, Ordering::Relaxed) != now {
        eprintln!("{line}");
    }
}

/// Connects to `upstream`, giving up after `timeout`: an upstream that
/// hangs on connect (a full accept queue, packets dropped) must not hold
/// the client for the kernel's two minutes of SYN retries.
pub(super) async fn connect_tcp(upstream: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    match tokio::time::timeout(timeout, TcpStream::connect(upstream)).await {
        Ok(connected) => connected,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no connection within {timeout:?} (--connect-timeout)"))),
    }
}

#[allow(clippy::too_many_arguments)]
async fn proxy_conn(conn: u64, route: Arc<Route>, tls: RouteTls, front: Option<Front>, client: std::net::TcpStream, peer: SocketAddr, tap: Tap, connect_timeout: Duration) {
    let accepted = tap.now();
    // Sent once what became of TLS is known (postgres reads the client's
    // opening first), stamped with the time of the accept.
    let open = |tls: Option<format::TlsMode>| {
        let (protocol, client, server, name) = (route.protocol, peer.to_string(), route.upstream.clone(), route.name.clone());
        tap.send_control(Note::Open { conn, protocol, client, server, route: name, tls, ts: accepted })
    };
    let closed = |error: String| tap.send_control(Note::Close { conn, ts: tap.now(), bytes_to_server: 0, bytes_to_client: 0, error: Some(error) });
    let mut client = match adopt(client) {
        Ok(client) => client,
        Err(e) => {
            open(None);
            return closed(format!("client socket: {e}"));
        }
    };
    let _ = client.set_nodelay(true);
    let opening = match route.protocol {
        wire::Protocol::Postgres => match read_opening(&mut client, route.tls).await {
            Ok(opening) => Some(opening),
            Err(e) => {
                open(None);
                return closed(e);
            }
        },
        _ => None,
    };
    // A postgres client asks for TLS first; a rediss client starts with it.
    let mode = match &opening {
        Some(o) => Some(o.tls),
        None => tls.acceptor.as_ref().map(|_| format::TlsMode::Terminated),
    };
    open(mode);
    let mut client = match (&tls.acceptor, mode) {
        (Some(acceptor), Some(format::TlsMode::Terminated)) => match acceptor.accept(client).await {
            Ok(s) => End::Tls(Box::new(s.into())),
            Err(e) => return closed(format!("client TLS handshake failed: {e}")),
        },
        _ => End::Plain(client),
    };
    let mut upstream = match connect_upstream(&route, &tls, connect_timeout).await {
        Ok(upstream) => upstream,
        Err(e) => {
            // A PostgreSQL or Redis client the proxy speaks to (not
            // through passed-through TLS) is told why, in its protocol,
            // rather than left with a bare disconnect.
            let passthrough = opening.as_ref().is_some_and(|o| o.tls == format::TlsMode::Passthrough);
            if let Some(message) = refusal(route.protocol, &e).filter(|_| !passthrough) {
                let _ = client.write_all(&message).await;
                let _ = client.shutdown().await;
                client.drain(REFUSAL_LINGER).await;
            }
            return closed(e);
        }
    };
    // What the opening read (none for terminated clients: their opening
    // was the request the proxy answered).
    let head = opening.map(|o| o.head).unwrap_or_default();
    let sent = match &mut upstream {
        End::Plain(u) => send_first(conn, u, &head, &tap).await,
        End::Tls(u) => send_first(conn, u, &head, &tap).await,
    };
    if let Err(e) = sent {
        return closed(e);
    }
    let injector = front.as_ref().filter(|f| f.inject).map(|f| Injector::new(f.profile.clone()));
    let (record_first, already) = (front.is_some(), head.len() as u64);
    match (client, upstream) {
        (End::Plain(c), End::Plain(u)) => relay(conn, c, u, injector, record_first, already, &tap).await,
        (End::Tls(c), End::Plain(u)) => relay(conn, c, u, injector, record_first, already, &tap).await,
        (End::Plain(c), End::Tls(u)) => relay(conn, c, u, injector, record_first, already, &tap).await,
        (End::Tls(c), End::Tls(u)) => relay(conn, c, u, injector, record_first, already, &tap).await,
    }
}

/// One end of a proxied connection, in plaintext or in TLS the proxy made
/// (boxed: a TLS session is over a kilobyte).
enum End {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl End {
    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            End::Plain(s) => s.write_all(data).await,
            End::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
        }
    }

    async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            End::Plain(s) => s.shutdown().await,
            End::Tls(s) => s.shutdown().await,
        }
    }

    /// Reads and drops what the client sends until it closes, for at most
    /// `within`: closing a socket with unread bytes resets it, and a reset
    /// can discard the refusal just sent before the client reads it (a
    /// Redis client sends its command without waiting for anything).
    async fn drain(&mut self, within: Duration) {
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(within, async {
            loop {
                let n = match self {
                    End::Plain(s) => s.read(&mut buf).await,
                    End::Tls(s) => s.read(&mut buf).await,
                };
                if !matches!(n, Ok(n) if n > 0) {
                    break;
                }
            }
        })
        .await;
    }
}

/// Connects to the route's upstream, in TLS when `upstream-tls=` asks.
async fn connect_upstream(route: &Route, tls: &RouteTls, timeout: Duration) -> Result<End, String> {
    let stream = connect_tcp(&route.upstream, timeout).await.map_err(|e| {
        if !fd_advice(&e).is_empty() {
            log_now_and_then(&format!("oltrace: {}: closed a client's connection: cannot connect upstream: {e}{}", route.name, fd_advice(&e)));
        }
        format!("upstream {} unreachable: {e}", route.upstream)
    })?;
    let _ = stream.set_nodelay(true);
    let Some((connector, name)) = &tls.upstream else { return Ok(End::Plain(stream)) };
    let stream = match route.protocol {
        // PostgreSQL asks first (SSLRequest); others start with TLS.
        wire::Protocol::Postgres => upstream_tls(stream, &route.upstream, connector, name).await?,
        _ => connector.connect(name.clone(), stream).await.map_err(|e| tls_failed(&route.upstream, name, e))?,
    };
    Ok(End::Tls(Box::new(stream.into())))
}

/// Forwards `first`, bytes the client sent before the relay started, and
/// records them; small and first, so the recorder's queue is waited on
/// rather than the bytes lost.
pub(super) async fn send_first<W: AsyncWrite + Unpin>(conn: u64, upstream: &mut W, first: &[u8], tap: &Tap) -> Result<(), String> {
    if first.is_empty() {
        return Ok(());
    }
    let ts = tap.now();
    upstream.write_all(first).await.map_err(|e| format!("upstream write: {e}"))?;
    tap.send_control(Note::Data { conn, dir: Direction::ToServer, data: super::tap::copy_of(first), ts });
    Ok(())
}

/// Pumps both ways between `client` and `upstream` until both sides are
/// done, then records the close. `record_first`: offer requests to the
/// recorder before forwarding them (see the module doc).
/// `already_to_server` counts request bytes the caller forwarded before (a
/// forward proxy's first request).
pub(super) async fn relay(
    conn: u64,
    client: impl Halves,
    upstream: impl Halves,
    injector: Option<Injector>,
    record_first: bool,
    already_to_server: u64,
    tap: &Tap,
) {
    let (client_read, client_write) = client.halves();
    let (upstream_read, upstream_write) = upstream.halves();
    let ((to_server, e1), (to_client, e2)) = tokio::join!(
        pump(conn, Direction::ToServer, client_read, upstream_write, injector, record_first, tap),
        pump(conn, Direction::ToClient, upstream_read, client_write, None, false, tap),
    );
    let error = e1.or(e2);
    let bytes_to_server = to_server + already_to_server;
    tap.send_control(Note::Close { conn, ts: tap.now(), bytes_to_server, bytes_to_client: to_client, error });
}

/// Copies `from` to `to` (through `injector`, if any) until end of stream,
/// then passes the half-close on. Returns the bytes forwarded and the error
/// that ended it, if any.
async fn pump(
    conn: u64,
    dir: Direction,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut injector: Option<Injector>,
    record_first: bool,
    tap: &Tap,
) -> (u64, Option<String>) {
    let mut sink = Sink { conn, dir, record_first, total: 0, lost: 0 };
    let mut buf = vec![0u8; READ_BUFFER];
    let mut rewritten = Vec::new();
    let mut error = None;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                error = Some(format!("{} read: {e}", side(dir)));
                break;
            }
        };
        let ts = tap.now();
        let out = match &mut injector {
            None => &buf[..n],
            Some(inj) => {
                rewritten.clear();
                inj.push(&buf[..n], &mut rewritten);
                &rewritten[..]
            }
        };
        if let Err(e) = sink.forward(out, ts, &mut to, tap).await {
            error = Some(e);
            break;
        }
        if injector.as_ref().is_some_and(Injector::stopped) {
            break;
        }
    }
    if let Some(inj) = &mut injector {
        // A request head cut short: forward what was held back.
        rewritten.clear();
        inj.finish(&mut rewritten);
        if let Err(e) = sink.forward(&rewritten, tap.now(), &mut to, tap).await {
            error = error.or(Some(e));
        }
    }
    let _ = to.shutdown().await;
    if sink.lost > 0 {
        tap.send_control(Note::Lost { conn, dir, bytes: sink.lost, ts: tap.now() });
    }
    tap.send_control(Note::Eof { conn, dir, ts: tap.now() });
    (sink.total, error)
}

/// One direction's way onward: forwards chunks and offers the recorder
/// copies, counting what the queue had no room for.
struct Sink {
    conn: u64,
    dir: Direction,
    record_first: bool,
    /// Bytes forwarded.
    total: u64,
    /// Bytes not recorded since the last loss was noted.
    lost: u64,
}

impl Sink {
    /// Writes `data` onward and offers the recorder a copy, in the order
    /// `record_first` says.
    async fn forward(&mut self, data: &[u8], ts: u64, to: &mut (impl AsyncWrite + Unpin), tap: &Tap) -> Result<(), String> {
        if data.is_empty() {
            return Ok(());
        }
        if self.record_first {
            self.record(data, ts, tap);
        }
        // (A TLS stream holds written bytes until flushed; a TCP one has
        // nothing to flush.)
        let written = async {
            to.write_all(data).await?;
            to.flush().await
        };
        written.await.map_err(|e| format!("{} write: {e}", side(self.dir.reverse())))?;
        self.total += data.len() as u64;
        if !self.record_first {
            self.record(data, ts, tap);
        }
        Ok(())
    }

    /// Offers a copy without waiting, or counts it lost (and records the
    /// loss as soon as there is room).
    fn record(&mut self, data: &[u8], ts: u64, tap: &Tap) {
        let (conn, dir) = (self.conn, self.dir);
        if self.lost > 0 && tap.send(Note::Lost { conn, dir, bytes: self.lost, ts }) {
            self.lost = 0;
        }
        if self.lost > 0 || !tap.send(Note::Data { conn, dir, data: super::tap::copy_of(data), ts }) {
            self.lost += data.len() as u64;
            tap.dropped_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }
}

/// A stream split into a reading and a writing half that the two pumps
/// own: a TCP stream's own halves (no lock between them), or a TLS
/// stream's through `tokio::io::split`.
pub(super) trait Halves {
    type Read: AsyncRead + Unpin;
    type Write: AsyncWrite + Unpin;
    fn halves(self) -> (Self::Read, Self::Write);
}

impl Halves for TcpStream {
    type Read = OwnedReadHalf;
    type Write = OwnedWriteHalf;
    fn halves(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let _ = self.set_nodelay(true);
        self.into_split()
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Halves for Box<tokio_rustls::TlsStream<T>> {
    type Read = tokio::io::ReadHalf<Self>;
    type Write = tokio::io::WriteHalf<Self>;
    fn halves(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}

fn side(dir: Direction) -> &'static str {
    match dir {
        Direction::ToServer => "client",
        Direction::ToClient => "upstream",
    }
}
