//! The `oltrace proxy` command, and the pieces `oltrace wrap` shares with
//! it: open the trace and start the recorder, start the routes, stop them,
//! and finish with a summary.

use super::forward::{accept_loop, Front};
use super::intercept::{Intercept, InterceptOptions};
use super::profiles::Profile;
use super::recorder::{self, RecorderOptions, Summary};
use super::tap::Tap;
use super::workers::{WorkerThreads, Workers};
use super::route::Route;
use super::tls::RouteTls;
use crate::Outcome;
use std::net::SocketAddr;
use std::path::PathBuf;
use super::spool::SpoolOptions;
use super::spool_file;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

pub struct ProxyConfig {
    pub routes: Vec<Route>,
    pub output: PathBuf,
    /// What is blanked in the trace (`--no-redact`: nothing).
    pub redact: convert::redact::Rules,
    /// Spool to `TRACE.spool`, so a killed recording can be recovered
    /// (`--no-spool`: an unnamed file, lost with the process).
    pub spool: bool,
    /// How long connecting to an upstream may take (`--connect-timeout`).
    pub connect_timeout: Duration,
    /// Notes the recorder queue holds before data is dropped (as gaps).
    pub queue: usize,
    /// How long open connections may go on after SIGINT/SIGTERM.
    pub drain_timeout: Duration,
    pub limits: wire::Limits,
    pub source_name: String,
    /// `--forward-proxy`: where the HTTP forward proxy listens, if at all.
    pub forward_proxy: Option<SocketAddr>,
    /// `--tls-intercept` (with its options): decrypt the forward proxy's
    /// CONNECT tunnels.
    pub intercept: Option<InterceptOptions>,
    /// `--invocations`: the `http` routes that front a worker (all of them,
    /// or those `fronts` names), and this profile names their invocations.
    pub invocations: Option<Profile>,
    /// `--front LISTEN`: the listen addresses of the `http` routes that
    /// front a worker; empty means every `http` route.
    pub fronts: Vec<SocketAddr>,
    /// `--inject-traceparent`: add `traceparent` to invocation requests
    /// that have none (needs `invocations`).
    pub inject_traceparent: bool,
    /// Wait for room in a full recorder queue instead of dropping (`--block`).
    pub block: bool,
    /// Log files to fold into the trace as they grow (`--log`).
    pub logs: Vec<PathBuf>,
    /// Forwarding threads (`--threads`).
    pub threads: usize,
    /// How far decoding may fall behind busy traffic, in bytes (`--defer`).
    pub defer: u64,
    /// `--allow-plaintext-listen`: postgres routes may decline TLS on
    /// listeners other hosts can reach.
    pub allow_plaintext_listen: bool,
}

impl ProxyConfig {
    /// Whether `route` fronts a worker (when there are invocations at all).
    fn fronts_worker(&self, route: &Route) -> bool {
        route.protocol == wire::Protocol::Http && (self.fronts.is_empty() || self.fronts.contains(&route.listen))
    }

    /// The profile of each route that fronts a worker, by route name.
    fn invocation_routes(&self) -> std::collections::HashMap<String, Arc<Profile>> {
        let Some(profile) = &self.invocations else { return Default::default() };
        let profile = Arc::new(profile.clone());
        self.routes.iter().filter(|r| self.fronts_worker(r)).map(|r| (r.name.clone(), profile.clone())).collect()
    }

    /// `--front` needs `--invocations`, and each must name an `http` route.
    fn check_fronts(&self) -> anyhow::Result<()> {
        if self.fronts.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(self.invocations.is_some(), "--front needs --invocations PROFILE: it says which http routes' requests are invocations");
        let http: Vec<&Route> = self.routes.iter().filter(|r| r.protocol == wire::Protocol::Http).collect();
        for front in &self.fronts {
            anyhow::ensure!(
                http.iter().any(|r| r.listen == *front),
                "--front {front}: no http route listens there (http routes: {})",
                if http.is_empty() { "none".to_string() } else { http.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ") }
            );
        }
        Ok(())
    }

    /// A route that declines TLS on a listener other hosts can reach makes
    /// their clients send passwords and queries in plaintext: it must be
    /// asked for by name.
    fn check_plaintext_listeners(&self) -> anyhow::Result<()> {
        if let Some(r) = self.routes.iter().find(|r| r.declines_tls_off_loopback()).filter(|_| !self.allow_plaintext_listen) {
            anyhow::bail!(
                "route {}: tls=decline on {}, not a loopback address, tells clients on other hosts to send passwords and queries in plaintext; \
                 listen on 127.0.0.1, or add ,tls=passthrough to the route, or give --allow-plaintext-listen (allow_plaintext_listen = true) to accept it",
                r.name,
                r.listen
            );
        }
        Ok(())
    }
}

/// A trace being written by the recorder thread.
pub struct Recording {
    pub tap: Tap,
    /// `--tls-intercept`: the CA and upstream TLS the forward proxy uses.
    pub intercept: Option<Arc<Intercept>>,
    recorder: std::thread::JoinHandle<Summary>,
    /// Set to stop decoding at once (a second SIGINT), leaving the rest in
    /// the spool.
    pub stop_decoding: Arc<AtomicBool>,
}

/// Creates the trace and starts the recorder. `meta` goes into the header.
pub fn start_recording(config: &ProxyConfig, meta: &[(&str, String)]) -> anyhow::Result<Recording> {
    // Before the trace is created: a bad --front must not leave a file.
    config.check_fronts()?;
    config.check_plaintext_listeners()?;
    // Certificates and keys are read (and checked) again as the routes
    // start; here so that a bad one leaves no trace file.
    for route in &config.routes {
        RouteTls::for_route(route)?;
    }
    anyhow::ensure!(
        config.intercept.is_none() || config.forward_proxy.is_some(),
        "--tls-intercept needs --forward-proxy LISTEN: it decrypts that proxy's CONNECT tunnels"
    );
    let intercept = config.intercept.as_ref().map(Intercept::start).transpose()?.map(Arc::new);
    let spool_path = spool_file::path_for(&config.output);
    anyhow::ensure!(
        !spool_file::in_use(&spool_path),
        "{} is being recorded by another oltrace (its spool {} is in use): choose another -o",
        config.output.display(),
        spool_path.display()
    );
    anyhow::ensure!(
        !spool_path.exists(),
        "{} has a spool left over from a recording that did not finish ({}): run `oltrace recover {}` to decode it into the trace first (or delete the spool to discard it)",
        config.output.display(),
        spool_path.display(),
        config.output.display()
    );
    let clock = Instant::now();
    let mut header = format::Header::new(&format!("oltrace {}", env!("CARGO_PKG_VERSION")), &config.source_name);
    let routes: Vec<String> = config.routes.iter().map(|r| format!("{}={}{}", r.name, r.upstream, r.tls_options())).collect();
    header.meta.insert("routes".into(), routes.join(" "));
    header.meta.insert("redact".into(), config.redact.enabled().to_string());
    header.redaction = Some(config.redact.record("oltrace proxy"));
    if let Some(p) = &config.invocations {
        header.meta.insert("invocations".into(), p.name().to_string());
    }
    if let Some(addr) = config.forward_proxy {
        header.meta.insert("forward_proxy".into(), addr.to_string());
    }
    if let Some(i) = &config.intercept {
        // The mode and the hosts left alone; never key material.
        let passthrough = if i.passthrough.is_empty() { String::new() } else { format!(", passthrough {}", i.passthrough.join(" ")) };
        header.meta.insert("tls_intercept".into(), format!("on{passthrough}"));
    }
    for (k, v) in meta {
        // A wrapped command's line may carry a secret (`curl -H
        // 'Authorization: ...'`, `password=...`): blanked as log lines are.
        let mut v = v.clone();
        convert::redact::log_line(&config.redact, &mut v);
        header.meta.insert(k.to_string(), v);
    }
    let writer = format::Writer::create(&config.output, &header, format::WriterOptions::default())
        .map_err(|e| anyhow::anyhow!("cannot create the trace: {e}"))?;
    let stop_decoding = Arc::new(AtomicBool::new(false));
    let opts = RecorderOptions {
        queue: config.queue,
        redact: config.redact.clone(),
        limits: config.limits,
        flush_interval: Duration::from_millis(100),
        defer: config.defer,
        invocation_routes: config.invocation_routes(),
        stop_decoding: stop_decoding.clone(),
        progress: true,
    };
    // The spool goes beside the trace (same file system, so the same free
    // space the user chose).
    let dir = match config.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (trace, trace_len) = spool_file::trace_id(&config.output).map_err(|e| anyhow::anyhow!("cannot read back the trace just created: {e}"))?;
    let spool = SpoolOptions { path: config.spool.then(|| spool_path.clone()), dir, trace, redact: config.redact.enabled(), trace_len };
    let (tap, recorder) = recorder::start(writer, clock, opts, spool)
        .map_err(|e| anyhow::anyhow!("cannot create the spool {}: {e} (it goes beside the trace: is that directory writable?)", spool_path.display()))?;
    let tap = tap.blocking(config.block);
    Ok(Recording { tap, intercept, recorder, stop_decoding })
}

impl Recording {
    /// Waits for the recorder to write everything (every `Tap` clone must be
    /// gone), prints the summary, and fails if recording stopped early.
    pub fn finish(self, config: &ProxyConfig) -> anyhow::Result<Summary> {
        drop(self.tap);
        let summary = self.recorder.join().map_err(|_| anyhow::anyhow!("the recorder thread panicked"))?;
        print_summary(&summary, config);
        match &summary.error {
            Some(e) => Err(anyhow::anyhow!("recording stopped early: {e}; the trace holds what was written before")),
            None => Ok(summary),
        }
    }
}

/// The routes, listening.
pub struct Routes {
    /// Where each route listens, in `--route` order.
    pub addrs: Vec<SocketAddr>,
    /// Where the forward proxy listens, if there is one.
    pub forward_proxy: Option<SocketAddr>,
    stop: tokio::sync::watch::Sender<bool>,
    loops: JoinSet<()>,
    workers: Workers,
    threads: WorkerThreads,
}

/// Binds every route and starts accepting.
pub async fn start_routes(config: &ProxyConfig, recording: &Recording) -> anyhow::Result<Routes> {
    let tap = &recording.tap;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (workers, threads) = Workers::start(config.threads)?;
    let next_conn = Arc::new(AtomicU64::new(0));
    let mut loops = JoinSet::new();
    let mut addrs = Vec::new();
    anyhow::ensure!(
        !config.inject_traceparent || config.invocations.is_some(),
        "--inject-traceparent needs --invocations PROFILE: it adds the header to invocations only"
    );
    let invocations = config.invocations.clone().map(Arc::new);
    for route in &config.routes {
        let listener = tokio::net::TcpListener::bind(route.listen).await.map_err(|e| {
            anyhow::anyhow!("route {}: cannot listen on {}: {e} (is the port in use? pick another LISTEN)", route.name, route.listen)
        })?;
        let addr = listener.local_addr()?;
        eprintln!("oltrace: {} listening on {} -> {}", route.name, addr, route.upstream);
        if route.declines_tls_off_loopback() {
            eprintln!(
                "oltrace: warning: {} declines TLS on {addr}, which other hosts can reach: their clients send passwords and queries in plaintext (--allow-plaintext-listen)",
                route.name
            );
        }
        addrs.push(addr);
        let front = match &invocations {
            Some(profile) if config.fronts_worker(route) => Some(Front { profile: profile.clone(), inject: config.inject_traceparent }),
            _ => None,
        };
        let tls = RouteTls::for_route(route)?;
        let (route, tap, next_conn, stop) = (Arc::new(route.clone()), tap.clone(), next_conn.clone(), stop_rx.clone());
        let (drain, workers, connect_timeout) = (config.drain_timeout, workers.clone(), config.connect_timeout);
        loops.spawn(async move {
            let mut conns = JoinSet::new();
            accept_loop(route, tls, front, listener, tap, next_conn, &workers, &mut conns, stop, connect_timeout).await;
            // Stopped accepting: let open connections finish, for a while.
            let _ = tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} }).await;
            conns.shutdown().await;
        });
    }
    let mut forward_proxy = None;
    if let Some(listen) = config.forward_proxy {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            anyhow::anyhow!("--forward-proxy: cannot listen on {listen}: {e} (is the port in use? pick another LISTEN)")
        })?;
        let addr = listener.local_addr()?;
        eprintln!("oltrace: forward proxy listening on {addr}");
        forward_proxy = Some(addr);
        let name = Arc::new(format!("forward-proxy:{listen}"));
        let (tap, next_conn, stop, drain, workers) = (tap.clone(), next_conn.clone(), stop_rx.clone(), config.drain_timeout, workers.clone());
        let (connect_timeout, intercept) = (config.connect_timeout, recording.intercept.clone());
        if intercept.is_some() {
            eprintln!("oltrace: forward proxy: intercepting TLS of CONNECT tunnels; clients must trust {}", recording.intercept.as_ref().map(|i| i.ca_cert().display().to_string()).unwrap_or_default());
        }
        loops.spawn(async move {
            let mut conns = JoinSet::new();
            super::forward_proxy::accept_loop(name, listener, tap, next_conn, &workers, &mut conns, stop, connect_timeout, intercept).await;
            let _ = tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} }).await;
            conns.shutdown().await;
        });
    }
    Ok(Routes { addrs, forward_proxy, stop, loops, workers, threads })
}

impl Routes {
    /// Stops accepting and waits (up to the drain timeout) for open
    /// connections.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.loops.join_next().await.is_some() {}
        // Every connection has ended or been cancelled: end the threads.
        drop(self.workers);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || threads.join()).await;
    }
}

pub fn run(config: &ProxyConfig) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        !config.routes.is_empty() || config.forward_proxy.is_some(),
        "no routes: give at least one --route PROTO:LISTEN=UPSTREAM, or --forward-proxy LISTEN (or routes = [...] in the --config file)"
    );
    let recording = start_recording(config, &[])?;
    // Listeners, signals and log files; connections run on the forwarding
    // threads (see `workers`).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let served = runtime.block_on(async {
        // Handlers first: a SIGINT sent as soon as "listening" shows must
        // not find the default action (death) still in place.
        let signalled = wait_for_signal()?;
        stop_decoding_on_second_sigint(&recording.stop_decoding)?;
        let routes = start_routes(config, &recording).await?;
        let logs = crate::logfollow::LogFiles::start(&config.logs, &recording.tap);
        signalled.await;
        logs.stop().await;
        eprintln!("oltrace proxy: stopping: no new connections; waiting up to {:?} for open ones", config.drain_timeout);
        routes.stop().await;
        anyhow::Ok(())
    });
    drop(runtime);
    let finished = recording.finish(config);
    served?;
    finished.map(|_| Outcome::Clean)
}

/// A second SIGINT stops decoding at once (the rest stays in the spool
/// for `oltrace recover`). The listener runs on a thread of its own, since
/// decoding goes on after the runtime is gone; it counts SIGINTs from
/// now (the first one stops the traffic, see [`wait_for_signal`]), and is
/// listening when this returns.
fn stop_decoding_on_second_sigint(stop: &Arc<AtomicBool>) -> anyhow::Result<()> {
    let stop = stop.clone();
    let (ready, listening) = std::sync::mpsc::channel();
    std::thread::Builder::new().name("oltrace-sigint".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
            let _ = ready.send(());
            let Ok(mut int) = int else { return };
            int.recv().await;
            int.recv().await;
            eprintln!("oltrace: second SIGINT: decoding stops now; the rest stays in the spool for `oltrace recover`");
            stop.store(true, Ordering::Relaxed);
        });
    })?;
    let _ = listening.recv();
    Ok(())
}

/// Installs the SIGINT and SIGTERM handlers now; the future completes at
/// the first of them.
fn wait_for_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}

fn print_summary(s: &Summary, config: &ProxyConfig) {
    let exchanges: Vec<String> = s.exchanges.iter().map(|(p, n)| format!("{p} {n}")).collect();
    eprintln!(
        "oltrace: {} connections, exchanges: {}, bytes {} to servers / {} to clients, {} log lines, {} records in {}",
        s.connections,
        if exchanges.is_empty() { "none".to_string() } else { exchanges.join(", ") },
        s.bytes_to_server,
        s.bytes_to_client,
        s.log_lines,
        s.records,
        config.output.display()
    );
    if s.dropped_bytes > 0 || s.gaps > 0 {
        eprintln!(
            "oltrace: the recorder fell behind: {} bytes forwarded but not recorded ({} gaps in the trace); raise --queue",
            s.dropped_bytes, s.gaps
        );
    }
    if s.invocations > 0 || !s.attributed.is_empty() || s.unattributed > 0 {
        let by: Vec<String> = s.attributed.iter().map(|(m, n)| format!("{m} {n}")).collect();
        eprintln!(
            "oltrace: {} invocations; downstream exchanges attributed: {}; unattributed: {}",
            s.invocations,
            if by.is_empty() { "none".to_string() } else { by.join(", ") },
            s.unattributed
        );
    }
    if s.peak_backlog >= 1 << 20 {
        eprintln!(
            "oltrace: decoding ran up to {:.1} MB behind the traffic (spooled, then caught up)",
            s.peak_backlog as f64 / 1e6
        );
    }
    if !s.tls.is_empty() {
        let modes: Vec<String> = s.tls.iter().map(|(m, n)| format!("{m} {n}")).collect();
        let opaque = if s.tls.contains_key(format::TlsMode::Passthrough.name()) { " (passthrough: recorded as opaque bytes)" } else { "" };
        eprintln!("oltrace: TLS on the clients' side: {}{opaque}", modes.join(", "));
    }
    if let Some((path, bytes)) = &s.spool_left {
        eprintln!(
            "oltrace: {:.1} MB not decoded yet are in {}: run `oltrace recover {}` to decode them into the trace",
            *bytes as f64 / 1e6,
            path.display(),
            config.output.display()
        );
    }
    if s.fallbacks > 0 {
        let first = s.first_fallback.as_deref().unwrap_or("?");
        eprintln!(
            "oltrace: {} connections switched to opaque recording, the first because {first} (see `oltrace cat --kind fallback`)",
            s.fallbacks
        );
    }
}
