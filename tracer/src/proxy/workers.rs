//! Forwarding threads: each runs its own single-threaded tokio runtime and
//! owns the connections handed to it for their whole life.
//!
//! Why not tokio's multi-threaded runtime: its work stealing moves a
//! connection's task between threads and wakes idle threads to steal, which
//! under redis-benchmark `-P 16` cost 90,000 futex calls, 117,000
//! `epoll_wait`s and 172,000 context switches per 2 million commands, where
//! haproxy (a thread owning each connection) made no futex call and 29,000
//! context switches. With threads that own their connections, forwarding
//! used 1.0-1.1x haproxy's CPU per command instead of 1.6x (measured with
//! `perf stat` on an opaque `tcp:` route; see docs/recording.md).
//!
//! Listeners and signals stay on the main thread's runtime; each accepted
//! connection is handed, as a plain socket, to the next thread in turn,
//! which registers it with its own reactor (so its wake-ups never cross
//! threads).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::task::JoinSet;

/// The default number of forwarding threads: one per core (as haproxy's
/// default), at most 16. On 2 cores, one thread held wrk and unpipelined
/// redis-benchmark to 0.7-0.8 of haproxy's throughput, two reached
/// 0.93-1.08. (The recorder, at idle priority, does not compete.)
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    cores.clamp(1, 16)
}

/// The forwarding threads. Cloning shares them.
#[derive(Clone)]
pub struct Workers {
    inner: Arc<Inner>,
}

struct Inner {
    handles: Vec<Handle>,
    next: AtomicUsize,
    /// Dropping these ends the threads' runtimes.
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// Joins the threads once every [`Workers`] clone is gone.
pub struct WorkerThreads(Vec<std::thread::JoinHandle<()>>);

impl Workers {
    /// Starts `n` (at least one) forwarding threads.
    pub fn start(n: usize) -> std::io::Result<(Workers, WorkerThreads)> {
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            stops.push(stop);
            threads.push(std::thread::Builder::new().name(format!("oltrace-fwd-{i}")).spawn(move || {
                // Runs the connections spawned onto this runtime until told
                // to stop; dropping the runtime then cancels what is left.
                let _ = runtime.block_on(stopped);
            })?);
        }
        let inner = Arc::new(Inner { handles, next: AtomicUsize::new(0), _stops: stops });
        Ok((Workers { inner }, WorkerThreads(threads)))
    }

    /// Spawns `task` into `tasks` on the next thread in turn.
    pub fn spawn<F>(&self, tasks: &mut JoinSet<()>, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.handles.len();
        tasks.spawn_on(task, &self.inner.handles[i]);
    }
}

impl WorkerThreads {
    /// Waits for the threads to end (every `Workers` clone must be dropped
    /// first, or this waits forever).
    pub fn join(self) {
        for t in self.0 {
            let _ = t.join();
        }
    }
}

/// A socket accepted on another thread's runtime, moved to this one's.
/// Must be called from within the runtime that will drive it.
pub fn adopt(stream: std::net::TcpStream) -> std::io::Result<tokio::net::TcpStream> {
    tokio::net::TcpStream::from_std(stream)
}
