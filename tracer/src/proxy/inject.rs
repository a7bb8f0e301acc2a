//! `--inject-traceparent`: adds a W3C `traceparent` header to invocation
//! requests that have none, as they are forwarded to the worker, so that a
//! lambda which propagates it lets the recorder tie its calls to the
//! invocation.
//!
//! [`Injector`] is a streaming rewriter of the client-to-server direction of
//! an HTTP/1.x connection: `wire`'s [`RequestFramer`] says where each head
//! and body is; the injector inserts one header. It holds back only an
//! incomplete request head (or chunk-size line); bodies (`Content-Length` or chunked) pass through as they come, and
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
use wire::http::{Framed, HeadView, RequestFramer};

/// Heads (and chunk-size and trailer lines) larger than this are passed
/// through uninspected.
const MAX_HEAD: usize = 64 << 10;

pub struct Injector {
    /// Invocations named by this profile get a `traceparent`.
    profile: Option<Arc<Profile>>,
    /// As a guard: the only `host:port` requests may be for.
    authority: Option<String>,
    framer: RequestFramer,
    /// The framer gave up: the rest of the connection passes as it is.
    passthrough: bool,
    /// A guard refused a request: nothing more is forwarded.
    stopped: bool,
    /// Bytes the framer could not place yet (part of a head or of a
    /// chunk-size line).
    held: Vec<u8>,
    /// Headers added so far.
    pub injected: u64,
}

impl Injector {
    fn with(profile: Option<Arc<Profile>>, authority: Option<String>) -> Injector {
        Injector { profile, authority, framer: RequestFramer::new(MAX_HEAD), passthrough: false, stopped: false, held: Vec::new(), injected: 0 }
    }

    pub fn new(profile: Arc<Profile>) -> Injector {
        Injector::with(Some(profile), None)
    }

    /// A guard for a forward proxy connection to `authority` (`host:port`):
    /// rewrites nothing, and stops at the first request that is not an
    /// absolute-form request for it.
    pub fn guard(authority: String) -> Injector {
        Injector::with(None, Some(authority))
    }

    /// True once a guard refused a request: forward nothing more.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Takes the next bytes the client sent; appends what to forward now to
    /// `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.held.is_empty() {
            // The common case: bodies and whole heads go straight through.
            let used = self.frame(input, out);
            self.held.extend_from_slice(&input[used..]);
        } else {
            let mut held = std::mem::take(&mut self.held);
            held.extend_from_slice(input);
            let used = self.frame(&held, out);
            held.drain(..used);
            self.held = held;
        }
    }

    /// The client finished sending: forwards any bytes held back.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.stopped {
            self.held.clear();
            return;
        }
        out.append(&mut self.held);
    }

    /// Forwards what the framer can place of `buf`; returns how many bytes
    /// it took (the rest waits for more).
    fn frame(&mut self, buf: &[u8], out: &mut Vec<u8>) -> usize {
        let mut at = 0;
        while at < buf.len() {
            if self.stopped {
                return buf.len();
            }
            if self.passthrough {
                out.extend_from_slice(&buf[at..]);
                return buf.len();
            }
            match self.framer.next(&buf[at..]) {
                Framed::NeedMore => break,
                Framed::Body(n) => {
                    out.extend_from_slice(&buf[at..at + n]);
                    at += n;
                }
                Framed::Head(head) => {
                    self.head(&head, out);
                    at += head.head_len();
                }
                Framed::Unframeable(_) => self.passthrough = true,
            }
        }
        at
    }

    /// A complete head: forwards it, with the header added if it is an
    /// invocation without one (or, as a guard, stops before a request for
    /// another server).
    fn head(&mut self, head: &HeadView<'_>, out: &mut Vec<u8>) {
        let bytes = head.bytes();
        if let Some(authority) = &self.authority {
            if super::forward_proxy::target_of(bytes) != Ok(super::forward_proxy::Target::Http(authority.clone())) {
                self.stopped = true;
                return;
            }
        }
        let invocation = match (&self.profile, head.target()) {
            (Some(profile), Some(target)) => profile.match_target(&String::from_utf8_lossy(target)).is_some(),
            _ => false,
        };
        if invocation && !head.has_header("traceparent") {
            // Insert before the blank line, with the head's own line ending.
            let crlf = bytes.ends_with(b"\r\n\r\n");
            let blank = if crlf { 2 } else { 1 };
            out.extend_from_slice(&bytes[..bytes.len() - blank]);
            out.extend_from_slice(b"traceparent: ");
            out.extend_from_slice(new_traceparent().as_bytes());
            out.extend_from_slice(if crlf { b"\r\n\r\n" } else { b"\n\n" });
            self.injected += 1;
        } else {
            out.extend_from_slice(bytes);
        }
    }
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
