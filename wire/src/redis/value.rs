//! [`RespValue`]: one RESP2 or RESP3 value, and [`RespKind`], its type.

use bytes::Bytes;
use std::borrow::Cow;

/// One RESP2/RESP3 value as it crossed the wire.
///
/// Text that may not be UTF-8 stays [`Bytes`] (zero-copy slices of the
/// message's raw bytes); the `*_str` helpers give lossy text. Doubles and
/// big numbers keep their exact wire text (`1.5`, `inf`, `3492890328409238509324850943850943825024385`)
/// so that re-encoding gives the same bytes; [`RespValue::as_f64`] parses.
///
/// A value stored in a [`super::RespFrame`] may be cut by the message cap
/// ([`crate::Limits::cap`]): then the frame says `truncated`, aggregates hold
/// fewer elements than the wire said and the last kept string may be a
/// prefix.
#[derive(Clone, Debug, PartialEq)]
pub enum RespValue {
    /// `+text`: a simple string (the line after `+`).
    Simple(Bytes),
    /// `-text`: an error (the line after `-`, e.g. `ERR unknown command`).
    Error(Bytes),
    /// `:n`: a signed 64-bit integer.
    Integer(i64),
    /// `$len`: a bulk (binary-safe) string; the payload.
    Bulk(Bytes),
    /// `$-1`: the RESP2 null bulk string (e.g. `GET` of a missing key).
    NullBulk,
    /// `*n`: an array of `n` values.
    Array(Vec<RespValue>),
    /// `*-1`: the RESP2 null array (e.g. `EXEC` after a failed `WATCH`).
    NullArray,
    /// `_`: the RESP3 null.
    Null,
    /// `#t` / `#f`: a RESP3 boolean.
    Boolean(bool),
    /// `,text`: a RESP3 double, as its wire text (`1.5`, `-inf`, `nan`, `1e10`).
    Double(Bytes),
    /// `(digits`: a RESP3 big number, as its wire text (optional `-`, digits).
    BigNumber(Bytes),
    /// `!len`: a RESP3 bulk error; the payload (e.g. `SYNTAX invalid syntax`).
    BulkError(Bytes),
    /// `=len`: a RESP3 verbatim string; the whole payload, a 3-byte format,
    /// `:`, then the text (`txt:hello`). See [`RespValue::verbatim_parts`].
    Verbatim(Bytes),
    /// `%n`: a RESP3 map of `n` key/value pairs, in wire order.
    Map(Vec<(RespValue, RespValue)>),
    /// `~n`: a RESP3 set of `n` values, in wire order.
    Set(Vec<RespValue>),
    /// `|n`: RESP3 attributes (`n` key/value pairs) attached to the value
    /// that follows them on the wire.
    Attribute {
        /// The attribute pairs, in wire order.
        attrs: Vec<(RespValue, RespValue)>,
        /// The value they describe (the reply proper).
        value: Box<RespValue>,
    },
    /// `>n`: a RESP3 push (out-of-band data: pub/sub messages, subscribe
    /// confirmations, client-tracking invalidations).
    Push(Vec<RespValue>),
}

/// The type of a [`RespValue`], without its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RespKind {
    /// `+`
    Simple,
    /// `-`
    Error,
    /// `:`
    Integer,
    /// `$`
    Bulk,
    /// `$-1`
    NullBulk,
    /// `*`
    Array,
    /// `*-1`
    NullArray,
    /// `_`
    Null,
    /// `#`
    Boolean,
    /// `,`
    Double,
    /// `(`
    BigNumber,
    /// `!`
    BulkError,
    /// `=`
    Verbatim,
    /// `%`
    Map,
    /// `~`
    Set,
    /// `|`
    Attribute,
    /// `>`
    Push,
}

impl RespKind {
    /// A short lowercase name for reports: `simple`, `error`, `integer`,
    /// `bulk`, `null-bulk`, `array`, `null-array`, `null`, `boolean`,
    /// `double`, `big-number`, `bulk-error`, `verbatim`, `map`, `set`,
    /// `attribute`, `push`.
    pub fn name(self) -> &'static str {
        match self {
            RespKind::Simple => "simple",
            RespKind::Error => "error",
            RespKind::Integer => "integer",
            RespKind::Bulk => "bulk",
            RespKind::NullBulk => "null-bulk",
            RespKind::Array => "array",
            RespKind::NullArray => "null-array",
            RespKind::Null => "null",
            RespKind::Boolean => "boolean",
            RespKind::Double => "double",
            RespKind::BigNumber => "big-number",
            RespKind::BulkError => "bulk-error",
            RespKind::Verbatim => "verbatim",
            RespKind::Map => "map",
            RespKind::Set => "set",
            RespKind::Attribute => "attribute",
            RespKind::Push => "push",
        }
    }

    /// The RESP type byte that starts a value of this kind.
    pub fn type_byte(self) -> u8 {
        match self {
            RespKind::Simple => b'+',
            RespKind::Error => b'-',
            RespKind::Integer => b':',
            RespKind::Bulk | RespKind::NullBulk => b'$',
            RespKind::Array | RespKind::NullArray => b'*',
            RespKind::Null => b'_',
            RespKind::Boolean => b'#',
            RespKind::Double => b',',
            RespKind::BigNumber => b'(',
            RespKind::BulkError => b'!',
            RespKind::Verbatim => b'=',
            RespKind::Map => b'%',
            RespKind::Set => b'~',
            RespKind::Attribute => b'|',
            RespKind::Push => b'>',
        }
    }

    /// True for the two error kinds (`-` and `!`).
    pub fn is_error(self) -> bool {
        matches!(self, RespKind::Error | RespKind::BulkError)
    }

    /// True for the null kinds (`$-1`, `*-1`, `_`).
    pub fn is_null(self) -> bool {
        matches!(
            self,
            RespKind::NullBulk | RespKind::NullArray | RespKind::Null
        )
    }
}

impl RespValue {
    /// This value's type.
    pub fn kind(&self) -> RespKind {
        match self {
            RespValue::Simple(_) => RespKind::Simple,
            RespValue::Error(_) => RespKind::Error,
            RespValue::Integer(_) => RespKind::Integer,
            RespValue::Bulk(_) => RespKind::Bulk,
            RespValue::NullBulk => RespKind::NullBulk,
            RespValue::Array(_) => RespKind::Array,
            RespValue::NullArray => RespKind::NullArray,
            RespValue::Null => RespKind::Null,
            RespValue::Boolean(_) => RespKind::Boolean,
            RespValue::Double(_) => RespKind::Double,
            RespValue::BigNumber(_) => RespKind::BigNumber,
            RespValue::BulkError(_) => RespKind::BulkError,
            RespValue::Verbatim(_) => RespKind::Verbatim,
            RespValue::Map(_) => RespKind::Map,
            RespValue::Set(_) => RespKind::Set,
            RespValue::Attribute { .. } => RespKind::Attribute,
            RespValue::Push(_) => RespKind::Push,
        }
    }

    /// The value itself, looking through RESP3 attributes.
    pub fn unattributed(&self) -> &RespValue {
        let mut v = self;
        while let RespValue::Attribute { value, .. } = v {
            v = value;
        }
        v
    }

    /// The bytes of a string-like value (simple, error, bulk, double, big
    /// number, bulk error, verbatim payload); `None` for the others.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            RespValue::Simple(b)
            | RespValue::Error(b)
            | RespValue::Bulk(b)
            | RespValue::Double(b)
            | RespValue::BigNumber(b)
            | RespValue::BulkError(b)
            | RespValue::Verbatim(b) => Some(b),
            _ => None,
        }
    }

    /// [`RespValue::as_bytes`] as (lossy) text.
    pub fn as_str(&self) -> Option<Cow<'_, str>> {
        self.as_bytes().map(|b| String::from_utf8_lossy(b))
    }

    /// The integer of `:n`; `None` for other kinds.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            RespValue::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// A RESP3 double (or a string holding a number, as RESP2 servers send
    /// `ZSCORE`) parsed as `f64`; `inf`, `-inf` and `nan` are understood.
    pub fn as_f64(&self) -> Option<f64> {
        let text = match self {
            RespValue::Double(b) | RespValue::Bulk(b) | RespValue::Simple(b) => b,
            RespValue::Integer(n) => return Some(*n as f64),
            _ => return None,
        };
        let s = std::str::from_utf8(text).ok()?;
        match s {
            "inf" | "+inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            "nan" | "-nan" => Some(f64::NAN),
            _ => s.parse().ok(),
        }
    }

    /// The error text of `-...` and `!...`; `None` for other kinds.
    pub fn error_text(&self) -> Option<&Bytes> {
        match self {
            RespValue::Error(b) | RespValue::BulkError(b) => Some(b),
            _ => None,
        }
    }

    /// True for `-` and `!` errors.
    pub fn is_error(&self) -> bool {
        self.kind().is_error()
    }

    /// The elements of an array, set or push; `None` for other kinds.
    pub fn elements(&self) -> Option<&[RespValue]> {
        match self {
            RespValue::Array(v) | RespValue::Set(v) | RespValue::Push(v) => Some(v),
            _ => None,
        }
    }

    /// A verbatim string split into its 3-byte format (`txt`, `mkd`) and its
    /// text; `None` when not a verbatim string or not of that shape.
    pub fn verbatim_parts(&self) -> Option<(&[u8], &[u8])> {
        match self {
            RespValue::Verbatim(b) if b.len() >= 4 && b[3] == b':' => Some((&b[..3], &b[4..])),
            _ => None,
        }
    }
}
