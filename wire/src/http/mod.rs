//! HTTP/1.1 (being written; see issue 3).
use crate::types::*;
#[derive(Clone, Debug, PartialEq)]
pub struct HttpMessage;
#[derive(Clone, Debug, PartialEq)]
pub struct HttpExchange;
pub struct HttpDecoder { inner: crate::opaque::OpaqueDecoder }
impl HttpDecoder { pub fn new(limits: Limits) -> Self { HttpDecoder { inner: crate::opaque::OpaqueDecoder::new(limits) } } }
impl Decoder for HttpDecoder {
    fn feed(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>) -> Result<(), Fallback> { self.inner.feed(dir, data, ts, out) }
    fn eof(&mut self, _dir: Direction, _ts: u64, _out: &mut Vec<Event>) {}
}
