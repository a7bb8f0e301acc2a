//! `oltrace proxy`: recording proxies.
//!
//! - [`route`]: `--route PROTO:LISTEN=UPSTREAM` parsing.
//! - [`forward`]: tokio tasks that accept, connect upstream and forward
//!   bytes both ways untouched, offering a copy to the recorder.
//! - [`pg_opening`]: a PostgreSQL connection's opening, where the proxy
//!   declines, accepts or passes on the client's request for TLS (`tls=`)
//!   and asks the server for its own (`upstream-tls=`).
//! - [`tls`]: the rustls configurations those use, built per route.
//! - [`refusal`]: what a PostgreSQL or Redis client is told, in its
//!   protocol, when its upstream cannot be reached or its TLS fails.
//! - [`tap`]: what forwarders hand the recorder, through a queue that
//!   never blocks them (unless `--block` asks it to).
//! - [`workers`]: the forwarding threads, one single-threaded runtime
//!   each, owning the connections handed to them.
//! - [`spool`]: where the copies wait, on disk, for the recorder, so that
//!   decoding runs behind the traffic at idle CPU priority, and survives
//!   the process (`TRACE.spool`, checkpointed as the trace is flushed).
//! - [`spool_file`]: the spool's layout: header (the trace's identity, the
//!   checkpoint), checksummed frames, and the scan `oltrace recover` reads
//!   it with.
//! - [`progress`]: the progress bar of decoding the backlog at a graceful
//!   stop.
//! - [`pacer`]: when the recorder decodes: in the traffic's pauses, not
//!   while it is busy (`--defer`).
//! - [`recorder`]: the threads that spool the copies, then decode them
//!   with `wire`, turn events into trace records (the `convert` crate) and
//!   write the trace.
//! - [`forward_proxy`]: `--forward-proxy`: an HTTP forward proxy for the
//!   lambdas' outbound calls (absolute-form requests and CONNECT tunnels).
//! - [`intercept`]: `--tls-intercept`: CONNECT tunnels decrypted with
//!   per-host certificates from the proxy's CA, recorded as HTTP.
//! - [`profiles`]: platform profiles naming invocations (`/run/<name>`...).
//! - [`inject`]: `--inject-traceparent`, adding `traceparent` to
//!   invocation requests as they are forwarded.
//! - [`attribution`]: tying downstream calls to the invocation that made
//!   them (traceparent, sqlcommenter, or the only invocation in flight).
//! - `run`: the command: start, wait for SIGINT/SIGTERM, drain, summarise;
//!   and the steps `oltrace wrap` shares (recording, routes, summary).

pub mod attribution;
pub mod forward;
pub mod forward_proxy;
pub mod inject;
pub mod intercept;
pub mod pacer;
pub mod pg_opening;
pub mod profiles;
pub mod progress;
pub mod recorder;
pub mod refusal;
pub mod route;
pub mod spool;
pub mod spool_file;
pub mod tap;
pub mod tls;
pub mod workers;
mod run;

pub use run::{run, start_recording, start_routes, ProxyConfig, Recording, Routes};
