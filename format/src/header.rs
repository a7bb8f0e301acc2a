//! The file prefix and [`Header`].
//!
//! ```text
//! offset  size  field
//! 0       8     magic "OLTRACE\n"
//! 8       2     format major version, little endian
//! 10      2     format minor version, little endian
//! 12      4     header length N, little endian (at most 1 MiB)
//! 16      N     Header, MessagePack map
//! 16+N    4     CRC32 of bytes 8..16+N
//! ```

use crate::error::FormatError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};

pub const MAGIC: &[u8; 8] = b"OLTRACE\n";
/// Readers refuse a file whose major version is newer than this.
pub const FORMAT_MAJOR: u16 = 1;
/// Bumped for additions older readers can skip (new record kinds, fields).
/// 1.2 added [`Header::redaction`]; 1.3 the `intercepted` TLS mode.
pub const FORMAT_MINOR: u16 = 3;
const MAX_HEADER: usize = 1 << 20;

/// Who wrote a trace, where and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The writing tool and its version, e.g. `oltrace 0.1.0`.
    pub tool: String,
    /// Wall-clock time, in nanoseconds since the Unix epoch, of `ts` 0:
    /// every record's `ts` counts from here.
    pub anchor_unix_ns: u64,
    /// Host name of the machine that wrote the file.
    pub host: String,
    /// The recordings this trace holds; a record's `src` indexes this list.
    /// One entry unless the trace was merged.
    pub sources: Vec<Source>,
    /// Free-form facts about the recording (command line, routes, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// Which secrets were blanked in the records (format 1.2 on; `None` in
    /// older traces, whose `meta` has `redact = true|false` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<Redaction>,
}

/// The redaction rules applied to a trace's records, as the trace header
/// records them (see docs/recording.md, "Redaction").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    /// False: recorded with `--no-redact` (and not redacted since).
    pub enabled: bool,
    /// The version of the built-in rules (1: PostgreSQL authentication,
    /// four headers, URL userinfo, Redis; 2: also query, form and JSON
    /// fields and SQL password literals); 0 when off.
    pub rules_version: u32,
    /// Query, form and JSON field names whose values were blanked
    /// (lower-case; the defaults and the added ones, less the kept ones).
    #[serde(default)]
    pub fields: Vec<String>,
    /// HTTP header fields whose values were blanked (lower-case).
    #[serde(default)]
    pub headers: Vec<String>,
    /// Default field names exempted (`--keep-field`).
    #[serde(default)]
    pub kept: Vec<String>,
    /// What applied the rules, in order (`oltrace proxy`, `oltrace
    /// redact`, ...).
    #[serde(default)]
    pub by: Vec<String>,
}

/// One recording in a trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// A name for the recording, e.g. the worker's name (default: host).
    pub name: String,
    pub host: String,
    pub tool: String,
    /// The source's own anchor; its records were shifted onto the trace's
    /// anchor when merged.
    pub anchor_unix_ns: u64,
}

/// One route of a recording, as [`Header::routes`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRoute {
    pub name: String,
    /// `host:port`.
    pub upstream: String,
    /// `tls=`, `upstream-tls=` when not the defaults.
    pub options: Vec<(String, String)>,
}

impl RecordedRoute {
    /// The value of an option, if the route had it.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl Header {
    /// A header for a new single-source recording anchored now.
    pub fn new(tool: &str, source_name: &str) -> Header {
        let anchor_unix_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let host = hostname();
        let name = if source_name.is_empty() { host.clone() } else { source_name.to_string() };
        Header {
            tool: tool.to_string(),
            anchor_unix_ns,
            host: host.clone(),
            sources: vec![Source { name, host, tool: tool.to_string(), anchor_unix_ns }],
            meta: BTreeMap::new(),
            redaction: None,
        }
    }

    /// The routes an `oltrace proxy` recording went through, from
    /// `meta["routes"]`: space-separated `NAME=UPSTREAM[,OPTION=VALUE...]`
    /// (options as on `--route`, file paths left out, e.g.
    /// `postgres:15432=db:5432,upstream-tls=verify-full`). Empty for traces
    /// without it (merged, imported, generated, older).
    pub fn routes(&self) -> Vec<RecordedRoute> {
        let Some(all) = self.meta.get("routes") else { return Vec::new() };
        all.split_whitespace()
            .filter_map(|r| {
                let (name, rest) = r.split_once('=')?;
                let mut parts = rest.split(',');
                let upstream = parts.next()?.to_string();
                let options = parts.filter_map(|o| o.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
                Some(RecordedRoute { name: name.to_string(), upstream, options })
            })
            .collect()
    }

    /// Writes the file prefix.
    pub fn write_prefix(&self, out: &mut impl Write) -> Result<usize, FormatError> {
        let body = rmp_serde::encode::to_vec_named(self).map_err(|e| FormatError::Encode(e.to_string()))?;
        let mut buf = Vec::with_capacity(body.len() + 20);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&FORMAT_MAJOR.to_le_bytes());
        buf.extend_from_slice(&FORMAT_MINOR.to_le_bytes());
        buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
        buf.extend_from_slice(&body);
        let crc = crc32fast::hash(&buf[8..]);
        buf.extend_from_slice(&crc.to_le_bytes());
        out.write_all(&buf)?;
        Ok(buf.len())
    }

    /// Reads and checks the file prefix. Returns the header, the file's
    /// (major, minor) version, and the prefix length in bytes.
    pub fn read_prefix(input: &mut impl Read) -> Result<(Header, (u16, u16), u64), FormatError> {
        let mut fixed = [0u8; 16];
        read_full(input, &mut fixed, "file prefix")?;
        if &fixed[..8] != MAGIC {
            return Err(FormatError::NotATrace);
        }
        let major = u16::from_le_bytes([fixed[8], fixed[9]]);
        let minor = u16::from_le_bytes([fixed[10], fixed[11]]);
        if major > FORMAT_MAJOR {
            return Err(FormatError::NewerMajor { found_major: major, found_minor: minor });
        }
        if major == 0 {
            return Err(FormatError::BadHeader(format!("format version 0.{minor} was never released")));
        }
        let len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as usize;
        if len > MAX_HEADER {
            return Err(FormatError::BadHeader(format!("header length {len} exceeds {MAX_HEADER}")));
        }
        let mut rest = vec![0u8; len + 4];
        read_full(input, &mut rest, "header")?;
        let crc = u32::from_le_bytes(rest[len..].try_into().expect("4 bytes"));
        let mut h = crc32fast::Hasher::new();
        h.update(&fixed[8..]);
        h.update(&rest[..len]);
        if h.finalize() != crc {
            return Err(FormatError::BadHeader("header checksum mismatch".into()));
        }
        let header: Header =
            rmp_serde::from_slice(&rest[..len]).map_err(|e| FormatError::BadHeader(e.to_string()))?;
        Ok((header, (major, minor), (16 + len + 4) as u64))
    }
}

fn read_full(input: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), FormatError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            FormatError::BadHeader(format!("file ends inside the {what} (empty or torn at creation)"))
        }
        _ => FormatError::Stream(e),
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_as_the_proxy_writes_them() {
        let mut h = Header::new("oltrace test", "");
        assert!(h.routes().is_empty());
        h.meta.insert("routes".into(), "postgres:15432=db:5432,tls=terminate,upstream-tls=verify-full rediss:0=[::1]:6380 http:8080=10.0.0.1:80".into());
        let r = h.routes();
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].name.as_str(), r[0].upstream.as_str()), ("postgres:15432", "db:5432"));
        assert_eq!((r[0].option("tls"), r[0].option("upstream-tls")), (Some("terminate"), Some("verify-full")));
        assert_eq!((r[1].upstream.as_str(), r[1].option("upstream-tls")), ("[::1]:6380", None));
        assert_eq!(r[2].name, "http:8080");
    }
}
