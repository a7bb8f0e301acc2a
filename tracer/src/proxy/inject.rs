//! `--inject-traceparent`: adds a W3C `traceparent` header to invocation
//! requests that have none, as they are forwarded to the worker, so that a
//! lambda which propagates it lets the recorder tie its calls to the
//! invocation.
//!
//! [`Injector`] is a streaming rewriter of the client-to-server direction of
//! an HTTP/1.x connection. It holds back only an incomplete request head;
//! bodies (`Content-Length` or chunked) pass through as they come, and
//! pipelined requests are each handled at their own head. Only requests
//! whose target the invocation profile names are touched; a request that
//! already carries `traceparent` is forwarded unchanged (its trace id is
//! the one the recorder uses). Anything it cannot frame with certainty (a
//! malformed or oversized head, an unknown transfer coding, `CONNECT` or
//! `Upgrade`) switches it to passing the rest of the connection through
//! untouched.
//!
//! The same framing serves the forward proxy as a guard
//! ([`Injector::guard`]): a client connection is tied to one server, and a
//! request on it for another server stops the stream before that request's
//! head, so it is never sent to the wrong server (the client sees the
//! connection close and retries on a new one).

use super::attribution::new_traceparent;
use super::profiles::Profile;
use std::sync::Arc;

/// Heads larger than this are passed through uninspected.
const MAX_HEAD: usize = 64 << 10;
/// Chunk-size and trailer lines longer than this end inspection.
const MAX_LINE: usize = 8 << 10;
const MAX_HEADERS: usize = 128;

#[derive(Debug)]
enum State {
    /// Collecting a request head in `held`.
    Head,
    /// This many body bytes to pass before the next head.
    Body(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// No more rewriting on this connection.
    Passthrough,
    /// A guard refused a request: nothing more is forwarded.
    Stopped,
}

#[derive(Debug)]
enum Chunk {
    /// Reading a chunk-size line (its bytes so far).
    Size(Vec<u8>),
    /// This many chunk-data bytes, then the CRLF after them.
    Data(u64),
    /// The line ending after chunk data.
    DataEnd,
    /// Reading trailer lines after the last chunk (the current line).
    Trailer(Vec<u8>),
}

pub struct Injector {
    /// Invocations named by this profile get a `traceparent`.
    profile: Option<Arc<Profile>>,
    /// As a guard: the only `host:port` requests may be for.
    authority: Option<String>,
    state: State,
    held: Vec<u8>,
    /// Headers added so far.
    pub injected: u64,
}

impl Injector {
    pub fn new(profile: Arc<Profile>) -> Injector {
        Injector { profile: Some(profile), authority: None, state: State::Head, held: Vec::new(), injected: 0 }
    }

    /// A guard for a forward proxy connection to `authority` (`host:port`):
    /// rewrites nothing, and stops at the first request that is not an
    /// absolute-form request for it.
    pub fn guard(authority: String) -> Injector {
        Injector { profile: None, authority: Some(authority), state: State::Head, held: Vec::new(), injected: 0 }
    }

    /// True once a guard refused a request: forward nothing more.
    pub fn stopped(&self) -> bool {
        matches!(self.state, State::Stopped)
    }

    /// Takes the next bytes the client sent; appends what to forward now to
    /// `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match &mut self.state {
                State::Stopped => return,
                State::Passthrough => {
                    out.extend_from_slice(input);
                    return;
                }
                State::Body(left) => {
                    let n = (*left).min(input.len() as u64) as usize;
                    out.extend_from_slice(&input[..n]);
                    *left -= n as u64;
                    input = &input[n..];
                    if *left == 0 {
                        self.state = State::Head;
                    }
                }
                State::Chunked(_) => {
                    let n = self.chunked(input);
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                }
                State::Head => {
                    // Search only the new bytes (and the three before them)
                    // for the blank line, so a slow head costs linear time.
                    let searched = self.held.len().saturating_sub(3);
                    self.held.extend_from_slice(input);
                    let Some(end) = head_end(&self.held, searched) else {
                        if self.held.len() > MAX_HEAD {
                            self.give_up(out);
                        }
                        return;
                    };
                    let held = std::mem::take(&mut self.held);
                    self.head(&held[..end], out);
                    // Whatever followed the head goes through the next state.
                    let rest = &held[end..];
                    if !rest.is_empty() {
                        self.push(rest, out);
                    }
                    return;
                }
            }
        }
    }

    /// The client finished sending: forwards any bytes held back.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.stopped() {
            self.held.clear();
            return;
        }
        out.append(&mut self.held);
    }

    fn give_up(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
        self.state = State::Passthrough;
    }

    /// A complete head (`head` ends with its blank line): forwards it, with
    /// the header added if it is an invocation without one, and sets up the
    /// body's framing.
    fn head(&mut self, head: &[u8], out: &mut Vec<u8>) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
            out.extend_from_slice(head);
            self.state = State::Passthrough;
            return;
        }
        if let Some(authority) = &self.authority {
            if super::forward_proxy::target_of(head) != Ok(super::forward_proxy::Target::Http(authority.clone())) {
                self.state = State::Stopped;
                return;
            }
        }
        let has = |name: &str| req.headers.iter().any(|h| h.name.eq_ignore_ascii_case(name));
        let invocation = match (&self.profile, req.path) {
            (Some(profile), Some(target)) => profile.match_target(target).is_some(),
            _ => false,
        };
        if invocation && !has("traceparent") {
            // Insert before the blank line, with the head's own line ending.
            let crlf = head.ends_with(b"\r\n\r\n");
            let blank = if crlf { 2 } else { 1 };
            out.extend_from_slice(&head[..head.len() - blank]);
            out.extend_from_slice(b"traceparent: ");
            out.extend_from_slice(new_traceparent().as_bytes());
            out.extend_from_slice(if crlf { b"\r\n\r\n" } else { b"\n\n" });
            self.injected += 1;
        } else {
            out.extend_from_slice(head);
        }
        let connect = req.method.is_some_and(|m| m.eq_ignore_ascii_case("CONNECT"));
        if connect || has("upgrade") {
            self.state = State::Passthrough;
            return;
        }
        let value = |name: &str| req.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase()).collect::<Vec<_>>();
        let codings = value("transfer-encoding");
        let lengths = value("content-length");
        self.state = if !codings.is_empty() {
            let last = codings.last().and_then(|v| v.rsplit(',').next()).map(str::trim);
            if last == Some("chunked") {
                State::Chunked(Chunk::Size(Vec::new()))
            } else {
                State::Passthrough
            }
        } else if lengths.is_empty() {
            State::Head
        } else {
            match lengths.iter().map(|v| v.parse::<u64>()).collect::<Result<Vec<_>, _>>() {
                Ok(ns) if ns.windows(2).all(|w| w[0] == w[1]) => match ns[0] {
                    0 => State::Head,
                    n => State::Body(n),
                },
                _ => State::Passthrough,
            }
        };
    }

    /// Steps the chunked-body parser over `input`; returns how many bytes it
    /// consumed (all of them are forwarded as they are).
    fn chunked(&mut self, input: &[u8]) -> usize {
        let State::Chunked(chunk) = &mut self.state else { return 0 };
        let mut i = 0;
        while i < input.len() {
            match chunk {
                Chunk::Size(line) | Chunk::Trailer(line) => {
                    let Some(nl) = input[i..].iter().position(|b| *b == b'\n') else {
                        line.extend_from_slice(&input[i..]);
                        if line.len() > MAX_LINE {
                            self.state = State::Passthrough;
                        }
                        return input.len();
                    };
                    line.extend_from_slice(&input[i..i + nl]);
                    i += nl + 1;
                    let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned();
                    if matches!(chunk, Chunk::Trailer(_)) {
                        if text.is_empty() {
                            self.state = State::Head;
                            return i;
                        }
                        *chunk = Chunk::Trailer(Vec::new());
                        continue;
                    }
                    let size = text.split(';').next().unwrap_or("").trim();
                    match u64::from_str_radix(size, 16) {
                        Ok(0) => *chunk = Chunk::Trailer(Vec::new()),
                        Ok(n) => *chunk = Chunk::Data(n),
                        Err(_) => {
                            self.state = State::Passthrough;
                            return i;
                        }
                    }
                }
                Chunk::Data(left) => {
                    let n = (*left).min((input.len() - i) as u64);
                    *left -= n;
                    i += n as usize;
                    if *left == 0 {
                        *chunk = Chunk::DataEnd;
                    }
                }
                Chunk::DataEnd => {
                    let b = input[i];
                    i += 1;
                    if b == b'\n' {
                        *chunk = Chunk::Size(Vec::new());
                    }
                }
            }
        }
        i
    }
}

/// The length of the head in `buf` up to and including its blank line
/// (CRLF CRLF, or bare LF LF as httparse also accepts), searching from
/// `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf[..i].ends_with(b"\n") {
                return Some(i + 1);
            }
            if buf[..i].ends_with(b"\n\r") {
                return Some(i + 1);
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::attribution::traceparent_trace_id;

    fn inject_all(pieces: &[&[u8]]) -> (Vec<u8>, u64) {
        let mut inj = Injector::new(Arc::new(Profile::OpenLambda));
        let mut out = Vec::new();
        for p in pieces {
            inj.push(p, &mut out);
        }
        inj.finish(&mut out);
        (out, inj.injected)
    }

    /// Feeds `input` in every split into two pieces and in single bytes;
    /// all must give the same shape of output.
    fn check(input: &[u8], expect_injected: u64) -> Vec<u8> {
        let (whole, n) = inject_all(&[input]);
        assert_eq!(n, expect_injected, "{}", String::from_utf8_lossy(input));
        let strip = |b: &[u8]| {
            let s = String::from_utf8_lossy(b).into_owned();
            s.lines().filter(|l| !l.starts_with("traceparent: ")).collect::<Vec<_>>().join("\n")
        };
        for cut in 0..=input.len() {
            let (out, n) = inject_all(&[&input[..cut], &input[cut..]]);
            assert_eq!(n, expect_injected, "cut at {cut}");
            assert_eq!(strip(&out), strip(&whole), "cut at {cut}");
            assert_eq!(out.len(), whole.len(), "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(inject_all(&bytes).1, expect_injected);
        whole
    }

    #[test]
    fn adds_a_traceparent_to_invocations_only() {
        let out = check(b"POST /run/echo HTTP/1.1\r\nHost: w\r\nContent-Length: 5\r\n\r\nhello", 1);
        let text = String::from_utf8(out).unwrap();
        let line = text.lines().find(|l| l.starts_with("traceparent: ")).unwrap();
        assert!(traceparent_trace_id(&line["traceparent: ".len()..]).is_some(), "{line}");
        assert!(text.ends_with("\r\n\r\nhello"), "{text}");
        assert!(text.starts_with("POST /run/echo HTTP/1.1\r\nHost: w\r\nContent-Length: 5\r\ntraceparent: 00-"));
        // Not an invocation: untouched.
        let plain = b"GET /status HTTP/1.1\r\nHost: w\r\n\r\n";
        assert_eq!(check(plain, 0), plain);
        // Already has one: untouched.
        let traced = b"POST /run/a HTTP/1.1\r\nTraceParent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n";
        assert_eq!(check(traced, 0), traced);
    }

    #[test]
    fn bodies_that_look_like_heads_are_not_rewritten() {
        // A body holding a request head, then a second pipelined request.
        let body = b"GET /run/x HTTP/1.1\r\n\r\n";
        let mut input = format!("POST /run/a HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        input.extend_from_slice(body);
        input.extend_from_slice(b"POST /run/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        input.extend_from_slice(b"17\r\nGET /run/y HTTP/1.1\r\n\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n");
        input.extend_from_slice(b"GET /run/c HTTP/1.1\n\n");
        let out = String::from_utf8(check(&input, 3)).unwrap();
        assert_eq!(out.matches("traceparent: ").count(), 3, "{out}");
        assert!(out.contains("\r\n\r\nGET /run/x HTTP/1.1\r\n\r\nPOST /run/b"), "the first body is intact: {out}");
        assert!(out.contains("17\r\nGET /run/y HTTP/1.1\r\n\r\n\r\n0\r\n"), "the chunked body is intact: {out}");
        assert!(out.contains("GET /run/c HTTP/1.1\ntraceparent: 00-"), "bare-LF heads keep bare LF: {out}");
    }

    #[test]
    fn a_guard_stops_at_a_request_for_another_server() {
        let first = b"POST http://a:80/x HTTP/1.1\r\nHost: a\r\nContent-Length: 31\r\n\r\nGET http://b:80/ HTTP/1.1\r\n\r\n";
        let second = b"GET http://a:80/y HTTP/1.1\r\n\r\n";
        let other = b"GET http://b:80/z HTTP/1.1\r\n\r\n";
        let mut input = first.to_vec();
        input.extend_from_slice(second);
        input.extend_from_slice(other);
        input.extend_from_slice(second);
        for cut in 0..input.len() {
            let mut guard = Injector::guard("a:80".into());
            let mut out = Vec::new();
            guard.push(&input[..cut], &mut out);
            guard.push(&input[cut..], &mut out);
            guard.finish(&mut out);
            assert!(guard.stopped(), "cut at {cut}");
            assert_eq!(out.len(), first.len() + second.len(), "cut at {cut}: everything before the request for b, as is");
            assert_eq!(&out[..first.len()], first);
        }
        let mut guard = Injector::guard("a:80".into());
        let mut out = Vec::new();
        guard.push(b"GET /origin-form HTTP/1.1\r\n\r\n", &mut out);
        assert!(guard.stopped() && out.is_empty());
    }

    #[test]
    fn what_it_cannot_frame_passes_through() {
        for input in [
            &b"POST /run/a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nPOST /run/b HTTP/1.1\r\n\r\n"[..],
            b"POST /run/a HTTP/1.1\r\nContent-Length: x\r\n\r\nPOST /run/b HTTP/1.1\r\n\r\n",
            b"GET /x HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /run/b HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01 not http at all\r\n\r\nGET /run/b HTTP/1.1\r\n\r\n",
        ] {
            let (out, n) = inject_all(&[input]);
            let first_injected = u64::from(input.starts_with(b"POST /run/a"));
            assert_eq!(n, first_injected, "{}", String::from_utf8_lossy(input));
            assert_eq!(out.len(), input.len() + n as usize * "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n".len());
        }
        // An unterminated head is forwarded at the end.
        let (out, n) = inject_all(&[b"GET /run/a HTTP/1.1\r\nHost"]);
        assert_eq!((out.as_slice(), n), (&b"GET /run/a HTTP/1.1\r\nHost"[..], 0));
    }
}
