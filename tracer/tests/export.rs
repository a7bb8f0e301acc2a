//! `oltrace export`, each format checked by a real reader of it:
//!
//! - perfetto: a Trace Event checker written here (slices nest per thread,
//!   async slices have both ends, each flow arrow goes from its
//!   invocation's slice to its call's slice as Perfetto's JSON importer
//!   binds them, times in microseconds). Perfetto's own trace processor is
//!   not run: the `perfetto` Python package fetches the
//!   `trace_processor_shell` binary from Google's servers at run time, and
//!   tests here run offline;
//! - otlp: the official protobuf definitions (`opentelemetry-proto`'s
//!   `ExportTraceServiceRequest` through `json_format.Parse`), parents and
//!   recorded trace ids; `--otlp-endpoint` against a collector stub;
//! - har: a JSON-schema check of HAR 1.2 (python `jsonschema`);
//! - parquet: DuckDB reads the tables, and the SQL of docs/at-scale.md
//!   gives olanalyze's numbers on the same trace;
//! - bad input: a torn trace exports its intact part (exit 1); an unknown
//!   format or an unwritable output is exit 2 with a clear message.
//!
//! The recordings are real: the test worker under `oltrace wrap`
//! (PostgreSQL on 127.0.0.1:5432 and Redis on 6379), and the demo
//! application's `traces/demo/demo.mp`.

mod common;

use common::worker;
use format::{Body, ExchangeSummary, Reader, Record};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn oltrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oltrace")).args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn export(format: &str, trace: &Path, out: &Path) -> String {
    let o = oltrace(&["export", "--format", format, s(trace), "-o", s(out)]);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "export {format}: {stderr}");
    stderr
}

fn demo_trace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces/demo/demo.mp")
}

fn python(script: &str, args: &[&str]) -> String {
    let o = Command::new("python3").arg("-c").arg(script).args(args).output().unwrap();
    assert!(o.status.success(), "python: {}\n{}", String::from_utf8_lossy(&o.stderr), String::from_utf8_lossy(&o.stdout));
    String::from_utf8(o.stdout).unwrap()
}

fn records(trace: &Path) -> Vec<Record> {
    Reader::open(trace).unwrap().map(|r| r.unwrap()).collect()
}

/// (invocation id, request ns) of every invocation's own exchange.
fn invocation_latencies(records: &[Record]) -> HashMap<u64, u64> {
    let mut view = format::view::View::default();
    let mut out = HashMap::new();
    for r in records {
        let seen = view.observe(r);
        if let (Body::Exchange(e), Some(j)) = (&r.body, &seen.invocation) {
            if j.method.is_none() {
                out.insert(j.invocation.id, e.response_last.unwrap() - r.ts);
            }
        }
    }
    out
}

#[test]
fn perfetto_slices_nest_flows_close_and_times_are_microseconds() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("w.mp");
    worker::record(&trace, "worker-a", "p-");
    let json = dir.path().join("w.json");
    export("perfetto", &trace, &json);
    let doc: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let events = doc["traceEvents"].as_array().unwrap();

    // Metadata: the source is a process, each lambda a thread.
    let names: HashSet<(&str, &str)> = events
        .iter()
        .filter(|e| e["ph"] == "M")
        .map(|e| (e["name"].as_str().unwrap(), e["args"]["name"].as_str().unwrap()))
        .collect();
    assert!(names.contains(&("process_name", "worker-a")), "{names:?}");
    for lambda in ["propagate", "silent", "call", "pair-silent", "pair-propagate"] {
        assert!(names.contains(&("thread_name", format!("lambda {lambda}").as_str())), "{lambda}: {names:?}");
    }
    // The overlapping pairs need a second lane of their lambda.
    assert!(names.contains(&("thread_name", "lambda pair-silent #2")), "{names:?}");

    // Every X slice nests within its thread: sorted by start, each one
    // either starts after the open one ends or ends within it.
    let mut by_thread: HashMap<(u64, u64), Vec<(f64, f64)>> = HashMap::new();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        by_thread.entry(key).or_default().push((e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap()));
    }
    let mut slices = 0;
    for (thread, mut xs) in by_thread {
        xs.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut stack: Vec<f64> = Vec::new();
        for (ts, dur) in xs {
            slices += 1;
            while stack.last().is_some_and(|end| *end <= ts) {
                stack.pop();
            }
            if let Some(end) = stack.last() {
                assert!(ts + dur <= *end, "thread {thread:?}: a slice at {ts} (+{dur}) crosses the end {end} of its parent");
            }
            stack.push(ts + dur);
        }
    }
    let invocations: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X" && e["cat"] == "invocation").collect();
    assert_eq!(invocations.len(), 8, "one slice per invocation");
    assert!(slices > 8, "and the arrows' zero-length sources: {slices}");

    // Every async slice has both ends.
    let ids = |ph: &str| -> Vec<String> {
        let mut v: Vec<String> = events.iter().filter(|e| e["ph"] == ph).map(|e| e["id"].to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(ids("b"), ids("e"), "b/e pairs");
    let asyncs = ids("b").len();

    // Every flow goes from its invocation to its call, as Perfetto's JSON
    // importer binds v2 flows: the `flow_out` end to the `X` slice that
    // carries it (on a thread track), the `flow_in` end to the async slice
    // its `b` opens. So the two ends are different slices: the source sits
    // on the invocation's thread within the invocation's slice, and the
    // destination is a call of that invocation. v1 `s`/`f` events would
    // both bind to the invocation's slice (thread tracks only): none.
    assert!(!events.iter().any(|e| e["ph"] == "s" || e["ph"] == "f" || e["ph"] == "t"), "no v1 flow events");
    let mut sources: HashMap<u64, usize> = HashMap::new();
    let mut sinks: HashMap<u64, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let Some(bind) = e["bind_id"].as_u64() else { continue };
        let (out, inn) = (e["flow_out"] == true, e["flow_in"] == true);
        assert!(out != inn, "a flow end is either out or in: {e}");
        if out {
            assert_eq!(e["ph"], "X", "a flow leaves from a complete slice: {e}");
            assert!(sources.insert(bind, i).is_none(), "flow {bind} leaves twice");
        } else {
            assert_eq!(e["ph"], "b", "a flow arrives at a call's async slice: {e}");
            assert!(sinks.insert(bind, i).is_none(), "flow {bind} arrives twice");
        }
    }
    let mut keys: Vec<u64> = sources.keys().copied().collect();
    keys.sort();
    let mut sink_keys: Vec<u64> = sinks.keys().copied().collect();
    sink_keys.sort();
    assert_eq!(keys, sink_keys, "every flow has both ends");
    let flows = keys.len();
    for bind in keys {
        let (from, to) = (&events[sources[&bind]], &events[sinks[&bind]]);
        assert_ne!(sources[&bind], sinks[&bind]);
        let invocation = to["args"]["invocation"].as_u64().expect("the call names its invocation");
        let owner = invocations
            .iter()
            .find(|x| x["args"]["invocation"] == invocation && x["pid"] == from["pid"])
            .unwrap_or_else(|| panic!("flow {bind}: no slice of invocation {invocation}"));
        assert_eq!(owner["tid"], from["tid"], "flow {bind} leaves from its invocation's thread");
        let (ts, start, dur) = (from["ts"].as_f64().unwrap(), owner["ts"].as_f64().unwrap(), owner["dur"].as_f64().unwrap());
        assert!(start <= ts && ts <= start + dur, "flow {bind} leaves from within invocation {invocation}'s slice: {ts} not in {start}+{dur}");
        assert_eq!(from["dur"].as_f64(), Some(0.0), "the source is a zero-length slice, so it nests anywhere");
        // The importer sorts by time, keeping file order at equal times: the
        // source must come first, or the arrow's end finds no start.
        let to_ts = to["ts"].as_f64().unwrap();
        assert!(ts < to_ts || (ts == to_ts && sources[&bind] < sinks[&bind]), "flow {bind}: source after destination");
    }
    assert!(flows >= 8 * 3, "each invocation has flows to its calls (2 queries and an INCR at least): {flows}");
    assert!(asyncs >= flows, "{asyncs} calls, {flows} flows");

    // Times are microseconds: each invocation's slice lasts its exchange's
    // latency in ns / 1000.
    let latencies = invocation_latencies(&records(&trace));
    for e in &invocations {
        let id = e["args"]["invocation"].as_u64().unwrap();
        let want = latencies[&id] as f64 / 1000.0;
        let got = e["dur"].as_f64().unwrap();
        assert!((got - want).abs() < 0.002, "invocation {id}: dur {got} us, latency {want} us");
    }
    // The worker's log lines are instant events on their invocation's track.
    let logs: Vec<&Value> = events.iter().filter(|e| e["ph"] == "i").collect();
    assert!(logs.iter().filter(|e| e["tid"].as_u64().unwrap() >= 10).count() >= 8, "{logs:?}");
}

/// A collector stub: answers each POST 200 and keeps its body.
fn collector() -> (String, std::sync::mpsc::Receiver<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0usize;
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            assert!(request_line.starts_with("POST /v1/traces "), "{request_line}");
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            tx.send(body).unwrap();
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        }
    });
    (format!("http://{addr}"), rx)
}

const OTLP_CHECK: &str = r#"
import base64, json, sys
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
req = json_format.Parse(open(sys.argv[1]).read(), ExportTraceServiceRequest())
# OTLP/JSON writes ids in hex, which protobuf's JSON mapping reads as
# base64: encode them back to compare the text.
def ids(b):
    return base64.b64encode(b).decode()
out = []
for rs in req.resource_spans:
    service = [a.value.string_value for a in rs.resource.attributes if a.key == "service.name"][0]
    for ss in rs.scope_spans:
        for s in ss.spans:
            attrs = {a.key: (a.value.string_value or a.value.int_value) for a in s.attributes}
            out.append({"service": service, "trace": ids(s.trace_id), "span": ids(s.span_id),
                        "parent": ids(s.parent_span_id), "kind": s.kind, "name": s.name,
                        "start": s.start_time_unix_nano, "end": s.end_time_unix_nano, "attrs": attrs})
print(json.dumps(out))
"#;

#[test]
fn otlp_parses_with_the_official_protobufs_and_reaches_a_collector() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("w.mp");
    worker::record(&trace, "worker-o", "o-");
    let file = dir.path().join("spans.json");
    export("otlp", &trace, &file);
    let spans: Vec<Value> = serde_json::from_str(&python(OTLP_CHECK, &[s(&file)])).unwrap();
    let servers: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 2).collect();
    assert_eq!(servers.len(), 8, "a SERVER span per invocation");
    assert!(spans.iter().all(|s| s["service"] == "worker-o"));
    let by_span: HashMap<&str, &Value> = servers.iter().map(|s| (s["span"].as_str().unwrap(), *s)).collect();
    let request_ids: HashSet<String> = worker::requests("o-").into_iter().map(|r| r.1).collect();
    for s in &servers {
        assert_eq!(s["attrs"]["faas.trigger"], "http");
        assert!(request_ids.contains(s["attrs"]["faas.invocation_id"].as_str().unwrap()), "{s}");
        assert_eq!(s["parent"], "");
    }
    // The gateway's traceparent is kept as the trace id.
    let gw = servers.iter().find(|s| s["attrs"]["faas.invocation_id"] == "o-seq-gateway").unwrap();
    assert_eq!(gw["trace"], worker::GATEWAY_TRACE);
    // Each attributed call's parent is its invocation's span, in its trace,
    // within its time.
    let mut children = 0;
    for c in spans.iter().filter(|s| s["kind"] == 3 && s["parent"] != "") {
        let parent = by_span.get(c["parent"].as_str().unwrap()).unwrap_or_else(|| panic!("no parent span for {c}"));
        assert_eq!(c["trace"], parent["trace"]);
        assert_eq!(c["attrs"]["faas.name"], parent["name"]);
        assert!(c["start"].as_u64() >= parent["start"].as_u64() && c["end"].as_u64() <= parent["end"].as_u64(), "{c} in {parent}");
        children += 1;
    }
    // Three calls per invocation, but the overlapping pair that does not
    // propagate its traceparent is tied to no invocation (never a guess).
    assert!(children >= 6 * 3, "{children} child spans");
    let pg: Vec<&Value> = spans.iter().filter(|s| s["attrs"]["db.system.name"] == "postgresql").collect();
    assert!(!pg.is_empty());
    for p in &pg {
        assert_eq!(p["attrs"]["server.port"], 5432, "{p}");
    }
    // Each invocation's two queries hold its request id in their SQL.
    let queries = pg.iter().filter(|p| p["attrs"]["db.query.text"].as_str().is_some_and(|q| q.contains("o-seq-") || q.contains("o-pair-"))).count();
    assert_eq!(queries, 16, "{pg:?}");
    assert!(pg.iter().filter(|p| p["attrs"]["db.query.text"].is_string()).all(|p| p["attrs"]["db.operation.name"].as_str().is_some_and(|o| !o.is_empty())));
    let outbound = spans.iter().find(|s| s["kind"] == 3 && s["attrs"]["url.path"] == "/health").expect("the call lambda's outbound GET");
    assert_eq!(outbound["attrs"]["http.request.method"], "GET");
    assert_eq!(outbound["attrs"]["http.response.status_code"], 200);

    // Pushed to a collector: the same spans.
    let (url, bodies) = collector();
    let o = oltrace(&["export", "--format", "otlp", s(&trace), "--otlp-endpoint", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let mut pushed = Vec::new();
    while let Ok(body) = bodies.try_recv() {
        let f = dir.path().join(format!("post{}.json", pushed.len()));
        std::fs::write(&f, body).unwrap();
        let spans: Vec<Value> = serde_json::from_str(&python(OTLP_CHECK, &[s(&f)])).unwrap();
        pushed.extend(spans);
    }
    let ids = |v: &[Value]| -> Vec<(String, String)> {
        let mut ids: Vec<(String, String)> = v.iter().map(|s| (s["span"].as_str().unwrap().into(), s["parent"].as_str().unwrap().into())).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&pushed), ids(&spans), "the collector got the spans of the file");
    // A collector that is not there: exit 2, said clearly.
    let o = oltrace(&["export", "--format", "otlp", s(&trace), "--otlp-endpoint", "http://127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot connect"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// HAR 1.2's required fields and types (from the spec), as a JSON schema.
const HAR_SCHEMA: &str = r##"{
  "type": "object", "required": ["log"],
  "properties": {"log": {"type": "object", "required": ["version", "creator", "entries"],
    "properties": {
      "version": {"const": "1.2"},
      "creator": {"type": "object", "required": ["name", "version"]},
      "entries": {"type": "array", "items": {"$ref": "#/$defs/entry"}}}}},
  "$defs": {
    "nv": {"type": "array", "items": {"type": "object", "required": ["name", "value"],
           "properties": {"name": {"type": "string"}, "value": {"type": "string"}}}},
    "entry": {"type": "object", "required": ["startedDateTime", "time", "request", "response", "cache", "timings"],
      "properties": {
        "startedDateTime": {"type": "string", "format": "date-time",
                            "pattern": "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$"},
        "time": {"type": "number", "minimum": 0},
        "request": {"type": "object", "required": ["method", "url", "httpVersion", "cookies", "headers", "queryString", "headersSize", "bodySize"],
          "properties": {"method": {"type": "string"}, "url": {"type": "string", "pattern": "^https?://"},
            "cookies": {"type": "array"}, "headers": {"$ref": "#/$defs/nv"}, "queryString": {"$ref": "#/$defs/nv"},
            "headersSize": {"type": "integer"}, "bodySize": {"type": "integer"},
            "postData": {"type": "object", "required": ["mimeType"]}}},
        "response": {"type": "object", "required": ["status", "statusText", "httpVersion", "cookies", "headers", "content", "redirectURL", "headersSize", "bodySize"],
          "properties": {"status": {"type": "integer"}, "statusText": {"type": "string"}, "headers": {"$ref": "#/$defs/nv"},
            "content": {"type": "object", "required": ["size", "mimeType"], "properties": {"size": {"type": "integer"}, "mimeType": {"type": "string"}}},
            "redirectURL": {"type": "string"}, "headersSize": {"type": "integer"}, "bodySize": {"type": "integer"}}},
        "cache": {"type": "object"},
        "timings": {"type": "object", "required": ["send", "wait", "receive"],
          "properties": {"send": {"type": "number", "minimum": -1}, "wait": {"type": "number", "minimum": -1}, "receive": {"type": "number", "minimum": -1}}}
      },
      "patternProperties": {"^[^_]": true}
    }
  }
}"##;

#[test]
fn har_validates_against_the_har_1_2_schema() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("w.mp");
    worker::record(&trace, "worker-h", "h-");
    let har = dir.path().join("w.har");
    export("har", &trace, &har);
    let schema = dir.path().join("har.schema.json");
    std::fs::write(&schema, HAR_SCHEMA).unwrap();
    let check = r#"
import json, sys, jsonschema
har = json.load(open(sys.argv[1]))
jsonschema.validate(har, json.load(open(sys.argv[2])), format_checker=jsonschema.FormatChecker())
print(len(har["log"]["entries"]))
"#;
    let n: usize = python(check, &[s(&har), s(&schema)]).trim().parse().unwrap();
    let http = records(&trace).iter().filter(|r| matches!(&r.body, Body::Exchange(e) if matches!(e.summary, ExchangeSummary::Http(_)))).count();
    assert_eq!(n, http, "an entry per HTTP exchange");
    let doc: Value = serde_json::from_slice(&std::fs::read(&har).unwrap()).unwrap();
    let entries = doc["log"]["entries"].as_array().unwrap();
    let invocations: Vec<&Value> = entries.iter().filter(|e| e["_role"] == "invocation").collect();
    assert_eq!(invocations.len(), 8);
    for e in &invocations {
        // Headers and bodies from the recorded bytes, timings add up.
        let rid = e["request"]["headers"].as_array().unwrap().iter().find(|h| h["name"].as_str().unwrap().eq_ignore_ascii_case("x-request-id"));
        assert!(rid.is_some_and(|h| h["value"].as_str().unwrap().starts_with("h-")), "{e}");
        assert_eq!(e["response"]["status"], 200);
        assert!(e["response"]["content"]["text"].as_str().unwrap().contains("rows=1"), "{e}");
        assert_eq!(e["request"]["postData"]["text"], "{}");
        let t = &e["timings"];
        let sum = t["send"].as_f64().unwrap() + t["wait"].as_f64().unwrap() + t["receive"].as_f64().unwrap();
        assert!((sum - e["time"].as_f64().unwrap()).abs() < 1e-6);
        assert!(e["request"]["url"].as_str().unwrap().starts_with("http://worker/run/"), "{e}");
    }
    let outbound = entries.iter().find(|e| e["_role"] == "call").expect("the outbound call");
    assert_eq!(outbound["_lambda"], "call");
    assert!(outbound["request"]["url"].as_str().unwrap().ends_with("/health"));
    assert_eq!(outbound["response"]["content"]["text"], "ok\n");
}

/// The ```sql blocks of docs/at-scale.md, by their first line's name
/// (`-- duckdb: views`, `-- recipe: calls_per_invocation`, ...).
fn recipes() -> HashMap<String, String> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/at-scale.md")).unwrap();
    let mut out = HashMap::new();
    for block in doc.split("```sql\n").skip(1) {
        let sql = block.split("```").next().unwrap();
        if let Some(name) = sql.lines().next().and_then(|l| l.strip_prefix("-- ")) {
            out.insert(name.trim().to_owned(), sql.to_owned());
        }
    }
    out
}

/// Runs the docs' DuckDB views over `fleet` = `dir`, then `sql`.
const DUCKDB_RUN: &str = r#"
import duckdb, json, sys
con = duckdb.connect()
con.execute(sys.argv[1].replace("'fleet/", "'" + sys.argv[3] + "/"))
rel = con.sql(sys.argv[2])
print(json.dumps([dict(zip(rel.columns, row)) for row in rel.fetchall()], default=float))
"#;

fn duckdb(views: &str, sql: &str, dir: &Path) -> Vec<Value> {
    serde_json::from_str(&python(DUCKDB_RUN, &[views, sql, s(dir)])).unwrap()
}

#[test]
fn parquet_answers_the_documented_sql_as_olanalyze_does() {
    let dir = tempfile::tempdir().unwrap();
    // The layout the docs use: one folder per worker under fleet/.
    let out = dir.path().join("demo-worker");
    let stderr = export("parquet", &demo_trace(), &out);
    assert!(stderr.contains("exchanges"), "{stderr}");
    let analysis = analyzer::run(&analyzer::Config { traces: vec![demo_trace()], ..Default::default() }).unwrap();
    let analysis = serde_json::to_value(&analysis).unwrap();
    let r = recipes();
    for name in ["duckdb: views", "spark: views", "recipe: call_classes", "recipe: calls_per_invocation", "recipe: lambda_latency", "recipe: n_plus_one", "recipe: time_breakdown"] {
        assert!(r.contains_key(name), "docs/at-scale.md has the {name} block");
    }
    let views = &r["duckdb: views"];
    let duckdb = |sql: &str| duckdb(views, sql, dir.path());

    // The call-class table: every class's count, and its mean.
    let classes = duckdb(&r["recipe: call_classes"]);
    let rows = analysis["classes"]["rows"].as_array().unwrap();
    assert!(rows.len() >= 5);
    for row in rows {
        let key = row["key"].as_str().unwrap();
        let got = classes.iter().find(|c| c["fingerprint"] == key).unwrap_or_else(|| panic!("class {key} missing: {classes:?}"));
        assert_eq!(got["calls"], row["count"], "{key}");
        let (a, b) = (got["mean_ms"].as_f64().unwrap(), row["mean_ms"].as_f64().unwrap());
        assert!((a - b).abs() <= b * 0.01 + 0.001, "{key}: mean {a} vs olanalyze {b}");
    }
    assert_eq!(classes.iter().map(|c| c["calls"].as_u64().unwrap()).sum::<u64>(), analysis["classes"]["calls"].as_u64().unwrap());

    // Calls per invocation per lambda and protocol: the mean.
    let per = duckdb(&r["recipe: calls_per_invocation"]);
    for l in analysis["lambdas"].as_array().unwrap() {
        for c in l["calls"].as_array().unwrap() {
            let got = per.iter().find(|p| p["lambda_name"] == l["lambda"] && p["protocol"] == c["protocol"]);
            let mean = got.map_or(0.0, |g| g["mean_calls"].as_f64().unwrap());
            assert!((mean - c["mean"].as_f64().unwrap()).abs() < 1e-6, "{} {}: {mean} vs {}", l["lambda"], c["protocol"], c["mean"]);
        }
    }

    // Invocations and latency p50 per lambda, within histogram precision.
    let lat = duckdb(&r["recipe: lambda_latency"]);
    for l in analysis["lambdas"].as_array().unwrap() {
        let got = lat.iter().find(|x| x["lambda_name"] == l["lambda"]).unwrap();
        assert_eq!(got["invocations"], l["invocations"]);
        let (a, b) = (got["p50_ms"].as_f64().unwrap(), l["latency_ms"]["p50"].as_f64().unwrap());
        assert!((a - b).abs() <= b * 0.01 + 0.01, "{}: p50 {a} vs olanalyze {b}", l["lambda"]);
    }

    // N+1: the blog, with its planted pattern, and no other lambda.
    let n1 = duckdb(&r["recipe: n_plus_one"]);
    let got: HashMap<&str, u64> = n1.iter().map(|x| (x["lambda_name"].as_str().unwrap(), x["invocations"].as_u64().unwrap())).collect();
    let want: HashMap<&str, u64> = analysis["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["pattern"] == "n_plus_one")
        .map(|p| (p["lambda"].as_str().unwrap(), p["invocations"].as_u64().unwrap()))
        .collect();
    assert!(want.contains_key("blog"), "the demo's planted N+1");
    assert_eq!(got, want, "{n1:?}");

    // The time breakdown runs and covers every lambda.
    let breakdown = duckdb(&r["recipe: time_breakdown"]);
    assert_eq!(breakdown.iter().map(|x| x["lambda_name"].as_str().unwrap()).collect::<HashSet<_>>().len(), analysis["lambdas"].as_array().unwrap().len());

    // The other tables: every invocation, connection and log line.
    let counts = duckdb("select (select count(*) from invocations) i, (select count(*) from connections) c, (select count(*) from logs) l");
    let recs = records(&demo_trace());
    let kind = |k: &str| recs.iter().filter(|r| r.body.kind() == k).count() as u64;
    assert_eq!(counts[0]["i"].as_u64().unwrap(), kind("invocation"));
    assert_eq!(counts[0]["c"].as_u64().unwrap(), kind("conn_open"));
    assert_eq!(counts[0]["l"].as_u64().unwrap(), kind("log"));
}

#[test]
fn bad_input_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    // A torn trace: the intact part is exported, the damage reported, exit 1.
    let full = std::fs::read(demo_trace()).unwrap();
    let torn = dir.path().join("torn.mp");
    std::fs::write(&torn, &full[..full.len() * 2 / 3]).unwrap();
    let out = dir.path().join("torn.jsonl");
    let o = oltrace(&["export", "--format", "jsonl", s(&torn), "-o", s(&out)]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("damaged") && stderr.contains("torn"), "{stderr}");
    let lines = std::fs::read_to_string(&out).unwrap().lines().count();
    let all = records(&demo_trace()).len();
    assert!(lines > all / 3 && lines < all, "{lines} of {all} records exported");
    // jsonl is what cat prints.
    let cat = oltrace(&["cat", s(&demo_trace())]);
    let o = oltrace(&["export", "-f", "jsonl", s(&demo_trace()), "-o", "-"]);
    assert_eq!(o.stdout, cat.stdout);

    // An unknown format: exit 2, naming the formats there are.
    let o = oltrace(&["export", "--format", "pdf", s(&demo_trace()), "-o", s(&out)]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr.contains("pdf") && stderr.contains("perfetto") && stderr.contains("parquet"), "{stderr}");
    // An unwritable output: exit 2, naming it.
    for format in ["perfetto", "parquet"] {
        let o = oltrace(&["export", "--format", format, s(&demo_trace()), "-o", "/proc/nope/out"]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("cannot write /proc/nope/out") && stderr.contains("-o"), "{stderr}");
    }
    let o = oltrace(&["export", "--format", "parquet", s(&demo_trace()), "-o", "-"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give -o FOLDER"));
    // No output at all.
    let o = oltrace(&["export", "--format", "har", s(&demo_trace())]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give -o"));
}
