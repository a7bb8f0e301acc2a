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
use wire::http::{Framed, RequestFramer};

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
            // A fresh framer per request: an incomplete one is framed again
            // once more bytes came.
            let mut framer = RequestFramer::new(usize::MAX);
            let head = match framer.next(&buf) {
                Framed::Head(head) => head,
                Framed::NeedMore => break,
                _ => return,
            };
            let head_len = head.head_len();
            let expect_continue = head.headers().any(|(n, v)| n.eq_ignore_ascii_case(b"expect") && v.eq_ignore_ascii_case(b"100-continue"));
            let chunked = head.chunked();
            if expect_continue && buf.len() == head_len && stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
                return;
            }
            let mut end = head_len;
            while !framer.at_head() {
                match framer.next(&buf[end..]) {
                    Framed::Body(n) => end += n,
                    Framed::NeedMore => break,
                    _ => return,
                }
            }
            if !framer.at_head() {
                break;
            }
            let content = if chunked { wire::http::dechunk(&buf[head_len..end]).len() } else { end - head_len };
            let body = (end - head_len, content);
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
