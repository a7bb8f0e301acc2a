//! One recorded connection's records turned into its [`ConnScript`], in
//! steps, one function each:
//!
//! 1. [`admit`]: is the connection wanted and replayable at all (its
//!    opening recorded, its route or protocol selected, not MySQL)?
//! 2. [`resendable`]: how much of the client stream can be re-sent (up to
//!    a hole, an untruncatable truncated message, or opaque bytes).
//! 3. [`tie`]: each exchange tied to its client messages and its recorded
//!    responses.
//! 4. [`choose`]: which exchanges go (authentication is redone, cancel
//!    requests and redacted Redis commands cannot be, writes are left out
//!    under `--read-only`), and the PostgreSQL startup parameters.
//! 5. [`select`]: the lambda and time filters, per exchange for HTTP
//!    (stateless), per connection for sessions.
//! 6. [`push_exchanges`] and [`push_sends`]: the script itself, each send
//!    knowing which exchange it starts and how many it waits for.
//!
//! The filter: olreplay's `--route` and `--proto` are alternatives (`--proto
//! redis` is `--route redis`), so a connection is driven when its route or
//! its protocol is named; lambdas and the time window then apply as above.

use super::{ConnRecords, ConnScript, Plan, RecExchange, Send, StartupParams};
use crate::classify;
use crate::model::Side;
use bytes::Bytes;
use format::view::Filter;
use format::{Decoded, PgKind, Protocol};

/// Skip reasons that more than one place gives.
const TRUNCATED_SESSION: &str =
    "request larger than the recording's --max-request (recorded truncated): the rest of the PostgreSQL connection, which cannot go on without it";
const TRUNCATED_REQUEST: &str = "request larger than the recording's --max-request (recorded truncated): skipped, the connection goes on";
const LOST_RESPONSE: &str = "recorded response lost (damaged trace): re-sent, not compared";
const INCONSISTENT_REQUEST: &str =
    "request not where the exchange's byte counts put it (inconsistent recording, the trace is intact: please report it)";
const INCONSISTENT_RESPONSE: &str =
    "recorded response shorter than the exchange's byte count (inconsistent recording, the trace is intact): re-sent, not compared";
const OPAQUE: &str = "connection recorded as opaque bytes: the rest of the connection";

/// What the replay wants from each connection.
pub struct Wanted<'a> {
    pub filter: &'a Filter,
    pub read_only: bool,
    /// The lambda an exchange belongs to (the trace view's invocation join).
    pub lambda_of: &'a dyn Fn(u64, &format::Exchange) -> Option<String>,
}

type Timed<T> = Vec<(u64, T)>;

/// An exchange tied to its client messages (`client[first..end]`) and its
/// recorded responses.
struct Tied {
    first: usize,
    end: usize,
    responses: Vec<format::Message>,
    /// Why the recorded response cannot be compared.
    damaged: Option<&'static str>,
}

/// The exchanges that go, and the client messages with them.
struct Chosen {
    /// `owner[i]`: the exchange client message `i` belongs to.
    owner: Vec<Option<usize>>,
    go: Vec<bool>,
    startup: Option<StartupParams>,
}

/// Builds the script of connection `key` from its records, or `None` when
/// nothing of it is replayed (counted in `plan`).
pub(super) fn build(key: (u16, u64), recs: ConnRecords, want: &Wanted<'_>, plan: &mut Plan) -> Option<ConnScript> {
    let ConnRecords { open, mut client, mut server, mut exchanges, fallback } = recs;
    let (open_ts, open) = admit(open, exchanges.len() as u64, want.filter, plan)?;
    client.sort_by_key(|(_, m)| m.offset);
    server.sort_by_key(|(_, m)| m.offset);
    exchanges.sort_by_key(|(ts, _)| *ts);
    let (cut, cut_reason) = resendable(&client, open.protocol, fallback.is_some() && exchanges.is_empty());
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
        script.sends = client.into_iter().take(cut).map(|(ts, m)| send(ts, &m, None, 0, None)).collect();
        return Some(script);
    }
    let tied = tie(&exchanges, &client, cut, &server, plan);
    let Chosen { owner, mut go, startup } = choose(&open, &exchanges, &client, &tied, cut_reason, want.read_only, plan);
    script.startup = startup;
    if open.protocol == Protocol::Postgres && script.startup.is_none() {
        // No startup recorded (damaged, TLS, or a cancel connection): a
        // session cannot be opened the way the client did.
        let n = go.iter().filter(|g| **g).count() as u64;
        plan.skip("PostgreSQL connection without its startup (damaged or encrypted)", n);
        return None;
    }
    if !select(open.protocol, &exchanges, &mut go, want, plan) {
        return None;
    }
    let index = push_exchanges(&mut script, &exchanges, &client, &tied, &go, want, plan);
    push_sends(&mut script, &client[..cut], &owner, &go, &tied, &index);
    if let Some(r) = cut_reason.filter(|_| cut < client.len()) {
        plan.notes.push(format!("connection {} on {}: {r}", key.1, open.route));
    }
    if script.sends.is_empty() && script.startup.is_none() {
        return None;
    }
    Some(script)
}

/// The connection's opening, if the connection is replayed at all.
fn admit(open: Option<(u64, format::ConnOpen)>, exchanges: u64, filter: &Filter, plan: &mut Plan) -> Option<(u64, format::ConnOpen)> {
    let Some((open_ts, open)) = open else {
        plan.skip("connection opening lost (damaged trace)", exchanges);
        return None;
    };
    let all = filter.routes.is_empty() && filter.protocols.is_empty();
    let named = filter.routes.contains(&open.route) || filter.protocols.contains(&open.protocol);
    if !(all || named) {
        plan.filtered += exchanges;
        return None;
    }
    if open.protocol == Protocol::Mysql {
        plan.skip("MySQL connections (not replayed yet)", exchanges);
        return None;
    }
    Some((open_ts, open))
}

/// How many client messages (in stream order) can be re-sent, and why no
/// more. `opaque_only`: the decoder gave up and no exchange was recorded.
fn resendable(client: &Timed<format::Message>, protocol: Protocol, opaque_only: bool) -> (usize, Option<&'static str>) {
    let decodes = protocol != Protocol::Tcp;
    // Redis commands and HTTP requests stand alone: one recorded truncated
    // is skipped and the connection goes on.
    let skippable = matches!(protocol, Protocol::Redis | Protocol::Http);
    let mut expect = 0u64;
    for (i, (_, m)) in client.iter().enumerate() {
        let why = if m.offset != expect {
            Some("client bytes lost (damaged trace): the rest of the connection")
        } else if m.data.is_truncated() && !skippable {
            Some(TRUNCATED_SESSION)
        } else if decodes && m.decoded.is_none() {
            Some(OPAQUE)
        } else {
            None
        };
        if why.is_some() {
            return (i, why);
        }
        expect = m.offset + m.data.len;
    }
    let why = (decodes && opaque_only && !client.is_empty()).then_some(OPAQUE);
    (client.len(), why)
}

/// Ties every exchange to its first client message (at or after the end
/// of the previous exchange's request, with the exchange's `ts`), the
/// messages spanning its `request_bytes`, and the server messages of its
/// `response_bytes`. `None`: its request is not in what can be re-sent.
fn tie(
    exchanges: &Timed<format::Exchange>,
    client: &Timed<format::Message>,
    cut: usize,
    server: &Timed<format::Message>,
    plan: &Plan,
) -> Vec<Option<Tied>> {
    let mut tied = Vec::with_capacity(exchanges.len());
    let mut ci = 0;
    let mut si = 0;
    let mut sexpect = 0u64;
    for (ts, e) in exchanges {
        let Some(first) = (ci..cut).find(|&i| client[i].0 == *ts) else {
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
    tied
}

/// Which exchanges go: not the ones that could not be tied, nor truncated
/// requests, authentication (redone with the target's credentials),
/// cancel requests, redacted Redis commands, or writes under
/// `read_only`. Also picks up the PostgreSQL startup parameters.
fn choose(
    open: &format::ConnOpen,
    exchanges: &Timed<format::Exchange>,
    client: &Timed<format::Message>,
    tied: &[Option<Tied>],
    cut_reason: Option<&'static str>,
    read_only: bool,
    plan: &mut Plan,
) -> Chosen {
    let mut chosen = Chosen { owner: vec![None; client.len()], go: vec![false; exchanges.len()], startup: None };
    let mut auth_skipped = 0u64;
    let mut redacted_sent = 0u64;
    let damaged_trace = !plan.damage.is_empty();
    for (k, t) in tied.iter().enumerate() {
        let Some(t) = t else {
            let lost = if damaged_trace { "request lost (damaged trace)" } else { INCONSISTENT_REQUEST };
            plan.skip(cut_reason.unwrap_or(lost), 1);
            continue;
        };
        for o in chosen.owner.iter_mut().take(t.end).skip(t.first) {
            *o = Some(k);
        }
        let request = &client[t.first..t.end];
        if request.iter().any(|(_, m)| m.data.is_truncated()) {
            plan.skip(TRUNCATED_REQUEST, 1);
            continue;
        }
        let first = &request[0].1;
        match pg_kind(first) {
            Some(PgKind::StartupMessage | PgKind::SslRequest | PgKind::GssEncRequest) => {
                if let Some((_, m)) = request.iter().find(|(_, m)| pg_kind(m) == Some(PgKind::StartupMessage)) {
                    chosen.startup = Some(startup_params(m));
                }
                continue;
            }
            Some(PgKind::CancelRequest) => {
                plan.skip("PostgreSQL cancel requests (the backend they name is gone)", 1);
                continue;
            }
            _ => {}
        }
        if open.protocol == Protocol::Redis && first.redacted {
            let name = redis_args(first).first().map(|a| String::from_utf8_lossy(a).to_ascii_uppercase()).unwrap_or_default();
            if name == "AUTH" {
                auth_skipped += 1;
                continue;
            }
            if name != "HELLO" {
                plan.skip("redacted Redis commands (their secrets are not in the trace)", 1);
                continue;
            }
        }
        if read_only && classify::is_write(&exchanges[k].1.summary) {
            plan.skip("writes (--read-only)", 1);
            continue;
        }
        // Blanked at recording (credential headers, secret query, form and
        // JSON fields, SQL password literals): re-sent as recorded, stars.
        if matches!(open.protocol, Protocol::Http | Protocol::Postgres) && request.iter().any(|(_, m)| m.redacted) {
            redacted_sent += 1;
        }
        chosen.go[k] = true;
    }
    plan.skip("authentication (redone with the target's credentials)", auth_skipped);
    if redacted_sent > 0 {
        plan.notes.push(format!(
            "warning: {redacted_sent} requests on {} re-send values blanked at recording (credential headers, secret query, form or JSON fields, SQL password literals), as recorded: give the target its own credentials (--target) or a noise rule where replies differ, or record with --no-redact to replay them",
            open.route
        ));
    }
    chosen
}

/// Applies the lambda and time filters: per exchange for HTTP
/// (stateless), per connection for sessions (kept whole if any of its
/// exchanges passes). False when nothing of the connection is left.
fn select(protocol: Protocol, exchanges: &Timed<format::Exchange>, go: &mut [bool], want: &Wanted<'_>, plan: &mut Plan) -> bool {
    let f = want.filter;
    let passes = |k: usize| {
        let (ts, e) = &exchanges[k];
        f.in_window(*ts) && (f.lambdas.is_empty() || f.keeps_lambda((want.lambda_of)(*ts, e).as_deref()))
    };
    if protocol == Protocol::Http {
        for (k, g) in go.iter_mut().enumerate() {
            if *g && !passes(k) {
                *g = false;
                plan.filtered += 1;
            }
        }
        return true;
    }
    let filtered = f.from_ns.is_some() || f.to_ns.is_some() || !f.lambdas.is_empty();
    if filtered && !(0..exchanges.len()).any(|k| go[k] && passes(k)) {
        plan.filtered += go.iter().filter(|g| **g).count() as u64;
        return false;
    }
    true
}

/// Appends the exchanges that go, in order, to the script; returns each
/// recorded exchange's index among them.
fn push_exchanges(
    script: &mut ConnScript,
    exchanges: &Timed<format::Exchange>,
    client: &Timed<format::Message>,
    tied: &[Option<Tied>],
    go: &[bool],
    want: &Wanted<'_>,
    plan: &mut Plan,
) -> Vec<Option<usize>> {
    let mut index = vec![None; exchanges.len()];
    for (k, t) in tied.iter().enumerate() {
        let (Some(t), true) = (t, go[k]) else { continue };
        let (ts, e) = &exchanges[k];
        // Terminate is re-sent to end the session as recorded; it has no answer to compare.
        let terminate = pg_kind(&client[t.first].1) == Some(PgKind::Terminate);
        if let Some(why) = t.damaged {
            plan.skip(why, 1);
        }
        index[k] = Some(script.exchanges.len());
        script.exchanges.push(RecExchange {
            ts: *ts,
            key: crate::report::key_of(&e.summary),
            lambda: (want.lambda_of)(*ts, e),
            recorded: Side { latency: e.latency(*ts), status: e.status, summary: e.summary.clone(), responses: t.responses.clone() },
            compare: !terminate && t.damaged.is_none(),
            response_last: e.response_last,
        });
    }
    index
}

/// Appends the client messages that go to the script, each waiting for
/// the exchanges whose recorded response had ended when the client sent it.
fn push_sends(
    script: &mut ConnScript,
    client: &[(u64, format::Message)],
    owner: &[Option<usize>],
    go: &[bool],
    tied: &[Option<Tied>],
    index: &[Option<usize>],
) {
    let mut done = 0usize; // exchanges whose recorded response ended, in order
    let mut started = 0usize; // exchanges whose request has been sent
    for (i, (ts, m)) in client.iter().enumerate() {
        let k = owner[i];
        if k.is_some_and(|k| !go[k]) || m.data.is_truncated() {
            continue;
        }
        let starts = k.filter(|&k| tied[k].as_ref().is_some_and(|t| t.first == i)).and_then(|k| index[k]);
        if let Some(x) = starts {
            started = x + 1;
        }
        // Only exchanges before the one this message belongs to count.
        let bound = k.and_then(|k| index[k]).unwrap_or(started);
        while done < bound && script.exchanges[done].response_last.is_some_and(|r| r <= *ts) {
            done += 1;
        }
        let hello = (script.protocol == Protocol::Redis && m.redacted).then(|| hello_without_auth(m));
        script.sends.push(send(*ts, m, starts, done, hello));
    }
}

fn send(ts: u64, m: &format::Message, starts: Option<usize>, wait_for: usize, hello: Option<Vec<Vec<u8>>>) -> Send {
    Send { ts, bytes: Bytes::from(m.data.bytes.0.clone()), starts, wait_for, hello, redacted: m.redacted }
}

/// A redacted Redis `HELLO`'s arguments without its `AUTH user pass`
/// (redone with the target's credentials at replay).
fn hello_without_auth(m: &format::Message) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut it = redis_args(m).into_iter();
    while let Some(a) = it.next() {
        if a.eq_ignore_ascii_case(b"AUTH") {
            it.next();
            it.next();
        } else {
            out.push(a);
        }
    }
    out
}

fn pg_kind(m: &format::Message) -> Option<PgKind> {
    match &m.decoded {
        Some(Decoded::Pg(p)) => p.typed_kind(),
        _ => None,
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

/// A StartupMessage's parameters, from its exact bytes.
fn startup_params(m: &format::Message) -> StartupParams {
    match wire::pg::parse_startup(&Bytes::copy_from_slice(&m.data.bytes.0)) {
        Ok((wire::pg::PgMessage::Startup(s), _)) => {
            let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
            s.params.iter().map(|(k, v)| (text(k), text(v))).collect()
        }
        _ => Vec::new(),
    }
}
