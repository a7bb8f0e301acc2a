//! `replayer`: the library behind `olreplay`, which re-drives a recorded
//! trace against a backend.
//!
//! - [`model`]: what the driver hands comparison and the report.
//! - [`compare`]: a replayed response against the recorded one.
//! - [`noise`]: rules for expected differences, loaded or learned.
//! - [`report`]: counts, differences, latencies, lateness; text/JSON/JUnit.

pub mod compare;
pub mod model;
pub mod noise;
pub mod report;
