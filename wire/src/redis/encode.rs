//! Encoders: commands for the replayer, RESP values for tests and tools.

use super::value::RespValue;
use std::io::Write;

/// Encodes a command as a RESP array of bulk strings, the way every Redis
/// client sends it: `encode_command(&[b"GET", b"k"])` is
/// `*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    encode_command_into(args, &mut out);
    out
}

/// [`encode_command`] appending to `out`.
pub fn encode_command_into(args: &[&[u8]], out: &mut Vec<u8>) {
    let _ = write!(out, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(out, "${}\r\n", a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Encodes a command as an inline command line (what `telnet` users type),
/// quoting arguments that need it so that Redis splits it back into the
/// same arguments: `encode_inline(&[b"SET", b"k", b"a b"])` is
/// `SET k "a b"\r\n`.
pub fn encode_inline(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        // A line starting with `*` would be read as a RESP array: quote it.
        let plain = !a.is_empty()
            && (i != 0 || a[0] != b'*')
            && a.iter()
                .all(|&c| c.is_ascii_graphic() && !matches!(c, b'"' | b'\'' | b'\\'));
        if plain {
            out.extend_from_slice(a);
            continue;
        }
        out.push(b'"');
        for &c in a.iter() {
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                c if c == b' ' || c.is_ascii_graphic() => out.push(c),
                c => {
                    let _ = write!(out, "\\x{c:02x}");
                }
            }
        }
        out.push(b'"');
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Encodes a RESP value. Simple strings, errors, doubles and big numbers
/// are written as they are: they must not contain `\r` or `\n`.
pub fn encode_value(v: &RespValue) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value_into(v, &mut out);
    out
}

/// [`encode_value`] appending to `out`.
pub fn encode_value_into(v: &RespValue, out: &mut Vec<u8>) {
    fn line(out: &mut Vec<u8>, t: u8, text: &[u8]) {
        out.push(t);
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
    fn blob(out: &mut Vec<u8>, t: u8, data: &[u8]) {
        let _ = write!(out, "{}{}\r\n", t as char, data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    fn header(out: &mut Vec<u8>, t: u8, n: usize) {
        let _ = write!(out, "{}{}\r\n", t as char, n);
    }
    match v {
        RespValue::Simple(s) => line(out, b'+', s),
        RespValue::Error(s) => line(out, b'-', s),
        RespValue::Integer(n) => {
            let _ = write!(out, ":{n}\r\n");
        }
        RespValue::Bulk(b) => blob(out, b'$', b),
        RespValue::NullBulk => out.extend_from_slice(b"$-1\r\n"),
        RespValue::NullArray => out.extend_from_slice(b"*-1\r\n"),
        RespValue::Null => out.extend_from_slice(b"_\r\n"),
        RespValue::Boolean(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        RespValue::Double(s) => line(out, b',', s),
        RespValue::BigNumber(s) => line(out, b'(', s),
        RespValue::BulkError(b) => blob(out, b'!', b),
        RespValue::Verbatim(b) => blob(out, b'=', b),
        RespValue::Array(items) | RespValue::Set(items) | RespValue::Push(items) => {
            let t = match v {
                RespValue::Array(_) => b'*',
                RespValue::Set(_) => b'~',
                _ => b'>',
            };
            header(out, t, items.len());
            for i in items {
                encode_value_into(i, out);
            }
        }
        RespValue::Map(pairs) => {
            header(out, b'%', pairs.len());
            for (k, v) in pairs {
                encode_value_into(k, out);
                encode_value_into(v, out);
            }
        }
        RespValue::Attribute { attrs, value } => {
            header(out, b'|', attrs.len());
            for (k, v) in attrs {
                encode_value_into(k, out);
                encode_value_into(v, out);
            }
            encode_value_into(value, out);
        }
    }
}
