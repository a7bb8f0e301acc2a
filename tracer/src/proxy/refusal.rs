//! What a client is told when the proxy cannot connect it upstream (the
//! server unreachable, or its TLS handshake failed), in the client's own
//! protocol, so that it reports why rather than a bare disconnect:
//! PostgreSQL gets an ErrorResponse (FATAL, SQLSTATE 08006,
//! connection_failure), Redis an error reply (`-ERR oltrace proxy: ...`).
//! Clients of other protocols see the connection close; the trace's
//! `conn_close` record says why in every case.

use bytes::Bytes;
use wire::redis::RespValue;

/// The message that tells a client of `protocol` why it was not connected,
/// if that protocol has one. `reason` names the upstream and the cause.
pub fn refusal(protocol: wire::Protocol, reason: &str) -> Option<Vec<u8>> {
    let text = format!("oltrace proxy: {reason}");
    match protocol {
        wire::Protocol::Postgres => {
            let mut buf = bytes::BytesMut::new();
            wire::pg::encode::error_response(&mut buf, "FATAL", "08006", &text);
            Some(buf.to_vec())
        }
        wire::Protocol::Redis => {
            // A simple error is one line: no CR or LF inside.
            let line = format!("ERR {}", text.replace(['\r', '\n'], " "));
            Some(wire::redis::encode_value(&RespValue::Error(Bytes::from(line))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_gets_one_error_line() {
        let r = refusal(wire::Protocol::Redis, "upstream 127.0.0.1:9 unreachable: refused\r\nmore").unwrap();
        assert_eq!(r, b"-ERR oltrace proxy: upstream 127.0.0.1:9 unreachable: refused  more\r\n");
        assert!(refusal(wire::Protocol::Http, "x").is_none());
    }
}
