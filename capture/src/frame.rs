//! [`tcp_segment`]: one captured frame to a TCP [`Segment`], by the
//! capture's link type, with etherparse's lax slicing (a frame cut by the
//! snap length still yields the bytes it holds, and says how many are
//! missing).
//!
//! Link types handled: Ethernet (with VLAN tags, which etherparse walks),
//! Linux cooked capture v1 (SLL, etherparse) and v2 (SLL2, whose 20-byte
//! header etherparse does not know: read here, then the payload goes to
//! etherparse by its EtherType), BSD loopback (NULL/LOOP: a 4-byte address
//! family) and raw IP. IPv4 and IPv6; fragments are not reassembled (TCP
//! on loopback and LANs is not fragmented in practice), they are skipped
//! and counted.

use crate::reassembly::{Flags, Segment};
use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use std::net::{IpAddr, SocketAddr};

/// Link-layer header types (LINKTYPE_* values in pcap files).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// Why a frame yielded no TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// Not IP, or IP but not TCP (ARP, UDP, ICMP...): not for us.
    NotTcp,
    /// An IP fragment.
    Fragment,
    /// Headers cut short or malformed.
    Malformed,
    /// A link type this reader does not know.
    LinkType,
}

impl Skip {
    pub fn describe(self) -> &'static str {
        match self {
            Skip::NotTcp => "not TCP",
            Skip::Fragment => "IP fragments (not reassembled)",
            Skip::Malformed => "malformed or cut-short headers",
            Skip::LinkType => "unknown link type",
        }
    }
}

/// The TCP segment in `frame`, a frame of link type `link` that was
/// `orig_len` bytes long on the wire (the capture may hold fewer).
pub fn tcp_segment(link: u32, frame: &[u8], orig_len: u32) -> Result<Segment<'_>, Skip> {
    let cut = orig_len.saturating_sub(frame.len() as u32);
    let packet = match link {
        linktype::ETHERNET => LaxSlicedPacket::from_ethernet(frame).map_err(|_| Skip::Malformed)?,
        linktype::LINUX_SLL => {
            let header = frame.get(..16).ok_or(Skip::Malformed)?;
            let ether_type = u16::from_be_bytes([header[14], header[15]]);
            LaxSlicedPacket::from_ether_type(EtherType(ether_type), &frame[16..])
        }
        linktype::LINUX_SLL2 => {
            let header = frame.get(..20).ok_or(Skip::Malformed)?;
            let ether_type = u16::from_be_bytes([header[0], header[1]]);
            LaxSlicedPacket::from_ether_type(EtherType(ether_type), &frame[20..])
        }
        linktype::NULL | linktype::LOOP => {
            let family = frame.get(..4).ok_or(Skip::Malformed)?;
            // NULL is in the capturing host's byte order, LOOP in network
            // order: either way the value is small, so take the non-zero end.
            let family = if family[0] == 0 && family[1] == 0 { u32::from(family[3]) } else { u32::from(family[0]) };
            match family {
                // AF_INET everywhere; AF_INET6 is 10 (Linux), 24, 28 or 30 (BSDs, macOS).
                2 | 10 | 24 | 28 | 30 => LaxSlicedPacket::from_ip(&frame[4..]).map_err(|_| Skip::Malformed)?,
                _ => return Err(Skip::NotTcp),
            }
        }
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => LaxSlicedPacket::from_ip(frame).map_err(|_| Skip::Malformed)?,
        _ => return Err(Skip::LinkType),
    };
    let (src_ip, dst_ip, ip_payload): (IpAddr, IpAddr, _) = match &packet.net {
        Some(LaxNetSlice::Ipv4(ip)) => (ip.header().source_addr().into(), ip.header().destination_addr().into(), ip.payload()),
        Some(LaxNetSlice::Ipv6(ip)) => (ip.header().source_addr().into(), ip.header().destination_addr().into(), ip.payload()),
        _ => return Err(if packet.stop_err.is_some() { Skip::Malformed } else { Skip::NotTcp }),
    };
    if ip_payload.ip_number != etherparse::IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    if ip_payload.fragmented {
        return Err(Skip::Fragment);
    }
    let Some(TransportSlice::Tcp(tcp)) = &packet.transport else {
        return Err(Skip::Malformed);
    };
    let payload = tcp.payload();
    // Bytes the IP header announced that the capture does not hold: the
    // snap length cut them (a frame's link trailer or padding is never
    // counted: lax slicing stops at the IP length).
    let missing = if ip_payload.incomplete { cut } else { 0 };
    Ok(Segment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: Flags { syn: tcp.syn(), ack: tcp.ack(), fin: tcp.fin(), rst: tcp.rst() },
        payload,
        missing,
    })
}
