//! HTTP responses: the final response (interim `1xx` heads are skipped) is
//! compared on its status, the chosen headers and its body.
//!
//! The message's bytes are the response as sent (head, then the body with
//! its chunked framing, if any), capped; the head is parsed again by
//! `wire::http::parse_response_head` and a chunked body de-chunked by
//! `wire::http::dechunk` as far as the bytes go.
//!
//! Bodies: JSON (a `json` content type, or both sides parse) structurally,
//! see [`super::json`]; anything else byte for byte (`body`: where they
//! first differ). A body cut by the recorder's cap compares by its length
//! (`body.len`), by the bytes both sides kept, and past those by the hash
//! of the whole message, which is meaningful only when both heads are
//! byte-identical (they rarely are: a `Date` header differs), so a change
//! past the cap under differing heads goes unseen.

use format::{Decoded, Message};

use super::json::{self, ABSENT};
use super::{bytes_difference, Sink};

/// One response, parsed from its message.
#[derive(Debug)]
pub struct Response<'a> {
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub head: &'a [u8],
    /// The body as far as the message kept it, de-chunked.
    pub body: Vec<u8>,
    /// The body's full (de-chunked) length.
    pub body_len: u64,
    /// The message was cut by the cap.
    pub cut: bool,
    pub msg: &'a Message,
}

/// The final response among `msgs`: the last response head of status 200
/// or more (else the last response at all).
pub fn final_response(msgs: &[Message]) -> Option<Response<'_>> {
    let is_resp = |m: &&Message| matches!(m.decoded, Some(Decoded::HttpResponse(_)));
    let msg = msgs
        .iter()
        .filter(is_resp)
        .rfind(|m| matches!(&m.decoded, Some(Decoded::HttpResponse(r)) if r.status >= 200))
        .or_else(|| msgs.iter().rfind(is_resp))?;
    let Some(Decoded::HttpResponse(d)) = &msg.decoded else { return None };
    let bytes = &msg.data.bytes.0;
    let (head_len, headers) = match wire::http::parse_response_head(bytes) {
        Ok(head) => (
            head.head_len(),
            head.headers().map(|(n, v)| (String::from_utf8_lossy(n).to_ascii_lowercase(), String::from_utf8_lossy(v).into_owned())).collect(),
        ),
        // A head the recorder decoded but that does not parse here (cut
        // inside the head): the decoded summary still gives the status.
        Err(_) => (bytes.len(), Vec::new()),
    };
    let raw_body = &bytes[head_len..];
    let body = if d.chunked { wire::http::dechunk(raw_body) } else { raw_body.to_vec() };
    Some(Response {
        status: d.status,
        headers,
        content_type: d.content_type.clone(),
        head: &bytes[..head_len],
        body,
        body_len: d.body_len,
        cut: (bytes.len() as u64) < msg.data.len,
        msg,
    })
}

impl Response<'_> {
    /// The values of header `name`, joined by `, `.
    pub fn header(&self, name: &str) -> Option<String> {
        let v: Vec<&str> = self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        (!v.is_empty()).then(|| v.join(", "))
    }

    fn is_json(&self) -> bool {
        self.content_type.as_deref().is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t.contains("/json") || t.contains("+json")
        })
    }
}

/// Differences between the recorded and replayed responses.
pub fn compare(rec: &[Message], rep: &[Message], sink: &mut Sink) {
    let (a, b) = match (final_response(rec), final_response(rep)) {
        (Some(a), Some(b)) => (a, b),
        (None, None) => return,
        (a, b) => {
            let s = |r: &Option<Response>| r.as_ref().map_or("(none)".to_owned(), |r| r.status.to_string());
            sink.push("status".into(), &s(&a), &s(&b));
            return;
        }
    };
    if a.status != b.status {
        sink.push("status".into(), &a.status.to_string(), &b.status.to_string());
    }
    for name in sink.headers().to_vec() {
        let (x, y) = (a.header(&name), b.header(&name));
        if x != y {
            let field = format!("header {name}");
            let (x, y) = (x.unwrap_or_else(|| ABSENT.into()), y.unwrap_or_else(|| ABSENT.into()));
            sink.push(field, &x, &y);
        }
    }
    compare_body(&a, &b, sink);
}

fn compare_body(a: &Response, b: &Response, sink: &mut Sink) {
    if !a.cut && !b.cut && (a.is_json() || b.is_json() || looks_json(&a.body) && looks_json(&b.body)) {
        let pa = serde_json::from_slice::<serde_json::Value>(&a.body);
        let pb = serde_json::from_slice::<serde_json::Value>(&b.body);
        if let (Ok(x), Ok(y)) = (pa, pb) {
            let mut path = String::from("body $");
            json::compare(&mut path, &x, &y, sink);
            return;
        }
    }
    let same_hash = (a.head == b.head && a.msg.data.len == b.msg.data.len).then(|| a.msg.data.hash == b.msg.data.hash);
    bytes_difference("body", &a.body, a.body_len, a.cut, &b.body, b.body_len, b.cut, same_hash, sink);
}

fn looks_json(b: &[u8]) -> bool {
    matches!(b.iter().find(|c| !c.is_ascii_whitespace()), Some(b'{' | b'['))
}
