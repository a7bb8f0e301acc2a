//! Redis (being written; see issue 3).
use crate::types::*;
#[derive(Clone, Debug, PartialEq)]
pub struct RedisMessage;
#[derive(Clone, Debug, PartialEq)]
pub struct RedisExchange;
pub struct RedisDecoder { inner: crate::opaque::OpaqueDecoder }
impl RedisDecoder { pub fn new(limits: Limits) -> Self { RedisDecoder { inner: crate::opaque::OpaqueDecoder::new(limits) } } }
impl Decoder for RedisDecoder {
    fn feed(&mut self, dir: Direction, data: &[u8], ts: u64, out: &mut Vec<Event>) -> Result<(), Fallback> { self.inner.feed(dir, data, ts, out) }
    fn eof(&mut self, _dir: Direction, _ts: u64, _out: &mut Vec<Event>) {}
}
