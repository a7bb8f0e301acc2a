//! Frontend message encoders for the replayer, and [`error_response`], the
//! one backend message the proxy writes itself (when it cannot reach the
//! server for a client). Each appends one message to a `BytesMut`; strings
//! must not contain NUL (PostgreSQL's wire strings are NUL-terminated: an
//! embedded NUL would cut them).

use super::message::Target;
use super::tags::{frontend as f, startup as st};
use bytes::{BufMut, BytesMut};

/// Writes a tagged message: tag, then the body `body` writes, with the
/// length patched in afterwards.
fn tagged(buf: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(tag);
    let at = buf.len();
    buf.put_u32(0);
    body(buf);
    let len = (buf.len() - at) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn cstr(buf: &mut BytesMut, s: &[u8]) {
    buf.put_slice(s);
    buf.put_u8(0);
}

/// StartupMessage, protocol 3.0, with `params` (`user` is required by the
/// server; `database`, `application_name`, `client_encoding`... optional).
pub fn startup(buf: &mut BytesMut, params: &[(&str, &str)]) {
    let at = buf.len();
    buf.put_u32(0);
    buf.put_u32(st::PROTOCOL_3_0);
    for (k, v) in params {
        cstr(buf, k.as_bytes());
        cstr(buf, v.as_bytes());
    }
    buf.put_u8(0);
    let len = (buf.len() - at) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// SSLRequest.
pub fn ssl_request(buf: &mut BytesMut) {
    buf.put_u32(8);
    buf.put_u32(st::SSL_REQUEST);
}

/// GSSENCRequest.
pub fn gssenc_request(buf: &mut BytesMut) {
    buf.put_u32(8);
    buf.put_u32(st::GSSENC_REQUEST);
}

/// CancelRequest.
pub fn cancel_request(buf: &mut BytesMut, pid: u32, secret_key: u32) {
    buf.put_u32(16);
    buf.put_u32(st::CANCEL_REQUEST);
    buf.put_u32(pid);
    buf.put_u32(secret_key);
}

/// PasswordMessage: a cleartext password, or the result of
/// [`super::auth::md5_password`].
pub fn password(buf: &mut BytesMut, password: &[u8]) {
    tagged(buf, f::PASSWORD, |b| cstr(b, password));
}

/// SASLInitialResponse (`data` None is sent as length -1).
pub fn sasl_initial_response(buf: &mut BytesMut, mechanism: &str, data: Option<&[u8]>) {
    tagged(buf, f::PASSWORD, |b| {
        cstr(b, mechanism.as_bytes());
        match data {
            Some(d) => {
                b.put_i32(d.len() as i32);
                b.put_slice(d);
            }
            None => b.put_i32(-1),
        }
    });
}

/// SASLResponse.
pub fn sasl_response(buf: &mut BytesMut, data: &[u8]) {
    tagged(buf, f::PASSWORD, |b| b.put_slice(data));
}

/// Simple Query.
pub fn query(buf: &mut BytesMut, sql: &[u8]) {
    tagged(buf, f::QUERY, |b| cstr(b, sql));
}

/// Parse.
pub fn parse(buf: &mut BytesMut, name: &[u8], sql: &[u8], param_types: &[u32]) {
    tagged(buf, f::PARSE, |b| {
        cstr(b, name);
        cstr(b, sql);
        b.put_u16(param_types.len() as u16);
        for t in param_types {
            b.put_u32(*t);
        }
    });
}

/// Bind. `params` None is NULL. Format lists follow PostgreSQL's convention
/// (empty: all text; one: applies to all; else one each).
pub fn bind(
    buf: &mut BytesMut,
    portal: &[u8],
    statement: &[u8],
    param_formats: &[i16],
    params: &[Option<&[u8]>],
    result_formats: &[i16],
) {
    tagged(buf, f::BIND, |b| {
        cstr(b, portal);
        cstr(b, statement);
        b.put_u16(param_formats.len() as u16);
        for x in param_formats {
            b.put_i16(*x);
        }
        b.put_u16(params.len() as u16);
        for p in params {
            match p {
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.put_slice(v);
                }
                None => b.put_i32(-1),
            }
        }
        b.put_u16(result_formats.len() as u16);
        for x in result_formats {
            b.put_i16(*x);
        }
    });
}

/// Describe a statement or portal.
pub fn describe(buf: &mut BytesMut, target: Target, name: &[u8]) {
    tagged(buf, f::DESCRIBE, |b| {
        b.put_u8(target.byte());
        cstr(b, name);
    });
}

/// Execute (`max_rows` 0: all rows).
pub fn execute(buf: &mut BytesMut, portal: &[u8], max_rows: u32) {
    tagged(buf, f::EXECUTE, |b| {
        cstr(b, portal);
        b.put_u32(max_rows);
    });
}

/// Sync.
pub fn sync(buf: &mut BytesMut) {
    tagged(buf, f::SYNC, |_| {});
}

/// Flush.
pub fn flush(buf: &mut BytesMut) {
    tagged(buf, f::FLUSH, |_| {});
}

/// Close a statement or portal.
pub fn close(buf: &mut BytesMut, target: Target, name: &[u8]) {
    tagged(buf, f::CLOSE, |b| {
        b.put_u8(target.byte());
        cstr(b, name);
    });
}

/// Terminate.
pub fn terminate(buf: &mut BytesMut) {
    tagged(buf, f::TERMINATE, |_| {});
}

/// CopyData.
pub fn copy_data(buf: &mut BytesMut, data: &[u8]) {
    tagged(buf, f::COPY_DATA, |b| b.put_slice(data));
}

/// CopyDone.
pub fn copy_done(buf: &mut BytesMut) {
    tagged(buf, f::COPY_DONE, |_| {});
}

/// CopyFail.
pub fn copy_fail(buf: &mut BytesMut, message: &[u8]) {
    tagged(buf, f::COPY_FAIL, |b| cstr(b, message));
}

/// ErrorResponse (backend): severity (`FATAL`, `ERROR`...), SQLSTATE code
/// and message, as clients show them.
pub fn error_response(buf: &mut BytesMut, severity: &str, code: &str, message: &str) {
    tagged(buf, super::tags::backend::ERROR_RESPONSE, |b| {
        for (field, value) in [(b'S', severity), (b'V', severity), (b'C', code), (b'M', message)] {
            b.put_u8(field);
            cstr(b, value.as_bytes());
        }
        b.put_u8(0);
    });
}
