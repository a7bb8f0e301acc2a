//! `--otlp-endpoint URL`: POSTs OTLP/JSON batches to a collector's
//! OTLP/HTTP receiver (`/v1/traces`; Jaeger, Tempo and the OpenTelemetry
//! collector listen on port 4318).
//!
//! Hand-written over `std::net` rather than an HTTP client crate: it is
//! one POST per batch of spans, plain HTTP (a collector is a sidecar or on
//! the local network; put one in front of a TLS endpoint), and the reply
//! is read with `wire`'s HTTP parser, the project's one HTTP parser.

use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Pusher {
    pub url: String,
    host: String,
    path: String,
    pub requests: u64,
}

impl Pusher {
    /// Checks `url` (`http://HOST:PORT[/PATH]`; the path defaults to
    /// `/v1/traces`).
    pub fn new(url: &str) -> anyhow::Result<Pusher> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("--otlp-endpoint {url}: give an http:// URL of an OTLP/HTTP receiver, e.g. http://127.0.0.1:4318 (https is not supported: use a local collector)");
        };
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if host.is_empty() {
            bail!("--otlp-endpoint {url}: no host; e.g. http://127.0.0.1:4318");
        }
        let host = if host.contains(':') { host.to_owned() } else { format!("{host}:4318") };
        let path = if path.is_empty() || path == "/" { "/v1/traces".to_owned() } else { path.to_owned() };
        Ok(Pusher { url: format!("http://{host}{path}"), host, path, requests: 0 })
    }

    /// POSTs one `ExportTraceServiceRequest`; a non-2xx answer is an error
    /// that quotes the collector.
    pub fn post(&mut self, request: &impl serde::Serialize) -> anyhow::Result<()> {
        let body = serde_json::to_vec(request)?;
        let addr = self
            .host
            .to_socket_addrs()
            .with_context(|| format!("--otlp-endpoint {}: cannot resolve {}", self.url, self.host))?
            .next()
            .with_context(|| format!("--otlp-endpoint {}: {} has no address", self.url, self.host))?;
        let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)
            .with_context(|| format!("--otlp-endpoint {}: cannot connect (is the collector running?)", self.url))?;
        s.set_read_timeout(Some(TIMEOUT))?;
        s.set_write_timeout(Some(TIMEOUT))?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: oltrace/{}\r\n\r\n",
            self.path,
            self.host,
            body.len(),
            env!("CARGO_PKG_VERSION")
        );
        s.write_all(head.as_bytes())?;
        s.write_all(&body)?;
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).with_context(|| format!("--otlp-endpoint {}: no reply", self.url))?;
        let head = wire::http::parse_response_head(&reply)
            .map_err(|e| anyhow::anyhow!("--otlp-endpoint {}: not an HTTP reply ({e:?})", self.url))?;
        let status = head.status().unwrap_or(0);
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&reply[head.head_len()..]);
            bail!("--otlp-endpoint {}: the collector answered {status}: {}", self.url, text.chars().take(300).collect::<String>());
        }
        self.requests += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(Pusher::new("http://127.0.0.1:4318").unwrap().url, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(Pusher::new("http://collector").unwrap().url, "http://collector:4318/v1/traces");
        assert_eq!(Pusher::new("http://c:1/x/y").unwrap().url, "http://c:1/x/y");
        assert!(Pusher::new("https://c").unwrap_err().to_string().contains("http://"));
    }
}
