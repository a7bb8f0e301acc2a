//! The block frame. After the file prefix a trace is a run of blocks:
//!
//! ```text
//! offset  size  field
//! 0       4     magic "OLBK"
//! 4       1     codec: 0 stored, 1 zstd
//! 5       3     reserved, zero
//! 8       4     record count
//! 12      4     payload length before compression
//! 16      4     payload length as stored
//! 20      8     smallest record ts in the block
//! 28      8     largest record ts in the block
//! 36      4     CRC32 of the stored payload
//! 40      4     CRC32 of bytes 0..40
//! 44      ...   stored payload
//! ```
//!
//! All integers little endian. The payload, once decompressed, is a run of
//! records, each a LEB128 length followed by that many bytes of
//! MessagePack. The header CRC lets a reader that lost its place find the
//! next block by scanning for the magic and checking the CRC.

pub const BLOCK_MAGIC: &[u8; 4] = b"OLBK";
pub const BLOCK_HEADER_LEN: usize = 44;
/// Blocks larger than this (either length) are treated as corrupt, which
/// bounds a reader's memory whatever a damaged file claims.
pub const MAX_BLOCK: u32 = 64 << 20;

pub const CODEC_STORED: u8 = 0;
pub const CODEC_ZSTD: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub codec: u8,
    pub count: u32,
    pub raw_len: u32,
    pub stored_len: u32,
    pub first_ts: u64,
    pub last_ts: u64,
    pub payload_crc: u32,
}

impl BlockHeader {
    pub fn encode(&self) -> [u8; BLOCK_HEADER_LEN] {
        let mut b = [0u8; BLOCK_HEADER_LEN];
        b[0..4].copy_from_slice(BLOCK_MAGIC);
        b[4] = self.codec;
        b[8..12].copy_from_slice(&self.count.to_le_bytes());
        b[12..16].copy_from_slice(&self.raw_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.stored_len.to_le_bytes());
        b[20..28].copy_from_slice(&self.first_ts.to_le_bytes());
        b[28..36].copy_from_slice(&self.last_ts.to_le_bytes());
        b[36..40].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[0..40]);
        b[40..44].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses a header; `None` unless the magic, the header CRC, the codec
    /// and the lengths are all plausible.
    pub fn decode(b: &[u8]) -> Option<BlockHeader> {
        let b: &[u8; BLOCK_HEADER_LEN] = b.get(..BLOCK_HEADER_LEN)?.try_into().ok()?;
        if &b[0..4] != BLOCK_MAGIC {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if crc32fast::hash(&b[0..40]) != u32_at(40) {
            return None;
        }
        let h = BlockHeader {
            codec: b[4],
            count: u32_at(8),
            raw_len: u32_at(12),
            stored_len: u32_at(16),
            first_ts: u64_at(20),
            last_ts: u64_at(28),
            payload_crc: u32_at(36),
        };
        let plausible = (h.codec == CODEC_STORED || h.codec == CODEC_ZSTD)
            && h.raw_len <= MAX_BLOCK
            && h.stored_len <= MAX_BLOCK
            && (h.codec != CODEC_STORED || h.raw_len == h.stored_len);
        plausible.then_some(h)
    }
}

/// Appends `v` as LEB128.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 value from the start of `b`: (value, bytes used).
pub fn get_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}
