//! A trace turned into what the driver replays: one [`ConnScript`] per
//! recorded connection, with the client's messages to re-send in order
//! ([`Send`]) and the recorded exchanges they should produce
//! ([`RecExchange`]), each with its recorded [`Side`].
//!
//! How records are tied together (the recorder writes a connection's
//! records in the order its decoder emitted them, a merged trace in time
//! order, so nothing here relies on record order within a connection):
//!
//! - client messages are put in stream order by `offset`; an exchange's
//!   request starts at the first client message, at or after the end of the
//!   previous exchange's request, whose first-byte time equals the
//!   exchange's `ts`, and spans `request_bytes`;
//! - server messages, in stream order, are handed out to the exchanges in
//!   order, `response_bytes` each (asynchronous messages, PostgreSQL
//!   notifications and RESP3 pushes, belong to none);
//! - damage: a hole in a connection's client stream (a lost block) ends
//!   what can be re-sent of that connection; an exchange whose recorded
//!   response has a hole is re-sent (the session needs it) but not
//!   compared; a connection whose `conn_open` was lost is not replayed.
//! - a request larger than the recording's `--max-request` was recorded
//!   truncated: on Redis and HTTP connections that exchange alone is
//!   skipped and the next command or request goes on; a PostgreSQL session
//!   cannot go on without it, so the rest of its connection is skipped.
//! - records that do not tie up although the trace is intact (an exchange
//!   whose request or response is not where its byte counts say) are
//!   skipped as an inconsistent recording, not as damage.
//!
//! Each is counted as skipped, with its reason.
//!
//! Authentication is not re-sent: the PostgreSQL startup exchange (and a
//! refused SSLRequest) and Redis `AUTH` are replaced at replay time by the
//! target's own credentials (see [`crate::session`]).

use crate::classify;
use crate::model::Side;
use bytes::Bytes;
use format::{Body, Decoded, Direction, Protocol};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What to take from the trace.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Routes or protocols to drive (empty: all).
    pub routes: Vec<String>,
    /// Only exchanges of these lambdas (and the connections that carry them).
    pub lambdas: Vec<String>,
    /// Time window, ns since the trace's anchor.
    pub from: Option<u64>,
    pub to: Option<u64>,
    /// Skip writes.
    pub read_only: bool,
}

/// One client message to re-send.
#[derive(Clone, Debug)]
pub struct Send {
    /// Recorded time of its first byte.
    pub ts: u64,
    pub bytes: Bytes,
    /// The index in [`ConnScript::exchanges`] of the exchange this message
    /// starts, if it starts one.
    pub starts: Option<usize>,
    /// How many of the connection's exchanges must have been answered
    /// before this is sent: those whose recorded response had ended when
    /// the client sent it (a client that waited for an answer waits again;
    /// a pipelining client does not).
    pub wait_for: usize,
    /// A Redis `HELLO` whose `AUTH` part is redone with the target's
    /// credentials: the arguments without it.
    pub hello: Option<Vec<Vec<u8>>>,
    /// An HTTP request whose credentials were blanked at recording.
    pub redacted: bool,
}

/// One exchange the re-sent messages will produce.
#[derive(Clone, Debug)]
pub struct RecExchange {
    /// Recorded time of the request's first byte.
    pub ts: u64,
    pub key: String,
    pub lambda: Option<String>,
    pub recorded: Side,
    /// False for exchanges re-sent only to keep the session right
    /// (PostgreSQL Terminate, damaged recorded responses).
    pub compare: bool,
    pub response_last: Option<u64>,
}

/// PostgreSQL startup parameters as recorded (user, database,
/// application_name, options, ...), in order.
pub type StartupParams = Vec<(String, String)>;

/// One recorded connection, ready to replay.
#[derive(Clone, Debug)]
pub struct ConnScript {
    pub src: u16,
    pub conn: u64,
    pub route: String,
    pub protocol: Protocol,
    pub server: String,
    pub open_ts: u64,
    pub startup: Option<StartupParams>,
    pub sends: Vec<Send>,
    pub exchanges: Vec<RecExchange>,
}

impl ConnScript {
    /// Exchanges that are compared and reported.
    pub fn compared(&self) -> usize {
        self.exchanges.iter().filter(|e| e.compare).count()
    }
}

/// The whole replay: connections in order of their recorded opening.
#[derive(Debug, Default)]
pub struct Plan {
    pub conns: Vec<ConnScript>,
    /// Earliest and latest recorded time among what is replayed.
    pub start_ts: u64,
    pub end_ts: u64,
    /// Exchanges not replayed (or not compared), by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Damaged stretches of the trace, as the reader reported them.
    pub damage: Vec<String>,
    /// Things worth telling (redacted HTTP credentials sent blank, ...).
    pub notes: Vec<String>,
    /// Every route name in the trace.
    pub routes: Vec<String>,
    /// Exchanges left out by the filters.
    pub filtered: u64,
}

impl Plan {
    fn skip(&mut self, reason: &str, n: u64) {
        if n > 0 {
            *self.skipped.entry(reason.to_owned()).or_default() += n;
        }
    }

    /// Compared exchanges in the plan.
    pub fn exchange_count(&self) -> u64 {
        self.conns.iter().map(|c| c.compared() as u64).sum()
    }
}

#[derive(Default)]
struct ConnRecords {
    open: Option<(u64, format::ConnOpen)>,
    client: Vec<(u64, format::Message)>,
    server: Vec<(u64, format::Message)>,
    exchanges: Vec<(u64, format::Exchange)>,
    fallback: Option<String>,
}

/// Reads `path` and builds the plan. Fails only when the file cannot be
/// opened or is not a trace; damage inside is reported in the plan.
pub fn load(path: &Path, sel: &Selection) -> anyhow::Result<Plan> {
    let reader = format::Reader::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut plan = Plan::default();
    let mut conns: HashMap<(u16, u64), ConnRecords> = HashMap::new();
    let mut order: Vec<(u16, u64)> = Vec::new();
    // Every invocation, for the lambda of each exchange (the trace view's
    // join: attributed calls and the invocations' own exchanges).
    let mut invocations = format::view::InvocationJoin::default();
    for item in reader {
        let rec = match item {
            Ok(r) => r,
            Err(d) => {
                plan.damage.push(d.to_string());
                continue;
            }
        };
        let src = rec.src;
        if let Body::Invocation(i) = &rec.body {
            invocations.insert(src, rec.ts, i);
            continue;
        }
        let Some(conn) = rec.body.conn() else { continue };
        let key = (src, conn);
        let c = conns.entry(key).or_insert_with(|| {
            order.push(key);
            ConnRecords::default()
        });
        match rec.body {
            Body::ConnOpen(o) => c.open = Some((rec.ts, o)),
            Body::Message(m) => match m.dir {
                Direction::ToServer => c.client.push((rec.ts, m)),
                Direction::ToClient => c.server.push((rec.ts, m)),
            },
            Body::Exchange(e) => c.exchanges.push((rec.ts, e)),
            Body::Fallback(f) => {
                c.fallback.get_or_insert(f.reason);
            }
            Body::Gap(g) => {
                c.fallback.get_or_insert(format!("recorder lost data ({})", g.reason));
            }
            _ => {}
        }
    }
    let mut routes: Vec<String> = Vec::new();
    for key in order {
        let recs = conns.remove(&key).unwrap_or_default();
        if let Some((_, o)) = &recs.open {
            if !routes.contains(&o.route) {
                routes.push(o.route.clone());
            }
        }
        let lambda_of =
            |ts: u64, e: &format::Exchange| invocations.of_exchange(key.0, ts, e).map(|j| j.invocation.lambda.to_string());
        if let Some(script) = build(key, recs, sel, &lambda_of, &mut plan) {
            plan.conns.push(script);
        }
    }
    plan.routes = routes;
    plan.conns.sort_by_key(|c| c.open_ts);
    plan.start_ts = plan.conns.iter().map(|c| c.open_ts).min().unwrap_or(0);
    plan.end_ts = plan
        .conns
        .iter()
        .flat_map(|c| c.sends.last().map(|s| s.ts))
        .max()
        .unwrap_or(plan.start_ts)
        .max(plan.start_ts);
    Ok(plan)
}

/// Skip reasons that more than one place gives.
const TRUNCATED_SESSION: &str =
    "request larger than the recording's --max-request (recorded truncated): the rest of the PostgreSQL connection, which cannot go on without it";
const TRUNCATED_REQUEST: &str = "request larger than the recording's --max-request (recorded truncated): skipped, the connection goes on";
const LOST_RESPONSE: &str = "recorded response lost (damaged trace): re-sent, not compared";
const INCONSISTENT_REQUEST: &str =
    "request not where the exchange's byte counts put it (inconsistent recording, the trace is intact: please report it)";
const INCONSISTENT_RESPONSE: &str =
    "recorded response shorter than the exchange's byte count (inconsistent recording, the trace is intact): re-sent, not compared";

fn decoded_kind(m: &format::Message) -> &str {
    match &m.decoded {
        Some(Decoded::Pg(p)) => &p.kind,
        Some(Decoded::Redis(r)) => &r.kind,
        Some(Decoded::HttpRequest(_)) => "request",
        Some(Decoded::HttpResponse(_)) => "response",
        None => "",
    }
}

/// Server messages that answer no request.
fn is_async(m: &format::Message) -> bool {
    m.decoded.as_ref().is_some_and(format::Decoded::is_unsolicited)
}

/// The command words of a Redis command message.
fn redis_args(m: &format::Message) -> Vec<Vec<u8>> {
    match &m.decoded {
        Some(Decoded::Redis(r)) => r.args.iter().map(|a| a.0.clone()).collect(),
        _ => Vec::new(),
    }
}

/// StartupMessage parameters from its exact bytes.
fn startup_params(data: &[u8]) -> StartupParams {
    match wire::pg::parse_startup(&bytes::Bytes::copy_from_slice(data)) {
        Ok((wire::pg::PgMessage::Startup(s), _)) => {
            let text = |b: &bytes::Bytes| String::from_utf8_lossy(b).into_owned();
            s.params.iter().map(|(k, v)| (text(k), text(v))).collect()
        }
        _ => Vec::new(),
    }
}

fn build(
    key: (u16, u64),
    recs: ConnRecords,
    sel: &Selection,
    lambda_of: &dyn Fn(u64, &format::Exchange) -> Option<String>,
    plan: &mut Plan,
) -> Option<ConnScript> {
    let ConnRecords { open, mut client, mut server, mut exchanges, fallback } = recs;
    let Some((open_ts, open)) = open else {
        plan.skip("connection opening lost (damaged trace)", exchanges.len() as u64);
        return None;
    };
    let proto = open.protocol.name();
    if !sel.routes.is_empty() && !sel.routes.iter().any(|r| *r == open.route || r == proto) {
        plan.filtered += exchanges.len() as u64;
        return None;
    }
    if open.protocol == Protocol::Mysql {
        plan.skip("MySQL connections (not replayed yet)", exchanges.len() as u64);
        return None;
    }
    client.sort_by_key(|(_, m)| m.offset);
    server.sort_by_key(|(_, m)| m.offset);
    exchanges.sort_by_key(|(ts, _)| *ts);

    // How much of the client stream can be re-sent.
    let decodes = open.protocol != Protocol::Tcp;
    // Redis commands and HTTP requests stand alone: one recorded truncated
    // is skipped and the connection goes on.
    let skippable = matches!(open.protocol, Protocol::Redis | Protocol::Http);
    let mut cut = client.len();
    let mut cut_reason = None;
    let mut expect = 0u64;
    for (i, (_, m)) in client.iter().enumerate() {
        let why = if m.offset != expect {
            Some("client bytes lost (damaged trace): the rest of the connection")
        } else if m.data.is_truncated() && !skippable {
            Some(TRUNCATED_SESSION)
        } else if decodes && m.decoded.is_none() {
            Some("connection recorded as opaque bytes: the rest of the connection")
        } else {
            None
        };
        if why.is_some() {
            cut = i;
            cut_reason = why;
            break;
        }
        expect = m.offset + m.data.len;
    }
    if decodes && cut == client.len() && fallback.is_some() && exchanges.is_empty() && !client.is_empty() {
        cut_reason = Some("connection recorded as opaque bytes: the rest of the connection");
    }
    let mut script = ConnScript {
        src: key.0,
        conn: key.1,
        route: open.route.clone(),
        protocol: open.protocol,
        server: open.server.clone(),
        open_ts,
        startup: None,
        sends: Vec::new(),
        exchanges: Vec::new(),
    };

    if open.protocol == Protocol::Tcp {
        // Opaque: timed chunks, nothing to compare.
        for (ts, m) in client.into_iter().take(cut) {
            script.sends.push(Send {
                ts,
                bytes: Bytes::from(m.data.bytes.0),
                starts: None,
                wait_for: 0,
                hello: None,
                redacted: false,
            });
        }
        return Some(script);
    }

    // Tie every exchange to its first client message and its server messages.
    struct Tied {
        first: usize,
        end: usize,
        responses: Vec<format::Message>,
        /// Why the recorded response cannot be compared.
        damaged: Option<&'static str>,
    }
    let mut tied: Vec<Option<Tied>> = Vec::with_capacity(exchanges.len());
    let mut ci = 0;
    let mut si = 0;
    let mut sexpect = 0u64;
    for (ts, e) in &exchanges {
        let first = (ci..cut).find(|&i| client[i].0 == *ts);
        let Some(first) = first else {
            tied.push(None);
            continue;
        };
        let end_off = client[first].1.offset + e.request_bytes;
        let mut end = first + 1;
        while end < cut && client[end].1.offset < end_off {
            end += 1;
        }
        ci = end;
        let (_, last) = &client[end - 1];
        if last.offset + last.data.len < end_off {
            // The request runs past what can be re-sent.
            tied.push(None);
            continue;
        }
        let mut responses = Vec::new();
        let mut got = 0u64;
        let mut damaged = None;
        while got < e.response_bytes {
            let Some((_, m)) = server.get(si) else {
                damaged = Some(if plan.damage.is_empty() { INCONSISTENT_RESPONSE } else { LOST_RESPONSE });
                break;
            };
            if m.offset != sexpect {
                damaged = Some(LOST_RESPONSE);
                // Resynchronise on the next exchange's messages if we can.
                sexpect = m.offset;
                break;
            }
            sexpect = m.offset + m.data.len;
            si += 1;
            if is_async(m) {
                continue;
            }
            got += m.data.len;
            responses.push(m.clone());
        }
        tied.push(Some(Tied { first, end, responses, damaged }));
    }

    // Which exchanges go, and which client messages with them.
    let mut owner: Vec<Option<usize>> = vec![None; cut];
    let mut go: Vec<bool> = vec![false; exchanges.len()];
    let mut auth_skipped = 0u64;
    let mut startup_idx = None;
    let mut redacted_sent = 0u64;
    let damaged_trace = !plan.damage.is_empty();
    for (k, t) in tied.iter().enumerate() {
        let Some(t) = t else {
            let lost = if damaged_trace { "request lost (damaged trace)" } else { INCONSISTENT_REQUEST };
            plan.skip(cut_reason.unwrap_or(lost), 1);
            continue;
        };
        for o in owner.iter_mut().take(t.end).skip(t.first) {
            *o = Some(k);
        }
        if client[t.first..t.end].iter().any(|(_, m)| m.data.is_truncated()) {
            plan.skip(TRUNCATED_REQUEST, 1);
            continue;
        }
        let (ts, e) = &exchanges[k];
        let first = &client[t.first].1;
        match decoded_kind(first) {
            "StartupMessage" | "SSLRequest" | "GSSENCRequest" => {
                startup_idx = Some(k);
                for (_, m) in &client[t.first..t.end] {
                    if decoded_kind(m) == "StartupMessage" {
                        script.startup = Some(startup_params(&m.data.bytes.0));
                    }
                }
                continue;
            }
            "CancelRequest" => {
                plan.skip("PostgreSQL cancel requests (the backend they name is gone)", 1);
                continue;
            }
            _ => {}
        }
        if open.protocol == Protocol::Redis && first.redacted {
            let args = redis_args(first);
            let name = args.first().map(|a| String::from_utf8_lossy(a).to_ascii_uppercase()).unwrap_or_default();
            if name == "AUTH" {
                auth_skipped += 1;
                continue;
            }
            if name != "HELLO" {
                plan.skip("redacted Redis commands (their secrets are not in the trace)", 1);
                continue;
            }
        }
        let _ = ts;
        if sel.read_only && classify::is_write(&e.summary) {
            plan.skip("writes (--read-only)", 1);
            continue;
        }
        // Blanked at recording (credential headers, secret query, form and
        // JSON fields, SQL password literals): re-sent as recorded, stars.
        if matches!(open.protocol, Protocol::Http | Protocol::Postgres) && client[t.first..t.end].iter().any(|(_, m)| m.redacted) {
            redacted_sent += 1;
        }
        go[k] = true;
    }
    plan.skip("authentication (redone with the target's credentials)", auth_skipped);
    if redacted_sent > 0 {
        plan.notes.push(format!(
            "warning: {redacted_sent} requests on {} re-send values blanked at recording (credential headers, secret query, form or JSON fields, SQL password literals), as recorded: give the target its own credentials (--target) or a noise rule where replies differ, or record with --no-redact to replay them",
            open.route
        ));
    }
    if open.protocol == Protocol::Postgres && script.startup.is_none() {
        // No startup recorded (damaged, TLS, or a cancel connection): a
        // session cannot be opened the way the client did.
        let n = go.iter().filter(|g| **g).count() as u64;
        plan.skip("PostgreSQL connection without its startup (damaged or encrypted)", n);
        return None;
    }
    let _ = startup_idx;

    // Filters by lambda and time: per exchange for HTTP (stateless), per
    // connection for sessions.
    let passes = |k: usize| {
        let (ts, e) = &exchanges[k];
        let in_time = sel.from.is_none_or(|f| *ts >= f) && sel.to.is_none_or(|t| *ts < t);
        let lambda_ok = sel.lambdas.is_empty() || lambda_of(*ts, e).is_some_and(|l| sel.lambdas.contains(&l));
        in_time && lambda_ok
    };
    if open.protocol == Protocol::Http {
        for (k, g) in go.iter_mut().enumerate() {
            if *g && !passes(k) {
                *g = false;
                plan.filtered += 1;
            }
        }
    } else if (sel.from.is_some() || sel.to.is_some() || !sel.lambdas.is_empty()) && !(0..exchanges.len()).any(|k| go[k] && passes(k)) {
        plan.filtered += go.iter().filter(|g| **g).count() as u64;
        return None;
    }

    // The sends and the exchanges, in order.
    let mut index: Vec<Option<usize>> = vec![None; exchanges.len()];
    for (k, t) in tied.iter().enumerate() {
        let (Some(t), true) = (t, go[k]) else { continue };
        let (ts, e) = &exchanges[k];
        let first = &client[t.first].1;
        let terminate = decoded_kind(first) == "Terminate";
        let compare = !terminate && t.damaged.is_none();
        if let Some(why) = t.damaged {
            plan.skip(why, 1);
        }
        index[k] = Some(script.exchanges.len());
        script.exchanges.push(RecExchange {
            ts: *ts,
            key: crate::report::key_of(&e.summary),
            lambda: lambda_of(*ts, e),
            recorded: Side {
                latency: e.latency(*ts),
                status: e.status,
                summary: e.summary.clone(),
                responses: t.responses.clone(),
            },
            compare,
            response_last: e.response_last,
        });
    }
    let mut done = 0usize; // exchanges whose recorded response ended, in order
    let mut started = 0usize; // exchanges whose request has been sent
    for (i, (ts, m)) in client.iter().enumerate().take(cut) {
        let k = owner[i];
        if k.is_some_and(|k| !go[k]) || m.data.is_truncated() {
            continue;
        }
        let starts = k.filter(|&k| tied[k].as_ref().is_some_and(|t| t.first == i)).and_then(|k| index[k]);
        if let Some(x) = starts {
            started = x + 1;
        }
        // Only exchanges before the one this message belongs to count.
        let own = k.and_then(|k| index[k]);
        let bound = own.unwrap_or(started);
        while done < bound && script.exchanges[done].response_last.is_some_and(|r| r <= *ts)
        {
            done += 1;
        }
        let hello = (open.protocol == Protocol::Redis && m.redacted).then(|| {
            let args = redis_args(m);
            let mut out = Vec::new();
            let mut it = args.into_iter();
            while let Some(a) = it.next() {
                if a.eq_ignore_ascii_case(b"AUTH") {
                    it.next();
                    it.next();
                } else {
                    out.push(a);
                }
            }
            out
        });
        script.sends.push(Send {
            ts: *ts,
            bytes: Bytes::from(m.data.bytes.0.clone()),
            starts,
            wait_for: done,
            hello,
            redacted: m.redacted,
        });
    }
    if let Some(r) = cut_reason {
        if cut < client.len() {
            plan.notes.push(format!("connection {} on {}: {r}", key.1, open.route));
        }
    }
    if script.sends.is_empty() && script.startup.is_none() {
        return None;
    }
    Some(script)
}
