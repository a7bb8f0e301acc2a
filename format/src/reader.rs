//! [`Reader`]: reads a trace as an iterator of records, in bounded memory.
//!
//! Damage is part of reading, not the end of it: a torn tail (a recording
//! killed mid-write), a block whose checksum fails, bytes that are not a
//! block at all, or a record that does not decode each come out of the
//! iterator as an `Err(`[`Damage`]`)` naming the byte range, and reading
//! goes on with the next intact block. Records of kinds (or holding enum
//! variants) this build does not know, written by a newer minor version,
//! are skipped and counted.

use crate::block::{get_varint, BlockHeader, BLOCK_HEADER_LEN, BLOCK_MAGIC, CODEC_ZSTD};
use crate::codec::{Codec, DecodeError, Lean};
use crate::error::FormatError;
use crate::header::Header;
use crate::record::{Direction, Record};
use std::io::Read;
use std::path::Path;

/// What went wrong in a stretch of a trace file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// The file ends inside a block: the writer was stopped mid-write.
    TornTail,
    /// Bytes that are not a valid block header were skipped up to the next
    /// valid block.
    NotABlock,
    /// A block's payload checksum does not match: the block is skipped.
    BadChecksum,
    /// A block's payload does not decompress (or not to its stated size).
    BadCompression(String),
    /// A record inside an intact block does not decode.
    BadRecord(String),
    /// Reading the input failed; reading stops.
    Io(String),
}

/// A damaged stretch of a trace: where, how long, what, and how many
/// records were lost when that is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// File offset of the first damaged byte.
    pub offset: u64,
    /// Bytes skipped.
    pub len: u64,
    pub kind: DamageKind,
    /// Records lost, when the block header said how many it held.
    pub records_lost: Option<u64>,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bytes {}..{} ({} bytes): ", self.offset, self.offset + self.len, self.len)?;
        match &self.kind {
            DamageKind::TornTail => write!(f, "torn tail (recording stopped mid-write)")?,
            DamageKind::NotABlock => write!(f, "not a block (skipped to the next valid block)")?,
            DamageKind::BadChecksum => write!(f, "block checksum mismatch")?,
            DamageKind::BadCompression(e) => write!(f, "block does not decompress: {e}")?,
            DamageKind::BadRecord(e) => write!(f, "record does not decode: {e}")?,
            DamageKind::Io(e) => write!(f, "read error: {e}")?,
        }
        if let Some(n) = self.records_lost {
            write!(f, "; {n} records lost")?;
        }
        Ok(())
    }
}

/// Counters of what a reader has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub blocks: u64,
    pub records: u64,
    /// Records of kinds this build does not know, skipped.
    pub unknown_records: u64,
    pub damaged: u64,
    /// Bytes read, prefix included.
    pub bytes: u64,
}

pub struct Reader<R: Read> {
    input: R,
    header: Header,
    version: (u16, u16),
    buf: Vec<u8>,
    lo: usize,
    hi: usize,
    /// File offset of `buf[lo]`.
    pos: u64,
    at_eof: bool,
    stopped: bool,
    block: Vec<u8>,
    block_pos: usize,
    block_left: u32,
    block_offset: u64,
    decompressor: zstd::bulk::Decompressor<'static>,
    stats: ReadStats,
    /// Blocks wholly outside [from, to) are skipped unread.
    window: (u64, u64),
    /// Message parts skipped, not decoded.
    lean: Lean,
}

impl Reader<std::fs::File> {
    pub fn open(path: &Path) -> Result<Self, FormatError> {
        let file = std::fs::File::open(path).map_err(|err| FormatError::Io { path: path.to_path_buf(), err })?;
        Reader::new(file)
    }
}

impl<R: Read> Reader<R> {
    /// Reads and checks the prefix; refuses non-traces and newer major
    /// versions.
    pub fn new(mut input: R) -> Result<Self, FormatError> {
        let (header, version, prefix_len) = Header::read_prefix(&mut input)?;
        Ok(Reader {
            input,
            header,
            version,
            buf: vec![0; 1 << 16],
            lo: 0,
            hi: 0,
            pos: prefix_len,
            at_eof: false,
            stopped: false,
            block: Vec::new(),
            block_pos: 0,
            block_left: 0,
            block_offset: 0,
            decompressor: zstd::bulk::Decompressor::new().map_err(FormatError::Stream)?,
            stats: ReadStats { bytes: prefix_len, ..ReadStats::default() },
            window: (0, u64::MAX),
            lean: Lean::default(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file's format version, (major, minor).
    pub fn version(&self) -> (u16, u16) {
        self.version
    }

    pub fn stats(&self) -> ReadStats {
        self.stats
    }

    /// Skips, without decompressing, every block whose records all lie
    /// outside `[from, to)` (ns since the anchor). Records of the blocks
    /// read still need filtering: a block holds a range of times.
    pub fn skip_blocks_outside(&mut self, from: Option<u64>, to: Option<u64>) {
        self.window = (from.unwrap_or(0), to.unwrap_or(u64::MAX));
    }

    /// Messages in direction `dir` come without their bytes and decoded
    /// form (`data` empty, `decoded` `None`), which are skipped rather
    /// than decoded: for readers that use only such messages' time and
    /// connection, as `olanalyze` does with server messages
    /// (half the records of a database trace, most of the decoding).
    pub fn lean_messages(&mut self, dir: Direction) {
        self.lean.messages = Some(dir);
    }

    /// Messages in direction `dir` come without their bytes (`data`
    /// empty), which are skipped; their decoded form is kept: for readers
    /// that use the decoded form alone, as `olanalyze` does with client
    /// messages (a PostgreSQL Bind's parameters) unless it reads session
    /// keys from requests.
    pub fn lean_message_bytes(&mut self, dir: Direction) {
        self.lean.bytes = Some(dir);
    }

    /// Ensures `n` bytes are buffered, unless the input ends first.
    fn fill(&mut self, n: usize) -> Result<bool, std::io::Error> {
        while self.hi - self.lo < n && !self.at_eof {
            if self.buf.len() - self.lo < n {
                // Move what is left to the front, and grow if one block
                // needs more room than the buffer has.
                self.buf.copy_within(self.lo..self.hi, 0);
                self.hi -= self.lo;
                self.lo = 0;
                if self.buf.len() < n {
                    self.buf.resize(n.next_power_of_two(), 0);
                }
            }
            match self.input.read(&mut self.buf[self.hi..]) {
                Ok(0) => self.at_eof = true,
                Ok(k) => {
                    self.hi += k;
                    self.stats.bytes += k as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.hi - self.lo >= n)
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.hi - self.lo);
        self.lo += n;
        self.pos += n as u64;
        if self.lo == self.hi {
            self.lo = 0;
            self.hi = 0;
        }
    }

    fn damage(&mut self, offset: u64, len: u64, kind: DamageKind, records_lost: Option<u64>) -> Damage {
        self.stats.damaged += 1;
        Damage { offset, len, kind, records_lost }
    }

    /// Skips forward from a bad block header to the next valid one (or the
    /// end of the input). Returns the number of bytes skipped.
    fn resync(&mut self) -> Result<u64, std::io::Error> {
        let start = self.pos;
        self.consume(1);
        loop {
            let window = &self.buf[self.lo..self.hi];
            match window.windows(BLOCK_MAGIC.len()).position(|w| w == BLOCK_MAGIC) {
                Some(i) => {
                    self.consume(i);
                    if !self.fill(BLOCK_HEADER_LEN)? {
                        // Too short to be a block: let the caller report the
                        // rest as a torn tail.
                        return Ok(self.pos - start);
                    }
                    if BlockHeader::decode(&self.buf[self.lo..self.hi]).is_some() {
                        return Ok(self.pos - start);
                    }
                    self.consume(1);
                }
                None => {
                    if self.at_eof {
                        return Ok(self.pos - start);
                    }
                    // Keep a possible magic prefix at the window's end.
                    let keep = (BLOCK_MAGIC.len() - 1).min(self.hi - self.lo);
                    self.consume(self.hi - self.lo - keep);
                    let want = self.hi - self.lo + 1;
                    self.fill(want)?;
                }
            }
        }
    }

    /// Loads the next block. `Ok(None)` at a clean end of input.
    fn next_block(&mut self) -> Result<Option<Result<(), Damage>>, std::io::Error> {
        if !self.fill(BLOCK_HEADER_LEN)? {
            let left = (self.hi - self.lo) as u64;
            if left == 0 {
                return Ok(None);
            }
            let offset = self.pos;
            self.consume(left as usize);
            return Ok(Some(Err(self.damage(offset, left, DamageKind::TornTail, None))));
        }
        let Some(h) = BlockHeader::decode(&self.buf[self.lo..self.hi]) else {
            let offset = self.pos;
            let skipped = self.resync()?;
            return Ok(Some(Err(self.damage(offset, skipped, DamageKind::NotABlock, None))));
        };
        let offset = self.pos;
        let total = BLOCK_HEADER_LEN + h.stored_len as usize;
        if !self.fill(total)? {
            let left = (self.hi - self.lo) as u64;
            self.consume(left as usize);
            return Ok(Some(Err(self.damage(offset, left, DamageKind::TornTail, Some(h.count as u64)))));
        }
        if h.last_ts < self.window.0 || h.first_ts >= self.window.1 {
            self.consume(total);
            return Ok(Some(Ok(())));
        }
        let stored = &self.buf[self.lo + BLOCK_HEADER_LEN..self.lo + total];
        if crc32fast::hash(stored) != h.payload_crc {
            self.consume(total);
            return Ok(Some(Err(self.damage(offset, total as u64, DamageKind::BadChecksum, Some(h.count as u64)))));
        }
        self.block.clear();
        if h.codec == CODEC_ZSTD {
            self.block.reserve(h.raw_len as usize);
            let result = self.decompressor.decompress_to_buffer(stored, &mut self.block);
            let problem = match result {
                Ok(n) if n == h.raw_len as usize => None,
                Ok(n) => Some(format!("{n} bytes instead of {}", h.raw_len)),
                Err(e) => Some(e.to_string()),
            };
            if let Some(p) = problem {
                self.consume(total);
                let kind = DamageKind::BadCompression(p);
                return Ok(Some(Err(self.damage(offset, total as u64, kind, Some(h.count as u64)))));
            }
        } else {
            self.block.extend_from_slice(stored);
        }
        self.consume(total);
        self.stats.blocks += 1;
        self.block_pos = 0;
        self.block_left = h.count;
        self.block_offset = offset;
        Ok(Some(Ok(())))
    }

    /// The next record of the open block, decoded over `record`.
    fn next_record(&mut self, record: &mut Record) -> Option<Result<(), Damage>> {
        while self.block_left > 0 {
            self.block_left -= 1;
            let rest = &self.block[self.block_pos..];
            let Some((len, used)) = get_varint(rest).filter(|(len, used)| (*len as usize) <= rest.len() - used)
            else {
                // The block passed its checksum, so this is a writer bug or
                // a deliberate forgery; drop the rest of the block.
                let lost = self.block_left as u64 + 1;
                self.block_left = 0;
                let kind = DamageKind::BadRecord("record length runs past the end of its block".into());
                let offset = self.block_offset;
                return Some(Err(self.damage(offset, 0, kind, Some(lost))));
            };
            let bytes = &rest[used..used + len as usize];
            self.block_pos += used + len as usize;
            match crate::codec::decode_record_lean(bytes, record, self.lean) {
                Ok(()) => {
                    self.stats.records += 1;
                    return Some(Ok(()));
                }
                Err(DecodeError::UnknownVariant { .. }) => {
                    // A kind, decoded form or enum value from a newer minor
                    // version.
                    self.stats.unknown_records += 1;
                    continue;
                }
                Err(e) => {
                    let offset = self.block_offset;
                    return Some(Err(self.damage(offset, 0, DamageKind::BadRecord(e.to_string()), Some(1))));
                }
            }
        }
        None
    }
}

impl<R: Read> Reader<R> {
    /// The next record (as [`Iterator::next`]), decoded over `record`, whose
    /// allocations are reused: no record is built and moved per call. On
    /// damage or at the end `record` holds unspecified contents.
    pub fn next_into(&mut self, record: &mut Record) -> Option<Result<(), Damage>> {
        loop {
            if let Some(item) = self.next_record(record) {
                return Some(item);
            }
            if self.stopped {
                return None;
            }
            match self.next_block() {
                Ok(None) => return None,
                Ok(Some(Ok(()))) => continue,
                Ok(Some(Err(damage))) => return Some(Err(damage)),
                Err(e) => {
                    self.stopped = true;
                    let offset = self.pos;
                    return Some(Err(self.damage(offset, 0, DamageKind::Io(e.to_string()), None)));
                }
            }
        }
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Record, Damage>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut record = Record::empty();
        Some(self.next_into(&mut record)?.map(|()| record))
    }
}
