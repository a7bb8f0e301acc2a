//! Framing: finds where one RESP message ends, resumably.
//!
//! The [`Scanner`] walks a direction's buffer from the start of the current
//! message and stops at the first byte it lacks, remembering how far it got
//! (position, open aggregates) so that a message arriving in a thousand
//! pieces is walked once, not a thousand times. It only checks structure
//! (type bytes, lengths, counts, CRLFs) and never allocates per element;
//! building values is [`super::parse`]'s job once the whole message is in.
//!
//! Client side (`ToServer`) follows the Redis server's own request parser:
//! a message starting with `*` is an array of bulk strings, anything else is
//! an inline command (one line ending in `\n`). While scanning an array the
//! scanner records the byte span of each argument, so commands are decoded
//! in this single pass.

use smallvec::SmallVec;

/// Deepest nesting of aggregates accepted in a reply (the decoder falls
/// back to opaque beyond it).
pub const MAX_DEPTH: usize = 128;

/// Spans of command arguments kept inline before spilling to the heap.
pub(crate) type Spans = SmallVec<[(u32, u32); 4]>;

/// The outcome of one scan.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The message is the first `n` bytes of the buffer.
    Complete(usize),
    /// A strict prefix: wait for more bytes.
    Incomplete,
    /// Not RESP (or over a limit): [`Scanner::error`] says why.
    Invalid,
}

/// What the client-side scanner learnt about the command it framed.
#[derive(Debug, Default)]
pub(crate) struct CommandScan {
    /// An inline command (a text line) rather than an array.
    pub inline: bool,
    /// Number of arguments the array header announced (0 for inline).
    pub argc: u64,
    /// (start, end) of each argument's payload, relative to the message
    /// start, for arguments starting before the keep limit.
    pub spans: Spans,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    /// At the first byte of a command.
    Start,
    /// Inside an inline command line.
    Inline,
    /// Inside an array: this many arguments still to come.
    Args(u64),
}

/// Resumable framing state for one direction.
#[derive(Debug)]
pub(crate) struct Scanner {
    client: bool,
    /// Bytes of the current message already walked.
    pos: usize,
    /// Where to resume looking for a line end (avoids re-searching a long
    /// partial line on every feed).
    line_from: usize,
    /// Server side: elements still expected by each open aggregate.
    stack: Vec<u64>,
    /// Client side.
    cstate: ClientState,
    cmd: CommandScan,
    /// Client side: argument spans starting at or after this offset are not
    /// recorded (they fall outside the kept prefix anyway).
    keep: usize,
    /// Why the last scan returned [`Scan::Invalid`].
    pub(crate) error: String,
}

/// Reads `[-]digits\r\n` starting at `at`. `Ok(None)`: more bytes needed.
/// Returns the number and the offset just past the `\n`.
#[inline]
pub(crate) fn read_int_line(buf: &[u8], at: usize) -> Result<Option<(i64, usize)>, &'static str> {
    let mut i = at;
    let neg = buf.get(i) == Some(&b'-');
    if neg {
        i += 1;
    }
    let digits = i;
    let mut v: i64 = 0;
    loop {
        match buf.get(i) {
            None => return Ok(None),
            Some(&c) if c.is_ascii_digit() => {
                let d = i64::from(c - b'0');
                v = v
                    .checked_mul(10)
                    .and_then(|v| {
                        if neg {
                            v.checked_sub(d)
                        } else {
                            v.checked_add(d)
                        }
                    })
                    .ok_or("number out of range")?;
                i += 1;
            }
            Some(b'\r') => break,
            Some(_) => return Err("bad character in a number"),
        }
    }
    if i == digits {
        return Err("empty number");
    }
    match buf.get(i + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((v, i + 2))),
        Some(_) => Err("number not followed by CRLF"),
    }
}

/// The common case of [`read_int_line`], fast: one to three digits and
/// `\r\n`, all present. `None` for anything else (longer, negative, cut
/// short, malformed), which the caller hands to `read_int_line`.
#[inline]
fn read_len_line(buf: &[u8], at: usize) -> Option<(i64, usize)> {
    let b = buf.get(at..at + 5).or_else(|| buf.get(at..))?;
    let digit = |i: usize| b.get(i).filter(|c| c.is_ascii_digit()).map(|c| i64::from(c - b'0'));
    let mut v = digit(0)?;
    for i in 1..4 {
        match b.get(i..i + 2) {
            Some(b"\r\n") => return Some((v, at + i + 2)),
            _ => v = v * 10 + digit(i)?,
        }
    }
    None
}

/// [`read_int_line`], trying [`read_len_line`] first.
#[inline]
fn int_line(buf: &[u8], at: usize) -> Result<Option<(i64, usize)>, &'static str> {
    match read_len_line(buf, at) {
        Some(x) => Ok(Some(x)),
        None => read_int_line(buf, at),
    }
}

/// The largest message the quick framers accept: runs index their bytes
/// with `u32`s, and a run is cut before it reaches [`RUN_MAX`].
pub(crate) const RUN_MESSAGE_MAX: usize = 1 << 30;

/// A run is emitted once it holds this many bytes, so that a message of up
/// to [`RUN_MESSAGE_MAX`] still fits a `u32` offset after it.
pub(crate) const RUN_MAX: usize = 1 << 30;

/// Frames a plain command at the start of `buf` in one pass, for the
/// decoder's fast path: a RESP array of one or more bulk strings, whole in
/// `buf`, at most `cap` bytes (and `max_frame`). Pushes each argument's
/// span, shifted by `base`, to `spans` and returns the command's length.
/// `None` (with `spans` as it was) for anything else, which the resumable
/// [`Scanner`] then frames: it gives the same length and spans whenever
/// this succeeds.
pub(crate) fn frame_plain_command(
    buf: &[u8],
    cap: usize,
    max_frame: usize,
    base: u32,
    spans: &mut super::run::ArgSpans,
) -> Option<usize> {
    let limit = cap.min(max_frame).min(RUN_MESSAGE_MAX);
    if buf.first() != Some(&b'*') {
        return None;
    }
    let (n, mut at) = int_line(buf, 1).ok()??;
    if n < 1 || (n as u64).saturating_mul(6) > max_frame as u64 {
        return None;
    }
    let mark = spans.len();
    for _ in 0..n {
        let framed = (|| {
            if buf.get(at) != Some(&b'$') {
                return None;
            }
            let (len, start) = int_line(buf, at + 1).ok()??;
            let len = usize::try_from(len).ok()?;
            let end = start.checked_add(len)?;
            if end.checked_add(2)? > limit || buf.get(end..end + 2)? != b"\r\n" {
                return None;
            }
            Some((start, end))
        })();
        let Some((start, end)) = framed else {
            spans.truncate(mark);
            return None;
        };
        spans.push((start as u32 + base, end as u32 + base));
        at = end + 2;
    }
    Some(at)
}

/// Frames a plain reply at the start of `buf` in one pass, for the
/// decoder's fast path: a simple string, error, integer, or bulk string
/// (or its null), whole in `buf`, at most `cap` bytes (and `max_frame`).
/// `None` for anything else, which the resumable [`Scanner`] then frames:
/// it gives the same length whenever this succeeds.
pub(crate) fn frame_plain_reply(buf: &[u8], cap: usize, max_frame: usize) -> Option<usize> {
    let limit = cap.min(max_frame).min(RUN_MESSAGE_MAX);
    let len = match buf.first()? {
        b'+' | b'-' => {
            // Status lines are short (`+OK`): a plain loop beats memchr's
            // setup.
            let line = buf.get(1..limit.min(buf.len()))?;
            let cr = line.iter().take(64).position(|&b| b == b'\r').or_else(|| memchr::memchr(b'\r', line))? + 1;
            (buf.get(cr + 1)? == &b'\n').then_some(cr + 2)?
        }
        b':' => int_line(buf, 1).ok()??.1,
        b'$' => {
            let (len, start) = int_line(buf, 1).ok()??;
            if len == -1 {
                start
            } else {
                let end = start.checked_add(usize::try_from(len).ok()?)?;
                (buf.get(end..end + 2)? == b"\r\n").then_some(end + 2)?
            }
        }
        _ => return None,
    };
    (len <= limit).then_some(len)
}

/// Finds the `\r\n` ending the line that starts at or before `from`.
/// `Ok(Some(i))`: `buf[i..i+2] == "\r\n"`. `Ok(None)`: not yet; resume the
/// search from the returned hint next time.
#[inline]
pub(crate) fn find_crlf(buf: &[u8], from: usize) -> Result<Option<usize>, usize> {
    let tail = match buf.get(from..) {
        Some(t) => t,
        None => return Err(buf.len()),
    };
    match memchr::memchr(b'\r', tail) {
        Some(k) => {
            let i = from + k;
            match buf.get(i + 1) {
                Some(b'\n') => Ok(Some(i)),
                Some(_) => Ok(None),
                None => Err(i),
            }
        }
        None => Err(buf.len()),
    }
}

impl Scanner {
    /// A scanner for the client side (`client`) or the server side; `keep`
    /// bounds the argument spans recorded (the request cap).
    pub(crate) fn new(client: bool, keep: usize) -> Scanner {
        Scanner {
            client,
            pos: 0,
            line_from: 0,
            stack: Vec::new(),
            cstate: ClientState::Start,
            cmd: CommandScan::default(),
            keep,
            error: String::new(),
        }
    }

    /// True when the scanner is part-way through a message: it holds state
    /// about the bytes at the front of the buffer, so nothing else may frame
    /// them. That includes a first line searched without finding its end
    /// (`line_from`), where `pos` is still 0: missing it let the fast path
    /// frame that message and the scanner then resume the next one's line
    /// search at the stale offset.
    pub(crate) fn in_progress(&self) -> bool {
        self.pos != 0 || self.line_from != 0 || self.cstate != ClientState::Start
    }

    /// What the last complete client message held, left in place.
    pub(crate) fn command(&self) -> &CommandScan {
        &self.cmd
    }

    /// Takes what the last complete client message held (call after
    /// [`Scan::Complete`]).
    pub(crate) fn take_command(&mut self) -> CommandScan {
        std::mem::take(&mut self.cmd)
    }

    /// Forgets the current message (after it completed, or at end of stream).
    pub(crate) fn reset(&mut self) {
        self.pos = 0;
        self.line_from = 0;
        self.stack.clear();
        self.cstate = ClientState::Start;
    }

    /// Walks `buf` (which starts at the current message's first byte) as far
    /// as it can.
    pub(crate) fn scan(&mut self, buf: &[u8], max_frame: usize) -> Scan {
        let r = if self.client {
            self.scan_client(buf, max_frame)
        } else {
            self.scan_server(buf, max_frame)
        };
        match r {
            Scan::Complete(n) if n > max_frame => self.fail(too_big(n, max_frame)),
            Scan::Incomplete if buf.len() > max_frame => self.fail(too_big(buf.len(), max_frame)),
            r => r,
        }
    }

    /// Records why the input is not acceptable.
    #[cold]
    fn fail(&mut self, reason: impl Into<String>) -> Scan {
        self.error = reason.into();
        Scan::Invalid
    }

    fn complete(&mut self, n: usize) -> Scan {
        self.reset();
        Scan::Complete(n)
    }

    fn scan_client(&mut self, buf: &[u8], max_frame: usize) -> Scan {
        loop {
            match self.cstate {
                ClientState::Start => {
                    let Some(&first) = buf.first() else {
                        return Scan::Incomplete;
                    };
                    if first != b'*' {
                        self.cmd.inline = true;
                        self.cstate = ClientState::Inline;
                        continue;
                    }
                    let (n, next) = match int_line(buf, 1) {
                        Ok(Some(x)) => x,
                        Ok(None) => return Scan::Incomplete,
                        Err(e) => {
                            return self.fail(format!("redis: invalid multibulk length: {e}"))
                        }
                    };
                    if n <= 0 {
                        // Redis ignores `*0` and `*-1` requests: no command, no reply.
                        return self.complete(next);
                    }
                    let n = n as u64;
                    if n.saturating_mul(6) > max_frame as u64 {
                        return self.fail(format!(
                            "redis: command of {n} arguments cannot fit max_frame {max_frame} bytes"
                        ));
                    }
                    self.cmd.argc = n;
                    self.pos = next;
                    self.cstate = ClientState::Args(n);
                }
                ClientState::Inline => {
                    let from = self.line_from.max(self.pos);
                    match buf.get(from..).and_then(|t| memchr::memchr(b'\n', t)) {
                        Some(k) => return self.complete(from + k + 1),
                        None => {
                            self.line_from = buf.len();
                            return Scan::Incomplete;
                        }
                    }
                }
                ClientState::Args(mut left) => {
                    while left > 0 {
                        let at = self.pos;
                        match buf.get(at) {
                            None => return Scan::Incomplete,
                            Some(b'$') => {}
                            Some(&c) => {
                                return self.fail(format!(
                                    "redis: expected '$' for a command argument, got 0x{c:02x}"
                                ))
                            }
                        }
                        let (len, start) = match int_line(buf, at + 1) {
                            Ok(Some(x)) => x,
                            Ok(None) => return Scan::Incomplete,
                            Err(e) => return self.fail(format!("redis: invalid bulk length: {e}")),
                        };
                        if len < 0 {
                            return self
                                .fail(format!("redis: invalid bulk length {len} in a command"));
                        }
                        let len = len as u64;
                        if len > max_frame as u64 {
                            return self.fail(too_big_bulk(len, max_frame));
                        }
                        let next = match bulk_end(buf, start, len) {
                            Ok(Some(next)) => next,
                            Ok(None) => return Scan::Incomplete,
                            Err(e) => return self.fail(format!("redis: {e}")),
                        };
                        let end = next - 2;
                        if start < self.keep {
                            if let (Ok(s), Ok(e)) = (u32::try_from(start), u32::try_from(end)) {
                                self.cmd.spans.push((s, e));
                            }
                        }
                        self.pos = next;
                        left -= 1;
                        self.cstate = ClientState::Args(left);
                    }
                    let n = self.pos;
                    return self.complete(n);
                }
            }
        }
    }

    fn scan_server(&mut self, buf: &[u8], max_frame: usize) -> Scan {
        loop {
            let at = self.pos;
            let Some(&t) = buf.get(at) else {
                return Scan::Incomplete;
            };
            let mut children: u64 = 0;
            let next = match t {
                b'+' | b'-' | b',' | b'(' => {
                    let from = self.line_from.max(at + 1);
                    match find_crlf(buf, from) {
                        Ok(Some(i)) => i + 2,
                        Ok(None) => return self.fail("redis: bare CR in a simple line"),
                        Err(hint) => {
                            self.line_from = hint;
                            return Scan::Incomplete;
                        }
                    }
                }
                b':' => match int_line(buf, at + 1) {
                    Ok(Some((_, next))) => next,
                    Ok(None) => return Scan::Incomplete,
                    Err(e) => return self.fail(format!("redis: invalid integer: {e}")),
                },
                b'_' => match buf.get(at + 1..at + 3) {
                    None => return Scan::Incomplete,
                    Some(b"\r\n") => at + 3,
                    Some(_) => return self.fail("redis: invalid null"),
                },
                b'#' => match buf.get(at + 1..at + 4) {
                    Some(b"t\r\n") | Some(b"f\r\n") => at + 4,
                    Some(_) => return self.fail("redis: invalid boolean"),
                    None => {
                        // A prefix of `#t\r\n` is incomplete; anything else is wrong now.
                        let have = buf.get(at + 1..).unwrap_or(&[]);
                        if matches!(have, [] | [b't' | b'f'] | [b't' | b'f', b'\r']) {
                            return Scan::Incomplete;
                        }
                        return self.fail("redis: invalid boolean");
                    }
                },
                b'$' | b'!' | b'=' => {
                    let (len, start) = match int_line(buf, at + 1) {
                        Ok(Some(x)) => x,
                        Ok(None) => return Scan::Incomplete,
                        Err(e) => return self.fail(format!("redis: invalid bulk length: {e}")),
                    };
                    if len == -1 && t == b'$' {
                        start
                    } else if len < 0 {
                        return self.fail(format!("redis: invalid length {len}"));
                    } else {
                        let len = len as u64;
                        if len > max_frame as u64 {
                            return self.fail(too_big_bulk(len, max_frame));
                        }
                        match bulk_end(buf, start, len) {
                            Ok(Some(next)) => next,
                            Ok(None) => return Scan::Incomplete,
                            Err(e) => return self.fail(format!("redis: {e}")),
                        }
                    }
                }
                b'*' | b'~' | b'>' | b'%' | b'|' => {
                    let (n, next) = match int_line(buf, at + 1) {
                        Ok(Some(x)) => x,
                        Ok(None) => return Scan::Incomplete,
                        Err(e) => {
                            return self.fail(format!("redis: invalid aggregate length: {e}"))
                        }
                    };
                    if n == -1 && t == b'*' {
                        next
                    } else if n < 0 {
                        return self.fail(format!("redis: invalid aggregate length {n}"));
                    } else {
                        let n = n as u64;
                        children = match t {
                            b'%' => n.saturating_mul(2),
                            b'|' => n.saturating_mul(2).saturating_add(1),
                            _ => n,
                        };
                        if children.saturating_mul(3) > max_frame as u64 {
                            return self.fail(format!(
                                "redis: aggregate of {children} elements cannot fit max_frame {max_frame} bytes"
                            ));
                        }
                        if children > 0 && self.stack.len() >= MAX_DEPTH {
                            return self
                                .fail(format!("redis: aggregates nested deeper than {MAX_DEPTH}"));
                        }
                        next
                    }
                }
                _ => return self.fail(format!("redis: unknown RESP type byte 0x{t:02x}")),
            };
            self.pos = next;
            self.line_from = 0;
            if next > max_frame {
                return self.fail(too_big(next, max_frame));
            }
            if children > 0 {
                self.stack.push(children);
                continue;
            }
            // A value ended: close every aggregate it completes.
            loop {
                match self.stack.last_mut() {
                    None => return self.complete(next),
                    Some(left) => {
                        *left -= 1;
                        if *left == 0 {
                            self.stack.pop();
                        } else {
                            break;
                        }
                    }
                }
            }
        }
    }
}

fn too_big(n: usize, max_frame: usize) -> String {
    format!("redis: message of at least {n} bytes exceeds max_frame {max_frame} bytes")
}

/// Checks the `\r\n` after a bulk payload of `len` bytes starting at
/// `start`: `Ok(Some(next))` past it, `Ok(None)` when more bytes are needed.
#[inline]
fn bulk_end(buf: &[u8], start: usize, len: u64) -> Result<Option<usize>, &'static str> {
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| start.checked_add(l))
        .ok_or("bulk length out of range")?;
    let next = end.checked_add(2).ok_or("bulk length out of range")?;
    match buf.get(end..next) {
        None => Ok(None),
        Some(b"\r\n") => Ok(Some(next)),
        Some(_) => Err("bulk string not followed by CRLF"),
    }
}

fn too_big_bulk(len: u64, max_frame: usize) -> String {
    format!("redis: bulk string of {len} bytes exceeds max_frame {max_frame} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(b: &[u8]) -> Scan {
        Scanner::new(false, usize::MAX).scan(b, 1 << 20)
    }

    #[test]
    fn server_values() {
        assert_eq!(server(b"+OK\r\n"), Scan::Complete(5));
        assert_eq!(server(b"$3\r\nabc\r\n+x"), Scan::Complete(9));
        assert_eq!(server(b"*2\r\n:1\r\n*1\r\n_\r\n"), Scan::Complete(15));
        assert_eq!(server(b"|1\r\n+a\r\n+b\r\n:1\r\n"), Scan::Complete(16));
        assert_eq!(server(b"*-1\r\n"), Scan::Complete(5));
        assert_eq!(server(b"*0\r\n"), Scan::Complete(4));
        for n in 0..9 {
            assert_eq!(
                server(&b"$3\r\nabc\r\n"[..n]),
                Scan::Incomplete,
                "prefix {n}"
            );
        }
        assert!(server(b"x") == Scan::Invalid);
        assert!(matches!(server(b"$3\r\nabcd\r\n"), Scan::Invalid));
        assert!(matches!(server(b"*1000000000\r\n"), Scan::Invalid));
        assert!(matches!(server(b"$-2\r\n"), Scan::Invalid));
    }

    #[test]
    fn resumes() {
        let msg = b"*3\r\n$1\r\na\r\n*1\r\n:7\r\n+hello world\r\n";
        let mut s = Scanner::new(false, usize::MAX);
        for n in 0..msg.len() {
            assert_eq!(s.scan(&msg[..n], 1 << 20), Scan::Incomplete, "prefix {n}");
        }
        assert_eq!(s.scan(msg, 1 << 20), Scan::Complete(msg.len()));
        assert!(!s.in_progress());
    }

    #[test]
    fn fast_length_lines_agree_with_the_general_reader() {
        let cases: &[&[u8]] = &[
            b"0\r\n", b"7\r\n", b"42\r\n", b"999\r\n", b"1000\r\n", b"-1\r\n", b"12", b"12\r", b"1\rx",
            b"\r\n", b"x\r\n", b"1x\r\n", b"007\r\n", b"", b"5\n",
        ];
        for c in cases {
            let fast = read_len_line(c, 0);
            let general = read_int_line(c, 0);
            if let Some(x) = fast {
                assert_eq!(general, Ok(Some(x)), "{c:?}");
            }
            assert_eq!(int_line(c, 0), general, "{c:?}");
        }
        assert_eq!(read_len_line(b"$16\r\nkey", 1), Some((16, 5)));
    }

    #[test]
    fn depth_limit() {
        let mut m = b"*1\r\n".repeat(MAX_DEPTH);
        m.extend_from_slice(b":1\r\n");
        assert_eq!(server(&m), Scan::Complete(m.len()));
        let mut m = b"*1\r\n".repeat(MAX_DEPTH + 1);
        m.extend_from_slice(b":1\r\n");
        assert!(matches!(server(&m), Scan::Invalid));
    }

    #[test]
    fn client_commands() {
        let mut s = Scanner::new(true, usize::MAX);
        let m = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        assert_eq!(s.scan(m, 1 << 20), Scan::Complete(m.len()));
        let c = s.take_command();
        assert_eq!(c.argc, 2);
        assert_eq!(&c.spans[..], &[(8, 11), (17, 18)]);
        assert_eq!(s.scan(b"PING\r\n", 1 << 20), Scan::Complete(6));
        assert!(s.take_command().inline);
        assert_eq!(s.scan(b"*1\r\n:1\r\n", 1 << 20), Scan::Invalid);
    }
}
