//! A deterministic generator of realistic traces, until (and beside) real
//! recordings: for tests, benchmarks and the sample in `traces/`.
//!
//! [`Mix::Serverless`] plays an OpenLambda-style worker: each invocation is
//! an HTTP `POST /run/<lambda>` on a keep-alive gateway connection, whose
//! handler runs a PostgreSQL query returning a few rows, a Redis GET and
//! SET, and writes a log line, then answers with a small JSON body.
//! [`Mix::SmallHttp`] is nothing but small keep-alive HTTP GETs, the
//! traffic the trace-vs-pcap size comparison uses. The message bytes are
//! what real clients and servers send (HTTP/1.1, PostgreSQL simple query
//! protocol, RESP2), and the decoded summaries match them.

use crate::bytes::{BStr, Payload};
use crate::decoded::*;
use crate::record::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    Serverless,
    SmallHttp,
}

#[derive(Clone, Copy, Debug)]
pub struct SynthOptions {
    pub seed: u64,
    pub mix: Mix,
    /// Mean gap between invocations, in nanoseconds.
    pub mean_gap_ns: u64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions { seed: 1, mix: Mix::Serverless, mean_gap_ns: 2_000_000 }
    }
}

const LAMBDAS: &[&str] = &["resize", "checkout", "profile", "search", "notify"];
const GATEWAY_CONNS: u64 = 4;
const PG_CONN: u64 = 100;
const REDIS_CONN: u64 = 200;

/// An endless iterator of records; take as many as you need.
pub struct Synth {
    opts: SynthOptions,
    rng: u64,
    now: u64,
    invocation: u64,
    queue: std::collections::VecDeque<Record>,
    opened: bool,
    offsets: std::collections::HashMap<(u64, Direction), u64>,
}

impl Synth {
    pub fn new(opts: SynthOptions) -> Synth {
        Synth {
            opts,
            rng: opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            now: 1_000_000,
            invocation: 0,
            queue: Default::default(),
            opened: false,
            offsets: Default::default(),
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*: small, fast, and deterministic across platforms.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn push(&mut self, ts: u64, body: Body) {
        self.queue.push_back(Record { ts, src: 0, body });
    }

    fn open_all(&mut self) {
        let ts = self.now;
        let mut conns = vec![];
        for c in 0..GATEWAY_CONNS {
            conns.push((c, Protocol::Http, "127.0.0.1:8080", "http:127.0.0.1:18080"));
        }
        if self.opts.mix == Mix::Serverless {
            conns.push((PG_CONN, Protocol::Postgres, "127.0.0.1:5432", "postgres:127.0.0.1:15432"));
            conns.push((REDIS_CONN, Protocol::Redis, "127.0.0.1:6379", "redis:127.0.0.1:16379"));
        }
        for (conn, protocol, server, route) in conns {
            let client = format!("127.0.0.1:{}", 40000 + conn);
            let body = Body::ConnOpen(ConnOpen { conn, protocol, client, server: server.into(), route: route.into(), tls: None });
            self.push(ts, body);
        }
    }

    /// One message record; returns its end time.
    fn message(&mut self, conn: u64, dir: Direction, start: u64, bytes: Vec<u8>, decoded: Decoded) -> u64 {
        let last_ts = start + 2_000 + bytes.len() as u64 * 3;
        let offset = self.offsets.entry((conn, dir)).or_insert(0);
        let at = *offset;
        *offset += bytes.len() as u64;
        let body = Body::Message(Message {
            conn,
            dir,
            last_ts,
            offset: at,
            data: Payload::whole(bytes),
            decoded: Some(decoded),
            redacted: false,
        });
        self.push(start, body);
        last_ts
    }

    fn exchange(&mut self, conn: u64, times: [u64; 4], sizes: (u64, u64), summary: ExchangeSummary, inv: Option<u64>) {
        let method = if conn == PG_CONN { AttributionMethod::Sqlcommenter } else { AttributionMethod::ConnectionWindow };
        let body = Body::Exchange(Exchange {
            conn,
            request_last: times[1],
            response_first: Some(times[2]),
            response_last: Some(times[3]),
            request_bytes: sizes.0,
            response_bytes: sizes.1,
            status: ExchangeStatus::Complete,
            summary,
            attribution: inv.map(|invocation| Attribution { invocation, method }),
        });
        self.push(times[0], body);
    }

    fn small_http(&mut self) {
        let conn = self.below(GATEWAY_CONNS);
        let t0 = self.now;
        let req = b"GET /run/hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n".to_vec();
        let body = b"Hello, world!";
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{}",
            body.len(),
            std::str::from_utf8(body).expect("ascii")
        )
        .into_bytes();
        let (rq, rs) = (req.len() as u64, resp.len() as u64);
        let req_dec = Decoded::HttpRequest(HttpRequest {
            method: "GET".into(),
            target: "/run/hello".into(),
            version: 1,
            content_type: None,
            body_len: 0,
            chunked: false,
        });
        let t1 = self.message(conn, Direction::ToServer, t0, req, req_dec);
        let t2 = t1 + 20_000 + self.below(30_000);
        let resp_dec = Decoded::HttpResponse(HttpResponse {
            status: 200,
            reason: "OK".into(),
            version: 1,
            content_type: Some("text/plain".into()),
            body_len: 13,
            chunked: false,
        });
        let t3 = self.message(conn, Direction::ToClient, t2, resp, resp_dec);
        let summary = ExchangeSummary::Http(HttpExchange {
            method: "GET".into(),
            target: "/run/hello".into(),
            host: Some("127.0.0.1:8080".into()),
            status: Some(200),
            request_body_len: 0,
            response_body_len: 13,
        });
        self.exchange(conn, [t0, t1, t2, t3], (rq, rs), summary, None);
    }

    fn invocation(&mut self) {
        let id = self.invocation;
        self.invocation += 1;
        let conn = self.below(GATEWAY_CONNS);
        let lambda = LAMBDAS[self.below(LAMBDAS.len() as u64) as usize];
        let user = 1000 + self.below(9000);
        let trace_id = format!("{:016x}{:016x}", self.next_u64(), self.next_u64());
        let span_id = format!("{:016x}", self.next_u64());
        let traceparent = format!("00-{trace_id}-{span_id}-01");
        let req_body = format!("{{\"user\":{user},\"lambda\":\"{lambda}\"}}");
        let target = format!("/run/{lambda}");
        let req = format!(
            "POST {target} HTTP/1.1\r\nHost: worker:8080\r\nContent-Type: application/json\r\nContent-Length: {}\r\ntraceparent: {traceparent}\r\n\r\n{req_body}",
            req_body.len()
        )
        .into_bytes();
        let t0 = self.now;
        let req_len = req.len() as u64;
        let req_dec = Decoded::HttpRequest(HttpRequest {
            method: "POST".into(),
            target: target.clone(),
            version: 1,
            content_type: Some("application/json".into()),
            body_len: req_body.len() as u64,
            chunked: false,
        });
        let t1 = self.message(conn, Direction::ToServer, t0, req, req_dec);
        self.push(
            t0,
            Body::Invocation(Invocation {
                id,
                conn,
                lambda: lambda.into(),
                platform: "openlambda".into(),
                request_id: None,
                trace_id: Some(trace_id.clone()),
            }),
        );

        // The handler: one query, a cache read and write, a log line.
        let mut t = t1 + 50_000 + self.below(100_000);
        t = self.pg_query(t, user, &trace_id, id);
        t = self.redis(t, &["GET", &format!("user:{user}")], Some(id));
        t = self.redis(t, &["SET", &format!("user:{user}"), &format!("{{\"seen\":{t}}}")], Some(id));
        self.push(
            t,
            Body::Log(LogLine {
                origin: lambda.into(),
                stream: LogStream::Stdout,
                text: format!("{lambda}: served user {user} in {}us", (t - t0) / 1000),
                redacted: false,
            }),
        );

        let resp_body = format!("{{\"ok\":true,\"user\":{user},\"balance\":{}.{:02}}}", self.below(10000), self.below(100));
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{resp_body}",
            resp_body.len()
        )
        .into_bytes();
        let resp_len = resp.len() as u64;
        let t2 = t + 20_000;
        let resp_dec = Decoded::HttpResponse(HttpResponse {
            status: 200,
            reason: "OK".into(),
            version: 1,
            content_type: Some("application/json".into()),
            body_len: resp_body.len() as u64,
            chunked: false,
        });
        let t3 = self.message(conn, Direction::ToClient, t2, resp, resp_dec);
        let summary = ExchangeSummary::Http(HttpExchange {
            method: "POST".into(),
            target,
            host: Some("worker:8080".into()),
            status: Some(200),
            request_body_len: req_body.len() as u64,
            response_body_len: resp_body.len() as u64,
        });
        self.exchange(conn, [t0, t1, t2, t3], (req_len, resp_len), summary, None);
    }

    fn pg_query(&mut self, t0: u64, user: u64, trace_id: &str, inv: u64) -> u64 {
        let sql = format!(
            "SELECT id, name, balance FROM accounts WHERE owner = {user} /*traceparent='00-{trace_id}-0000000000000001-01'*/"
        );
        let mut q = vec![b'Q'];
        q.extend_from_slice(&((sql.len() + 5) as u32).to_be_bytes());
        q.extend_from_slice(sql.as_bytes());
        q.push(0);
        let q_len = q.len() as u64;
        let dec = Decoded::Pg(PgMessage { kind: "Query".into(), sql: Some(sql.clone()), ..Default::default() });
        let t1 = self.message(PG_CONN, Direction::ToServer, t0, q, dec);

        let nrows = 1 + self.below(4);
        let columns = ["id", "name", "balance"];
        let mut resp = pg_row_description(&columns);
        let mut rows = Vec::new();
        for r in 0..nrows {
            let row = vec![
                Some(format!("{}", user * 10 + r)),
                Some(format!("account-{}", self.below(100000))),
                Some(format!("{}.{:02}", self.below(100000), self.below(100))),
            ];
            resp.extend(pg_data_row(&row));
            rows.push(row);
        }
        let tag = format!("SELECT {nrows}");
        resp.extend(pg_tagged(b'C', &[tag.as_bytes(), b"\0"].concat()));
        resp.extend(pg_tagged(b'Z', b"I"));
        let resp_len = resp.len() as u64;
        let t2 = t1 + 80_000 + self.below(200_000);
        let dec = Decoded::Pg(PgMessage {
            kind: "DataRow".into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            row_count: Some(nrows),
            tag: Some(tag.clone()),
            fields: vec![("txn".into(), "I".into())],
            ..Default::default()
        });
        let t3 = self.message(PG_CONN, Direction::ToClient, t2, resp, dec);
        let summary = ExchangeSummary::Pg(PgExchange {
            statements: vec![sql],
            extended: false,
            tags: vec![tag],
            rows: nrows,
            error: None,
            txn: Some("I".into()),
        });
        self.exchange(PG_CONN, [t0, t1, t2, t3], (q_len, resp_len), summary, Some(inv));
        t3
    }

    fn redis(&mut self, t0: u64, words: &[&str], inv: Option<u64>) -> u64 {
        let mut cmd = format!("*{}\r\n", words.len());
        for w in words {
            cmd.push_str(&format!("${}\r\n{w}\r\n", w.len()));
        }
        let cmd = cmd.into_bytes();
        let cmd_len = cmd.len() as u64;
        let args: Vec<BStr> = words.iter().map(|w| BStr::from(*w)).collect();
        let dec = Decoded::Redis(RedisMessage { kind: "command".into(), args: args.clone(), reply: None });
        let t1 = self.message(REDIS_CONN, Direction::ToServer, t0, cmd, dec);
        let (resp, reply) = if words[0] == "GET" {
            if self.below(4) == 0 {
                (b"$-1\r\n".to_vec(), RedisReply { kind: "null".into(), ..Default::default() })
            } else {
                let v = format!("{{\"seen\":{}}}", t0 - self.below(1_000_000));
                let reply = RedisReply { kind: "bulk".into(), text: Some(v.as_str().into()), ..Default::default() };
                (format!("${}\r\n{v}\r\n", v.len()).into_bytes(), reply)
            }
        } else {
            (b"+OK\r\n".to_vec(), RedisReply { kind: "simple".into(), text: Some("OK".into()), ..Default::default() })
        };
        let resp_len = resp.len() as u64;
        let t2 = t1 + 30_000 + self.below(50_000);
        let dec = Decoded::Redis(RedisMessage { kind: "reply".into(), args: vec![], reply: Some(reply.clone()) });
        let t3 = self.message(REDIS_CONN, Direction::ToClient, t2, resp, dec);
        let summary = ExchangeSummary::Redis(RedisExchange {
            command: words[0].into(),
            args: args[1..].to_vec(),
            reply: Some(reply),
        });
        self.exchange(REDIS_CONN, [t0, t1, t2, t3], (cmd_len, resp_len), summary, inv);
        t3
    }
}

impl Iterator for Synth {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if !self.opened {
            self.opened = true;
            self.open_all();
        }
        while self.queue.is_empty() {
            match self.opts.mix {
                Mix::Serverless => self.invocation(),
                Mix::SmallHttp => self.small_http(),
            }
            let gap = self.opts.mean_gap_ns;
            self.now += gap / 2 + self.below(gap.max(1));
        }
        self.queue.pop_front()
    }
}

fn pg_tagged(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn pg_row_description(columns: &[&str]) -> Vec<u8> {
    let mut body = (columns.len() as u16).to_be_bytes().to_vec();
    for c in columns {
        body.extend_from_slice(c.as_bytes());
        body.push(0);
        body.extend_from_slice(&16384u32.to_be_bytes()); // table oid
        body.extend_from_slice(&1u16.to_be_bytes()); // column number
        body.extend_from_slice(&25u32.to_be_bytes()); // type oid: text
        body.extend_from_slice(&(-1i16).to_be_bytes()); // type size
        body.extend_from_slice(&(-1i32).to_be_bytes()); // type modifier
        body.extend_from_slice(&0u16.to_be_bytes()); // text format
    }
    pg_tagged(b'T', &body)
}

fn pg_data_row(values: &[Option<String>]) -> Vec<u8> {
    let mut body = (values.len() as u16).to_be_bytes().to_vec();
    for v in values {
        match v {
            Some(v) => {
                body.extend_from_slice(&(v.len() as i32).to_be_bytes());
                body.extend_from_slice(v.as_bytes());
            }
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    pg_tagged(b'D', &body)
}
