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

/// A reader whose first bytes (the magic number) were read and put back.
pub type Rewound<R> = std::io::Chain<std::io::Cursor<Vec<u8>>, R>;

enum Inner<R: Read> {
    /// `nanos`: timestamps' fractions are nanoseconds (else microseconds).
    Pcap { reader: PcapReader<R>, link: u32, nanos: bool },
    PcapNg { reader: PcapNgReader<R> },
}

pub struct CaptureFile<R: Read> {
    inner: Inner<R>,
    /// The current frame's bytes, kept across calls: the frame borrows them.
    owned: Vec<u8>,
    /// The current frame's time, link type and length on the wire.
    current: (u64, u32, u32),
    /// The current frame was read by `peek_ts` and not yet returned.
    peeked: bool,
    pub snaplen: Option<u32>,
}

const PCAP_MAGICS: [[u8; 4]; 4] = [[0xd4, 0xc3, 0xb2, 0xa1], [0xa1, 0xb2, 0xc3, 0xd4], [0x4d, 0x3c, 0xb2, 0xa1], [0xa1, 0xb2, 0x3c, 0x4d]];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

impl<R: Read> CaptureFile<R> {
    /// Opens the capture `input` holds, pcap or pcapng by its magic number.
    pub fn open(mut input: R) -> Result<CaptureFile<Rewound<R>>, CaptureFileError> {
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
            Ok(CaptureFile { inner: Inner::Pcap { link: u32::from(h.datalink), nanos: h.ts_resolution == pcap_file::TsResolution::NanoSecond, reader }, owned: Vec::new(), current: (0, 0, 0), peeked: false, snaplen: Some(h.snaplen) })
        } else if magic == PCAPNG_MAGIC {
            let reader = PcapNgReader::new(chained).map_err(header_error)?;
            Ok(CaptureFile { inner: Inner::PcapNg { reader }, owned: Vec::new(), current: (0, 0, 0), peeked: false, snaplen: None })
        } else {
            Err(CaptureFileError::NotACapture)
        }
    }
}

impl<R: Read> CaptureFile<R> {
    /// The time of the first frame still to read (it stays to read), or
    /// `None` at the end.
    pub fn peek_ts(&mut self) -> Option<Result<u64, CaptureFileError>> {
        if !self.peeked {
            if let Err(e) = self.read_next()? {
                return Some(Err(e));
            }
            self.peeked = true;
        }
        Some(Ok(self.current.0))
    }

    /// The next frame; `None` at the end. After an error the rest of the
    /// file cannot be read (a pcap has no markers to resynchronise on).
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, CaptureFileError>> {
        if !std::mem::take(&mut self.peeked) {
            if let Err(e) = self.read_next()? {
                return Some(Err(e));
            }
        }
        let (ts_unix_ns, link, orig_len) = self.current;
        Some(Ok(Frame { ts_unix_ns, link, data: &self.owned, orig_len }))
    }

    /// Reads the next frame into `owned` and `current`.
    fn read_next(&mut self) -> Option<Result<(), CaptureFileError>> {
        let record_error = |e: PcapError| match e {
            PcapError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => CaptureFileError::Truncated,
            PcapError::IoError(e) => CaptureFileError::Io(e),
            other => CaptureFileError::Damaged(other.to_string()),
        };
        match &mut self.inner {
            // Raw records: pcap-file's checked ones refuse a packet longer
            // on the wire than the snap length (`orig_len > snap_len`),
            // which is exactly a packet the snap length cut.
            Inner::Pcap { reader, link, nanos } => match reader.next_raw_packet()? {
                Ok(p) => {
                    self.owned.clear();
                    self.owned.extend_from_slice(&p.data);
                    let frac = if *nanos { u64::from(p.ts_frac) } else { u64::from(p.ts_frac) * 1000 };
                    self.current = (u64::from(p.ts_sec) * 1_000_000_000 + frac, *link, p.orig_len.max(p.incl_len));
                    Some(Ok(()))
                }
                Err(e) => Some(Err(record_error(e))),
            },
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
                // pcap-file reads the timestamp's units as nanoseconds;
                // they are the interface's (if_tsresol; microseconds when
                // it says nothing, as the pcapng spec has it).
                let units = ts.as_nanos() as u64;
                let resolution = desc.options.iter().find_map(|o| match o {
                    pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                    _ => None,
                });
                self.current = (to_nanos(units, resolution.unwrap_or(6)), u32::from(desc.linktype), orig_len);
                return Some(Ok(()));
            },
        }
    }
}

/// Nanoseconds from `units` of a pcapng interface's `if_tsresol`: 10^-r
/// seconds, or 2^-r with the high bit set.
fn to_nanos(units: u64, resolution: u8) -> u64 {
    if resolution & 0x80 != 0 {
        let shift = u32::from(resolution & 0x7f).min(63);
        ((u128::from(units) * 1_000_000_000) >> shift) as u64
    } else {
        let exp = u32::from(resolution).min(19);
        if exp <= 9 {
            units.saturating_mul(10u64.pow(9 - exp))
        } else {
            units / 10u64.pow(exp - 9)
        }
    }
}
