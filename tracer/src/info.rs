//! `oltrace info`: what a trace holds, and any damage found in it.

use crate::{open_trace, Outcome};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct InfoConfig {
    pub file: PathBuf,
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct DamageReport {
    pub offset: u64,
    pub len: u64,
    pub records_lost: Option<u64>,
    pub what: String,
}

/// Everything `oltrace info` reports; `--json` prints it as is.
#[derive(Debug, Serialize)]
pub struct TraceInfo {
    pub file: String,
    pub file_bytes: u64,
    pub format_version: String,
    pub tool: String,
    pub host: String,
    pub anchor_unix_ns: u64,
    /// The anchor as RFC 3339 UTC.
    pub anchor: String,
    pub sources: Vec<String>,
    pub meta: BTreeMap<String, String>,
    /// The redaction rules the header records (format 1.2 on).
    pub redaction: Option<format::Redaction>,
    pub records: u64,
    pub blocks: u64,
    pub records_by_kind: BTreeMap<String, u64>,
    /// Records on connections of each protocol (records with no
    /// connection, such as logs, are not counted here).
    pub records_by_protocol: BTreeMap<String, u64>,
    pub exchanges_by_protocol: BTreeMap<String, u64>,
    pub connections: u64,
    /// Connections by what became of TLS on their client side, on routes
    /// that handle it (`conn_open.tls`).
    pub connections_by_tls: BTreeMap<String, u64>,
    pub first_ts_ns: Option<u64>,
    pub last_ts_ns: Option<u64>,
    pub duration_s: f64,
    pub bytes_per_record: f64,
    /// Records of kinds this build does not know (newer minor version).
    pub unknown_records: u64,
    pub damage: Vec<DamageReport>,
}

pub fn collect(path: &Path) -> anyhow::Result<TraceInfo> {
    let file_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut reader = open_trace(path)?;
    let header = reader.header().clone();
    let (major, minor) = reader.version();
    let mut records_by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut records_by_protocol: BTreeMap<String, u64> = BTreeMap::new();
    let mut exchanges_by_protocol: BTreeMap<String, u64> = BTreeMap::new();
    let mut conns = format::view::ConnTable::default();
    let mut damage = Vec::new();
    let (mut first, mut last) = (None::<u64>, None::<u64>);
    let mut connections = 0;
    let mut connections_by_tls: BTreeMap<String, u64> = BTreeMap::new();
    for item in reader.by_ref() {
        match item {
            Ok(record) => {
                *records_by_kind.entry(record.body.kind().to_string()).or_default() += 1;
                if let format::Body::ConnOpen(open) = &record.body {
                    connections += 1;
                    if let Some(mode) = open.tls {
                        *connections_by_tls.entry(mode.name().to_string()).or_default() += 1;
                    }
                }
                if let Some(p) = conns.observe(&record).map(|c| c.protocol) {
                    *records_by_protocol.entry(p.name().to_string()).or_default() += 1;
                    if let format::Body::Exchange(_) = record.body {
                        *exchanges_by_protocol.entry(p.name().to_string()).or_default() += 1;
                    }
                }
                first = Some(first.map_or(record.ts, |f| f.min(record.ts)));
                last = Some(last.map_or(record.ts, |l| l.max(record.ts)));
            }
            Err(d) => damage.push(DamageReport {
                offset: d.offset,
                len: d.len,
                records_lost: d.records_lost,
                what: d.to_string(),
            }),
        }
    }
    let stats = reader.stats();
    let anchor = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(header.anchor_unix_ns);
    Ok(TraceInfo {
        file: path.display().to_string(),
        file_bytes,
        format_version: format!("{major}.{minor}"),
        tool: header.tool.clone(),
        host: header.host.clone(),
        anchor_unix_ns: header.anchor_unix_ns,
        anchor: humantime::format_rfc3339_nanos(anchor).to_string(),
        sources: header.sources.iter().map(|s| format!("{} ({}, {})", s.name, s.host, s.tool)).collect(),
        meta: header.meta.clone(),
        redaction: header.redaction.clone(),
        records: stats.records,
        blocks: stats.blocks,
        records_by_kind,
        records_by_protocol,
        exchanges_by_protocol,
        connections,
        connections_by_tls,
        first_ts_ns: first,
        last_ts_ns: last,
        duration_s: match (first, last) {
            (Some(f), Some(l)) => (l - f) as f64 / 1e9,
            _ => 0.0,
        },
        bytes_per_record: if stats.records > 0 { file_bytes as f64 / stats.records as f64 } else { 0.0 },
        unknown_records: stats.unknown_records,
        damage,
    })
}

pub fn run(config: &InfoConfig, out: &mut impl std::io::Write) -> anyhow::Result<Outcome> {
    let info = collect(&config.file)?;
    if config.json {
        serde_json::to_writer_pretty(&mut *out, &info)?;
        writeln!(out)?;
    } else {
        print_text(&info, out)?;
    }
    Ok(if info.damage.is_empty() { Outcome::Clean } else { Outcome::Damaged })
}

fn print_text(i: &TraceInfo, out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(out, "file:        {} ({} bytes)", i.file, i.file_bytes)?;
    writeln!(out, "format:      {}  written by {} on {}", i.format_version, i.tool, i.host)?;
    writeln!(out, "anchor:      {}", i.anchor)?;
    writeln!(out, "sources:     {}", i.sources.join("; "))?;
    for (k, v) in &i.meta {
        writeln!(out, "meta:        {k} = {v}")?;
    }
    match &i.redaction {
        Some(r) if r.enabled => writeln!(
            out,
            "redaction:   rules v{} by {}; fields {}; headers {}{}",
            r.rules_version,
            r.by.join(", then "),
            r.fields.join(","),
            r.headers.join(","),
            if r.kept.is_empty() { String::new() } else { format!("; kept {}", r.kept.join(",")) }
        )?,
        Some(r) => writeln!(out, "redaction:   off (--no-redact, by {})", r.by.join(", then "))?,
        None => {}
    }
    writeln!(out, "records:     {} in {} blocks, {:.1} bytes/record", i.records, i.blocks, i.bytes_per_record)?;
    writeln!(out, "duration:    {:.3} s", i.duration_s)?;
    writeln!(out, "connections: {}", i.connections)?;
    let join = |m: &BTreeMap<String, u64>| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
    if !i.connections_by_tls.is_empty() {
        writeln!(out, "tls:         {}", join(&i.connections_by_tls))?;
    }
    writeln!(out, "by kind:     {}", join(&i.records_by_kind))?;
    writeln!(out, "by protocol: {}", join(&i.records_by_protocol))?;
    writeln!(out, "exchanges:   {}", join(&i.exchanges_by_protocol))?;
    if i.unknown_records > 0 {
        writeln!(out, "unknown:     {} records of kinds this build does not know (skipped)", i.unknown_records)?;
    }
    if i.damage.is_empty() {
        writeln!(out, "damage:      none")?;
    } else {
        writeln!(out, "damage:      {} damaged stretches", i.damage.len())?;
        for d in &i.damage {
            writeln!(out, "  {}", d.what)?;
        }
    }
    Ok(())
}
