//! `--format har`: HAR 1.2 of the HTTP exchanges (invocations and outbound
//! calls), for browser devtools and HAR viewers.
//!
//! Each exchange record is paired with its request message (same
//! connection, same first byte) and its response message (its
//! `response_first`), whose exact bytes give the headers and bodies; the
//! heads are parsed with `wire`'s HTTP parser. Bodies are what the trace
//! holds (a capped prefix for large ones, and secrets already blanked):
//! a body cut by the recorder or here says so in its `comment`. Non-UTF-8
//! bodies are written as text with invalid bytes replaced, and marked.
//! Memory: the unpaired messages of HTTP connections in flight.
//!
//! `timings`: `send` (request first to last byte), `wait` (to the
//! response's first byte), `receive` (to its last); `blocked`, `dns` and
//! `connect` are -1 (not applicable: the proxy sees a connection's
//! exchanges, not its setup). Extra fields (`_lambda`, `_invocation`,
//! `_role`, `_attribution`, `_source`) carry the trace's joins.

use super::facts::{Facts, Role};
use super::{Context, Sink};
use format::{Body, Direction, Exchange, Header, Payload, Protocol, Record};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

/// Body bytes written per message.
const BODY_CAP: usize = 64 * 1024;
/// Unpaired messages kept per connection (a pipelining client's depth).
const QUEUE_CAP: usize = 64;

struct Waiting {
    ts: u64,
    exchange: Exchange,
    /// The entry, all but what the messages give.
    base: Value,
}

#[derive(Default)]
struct Conn {
    requests: VecDeque<(u64, Payload)>,
    responses: VecDeque<(u64, Payload)>,
    exchanges: VecDeque<Waiting>,
}

pub struct Har {
    out: Box<dyn Write>,
    anchor: u64,
    sources: Vec<String>,
    conns: HashMap<(u16, u64), Conn>,
    first: bool,
    entries: u64,
}

impl Har {
    pub fn new(mut out: Box<dyn Write>, header: &Header) -> anyhow::Result<Har> {
        let creator = json!({"name": "oltrace", "version": env!("CARGO_PKG_VERSION")});
        writeln!(out, "{{\"log\":{{\"version\":\"1.2\",\"creator\":{creator},\"entries\":[")?;
        Ok(Har {
            out,
            anchor: header.anchor_unix_ns,
            sources: header.sources.iter().map(|s| s.name.clone()).collect(),
            conns: HashMap::new(),
            first: true,
            entries: 0,
        })
    }

    /// Writes the exchanges of `key` that have their messages (all of
    /// them when `all`, with what they have).
    fn settle(&mut self, key: (u16, u64), all: bool) -> anyhow::Result<()> {
        loop {
            let Some(conn) = self.conns.get_mut(&key) else { return Ok(()) };
            let Some(w) = conn.exchanges.front() else { return Ok(()) };
            let req = conn.requests.iter().position(|(ts, _)| *ts == w.ts);
            let resp = w.exchange.response_first.and_then(|first| conn.responses.iter().position(|(ts, _)| *ts == first));
            let complete = req.is_some() && (resp.is_some() || w.exchange.response_first.is_none());
            if !complete && !all {
                return Ok(());
            }
            let w = conn.exchanges.pop_front().expect("front");
            let request = req.and_then(|i| conn.requests.remove(i)).map(|r| r.1);
            let response = resp.and_then(|i| conn.responses.remove(i)).map(|r| r.1);
            // Messages older than this exchange answer nothing any more.
            conn.requests.retain(|(ts, _)| *ts > w.ts);
            let entry = entry(w, request.as_ref(), response.as_ref(), self.anchor);
            if !self.first {
                self.out.write_all(b",\n")?;
            }
            self.first = false;
            serde_json::to_writer(&mut self.out, &entry)?;
            self.entries += 1;
        }
    }
}

impl Sink for Har {
    fn record(&mut self, record: &Record, cx: &Context<'_>) -> anyhow::Result<()> {
        if cx.seen.conn.is_some_and(|c| c.protocol != Protocol::Http) {
            return Ok(());
        }
        let key = (record.src, record.body.conn().unwrap_or(0));
        match &record.body {
            Body::Message(m) => {
                let conn = self.conns.entry(key).or_default();
                let q = if m.dir == Direction::ToServer { &mut conn.requests } else { &mut conn.responses };
                q.push_back((record.ts, m.data.clone()));
                if q.len() > QUEUE_CAP {
                    q.pop_front();
                }
                self.settle(key, false)?;
            }
            Body::Exchange(e) => {
                if !matches!(e.summary, format::ExchangeSummary::Http(_)) {
                    return Ok(());
                }
                let f = Facts::of(record.ts, e, cx.seen);
                let mut base = json!({"_role": f.role.name(), "_source": self.sources.get(record.src as usize), "connection": format!("{}:{}", record.src, e.conn)});
                if let Some(j) = f.invocation {
                    base["_lambda"] = json!(&*j.invocation.lambda);
                    base["_invocation"] = json!(j.invocation.id);
                    if f.role == Role::Call {
                        base["_attribution"] = json!(f.attribution());
                    }
                }
                if !f.server.is_empty() {
                    base["serverIPAddress"] = json!(super::facts::host_port(f.server).0);
                }
                let conn = self.conns.entry(key).or_default();
                conn.exchanges.push_back(Waiting { ts: record.ts, exchange: e.clone(), base });
                // An exchange whose messages never come (lost to a gap)
                // must not hold its connection's later ones forever.
                let force = conn.exchanges.len() > QUEUE_CAP;
                self.settle(key, force)?;
            }
            Body::ConnClose(_) => {
                self.settle(key, true)?;
                self.conns.remove(&key);
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<String> {
        let mut keys: Vec<(u16, u64)> = self.conns.keys().copied().collect();
        keys.sort_unstable();
        for k in keys {
            self.settle(k, true)?;
        }
        self.out.write_all(b"\n]}}\n")?;
        self.out.flush()?;
        Ok(format!("{} HAR entries written", self.entries))
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// A HAR entry from an exchange and the messages found for it.
fn entry(w: Waiting, request: Option<&Payload>, response: Option<&Payload>, anchor: u64) -> Value {
    let e = &w.exchange;
    let format::ExchangeSummary::Http(h) = &e.summary else { return Value::Null };
    let started = UNIX_EPOCH + Duration::from_nanos(anchor + w.ts);
    let send = e.request_last.saturating_sub(w.ts);
    let (wait, receive) = match (e.response_first, e.response_last) {
        (Some(first), Some(last)) => (first.saturating_sub(e.request_last), last.saturating_sub(first)),
        _ => (0, 0),
    };
    let req = request.map(|p| Message::parse(p, true)).unwrap_or_default();
    let resp = response.map(|p| Message::parse(p, false)).unwrap_or_default();
    let host = h.host.clone().or_else(|| header(&req.headers, "host")).unwrap_or_else(|| "unknown".into());
    let url = if h.target.contains("://") { h.target.clone() } else { format!("http://{host}{}", h.target) };
    let query: Vec<Value> = h
        .target
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""))
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            json!({"name": k, "value": v})
        })
        .collect();
    let version = |minor: Option<u8>| format!("HTTP/1.{}", minor.unwrap_or(1));
    let mut request = json!({
        "method": h.method,
        "url": url,
        "httpVersion": version(req.version),
        "cookies": [],
        "headers": pairs(&req.headers),
        "queryString": query,
        "headersSize": req.head_len.map_or(-1, |n| n as i64),
        "bodySize": h.request_body_len,
    });
    if h.request_body_len > 0 || !req.body.is_empty() {
        let mut post = json!({"mimeType": header(&req.headers, "content-type").unwrap_or_default(), "text": req.body});
        if let Some(c) = &req.comment {
            post["comment"] = json!(c);
        }
        request["postData"] = post;
    }
    let mut content = json!({
        "size": h.response_body_len,
        "mimeType": header(&resp.headers, "content-type").unwrap_or_default(),
        "text": resp.body,
    });
    if let Some(c) = &resp.comment {
        content["comment"] = json!(c);
    }
    let mut response = json!({
        "status": h.status.unwrap_or(0),
        "statusText": resp.reason,
        "httpVersion": version(resp.version),
        "cookies": [],
        "headers": pairs(&resp.headers),
        "content": content,
        "redirectURL": header(&resp.headers, "location").unwrap_or_default(),
        "headersSize": resp.head_len.map_or(-1, |n| n as i64),
        "bodySize": if e.response_last.is_some() { h.response_body_len as i64 } else { -1 },
    });
    if e.response_last.is_none() {
        response["comment"] = json!("no response: the connection ended first");
    }
    let mut entry = w.base;
    entry["startedDateTime"] = json!(humantime::format_rfc3339_nanos(started).to_string());
    entry["time"] = json!(ms(send + wait + receive));
    entry["request"] = request;
    entry["response"] = response;
    entry["cache"] = json!({});
    entry["timings"] = json!({"blocked": -1, "dns": -1, "connect": -1, "send": ms(send), "wait": ms(wait), "receive": ms(receive), "ssl": -1});
    entry
}

/// What a message's exact bytes say, for HAR.
#[derive(Default)]
struct Message {
    version: Option<u8>,
    reason: String,
    headers: Vec<(String, String)>,
    head_len: Option<usize>,
    body: String,
    comment: Option<String>,
}

impl Message {
    fn parse(p: &Payload, request: bool) -> Message {
        let bytes = p.bytes.as_bytes();
        let head = if request { wire::http::parse_request_head(bytes) } else { wire::http::parse_response_head(bytes) };
        let Ok(head) = head else {
            return Message { comment: Some("head not parsed (cut by the recorder?)".into()), ..Message::default() };
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let headers: Vec<(String, String)> = head.headers().map(|(n, v)| (text(n), text(v))).collect();
        let raw_body = &bytes[head.head_len()..];
        let body = if head.chunked() { wire::http::dechunk(raw_body) } else { raw_body.to_vec() };
        let mut notes = Vec::new();
        if p.is_truncated() {
            notes.push(format!("body cut by the recorder: {} of {} message bytes kept", bytes.len(), p.len));
        }
        let kept = &body[..body.len().min(BODY_CAP)];
        if kept.len() < body.len() {
            notes.push(format!("body cut at {BODY_CAP} bytes by the export"));
        }
        let body = match std::str::from_utf8(kept) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                notes.push("body is not UTF-8: invalid bytes replaced".into());
                String::from_utf8_lossy(kept).into_owned()
            }
        };
        let reason = head.bytes().split(|b| *b == b'\n').next().map(|line| {
            let line = String::from_utf8_lossy(line);
            line.trim_end().splitn(3, ' ').nth(2).unwrap_or("").to_owned()
        });
        Message {
            version: Some(match head.version() {
                wire::http::HttpVersion::Http10 => 0,
                _ => 1,
            }),
            reason: if request { String::new() } else { reason.unwrap_or_default() },
            headers,
            head_len: Some(head.head_len()),
            body,
            comment: (!notes.is_empty()).then(|| notes.join("; ")),
        }
    }
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
}

fn pairs(headers: &[(String, String)]) -> Value {
    Value::Array(headers.iter().map(|(n, v)| json!({"name": n, "value": v})).collect())
}
