//! A small OpenLambda-style worker for testing `oltrace wrap`: an HTTP/1.1
//! server whose `/run/<name>` route runs a "lambda" that queries PostgreSQL
//! and Redis, and prints a log line per invocation.
//!
//! ```sh
//! oltrace wrap -o t.mp --route http:0=127.0.0.1:8080 --route postgres:0=127.0.0.1:5432 \
//!   --route redis:0=127.0.0.1:6379 --forward-proxy 0 --inject-traceparent \
//!   -- target/debug/examples/test_worker --port 8080
//! ```
//!
//! It reads `PGHOST`/`PGPORT` (user `postgres`, database `test`, no TLS),
//! `REDIS_URL` (`redis://host:port`) and `HTTP_PROXY`. Once listening it
//! prints `test_worker ready routes=<OLTRACE_ROUTES>`.
//!
//! What a lambda does depends on its name:
//! - every lambda runs a simple query and an extended-protocol query, each
//!   holding the request's `x-request-id` in its SQL, and `INCR`s a Redis
//!   key named after it;
//! - it propagates the request's `traceparent` as a sqlcommenter comment,
//!   unless its name contains `silent`;
//! - `call` also GETs this worker's own `/health` through `HTTP_PROXY`,
//!   passing `traceparent` on;
//! - a name starting with `pair` waits until two such invocations are in
//!   flight before its calls, and again after them, so the two overlap
//!   wherever timing falls.
//!
//! `/health` answers `ok`; `/shutdown` answers and exits 0.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Barrier, Mutex};

struct Worker {
    pg: tokio_postgres::Client,
    redis: Mutex<TcpStream>,
    pair: Barrier,
    port: u16,
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = match args.iter().position(|a| a == "--port").and_then(|i| args.get(i + 1)).map(|p| p.parse()) {
        Some(Ok(p)) => p,
        _ => {
            eprintln!("usage: test_worker --port PORT");
            std::process::exit(2);
        }
    };
    let env = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_string());
    let pg_conf = format!("host={} port={} user=postgres dbname=test", env("PGHOST", "127.0.0.1"), env("PGPORT", "5432"));
    let (pg, connection) = tokio_postgres::connect(&pg_conf, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("test_worker: postgres connection: {e}");
        }
    });
    let redis_url = env("REDIS_URL", "redis://127.0.0.1:6379");
    let redis_addr = redis_url.trim_start_matches("redis://").trim_end_matches('/').to_string();
    let redis = TcpStream::connect(&redis_addr).await?;
    let worker = Arc::new(Worker { pg, redis: Mutex::new(redis), pair: Barrier::new(2), port });
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("test_worker ready routes={}", env("OLTRACE_ROUTES", ""));
    loop {
        let (conn, _) = listener.accept().await?;
        let worker = worker.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(conn, worker).await {
                eprintln!("test_worker: connection: {e}");
            }
        });
    }
}

/// Serves keep-alive HTTP/1.1 requests (Content-Length bodies) on `conn`.
async fn serve(mut conn: TcpStream, worker: Arc<Worker>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let (req, head_len, body_len) = loop {
            match wire::http::parse_request_head(&buf) {
                Ok(head) => {
                    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                    let headers: Vec<(String, String)> = head.headers().map(|(n, v)| (text(n), text(v))).collect();
                    let req = Request { method: text(head.method().unwrap_or_default()), path: text(head.target().unwrap_or_default()), headers };
                    let len = req.header("content-length").and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(0);
                    break (req, head.head_len(), len);
                }
                Err(wire::ParseError::Incomplete { .. }) => {}
                Err(e) => return Err(std::io::Error::other(e)),
            }
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await? {
                0 => return Ok(()),
                n => buf.extend_from_slice(&chunk[..n]),
            }
        };
        while buf.len() < head_len + body_len {
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await? {
                0 => return Ok(()),
                n => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_len + body_len);
        // Absolute-form (through a forward proxy) is reduced to its path.
        let path = match req.path.split_once("://") {
            Some((_, rest)) => rest.find('/').map(|i| rest[i..].to_string()).unwrap_or_else(|| "/".into()),
            None => req.path.clone(),
        };
        let path = path.split('?').next().unwrap_or("").to_string();
        let (status, body) = if let Some(name) = path.strip_prefix("/run/") {
            match invoke(&worker, name, &req).await {
                Ok(body) => ("200 OK", body),
                Err(e) => ("500 Internal Server Error", format!("{e}\n")),
            }
        } else if path == "/health" {
            ("200 OK", "ok\n".to_string())
        } else if path == "/shutdown" {
            ("200 OK", "bye\n".to_string())
        } else {
            ("404 Not Found", format!("no route {} {}\n", req.method, path))
        };
        let close = req.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) || path == "/shutdown";
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        conn.write_all(response.as_bytes()).await?;
        if path == "/shutdown" {
            conn.shutdown().await?;
            std::process::exit(0);
        }
        if close {
            return conn.shutdown().await;
        }
    }
}

/// One invocation of lambda `name`.
async fn invoke(worker: &Worker, name: &str, req: &Request) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let request_id = req.header("x-request-id").unwrap_or("-").to_string();
    let traceparent = req.header("traceparent").map(str::to_string);
    println!("invocation {name} request={request_id} traceparent={}", traceparent.as_deref().unwrap_or("-"));
    let paired = name.starts_with("pair");
    if paired {
        worker.pair.wait().await;
    }
    // sqlcommenter: key='url-encoded value', in a comment at the end.
    let comment = match (&traceparent, name.contains("silent")) {
        (Some(tp), false) => format!(" /*lambda='{name}',traceparent='{tp}'*/"),
        _ => String::new(),
    };
    let simple = worker.pg.simple_query(&format!("SELECT '{request_id}' AS request{comment}")).await?;
    let rows = simple.iter().filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))).count();
    let sum: i32 = worker.pg.query_one(&format!("SELECT $1::int + 1 /*request {request_id}*/{comment}"), &[&41i32]).await?.get(0);
    let count = {
        let mut redis = worker.redis.lock().await;
        let key = format!("oltrace:test_worker:{request_id}");
        let cmd = format!("*2\r\n$4\r\nINCR\r\n${}\r\n{key}\r\n", key.len());
        redis.write_all(cmd.as_bytes()).await?;
        let reply = read_line(&mut redis).await?;
        reply.strip_prefix(':').ok_or_else(|| format!("INCR {key}: unexpected reply {reply}"))?.to_string()
    };
    let mut outbound = String::new();
    if name == "call" {
        outbound = call_self(worker.port, traceparent.as_deref()).await?;
    }
    if paired {
        worker.pair.wait().await;
    }
    Ok(format!("{name} request={request_id} rows={rows} sum={sum} incr={count} outbound={}\n", outbound.trim()))
}

/// Reads one RESP line (an integer reply here).
async fn read_line(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "redis closed"));
        }
        line.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&line[..line.len() - 2]).into_owned())
}

/// GETs this worker's `/health` through `HTTP_PROXY` (absolute-form), with
/// `traceparent` passed on; returns the body.
async fn call_self(port: u16, traceparent: Option<&str>) -> std::io::Result<String> {
    let proxy = std::env::var("HTTP_PROXY").map_err(|_| std::io::Error::other("HTTP_PROXY is not set"))?;
    let proxy = proxy.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(proxy).await?;
    let tp = traceparent.map(|t| format!("traceparent: {t}\r\n")).unwrap_or_default();
    let request = format!("GET http://127.0.0.1:{port}/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{tp}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    Ok(text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}
