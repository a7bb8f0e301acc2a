//! [`CaptureFile`]: the frames of a `.pcap` or `.pcapng` file, read in
//! pure Rust with the pcap-file crate (importing needs no libpcap), told
//! apart by their first bytes, not their names.

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::PcapError;
use std::io::Read;

/// One captured frame.
pub struct Frame<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts_unix_ns: u64,
    /// LINKTYPE_* of the interface it was captured on.
    pub link: u32,
    pub data: &'a [u8],
    /// Its length on the wire (more than `data` when the snap length cut it).
    pub orig_len: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureFileError {
    #[error("not a capture file: it starts with neither the pcap nor the pcapng magic number (write one with `tcpdump -w FILE` or Wireshark)")]
    NotACapture,
    #[error("the capture's header is damaged: {0}")]
    BadHeader(String),
    #[error("the capture ends in the middle of a packet (cut short: the capture was still being written, or the copy is incomplete)")]
    Truncated,
    #[error("damaged packet record: {0}")]
    Damaged(String),
    #[error("reading the capture: {0}")]
    Io(#[from] std::io::Error),
}

enum Inner<R: Read> {
    Pcap { reader: PcapReader<R>, link: u32 },
    PcapNg { reader: PcapNgReader<R> },
}

pub struct CaptureFile<R: Read> {
    inner: Inner<R>,
    /// Kept across calls: the frame borrows it.
    owned: Vec<u8>,
    pub snaplen: Option<u32>,
}

const PCAP_MAGICS: [[u8; 4]; 4] = [[0xd4, 0xc3, 0xb2, 0xa1], [0xa1, 0xb2, 0xc3, 0xd4], [0x4d, 0x3c, 0xb2, 0xa1], [0xa1, 0xb2, 0x3c, 0x4d]];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

impl<R: Read> CaptureFile<R> {
    /// Opens a capture whose first bytes are `head` (already read from
    /// `rest`, which continues it).
    pub fn open(mut input: R) -> Result<CaptureFile<std::io::Chain<std::io::Cursor<Vec<u8>>, R>>, CaptureFileError> {
        let mut head = vec![0; 4];
        let mut got = 0;
        while got < 4 {
            match input.read(&mut head[got..])? {
                0 => break,
                n => got += n,
            }
        }
        head.truncate(got);
        let magic: [u8; 4] = head.as_slice().try_into().map_err(|_| CaptureFileError::NotACapture)?;
        let chained = std::io::Cursor::new(head).chain(input);
        let header_error = |e: PcapError| match e {
            PcapError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => CaptureFileError::Truncated,
            PcapError::IoError(e) => CaptureFileError::Io(e),
            other => CaptureFileError::BadHeader(other.to_string()),
        };
        if PCAP_MAGICS.contains(&magic) {
            let reader = PcapReader::new(chained).map_err(header_error)?;
            let h = reader.header();
            Ok(CaptureFile { inner: Inner::Pcap { link: u32::from(h.datalink), reader }, owned: Vec::new(), snaplen: Some(h.snaplen) })
        } else if magic == PCAPNG_MAGIC {
            let reader = PcapNgReader::new(chained).map_err(header_error)?;
            Ok(CaptureFile { inner: Inner::PcapNg { reader }, owned: Vec::new(), snaplen: None })
        } else {
            Err(CaptureFileError::NotACapture)
        }
    }
}

impl<R: Read> CaptureFile<R> {
    /// The next frame; `None` at the end. After an error the rest of the
    /// file cannot be read (a pcap has no markers to resynchronise on).
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, CaptureFileError>> {
        let record_error = |e: PcapError| match e {
            PcapError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => CaptureFileError::Truncated,
            PcapError::IoError(e) => CaptureFileError::Io(e),
            other => CaptureFileError::Damaged(other.to_string()),
        };
        match &mut self.inner {
            Inner::Pcap { reader, link } => {
                let link = *link;
                match reader.next_packet()? {
                    Ok(p) => {
                        self.owned.clear();
                        self.owned.extend_from_slice(&p.data);
                        let ts_unix_ns = p.timestamp.as_nanos() as u64;
                        let orig_len = p.orig_len;
                        Some(Ok(Frame { ts_unix_ns, link, data: &self.owned, orig_len }))
                    }
                    Err(e) => Some(Err(record_error(e))),
                }
            }
            Inner::PcapNg { reader } => loop {
                let block = match reader.next_block()? {
                    Ok(b) => b,
                    Err(e) => return Some(Err(record_error(e))),
                };
                let (iface, ts, orig_len, data) = match block {
                    Block::EnhancedPacket(p) => (p.interface_id, p.timestamp, p.original_len, p.data),
                    Block::SimplePacket(p) => (0, std::time::Duration::ZERO, p.original_len, p.data),
                    Block::Packet(p) => (u32::from(p.interface_id), std::time::Duration::from_micros(p.timestamp), p.original_len, p.data),
                    _ => continue,
                };
                self.owned.clear();
                self.owned.extend_from_slice(&data);
                drop(data);
                let Some(desc) = reader.interfaces().get(iface as usize) else {
                    return Some(Err(CaptureFileError::Damaged(format!("a packet names interface {iface}, which no interface block describes"))));
                };
                let link = u32::from(desc.linktype);
                return Some(Ok(Frame { ts_unix_ns: ts.as_nanos() as u64, link, data: &self.owned, orig_len }));
            },
        }
    }
}
