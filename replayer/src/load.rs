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

mod script;

use crate::model::Side;
use bytes::Bytes;
use format::view::Filter;
use format::{Body, Direction, Protocol};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

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
    /// Routes whose upstream the proxy met in TLS when recording (the
    /// header's `routes`, `upstream-tls=require|verify-full`), and how it
    /// checked the certificate; not known in merged traces.
    pub upstream_tls: Vec<(String, tls::Verify)>,
    /// Exchanges left out by the filters.
    pub filtered: u64,
}

impl Plan {
    pub(crate) fn skip(&mut self, reason: &str, n: u64) {
        if n > 0 {
            *self.skipped.entry(reason.to_owned()).or_default() += n;
        }
    }

    /// Compared exchanges in the plan.
    pub fn exchange_count(&self) -> u64 {
        self.conns.iter().map(|c| c.compared() as u64).sum()
    }
}

/// One connection's records, as read.
#[derive(Default)]
struct ConnRecords {
    open: Option<(u64, format::ConnOpen)>,
    client: Vec<(u64, format::Message)>,
    server: Vec<(u64, format::Message)>,
    exchanges: Vec<(u64, format::Exchange)>,
    /// Why part of it was recorded as opaque bytes or lost, if it was.
    fallback: Option<String>,
}

/// Adds olreplay's `--route` names to `filter`: a route name, or a
/// protocol (`--route http` drives every HTTP connection too, as `--proto
/// http` does: routes and protocols are alternatives, see the `script` module).
pub fn add_routes(filter: &mut Filter, routes: &[String]) {
    for r in routes {
        filter.routes.push(r.clone());
        if let Some(p) = crate::target::replayed_protocol(r).filter(|p| p.name() == r) {
            filter.protocols.push(p);
        }
    }
}

/// The routes recorded with `upstream-tls=` in `header`.
fn upstream_tls(header: &format::Header) -> Vec<(String, tls::Verify)> {
    header
        .routes()
        .into_iter()
        .filter_map(|r| {
            let verify = match r.option("upstream-tls")? {
                "require" => tls::Verify::Nothing,
                "verify-ca" => tls::Verify::Chain,
                "verify-full" => tls::Verify::Full,
                _ => return None,
            };
            Some((r.name, verify))
        })
        .collect()
}

/// Reads `path` and builds the plan of what `filter` keeps (its routes,
/// protocols, lambdas and time window; see the `script` module for how each
/// applies), leaving out writes when `read_only`. Fails only when the file
/// cannot be opened or is not a trace; damage inside is reported in the
/// plan.
pub fn load(path: &Path, filter: &Filter, read_only: bool) -> anyhow::Result<Plan> {
    let reader = format::Reader::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut plan = Plan { upstream_tls: upstream_tls(reader.header()), ..Plan::default() };
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
        let want = script::Wanted { filter, read_only, lambda_of: &lambda_of };
        if let Some(script) = script::build(key, recs, &want, &mut plan) {
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
