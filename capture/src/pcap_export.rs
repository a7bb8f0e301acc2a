//! [`PcapExport`]: byte streams out as a pcap of synthetic TCP/IP packets
//! (etherparse builds them, checksums included), so that a trace opens in
//! Wireshark or tshark.
//!
//! Each connection gets a handshake (SYN, SYN-ACK, ACK) at its open, its
//! bytes as segments of at most [`MAX_SEGMENT`] bytes each acknowledged by
//! the peer's next segment's ACK number, and FIN/ACK at its close. Bytes a
//! trace did not keep (bodies past its cap, gaps) advance the sequence
//! numbers without a packet, so tshark reports them as "previous segment
//! not captured", which is what they are. The link type is raw IP
//! (LINKTYPE_RAW: no made-up MAC addresses).

use crate::frame::linktype;
use etherparse::PacketBuilder;
use format::Direction;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

/// Payload bytes per synthetic segment: what fits one IPv6 packet of 64 KiB
/// (as loopback's large MTU allows), so big messages stay few packets.
pub const MAX_SEGMENT: usize = 65_000;

struct Conn {
    client: SocketAddr,
    server: SocketAddr,
    /// Next sequence number per direction (index by `Direction::index`).
    seq: [u32; 2],
}

pub struct PcapExport<W: Write> {
    out: PcapWriter<W>,
    conns: HashMap<u64, Conn>,
    packets: u64,
    buf: Vec<u8>,
}

impl<W: Write> PcapExport<W> {
    pub fn new(out: W) -> Result<PcapExport<W>, pcap_file::PcapError> {
        let header = PcapHeader { datalink: DataLink::from(linktype::RAW), snaplen: 262_144, ts_resolution: pcap_file::TsResolution::NanoSecond, ..PcapHeader::default() };
        Ok(PcapExport { out: PcapWriter::with_header(out, header)?, conns: HashMap::new(), packets: 0, buf: Vec::new() })
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// A connection opened at `ts_unix_ns`: its handshake.
    pub fn open(&mut self, conn: u64, client: SocketAddr, server: SocketAddr, ts_unix_ns: u64) -> Result<(), pcap_file::PcapError> {
        // Initial sequence numbers from the connection id: distinct, stable.
        let isn = [(conn as u32).wrapping_mul(0x9E37_79B9), (conn as u32).wrapping_mul(0x85EB_CA6B) ^ 0x5555_5555];
        self.conns.insert(conn, Conn { client, server, seq: isn });
        self.segment(conn, Direction::ToServer, Kind::Syn, &[], ts_unix_ns)?;
        self.segment(conn, Direction::ToClient, Kind::SynAck, &[], ts_unix_ns)?;
        self.segment(conn, Direction::ToServer, Kind::Ack, &[], ts_unix_ns)
    }

    /// `data` crossed in `dir` at `ts_unix_ns`; `unkept` bytes followed it
    /// that the trace did not keep (they advance the sequence numbers only).
    pub fn data(&mut self, conn: u64, dir: Direction, data: &[u8], unkept: u64, ts_unix_ns: u64) -> Result<(), pcap_file::PcapError> {
        for chunk in data.chunks(MAX_SEGMENT) {
            self.segment(conn, dir, Kind::Data, chunk, ts_unix_ns)?;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.seq[dir.index()] = c.seq[dir.index()].wrapping_add(unkept as u32);
        }
        Ok(())
    }

    /// The connection closed: FIN both ways, and the last ACK.
    pub fn close(&mut self, conn: u64, ts_unix_ns: u64) -> Result<(), pcap_file::PcapError> {
        if !self.conns.contains_key(&conn) {
            return Ok(());
        }
        self.segment(conn, Direction::ToServer, Kind::Fin, &[], ts_unix_ns)?;
        self.segment(conn, Direction::ToClient, Kind::Fin, &[], ts_unix_ns)?;
        self.segment(conn, Direction::ToServer, Kind::Ack, &[], ts_unix_ns)?;
        self.conns.remove(&conn);
        Ok(())
    }

    /// Closes every connection still open, at `ts_unix_ns`, and hands back
    /// the output.
    pub fn finish(mut self, ts_unix_ns: u64) -> Result<W, pcap_file::PcapError> {
        let mut open: Vec<u64> = self.conns.keys().copied().collect();
        open.sort_unstable();
        for conn in open {
            self.close(conn, ts_unix_ns)?;
        }
        Ok(self.out.into_writer())
    }

    fn segment(&mut self, conn: u64, dir: Direction, kind: Kind, payload: &[u8], ts_unix_ns: u64) -> Result<(), pcap_file::PcapError> {
        let Some(c) = self.conns.get_mut(&conn) else { return Ok(()) };
        let (src, dst) = match dir {
            Direction::ToServer => (c.client, c.server),
            Direction::ToClient => (c.server, c.client),
        };
        let seq = c.seq[dir.index()];
        let ack = c.seq[dir.reverse().index()];
        let builder = match (src, dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => PacketBuilder::ipv4(s.ip().octets(), d.ip().octets(), 64),
            (s, d) => PacketBuilder::ipv6(v6(s), v6(d), 64),
        };
        let mut tcp = builder.tcp(src.port(), dst.port(), seq, 65_535);
        match kind {
            Kind::Syn => tcp = tcp.syn(),
            Kind::SynAck => tcp = tcp.syn().ack(ack),
            Kind::Ack => tcp = tcp.ack(ack),
            Kind::Data => tcp = tcp.ack(ack).psh(),
            Kind::Fin => tcp = tcp.fin().ack(ack),
        }
        self.buf.clear();
        tcp.write(&mut self.buf, payload).map_err(|e| pcap_file::PcapError::IoError(std::io::Error::other(e.to_string())))?;
        let used = payload.len() as u32 + u32::from(matches!(kind, Kind::Syn | Kind::SynAck | Kind::Fin));
        c.seq[dir.index()] = seq.wrapping_add(used);
        let ts = Duration::from_nanos(ts_unix_ns);
        self.out.write_packet(&PcapPacket::new(ts, self.buf.len() as u32, &self.buf))?;
        self.packets += 1;
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Syn,
    SynAck,
    Ack,
    Data,
    Fin,
}

fn v6(a: SocketAddr) -> [u8; 16] {
    match a {
        SocketAddr::V4(a) => a.ip().to_ipv6_mapped().octets(),
        SocketAddr::V6(a) => a.ip().octets(),
    }
}
