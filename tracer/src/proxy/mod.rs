//! `oltrace proxy`: recording proxies.
//!
//! - [`route`]: `--route PROTO:LISTEN=UPSTREAM` parsing.
//! - [`forward`]: tokio tasks that accept, connect upstream and forward
//!   bytes both ways untouched, offering a copy to the recorder.
//! - [`tap`]: what forwarders hand the recorder, through a queue that
//!   never blocks them (unless `--block` asks it to).
//! - [`recorder`]: the thread that decodes the copies with `wire`, turns
//!   events into trace records (the `convert` crate) and writes the trace.
//! - `run`: the command: start, wait for SIGINT/SIGTERM, drain, summarise;
//!   and the steps `oltrace wrap` shares (recording, routes, summary).

pub mod forward;
pub mod recorder;
pub mod route;
pub mod tap;
mod run;

pub use run::{run, start_recording, start_routes, ProxyConfig, Recording, Routes};
