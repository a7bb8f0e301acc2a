//! The JSON-lines view of a record: `ts`, `src`, `kind`, the protocol of
//! its connection when known, then the record's own fields. Byte strings
//! are text when valid UTF-8 (see `format::BStr`), so SQL, Redis command
//! words and HTTP heads read as written.

use format::{Protocol, Record};
use serde_json::{Map, Value};

pub fn record_json(record: &Record, protocol: Option<Protocol>) -> Value {
    let mut map = Map::new();
    map.insert("ts".into(), record.ts.into());
    map.insert("src".into(), record.src.into());
    map.insert("kind".into(), record.body.kind().into());
    // conn_open names its protocol itself.
    if let (Some(p), false) = (protocol, matches!(record.body, format::Body::ConnOpen(_))) {
        map.insert("proto".into(), p.name().into());
    }
    // The body serialises as {"<kind>": {fields}}: lift the fields up.
    if let Ok(Value::Object(outer)) = serde_json::to_value(&record.body) {
        for (_, inner) in outer {
            if let Value::Object(fields) = inner {
                map.extend(fields);
            }
        }
    }
    Value::Object(map)
}
