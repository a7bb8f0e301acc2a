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
        let routes = start_routes(&config.proxy, &recording.tap).await?;
        let logs = crate::logfollow::LogFiles::start(&config.proxy.logs, &recording.tap);
        let named: Vec<_> = config.proxy.routes.iter().zip(&routes.addrs).map(|(r, a)| (r.protocol, r.name.clone(), *a)).collect();
        let mut env = route_environment(&named, |k| std::env::var(k).ok());
        env.extend(routes.forward_proxy.map(forward_proxy_environment).unwrap_or_default());
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
        assert_eq!(replace_authority("postgres://u:p@db.example:5432/app?sslmode=disable", "127.0.0.1:40001").unwrap(), "postgres://u:p@127.0.0.1:40001/app?sslmode=disable");
        assert_eq!(replace_authority("redis://cache:6379", "127.0.0.1:40002").unwrap(), "redis://127.0.0.1:40002");
        assert_eq!(replace_authority("redis://:secret@cache/2", "127.0.0.1:1").unwrap(), "redis://:secret@127.0.0.1:1/2");
        assert_eq!(replace_authority("not a url", "x:1"), None);
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
