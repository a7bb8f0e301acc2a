//! Body parsers: a framed message's bytes to a [`PgMessage`]. Every read is
//! checked; a short or inconsistent body becomes [`PgMessage::Malformed`].

use super::message::*;
use super::tags::{auth, backend as b, frontend as f};
use bytes::Bytes;

/// A checked cursor over a message body (zero-copy: slices share `buf`).
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
}

type R<T> = Result<T, &'static str>;

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> R<Bytes> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        if end > self.buf.len() {
            return Err("body shorter than its fields");
        }
        let out = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }
    fn arr<const N: usize>(&mut self) -> R<[u8; N]> {
        let end = self.pos.checked_add(N).ok_or("length overflow")?;
        let a: [u8; N] = self.buf.get(self.pos..end).ok_or("body shorter than its fields")?.try_into().map_err(|_| "bad slice")?;
        self.pos = end;
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> R<u8> {
        Ok(self.arr::<1>()?[0])
    }
    pub(crate) fn i16(&mut self) -> R<i16> {
        Ok(i16::from_be_bytes(self.arr()?))
    }
    pub(crate) fn u16(&mut self) -> R<u16> {
        Ok(u16::from_be_bytes(self.arr()?))
    }
    pub(crate) fn i32(&mut self) -> R<i32> {
        Ok(i32::from_be_bytes(self.arr()?))
    }
    pub(crate) fn u32(&mut self) -> R<u32> {
        Ok(u32::from_be_bytes(self.arr()?))
    }
    /// A NUL-terminated string, without the NUL.
    pub(crate) fn cstr(&mut self) -> R<Bytes> {
        let rest = self.buf.get(self.pos..).ok_or("past end")?;
        let n = memchr0(rest).ok_or("string without NUL terminator")?;
        let s = self.buf.slice(self.pos..self.pos + n);
        self.pos += n + 1;
        Ok(s)
    }
    /// A length-prefixed value (int32 length, -1 = NULL).
    pub(crate) fn value(&mut self) -> R<Option<Bytes>> {
        let n = self.i32()?;
        if n < 0 {
            return if n == -1 { Ok(None) } else { Err("negative value length") };
        }
        self.take(n as usize).map(Some)
    }
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos.min(self.buf.len())..);
        self.pos = self.buf.len();
        out
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub(crate) fn end(&self) -> R<()> {
        if self.remaining() == 0 { Ok(()) } else { Err("trailing bytes after the last field") }
    }
    /// An int16 count followed by that many items; the count is checked
    /// against the bytes left (each item takes at least `min` bytes) so a
    /// hostile count cannot make us allocate much.
    fn list<T>(&mut self, min: usize, mut item: impl FnMut(&mut Reader) -> R<T>) -> R<Vec<T>> {
        let n = self.u16()? as usize;
        if n.saturating_mul(min) > self.remaining() {
            return Err("count larger than the body");
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(item(self)?);
        }
        Ok(v)
    }
}

fn memchr0(s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == 0)
}

/// What the last authentication request asked for: decides how a frontend
/// `p` message is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum AuthState {
    /// No request seen (or one we cannot interpret).
    #[default]
    None,
    /// Cleartext or MD5: PasswordMessage.
    Password,
    /// AuthenticationSASL: SASLInitialResponse next.
    SaslInitial,
    /// AuthenticationSASLContinue: SASLResponse next.
    SaslContinue,
    /// GSS/SSPI: GSSResponse.
    Gss,
}

/// Parses a frontend message body. `tag` is known (the decoder checked it).
pub(crate) fn frontend(tag: u8, body: Bytes, auth: AuthState) -> PgMessage {
    let mut r = Reader::new(body);
    let res = (|| -> R<PgMessage> {
        let m = match tag {
            f::QUERY => PgMessage::Query { sql: r.cstr()? },
            f::PARSE => {
                let name = r.cstr()?;
                let sql = r.cstr()?;
                let param_types = r.list(4, |r| r.u32())?;
                PgMessage::Parse { name, sql, param_types }
            }
            f::BIND => {
                let portal = r.cstr()?;
                let statement = r.cstr()?;
                let param_formats = r.list(2, |r| r.i16())?;
                let params = r.list(4, |r| r.value())?;
                let result_formats = r.list(2, |r| r.i16())?;
                PgMessage::Bind(Box::new(Bind { portal, statement, param_formats, params, result_formats }))
            }
            f::DESCRIBE | f::CLOSE => {
                let target = match r.u8()? {
                    b'S' => Target::Statement,
                    b'P' => Target::Portal,
                    _ => return Err("target is neither 'S' nor 'P'"),
                };
                let name = r.cstr()?;
                if tag == f::DESCRIBE {
                    PgMessage::Describe { target, name }
                } else {
                    PgMessage::Close { target, name }
                }
            }
            f::EXECUTE => {
                let portal = r.cstr()?;
                let max_rows = r.u32()?;
                PgMessage::Execute { portal, max_rows }
            }
            f::SYNC => PgMessage::Sync,
            f::FLUSH => PgMessage::Flush,
            f::TERMINATE => PgMessage::Terminate,
            f::COPY_DONE => PgMessage::CopyDone,
            f::COPY_FAIL => PgMessage::CopyFail { message: r.cstr()? },
            f::FUNCTION_CALL => {
                let function = r.u32()?;
                let arg_formats = r.list(2, |r| r.i16())?;
                let args = r.list(4, |r| r.value())?;
                let result_format = r.i16()?;
                PgMessage::FunctionCall { function, arg_formats, args, result_format }
            }
            f::PASSWORD => match auth {
                AuthState::Password => {
                    let password = r.cstr()?;
                    PgMessage::Password { password }
                }
                AuthState::SaslInitial => {
                    let mechanism = r.cstr()?;
                    let data = r.value()?;
                    PgMessage::SaslInitialResponse { mechanism, data }
                }
                AuthState::SaslContinue => PgMessage::SaslResponse { data: r.rest() },
                AuthState::Gss | AuthState::None => PgMessage::GssResponse { data: r.rest() },
            },
            _ => return Err("unexpected frontend tag"),
        };
        r.end()?;
        Ok(m)
    })();
    res.unwrap_or_else(|reason| PgMessage::Malformed { tag, reason })
}

/// Parses a backend message body (DataRow is handled by the decoder).
pub(crate) fn backend(tag: u8, body: Bytes) -> PgMessage {
    let mut r = Reader::new(body);
    let res = (|| -> R<PgMessage> {
        let m = match tag {
            b::AUTHENTICATION => PgMessage::Authentication(match r.u32()? {
                auth::OK => Authentication::Ok,
                auth::CLEARTEXT_PASSWORD => Authentication::CleartextPassword,
                auth::MD5_PASSWORD => Authentication::Md5Password { salt: r.arr()? },
                auth::SASL => {
                    let mut mechanisms = Vec::new();
                    loop {
                        let m = r.cstr()?;
                        if m.is_empty() {
                            break;
                        }
                        mechanisms.push(m);
                    }
                    Authentication::Sasl { mechanisms }
                }
                auth::SASL_CONTINUE => Authentication::SaslContinue { data: r.rest() },
                auth::SASL_FINAL => Authentication::SaslFinal { data: r.rest() },
                code => Authentication::Other { code, data: r.rest() },
            }),
            b::PARAMETER_STATUS => PgMessage::ParameterStatus { name: r.cstr()?, value: r.cstr()? },
            b::BACKEND_KEY_DATA => PgMessage::BackendKeyData { pid: r.u32()?, secret_key: r.u32()? },
            b::READY_FOR_QUERY => PgMessage::ReadyForQuery { status: TransactionStatus::from_byte(r.u8()?) },
            b::PARSE_COMPLETE => PgMessage::ParseComplete,
            b::BIND_COMPLETE => PgMessage::BindComplete,
            b::CLOSE_COMPLETE => PgMessage::CloseComplete,
            b::NO_DATA => PgMessage::NoData,
            b::PORTAL_SUSPENDED => PgMessage::PortalSuspended,
            b::EMPTY_QUERY_RESPONSE => PgMessage::EmptyQueryResponse,
            b::COPY_DONE => PgMessage::CopyDone,
            b::PARAMETER_DESCRIPTION => PgMessage::ParameterDescription { types: r.list(4, |r| r.u32())? },
            b::ROW_DESCRIPTION => PgMessage::RowDescription {
                columns: r.list(19, |r| {
                    Ok(Column {
                        name: r.cstr()?,
                        table_oid: r.u32()?,
                        column_id: r.i16()?,
                        type_oid: r.u32()?,
                        type_size: r.i16()?,
                        type_modifier: r.i32()?,
                        format: r.i16()?,
                    })
                })?,
            },
            b::COMMAND_COMPLETE => PgMessage::CommandComplete { tag: r.cstr()? },
            b::COPY_IN_RESPONSE | b::COPY_OUT_RESPONSE | b::COPY_BOTH_RESPONSE => {
                let direction = match tag {
                    b::COPY_IN_RESPONSE => CopyDirection::In,
                    b::COPY_OUT_RESPONSE => CopyDirection::Out,
                    _ => CopyDirection::Both,
                };
                let format = r.u8()? as i8;
                let column_formats = r.list(2, |r| r.i16())?;
                PgMessage::CopyResponse(CopyResponse { direction, format, column_formats })
            }
            b::FUNCTION_CALL_RESPONSE => PgMessage::FunctionCallResponse { value: r.value()? },
            b::ERROR_RESPONSE | b::NOTICE_RESPONSE => {
                let fields = Box::new(error_fields(&mut r)?);
                if tag == b::ERROR_RESPONSE {
                    PgMessage::ErrorResponse(fields)
                } else {
                    PgMessage::NoticeResponse(fields)
                }
            }
            b::NOTIFICATION_RESPONSE => {
                PgMessage::NotificationResponse { pid: r.u32()?, channel: r.cstr()?, payload: r.cstr()? }
            }
            b::NEGOTIATE_PROTOCOL_VERSION => {
                let minor = r.u32()?;
                let n = r.u32()? as usize;
                if n > r.remaining() {
                    return Err("count larger than the body");
                }
                let mut unrecognized = Vec::with_capacity(n);
                for _ in 0..n {
                    unrecognized.push(r.cstr()?);
                }
                PgMessage::NegotiateProtocolVersion { minor, unrecognized }
            }
            _ => return Err("unexpected backend tag"),
        };
        r.end()?;
        Ok(m)
    })();
    res.unwrap_or_else(|reason| PgMessage::Malformed { tag, reason })
}

fn error_fields(r: &mut Reader) -> R<ErrorFields> {
    let mut e = ErrorFields::default();
    let mut have_v = false;
    loop {
        let ty = r.u8()?;
        if ty == 0 {
            break;
        }
        let v = r.cstr()?;
        match ty {
            b'V' => {
                e.severity = v.clone();
                have_v = true;
            }
            b'S' if !have_v => e.severity = v.clone(),
            b'C' => e.code = v.clone(),
            b'M' => e.message = v.clone(),
            b'D' => e.detail = Some(v.clone()),
            b'H' => e.hint = Some(v.clone()),
            b'P' => e.position = std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()),
            _ => {}
        }
        e.fields.push((ty, v));
    }
    Ok(e)
}

/// Parses a DataRow body into its values (`None` = NULL), zero-copy.
pub(crate) fn data_row(body: Bytes) -> R<Vec<Option<Bytes>>> {
    let mut r = Reader::new(body);
    let v = r.list(4, |r| r.value())?;
    r.end()?;
    Ok(v)
}

/// Parses an untagged startup packet body (after length and code).
pub(crate) fn startup(code: u32, body: Bytes) -> PgMessage {
    let mut r = Reader::new(body);
    let res = (|| -> R<PgMessage> {
        use super::tags::startup as s;
        Ok(match code {
            s::SSL_REQUEST => {
                r.end()?;
                PgMessage::SslRequest
            }
            s::GSSENC_REQUEST => {
                r.end()?;
                PgMessage::GssEncRequest
            }
            s::CANCEL_REQUEST => {
                let m = PgMessage::CancelRequest { pid: r.u32()?, secret_key: r.u32()? };
                r.end()?;
                m
            }
            protocol => {
                let mut params = Vec::new();
                loop {
                    let k = r.cstr()?;
                    if k.is_empty() {
                        break;
                    }
                    let v = r.cstr()?;
                    params.push((k, v));
                }
                r.end()?;
                PgMessage::Startup(Startup { protocol, params })
            }
        })
    })();
    res.unwrap_or_else(|reason| PgMessage::Malformed { tag: 0, reason })
}
