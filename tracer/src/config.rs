//! `--config FILE`: the recording options of `oltrace proxy` and `oltrace
//! wrap` in a TOML file, equivalent to their flags. A flag given on the
//! command line overrides the file's value; `--route` and `--log`, when
//! given, replace the file's whole list.
//!
//! ```toml
//! output = "trace.mp"           # -o; relative paths are relative to this file
//! routes = [                    # --route, same syntax (options too)
//!   "postgres:15432=127.0.0.1:5432",
//!   "redis:16379=127.0.0.1:6379",
//! ]
//! allow_plaintext_listen = false # --allow-plaintext-listen
//! logs = ["/var/log/worker.log"] # --log (relative to this file too)
//! queue = 65536                  # --queue
//! threads = 2                    # --threads (default: one per core)
//! block = false                  # --block
//! defer = 256                    # --defer, in MiB (0: decode as traffic comes)
//! redact = true                  # false = --no-redact
//! redact_fields = ["session_id"]  # --redact-field (added to the flags' names)
//! redact_headers = ["X-Tenant-Key"] # --redact-header (likewise)
//! keep_fields = ["key"]           # --keep-field (likewise)
//! spool = true                   # false = --no-spool
//! connect_timeout = "5s"         # --connect-timeout
//! drain_timeout = "5s"           # --drain-timeout
//! source = "worker-1"            # --source
//! max_request = "64MiB"          # --max-request (bytes, or KiB/MiB/GiB)
//! invocations = "openlambda"     # --invocations (a profile, NAME=REGEX or "none")
//! fronts = ["18080"]             # --front (port or ip:port)
//! inject_traceparent = false     # --inject-traceparent
//! forward_proxy = "3128"         # --forward-proxy (port or ip:port)
//! tls_intercept = false          # --tls-intercept
//! ca_dir = "ca"                  # --ca-dir
//! tls_passthrough = ["pinned.example"] # --tls-passthrough
//! upstream_ca = ["corp-ca.pem"]  # --upstream-ca
//! upstream_insecure = false      # --upstream-insecure
//! ```
//!
//! Unknown keys are errors (a misspelt key must not be silently ignored).
//! The options' dependencies (`--tls-intercept` needs `--forward-proxy`, and
//! so on) are checked here, once, on the merged values: a flag may complete
//! what the file began.

use format::view::parse_ns as parse_duration;
use crate::proxy::pacer::{DEFAULT_DEFER, MAX_DEFER};
use crate::proxy::route::Route;
use crate::proxy::intercept::InterceptOptions;
use crate::proxy::profiles::Profile;
use crate::proxy::ProxyConfig;
use anyhow::Context;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The defaults when neither a flag nor the file says.
pub const DEFAULT_QUEUE: usize = 65_536;
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
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
    #[serde(default)]
    pub redact_fields: Vec<String>,
    #[serde(default)]
    pub redact_headers: Vec<String>,
    #[serde(default)]
    pub keep_fields: Vec<String>,
    pub spool: Option<bool>,
    pub connect_timeout: Option<String>,
    pub drain_timeout: Option<String>,
    pub source: Option<String>,
    pub allow_plaintext_listen: Option<bool>,
    pub max_request: Option<String>,
    pub invocations: Option<String>,
    #[serde(default)]
    pub fronts: Vec<String>,
    pub inject_traceparent: Option<bool>,
    pub forward_proxy: Option<String>,
    pub tls_intercept: Option<bool>,
    pub ca_dir: Option<PathBuf>,
    #[serde(default)]
    pub tls_passthrough: Vec<String>,
    #[serde(default)]
    pub upstream_ca: Vec<PathBuf>,
    pub upstream_insecure: Option<bool>,
}

/// The file's keys, named in the error for a key it does not know.
const KEYS: &str = "output, routes, logs, queue, threads, block, defer, redact, redact_fields, redact_headers, \
keep_fields, spool, connect_timeout, drain_timeout, source, allow_plaintext_listen, max_request, invocations, fronts, \
inject_traceparent, forward_proxy, tls_intercept, ca_dir, tls_passthrough, upstream_ca, upstream_insecure";

impl FileConfig {
    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<FileConfig> {
        toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "config {}: {}(keys: {KEYS}; see docs/recording.md)",
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
        config.ca_dir = config.ca_dir.map(|p| base.join(p));
        config.upstream_ca = config.upstream_ca.into_iter().map(|p| base.join(p)).collect();
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
    /// `--no-redact`, `--redact-field`, `--redact-header`, `--keep-field`.
    pub redact: RedactFlags,
    pub no_spool: bool,
    /// Nanoseconds.
    pub connect_timeout: Option<u64>,
    pub queue: Option<usize>,
    pub threads: Option<usize>,
    pub block: bool,
    /// MiB.
    pub defer: Option<u64>,
    /// Nanoseconds.
    pub drain_timeout: Option<u64>,
    pub source: Option<String>,
    pub logs: Vec<PathBuf>,
    pub allow_plaintext_listen: bool,
    /// Bytes.
    pub max_request: Option<usize>,
    /// `oltrace wrap` rather than `proxy`: invocations default to the
    /// `auto` profile when there is an http route.
    pub wrap: bool,
    /// `--invocations`: `Some(None)` is `--invocations none`.
    pub invocations: Option<Option<Profile>>,
    /// `--front`, `--tls-passthrough`, `--upstream-ca`: when given, they
    /// replace the file's list, as `--route` does.
    pub fronts: Vec<SocketAddr>,
    pub inject_traceparent: bool,
    pub forward_proxy: Option<SocketAddr>,
    pub tls_intercept: bool,
    pub ca_dir: Option<PathBuf>,
    pub tls_passthrough: Vec<String>,
    pub upstream_ca: Vec<PathBuf>,
    pub upstream_insecure: bool,
}

/// A listen address: a port (bound on 127.0.0.1) or `ip:port`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    match text.parse::<u16>() {
        Ok(port) => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => text.parse().map_err(|_| format!("'{text}' is not a port or ip:port")),
    }
}

/// An invocation profile, or `none` (`Ok(None)`).
pub fn parse_profile(text: &str) -> Result<Option<Profile>, String> {
    if text == "none" {
        return Ok(None);
    }
    text.parse().map(Some)
}

/// The redaction flags of every recording command (proxy, wrap, import,
/// capture): one set of flags, turned into [`convert::redact::Rules`] here
/// only, so every command blanks the same way and records it alike.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct RedactFlags {
    /// Record secrets as they are instead of blanking them
    #[arg(long)]
    pub no_redact: bool,
    /// Also blank the value of this query, form or JSON field (repeatable;
    /// case-insensitive; added to the defaults: password, token, key, ...;
    /// see docs/recording.md, "Redaction")
    #[arg(long = "redact-field", value_name = "NAME")]
    pub redact_fields: Vec<String>,
    /// Also blank the value of this HTTP header (repeatable; added to
    /// Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key,
    /// X-Auth-Token)
    #[arg(long = "redact-header", value_name = "NAME")]
    pub redact_headers: Vec<String>,
    /// Do not blank this default field name (repeatable), e.g. a `key`
    /// parameter that is an ordinary key
    #[arg(long = "keep-field", value_name = "NAME")]
    pub keep_fields: Vec<String>,
}

impl RedactFlags {
    /// The rules: off with `--no-redact` (or `redact = false` in the
    /// file), else the defaults plus the flags' and the file's names (a
    /// name is never dropped by giving another).
    pub fn rules(self, file: &FileConfig) -> anyhow::Result<convert::redact::Rules> {
        if self.no_redact || !file.redact.unwrap_or(true) {
            return Ok(convert::redact::Rules::off());
        }
        let both = |a: Vec<String>, b: &[String]| a.into_iter().chain(b.iter().cloned()).collect::<Vec<_>>();
        convert::redact::Rules::new(
            &both(self.redact_fields, &file.redact_fields),
            &both(self.redact_headers, &file.redact_headers),
            &both(self.keep_fields, &file.keep_fields),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// A size: bytes, or a number with `KiB`, `MiB` or `GiB` (`64MiB`, `100 KiB`).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        u => return Err(format!("unknown unit {u:?} in size {text:?} (use bytes, KiB, MiB or GiB)")),
    };
    let n: usize = num.parse().map_err(|_| format!("{text:?} is not a size (e.g. 64MiB, 100KiB, 4096)"))?;
    n.checked_mul(1 << shift).filter(|&n| n > 0).ok_or_else(|| format!("size {text:?} out of range (1 byte to 2^64)"))
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
        // Option paths (cert=, key=, upstream-ca=) are relative to the file.
        let base = flags.config.as_deref().and_then(Path::parent).unwrap_or(Path::new("."));
        file.routes
            .iter()
            .map(|r| {
                let mut route = r.parse::<Route>().map_err(|e| anyhow::anyhow!("config {origin}: {e}"))?;
                route.rebase(base);
                Ok(route)
            })
            .collect::<anyhow::Result<_>>()?
    };
    let redact = flags.redact.rules(&file)?;
    let output = flags
        .output
        .or(file.output)
        .ok_or_else(|| anyhow::anyhow!("no trace to write: give -o FILE (or `output = \"FILE\"` in --config)"))?;
    let duration = |flag: Option<u64>, text: &Option<String>, key: &str, default: Duration| -> anyhow::Result<Duration> {
        Ok(match (flag, text) {
            (Some(ns), _) => Duration::from_nanos(ns),
            (None, Some(text)) => Duration::from_nanos(parse_duration(text).map_err(|e| anyhow::anyhow!("config {origin}: {key}: {e}"))?),
            (None, None) => default,
        })
    };
    let drain_timeout = duration(flags.drain_timeout, &file.drain_timeout, "drain_timeout", DEFAULT_DRAIN_TIMEOUT)?;
    let connect_timeout = duration(flags.connect_timeout, &file.connect_timeout, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)?;
    let max_request = match (flags.max_request, &file.max_request) {
        (Some(n), _) => n,
        (None, Some(text)) => parse_size(text).map_err(|e| anyhow::anyhow!("config {origin}: max_request: {e}"))?,
        (None, None) => wire::DEFAULT_REQUEST_CAP,
    };
    let invocations = match flags.invocations {
        Some(profile) => profile,
        None => match &file.invocations {
            Some(text) => parse_profile(text).map_err(|e| anyhow::anyhow!("config {origin}: invocations: {e}"))?,
            None => (flags.wrap && routes.iter().any(|r| r.protocol == wire::Protocol::Http)).then_some(Profile::Auto),
        },
    };
    let fronts = if !flags.fronts.is_empty() {
        flags.fronts
    } else {
        file.fronts.iter().map(|f| parse_listen(f).map_err(|e| anyhow::anyhow!("config {origin}: fronts: {e}"))).collect::<anyhow::Result<_>>()?
    };
    let forward_proxy = match (flags.forward_proxy, &file.forward_proxy) {
        (Some(addr), _) => Some(addr),
        (None, Some(text)) => Some(parse_listen(text).map_err(|e| anyhow::anyhow!("config {origin}: forward_proxy: {e}"))?),
        (None, None) => None,
    };
    let intercept = intercept_options(
        forward_proxy.is_some(),
        flags.tls_intercept || file.tls_intercept.unwrap_or(false),
        InterceptOptions {
            ca_dir: flags.ca_dir.or(file.ca_dir),
            passthrough: if flags.tls_passthrough.is_empty() { file.tls_passthrough } else { flags.tls_passthrough },
            upstream_ca: if flags.upstream_ca.is_empty() { file.upstream_ca } else { flags.upstream_ca },
            upstream_insecure: flags.upstream_insecure || file.upstream_insecure.unwrap_or(false),
        },
    )?;
    Ok(ProxyConfig {
        routes,
        output,
        redact,
        spool: !flags.no_spool && file.spool.unwrap_or(true),
        connect_timeout,
        queue: flags.queue.or(file.queue).unwrap_or(DEFAULT_QUEUE).max(MIN_QUEUE),
        threads: flags.threads.or(file.threads).unwrap_or_else(crate::proxy::workers::default_threads).max(1),
        block: flags.block || file.block.unwrap_or(false),
        defer: flags.defer.or(file.defer).map_or(DEFAULT_DEFER, |mib| mib.saturating_mul(1 << 20)).min(MAX_DEFER),
        drain_timeout,
        limits: wire::Limits::default().with_request_cap(max_request),
        source_name: flags.source.or(file.source).unwrap_or_default(),
        logs: if flags.logs.is_empty() { file.logs } else { flags.logs },
        allow_plaintext_listen: flags.allow_plaintext_listen || file.allow_plaintext_listen.unwrap_or(false),
        forward_proxy,
        intercept,
        invocations,
        fronts,
        inject_traceparent: flags.inject_traceparent || file.inject_traceparent.unwrap_or(false),
    })
}

/// `--tls-intercept` and its options, checked on the merged flags and file:
/// interception needs the forward proxy, and its options need interception.
fn intercept_options(forward_proxy: bool, tls_intercept: bool, options: InterceptOptions) -> anyhow::Result<Option<InterceptOptions>> {
    if tls_intercept && !forward_proxy {
        anyhow::bail!("--tls-intercept (tls_intercept) decrypts the forward proxy's tunnels: give --forward-proxy LISTEN too");
    }
    if !tls_intercept {
        let given = [
            ("--ca-dir (ca_dir)", options.ca_dir.is_some()),
            ("--tls-passthrough (tls_passthrough)", !options.passthrough.is_empty()),
            ("--upstream-ca (upstream_ca)", !options.upstream_ca.is_empty()),
            ("--upstream-insecure (upstream_insecure)", options.upstream_insecure),
        ];
        if let Some((name, _)) = given.iter().find(|(_, set)| *set) {
            anyhow::bail!("{name} is an option of --tls-intercept: give --tls-intercept too, or leave it out");
        }
        return Ok(None);
    }
    if options.upstream_insecure && !options.upstream_ca.is_empty() {
        anyhow::bail!("--upstream-insecure verifies nothing, so --upstream-ca would be ignored: give one or the other");
    }
    Ok(Some(options))
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
routes = ["postgres:15432=127.0.0.1:5432,tls=passthrough", "redis:0=127.0.0.1:6379"]
allow_plaintext_listen = true
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
        assert_eq!(c.routes[0].tls, crate::proxy::route::ClientTls::Passthrough, "route options in the file");
        assert_eq!(c.routes[1].upstream, "127.0.0.1:6379");
        assert!(c.allow_plaintext_listen);
        assert_eq!(c.logs, [dir.path().join("app.log"), PathBuf::from("/var/log/other.log")]);
        assert_eq!((c.queue, c.threads, c.block, c.redact.enabled()), (1000, 3, true, false));
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
        assert_eq!((c.queue, c.block, c.redact.enabled()), (DEFAULT_QUEUE, false, true));
        assert_eq!(c.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
        assert_eq!(c.defer, DEFAULT_DEFER);
        assert!(c.routes.is_empty() && c.logs.is_empty());
        let c = resolve(Flags { output: Some("t.mp".into()), defer: Some(u64::MAX), ..Flags::default() }).unwrap();
        assert_eq!(c.defer, MAX_DEFER, "larger budgets are lowered to the largest");
        let e = error_of(Flags::default());
        assert!(e.contains("-o FILE"), "{e}");
    }

    #[test]
    fn redaction_names_from_flags_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "output = \"t.mp\"\nredact_fields = [\"session_id\"]\nredact_headers = [\"X-Tenant-Key\"]\nkeep_fields = [\"key\"]\n");
        let c = resolve(Flags { config: Some(path.clone()), redact: RedactFlags { redact_fields: vec!["otp".into()], ..RedactFlags::default() }, ..Flags::default() }).unwrap();
        let r = &c.redact;
        assert!(r.is_secret_field(b"Session_ID") && r.is_secret_field(b"otp") && r.is_secret_field(b"password"));
        assert!(!r.is_secret_field(b"key"), "kept by the file");
        assert!(r.is_secret_header(b"x-tenant-key") && r.is_secret_header(b"X-Api-Key"));
        let off = resolve(Flags { config: Some(path), redact: RedactFlags { no_redact: true, ..RedactFlags::default() }, ..Flags::default() }).unwrap();
        assert!(!off.redact.enabled() && !off.redact.is_secret_field(b"password"));
        let e = error_of(Flags { output: Some("t.mp".into()), redact: RedactFlags { redact_fields: vec!["a b".into()], ..RedactFlags::default() }, ..Flags::default() });
        assert!(e.contains("--redact-field \"a b\""), "{e}");
    }

    #[test]
    fn max_request_from_flag_file_or_default() {
        let dir = tempfile::tempdir().unwrap();
        let c = resolve(Flags { output: Some("t.mp".into()), ..Flags::default() }).unwrap();
        assert_eq!(c.limits.request_cap, 64 << 20);
        let path = write(dir.path(), "output = \"t.mp\"\nmax_request = \"100KiB\"\n");
        let c = resolve(Flags { config: Some(path.clone()), ..Flags::default() }).unwrap();
        assert_eq!(c.limits.request_cap, 100 << 10);
        let c = resolve(Flags { config: Some(path), max_request: Some(5000), ..Flags::default() }).unwrap();
        assert_eq!(c.limits.request_cap, 5000);
        // A cap over the frame limit raises it: such messages stay decoded.
        let c = resolve(Flags { output: Some("t.mp".into()), max_request: Some(100 << 20), ..Flags::default() }).unwrap();
        assert_eq!((c.limits.request_cap, c.limits.max_frame), (100 << 20, 100 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2 MiB"), Ok(2 << 20));
        assert!(parse_size("3 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_size("0").is_err() && parse_size("MiB").is_err());
        let bad = write(dir.path(), "output = \"t.mp\"\nmax_request = \"lots\"\n");
        assert!(error_of(Flags { config: Some(bad), ..Flags::default() }).contains("max_request"));
    }

    #[test]
    fn invocation_and_forward_proxy_options_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            r#"
output = "t.mp"
routes = ["http:18080=127.0.0.1:8080", "http:18081=127.0.0.1:8081"]
invocations = "openlambda"
fronts = ["18080"]
inject_traceparent = true
forward_proxy = "0"
tls_intercept = true
ca_dir = "ca"
tls_passthrough = ["pinned.example"]
upstream_ca = ["corp.pem"]
"#,
        );
        let c = resolve(Flags { config: Some(path.clone()), ..Flags::default() }).unwrap();
        assert!(matches!(c.invocations, Some(Profile::OpenLambda)));
        assert_eq!(c.fronts, [SocketAddr::from(([127, 0, 0, 1], 18080))]);
        assert!(c.inject_traceparent);
        assert_eq!(c.forward_proxy, Some(SocketAddr::from(([127, 0, 0, 1], 0))));
        let i = c.intercept.expect("tls_intercept = true");
        assert_eq!(i.ca_dir, Some(dir.path().join("ca")), "relative to the file");
        assert_eq!(i.passthrough, ["pinned.example"]);
        assert_eq!(i.upstream_ca, [dir.path().join("corp.pem")]);

        // Flags override, and their lists replace the file's.
        let c = resolve(Flags {
            config: Some(path),
            invocations: Some(None),
            fronts: vec!["127.0.0.1:18081".parse().unwrap()],
            tls_passthrough: vec!["*.internal".into()],
            ..Flags::default()
        })
        .unwrap();
        assert!(c.invocations.is_none(), "--invocations none");
        assert_eq!(c.fronts, [SocketAddr::from(([127, 0, 0, 1], 18081))]);
        assert_eq!(c.intercept.unwrap().passthrough, ["*.internal"]);

        // A flag completes what the file began: the file names passthrough
        // hosts, the command line turns interception on.
        let path = write(dir.path(), "output = \"t.mp\"\ntls_passthrough = [\"pinned.example\"]\n");
        let c = resolve(Flags { config: Some(path), forward_proxy: Some("127.0.0.1:0".parse().unwrap()), tls_intercept: true, ..Flags::default() }).unwrap();
        assert_eq!(c.intercept.unwrap().passthrough, ["pinned.example"]);
    }

    #[test]
    fn wrap_defaults_to_the_auto_profile_with_an_http_route() {
        let http: Route = "http:0=127.0.0.1:8080".parse().unwrap();
        let redis: Route = "redis:0=127.0.0.1:6379".parse().unwrap();
        let base = || Flags { output: Some("t.mp".into()), wrap: true, ..Flags::default() };
        assert!(matches!(resolve(Flags { routes: vec![http.clone()], ..base() }).unwrap().invocations, Some(Profile::Auto)));
        assert!(resolve(Flags { routes: vec![redis], ..base() }).unwrap().invocations.is_none(), "no http route, no invocations");
        let proxy = Flags { routes: vec![http.clone()], wrap: false, ..base() };
        assert!(resolve(proxy).unwrap().invocations.is_none(), "proxy: none unless asked");
        assert!(resolve(Flags { routes: vec![http], invocations: Some(None), ..base() }).unwrap().invocations.is_none());
    }

    #[test]
    fn interception_options_are_checked_on_the_merged_values() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("tls_intercept = true\n", "give --forward-proxy"),
            ("forward_proxy = \"0\"\nupstream_insecure = true\n", "--upstream-insecure (upstream_insecure) is an option of --tls-intercept"),
            ("forward_proxy = \"0\"\ntls_passthrough = [\"a\"]\n", "--tls-passthrough (tls_passthrough) is an option"),
            ("forward_proxy = \"0\"\ntls_intercept = true\nupstream_insecure = true\nupstream_ca = [\"c.pem\"]\n", "give one or the other"),
            ("forward_proxy = \"everywhere\"\n", "forward_proxy: 'everywhere' is not a port"),
            ("invocations = \"lambdaland\"\n", "invocations:"),
            ("fronts = [\"x\"]\n", "fronts: 'x' is not a port"),
        ];
        for (text, expect) in cases {
            let path = write(dir.path(), &format!("output = \"t.mp\"\n{text}"));
            let e = error_of(Flags { config: Some(path), ..Flags::default() });
            assert!(e.contains(expect), "{text:?}: {e}");
        }
        let e = error_of(Flags { output: Some("t.mp".into()), ca_dir: Some("ca".into()), ..Flags::default() });
        assert!(e.contains("--ca-dir (ca_dir) is an option of --tls-intercept"), "{e}");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("outptu = \"t.mp\"\n", "unknown field `outptu`"),
            ("queue = \"lots\"\n", "invalid type"),
            ("routes = [\"smtp:25=x:25\"]\noutput = \"t.mp\"\n", "unknown protocol 'smtp'"),
            ("routes = [\"postgres:0=x:5432,tls=maybe\"]\noutput = \"t.mp\"\n", "tls=maybe"),
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
