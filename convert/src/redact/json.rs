//! Secret keys in a JSON body: which values to blank, found by walking the
//! document with serde_json. serde_json's `RawValue` hands back each value
//! as a slice of the original text, so its position is known and it can be
//! overwritten in place, keeping the body's length (and `Content-Length`)
//! and its validity: a string's content becomes `*` (quotes kept), a
//! number becomes `0` padded with spaces (still a number, of the same
//! length), and under a secret key every string and number inside an
//! object or array is blanked so. `true`, `false` and `null` stay.

use super::Rules;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::ops::Range;

/// What a blanked span is written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fill {
    /// `*` throughout.
    Star,
    /// `0` then spaces: a JSON number of the same length.
    Zero,
}

impl Fill {
    /// The byte at position `i` of the span.
    pub(crate) fn byte(self, i: usize) -> u8 {
        match (self, i) {
            (Fill::Star, _) => super::STAR,
            (Fill::Zero, 0) => b'0',
            (Fill::Zero, _) => b' ',
        }
    }
}

/// The spans of `body` to blank: the values of secret keys (per `rules`)
/// at any depth. A body that does not parse as JSON (cut short, not UTF-8)
/// but names a secret key is blanked whole; one that names none is left.
pub(crate) fn blanks(rules: &Rules, body: &[u8]) -> Vec<(Range<usize>, Fill)> {
    if !rules.mentions_json_key(body) {
        return Vec::new();
    }
    let walked = std::str::from_utf8(body).ok().and_then(|text| {
        let top: &RawValue = serde_json::from_str(text).ok()?;
        let mut out = Vec::new();
        walk(rules, text.as_ptr() as usize, top, false, &mut out).ok()?;
        Some(out)
    });
    walked.unwrap_or_else(|| vec![(0..body.len(), Fill::Star)])
}

/// Adds the spans to blank in `v` (a slice of the text starting at
/// address `base`); `secret`: `v` is under a secret key.
fn walk(rules: &Rules, base: usize, v: &RawValue, secret: bool, out: &mut Vec<(Range<usize>, Fill)>) -> serde_json::Result<()> {
    let t = v.get();
    let at = t.as_ptr() as usize - base;
    match t.as_bytes().first() {
        Some(b'{') => {
            let Entries(entries) = serde_json::from_str(t)?;
            for (key, value) in entries {
                walk(rules, base, value, secret || rules.is_secret_field(key.as_bytes()), out)?;
            }
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(t)?;
            for value in items {
                walk(rules, base, value, secret, out)?;
            }
        }
        Some(b'"') if secret && t.len() > 2 => out.push((at + 1..at + t.len() - 1, Fill::Star)),
        Some(b'-' | b'0'..=b'9') if secret => out.push((at..at + t.len(), Fill::Zero)),
        _ => {}
    }
    Ok(())
}

/// An object's entries in order, each value as the raw text it was.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Entries<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry::<String, &'de RawValue>()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(body: &str) -> String {
        let mut b = body.as_bytes().to_vec();
        for (r, fill) in blanks(&Rules::default(), body.as_bytes()) {
            for k in r.clone() {
                b[k] = fill.byte(k - r.start);
            }
        }
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn secret_keys_at_any_depth() {
        assert_eq!(apply(r#"[{"a":1},{"b":{"SECRET":"xy","ok":true}}]"#), r#"[{"a":1},{"b":{"SECRET":"**","ok":true}}]"#);
        assert_eq!(apply(r#" { "token" : [ "ab" , 12 , null ] } "#), r#" { "token" : [ "**" , 0  , null ] } "#);
        // An escaped key is read as what it spells.
        assert_eq!(apply(r#"{"pass\u0077ord":"é"}"#), r#"{"pass\u0077ord":"**"}"#);
        assert_eq!(apply(r#"{"author":"x","keys":["k"]}"#), r#"{"author":"x","keys":["k"]}"#);
        assert_eq!(apply(r#"{"key":""}"#), r#"{"key":""}"#);
    }
}
