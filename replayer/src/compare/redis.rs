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

use format::Message;

use super::{bytes_difference, bytes_text, show, Sink};

/// A parsed RESP value.
#[derive(Clone, Debug, PartialEq)]
pub enum Resp {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Integer(i64),
    Bulk(Vec<u8>),
    Null,
    Double(Vec<u8>),
    Bool(bool),
    BigNumber(Vec<u8>),
    Verbatim(Vec<u8>),
    /// Array, set or push (the type byte says which).
    Aggregate(u8, Vec<Resp>),
    Map(Vec<(Resp, Resp)>),
}

/// Parses one value at the start of `b`: the value and the bytes it took.
pub fn parse(b: &[u8]) -> Option<(Resp, usize)> {
    let eol = b.windows(2).position(|w| w == b"\r\n")?;
    let line = &b[1..eol];
    let after = eol + 2;
    let num = || std::str::from_utf8(line).ok()?.parse::<i64>().ok();
    let blob = |n: i64| -> Option<(Vec<u8>, usize)> {
        let n = usize::try_from(n).ok()?;
        let v = b.get(after..after + n)?.to_vec();
        (b.get(after + n..after + n + 2)? == b"\r\n").then_some((v, after + n + 2))
    };
    Some(match *b.first()? {
        b'+' => (Resp::Simple(line.to_vec()), after),
        b'-' => (Resp::Error(line.to_vec()), after),
        b':' => (Resp::Integer(num()?), after),
        b'_' => (Resp::Null, after),
        b',' => (Resp::Double(line.to_vec()), after),
        b'#' => (Resp::Bool(line == b"t"), after),
        b'(' => (Resp::BigNumber(line.to_vec()), after),
        b'$' | b'!' | b'=' => {
            let n = num()?;
            if n < 0 {
                (Resp::Null, after)
            } else {
                let (v, end) = blob(n)?;
                match b[0] {
                    b'$' => (Resp::Bulk(v), end),
                    b'!' => (Resp::Error(v), end),
                    _ => (Resp::Verbatim(v.get(4..).unwrap_or_default().to_vec()), end),
                }
            }
        }
        t @ (b'*' | b'~' | b'>' | b'%' | b'|') => {
            let n = num()?;
            if n < 0 {
                return Some((Resp::Null, after));
            }
            let mut at = after;
            let mut items = Vec::new();
            for _ in 0..n * if matches!(t, b'%' | b'|') { 2 } else { 1 } {
                let (v, used) = parse(b.get(at..)?)?;
                items.push(v);
                at += used;
            }
            match t {
                // An attribute annotates the value that follows it.
                b'|' => {
                    let (v, used) = parse(b.get(at..)?)?;
                    (v, at + used)
                }
                b'%' => {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    (Resp::Map(pairs), at)
                }
                _ => (Resp::Aggregate(t, items), at),
            }
        }
        _ => return None,
    })
}

impl Resp {
    /// The bare text noise patterns see.
    pub fn raw(&self) -> String {
        match self {
            Resp::Simple(s) | Resp::Error(s) | Resp::Bulk(s) | Resp::Double(s) | Resp::BigNumber(s) | Resp::Verbatim(s) => bytes_text(s),
            Resp::Integer(n) => n.to_string(),
            Resp::Null => String::new(),
            Resp::Bool(b) => b.to_string(),
            Resp::Aggregate(_, v) => format!("{} elements", v.len()),
            Resp::Map(v) => format!("{} pairs", v.len()),
        }
    }

    /// As redis-cli shows it.
    pub fn shown(&self) -> String {
        match self {
            Resp::Simple(s) => bytes_text(s),
            Resp::Error(s) => format!("(error) {}", bytes_text(s)),
            Resp::Integer(n) => format!("(integer) {n}"),
            Resp::Bulk(s) | Resp::Verbatim(s) => serde_json::to_string(&bytes_text(s)).unwrap_or_default(),
            Resp::Null => "(nil)".into(),
            Resp::Double(s) => format!("(double) {}", bytes_text(s)),
            Resp::Bool(b) => format!("({b})"),
            Resp::BigNumber(s) => format!("(big number) {}", bytes_text(s)),
            Resp::Aggregate(t, v) => format!("({} of {})", aggregate_name(*t), v.len()),
            Resp::Map(v) => format!("(map of {})", v.len()),
        }
    }
}

fn aggregate_name(t: u8) -> &'static str {
    match t {
        b'~' => "set",
        b'>' => "push",
        _ => "array",
    }
}

/// Differences between the recorded and replayed reply messages.
pub fn compare<'a>(rec: &'a [Message], rep: &'a [Message], sink: &mut Sink) {
    let replies = |m: &'a [Message]| -> Vec<&'a Message> { m.iter().filter(|m| m.dir == format::Direction::ToClient).collect() };
    let (a, b) = (replies(rec), replies(rep));
    for i in 0..a.len().max(b.len()) {
        let field = if i == 0 { "reply".to_owned() } else { format!("reply#{i}") };
        let (Some(x), Some(y)) = (a.get(i), b.get(i)) else {
            let s = |m: Option<&&Message>| m.map_or("(absent)".to_owned(), |m| parse(&m.data.bytes.0).map_or("(unparsed)".into(), |(v, _)| v.shown()));
            sink.push(field, &s(a.get(i)), &s(b.get(i)));
            continue;
        };
        let cut = |m: &Message| (m.data.bytes.0.len() as u64) < m.data.len;
        match (cut(x) || cut(y), parse(&x.data.bytes.0), parse(&y.data.bytes.0)) {
            (false, Some((vx, _)), Some((vy, _))) => compare_values(&mut field.clone(), &vx, &vy, sink),
            _ => {
                let (bx, by) = (&x.data.bytes.0, &y.data.bytes.0);
                bytes_difference(&field, bx, x.data.len, cut(x), by, y.data.len, cut(y), Some(x.data.hash == y.data.hash), sink);
            }
        }
    }
}

fn compare_values(path: &mut String, a: &Resp, b: &Resp, sink: &mut Sink) {
    match (a, b) {
        (Resp::Aggregate(ta, x), Resp::Aggregate(tb, y)) if ta == tb => {
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
        (Resp::Map(x), Resp::Map(y)) => {
            if x.len() != y.len() {
                sink.push(format!("{path}.len"), &x.len().to_string(), &y.len().to_string());
            }
            let len = path.len();
            for (k, va) in x {
                path.push_str(&format!("{{{}}}", k.raw()));
                match y.iter().find(|(kb, _)| kb == k) {
                    Some((_, vb)) => compare_values(path, va, vb, sink),
                    None => sink.push_shown(path.clone(), &va.raw(), "", show(&va.shown()), "(absent)".into()),
                }
                path.truncate(len);
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.iter().any(|(ka, _)| ka == k)) {
                path.push_str(&format!("{{{}}}", k.raw()));
                sink.push_shown(path.clone(), "", &vb.raw(), "(absent)".into(), show(&vb.shown()));
                path.truncate(len);
            }
        }
        _ if a == b => {}
        _ => sink.push_shown(path.clone(), &a.raw(), &b.raw(), show(&a.shown()), show(&b.shown())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resp2_and_resp3() {
        assert_eq!(parse(b"+OK\r\n"), Some((Resp::Simple(b"OK".to_vec()), 5)));
        assert_eq!(parse(b"$-1\r\n"), Some((Resp::Null, 5)));
        assert_eq!(parse(b"*2\r\n$1\r\na\r\n:7\r\n"), Some((Resp::Aggregate(b'*', vec![Resp::Bulk(b"a".to_vec()), Resp::Integer(7)]), 15)));
        assert_eq!(
            parse(b"%1\r\n+k\r\n#t\r\n"),
            Some((Resp::Map(vec![(Resp::Simple(b"k".to_vec()), Resp::Bool(true))]), 12))
        );
        assert_eq!(parse(b"=7\r\ntxt:abc\r\n").map(|x| x.0), Some(Resp::Verbatim(b"abc".to_vec())));
        assert_eq!(parse(b"$5\r\nab"), None);
    }
}
