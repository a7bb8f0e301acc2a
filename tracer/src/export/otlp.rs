//! `--format otlp`: OpenTelemetry spans as OTLP/JSON (an
//! `ExportTraceServiceRequest`: `{"resourceSpans": [...]}`), the form
//! Jaeger, Grafana Tempo and every OpenTelemetry collector take.
//!
//! - A span per invocation: kind SERVER, named after its lambda, with
//!   `faas.invocation_id`, `faas.trigger=http`, `faas.name`, the HTTP
//!   method, path and status.
//! - A child span per downstream call: kind CLIENT, its invocation's span
//!   as parent, with `db.system.name`, `db.query.text` (as recorded, so
//!   redacted), `db.operation.name`, `server.address`/`server.port`, and
//!   for HTTP `http.request.method`, `url.path`,
//!   `http.response.status_code`. Calls tied to no invocation are root
//!   spans of their own trace.
//! - Trace ids: the invocation's recorded W3C trace id (from its
//!   `traceparent`) where present, else one derived from the source,
//!   invocation id and trace anchor. Span ids are derived the same way,
//!   so exporting twice gives the same ids.
//!
//! Spans are written in batches (a `resourceSpans` entry per batch, its
//! resource naming the source), so memory is one batch; with
//! `--otlp-endpoint` each batch is also POSTed as its own request.

use super::facts::{host_port, http_path, Facts, Role};
use super::otlp_push::Pusher;
use super::{Context, Sink};
use format::{Body, Header, Record};
use serde::Serialize;
use std::io::Write;

/// Spans per batch (per `resourceSpans` entry, per POST).
const BATCH: usize = 2048;
const KIND_SERVER: u8 = 2;
const KIND_CLIENT: u8 = 3;
const STATUS_ERROR: u8 = 2;

pub struct Otlp {
    out: Option<Box<dyn Write>>,
    push: Option<Pusher>,
    header: Header,
    batch: Vec<Span>,
    batch_src: u16,
    first: bool,
    spans: u64,
    batches: u64,
}

impl Otlp {
    pub fn new(mut out: Option<Box<dyn Write>>, push: Option<Pusher>, header: &Header) -> anyhow::Result<Otlp> {
        if let Some(o) = out.as_mut() {
            o.write_all(b"{\"resourceSpans\":[\n")?;
        }
        Ok(Otlp { out, push, header: header.clone(), batch: Vec::new(), batch_src: 0, first: true, spans: 0, batches: 0 })
    }

    fn flush_batch(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let spans = std::mem::take(&mut self.batch);
        let source = self.header.sources.get(self.batch_src as usize);
        let name = source.map_or("oltrace", |s| s.name.as_str());
        let host = source.map_or(self.header.host.as_str(), |s| s.host.as_str());
        let resource = ResourceSpans {
            resource: Resource { attributes: vec![attr("service.name", name), attr("host.name", host)] },
            scope_spans: [ScopeSpans { scope: Scope { name: "oltrace", version: env!("CARGO_PKG_VERSION") }, spans: &spans }],
        };
        if let Some(o) = self.out.as_mut() {
            if !self.first {
                o.write_all(b",\n")?;
            }
            serde_json::to_writer(&mut *o, &resource)?;
        }
        self.first = false;
        if let Some(p) = self.push.as_mut() {
            p.post(&Request { resource_spans: [&resource] })?;
        }
        self.batches += 1;
        Ok(())
    }

    fn add(&mut self, src: u16, span: Span) -> anyhow::Result<()> {
        if src != self.batch_src || self.batch.len() >= BATCH {
            self.flush_batch()?;
            self.batch_src = src;
        }
        self.batch.push(span);
        self.spans += 1;
        Ok(())
    }

    fn unix(&self, ts: u64) -> String {
        (self.header.anchor_unix_ns + ts).to_string()
    }

    /// The trace id of an invocation: its recorded one, else derived.
    fn trace_id(&self, src: u16, id: u64, recorded: Option<&str>) -> String {
        match recorded {
            Some(t) if t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()) && t != "0".repeat(32) => t.to_ascii_lowercase(),
            _ => format!("{:016x}{:016x}", mix(self.header.anchor_unix_ns ^ src as u64), mix(id ^ 0x5eed)),
        }
    }
}

/// A span id from its parts: a 64-bit mix (splitmix64), never zero.
fn span_id(parts: &[u64]) -> String {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for p in parts {
        h = mix(h ^ p);
    }
    format!("{:016x}", h.max(1))
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn attr(key: &'static str, value: &str) -> Attr {
    Attr { key, value: AttrValue::String(value.to_owned()) }
}

fn int_attr(key: &'static str, value: i64) -> Attr {
    // OTLP/JSON writes 64-bit integers as strings.
    Attr { key, value: AttrValue::Int(value.to_string()) }
}

// The OTLP/JSON shapes, serialised straight from these types (no
// intermediate JSON values: the export's speed is in this).

#[derive(Serialize)]
struct Request<'a> {
    #[serde(rename = "resourceSpans")]
    resource_spans: [&'a ResourceSpans<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans<'a> {
    resource: Resource,
    scope_spans: [ScopeSpans<'a>; 1],
}

#[derive(Serialize)]
struct Resource {
    attributes: Vec<Attr>,
}

#[derive(Serialize)]
struct ScopeSpans<'a> {
    scope: Scope,
    spans: &'a [Span],
}

#[derive(Serialize)]
struct Scope {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Span {
    trace_id: String,
    span_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_span_id: Option<String>,
    name: String,
    kind: u8,
    start_time_unix_nano: String,
    end_time_unix_nano: String,
    attributes: Vec<Attr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
}

#[derive(Serialize)]
struct Attr {
    key: &'static str,
    value: AttrValue,
}

#[derive(Serialize)]
enum AttrValue {
    #[serde(rename = "stringValue")]
    String(String),
    #[serde(rename = "intValue")]
    Int(String),
}

#[derive(Serialize)]
struct Status {
    code: u8,
    message: String,
}

impl Sink for Otlp {
    fn record(&mut self, record: &Record, cx: &Context<'_>) -> anyhow::Result<()> {
        let Body::Exchange(e) = &record.body else { return Ok(()) };
        let src = record.src;
        let f = Facts::of(record.ts, e, cx.seen);
        let mut attrs = Vec::new();
        let (host, port) = host_port(f.server);
        let path = http_path(&e.summary);
        let (trace_id, span, parent, kind, name) = match (f.role, f.invocation) {
            (Role::Invocation, Some(j)) => {
                let inv = &j.invocation;
                let trace = self.trace_id(src, inv.id, inv.trace_id.as_deref());
                attrs.push(attr("faas.invocation_id", &inv.request_id.as_deref().map_or_else(|| inv.id.to_string(), str::to_owned)));
                attrs.push(attr("faas.trigger", "http"));
                attrs.push(attr("faas.name", &inv.lambda));
                attrs.push(int_attr("oltrace.invocation", inv.id as i64));
                attrs.push(attr("oltrace.platform", &inv.platform));
                (trace.clone(), span_id(&[src as u64, inv.id, 1]), None, KIND_SERVER, inv.lambda.to_string())
            }
            (_, inv) => {
                let (trace, parent) = match inv {
                    Some(j) => {
                        let i = &j.invocation;
                        (self.trace_id(src, i.id, i.trace_id.as_deref()), Some(span_id(&[src as u64, i.id, 1])))
                    }
                    // A call of no invocation: a trace of its own.
                    None => (format!("{:016x}{:016x}", mix(self.header.anchor_unix_ns ^ src as u64 ^ 0xca11), mix(e.conn.rotate_left(32) ^ record.ts)), None),
                };
                if let Some(j) = inv {
                    attrs.push(attr("oltrace.attribution", j.method.map_or("own", |m| m.name())));
                    attrs.push(attr("faas.name", &j.invocation.lambda));
                }
                match f.protocol {
                    format::Protocol::Postgres | format::Protocol::Redis | format::Protocol::Mysql => {
                        let system = match f.protocol {
                            format::Protocol::Postgres => "postgresql",
                            format::Protocol::Redis => "redis",
                            _ => "mysql",
                        };
                        attrs.push(attr("db.system.name", system));
                        if !f.statement.is_empty() {
                            attrs.push(attr("db.query.text", &f.statement));
                        }
                        if !f.operation.is_empty() {
                            attrs.push(attr("db.operation.name", &f.operation));
                        }
                        attrs.push(attr("db.query.summary", &f.fingerprint));
                        if let Some(rows) = f.rows {
                            attrs.push(int_attr("db.response.returned_rows", rows as i64));
                        }
                    }
                    _ => {}
                }
                let name = if f.fingerprint.is_empty() { f.operation.clone() } else { f.fingerprint.clone() };
                (trace, span_id(&[src as u64, e.conn, record.ts, 2]), parent, KIND_CLIENT, name)
            }
        };
        if !host.is_empty() {
            attrs.push(attr("server.address", host));
        }
        if let Some(p) = port {
            attrs.push(int_attr("server.port", p as i64));
        }
        if let format::ExchangeSummary::Http(h) = &e.summary {
            attrs.push(attr("http.request.method", &h.method));
            if let Some(p) = path {
                attrs.push(attr("url.path", p));
            }
            if let Some(s) = h.status {
                attrs.push(int_attr("http.response.status_code", s as i64));
            }
        }
        attrs.push(attr("oltrace.route", f.route));
        let status = match (&f.error, f.answered) {
            (Some(err), _) => Some(Status { code: STATUS_ERROR, message: err.clone() }),
            (None, false) => Some(Status { code: STATUS_ERROR, message: "no response".into() }),
            _ => None,
        };
        let span = Span {
            trace_id,
            span_id: span,
            parent_span_id: parent,
            name,
            kind,
            start_time_unix_nano: self.unix(f.start),
            end_time_unix_nano: self.unix(f.end),
            attributes: attrs,
            status,
        };
        self.add(src, span)
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<String> {
        self.flush_batch()?;
        if let Some(o) = self.out.as_mut() {
            o.write_all(b"\n]}\n")?;
            o.flush()?;
        }
        let pushed = self.push.as_ref().map(|p| format!("; {} requests sent to {}", p.requests, p.url)).unwrap_or_default();
        Ok(format!("{} spans in {} batches{pushed}", self.spans, self.batches))
    }
}
