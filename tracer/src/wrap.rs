//! `oltrace wrap`: runs a worker with its database traffic routed through
//! recording proxies, and records its output as log lines.
//!
//! The routes start first; then the command runs with an environment that
//! points at them (see [`route_environment`]), its stdout and stderr are
//! passed through line by line and recorded, and SIGINT, SIGTERM and SIGHUP
//! are forwarded to it. When it exits, the routes drain and stop, the trace
//! is flushed, and `oltrace` exits with the command's exit code.

use crate::proxy::tap::{Note, Tap};
use crate::proxy::{start_recording, start_routes, ProxyConfig};
use crate::Outcome;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

pub struct WrapConfig {
    pub proxy: ProxyConfig,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// The environment variables that send a worker's clients through the
/// routes, given the variables it would otherwise get (`get`). For the
/// first route of each protocol:
///
/// - `postgres`: `PGHOST` and `PGPORT` (libpq and most drivers read them),
///   and `DATABASE_URL`, if set, with its host and port replaced;
/// - `redis`: `REDIS_URL`, its host and port replaced if set, else
///   `redis://LISTEN`;
///
/// and `OLTRACE_ROUTES`, every route as `NAME=LISTEN`, space separated.
/// HTTP routes change nothing: the gateway, not the worker, is pointed at
/// them.
pub fn route_environment(
    routes: &[(wire::Protocol, String, SocketAddr)],
    get: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let first = |p: wire::Protocol| routes.iter().find(|(q, _, _)| *q == p).map(|(_, _, a)| *a);
    if let Some(addr) = first(wire::Protocol::Postgres) {
        env.push(("PGHOST".into(), addr.ip().to_string()));
        env.push(("PGPORT".into(), addr.port().to_string()));
        if let Some(url) = get("DATABASE_URL").and_then(|u| replace_authority(&u, &addr.to_string())) {
            env.push(("DATABASE_URL".into(), url));
        }
    }
    if let Some(addr) = first(wire::Protocol::Redis) {
        let url = get("REDIS_URL")
            .and_then(|u| replace_authority(&u, &addr.to_string()))
            .unwrap_or_else(|| format!("redis://{addr}"));
        env.push(("REDIS_URL".into(), url));
    }
    let all: Vec<String> = routes.iter().map(|(_, name, addr)| format!("{name}={addr}")).collect();
    env.push(("OLTRACE_ROUTES".into(), all.join(" ")));
    env
}

/// With `--forward-proxy`: `HTTP_PROXY`, `HTTPS_PROXY` and their
/// lower-case forms (curl reads only `http_proxy`) point at it, so the
/// worker's outbound HTTP goes through it (CONNECT tunnels for https).
/// `NO_PROXY` is left as it is.
pub fn forward_proxy_environment(addr: SocketAddr) -> Vec<(String, String)> {
    let url = format!("http://{addr}");
    ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"].iter().map(|k| (k.to_string(), url.clone())).collect()
}

/// The variables that name the CA certificates TLS clients trust: OpenSSL
/// and Go (`SSL_CERT_FILE`), Python requests (`REQUESTS_CA_BUNDLE`), curl
/// (`CURL_CA_BUNDLE`). Each replaces its client's trust store, so each gets
/// a bundle: what it named before (the user's value, else the system's
/// bundle) followed by the proxy's CA, so that hosts left alone
/// (`--tls-passthrough`) still verify with their real certificates.
pub const CA_BUNDLE_VARS: [&str; 3] = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"];

/// With `--tls-intercept`: the worker's TLS clients trust the proxy's CA
/// (`ca_pem`) as well as everything they trusted before. A variable the
/// user set is extended, never dropped: its bundle is its file plus the
/// CA. `NODE_EXTRA_CA_CERTS` adds to Node's own roots, so it names the CA
/// alone (or the user's file plus the CA). Bundles are written in `dir`;
/// `system` is the system's bundle, if there is one.
pub fn ca_environment(ca_pem: &Path, dir: &Path, system: Option<&Path>, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Vec<(String, String)>> {
    let ca = std::fs::read(ca_pem).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", ca_pem.display()))?;
    // One bundle per distinct base file.
    let mut bundles: Vec<(Option<PathBuf>, PathBuf)> = Vec::new();
    let mut bundle_of = |base: Option<PathBuf>| -> anyhow::Result<PathBuf> {
        if let Some((_, made)) = bundles.iter().find(|(b, _)| *b == base) {
            return Ok(made.clone());
        }
        let mut text = match &base {
            Some(file) => std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {} to add the CA to it: {e}", file.display()))?,
            None => Vec::new(),
        };
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.extend_from_slice(&ca);
        let made = dir.join(format!("ca-bundle-{}.pem", bundles.len()));
        std::fs::write(&made, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", made.display()))?;
        bundles.push((base, made.clone()));
        Ok(made)
    };
    let mut env = Vec::new();
    for var in CA_BUNDLE_VARS {
        let base = get(var).map(PathBuf::from).or_else(|| system.map(Path::to_path_buf));
        env.push((var.to_string(), bundle_of(base)?.display().to_string()));
    }
    let node = match get("NODE_EXTRA_CA_CERTS") {
        Some(file) => bundle_of(Some(PathBuf::from(file)))?,
        None => ca_pem.to_path_buf(),
    };
    env.push(("NODE_EXTRA_CA_CERTS".into(), node.display().to_string()));
    Ok(env)
}

/// The system's CA bundle, as OpenSSL finds it (`/etc/ssl/certs/ca-certificates.crt`
/// on Debian).
pub fn system_ca_bundle() -> Option<PathBuf> {
    openssl_probe::probe().cert_file.filter(|f| f.is_file())
}

/// `scheme://[user[:pass]@]host[:port][/rest]` with `host[:port]` replaced
/// by `hostport`; `None` when `url` has no `scheme://`.
fn replace_authority(url: &str, hostport: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let userinfo = authority.rfind('@').map(|i| &authority[..=i]).unwrap_or("");
    Some(format!("{scheme}://{userinfo}{hostport}{tail}"))
}

pub fn run(config: &WrapConfig) -> anyhow::Result<Outcome> {
    let program = config.command.first().ok_or_else(|| anyhow::anyhow!("no command: use oltrace wrap [OPTIONS] -- COMMAND [ARGS]"))?;
    let origin = std::path::Path::new(program).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let recording = start_recording(&config.proxy, &[("command", config.command.join(" "))])?;
    // The command's output, signals and listeners; connections run on the
    // forwarding threads.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        let routes = start_routes(&config.proxy, &recording).await?;
        let logs = crate::logfollow::LogFiles::start(&config.proxy.logs, &recording.tap);
        let named: Vec<_> = config.proxy.routes.iter().zip(&routes.addrs).map(|(r, a)| (r.protocol, r.name.clone(), *a)).collect();
        let mut env = route_environment(&named, |k| std::env::var(k).ok());
        env.extend(routes.forward_proxy.map(forward_proxy_environment).unwrap_or_default());
        // Kept until the command ends: the CA bundles it reads.
        let bundles = tempfile::Builder::new().prefix("oltrace-ca-").tempdir()?;
        if let Some(intercept) = &recording.intercept {
            let system = system_ca_bundle();
            if system.is_none() {
                eprintln!("oltrace: warning: no system CA bundle found: the command trusts only oltrace's CA, so --tls-passthrough hosts will fail to verify");
            }
            env.extend(ca_environment(&intercept.ca_cert(), bundles.path(), system.as_deref(), |k| std::env::var(k).ok().filter(|v| !v.is_empty()))?);
        }
        // Before the command starts: a signal that came between its start
        // and these handlers would end oltrace and leave it running.
        let signals = Signals::new()?;
        let mut child = tokio::process::Command::new(program)
            .args(&config.command[1..])
            .envs(env)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot run {program}: {e}"))?;
        let pid = child.id();
        let out = tokio::spawn(pass_lines(child.stdout.take().expect("piped"), tokio::io::stdout(), format::LogStream::Stdout, origin.clone(), recording.tap.clone()));
        let err = tokio::spawn(pass_lines(child.stderr.take().expect("piped"), tokio::io::stderr(), format::LogStream::Stderr, origin.clone(), recording.tap.clone()));
        let status = signals.forward_until_exit(&mut child, pid).await?;
        let _ = out.await;
        let _ = err.await;
        logs.stop().await;
        routes.stop().await;
        drop(bundles);
        anyhow::Ok(status)
    });
    drop(runtime);
    let finished = recording.finish(&config.proxy);
    let status = result?;
    finished?;
    // The command's own exit code; 128 + N when a signal N ended it.
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(if code == 0 { Outcome::Clean } else { Outcome::Exit(code.clamp(1, 255) as u8) })
}

/// Copies `from` to `to` line by line, recording each line.
async fn pass_lines(from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, stream: format::LogStream, origin: String, tap: Tap) {
    let mut lines = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let ts = tap.now();
        // Passing the output on comes first; recording never holds it up for long.
        let _ = to.write_all(&line).await;
        let _ = to.flush().await;
        let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line));
        let text = text.strip_suffix('\r').unwrap_or(&text).to_string();
        tap.send_control(Note::Log { origin: origin.clone(), stream, text, ts });
    }
}

/// The signals `oltrace wrap` passes on to the command.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Takes SIGINT, SIGTERM and SIGHUP over from their default action.
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())?, hup: signal(SignalKind::hangup())? })
    }

    /// Passes each signal on to `pid` until `child` exits.
    async fn forward_until_exit(mut self, child: &mut tokio::process::Child, pid: Option<u32>) -> anyhow::Result<std::process::ExitStatus> {
        loop {
            let sig = tokio::select! {
                status = child.wait() => return Ok(status?),
                _ = self.int.recv() => libc::SIGINT,
                _ = self.term.recv() => libc::SIGTERM,
                _ = self.hup.recv() => libc::SIGHUP,
            };
            if let Some(pid) = pid {
                unsafe { libc::kill(pid as i32, sig) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_point_at_the_route() {
        assert_eq!(replace_authority("postgres://u:p@db.example:5432/app?application_name=w", "127.0.0.1:40001").unwrap(), "postgres://u:p@127.0.0.1:40001/app?application_name=w");
        assert_eq!(replace_authority("redis://cache:6379", "127.0.0.1:40002").unwrap(), "redis://127.0.0.1:40002");
        assert_eq!(replace_authority("redis://:secret@cache/2", "127.0.0.1:1").unwrap(), "redis://:secret@127.0.0.1:1/2");
        assert_eq!(replace_authority("not a url", "x:1"), None);
    }

    #[test]
    fn ca_variables_extend_what_was_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let (ca, system, mine) = (file("ca.pem", "CA\n"), file("system.pem", "SYSTEM"), file("mine.pem", "MINE\n"));
        let out = tempfile::tempdir().unwrap();
        let mine_text = mine.display().to_string();
        let env = ca_environment(&ca, out.path(), Some(&system), |k| (k == "REQUESTS_CA_BUNDLE").then(|| mine_text.clone())).unwrap();
        let read = |k: &str| read_of(&env, k);
        assert_eq!(read("SSL_CERT_FILE"), "SYSTEM\nCA\n");
        assert_eq!(read("CURL_CA_BUNDLE"), "SYSTEM\nCA\n");
        assert_eq!(read("REQUESTS_CA_BUNDLE"), "MINE\nCA\n", "the user's own bundle is kept, the CA added");
        assert_eq!(env.iter().find(|(n, _)| n == "NODE_EXTRA_CA_CERTS").unwrap().1, ca.display().to_string(), "additive: the CA alone");
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 2, "one bundle per distinct base");
        let env = ca_environment(&ca, out.path(), None, |_| None).unwrap();
        assert_eq!(read_of(&env, "SSL_CERT_FILE"), "CA\n", "no system bundle: the CA alone");
    }

    fn read_of(env: &[(String, String)], k: &str) -> String {
        std::fs::read_to_string(&env.iter().find(|(n, _)| n == k).unwrap().1).unwrap()
    }

    #[test]
    fn environment_for_routes() {
        let pg: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let rd: SocketAddr = "127.0.0.1:40002".parse().unwrap();
        let routes = vec![(wire::Protocol::Postgres, "postgres:127.0.0.1:0".to_string(), pg), (wire::Protocol::Redis, "redis:127.0.0.1:0".to_string(), rd)];
        let env = route_environment(&routes, |k| (k == "DATABASE_URL").then(|| "postgresql://app@db:5432/orders".to_string()));
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PGHOST"), Some("127.0.0.1"));
        assert_eq!(get("PGPORT"), Some("40001"));
        assert_eq!(get("DATABASE_URL"), Some("postgresql://app@127.0.0.1:40001/orders"));
        assert_eq!(get("REDIS_URL"), Some("redis://127.0.0.1:40002"));
        assert_eq!(get("OLTRACE_ROUTES"), Some("postgres:127.0.0.1:0=127.0.0.1:40001 redis:127.0.0.1:0=127.0.0.1:40002"));
    }
}
