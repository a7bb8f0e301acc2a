//! A small HTTP/1.1 upstream for tests and benchmarks: keep-alive,
//! Content-Length and chunked request bodies (read and discarded), and a
//! fixed small response (`200 OK`, 13-byte body) to every request.
//!
//! ```sh
//! cargo run --release -p oltrace-tracer --example http_upstream -- --port 0
//! # prints "listening on 127.0.0.1:PORT" on stdout, then serves until killed
//! ```
//!
//! The tests include this file as a module and call [`serve`] in process,
//! reading [`Served`] to know how many requests the upstream answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The response to every request.
pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world\n";

/// Counts of what the upstream saw, shared with its caller.
#[derive(Default)]
pub struct Served {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Request body bytes read (after de-chunking).
    pub body_bytes: AtomicU64,
}

/// Accepts connections on `listener` forever, one task each.
pub async fn serve(listener: TcpListener, served: Arc<Served>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, served.clone()));
    }
}

/// Answers requests on one connection until the client closes it or sends
/// something that is not HTTP/1.1.
async fn connection(mut stream: TcpStream, served: Arc<Served>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut out: Vec<u8> = Vec::new();
    loop {
        // Answer every complete request buffered (pipelining), then write once.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let head_len = match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => break,
                Err(_) => return,
            };
            let header = |name: &str| req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
            let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"chunked"));
            let expect_continue = header("expect").is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
            let length: Option<usize> = header("content-length").and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok());
            if expect_continue && buf.len() == head_len && stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
                return;
            }
            let body = if chunked {
                match chunked_body_len(&buf[head_len..]) {
                    Some(Ok((wire, body))) => (wire, body),
                    Some(Err(())) => return,
                    None => break,
                }
            } else {
                let n = length.unwrap_or(0);
                if buf.len() - head_len < n {
                    break;
                }
                (n, n)
            };
            buf.drain(..head_len + body.0);
            served.body_bytes.fetch_add(body.1 as u64, Ordering::Relaxed);
            served.requests.fetch_add(1, Ordering::Relaxed);
            out.extend_from_slice(RESPONSE);
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        let mut chunk = [0u8; 16384];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// For a chunked body at the start of `data`: `None` while incomplete, else
/// its length on the wire and its length de-chunked (trailers skipped).
fn chunked_body_len(data: &[u8]) -> Option<Result<(usize, usize), ()>> {
    let mut at = 0;
    let mut body = 0;
    loop {
        let line_end = at + data[at..].windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[at..line_end]).map_err(|_| ()).ok()?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else { return Some(Err(())) };
        at = line_end + 2;
        if size == 0 {
            // Trailer lines, then an empty line.
            loop {
                let end = at + data[at..].windows(2).position(|w| w == b"\r\n")?;
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Some(Ok((at, body)));
                }
            }
        }
        if data.len() < at + size + 2 {
            return None;
        }
        body += size;
        at += size + 2;
    }
}

#[allow(dead_code)] // The tests include this file without calling main.
fn main() {
    let mut port: u16 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => match args.next().and_then(|p| p.parse().ok()) {
                Some(p) => port = p,
                None => {
                    eprintln!("http_upstream: --port needs a number (0 picks a free port)");
                    std::process::exit(2);
                }
            },
            "-h" | "--help" => {
                println!("usage: http_upstream [--port PORT]   (serves a fixed 200 OK on 127.0.0.1; port 0 picks one)");
                return;
            }
            other => {
                eprintln!("http_upstream: unknown argument '{other}'; use --port PORT");
                std::process::exit(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(async move {
        let listener = match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("http_upstream: cannot listen on 127.0.0.1:{port}: {e}");
                std::process::exit(2);
            }
        };
        println!("listening on {}", listener.local_addr().expect("local address"));
        use std::io::Write;
        let _ = std::io::stdout().flush();
        serve(listener, Arc::new(Served::default())).await;
    });
}
