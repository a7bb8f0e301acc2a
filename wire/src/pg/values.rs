//! [`PgValue`]: a parameter or column value rendered as PostgreSQL's text
//! output for the common types, in both text and binary wire format.

use super::tags::oid;
use bytes::Bytes;
use std::fmt::Write;

/// A decoded parameter or column value.
#[derive(Clone, Debug, PartialEq)]
pub enum PgValue {
    /// SQL NULL.
    Null,
    /// The value as PostgreSQL would print it (text format values as sent,
    /// binary values of the common types converted). `timestamptz` in
    /// binary format is rendered in UTC with a `+00` suffix.
    Text(String),
    /// A value kept as bytes: binary format of a type this codec does not
    /// decode, or text that is not valid UTF-8.
    Raw {
        /// Type OID (0 when unknown).
        type_oid: u32,
        /// Format code: 0 text, 1 binary.
        format: i16,
        /// The bytes as sent.
        data: Bytes,
    },
}

impl PgValue {
    /// The text, if decoded.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            PgValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Decodes one value of type `type_oid` sent in `format` (0 text, 1 binary).
/// `None` is NULL.
pub fn decode_value(type_oid: u32, format: i16, data: Option<&Bytes>) -> PgValue {
    let Some(data) = data else { return PgValue::Null };
    let raw = || PgValue::Raw { type_oid, format, data: data.clone() };
    if format == 0 {
        return match std::str::from_utf8(data) {
            Ok(s) => PgValue::Text(s.to_owned()),
            Err(_) => raw(),
        };
    }
    if format != 1 {
        return raw();
    }
    match decode_binary(type_oid, data) {
        Some(s) => PgValue::Text(s),
        None => raw(),
    }
}

fn be<const N: usize>(d: &[u8]) -> Option<[u8; N]> {
    d.try_into().ok()
}

/// Binary format of the common types to their text output; `None` when the
/// type is not handled or the bytes do not fit it.
pub fn decode_binary(type_oid: u32, d: &[u8]) -> Option<String> {
    Some(match type_oid {
        oid::BOOL => match d {
            [0] => "f".to_owned(),
            [_] => "t".to_owned(),
            _ => return None,
        },
        oid::INT2 => i16::from_be_bytes(be(d)?).to_string(),
        oid::INT4 => i32::from_be_bytes(be(d)?).to_string(),
        oid::INT8 => i64::from_be_bytes(be(d)?).to_string(),
        oid::OID => u32::from_be_bytes(be(d)?).to_string(),
        oid::FLOAT4 => float_text(f32::from_be_bytes(be(d)?) as f64, true),
        oid::FLOAT8 => float_text(f64::from_be_bytes(be(d)?), false),
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::JSON | oid::UNKNOWN | oid::CHAR => {
            std::str::from_utf8(d).ok()?.to_owned()
        }
        oid::JSONB => match d.split_first() {
            Some((1, rest)) => std::str::from_utf8(rest).ok()?.to_owned(),
            _ => return None,
        },
        oid::BYTEA => {
            let mut s = String::with_capacity(2 + 2 * d.len());
            s.push_str("\\x");
            for b in d {
                let _ = write!(s, "{b:02x}");
            }
            s
        }
        oid::UUID => {
            let b: [u8; 16] = be(d)?;
            let mut s = String::with_capacity(36);
            for (i, x) in b.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    s.push('-');
                }
                let _ = write!(s, "{x:02x}");
            }
            s
        }
        oid::DATE => {
            let days = i32::from_be_bytes(be(d)?);
            match days {
                i32::MAX => "infinity".to_owned(),
                i32::MIN => "-infinity".to_owned(),
                _ => date_text(days as i64),
            }
        }
        oid::TIME => {
            let us = i64::from_be_bytes(be(d)?);
            if !(0..=86_400_000_000).contains(&us) {
                return None;
            }
            time_text(us)
        }
        oid::TIMESTAMP | oid::TIMESTAMPTZ => {
            let us = i64::from_be_bytes(be(d)?);
            match us {
                i64::MAX => "infinity".to_owned(),
                i64::MIN => "-infinity".to_owned(),
                _ => {
                    let days = us.div_euclid(86_400_000_000);
                    let rem = us.rem_euclid(86_400_000_000);
                    let mut s = date_text(days);
                    s.push(' ');
                    s.push_str(&time_text(rem));
                    if type_oid == oid::TIMESTAMPTZ {
                        s.push_str("+00");
                    }
                    s
                }
            }
        }
        oid::NUMERIC => numeric_text(d)?,
        _ => return None,
    })
}

/// PostgreSQL prints floats with the shortest round-trip digits
/// (extra_float_digits = 1, the default since 12) in `%g` style.
fn float_text(v: f64, single: bool) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Shortest digits via Rust's `{:e}` (exact shortest round trip).
    let e = if single { format!("{:e}", v as f32) } else { format!("{v:e}") };
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let precision = if single { 9 } else { 17 };
    if exp < -4 || exp >= precision {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else if single {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    }
}

/// Days since 2000-01-01 to `YYYY-MM-DD` (proleptic Gregorian; BC years as
/// PostgreSQL prints them, `YYYY-MM-DD BC`).
fn date_text(days_since_2000: i64) -> String {
    // Howard Hinnant's civil_from_days, with 2000-01-01 = 10957 days after 1970.
    let z = days_since_2000 + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if year <= 0 {
        format!("{:04}-{month:02}-{day:02} BC", 1 - year)
    } else {
        format!("{year:04}-{month:02}-{day:02}")
    }
}

/// Microseconds since midnight to `HH:MM:SS[.ffffff]` (trailing zeros cut).
fn time_text(us: i64) -> String {
    let secs = us / 1_000_000;
    let frac = us % 1_000_000;
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

/// Binary numeric: ndigits, weight, sign, dscale, then base-10000 digits.
fn numeric_text(d: &[u8]) -> Option<String> {
    let h = |i: usize| d.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let ndigits = h(0)? as usize;
    let weight = h(2)? as i16 as i64;
    let sign = h(4)?;
    let dscale = h(6)? as usize;
    if d.len() != 8 + 2 * ndigits || dscale > 16_383 {
        return None;
    }
    match sign {
        0xC000 => return Some("NaN".to_owned()),
        0xD000 => return Some("Infinity".to_owned()),
        0xF000 => return Some("-Infinity".to_owned()),
        0x0000 | 0x4000 => {}
        _ => return None,
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| h(8 + 2 * i).unwrap_or(0)).collect();
    if digits.iter().any(|&x| x > 9999) {
        return None;
    }
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    // Integer part: digit groups 0..=weight.
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            let g = digits.get(i as usize).copied().unwrap_or(0);
            if i == 0 {
                let _ = write!(s, "{g}");
            } else {
                let _ = write!(s, "{g:04}");
            }
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::with_capacity(dscale + 4);
        let mut i = weight + 1;
        while frac.len() < dscale {
            let g = if i < 0 { 0 } else { digits.get(i as usize).copied().unwrap_or(0) };
            let _ = write!(frac, "{g:04}");
            i += 1;
        }
        frac.truncate(dscale);
        s.push_str(&frac);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values() {
        assert_eq!(decode_binary(oid::INT4, &42i32.to_be_bytes()).unwrap(), "42");
        assert_eq!(decode_binary(oid::FLOAT8, &1.25f64.to_be_bytes()).unwrap(), "1.25");
        assert_eq!(decode_binary(oid::FLOAT8, &1e100f64.to_be_bytes()).unwrap(), "1e+100");
        assert_eq!(decode_binary(oid::FLOAT8, &1.5e-7f64.to_be_bytes()).unwrap(), "1.5e-07");
        assert_eq!(decode_binary(oid::FLOAT4, &0.1f32.to_be_bytes()).unwrap(), "0.1");
        assert_eq!(decode_binary(oid::DATE, &0i32.to_be_bytes()).unwrap(), "2000-01-01");
        assert_eq!(decode_binary(oid::DATE, &(-1i32).to_be_bytes()).unwrap(), "1999-12-31");
        assert_eq!(decode_binary(oid::TIMESTAMP, &86_400_000_001i64.to_be_bytes()).unwrap(), "2000-01-02 00:00:00.000001");
        assert_eq!(decode_binary(oid::BYTEA, &[0, 0xff]).unwrap(), "\\x00ff");
        // 12.345: ndigits 2, weight 0, pos, dscale 3, digits 12, 3450
        let n = [0, 2, 0, 0, 0, 0, 0, 3, 0, 12, 0x0d, 0x7a];
        assert_eq!(decode_binary(oid::NUMERIC, &n).unwrap(), "12.345");
        // 0.0005: ndigits 1, weight -1, dscale 4, digit 5
        let n = [0, 1, 0xff, 0xff, 0, 0, 0, 4, 0, 5];
        assert_eq!(decode_binary(oid::NUMERIC, &n).unwrap(), "0.0005");
        // 100000000: ndigits 1, weight 2, digit 1
        let n = [0, 1, 0, 2, 0x40, 0, 0, 0, 0, 1];
        assert_eq!(decode_binary(oid::NUMERIC, &n).unwrap(), "-100000000");
        assert_eq!(decode_value(oid::INT4, 1, Some(&Bytes::from_static(&[1, 2]))), PgValue::Raw { type_oid: 23, format: 1, data: Bytes::from_static(&[1, 2]) });
    }
}
