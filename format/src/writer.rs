//! [`Writer`]: appends records to a trace as checksummed, compressed blocks.
//!
//! Records collect in an in-memory block until it reaches
//! [`WriterOptions::block_bytes`] or the owner calls [`Writer::flush`];
//! then the block is compressed and handed to the file in one `write`. A
//! process killed after that write loses nothing of that block: the bytes
//! are in the kernel. The recorder calls `flush` at least every 100 ms
//! ([`Writer::flush_due`] tells when), so a crash loses at most that much.
//! Memory is bounded by one block plus its compressed copy.

use crate::block::{put_varint, BlockHeader, CODEC_STORED, CODEC_ZSTD, MAX_BLOCK};
use crate::error::FormatError;
use crate::header::Header;
use crate::record::Record;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct WriterOptions {
    /// Seal a block once its uncompressed records reach this many bytes.
    pub block_bytes: usize,
    /// zstd level (1 fastest .. 19 smallest; 0 stores blocks uncompressed).
    pub zstd_level: i32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        // Measured (docs/benchmarks.md): level 3 on 256 KiB blocks keeps
        // well over 1M records/s on one core and is within a few percent
        // of level 9's size on recorded traffic.
        WriterOptions { block_bytes: 256 << 10, zstd_level: 3 }
    }
}

/// Counters of what a writer has written so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub records: u64,
    pub blocks: u64,
    /// Bytes written to the file, prefix included.
    pub bytes: u64,
    /// Uncompressed record bytes.
    pub raw_bytes: u64,
}

pub struct Writer<W: Write> {
    out: W,
    opts: WriterOptions,
    block: Vec<u8>,
    scratch: Vec<u8>,
    compressed: Vec<u8>,
    count: u32,
    first_ts: u64,
    last_ts: u64,
    oldest: Option<Instant>,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    stats: WriterStats,
}

impl Writer<std::fs::File> {
    /// Creates (or truncates) `path`, readable and writable by its owner
    /// only, and writes the file prefix.
    pub fn create(path: &Path, header: &Header, opts: WriterOptions) -> Result<Self, FormatError> {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let file = o.open(path).map_err(|err| FormatError::Io { path: path.to_path_buf(), err })?;
        Writer::new(file, header, opts)
    }
}

impl<W: Write> Writer<W> {
    /// Writes the file prefix to `out` and returns a writer for records.
    pub fn new(mut out: W, header: &Header, opts: WriterOptions) -> Result<Self, FormatError> {
        let prefix = header.write_prefix(&mut out)?;
        out.flush()?;
        Writer::appending(out, prefix as u64, opts)
    }

    /// A writer that adds blocks to `out`, which already holds a trace's
    /// prefix and blocks, `len` bytes in all, and is positioned at its end
    /// (recovering a recording: `oltrace recover`).
    pub fn appending(out: W, len: u64, opts: WriterOptions) -> Result<Self, FormatError> {
        let compressor = if opts.zstd_level > 0 {
            Some(zstd::bulk::Compressor::new(opts.zstd_level).map_err(FormatError::Stream)?)
        } else {
            None
        };
        let block_bytes = opts.block_bytes.clamp(1024, MAX_BLOCK as usize / 2);
        Ok(Writer {
            out,
            opts: WriterOptions { block_bytes, ..opts },
            block: Vec::with_capacity(block_bytes + 4096),
            scratch: Vec::with_capacity(4096),
            compressed: Vec::new(),
            count: 0,
            first_ts: u64::MAX,
            last_ts: 0,
            oldest: None,
            compressor,
            stats: WriterStats { bytes: len, ..WriterStats::default() },
        })
    }

    /// Adds one record; seals and writes the block when it is full.
    ///
    /// The record is encoded straight into the open block after a one-byte
    /// length: most records are shorter than 128 bytes, whose varint length
    /// is that byte. A longer one has its length widened in place, and one
    /// that overfills the block moves to the next block.
    pub fn write(&mut self, record: &Record) -> Result<(), FormatError> {
        let at = self.block.len();
        self.block.push(0);
        crate::codec::encode_record(record, &mut self.block);
        let len = self.block.len() - at - 1;
        if len > MAX_BLOCK as usize / 2 {
            self.block.truncate(at);
            return Err(FormatError::Encode(format!(
                "record of {len} bytes exceeds the {} byte limit",
                MAX_BLOCK / 2
            )));
        }
        if len < 0x80 {
            if let Some(b) = self.block.get_mut(at) {
                *b = len as u8;
            }
        } else {
            self.scratch.clear();
            put_varint(&mut self.scratch, len as u64);
            self.block.splice(at..at + 1, self.scratch.iter().copied());
        }
        if at > 0 && at + len + 10 > self.opts.block_bytes {
            // Full: the block is sealed without this record, which opens
            // the next one.
            self.scratch.clear();
            self.scratch.extend_from_slice(self.block.get(at..).unwrap_or_default());
            self.block.truncate(at);
            self.seal()?;
            self.block.extend_from_slice(&self.scratch);
        }
        self.count += 1;
        self.first_ts = self.first_ts.min(record.ts);
        self.last_ts = self.last_ts.max(record.ts);
        self.oldest.get_or_insert_with(Instant::now);
        self.stats.records += 1;
        Ok(())
    }

    /// True when records have waited in the open block for `interval` or
    /// longer: time to [`Writer::flush`].
    pub fn flush_due(&self, interval: Duration) -> bool {
        self.oldest.is_some_and(|t| t.elapsed() >= interval)
    }

    /// Seals the open block (if any) and flushes the output.
    pub fn flush(&mut self) -> Result<(), FormatError> {
        self.seal()?;
        self.out.flush()?;
        Ok(())
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> Result<W, FormatError> {
        self.flush()?;
        Ok(self.out)
    }

    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// Records in the open, not yet written, block.
    pub fn pending(&self) -> u32 {
        self.count
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    fn seal(&mut self) -> Result<(), FormatError> {
        if self.count == 0 {
            return Ok(());
        }
        let (codec, stored): (u8, &[u8]) = match &mut self.compressor {
            Some(c) => {
                self.compressed.clear();
                self.compressed.reserve(zstd::zstd_safe::compress_bound(self.block.len()));
                c.compress_to_buffer(&self.block, &mut self.compressed).map_err(FormatError::Stream)?;
                if self.compressed.len() < self.block.len() {
                    (CODEC_ZSTD, &self.compressed)
                } else {
                    (CODEC_STORED, &self.block)
                }
            }
            None => (CODEC_STORED, &self.block),
        };
        let header = BlockHeader {
            codec,
            count: self.count,
            raw_len: self.block.len() as u32,
            stored_len: stored.len() as u32,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            payload_crc: crc32fast::hash(stored),
        };
        // One write of header and payload together, so that a crash leaves
        // either the whole block or a torn tail, never a stray header.
        let mut frame = Vec::with_capacity(stored.len() + header.encode().len());
        frame.extend_from_slice(&header.encode());
        frame.extend_from_slice(stored);
        self.out.write_all(&frame)?;
        self.stats.blocks += 1;
        self.stats.bytes += frame.len() as u64;
        self.stats.raw_bytes += self.block.len() as u64;
        self.block.clear();
        self.count = 0;
        self.first_ts = u64::MAX;
        self.last_ts = 0;
        self.oldest = None;
        Ok(())
    }
}
