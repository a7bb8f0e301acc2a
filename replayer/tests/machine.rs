//! The replay state machine ([`replayer::session::Replay`]) on virtual
//! time, without sockets: each table says what happens when (a tick, bytes
//! from the server, the server closing, the idle deadline) and what the
//! machine must send at that moment, when it wants to be woken next and
//! how many exchanges it has reported by then.

use bytes::{BufMut, Bytes, BytesMut};
use format::{ExchangeStatus, ExchangeSummary, Protocol};
use replayer::load::{ConnScript, RecExchange, Send};
use replayer::model::{Replayed, Side};
use replayer::session::{Replay, ReplayParams};
use replayer::target::Target;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A client message recorded at `at_ms`, starting exchange `starts`, sent
/// once `wait_for` exchanges were answered.
fn send(at_ms: u64, bytes: &[u8], starts: Option<usize>, wait_for: usize) -> Send {
    Send { ts: at_ms * 1_000_000, bytes: Bytes::copy_from_slice(bytes), starts, wait_for, hello: None, redacted: false }
}

fn exchange(summary: ExchangeSummary) -> RecExchange {
    RecExchange {
        ts: 0,
        key: String::new(),
        lambda: None,
        recorded: Side { latency: None, status: ExchangeStatus::Complete, summary, responses: Vec::new() },
        compare: true,
        response_last: None,
    }
}

fn script(protocol: Protocol, sends: Vec<Send>, exchanges: Vec<RecExchange>) -> Arc<ConnScript> {
    Arc::new(ConnScript {
        src: 0,
        conn: 1,
        route: "r".into(),
        protocol,
        server: "127.0.0.1:1".into(),
        open_ts: 0,
        startup: None,
        sends,
        exchanges,
    })
}

enum Ev {
    /// Only time passes (a due send's timer fired).
    Tick,
    /// Bytes from the server.
    Recv(Vec<u8>),
    /// The server closed.
    Close,
    /// The idle deadline fired.
    Idle,
}

/// At `at_ms`, `ev` happens; then the machine must write `sends`, want a
/// wake-up for its next send at `due_ms`, and have reported `reported`
/// exchanges in all.
struct Step {
    at_ms: u64,
    ev: Ev,
    sends: Vec<u8>,
    due_ms: Option<u64>,
    reported: usize,
}

fn step(at_ms: u64, ev: Ev, sends: &[u8], due_ms: Option<u64>, reported: usize) -> Step {
    Step { at_ms, ev, sends: sends.to_vec(), due_ms, reported }
}

/// Drives `m` through `steps` from `t0`, the socket taking every byte at
/// once; returns the reports and whether a half-close was asked for.
fn drive(m: &mut Replay, t0: Instant, steps: &[Step]) -> (Vec<Replayed>, Vec<u64>) {
    let mut reports = Vec::new();
    let mut shutdowns = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let now = t0 + ms(s.at_ms);
        match &s.ev {
            Ev::Tick => {}
            Ev::Recv(b) => m.handle_received(b, now),
            Ev::Close => m.handle_server_closed(now),
            Ev::Idle => m.handle_idle(now),
        }
        m.advance(now);
        let written = m.pending().to_vec();
        m.wrote(written.len(), now);
        if m.take_shutdown() {
            shutdowns.push(s.at_ms);
        }
        while let Some(r) = m.poll_replayed() {
            reports.push(r);
        }
        assert_eq!(String::from_utf8_lossy(&written), String::from_utf8_lossy(&s.sends), "step {i} (at {} ms): sent", s.at_ms);
        assert_eq!(m.next_due(), s.due_ms.map(|d| t0 + ms(d)), "step {i} (at {} ms): next due", s.at_ms);
        assert_eq!(reports.len(), s.reported, "step {i} (at {} ms): reported", s.at_ms);
    }
    (reports, shutdowns)
}

fn params(t0: Instant, dues_ms: &[u64]) -> ReplayParams {
    ReplayParams { dues: dues_ms.iter().map(|d| Some(t0 + ms(*d))).collect(), clock: t0, timeout: TIMEOUT, deadline: None }
}

fn sent_ms(reports: &[Replayed]) -> Vec<u64> {
    reports.iter().map(|r| r.sent / 1_000_000).collect()
}

fn redis_reply(r: &Replayed) -> String {
    match &r.replayed.as_ref().expect("answered").summary {
        ExchangeSummary::Redis(x) => x.reply.as_ref().and_then(|r| r.text.as_ref()).map(|t| t.to_text().into_owned()).unwrap_or_default(),
        other => panic!("not redis: {other:?}"),
    }
}

/// A pipelining Redis client: three GETs sent without waiting, each at its
/// recorded time; a fourth sent only once all three replies came, later
/// than it was due because the target was slow (which is not the
/// replayer's own lateness).
#[test]
fn pipelined_redis() {
    let cmd = |k: &str| wire::redis::encode_command(&[b"GET", k.as_bytes()]);
    let (a, b, c, d) = (cmd("a"), cmd("b"), cmd("c"), cmd("d"));
    let sends = vec![send(0, &a, Some(0), 0), send(1, &b, Some(1), 0), send(2, &c, Some(2), 0), send(3, &d, Some(3), 3)];
    let s = script(Protocol::Redis, sends, (0..4).map(|_| exchange(ExchangeSummary::Redis(Default::default()))).collect());
    let t0 = Instant::now();
    let session = wire::Session::new(wire::Protocol::Redis, wire::Limits::default());
    let mut m = Replay::new(s, Target::recorded("127.0.0.1:6379"), params(t0, &[0, 1, 2, 3]), session, t0);
    let (reports, shutdowns) = drive(
        &mut m,
        t0,
        &[
            step(0, Ev::Tick, &a, Some(1), 0),
            step(1, Ev::Tick, &b, Some(2), 0),
            step(2, Ev::Tick, &c, None, 0),
            // Due, but the recorded client had waited for three replies.
            step(3, Ev::Tick, b"", None, 0),
            // Two replies in one read, the third torn across two.
            step(4, Ev::Recv(b"$1\r\n1\r\n$1\r\n2\r\n$1\r".to_vec()), b"", None, 2),
            step(6, Ev::Recv(b"\n3\r\n".to_vec()), &d, None, 3),
            step(7, Ev::Recv(b"-ERR no\r\n".to_vec()), b"", None, 4),
        ],
    );
    assert!(m.is_finished());
    assert!(shutdowns.is_empty());
    assert_eq!(sent_ms(&reports), [0, 1, 2, 6]);
    let replies: Vec<String> = reports.iter().map(redis_reply).collect();
    assert_eq!(replies, ["1", "2", "3", "ERR no"]);
    assert_eq!(reports[3].scheduled, 3_000_000, "due at 3 ms, sent at 6");
    let (rest, outcome) = m.finish(t0 + ms(8));
    assert!(rest.is_empty());
    // The three pipelined sends were on time; the fourth, held back by the
    // target, does not count as the replayer's lateness.
    assert_eq!(outcome.own_lateness.len(), 3);
    assert_eq!(outcome.own_lateness.max(), 0);
}

/// A backend message: tag, length, body.
fn be(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    out.put_u32(body.len() as u32 + 4);
    out.put_slice(body);
}

/// The answer to Parse/Bind/Execute/Sync returning one row `v`.
fn pg_answer(v: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    be(&mut b, b'1', b"");
    be(&mut b, b'2', b"");
    let mut row = vec![0, 1];
    row.extend_from_slice(&(v.len() as u32).to_be_bytes());
    row.extend_from_slice(v);
    be(&mut b, b'D', &row);
    be(&mut b, b'C', b"SELECT 1\0");
    be(&mut b, b'Z', b"I");
    b.to_vec()
}

fn pg_batch(sql: &str) -> Vec<u8> {
    let mut b = BytesMut::new();
    wire::pg::encode::parse(&mut b, b"", sql.as_bytes(), &[]);
    wire::pg::encode::bind(&mut b, b"", b"", &[], &[], &[]);
    wire::pg::encode::execute(&mut b, b"", 0);
    wire::pg::encode::sync(&mut b);
    b.to_vec()
}

fn pg(r: &Replayed) -> &format::PgExchange {
    match &r.replayed.as_ref().expect("answered").summary {
        ExchangeSummary::Pg(p) => p,
        other => panic!("not pg: {other:?}"),
    }
}

/// A PostgreSQL extended-protocol pipeline: two Parse/Bind/Execute/Sync
/// batches sent back to back as recorded (the client did not wait), then
/// a simple Query the client sent only after both had been answered; the
/// first answer arrives torn mid-message.
#[test]
fn pg_extended_pipeline() {
    let (b1, b2) = (pg_batch("select 1"), pg_batch("select 2"));
    let mut q = BytesMut::new();
    wire::pg::encode::query(&mut q, b"select 3");
    let sends = vec![send(0, &b1, Some(0), 0), send(0, &b2, Some(1), 0), send(5, &q, Some(2), 2)];
    let pg_ex = || exchange(ExchangeSummary::Pg(Default::default()));
    let s = script(Protocol::Postgres, sends, vec![pg_ex(), pg_ex(), pg_ex()]);
    let t0 = Instant::now();
    // After the opening: the decoder expects tagged messages.
    let session = wire::Session::mid_stream(wire::Protocol::Postgres, wire::Limits::default(), [0, 0]);
    let mut m = Replay::new(s, Target::recorded("127.0.0.1:5432"), params(t0, &[0, 0, 5]), session, t0);
    let a1 = pg_answer(b"1");
    let a2 = pg_answer(b"2");
    let mut a3 = BytesMut::new();
    be(&mut a3, b'T', &[0, 0]);
    be(&mut a3, b'C', b"SELECT 0\0");
    be(&mut a3, b'Z', b"I");
    let both: Vec<u8> = [b1.clone(), b2.clone()].concat();
    let (reports, _) = drive(
        &mut m,
        t0,
        &[
            // The Query waits for both answers before its time counts.
            step(0, Ev::Tick, &both, None, 0),
            step(1, Ev::Recv(a1[..9].to_vec()), b"", None, 0),
            step(2, Ev::Recv(a1[9..].to_vec()), b"", None, 1),
            // Both answers are in: now it waits for its time.
            step(3, Ev::Recv(a2), b"", Some(5), 2),
            step(5, Ev::Tick, &q, None, 2),
            step(6, Ev::Recv(a3.to_vec()), b"", None, 3),
        ],
    );
    assert!(m.is_finished());
    assert_eq!(sent_ms(&reports), [0, 0, 5]);
    assert_eq!(pg(&reports[0]).statements, ["select 1"]);
    assert!(pg(&reports[0]).extended);
    assert_eq!((pg(&reports[1]).rows, pg(&reports[1]).tags.clone()), (1, vec!["SELECT 1".to_string()]));
    assert_eq!(pg(&reports[2]).statements, ["select 3"]);
    assert_eq!(pg(&reports[2]).tags, ["SELECT 0"]);
    let (rest, outcome) = m.finish(t0 + ms(7));
    assert!(rest.is_empty());
    assert_eq!(outcome.own_lateness.len(), 3);
}

/// HTTP keep-alive: the second request waits for the first response (it
/// goes when the response comes, not at its recorded time), with the Host
/// header rewritten for the target; its response has no length, so once
/// all is sent and the connection is quiet for a second the machine asks
/// for a half-close, and the server's close ends the body.
#[test]
fn http_keep_alive() {
    let r1 = b"GET /a HTTP/1.1\r\nHost: shop\r\n\r\n".to_vec();
    let r2 = b"GET /b HTTP/1.1\r\nHost: shop\r\n\r\n".to_vec();
    let sends = vec![send(0, &r1, Some(0), 0), send(2, &r2, Some(1), 1)];
    let http_ex = || exchange(ExchangeSummary::Http(Default::default()));
    let s = script(Protocol::Http, sends, vec![http_ex(), http_ex()]);
    let t0 = Instant::now();
    let session = wire::Session::new(wire::Protocol::Http, wire::Limits::default());
    let target = Target { addr: "127.0.0.1:8080".into(), host_header: Some("127.0.0.1:8080".into()), ..Target::default() };
    let mut m = Replay::new(s, target, params(t0, &[0, 2]), session, t0);
    let sent1 = b"GET /a HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
    let sent2 = b"GET /b HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
    let (reports, shutdowns) = drive(
        &mut m,
        t0,
        &[
            step(0, Ev::Tick, sent1, None, 0),
            step(2, Ev::Tick, b"", None, 0),
            step(5, Ev::Recv(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()), sent2, None, 1),
            step(6, Ev::Recv(b"HTTP/1.1 200 OK\r\n\r\nuntil close".to_vec()), b"", None, 1),
        ],
    );
    // Quiet for a second (not the 30 s timeout) after the last activity.
    assert_eq!(m.idle_deadline(), Some(t0 + ms(1006)));
    // Fired early (a stale timer): nothing happens.
    m.handle_idle(t0 + ms(900));
    assert!(!m.take_shutdown());
    let (more, shutdowns2) = drive(
        &mut m,
        t0,
        &[step(1006, Ev::Idle, b"", None, 0), step(1010, Ev::Close, b"", None, 1)],
    );
    assert_eq!([shutdowns, shutdowns2].concat(), [1006]);
    assert!(m.is_finished());
    let all: Vec<Replayed> = reports.into_iter().chain(more).collect();
    assert_eq!(sent_ms(&all), [0, 5]);
    let body_len = |r: &Replayed| match &r.replayed.as_ref().unwrap().summary {
        ExchangeSummary::Http(h) => (h.status, h.response_body_len, h.host.clone()),
        _ => panic!(),
    };
    // The rewritten Host is not reported as a difference: the recorded one is kept.
    assert_eq!(body_len(&all[0]), (Some(200), 2, None));
    assert_eq!(body_len(&all[1]), (Some(200), 11, None));
}

/// No answer within the timeout fails the exchange that is waiting and
/// marks the one never sent as not sent, with the reason.
#[test]
fn no_answer_times_out() {
    let cmd = wire::redis::encode_command(&[b"GET", b"a"]);
    let sends = vec![send(0, &cmd, Some(0), 0), send(1, &cmd, Some(1), 1)];
    let s = script(Protocol::Redis, sends, (0..2).map(|_| exchange(ExchangeSummary::Redis(Default::default()))).collect());
    let t0 = Instant::now();
    let session = wire::Session::new(wire::Protocol::Redis, wire::Limits::default());
    let mut m = Replay::new(s, Target::recorded("127.0.0.1:6379"), params(t0, &[0, 1]), session, t0);
    drive(&mut m, t0, &[step(0, Ev::Tick, &cmd, None, 0), step(1, Ev::Tick, b"", None, 0)]);
    assert_eq!(m.idle_deadline(), Some(t0 + TIMEOUT));
    m.handle_idle(t0 + TIMEOUT);
    assert!(m.is_finished());
    let (rest, _) = m.finish(t0 + TIMEOUT);
    let why: Vec<String> = rest.iter().map(|r| r.replayed.clone().unwrap_err()).collect();
    assert_eq!(why, ["no response within 30s", "not sent: no response within 30s"]);
}

fn redis_gets(n: usize, dues_ms: &[u64], waits: &[usize]) -> (Arc<ConnScript>, Vec<u8>) {
    let cmd = wire::redis::encode_command(&[b"GET", b"a"]);
    let sends = (0..n).map(|i| send(dues_ms[i], &cmd, Some(i), waits[i])).collect();
    (script(Protocol::Redis, sends, (0..n).map(|_| exchange(ExchangeSummary::Redis(Default::default()))).collect()), cmd)
}

fn redis_replay(s: Arc<ConnScript>, t0: Instant, dues_ms: &[u64], deadline: Option<Instant>) -> Replay {
    let session = wire::Session::new(wire::Protocol::Redis, wire::Limits::default());
    let params = ReplayParams { deadline, ..params(t0, dues_ms) };
    Replay::new(s, Target::recorded("127.0.0.1:6379"), params, session, t0)
}

/// `--duration` ran out before the second command was due: it is counted
/// as not sent (not failed), and the first is still answered and reported.
#[test]
fn duration_ends_sending() {
    let (s, cmd) = redis_gets(2, &[0, 2], &[0, 0]);
    let t0 = Instant::now();
    let mut m = redis_replay(s, t0, &[0, 2], Some(t0 + ms(1)));
    drive(
        &mut m,
        t0,
        &[step(0, Ev::Tick, &cmd, Some(2), 0), step(2, Ev::Tick, b"", None, 0), step(3, Ev::Recv(b"$1\r\nx\r\n".to_vec()), b"", None, 1)],
    );
    assert!(m.is_finished());
    let (rest, outcome) = m.finish(t0 + ms(3));
    assert!(rest.is_empty());
    assert_eq!(outcome.unsent, 1);
}

/// The server closes while a command is unanswered and another is still
/// to go: the replay ends at once; the decoder closes the first exchange
/// as the recorder would (no response), the second is not sent.
#[test]
fn server_closing_mid_replay_fails_what_is_left() {
    let (s, cmd) = redis_gets(2, &[0, 1], &[0, 1]);
    let t0 = Instant::now();
    let mut m = redis_replay(s, t0, &[0, 1], None);
    let (closed, _) = drive(&mut m, t0, &[step(0, Ev::Tick, &cmd, None, 0), step(1, Ev::Close, b"", None, 1)]);
    let side = closed[0].replayed.as_ref().expect("closed by the decoder");
    assert_ne!(side.status, ExchangeStatus::Complete);
    assert!(side.responses.is_empty());
    assert!(m.is_finished());
    let (rest, _) = m.finish(t0 + ms(1));
    let why: Vec<String> = rest.iter().map(|r| r.replayed.clone().unwrap_err()).collect();
    assert_eq!(why, ["not sent: the server closed the connection"]);
}

/// A reply nested past the RESP depth limit: the decoder gives up, and the
/// replay ends at once with its reason instead of waiting for the timeout.
#[test]
fn undecodable_reply_ends_the_replay_at_once() {
    let (s, cmd) = redis_gets(2, &[0, 0], &[0, 1]);
    let t0 = Instant::now();
    let mut m = redis_replay(s, t0, &[0, 0], None);
    let deep = b"*1\r\n".repeat(wire::redis::MAX_DEPTH + 10);
    drive(&mut m, t0, &[step(0, Ev::Tick, &cmd, None, 0), step(1, Ev::Recv(deep), b"", None, 0)]);
    assert!(m.is_finished(), "finished without waiting for the timeout");
    let (rest, _) = m.finish(t0 + ms(1));
    let why = rest[0].replayed.clone().unwrap_err();
    assert!(why.starts_with("the target's reply cannot be decoded") && why.contains("nest"), "{why}");
    assert_eq!(rest.len(), 2);
}
