//! JSON compared structurally: object members by name (order ignored),
//! arrays element by element, numbers by value (`1` equals `1.0`). Each
//! difference is named by its JSONPath under a prefix: `body $.items[2].price`,
//! `body $["content-type"]`, and a member present on one side only shows
//! `(absent)` on the other.

use serde_json::Value;

use super::{show, Sink};

/// What a missing member or element shows.
pub const ABSENT: &str = "(absent)";

/// Differences between `a` (recorded) and `b` (replayed) under `path`
/// (`body $`, say).
pub fn compare(path: &mut String, a: &Value, b: &Value, sink: &mut Sink) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let len = path.len();
            for (k, va) in x {
                push_key(path, k);
                match y.get(k) {
                    Some(vb) => compare(path, va, vb, sink),
                    None => push(path, Some(va), None, sink),
                }
                path.truncate(len);
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                push_key(path, k);
                push(path, None, Some(vb), sink);
                path.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            let len = path.len();
            for i in 0..x.len().max(y.len()) {
                path.push_str(&format!("[{i}]"));
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) => compare(path, va, vb, sink),
                    (va, vb) => push(path, va, vb, sink),
                }
                path.truncate(len);
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let same = x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q);
            if !same {
                push(path, Some(a), Some(b), sink);
            }
        }
        _ if a == b => {}
        _ => push(path, Some(a), Some(b), sink),
    }
}

/// Appends `.key`, or `["key"]` when the key is not a plain identifier.
pub fn push_key(path: &mut String, k: &str) {
    let plain = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !k.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        path.push('.');
        path.push_str(k);
    } else {
        path.push('[');
        path.push_str(&serde_json::to_string(k).unwrap_or_default());
        path.push(']');
    }
}

/// The raw form of a value noise patterns match: a string's text, any other
/// value's JSON.
fn raw(v: Option<&Value>) -> String {
    match v {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn shown(v: Option<&Value>) -> String {
    match v {
        None => ABSENT.to_owned(),
        Some(v) => show(&v.to_string()),
    }
}

fn push(path: &str, a: Option<&Value>, b: Option<&Value>, sink: &mut Sink) {
    sink.push_shown(path.to_owned(), &raw(a), &raw(b), shown(a), shown(b));
}
