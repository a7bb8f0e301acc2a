//! `--format perfetto`: Chrome Trace Event JSON, which ui.perfetto.dev and
//! chrome://tracing open.
//!
//! - a process per source (worker), named by a `process_name` metadata
//!   event;
//! - a thread ("track") per lambda; concurrent invocations of one lambda
//!   go to further lanes of it (`blog`, `blog #2`, ...), so that complete
//!   (`X`) slices on a thread always nest;
//! - each invocation is an `X` slice from its request's first byte to its
//!   response's last;
//! - each downstream call is an async slice (`b`/`e` with its own id) in
//!   its process, so calls running at once do not break nesting; calls
//!   tied to no invocation go to a "calls without invocation" thread;
//! - a flow arrow goes from each invocation to each of its calls. The
//!   arrows are "v2" flows (`bind_id` with `flow_out` / `flow_in` on the
//!   slices themselves), because Perfetto's JSON importer binds the v1
//!   `s`/`f` events to the slice open on a *thread* track: both ends would
//!   land on the invocation's `X` slice, never on the call's async slice.
//!   An `X` slice holds one `bind_id`, and an invocation has many calls, so
//!   each arrow leaves from a zero-length `X` slice ("call") on the
//!   invocation's thread at the call's start (within the invocation's
//!   slice), and arrives at the call's `b` event (`flow_in`). The source is
//!   written before the call's `b`: at equal times the importer keeps file
//!   order between them, so the arrow's start is seen before its end;
//! - log lines are instant (`i`) events on their invocation's thread, or
//!   on the source's "logs" thread.
//!
//! Timestamps (`ts`, `dur`) are microseconds since the trace's anchor,
//! with nanosecond decimals.

use super::facts::{Facts, Role};
use super::{Context, Sink};
use format::view::STREAM_RETENTION_NS;
use format::{Body, Header, Record};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::Arc;

const LOGS_TID: u64 = 1;
const LOOSE_TID: u64 = 2;
const FIRST_LANE_TID: u64 = 10;
/// Characters of a statement or log line used as an event's name.
const NAME_CHARS: usize = 100;

struct Lane {
    tid: u64,
    /// When its current invocation ends; `None` while that is not known.
    free_at: Option<u64>,
}

pub struct Perfetto {
    out: Box<dyn Write>,
    first: bool,
    events: u64,
    /// Lanes per (source, lambda).
    lanes: HashMap<(u16, Arc<str>), Vec<Lane>>,
    next_tid: HashMap<u16, u64>,
    /// The thread each recent invocation is drawn on.
    invocation_tid: HashMap<(u16, u64), (u64, usize)>,
    order: VecDeque<(u64, u16, u64)>,
    sources_named: Vec<bool>,
    next_id: u64,
}

impl Perfetto {
    pub fn new(mut out: Box<dyn Write>, header: &Header) -> anyhow::Result<Perfetto> {
        out.write_all(b"{\"displayTimeUnit\":\"ms\",\"otherData\":")?;
        serde_json::to_writer(&mut out, &json!({ "tool": header.tool, "anchor_unix_ns": header.anchor_unix_ns.to_string() }))?;
        out.write_all(b",\"traceEvents\":[\n")?;
        let mut p = Perfetto {
            out,
            first: true,
            events: 0,
            lanes: HashMap::new(),
            next_tid: HashMap::new(),
            invocation_tid: HashMap::new(),
            order: VecDeque::new(),
            sources_named: Vec::new(),
            next_id: 1,
        };
        for (i, s) in header.sources.iter().enumerate() {
            p.name_source(i as u16, &s.name)?;
        }
        Ok(p)
    }

    fn emit(&mut self, event: &Value) -> anyhow::Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.out, event)?;
        self.events += 1;
        Ok(())
    }

    fn name_source(&mut self, src: u16, name: &str) -> anyhow::Result<()> {
        let i = src as usize;
        if self.sources_named.len() <= i {
            self.sources_named.resize(i + 1, false);
        }
        if self.sources_named[i] {
            return Ok(());
        }
        self.sources_named[i] = true;
        let pid = pid(src);
        self.emit(&json!({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}}))?;
        self.emit(&json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": LOGS_TID, "args": {"name": "logs"}}))?;
        self.emit(&json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": LOOSE_TID, "args": {"name": "calls without invocation"}}))
    }

    /// Puts an invocation starting at `ts` on the first free lane of its
    /// lambda, naming a new lane when all are busy.
    fn place(&mut self, src: u16, id: u64, lambda: &Arc<str>, ts: u64) -> anyhow::Result<u64> {
        self.name_source(src, &format!("source {src}"))?;
        let lanes = self.lanes.entry((src, lambda.clone())).or_default();
        let (tid, index) = match lanes.iter().position(|l| l.free_at.is_some_and(|f| f <= ts)) {
            Some(i) => {
                lanes[i].free_at = None;
                (lanes[i].tid, i)
            }
            None => {
                let next = self.next_tid.entry(src).or_insert(FIRST_LANE_TID);
                let tid = *next;
                *next += 1;
                lanes.push(Lane { tid, free_at: None });
                let index = lanes.len() - 1;
                let name = if index == 0 { format!("lambda {lambda}") } else { format!("lambda {lambda} #{}", index + 1) };
                self.emit(&json!({"ph": "M", "name": "thread_name", "pid": pid(src), "tid": tid, "args": {"name": name}}))?;
                (tid, index)
            }
        };
        self.invocation_tid.insert((src, id), (tid, index));
        self.order.push_back((ts, src, id));
        while let Some(&(t, s, i)) = self.order.front() {
            if t.saturating_add(STREAM_RETENTION_NS) >= ts {
                break;
            }
            self.order.pop_front();
            self.invocation_tid.remove(&(s, i));
        }
        Ok(tid)
    }

    fn tid_of(&self, src: u16, id: u64) -> Option<u64> {
        self.invocation_tid.get(&(src, id)).map(|t| t.0)
    }
}

fn pid(src: u16) -> u64 {
    src as u64 + 1
}

/// Nanoseconds as microseconds with three decimals, exactly.
fn us(ns: u64) -> Value {
    let text = format!("{}.{:03}", ns / 1000, ns % 1000);
    Value::Number(text.parse().unwrap_or_else(|_| serde_json::Number::from(ns / 1000)))
}

fn short(text: &str) -> String {
    match text.char_indices().nth(NAME_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

impl Sink for Perfetto {
    fn record(&mut self, record: &Record, cx: &Context<'_>) -> anyhow::Result<()> {
        let src = record.src;
        match &record.body {
            Body::Invocation(i) => {
                if let Some(j) = &cx.seen.invocation {
                    self.place(src, i.id, &j.invocation.lambda, record.ts)?;
                }
            }
            Body::Exchange(e) => {
                let f = Facts::of(record.ts, e, cx.seen);
                match (f.role, f.invocation) {
                    (Role::Invocation, Some(j)) => {
                        let inv = &j.invocation;
                        let tid = match self.tid_of(src, inv.id) {
                            Some(t) => t,
                            None => self.place(src, inv.id, &inv.lambda, inv.ts)?,
                        };
                        if let Some(&(_, index)) = self.invocation_tid.get(&(src, inv.id)) {
                            if let Some(lane) = self.lanes.get_mut(&(src, inv.lambda.clone())).and_then(|l| l.get_mut(index)) {
                                lane.free_at = Some(f.end);
                            }
                        }
                        let args = json!({"invocation": inv.id, "request": f.statement, "status": f.http_status,
                            "request_id": inv.request_id.as_deref(), "trace_id": inv.trace_id.as_deref(), "platform": &*inv.platform});
                        self.emit(&json!({"ph": "X", "name": &*inv.lambda, "cat": "invocation", "pid": pid(src), "tid": tid,
                            "ts": us(f.start), "dur": us(f.end - f.start), "args": args}))?;
                    }
                    _ => {
                        let id = self.next_id;
                        self.next_id += 1;
                        let inv_tid = f.invocation.and_then(|j| self.tid_of(src, j.invocation.id));
                        let tid = inv_tid.unwrap_or(LOOSE_TID);
                        let cat = f.protocol.name();
                        let name = short(&f.fingerprint);
                        let args = json!({"statement": f.statement, "status": f.http_status, "error": f.error, "rows": f.rows,
                            "server": f.server, "attribution": f.attribution(), "invocation": f.invocation.map(|j| j.invocation.id)});
                        let hex = format!("0x{id:x}");
                        let mut begin = json!({"ph": "b", "cat": cat, "name": name, "id": hex, "pid": pid(src), "tid": tid, "ts": us(f.start), "args": args});
                        if inv_tid.is_some() {
                            // The arrow's source: see the module's doc.
                            self.emit(&json!({"ph": "X", "cat": "call", "name": "call", "pid": pid(src), "tid": tid, "ts": us(f.start), "dur": 0,
                                "bind_id": id, "flow_out": true, "args": {"call": name}}))?;
                            begin["bind_id"] = json!(id);
                            begin["flow_in"] = json!(true);
                        }
                        self.emit(&begin)?;
                        self.emit(&json!({"ph": "e", "cat": cat, "name": name, "id": hex, "pid": pid(src), "tid": tid, "ts": us(f.end)}))?;
                    }
                }
            }
            Body::Log(l) => {
                let tid = cx.log_invocation.and_then(|a| self.tid_of(src, a.invocation.id)).unwrap_or(LOGS_TID);
                let args = json!({"origin": l.origin, "stream": l.stream.name(), "text": l.text,
                    "invocation": cx.log_invocation.map(|a| a.invocation.id), "attribution": cx.log_invocation.map(|a| a.method.name())});
                self.emit(&json!({"ph": "i", "s": "t", "cat": "log", "name": short(&l.text), "pid": pid(src), "tid": tid, "ts": us(record.ts), "args": args}))?;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<String> {
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()?;
        Ok(format!("{} trace events written", self.events))
    }
}
