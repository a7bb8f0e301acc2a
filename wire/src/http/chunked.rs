//! The chunked transfer coding (RFC 9112 §7.1), as a push parser over the
//! bytes that follow the head: it says how many of the available bytes are
//! framing, how many are content, and when the body (trailers included) is
//! complete. It never looks past what it was given and never buffers.

use super::head::{find_head_end, parse_trailers};
use super::message::Header;

/// Where the parser is inside a chunked body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChunkState {
    /// Expecting a chunk-size line (`1a;ext=1\r\n`).
    Size,
    /// Inside chunk data: this many content bytes still to come.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer fields up to the empty line. `searched`
    /// is where to resume looking for that empty line.
    Trailers { searched: usize },
}

/// One parsing step.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The first `n` bytes are framing (size line, CRLF).
    Framing(usize),
    /// The first `n` bytes are content.
    Data(usize),
    /// The first `n` bytes end the body; these are its trailers.
    Done(usize, Vec<Header>),
    /// Nothing can be decided until more bytes arrive.
    NeedMore,
}

impl ChunkState {
    /// Looks at `avail` (the unparsed bytes of the body) and takes one step.
    /// `line_max` bounds a chunk-size line, `trailer_max` the trailer section.
    /// Results depend only on the bytes, never on how they were split.
    pub fn step(&mut self, avail: &[u8], line_max: usize, trailer_max: usize) -> Result<Step, String> {
        match self {
            ChunkState::Size => match size_line(avail, line_max)? {
                None => Ok(Step::NeedMore),
                Some((n, 0)) => {
                    *self = ChunkState::Trailers { searched: 0 };
                    Ok(Step::Framing(n))
                }
                Some((n, size)) => {
                    *self = ChunkState::Data(size);
                    Ok(Step::Framing(n))
                }
            },
            ChunkState::Data(left) => {
                if avail.is_empty() {
                    return Ok(Step::NeedMore);
                }
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(avail.len());
                *left -= n as u64;
                if *left == 0 {
                    *self = ChunkState::DataEnd;
                }
                Ok(Step::Data(n))
            }
            ChunkState::DataEnd => match (avail.first(), avail.get(1)) {
                (None, _) | (Some(b'\r'), None) => Ok(Step::NeedMore),
                (Some(b'\r'), Some(b'\n')) => {
                    *self = ChunkState::Size;
                    Ok(Step::Framing(2))
                }
                (Some(b'\n'), _) => {
                    *self = ChunkState::Size;
                    Ok(Step::Framing(1))
                }
                _ => Err("http: chunk data not followed by CRLF".into()),
            },
            ChunkState::Trailers { searched } => match (avail.first(), avail.get(1)) {
                (None, _) | (Some(b'\r'), None) => Ok(Step::NeedMore),
                (Some(b'\r'), Some(b'\n')) => Ok(Step::Done(2, Vec::new())),
                (Some(b'\n'), _) => Ok(Step::Done(1, Vec::new())),
                _ => match find_head_end(avail, *searched) {
                    Ok(end) if end > trailer_max => Err(trailer_too_big(end, trailer_max)),
                    Ok(end) => Ok(Step::Done(end, parse_trailers(avail.get(..end).unwrap_or_default())?)),
                    Err(_) if avail.len() > trailer_max => Err(trailer_too_big(avail.len(), trailer_max)),
                    Err(resume) => {
                        *searched = resume;
                        Ok(Step::NeedMore)
                    }
                },
            },
        }
    }
}

fn trailer_too_big(_len: usize, max: usize) -> String {
    format!("http: chunked trailer section exceeds max_frame ({max} bytes)")
}

/// Parses `chunk-size [ BWS ; chunk-ext ] CRLF` at the start of `avail`.
/// Returns the line length and the size, or `None` if the line is not
/// complete yet. A line longer than `line_max` is an error whether or not
/// its end has arrived, so the outcome does not depend on read boundaries.
fn size_line(avail: &[u8], line_max: usize) -> Result<Option<(usize, u64)>, String> {
    let mut size: u64 = 0;
    let mut digits = 0usize;
    for &b in avail {
        let v = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => break,
        };
        if digits == 16 {
            return Err("http: chunk size has more than 16 hex digits".into());
        }
        size = (size << 4) | u64::from(v);
        digits += 1;
    }
    let too_long = |_: usize| format!("http: chunk-size line longer than {line_max} bytes");
    let mut i = digits;
    while matches!(avail.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    let end = match avail.get(i) {
        None => None,
        Some(b';') => avail.get(i..).and_then(|r| r.iter().position(|&b| b == b'\n')).map(|p| i + p + 1),
        Some(b'\r') => match avail.get(i + 1) {
            None => None,
            Some(b'\n') => Some(i + 2),
            Some(_) => return Err("http: bare CR in chunk-size line".into()),
        },
        Some(b'\n') => Some(i + 1),
        Some(&b) => return Err(format!("http: invalid byte {b:#04x} in chunk-size line")),
    };
    match end {
        Some(n) if n > line_max => Err(too_long(n)),
        None if avail.len() > line_max => Err(too_long(avail.len())),
        None => Ok(None),
        Some(_) if digits == 0 => Err("http: chunk-size line without a size".into()),
        Some(n) => Ok(Some((n, size))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the parser over a complete body: returns content and trailers.
    fn run(body: &[u8]) -> Result<(Vec<u8>, Vec<Header>, usize), String> {
        let mut st = ChunkState::Size;
        let mut at = 0;
        let mut content = Vec::new();
        loop {
            match st.step(&body[at..], 64, 1024)? {
                Step::Framing(n) => at += n,
                Step::Data(n) => {
                    content.extend_from_slice(&body[at..at + n]);
                    at += n
                }
                Step::Done(n, t) => return Ok((content, t, at + n)),
                Step::NeedMore => return Err("need more".into()),
            }
        }
    }

    #[test]
    fn table() {
        let (c, t, n) = run(b"4\r\nWiki\r\n5;a=b\r\npedia\r\n0\r\n\r\nrest").unwrap();
        assert_eq!((&c[..], t.len(), n), (&b"Wikipedia"[..], 0, 28));
        let (c, t, _) = run(b"A \t; x\r\n0123456789\n0\nX-T: 1\r\nY: 2\r\n\r\n").unwrap();
        assert_eq!(&c[..], b"0123456789");
        assert_eq!(t, vec![("X-T".into(), "1".into()), ("Y".into(), "2".into())]);
        assert!(run(b"\r\n").unwrap_err().contains("without a size"));
        assert!(run(b"g\r\n").unwrap_err().contains("invalid byte"));
        assert!(run(b"11111111111111111\r\n").unwrap_err().contains("16 hex"));
        assert!(run(b"1\r\nab\r\n").unwrap_err().contains("CRLF"));
        assert!(run(b"1;xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
            .unwrap_err()
            .contains("longer"));
        assert!(run(b"0\r\nbad header\r\n\r\n").unwrap_err().contains("trailer"));
    }

    #[test]
    fn every_prefix_needs_more() {
        let body = b"4\r\nWiki\r\n5;a=b\r\npedia\r\n0\r\nT: v\r\n\r\n";
        for cut in 0..body.len() {
            assert_eq!(run(&body[..cut]).unwrap_err(), "need more", "cut at {cut}");
        }
    }
}
