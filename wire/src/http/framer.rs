//! [`RequestFramer`]: where each request of a client's stream begins and
//! ends, for a proxy that rewrites heads as it forwards (the recorder's
//! `traceparent` injection, the forward proxy's guard). It uses the
//! decoder's head parser, request body rule and chunked parser; unlike the
//! decoder it keeps nothing: the caller holds the bytes and forwards the
//! body as it comes.

use super::at_rest::{view, HeadView};
use super::chunked::{ChunkState, Step};
use super::head::{find_head_end, request_body, RequestBody};

/// What the bytes at the front of the caller's buffer are.
#[derive(Debug)]
pub enum Framed<'a> {
    /// A complete request head, [`HeadView::head_len`] bytes long.
    Head(HeadView<'a>),
    /// The first `n` bytes are body (content, or chunked framing).
    Body(usize),
    /// Part of a head, or of a chunk-size or trailer line: keep the bytes
    /// and call again once more arrived.
    NeedMore,
    /// The stream cannot be framed with certainty from here on (why: a
    /// malformed or oversized head, a transfer coding other than chunked,
    /// `CONNECT` or `Upgrade`): pass the rest through untouched.
    Unframeable(String),
}

#[derive(Debug)]
enum State {
    /// At a head; the blank line was searched for up to here.
    Head { searched: usize },
    /// This many body bytes before the next head.
    Body(u64),
    Chunked(ChunkState),
    /// Gave up, for this reason.
    Done(String),
}

/// Frames the requests of one client-to-server stream.
#[derive(Debug)]
pub struct RequestFramer {
    max_head: usize,
    state: State,
}

impl RequestFramer {
    /// Heads (and chunk-size lines, trailer sections) longer than
    /// `max_head` bytes are [`Framed::Unframeable`].
    pub fn new(max_head: usize) -> RequestFramer {
        RequestFramer { max_head, state: State::Head { searched: 0 } }
    }

    /// Looks at `buf`, the unforwarded bytes (starting where the last call
    /// left off, minus what it said to consume), and says what its front is.
    /// After [`Framed::Head`] and [`Framed::Body`] the caller consumes that
    /// many bytes; after [`Framed::NeedMore`] it keeps them.
    pub fn next<'a>(&mut self, buf: &'a [u8]) -> Framed<'a> {
        if buf.is_empty() {
            return Framed::NeedMore;
        }
        match &mut self.state {
            State::Done(why) => Framed::Unframeable(why.clone()),
            State::Head { searched } => match find_head_end(buf, *searched) {
                Err(resume) if buf.len() <= self.max_head => {
                    *searched = resume;
                    Framed::NeedMore
                }
                Err(_) => self.give_up(format!("http: request head exceeds {} bytes", self.max_head)),
                Ok(end) if end > self.max_head => self.give_up(format!("http: request head exceeds {} bytes", self.max_head)),
                Ok(end) => match view(&buf[..end], true) {
                    Ok(head) => {
                        self.state = body_state(&head);
                        Framed::Head(head)
                    }
                    Err(e) => self.give_up(e.to_string()),
                },
            },
            State::Body(left) => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                *left -= n as u64;
                if *left == 0 {
                    self.state = State::Head { searched: 0 };
                }
                Framed::Body(n)
            }
            State::Chunked(chunk) => match chunk.step(buf, self.max_head, self.max_head) {
                Ok(Step::Framing(n) | Step::Data(n)) => Framed::Body(n),
                Ok(Step::Done(n, _)) => {
                    self.state = State::Head { searched: 0 };
                    Framed::Body(n)
                }
                Ok(Step::NeedMore) => Framed::NeedMore,
                Err(why) => self.give_up(why),
            },
        }
    }

    /// True when the next bytes start a request head (the previous
    /// request's body, if any, is complete).
    pub fn at_head(&self) -> bool {
        matches!(self.state, State::Head { .. })
    }

    fn give_up<'a>(&mut self, why: String) -> Framed<'a> {
        self.state = State::Done(why.clone());
        Framed::Unframeable(why)
    }
}

/// What follows a request head.
fn body_state(head: &HeadView<'_>) -> State {
    let info = head.info();
    if head.method().is_some_and(|m| m.eq_ignore_ascii_case(b"CONNECT")) || info.upgrade.is_some() {
        return State::Done("http: the connection is handed over (CONNECT or Upgrade)".into());
    }
    match request_body(info) {
        Err(why) => State::Done(why.into()),
        Ok(RequestBody::Chunked) => State::Chunked(ChunkState::Size),
        Ok(RequestBody::Length(0)) => State::Head { searched: 0 },
        Ok(RequestBody::Length(n)) => State::Body(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `input` fed in two pieces split at `cut`: (what, bytes) per step.
    fn frame(input: &[u8], cut: usize) -> Vec<(char, usize)> {
        let mut f = RequestFramer::new(1024);
        let (mut held, mut out) = (Vec::new(), Vec::new());
        for piece in [&input[..cut], &input[cut..]] {
            held.extend_from_slice(piece);
            loop {
                let (what, n) = match f.next(&held) {
                    Framed::Head(h) => ('H', h.head_len()),
                    Framed::Body(n) => ('B', n),
                    Framed::NeedMore => break,
                    Framed::Unframeable(_) => ('U', held.len()),
                };
                // Merge consecutive body steps: their sizes depend on the split.
                match out.last_mut() {
                    Some(('B', m)) if what == 'B' => *m += n,
                    _ => out.push((what, n)),
                }
                held.drain(..n);
            }
        }
        out
    }

    #[test]
    fn frames_heads_and_bodies_at_every_split() {
        let input = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\nT: 1\r\n\r\nGET /c HTTP/1.1\n\n";
        let whole = frame(input, input.len());
        assert_eq!(whole, vec![('H', 39), ('B', 3), ('H', 48), ('B', 19), ('H', 17)]);
        for cut in 0..input.len() {
            assert_eq!(frame(input, cut), whole, "cut at {cut}");
        }
        let gzip = b"POST /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nrest";
        assert_eq!(frame(gzip, gzip.len()), vec![('H', 45), ('U', 4)]);
        let upgrade = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nrest";
        assert_eq!(frame(upgrade, 0), vec![('H', 38), ('U', 4)]);
        assert_eq!(frame(b"\x16\x03\x01\r\n\r\n", 0), vec![('U', 7)]);
        assert_eq!(frame(&[b'a'; 2000], 0), vec![('U', 2000)]);
    }
}
