//! Frames of every link type `capture::frame` reads, built with
//! etherparse: each yields its TCP segment with the right addresses, ports,
//! flags and payload, and a frame cut short says how many bytes it lost.

use capture::frame::{linktype, tcp_segment, Skip};
use etherparse::PacketBuilder;
use std::net::SocketAddr;

fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(40000, 5432, 1000, 65535).ack(77).psh().write(&mut out, payload).unwrap();
    out
}

fn ipv6_tcp(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (a, b) = ([0u8; 16], { let mut b = [0u8; 16]; b[15] = 1; b });
    PacketBuilder::ipv6(a, b, 64).tcp(50000, 6379, 7, 65535).syn().write(&mut out, payload).unwrap();
    out
}

#[test]
fn ethernet_with_vlan_tags_ipv4() {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6]).single_vlan(42.try_into().unwrap()).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(40000, 5432, 1000, 65535).fin().ack(1).write(&mut frame, b"Q\0\0\0\x05").unwrap();
    let s = tcp_segment(linktype::ETHERNET, &frame, frame.len() as u32).unwrap();
    assert_eq!(s.src, "10.0.0.1:40000".parse::<SocketAddr>().unwrap());
    assert_eq!(s.dst, "10.0.0.2:5432".parse::<SocketAddr>().unwrap());
    assert_eq!((s.seq, s.flags.fin, s.flags.ack, s.payload, s.missing), (1000, true, true, &b"Q\0\0\0\x05"[..], 0));
}

#[test]
fn linux_cooked_v1_and_v2_and_loopback_and_raw() {
    let ip4 = ipv4_tcp(b"hello");
    let ip6 = ipv6_tcp(b"");
    // SLL: 16 bytes, the EtherType last.
    let mut sll = vec![0, 0, 3, 4, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip4);
    // SLL2: 20 bytes, the EtherType first.
    let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 1, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
    sll2.extend_from_slice(&ip6);
    // NULL: the address family in host order (Linux AF_INET6 = 10).
    let mut null = 10u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ip6);
    // LOOP: network order (AF_INET = 2).
    let mut lo = 2u32.to_be_bytes().to_vec();
    lo.extend_from_slice(&ip4);
    for (link, frame, v6) in [(linktype::LINUX_SLL, &sll, false), (linktype::LINUX_SLL2, &sll2, true), (linktype::NULL, &null, true), (linktype::LOOP, &lo, false), (linktype::RAW, &ip4, false), (linktype::RAW, &ip6, true)] {
        let s = tcp_segment(link, frame, frame.len() as u32).unwrap_or_else(|e| panic!("link {link}: {e:?}"));
        assert_eq!(s.src.is_ipv6(), v6, "link {link}");
        if v6 {
            assert_eq!((s.dst.port(), s.flags.syn, s.seq), (6379, true, 7));
        } else {
            assert_eq!((s.dst.port(), s.payload), (5432, &b"hello"[..]));
        }
    }
}

#[test]
fn a_frame_cut_by_the_snap_length_says_what_it_lost_and_others_are_skipped_with_a_reason() {
    let ip4 = ipv4_tcp(&[b'x'; 300]);
    let cut = &ip4[..100];
    let s = tcp_segment(linktype::RAW, cut, ip4.len() as u32).unwrap();
    assert_eq!(s.payload.len() as u32 + s.missing, 300);
    assert!(s.missing > 0);
    // UDP, an unknown link type, a header cut short.
    let mut udp = Vec::new();
    PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64).udp(53, 53).write(&mut udp, b"dns").unwrap();
    assert_eq!(tcp_segment(linktype::RAW, &udp, udp.len() as u32).unwrap_err(), Skip::NotTcp);
    assert_eq!(tcp_segment(9999, &udp, udp.len() as u32).unwrap_err(), Skip::LinkType);
    assert_eq!(tcp_segment(linktype::LINUX_SLL2, &[0x08, 0], 2).unwrap_err(), Skip::Malformed);
}
