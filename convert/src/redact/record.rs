//! Redacting a record already written (`oltrace redact`): its bytes are
//! parsed again with `wire`'s at-rest parsers and blanked by the same
//! functions the recorder uses, and its decoded summary and exchange
//! summary blanked alike. A message of a decoded protocol whose bytes no
//! longer parse is blanked whole (after a PostgreSQL message's 5-byte
//! header, so the framing stays); a Bind's parameters are blanked by the
//! statement its connection's Parse prepared ([`Redactor`] keeps them, as
//! the recorder's converter does); log lines by the same rules as when
//! recording; opaque bytes (TLS, a plain tcp route, a
//! connection whose decoder gave up) are left as they are and counted.

use super::{BindSecrets, Rules, STAR};
use bytes::Bytes;
use format::{Body, Decoded, Direction, ExchangeSummary, Protocol, Record};

/// What [`record`] did to one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// Nothing secret in it.
    Unchanged,
    /// Secrets in it were blanked.
    Blanked,
    /// A message whose bytes did not parse: blanked whole.
    Unparsed,
    /// Opaque bytes, left as they are.
    Opaque,
}

/// The PostgreSQL messages that are all secret after their header.
const PG_SECRET_KINDS: &[&str] = &["PasswordMessage", "SASLInitialResponse", "SASLResponse", "GSSResponse"];

/// Blanks what `rules` say is secret in `r`, a record of a connection of
/// `protocol` (from its `conn_open`; `None` when unknown), on its own: a
/// Bind's parameters need the connection's earlier Parse messages, which
/// only a [`Redactor`] fed every record in order knows.
pub fn record(rules: &Rules, protocol: Option<Protocol>, r: &mut Record) -> Rewrite {
    Redactor::new(rules.clone()).record(protocol, r)
}

/// Redacts the records of a trace, in order, with what they teach about
/// their connections: the prepared statements whose Bind parameters are
/// secret (from each connection's Parse and Close messages, forgotten at
/// its `conn_close`), as the recorder's converter keeps them.
pub struct Redactor {
    rules: Rules,
    binds: BindSecrets,
}

impl Redactor {
    pub fn new(rules: Rules) -> Redactor {
        Redactor { rules, binds: BindSecrets::default() }
    }

    /// Blanks what the rules say is secret in `r`, as [`record`] does, and
    /// Bind parameters by the statements seen before.
    pub fn record(&mut self, protocol: Option<Protocol>, r: &mut Record) -> Rewrite {
        if !self.rules.enabled() {
            return Rewrite::Unchanged;
        }
        if let Body::ConnClose(c) = &r.body {
            self.binds.conn_closed((r.src.into(), c.conn));
        }
        let rules = &self.rules;
    // The functions below say what they blanked, stars over stars
    // included: whether anything changed is told by comparing (a trace
    // redacted again counts nothing new).
        let before = matches!(r.body, Body::Message(_) | Body::Exchange(_) | Body::Log(_)).then(|| r.body.clone());
        let conn = (u64::from(r.src), 0);
        let outcome = blank(rules, &mut self.binds, conn, protocol, r);
        match (outcome, before) {
            (Rewrite::Blanked, Some(b)) if b == r.body => Rewrite::Unchanged,
            (o, _) => o,
        }
    }
}

/// `conn`: the record's source and 0 (the connection id is the message's).
fn blank(rules: &Rules, binds: &mut BindSecrets, conn: (u64, u64), protocol: Option<Protocol>, r: &mut Record) -> Rewrite {
    let changed = match &mut r.body {
        Body::Message(m) => return message(rules, binds, (conn.0, m.conn), protocol, m),
        Body::Log(l) => {
            let changed = super::log_line(rules, &mut l.text);
            l.redacted |= changed;
            changed
        }
        Body::Exchange(x) => match &mut x.summary {
            ExchangeSummary::Http(h) => blank_target(rules, &mut h.target),
            ExchangeSummary::Pg(p) => p.statements.iter_mut().fold(false, |any, s| super::sql_in_string(s) | any),
            ExchangeSummary::Redis(x) => {
                let mut words: Vec<&[u8]> = vec![x.command.as_bytes()];
                words.extend(x.args.iter().map(|a| a.as_bytes()));
                let secret = wire::redis::secret_args_of(&words);
                for &i in &secret {
                    if let Some(a) = i.checked_sub(1).and_then(|i| x.args.get_mut(i)) {
                        a.0.fill(STAR);
                    }
                }
                !secret.is_empty()
            }
        },
        _ => false,
    };
    if changed {
        Rewrite::Blanked
    } else {
        Rewrite::Unchanged
    }
}

/// Blanks the secrets of the request target `dst` (text).
fn blank_target(rules: &Rules, dst: &mut String) -> bool {
    let new = super::target_text_with(rules, dst.as_bytes());
    let changed = *dst != new;
    *dst = new;
    changed
}

fn message(rules: &Rules, binds: &mut BindSecrets, conn: (u64, u64), protocol: Option<Protocol>, m: &mut format::Message) -> Rewrite {
    let Some(decoded) = m.decoded.as_mut() else { return Rewrite::Opaque };
    let raw = &mut m.data.bytes.0;
    let to_server = m.dir == Direction::ToServer;
    let outcome = match (protocol, decoded) {
        (Some(Protocol::Http), d @ (Decoded::HttpRequest(_) | Decoded::HttpResponse(_))) => http(rules, raw, to_server, d),
        (Some(Protocol::Postgres), Decoded::Pg(d)) if to_server => pg(rules, binds, conn, raw, d),
        (Some(Protocol::Redis), Decoded::Redis(d)) if to_server && d.typed_kind() == Some(format::RedisKind::Command) => redis(raw, d),
        _ => Rewrite::Unchanged,
    };
    if outcome != Rewrite::Unchanged {
        m.redacted = true;
    }
    outcome
}

fn http(rules: &Rules, raw: &mut [u8], request: bool, decoded: &mut Decoded) -> Rewrite {
    let head = if request { wire::http::parse_request_head(raw) } else { wire::http::parse_response_head(raw) };
    let kind = match head {
        Err(wire::ParseError::Invalid(_)) => {
            raw.fill(STAR);
            return Rewrite::Unparsed;
        }
        Err(wire::ParseError::Incomplete { .. }) => None,
        Ok(h) => h.headers().find(|(n, _)| n.eq_ignore_ascii_case(b"content-type")).and_then(|(_, v)| super::body_kind(v)),
    };
    let mut changed = super::http_head_with(rules, raw);
    if let Some(kind) = kind {
        changed |= super::http_body(rules, raw, request, kind);
    }
    if let Decoded::HttpRequest(d) = decoded {
        changed |= blank_target(rules, &mut d.target);
    }
    if changed {
        Rewrite::Blanked
    } else {
        Rewrite::Unchanged
    }
}

fn pg(rules: &Rules, binds: &mut BindSecrets, conn: (u64, u64), raw: &mut [u8], d: &mut format::PgMessage) -> Rewrite {
    if PG_SECRET_KINDS.contains(&d.kind.as_str()) {
        let changed = raw.get(5..).is_some_and(|b| b.iter().any(|&c| c != STAR));
        super::pg_secret_message(raw);
        for (_, value) in &mut d.fields {
            *value = "*".repeat(value.len());
        }
        return if changed { Rewrite::Blanked } else { Rewrite::Unchanged };
    }
    if d.typed_kind() == Some(format::PgKind::Malformed) {
        super::pg_secret_message(raw);
        return Rewrite::Unparsed;
    }
    // The statement of a Parse, and its name, from the decoded summary:
    // its `sql` was taken from the whole message, even when the bytes
    // kept were cut by the cap.
    let statement = d.statement.as_deref().unwrap_or_default().as_bytes();
    match d.kind.as_str() {
        "Parse" => binds.parse(rules, conn, statement, d.sql.as_deref().unwrap_or_default().as_bytes()),
        "Close" if d.fields.iter().any(|(k, v)| k == "target" && v == "S") => binds.close(conn, statement),
        "Bind" => {
            let secret = binds.of(conn, statement);
            let changed = secret.is_some_and(|s| super::bind_message(raw, &mut d.params, &s));
            return if changed { Rewrite::Blanked } else { Rewrite::Unchanged };
        }
        _ => {}
    }
    if !matches!(d.kind.as_str(), "Query" | "Parse") {
        return Rewrite::Unchanged;
    }
    let decoded_changed = d.sql.as_mut().is_some_and(super::sql_in_string);
    // Where the SQL is, from the at-rest parser (its `sql` is a slice of
    // the bytes given it); a message cut by the cap is scanned after its
    // header, which for a Query is the SQL.
    let copy = Bytes::copy_from_slice(raw);
    let region = match wire::pg::parse_frontend(&copy) {
        Ok((wire::pg::PgMessage::Query { sql } | wire::pg::PgMessage::Parse { sql, .. }, _)) => {
            let start = sql.as_ptr() as usize - copy.as_ptr() as usize;
            start..start + sql.len()
        }
        Err(wire::ParseError::Incomplete { .. }) => 5.min(raw.len())..raw.len(),
        _ => {
            super::pg_secret_message(raw);
            return Rewrite::Unparsed;
        }
    };
    let bytes_changed = super::sql_in_place(&mut raw[region]);
    if decoded_changed || bytes_changed {
        Rewrite::Blanked
    } else {
        Rewrite::Unchanged
    }
}

fn redis(raw: &mut [u8], d: &mut format::RedisMessage) -> Rewrite {
    let spans = wire::redis::command_raw_spans(raw);
    let words: Vec<&[u8]> = spans.iter().map(|&(s, e)| &raw[s..e]).collect();
    let mut secret = wire::redis::secret_args_of(&words);
    // The decoded arguments say it too (a command cut in its name's bytes
    // has no spans).
    let decoded: Vec<&[u8]> = d.args.iter().map(|a| a.as_bytes()).collect();
    secret.extend(wire::redis::secret_args_of(&decoded));
    secret.sort_unstable();
    secret.dedup();
    let already = secret.iter().all(|&i| spans.get(i).is_none_or(|&(s, e)| raw[s..e].iter().all(|&b| b == STAR)));
    super::redis_command(raw, &secret);
    for &i in &secret {
        if let Some(a) = d.args.get_mut(i) {
            a.0.fill(STAR);
        }
    }
    if secret.is_empty() || already {
        Rewrite::Unchanged
    } else {
        Rewrite::Blanked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(dir: Direction, raw: &[u8], decoded: Decoded) -> Record {
        Record {
            ts: 0,
            src: 0,
            body: Body::Message(format::Message {
                conn: 1,
                dir,
                last_ts: 0,
                offset: 0,
                data: format::Payload { bytes: format::BStr(raw.to_vec()), len: raw.len() as u64, hash: None },
                decoded: Some(decoded),
                redacted: false,
            }),
        }
    }

    fn bytes(r: &Record) -> &[u8] {
        match &r.body {
            Body::Message(m) => &m.data.bytes.0,
            _ => unreachable!(),
        }
    }

    #[test]
    fn pg_query_redis_and_http_at_rest() {
        let rules = Rules::default();
        let sql = "create role r password 'pw1'";
        let mut raw = vec![b'Q'];
        raw.extend_from_slice(&((sql.len() + 5) as u32).to_be_bytes());
        raw.extend_from_slice(sql.as_bytes());
        raw.push(0);
        let d = format::PgMessage { kind: "Query".into(), sql: Some(sql.into()), ..Default::default() };
        let mut r = msg(Direction::ToServer, &raw, Decoded::Pg(d));
        assert_eq!(record(&rules, Some(Protocol::Postgres), &mut r), Rewrite::Blanked);
        assert!(memchr::memmem::find(bytes(&r), b"pw1").is_none());
        assert_eq!(bytes(&r).len(), raw.len());
        // Again: nothing left to blank.
        assert_eq!(record(&rules, Some(Protocol::Postgres), &mut r), Rewrite::Unchanged);

        let raw = b"*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n$3\r\npw2\r\n";
        let d = format::RedisMessage { kind: "command".into(), args: ["CONFIG", "SET", "requirepass", "pw2"].map(|a| format::BStr(a.into())).to_vec(), reply: None };
        let mut r = msg(Direction::ToServer, raw, Decoded::Redis(d));
        assert_eq!(record(&rules, Some(Protocol::Redis), &mut r), Rewrite::Blanked);
        assert!(bytes(&r).ends_with(b"$3\r\n***\r\n"));

        let raw = b"GET /x?token=pw3 HTTP/1.1\r\nHost: a\r\n\r\n";
        let d = format::HttpRequest { method: "GET".into(), target: "/x?token=pw3".into(), ..Default::default() };
        let mut r = msg(Direction::ToServer, raw, Decoded::HttpRequest(d));
        assert_eq!(record(&rules, Some(Protocol::Http), &mut r), Rewrite::Blanked);
        assert!(memchr::memmem::find(bytes(&r), b"pw3").is_none());
        let Body::Message(m) = &r.body else { unreachable!() };
        assert!(m.redacted);
        assert!(matches!(&m.decoded, Some(Decoded::HttpRequest(d)) if d.target == "/x?token=***"));

        let mut bad = msg(Direction::ToServer, b"\x16\x03\x01 not http\r\n\r\n", Decoded::HttpRequest(Default::default()));
        assert_eq!(record(&rules, Some(Protocol::Http), &mut bad), Rewrite::Unparsed);
        assert!(bytes(&bad).iter().all(|&b| b == STAR));
    }
}
