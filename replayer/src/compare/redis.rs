//! Redis replies: each reply message parsed again from its bytes (RESP2 and
//! RESP3) and compared by type and value, aggregates element by element.
//!
//! Fields: `reply` (the exchange's reply), `reply[2]`, `reply[2][0]`
//! (elements), `reply{name}` (a map's value by its key), `reply.len`
//! (element counts); a second and later reply of one exchange (pub/sub
//! confirmations) is `reply#1`, `reply#2`. Values are shown as redis-cli
//! shows them (`"text"`, `(integer) 5`, `(error) ERR ...`, `(nil)`); noise
//! patterns see the bare text. A reply cut by the recorder's cap compares
//! by the part both kept, its length and its hash.

use bytes::Bytes;
use format::Message;
use wire::redis::{parse_reply, RespValue};

use super::{bytes_difference, bytes_text, show, Sink};

/// The text of a string-like value (a verbatim string's without its
/// format prefix).
fn text(v: &RespValue) -> Option<&[u8]> {
    match v {
        RespValue::Verbatim(b) => Some(v.verbatim_parts().map_or(&b[..], |(_, t)| t)),
        _ => v.as_bytes().map(|b| &b[..]),
    }
}

/// The bare text noise patterns see.
pub fn raw(v: &RespValue) -> String {
    let v = v.unattributed();
    match v {
        RespValue::Integer(n) => n.to_string(),
        RespValue::Boolean(b) => b.to_string(),
        RespValue::Map(p) => format!("{} pairs", p.len()),
        _ => match (text(v), v.elements()) {
            (Some(t), _) => bytes_text(t),
            (None, Some(items)) => format!("{} elements", items.len()),
            (None, None) => String::new(),
        },
    }
}

/// As redis-cli shows it.
pub fn shown(v: &RespValue) -> String {
    let v = v.unattributed();
    let t = || bytes_text(text(v).unwrap_or_default());
    match v {
        RespValue::Simple(_) => t(),
        RespValue::Error(_) | RespValue::BulkError(_) => format!("(error) {}", t()),
        RespValue::Integer(n) => format!("(integer) {n}"),
        RespValue::Bulk(_) | RespValue::Verbatim(_) => serde_json::to_string(&t()).unwrap_or_default(),
        RespValue::NullBulk | RespValue::NullArray | RespValue::Null => "(nil)".into(),
        RespValue::Double(_) => format!("(double) {}", t()),
        RespValue::Boolean(b) => format!("({b})"),
        RespValue::BigNumber(_) => format!("(big number) {}", t()),
        RespValue::Array(x) => format!("(array of {})", x.len()),
        RespValue::Set(x) => format!("(set of {})", x.len()),
        RespValue::Push(x) => format!("(push of {})", x.len()),
        RespValue::Map(x) => format!("(map of {})", x.len()),
        RespValue::Attribute { value, .. } => shown(value),
    }
}

/// Equal as a client sees them: both errors (`-` or `!`), both nulls, the
/// same text, attributes aside.
fn same(a: &RespValue, b: &RespValue) -> bool {
    let (a, b) = (a.unattributed(), b.unattributed());
    let class = |v: &RespValue| if v.is_error() { 1 } else if v.kind().is_null() { 2 } else { 0 };
    match (class(a), class(b)) {
        (1, 1) | (2, 2) => text(a) == text(b),
        (0, 0) => match (a, b) {
            (RespValue::Map(x), RespValue::Map(y)) => x.len() == y.len() && x.iter().zip(y).all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb)),
            _ if a.kind() != b.kind() => false,
            _ => match (a.elements(), b.elements()) {
                (Some(x), Some(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
                _ => match text(a) {
                    Some(t) => Some(t) == text(b),
                    None => a == b,
                },
            },
        },
        _ => false,
    }
}

/// A reply's value, or why it has none.
fn parse(m: &Message) -> Result<RespValue, wire::ParseError> {
    parse_reply(&Bytes::copy_from_slice(&m.data.bytes.0)).map(|(v, _)| v)
}

/// Differences between the recorded and replayed reply messages.
pub fn compare<'a>(rec: &'a [Message], rep: &'a [Message], sink: &mut Sink) {
    let replies = |m: &'a [Message]| -> Vec<&'a Message> { m.iter().filter(|m| m.dir == format::Direction::ToClient).collect() };
    let (a, b) = (replies(rec), replies(rep));
    for i in 0..a.len().max(b.len()) {
        let field = if i == 0 { "reply".to_owned() } else { format!("reply#{i}") };
        let (Some(x), Some(y)) = (a.get(i), b.get(i)) else {
            let s = |m: Option<&&Message>| m.map_or("(absent)".to_owned(), |m| parse(m).map_or_else(|e| format!("(unparsed: {e})"), |v| shown(&v)));
            sink.push(field, &s(a.get(i)), &s(b.get(i)));
            continue;
        };
        let cut = |m: &Message| (m.data.bytes.0.len() as u64) < m.data.len;
        match (cut(x) || cut(y), parse(x), parse(y)) {
            (false, Ok(vx), Ok(vy)) => compare_values(&mut field.clone(), &vx, &vy, sink),
            _ => {
                let (bx, by) = (&x.data.bytes.0, &y.data.bytes.0);
                bytes_difference(&field, bx, x.data.len, cut(x), by, y.data.len, cut(y), Some(x.data.hash == y.data.hash), sink);
            }
        }
    }
}

fn compare_values(path: &mut String, a: &RespValue, b: &RespValue, sink: &mut Sink) {
    let (a, b) = (a.unattributed(), b.unattributed());
    match (a, b) {
        (RespValue::Map(x), RespValue::Map(y)) => {
            if x.len() != y.len() {
                sink.push(format!("{path}.len"), &x.len().to_string(), &y.len().to_string());
            }
            let len = path.len();
            for (k, va) in x {
                path.push_str(&format!("{{{}}}", raw(k)));
                match y.iter().find(|(kb, _)| same(kb, k)) {
                    Some((_, vb)) => compare_values(path, va, vb, sink),
                    None => sink.push_shown(path.clone(), &raw(va), "", show(&shown(va)), "(absent)".into()),
                }
                path.truncate(len);
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.iter().any(|(ka, _)| same(ka, k))) {
                path.push_str(&format!("{{{}}}", raw(k)));
                sink.push_shown(path.clone(), "", &raw(vb), "(absent)".into(), show(&shown(vb)));
                path.truncate(len);
            }
        }
        _ if a.kind() == b.kind() && a.elements().is_some() => {
            let (x, y) = (a.elements().unwrap_or_default(), b.elements().unwrap_or_default());
            if x.len() != y.len() {
                sink.push(format!("{path}.len"), &x.len().to_string(), &y.len().to_string());
            }
            let len = path.len();
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                path.push_str(&format!("[{i}]"));
                compare_values(path, va, vb, sink);
                path.truncate(len);
            }
        }
        _ if same(a, b) => {}
        _ => sink.push_shown(path.clone(), &raw(a), &raw(b), show(&shown(a)), show(&shown(b))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(b: &'static [u8]) -> RespValue {
        parse_reply(&Bytes::from_static(b)).unwrap().0
    }

    #[test]
    fn equal_as_a_client_sees_them() {
        assert!(same(&v(b"-ERR x\r\n"), &v(b"!5\r\nERR x\r\n")));
        assert!(same(&v(b"$-1\r\n"), &v(b"_\r\n")));
        assert!(same(&v(b"=7\r\ntxt:abc\r\n"), &v(b"=7\r\nmkd:abc\r\n")));
        assert!(same(&v(b"|1\r\n+a\r\n+b\r\n:1\r\n"), &v(b":1\r\n")));
        assert!(!same(&v(b"+abc\r\n"), &v(b"$3\r\nabc\r\n")));
        assert!(!same(&v(b"*1\r\n:1\r\n"), &v(b"~1\r\n:1\r\n")));
        assert!(!same(&v(b":1\r\n"), &v(b":2\r\n")));
        assert_eq!(shown(&v(b"~2\r\n:1\r\n:2\r\n")), "(set of 2)");
        assert_eq!(shown(&v(b"=7\r\ntxt:abc\r\n")), "\"abc\"");
        assert_eq!(raw(&v(b"%1\r\n+k\r\n#t\r\n")), "1 pairs");
    }
}
