//! The binary encoding of records in a trace file: MessagePack, written and
//! read by hand rather than through serde.
//!
//! Every struct is a MessagePack map whose keys are the fields' **indices**
//! (positive fixints, one byte each: `0` for the first field, `1` for the
//! next, ...), not their names. Fields whose value is their type's default
//! (0, `false`, an empty string, list or byte string, `None`) are left out;
//! a reader gives a field it does not find that default, and skips the
//! value of a key it does not know, which is what lets a minor version add
//! fields. Enums with data ([`crate::Body`], [`crate::Decoded`],
//! [`crate::ExchangeSummary`]) are a map of one entry, the variant's index
//! to its value; small fieldless enums ([`crate::Direction`], ...) are their
//! one-byte code. A variant index or code this build does not know makes
//! the record decode to [`DecodeError::UnknownVariant`], which the reader
//! counts and skips. The indices of every type are listed next to its
//! definition (`codec_struct!`/`codec_enum!`); they are only ever appended
//! to, never reordered or reused (see `docs/trace-format.md`).
//!
//! JSON (`oltrace cat`) does not go through this module: it uses the types'
//! serde implementations, with field and variant names. The serde
//! implementations are not the file encoding: `rmp_serde::to_vec(&record)`
//! does not produce what a trace holds; use [`encode_record`].

use crate::bytes::BStr;
use crate::record::{Direction, Record};

/// Why a record's bytes do not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end inside a value.
    Eof,
    /// A value of another MessagePack type than the field's: `found` is
    /// its marker byte.
    Type { expected: &'static str, found: u8 },
    /// An integer too large (or negative) for its field.
    Range { expected: &'static str },
    /// A string that is not UTF-8.
    Utf8,
    /// A length larger than the bytes that are left.
    Length(u64),
    /// A required field (one whose type has no default) is absent.
    MissingField { ty: &'static str, field: &'static str },
    /// A variant index (record kind, decoded form) or enum code this build
    /// does not know: written by a newer minor version.
    UnknownVariant { ty: &'static str, index: u64 },
    /// Bytes left after the record.
    Trailing(usize),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Eof => write!(f, "record ends inside a value"),
            DecodeError::Type { expected, found } => write!(f, "expected {expected}, found marker 0x{found:02x}"),
            DecodeError::Range { expected } => write!(f, "integer out of range for {expected}"),
            DecodeError::Utf8 => write!(f, "string is not UTF-8"),
            DecodeError::Length(n) => write!(f, "length {n} runs past the end of the record"),
            DecodeError::MissingField { ty, field } => write!(f, "{ty}: missing field {field}"),
            DecodeError::UnknownVariant { ty, index } => write!(f, "unknown variant {index} of {ty}"),
            DecodeError::Trailing(n) => write!(f, "{n} bytes after the end of the record"),
        }
    }
}

impl std::error::Error for DecodeError {}

type Result<T> = std::result::Result<T, DecodeError>;

/// Appends `record`'s encoding to `out`.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) {
    record.encode(out);
}

/// Decodes one record from exactly `bytes`.
pub fn decode_record(bytes: &[u8]) -> Result<Record> {
    let mut record = Record::empty();
    decode_record_into(bytes, &mut record)?;
    Ok(record)
}

/// Decodes one record from exactly `bytes` over `record` (whose contents
/// are replaced, or left unspecified on an error).
pub fn decode_record_into(bytes: &[u8], record: &mut Record) -> Result<()> {
    decode_record_lean(bytes, record, Lean::default())
}

/// Which parts of messages a reader skips rather than decodes (see
/// [`crate::Reader::lean_messages`] and
/// [`crate::Reader::lean_message_bytes`]); skipped parts are left empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lean {
    /// Messages this way come without their bytes and decoded form.
    pub messages: Option<Direction>,
    /// Messages this way come without their bytes (decoded form kept).
    pub bytes: Option<Direction>,
}

impl Lean {
    /// Whether anything is skipped.
    #[inline]
    pub fn any(&self) -> bool {
        self.messages.is_some() || self.bytes.is_some()
    }
}

/// As [`decode_record_into`], but the message parts `lean` names are
/// skipped, not decoded, and left empty.
pub fn decode_record_lean(bytes: &[u8], record: &mut Record, lean: Lean) -> Result<()> {
    let mut r = Rd { buf: bytes, pos: 0, lean };
    record.decode_into(&mut r)?;
    match r.remaining() {
        0 => Ok(()),
        n => Err(DecodeError::Trailing(n)),
    }
}

/// A type with a trace-file encoding.
///
/// Decoding builds values in place ([`Codec::decode_into`] over
/// [`Codec::empty`]) rather than returning them up through every level:
/// records are a few hundred bytes, and moving them at each level cost a
/// quarter of the reading time.
pub trait Codec: Sized {
    fn encode(&self, out: &mut Vec<u8>);

    /// A cheap value to decode into (for types with a default, the
    /// default).
    fn empty() -> Self;

    /// Decodes over `self`. Implement this or [`Codec::decode`].
    #[inline]
    fn decode_into(&mut self, r: &mut Rd<'_>) -> Result<()> {
        *self = Self::decode(r)?;
        Ok(())
    }

    /// Implement this or [`Codec::decode_into`].
    #[inline]
    fn decode(r: &mut Rd<'_>) -> Result<Self> {
        let mut v = Self::empty();
        v.decode_into(r)?;
        Ok(v)
    }

    /// True when, as a struct field, the value is left out: it is what
    /// [`Codec::missing`] gives back.
    #[inline]
    fn is_default(&self) -> bool {
        false
    }

    /// The value of a struct field that is absent from its map: the
    /// type's default, or an error for types without one.
    #[inline]
    fn missing(ty: &'static str, field: &'static str) -> Result<Self> {
        Err(DecodeError::MissingField { ty, field })
    }
}

// ---- writing ----------------------------------------------------------

#[inline]
pub fn put_nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

#[inline]
pub fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(if b { 0xc3 } else { 0xc2 });
}

/// An unsigned integer, in the shortest form.
///
/// Each form is written with one fixed-size copy (one capacity check); the
/// one-byte form inline, the rest out of line.
#[inline]
pub fn put_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else {
        put_uint_wide(out, v);
    }
}

fn put_uint_wide(out: &mut Vec<u8>, v: u64) {
    if v <= u8::MAX as u64 {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v <= u16::MAX as u64 {
        let [a, b] = (v as u16).to_be_bytes();
        out.extend_from_slice(&[0xcd, a, b]);
    } else if v <= u32::MAX as u64 {
        let [a, b, c, d] = (v as u32).to_be_bytes();
        out.extend_from_slice(&[0xce, a, b, c, d]);
    } else {
        let [a, b, c, d, e, f, g, h] = v.to_be_bytes();
        out.extend_from_slice(&[0xcf, a, b, c, d, e, f, g, h]);
    }
}

/// A signed integer, in the shortest form (non-negative ones as unsigned).
#[inline]
pub fn put_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        put_uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as i8 as u8);
    } else if v >= i8::MIN as i64 {
        out.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= i16::MIN as i64 {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

#[inline]
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    out.reserve(n + 5);
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else {
        put_len_wide(out, n, [0xd9, 0xda, 0xdb]);
    }
    out.extend_from_slice(s.as_bytes());
}

#[inline]
pub fn put_bin(out: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    out.reserve(n + 5);
    if n <= u8::MAX as usize {
        out.extend_from_slice(&[0xc4, n as u8]);
    } else {
        put_len_wide(out, n, [0xc4, 0xc5, 0xc6]);
    }
    out.extend_from_slice(b);
}

/// A length header with an 8-, 16- or 32-bit length after its marker
/// (`markers` in that order).
fn put_len_wide(out: &mut Vec<u8>, n: usize, markers: [u8; 3]) {
    if n <= u8::MAX as usize {
        out.extend_from_slice(&[markers[0], n as u8]);
    } else if n <= u16::MAX as usize {
        let [a, b] = (n as u16).to_be_bytes();
        out.extend_from_slice(&[markers[1], a, b]);
    } else {
        let [a, b, c, d] = (n as u32).to_be_bytes();
        out.extend_from_slice(&[markers[2], a, b, c, d]);
    }
}

#[inline]
pub fn put_array_len(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if n <= u16::MAX as usize {
        out.push(0xdc);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

#[inline]
pub fn put_map_len(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x80 | n as u8);
    } else if n <= u16::MAX as usize {
        out.push(0xde);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

// ---- reading ----------------------------------------------------------

/// A cursor over one record's bytes.
pub struct Rd<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The message parts skipped.
    pub(crate) lean: Lean,
}

impl<'a> Rd<'a> {
    pub fn new(buf: &'a [u8]) -> Rd<'a> {
        Rd { buf, pos: 0, lean: Lean::default() }
    }

    /// Bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Eof)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn peek(&self) -> Result<u8> {
        self.buf.get(self.pos).copied().ok_or(DecodeError::Eof)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError::Length(n as u64));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn be<const N: usize>(&mut self) -> Result<[u8; N]> {
        if self.remaining() < N {
            return Err(DecodeError::Eof);
        }
        let mut a = [0u8; N];
        a.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        Ok(a)
    }

    /// The length that follows a marker with 1, 2 or 4 length bytes.
    #[inline]
    fn len_after(&mut self, width: u8) -> Result<usize> {
        Ok(match width {
            1 => self.byte()? as usize,
            2 => u16::from_be_bytes(self.be()?) as usize,
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    /// Consumes a nil if one is next.
    #[inline]
    pub fn nil(&mut self) -> Result<bool> {
        if self.peek()? == 0xc0 {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    pub fn bool(&mut self) -> Result<bool> {
        match self.byte()? {
            0xc2 => Ok(false),
            0xc3 => Ok(true),
            m => Err(DecodeError::Type { expected: "a bool", found: m }),
        }
    }

    /// Any integer, as i128 (so that every u64 and i64 fits).
    #[inline]
    fn integer(&mut self, expected: &'static str) -> Result<i128> {
        let m = self.byte()?;
        Ok(match m {
            0x00..=0x7f => m as i128,
            0xe0..=0xff => m as i8 as i128,
            0xcc => self.byte()? as i128,
            0xcd => u16::from_be_bytes(self.be()?) as i128,
            0xce => u32::from_be_bytes(self.be()?) as i128,
            0xcf => u64::from_be_bytes(self.be()?) as i128,
            0xd0 => self.byte()? as i8 as i128,
            0xd1 => i16::from_be_bytes(self.be()?) as i128,
            0xd2 => i32::from_be_bytes(self.be()?) as i128,
            0xd3 => i64::from_be_bytes(self.be()?) as i128,
            _ => return Err(DecodeError::Type { expected, found: m }),
        })
    }

    /// An unsigned integer (any MessagePack integer form).
    #[inline]
    pub fn uint(&mut self, expected: &'static str) -> Result<u64> {
        // Fast paths: a positive fixint, and the unsigned forms.
        match self.peek()? {
            b @ 0x00..=0x7f => {
                self.pos += 1;
                return Ok(b as u64);
            }
            0xcc => {
                self.pos += 1;
                return Ok(self.byte()? as u64);
            }
            0xcd => {
                self.pos += 1;
                return Ok(u16::from_be_bytes(self.be()?) as u64);
            }
            0xce => {
                self.pos += 1;
                return Ok(u32::from_be_bytes(self.be()?) as u64);
            }
            0xcf => {
                self.pos += 1;
                return Ok(u64::from_be_bytes(self.be()?));
            }
            _ => {}
        }
        u64::try_from(self.integer(expected)?).map_err(|_| DecodeError::Range { expected })
    }

    /// A signed integer (any MessagePack integer form).
    pub fn int(&mut self, expected: &'static str) -> Result<i64> {
        i64::try_from(self.integer(expected)?).map_err(|_| DecodeError::Range { expected })
    }

    /// A map key: `Some(index)` for an integer key, `None` (the key
    /// skipped) for any other: its entry is then unknown to this build.
    #[inline]
    pub fn key(&mut self) -> Result<Option<u64>> {
        let b = self.peek()?;
        if b < 0x80 {
            self.pos += 1;
            return Ok(Some(b as u64));
        }
        if matches!(b, 0xcc..=0xcf | 0xd0..=0xd3 | 0xe0..=0xff) {
            if let Ok(v) = u64::try_from(self.integer("a key")?) {
                return Ok(Some(v));
            }
            return Ok(None);
        }
        self.skip()?;
        Ok(None)
    }

    /// A string's bytes, not yet checked for UTF-8.
    #[inline]
    fn str_bytes(&mut self) -> Result<&'a [u8]> {
        let m = self.byte()?;
        let n = match m {
            0xa0..=0xbf => (m & 0x1f) as usize,
            0xd9 => self.len_after(1)?,
            0xda => self.len_after(2)?,
            0xdb => self.len_after(4)?,
            _ => return Err(DecodeError::Type { expected: "a string", found: m }),
        };
        self.take(n)
    }

    #[inline]
    pub fn str(&mut self) -> Result<&'a str> {
        std::str::from_utf8(self.str_bytes()?).map_err(|_| DecodeError::Utf8)
    }

    /// A byte string (`bin`; a `str` is accepted too).
    #[inline]
    pub fn bin(&mut self) -> Result<&'a [u8]> {
        let m = self.peek()?;
        let n = match m {
            0xc4 => {
                self.pos += 1;
                self.len_after(1)?
            }
            0xc5 => {
                self.pos += 1;
                self.len_after(2)?
            }
            0xc6 => {
                self.pos += 1;
                self.len_after(4)?
            }
            0xa0..=0xbf | 0xd9..=0xdb => return self.str_bytes(),
            _ => return Err(DecodeError::Type { expected: "bytes", found: m }),
        };
        self.take(n)
    }

    /// An array's length, checked against the bytes left (every element
    /// takes at least one byte).
    #[inline]
    pub fn array_len(&mut self) -> Result<usize> {
        let m = self.byte()?;
        let n = match m {
            0x90..=0x9f => (m & 0x0f) as usize,
            0xdc => self.len_after(2)?,
            0xdd => self.len_after(4)?,
            _ => return Err(DecodeError::Type { expected: "an array", found: m }),
        };
        if n > self.remaining() {
            return Err(DecodeError::Length(n as u64));
        }
        Ok(n)
    }

    /// A map's entry count, checked against the bytes left.
    #[inline]
    pub fn map_len(&mut self) -> Result<usize> {
        let m = self.byte()?;
        let n = match m {
            0x80..=0x8f => (m & 0x0f) as usize,
            0xde => self.len_after(2)?,
            0xdf => self.len_after(4)?,
            _ => return Err(DecodeError::Type { expected: "a map", found: m }),
        };
        if n.saturating_mul(2) > self.remaining() {
            return Err(DecodeError::Length(n as u64));
        }
        Ok(n)
    }

    /// Skips one value of any type (without recursion, so nesting depth
    /// costs nothing).
    pub fn skip(&mut self) -> Result<()> {
        let mut left: u64 = 1;
        while left > 0 {
            left -= 1;
            let m = self.byte()?;
            let data = match m {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
                0x80..=0x8f => {
                    left += 2 * (m & 0x0f) as u64;
                    0
                }
                0x90..=0x9f => {
                    left += (m & 0x0f) as u64;
                    0
                }
                0xa0..=0xbf => (m & 0x1f) as usize,
                0xc4 | 0xd9 => self.len_after(1)?,
                0xc5 | 0xda => self.len_after(2)?,
                0xc6 | 0xdb => self.len_after(4)?,
                0xc7 => self.len_after(1)? + 1,
                0xc8 => self.len_after(2)? + 1,
                0xc9 => self.len_after(4)? + 1,
                0xca => 4,
                0xcb => 8,
                0xcc | 0xd0 => 1,
                0xcd | 0xd1 => 2,
                0xce | 0xd2 => 4,
                0xcf | 0xd3 => 8,
                0xd4 => 2,
                0xd5 => 3,
                0xd6 => 5,
                0xd7 => 9,
                0xd8 => 17,
                0xdc => {
                    left += self.len_after(2)? as u64;
                    0
                }
                0xdd => {
                    left += self.len_after(4)? as u64;
                    0
                }
                0xde => {
                    left += 2 * self.len_after(2)? as u64;
                    0
                }
                0xdf => {
                    left += 2 * self.len_after(4)? as u64;
                    0
                }
                0xc1 => return Err(DecodeError::Type { expected: "a value", found: m }),
            };
            self.take(data)?;
            if left > self.remaining() as u64 {
                return Err(DecodeError::Length(left));
            }
        }
        Ok(())
    }
}

// ---- the building blocks ---------------------------------------------

macro_rules! codec_uint {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                put_uint(out, *self as u64);
            }
            #[inline]
            fn empty() -> Self {
                0
            }
            #[inline]
            fn decode(r: &mut Rd<'_>) -> Result<Self> {
                let v = r.uint(stringify!($t))?;
                <$t>::try_from(v).map_err(|_| DecodeError::Range { expected: stringify!($t) })
            }
            #[inline]
            fn is_default(&self) -> bool {
                *self == 0
            }
            #[inline]
            fn missing(_: &'static str, _: &'static str) -> Result<Self> {
                Ok(0)
            }
        }
    )*};
}

codec_uint!(u8, u16, u32, u64);

impl Codec for i64 {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        put_int(out, *self);
    }
    #[inline]
    fn empty() -> Self {
        0
    }
    #[inline]
    fn decode(r: &mut Rd<'_>) -> Result<Self> {
        r.int("i64")
    }
    #[inline]
    fn is_default(&self) -> bool {
        *self == 0
    }
    #[inline]
    fn missing(_: &'static str, _: &'static str) -> Result<Self> {
        Ok(0)
    }
}

impl Codec for bool {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        put_bool(out, *self);
    }
    #[inline]
    fn empty() -> Self {
        false
    }
    #[inline]
    fn decode(r: &mut Rd<'_>) -> Result<Self> {
        r.bool()
    }
    #[inline]
    fn is_default(&self) -> bool {
        !*self
    }
    #[inline]
    fn missing(_: &'static str, _: &'static str) -> Result<Self> {
        Ok(false)
    }
}

impl Codec for String {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        put_str(out, self);
    }
    #[inline]
    fn empty() -> Self {
        String::new()
    }
    #[inline]
    fn decode(r: &mut Rd<'_>) -> Result<Self> {
        r.str().map(str::to_owned)
    }
    #[inline]
    fn is_default(&self) -> bool {
        self.is_empty()
    }
    #[inline]
    fn missing(_: &'static str, _: &'static str) -> Result<Self> {
        Ok(String::new())
    }
}

impl Codec for BStr {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        put_bin(out, &self.0);
    }
    #[inline]
    fn empty() -> Self {
        BStr::default()
    }
    #[inline]
    fn decode(r: &mut Rd<'_>) -> Result<Self> {
        r.bin().map(|b| BStr(b.to_vec()))
    }
    #[inline]
    fn is_default(&self) -> bool {
        self.0.is_empty()
    }
    #[inline]
    fn missing(_: &'static str, _: &'static str) -> Result<Self> {
        Ok(BStr::default())
    }
}

/// `None` is nil (inside a list) or an absent field.
impl<T: Codec> Codec for Option<T> {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.encode(out),
            None => put_nil(out),
        }
    }
    #[inline]
    fn empty() -> Self {
        None
    }
    #[inline]
    fn decode_into(&mut self, r: &mut Rd<'_>) -> Result<()> {
        if r.nil()? {
            *self = None;
            Ok(())
        } else {
            self.get_or_insert_with(T::empty).decode_into(r)
        }
    }
    #[inline]
    fn is_default(&self) -> bool {
        self.is_none()
    }
    #[inline]
    fn missing(_: &'static str, _: &'static str) -> Result<Self> {
        Ok(None)
    }
}

impl<T: Codec> Codec for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        put_array_len(out, self.len());
        for v in self {
            v.encode(out);
        }
    }
    #[inline]
    fn empty() -> Self {
        Vec::new()
    }
    fn decode_into(&mut self, r: &mut Rd<'_>) -> Result<()> {
        let n = r.array_len()?;
        self.clear();
        // `n` is checked against the bytes left, but a damaged length
        // could still ask for far more memory than its elements will use.
        self.reserve(n.min(1024));
        for _ in 0..n {
            self.push(T::decode(r)?);
        }
        Ok(())
    }
    #[inline]
    fn is_default(&self) -> bool {
        self.is_empty()
    }
    #[inline]
    fn missing(_: &'static str, _: &'static str) -> Result<Self> {
        Ok(Vec::new())
    }
}

/// A pair is an array of two.
impl<A: Codec, B: Codec> Codec for (A, B) {
    fn encode(&self, out: &mut Vec<u8>) {
        put_array_len(out, 2);
        self.0.encode(out);
        self.1.encode(out);
    }
    fn empty() -> Self {
        (A::empty(), B::empty())
    }
    fn decode(r: &mut Rd<'_>) -> Result<Self> {
        match r.array_len()? {
            2 => Ok((A::decode(r)?, B::decode(r)?)),
            n => Err(DecodeError::Length(n as u64)),
        }
    }
}

/// Implements [`Codec`] for a struct as a map from field index to value:
/// `codec_struct!(Name { field = 0, other = 1, ... })`. Every field must
/// be listed (the decoder builds the struct), indices are positive
/// fixints (< 128), and a field's index never changes.
///
/// `codec_struct!(Name { ... } skip_if PREDICATE, reading FIELD, ...)`:
/// fields for which `PREDICATE(&self_so_far, index, &rd)` holds are
/// skipped, not decoded, and left empty (lean reading,
/// [`crate::Reader::lean_messages`]); the predicate reads only the FIELDs
/// named, which come before the skipped ones.
macro_rules! codec_struct {
    ($ty:ident { $($field:ident = $idx:literal),+ $(,)? } $(skip_if $skip:path, reading $($read:ident),+)?) => {
        impl $crate::codec::Codec for $ty {
            fn encode(&self, out: &mut Vec<u8>) {
                $(const _: () = assert!($idx < 128, "field indices are positive fixints");)+
                // At most 15 fields: the map's length is a one-byte fixmap
                // header, written first and set once the fields are out.
                const _: () = assert!(0 $(+ { let _ = $idx; 1 })+ < 16, "at most 15 fields per struct");
                let at = out.len();
                out.push(0x80);
                let mut n = 0u8;
                $(
                    if !self.$field.is_default() {
                        n += 1;
                        out.push($idx);
                        self.$field.encode(out);
                    }
                )+
                if let Some(header) = out.get_mut(at) {
                    *header = 0x80 | n;
                }
            }

            #[inline]
            fn empty() -> Self {
                $ty { $($field: $crate::codec::Codec::empty(),)+ }
            }

            fn decode_into(&mut self, r: &mut $crate::codec::Rd<'_>) -> Result<(), $crate::codec::DecodeError> {
                use $crate::codec::Codec;
                #[allow(unused_variables)] // shadowed under skip_if
                let skip = |_: &$ty, _: u64, _: &$crate::codec::Rd<'_>| false;
                $(
                    let skip = $skip;
                    if r.lean.any() {
                        // The predicate reads fields decoded before the
                        // skipped ones: they must be this value's, not
                        // those of a value decoded over (an absent field
                        // is its default). Only those are reset: the
                        // others keep their room for reuse.
                        $(self.$read = Codec::empty();)+
                    }
                )?
                let mut seen = 0u128;
                for _ in 0..r.map_len()? {
                    match r.key()? {
                        $(Some($idx) => {
                            if skip(self, $idx, r) {
                                r.skip()?;
                                self.$field = Codec::empty();
                            } else {
                                self.$field.decode_into(r)?;
                            }
                            seen |= 1 << $idx;
                        })+
                        _ => r.skip()?,
                    }
                }
                $(
                    if seen & (1 << $idx) == 0 {
                        self.$field = Codec::missing(stringify!($ty), stringify!($field))?;
                    }
                )+
                Ok(())
            }
        }
    };
}

/// Implements [`Codec`] for an enum whose variants each hold one value, as
/// a map of one entry from the variant's index to the value:
/// `codec_enum!(Name { Variant = 0, ... })`. An unknown index is
/// [`DecodeError::UnknownVariant`].
macro_rules! codec_enum {
    ($ty:ident { $first:ident = $fidx:literal $(, $var:ident = $idx:literal)* $(,)? }) => {
        impl $crate::codec::Codec for $ty {
            fn encode(&self, out: &mut Vec<u8>) {
                const _: () = assert!($fidx < 128, "variant indices are positive fixints");
                $(const _: () = assert!($idx < 128, "variant indices are positive fixints");)*
                out.push(0x81);
                match self {
                    $ty::$first(v) => {
                        out.push($fidx);
                        v.encode(out);
                    }
                    $($ty::$var(v) => {
                        out.push($idx);
                        v.encode(out);
                    })*
                }
            }

            #[inline]
            fn empty() -> Self {
                $ty::$first($crate::codec::Codec::empty())
            }

            fn decode_into(&mut self, r: &mut $crate::codec::Rd<'_>) -> Result<(), $crate::codec::DecodeError> {
                use $crate::codec::Codec;
                match r.map_len()? {
                    1 => {}
                    n => return Err($crate::codec::DecodeError::Length(n as u64)),
                }
                // Build the variant in place, then decode into it.
                match r.uint("a variant index")? {
                    $fidx => {
                        if !matches!(self, $ty::$first(_)) {
                            *self = $ty::$first(Codec::empty());
                        }
                        match self {
                            $ty::$first(v) => v.decode_into(r),
                            _ => unreachable!(),
                        }
                    }
                    $($idx => {
                        if !matches!(self, $ty::$var(_)) {
                            *self = $ty::$var(Codec::empty());
                        }
                        match self {
                            $ty::$var(v) => v.decode_into(r),
                            _ => unreachable!(),
                        }
                    })*
                    index => Err($crate::codec::DecodeError::UnknownVariant { ty: stringify!($ty), index }),
                }
            }
        }
    };
}

pub(crate) use {codec_enum, codec_struct};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_in_the_spec() {
        // docs/trace-format.md, "Records".
        let record = Record {
            ts: 1000,
            src: 0,
            body: crate::Body::ConnClose(crate::ConnClose {
                conn: 3,
                bytes_to_server: 10,
                bytes_to_client: 10,
                error: None,
            }),
        };
        let mut out = Vec::new();
        encode_record(&record, &mut out);
        let want = [0x82, 0x00, 0xcd, 0x03, 0xe8, 0x02, 0x81, 0x01, 0x83, 0x00, 0x03, 0x01, 0x0a, 0x02, 0x0a];
        assert_eq!(out, want);
        assert_eq!(decode_record(&out).unwrap(), record);
    }

    #[test]
    fn integers_round_trip_in_every_width() {
        for v in [0u64, 1, 127, 128, 255, 256, 65535, 65536, u32::MAX as u64, u32::MAX as u64 + 1, u64::MAX] {
            let mut out = Vec::new();
            put_uint(&mut out, v);
            assert_eq!(Rd::new(&out).uint("u64").unwrap(), v);
            assert_eq!(rmp_serde::from_slice::<u64>(&out).unwrap(), v, "same bytes as rmp");
        }
        for v in [0i64, -1, -32, -33, -128, -129, -32768, -32769, i32::MIN as i64 - 1, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            put_int(&mut out, v);
            assert_eq!(Rd::new(&out).int("i64").unwrap(), v);
            assert_eq!(rmp_serde::from_slice::<i64>(&out).unwrap(), v, "same bytes as rmp");
        }
        assert!(matches!(Rd::new(&[0xff]).uint("u64"), Err(DecodeError::Range { .. })));
    }

    #[test]
    fn strings_and_bytes_in_every_width() {
        for n in [0usize, 31, 32, 255, 256, 65535, 65536] {
            let s = "x".repeat(n);
            let mut out = Vec::new();
            put_str(&mut out, &s);
            assert_eq!(Rd::new(&out).str().unwrap(), s);
            assert_eq!(rmp_serde::from_slice::<String>(&out).unwrap(), s);
            let mut out = Vec::new();
            put_bin(&mut out, s.as_bytes());
            assert_eq!(Rd::new(&out).bin().unwrap(), s.as_bytes());
        }
    }

    #[test]
    fn skip_passes_over_any_value() {
        #[derive(serde::Serialize)]
        struct Any {
            a: Vec<Option<String>>,
            b: std::collections::BTreeMap<String, (u8, i64, f64, bool)>,
            #[serde(with = "serde_bytes")]
            c: Vec<u8>,
        }
        let mut m = std::collections::BTreeMap::new();
        m.insert("k".repeat(40), (1, -70000, 1.5, true));
        let v = Any { a: vec![None, Some("x".repeat(300))], b: m, c: vec![9; 70000] };
        let mut out = rmp_serde::to_vec_named(&v).unwrap();
        out.push(0x2a);
        let mut r = Rd::new(&out);
        r.skip().unwrap();
        assert_eq!(r.uint("u64").unwrap(), 42);
        assert_eq!(r.remaining(), 0);
        // Lengths that run past the end are errors, not panics.
        assert!(Rd::new(&[0xdd, 0xff, 0xff, 0xff, 0xff]).skip().is_err());
        assert!(Rd::new(&[0xdb, 0xff, 0xff, 0xff, 0xff]).skip().is_err());
        assert!(Rd::new(&[0x92, 0x01]).skip().is_err());
    }
}
