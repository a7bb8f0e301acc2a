//! `--format pcap`: a trace's messages written back as synthetic TCP/IP
//! packets ([`capture::pcap_export`]), at their recorded times, between
//! their recorded addresses, so any trace opens in Wireshark or tshark (and
//! `oltrace import` reads it back).
//!
//! Addresses that are not `ip:port` (a server configured by host name)
//! become addresses in 198.18.0.0/15, the benchmarking range, one per
//! name, with the port kept. Bytes a trace did not keep (bodies past its
//! cap, gaps) leave holes in the sequence numbers, which tshark reports as
//! segments not captured. Redacted secrets stay redacted: only the
//! recorded (redacted) bytes are written.

use super::{Context, Sink};
use capture::pcap_export::PcapExport;
use format::{Body, Header, Record};
use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub struct Pcap {
    out: PcapExport<Box<dyn Write>>,
    /// The trace's anchor (Unix ns): record times are since it.
    anchor: u64,
    names: Names,
    /// Per connection (of its source), the stream offset each direction's
    /// packets have reached.
    offsets: HashMap<u64, [u64; 2]>,
    connections: u64,
    messages: u64,
    last: u64,
}

impl Pcap {
    pub fn new(out: Box<dyn Write>, header: &Header) -> anyhow::Result<Pcap> {
        let out = PcapExport::new(out).map_err(|e| anyhow::anyhow!("writing the pcap header: {e}"))?;
        Ok(Pcap {
            out,
            anchor: header.anchor_unix_ns,
            names: Names::default(),
            offsets: HashMap::new(),
            connections: 0,
            messages: 0,
            last: 0,
        })
    }
}

/// One key per connection across sources.
fn key(src: u16, conn: u64) -> u64 {
    (u64::from(src) << 48) | conn
}

impl Sink for Pcap {
    fn record(&mut self, record: &Record, _cx: &Context<'_>) -> anyhow::Result<()> {
        let ts = self.anchor.saturating_add(record.ts);
        self.last = self.last.max(ts);
        let k = key(record.src, record.body.conn().unwrap_or(0));
        let result = match &record.body {
            Body::ConnOpen(o) => {
                self.connections += 1;
                self.offsets.insert(k, [0, 0]);
                self.out.open(k, self.names.addr(&o.client), self.names.addr(&o.server), ts)
            }
            Body::Message(m) => {
                let Some(at) = self.offsets.get_mut(&k) else { return Ok(()) };
                self.messages += 1;
                let i = m.dir.index();
                // Bytes before this message the trace does not hold (a gap).
                let before = m.offset.saturating_sub(at[i]);
                let kept = m.data.bytes.as_bytes();
                let unkept = m.data.len.saturating_sub(kept.len() as u64);
                at[i] = at[i].max(m.offset + m.data.len);
                let out = &mut self.out;
                out.data(k, m.dir, &[], before, ts).and_then(|_| out.data(k, m.dir, kept, unkept, ts))
            }
            Body::ConnClose(_) => {
                self.offsets.remove(&k);
                self.out.close(k, ts)
            }
            _ => Ok(()),
        };
        result.map_err(|e| anyhow::anyhow!("writing packets: {e}"))
    }

    fn finish(self: Box<Self>) -> anyhow::Result<String> {
        let packets = self.out.packets();
        let mut w = self.out.finish(self.last).map_err(|e| anyhow::anyhow!("writing packets: {e}"))?;
        w.flush()?;
        Ok(format!("{} connections, {} messages as {packets} packets", self.connections, self.messages))
    }
}

/// Addresses for the names in a trace that are not `ip:port`.
#[derive(Default)]
struct Names(HashMap<String, Ipv4Addr>);

impl Names {
    fn addr(&mut self, text: &str) -> SocketAddr {
        if let Ok(a) = text.parse() {
            return a;
        }
        let (host, port) = text.rsplit_once(':').unwrap_or((text, "0"));
        let port = port.parse().unwrap_or(0);
        let n = self.0.len() as u32;
        let ip = *self.0.entry(host.to_string()).or_insert_with(|| Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 1)) + n));
        SocketAddr::new(IpAddr::V4(ip), port)
    }
}
