//! `replayer`: the library behind `olreplay`, which re-drives a recorded
//! trace against a backend.
//!
//! How a replay goes ([`run::run`]):
//!
//! 1. [`load`] reads the trace (what a `format::view::Filter` keeps) into
//!    one script per recorded connection ([`load`]'s `script` module, step by step):
//!    the client's messages to re-send, in order, each knowing which
//!    responses the client had waited for, and the recorded exchanges they
//!    should produce. Damage and what cannot be replayed are counted.
//! 2. [`target`] decides where each connection goes (`--target`, else the
//!    recorded upstream) and with which credentials.
//! 3. [`run`] schedules the connections ([`run::Timing`]: recorded times
//!    scaled by `--speed`, a fixed `--rate`, or `--max`), and [`session`]
//!    replays each one on its own task, redoing authentication, then
//!    driving [`session::machine::Replay`] (a sans-IO state machine that
//!    decides what is sent when, tested on virtual time) with the socket's
//!    bytes and wake-ups, sending on time ([`timer`] for sub-millisecond
//!    deadlines) and decoding the
//!    responses with the recorder's own codecs, over TCP or TLS
//!    ([`session::transport`], for targets with `sslmode=require`); a
//!    connection whose replies the codec gives up on (e.g. nested past the
//!    RESP depth limit) fails at once with the codec's reason.
//! 4. Each exchange goes through [`compare::compare_exchange`] (with
//!    [`noise`] rules, scoped ones included) into the [`report`], which
//!    also holds the driver's figures and renders text, JSON and JUnit.
//!    `--learn-noise` ([`learn`]) replays twice and
//!    [`noise::NoiseRules::learn`]s from what differed between the two.
//!
//! - [`model`]: what the driver hands comparison and the report.
//! - [`classify`]: writes (for `--read-only`); shared with olanalyze, in
//!   `convert::classify`.

pub use convert::classify;
pub mod compare;
pub mod learn;
pub mod load;
pub mod model;
pub mod noise;
pub mod report;
pub mod run;
pub mod session;
pub mod target;
pub mod timer;
