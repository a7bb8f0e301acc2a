//! `--config FILE`: the recording options of `oltrace proxy` and `oltrace
//! wrap` in a TOML file, equivalent to their flags. A flag given on the
//! command line overrides the file's value; `--route` and `--log`, when
//! given, replace the file's whole list.
//!
//! ```toml
//! output = "trace.mp"           # -o; relative paths are relative to this file
//! routes = [                    # --route, same syntax
//!   "postgres:15432=127.0.0.1:5432",
//!   "redis:16379=127.0.0.1:6379",
//! ]
//! logs = ["/var/log/worker.log"] # --log (relative to this file too)
//! queue = 65536                  # --queue
//! threads = 2                    # --threads (default: one per core)
//! block = false                  # --block
//! defer = 256                    # --defer, in MiB (0: decode as traffic comes)
//! redact = true                  # false = --no-redact
//! drain_timeout = "5s"           # --drain-timeout
//! source = "worker-1"            # --source
//! ```
//!
//! Unknown keys are errors (a misspelt key must not be silently ignored).

use format::view::parse_ns as parse_duration;
use crate::proxy::pacer::{DEFAULT_DEFER, MAX_DEFER};
use crate::proxy::route::Route;
use crate::proxy::ProxyConfig;
use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The defaults when neither a flag nor the file says.
pub const DEFAULT_QUEUE: usize = 65_536;
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// The smallest queue accepted; smaller values are raised to it.
pub const MIN_QUEUE: usize = 16;

/// The file's keys, as written.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub output: Option<PathBuf>,
    #[serde(default)]
    pub routes: Vec<String>,
    #[serde(default)]
    pub logs: Vec<PathBuf>,
    pub queue: Option<usize>,
    pub threads: Option<usize>,
    pub block: Option<bool>,
    /// MiB.
    pub defer: Option<u64>,
    pub redact: Option<bool>,
    pub drain_timeout: Option<String>,
    pub source: Option<String>,
}

impl FileConfig {
    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<FileConfig> {
        toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "config {}: {}(keys: output, routes, logs, queue, threads, block, defer, redact, drain_timeout, source; see docs/recording.md)",
                origin.display(),
                e
            )
        })
    }

    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
        let mut config = FileConfig::parse(&text, path)?;
        // Paths in the file are relative to the file, not to where oltrace runs.
        let base = path.parent().unwrap_or(Path::new("."));
        config.output = config.output.map(|p| base.join(p));
        config.logs = config.logs.into_iter().map(|p| base.join(p)).collect();
        Ok(config)
    }
}

/// What the command line said; `None` / empty / false where a flag was
/// not given.
#[derive(Debug, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub routes: Vec<Route>,
    pub output: Option<PathBuf>,
    pub no_redact: bool,
    pub queue: Option<usize>,
    pub threads: Option<usize>,
    pub block: bool,
    /// MiB.
    pub defer: Option<u64>,
    /// Nanoseconds.
    pub drain_timeout: Option<u64>,
    pub source: Option<String>,
    pub logs: Vec<PathBuf>,
}

/// The recording config: flags over the config file (if any) over defaults.
pub fn resolve(flags: Flags) -> anyhow::Result<ProxyConfig> {
    let file = match &flags.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let origin = flags.config.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
    let routes = if !flags.routes.is_empty() {
        flags.routes
    } else {
        file.routes
            .iter()
            .map(|r| r.parse::<Route>().map_err(|e| anyhow::anyhow!("config {origin}: {e}")))
            .collect::<anyhow::Result<_>>()?
    };
    let output = flags
        .output
        .or(file.output)
        .ok_or_else(|| anyhow::anyhow!("no trace to write: give -o FILE (or `output = \"FILE\"` in --config)"))?;
    let drain_timeout = match (flags.drain_timeout, &file.drain_timeout) {
        (Some(ns), _) => Duration::from_nanos(ns),
        (None, Some(text)) => Duration::from_nanos(
            parse_duration(text).map_err(|e| anyhow::anyhow!("config {origin}: drain_timeout: {e}"))?,
        ),
        (None, None) => DEFAULT_DRAIN_TIMEOUT,
    };
    Ok(ProxyConfig {
        routes,
        output,
        redact: !flags.no_redact && file.redact.unwrap_or(true),
        queue: flags.queue.or(file.queue).unwrap_or(DEFAULT_QUEUE).max(MIN_QUEUE),
        threads: flags.threads.or(file.threads).unwrap_or_else(crate::proxy::workers::default_threads).max(1),
        block: flags.block || file.block.unwrap_or(false),
        defer: flags.defer.or(file.defer).map_or(DEFAULT_DEFER, |mib| mib.saturating_mul(1 << 20)).min(MAX_DEFER),
        drain_timeout,
        limits: wire::Limits::default(),
        source_name: flags.source.or(file.source).unwrap_or_default(),
        logs: if flags.logs.is_empty() { file.logs } else { flags.logs },
        // Set from their own flags by the caller (not in the file yet).
        forward_proxy: None,
        invocations: None,
        fronts: Vec::new(),
        inject_traceparent: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(flags: Flags) -> String {
        match resolve(flags) {
            Ok(_) => panic!("expected an error"),
            Err(e) => format!("{e:#}"),
        }
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("oltrace.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn file_values_and_flag_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            r#"
output = "out/trace.mp"
routes = ["postgres:15432=127.0.0.1:5432", "redis:0=127.0.0.1:6379"]
logs = ["app.log", "/var/log/other.log"]
queue = 1000
threads = 3
block = true
defer = 64
redact = false
drain_timeout = "250ms"
source = "worker-1"
"#,
        );
        let c = resolve(Flags { config: Some(path.clone()), ..Flags::default() }).unwrap();
        assert_eq!(c.output, dir.path().join("out/trace.mp"), "relative to the config file");
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[0].protocol, wire::Protocol::Postgres);
        assert_eq!(c.routes[1].upstream, "127.0.0.1:6379");
        assert_eq!(c.logs, [dir.path().join("app.log"), PathBuf::from("/var/log/other.log")]);
        assert_eq!((c.queue, c.threads, c.block, c.redact), (1000, 3, true, false));
        assert_eq!(c.drain_timeout, Duration::from_millis(250));
        assert_eq!(c.defer, 64 << 20, "MiB");
        assert_eq!(c.source_name, "worker-1");

        // Flags win; lists given on the command line replace the file's.
        let c = resolve(Flags {
            config: Some(path),
            routes: vec!["tcp:0=127.0.0.1:9".parse().unwrap()],
            output: Some("elsewhere.mp".into()),
            queue: Some(5),
            threads: Some(2),
            drain_timeout: Some(1_000_000_000),
            defer: Some(0),
            source: Some("cli".into()),
            logs: vec!["x.log".into()],
            ..Flags::default()
        })
        .unwrap();
        assert_eq!(c.routes.len(), 1);
        assert_eq!(c.routes[0].protocol, wire::Protocol::Tcp);
        assert_eq!(c.output, PathBuf::from("elsewhere.mp"));
        assert_eq!(c.queue, MIN_QUEUE, "tiny queues are raised to the minimum");
        assert_eq!(c.threads, 2);
        assert_eq!(c.drain_timeout, Duration::from_secs(1));
        assert_eq!(c.defer, 0, "--defer 0: decode as traffic comes");
        assert_eq!(c.source_name, "cli");
        assert_eq!(c.logs, [PathBuf::from("x.log")]);
        assert!(c.block, "the file's block = true stays: there is no flag to turn it off");
    }

    #[test]
    fn defaults_without_a_file() {
        let c = resolve(Flags { output: Some("t.mp".into()), ..Flags::default() }).unwrap();
        assert_eq!((c.queue, c.block, c.redact), (DEFAULT_QUEUE, false, true));
        assert_eq!(c.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
        assert_eq!(c.defer, DEFAULT_DEFER);
        assert!(c.routes.is_empty() && c.logs.is_empty());
        let c = resolve(Flags { output: Some("t.mp".into()), defer: Some(u64::MAX), ..Flags::default() }).unwrap();
        assert_eq!(c.defer, MAX_DEFER, "larger budgets are lowered to the largest");
        let e = error_of(Flags::default());
        assert!(e.contains("-o FILE"), "{e}");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("outptu = \"t.mp\"\n", "unknown field `outptu`"),
            ("queue = \"lots\"\n", "invalid type"),
            ("routes = [\"smtp:25=x:25\"]\noutput = \"t.mp\"\n", "unknown protocol 'smtp'"),
            ("drain_timeout = \"soon\"\noutput = \"t.mp\"\n", "drain_timeout"),
            ("output = \n", "oltrace.toml"),
        ];
        for (text, expect) in cases {
            let path = write(dir.path(), text);
            let e = error_of(Flags { config: Some(path), ..Flags::default() });
            assert!(e.contains(expect), "{text:?}: {e}");
        }
        let e = error_of(Flags { config: Some(dir.path().join("missing.toml")), ..Flags::default() });
        assert!(e.contains("cannot read config") && e.contains("missing.toml"), "{e}");
    }
}
