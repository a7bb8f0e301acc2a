//! `oltrace export --format pcap TRACE -o OUT.pcap`: a trace's messages
//! written back as synthetic TCP/IP packets ([`capture::pcap_export`]),
//! at their recorded times, between their recorded addresses, so any trace
//! opens in Wireshark or tshark (and `oltrace import` reads it back).
//!
//! Addresses that are not `ip:port` (a server configured by host name)
//! become addresses in 198.18.0.0/15, the benchmarking range, one per
//! name, with the port kept. Bytes a trace did not keep (bodies past its
//! cap, gaps) leave holes in the sequence numbers, which tshark reports as
//! segments not captured. Redacted secrets stay redacted.

use crate::Outcome;
use anyhow::Context;
use capture::pcap_export::PcapExport;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

pub struct PcapOutConfig {
    pub trace: PathBuf,
    pub output: PathBuf,
}

/// What an export wrote.
#[derive(Debug, Default)]
pub struct Exported {
    pub connections: u64,
    pub messages: u64,
    pub packets: u64,
    pub damaged: u64,
}

pub fn run(config: &PcapOutConfig) -> anyhow::Result<Outcome> {
    let e = export(config)?;
    eprintln!(
        "oltrace export: {} connections, {} messages as {} packets into {}",
        e.connections,
        e.messages,
        e.packets,
        config.output.display()
    );
    if e.damaged > 0 {
        eprintln!("oltrace export: {} damaged stretches of {} were skipped", e.damaged, config.trace.display());
        return Ok(Outcome::Damaged);
    }
    Ok(Outcome::Clean)
}

pub fn export(config: &PcapOutConfig) -> anyhow::Result<Exported> {
    let reader = crate::open_trace(&config.trace)?;
    let header = reader.header().clone();
    let anchor = |src: u16| header.sources.get(src as usize).map_or(header.anchor_unix_ns, |s| s.anchor_unix_ns);
    let file = std::fs::File::create(&config.output).with_context(|| format!("cannot create {}", config.output.display()))?;
    let mut out = PcapExport::new(std::io::BufWriter::new(file)).map_err(|e| anyhow::anyhow!("writing {}: {e}", config.output.display()))?;
    let mut names = Names::default();
    // Per connection (of its source), the stream offset each direction's
    // packets have reached.
    let mut offsets: HashMap<u64, [u64; 2]> = HashMap::new();
    let mut done = Exported::default();
    let mut last = 0;
    let key = |src: u16, conn: u64| (u64::from(src) << 48) | conn;
    for item in reader {
        let record = match item {
            Ok(r) => r,
            Err(_) => {
                done.damaged += 1;
                continue;
            }
        };
        let ts = anchor(record.src).saturating_add(record.ts);
        last = last.max(ts);
        let result = match &record.body {
            format::Body::ConnOpen(o) => {
                done.connections += 1;
                offsets.insert(key(record.src, o.conn), [0, 0]);
                out.open(key(record.src, o.conn), names.addr(&o.client), names.addr(&o.server), ts)
            }
            format::Body::Message(m) => {
                let k = key(record.src, m.conn);
                let Some(at) = offsets.get_mut(&k) else { continue };
                done.messages += 1;
                let i = m.dir.index();
                // Bytes before this message the trace does not hold (a gap).
                let before = m.offset.saturating_sub(at[i]);
                let kept = m.data.bytes.as_bytes();
                let unkept = m.data.len.saturating_sub(kept.len() as u64);
                at[i] = at[i].max(m.offset + m.data.len);
                out.data(k, m.dir, &[], before, ts).and_then(|_| out.data(k, m.dir, kept, unkept, ts))
            }
            format::Body::ConnClose(c) => {
                offsets.remove(&key(record.src, c.conn));
                out.close(key(record.src, c.conn), ts)
            }
            _ => Ok(()),
        };
        result.map_err(|e| anyhow::anyhow!("writing {}: {e}", config.output.display()))?;
    }
    done.packets = out.packets();
    let mut w = out.finish(last).map_err(|e| anyhow::anyhow!("writing {}: {e}", config.output.display()))?;
    std::io::Write::flush(&mut w).with_context(|| format!("writing {}", config.output.display()))?;
    Ok(done)
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
