//! Byte strings that stay binary in trace files and read as text in JSON.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A byte string: MessagePack `bin` in a trace file; in JSON a string when
/// it is valid UTF-8, otherwise `{"escaped": "..."}`: the bytes as text,
/// printable ASCII as is, `\\` for a backslash, `\r`, `\n`, `\t`, and
/// `\xNN` for every other byte, so binary protocol messages stay readable
/// (`Q\x00\x00\x00\x0eselect 42\x00`) and lossless.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BStr(pub Vec<u8>);

impl BStr {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as text, with invalid UTF-8 replaced.
    pub fn to_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl std::fmt::Debug for BStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b{:?}", self.to_text())
    }
}

impl From<&[u8]> for BStr {
    fn from(b: &[u8]) -> BStr {
        BStr(b.to_vec())
    }
}

impl From<Vec<u8>> for BStr {
    fn from(b: Vec<u8>) -> BStr {
        BStr(b)
    }
}

impl From<&str> for BStr {
    fn from(s: &str) -> BStr {
        BStr(s.as_bytes().to_vec())
    }
}

/// The `escaped` text form described on [`BStr`].
pub fn escape(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() + bytes.len() / 4);
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                s.push_str("\\x");
                s.push(DIGITS[(b >> 4) as usize] as char);
                s.push(DIGITS[(b & 15) as usize] as char);
            }
        }
    }
    s
}

impl Serialize for BStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_bytes(&self.0);
        }
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("escaped", &escape(&self.0))?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for BStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<BStr, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = BStr;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes or a string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<BStr, E> {
                Ok(BStr(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<BStr, E> {
                Ok(BStr(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<BStr, E> {
                Ok(BStr(v.as_bytes().to_vec()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<BStr, E> {
                Ok(BStr(v.into_bytes()))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// Bytes kept up to a cap: the kept prefix, the full length, and, when
/// truncated, an xxh3-64 hash of the full content (the same hash
/// `wire::CappedBytes` computes), so that truncated bodies can be compared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// The bytes kept (all of them unless truncated).
    pub bytes: BStr,
    /// Full length on the wire, in bytes.
    pub len: u64,
    /// Hash of the full content; present only when truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<u64>,
}

crate::codec::codec_struct!(Payload { bytes = 0, len = 1, hash = 2 });

impl Payload {
    /// A payload kept whole.
    pub fn whole(bytes: impl Into<Vec<u8>>) -> Payload {
        let bytes = bytes.into();
        Payload { len: bytes.len() as u64, bytes: BStr(bytes), hash: None }
    }

    pub fn is_truncated(&self) -> bool {
        (self.bytes.0.len() as u64) < self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_form_is_readable_and_lossless() {
        assert_eq!(escape(b"Q\x00\x00\x00\x16select 1\x00"), "Q\\x00\\x00\\x00\\x16select 1\\x00");
        assert_eq!(escape(b"a\\b\r\n\t\xff"), "a\\\\b\\r\\n\\t\\xff");
    }
}
