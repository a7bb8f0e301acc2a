//! One-shot parsing of a stored reply: the stream decoder's framer
//! ([`super::scan`], with its depth and size limits) says where the value
//! ends or why it is not RESP, then [`super::parse`] builds it, so a
//! reply at rest reads exactly as it did in flight.

use super::parse::parse_value;
use super::scan::{Scan, Scanner};
use super::value::RespValue;
use crate::{Limits, ParseError};
use bytes::Bytes;

/// Parses the server value at the start of `raw` (RESP2 or RESP3): the
/// value and how many bytes it took. Aggregates nested deeper than
/// [`super::MAX_DEPTH`] and lengths past [`Limits::max_frame`] are
/// [`ParseError::Invalid`], as they are to the stream decoder; a value cut
/// short is [`ParseError::Incomplete`]. Never recurses deeper than the
/// limit, whatever the input.
pub fn parse_reply(raw: &Bytes) -> Result<(RespValue, usize), ParseError> {
    let mut scanner = Scanner::new(false, 0);
    match scanner.scan(raw, Limits::default().max_frame) {
        Scan::Complete(n) => Ok((parse_value(&raw.slice(..n), raw.first().copied()).0, n)),
        Scan::Incomplete => Err(ParseError::Incomplete { protocol: "redis", have: raw.len() }),
        Scan::Invalid => Err(ParseError::Invalid(scanner.error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::MAX_DEPTH;

    #[test]
    fn values_lengths_and_errors() {
        let p = |b: &'static [u8]| parse_reply(&Bytes::from_static(b));
        assert_eq!(p(b"+OK\r\n+x"), Ok((RespValue::Simple(Bytes::from_static(b"OK")), 5)));
        assert_eq!(p(b"$-1\r\n"), Ok((RespValue::NullBulk, 5)));
        assert_eq!(
            p(b"%1\r\n+k\r\n#t\r\n"),
            Ok((RespValue::Map(vec![(RespValue::Simple(Bytes::from_static(b"k")), RespValue::Boolean(true))]), 12))
        );
        assert_eq!(p(b"$5\r\nab"), Err(ParseError::Incomplete { protocol: "redis", have: 6 }));
        assert!(matches!(p(b"?x\r\n"), Err(ParseError::Invalid(e)) if e.contains("type byte")));
        let mut deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
        deep.extend_from_slice(b":1\r\n");
        let err = parse_reply(&Bytes::from(deep)).unwrap_err();
        assert!(err.to_string().contains("nested deeper than 128"), "{err}");
        // A million levels: refused at the limit, without recursing.
        let err = parse_reply(&Bytes::from(b"*1\r\n".repeat(1_000_000))).unwrap_err();
        assert!(err.to_string().contains("nested deeper than 128"), "{err}");
    }
}
