//! `oltrace cat`: records as JSON lines on stdout, damage on stderr.

use format::view::{Filter, View, STREAM_RETENTION_NS};
use crate::{json::record_json, open_trace, Outcome};
use std::io::Write;
use std::path::PathBuf;

pub struct CatConfig {
    pub files: Vec<PathBuf>,
    pub filter: Filter,
    /// Print at most this many records.
    pub limit: Option<u64>,
}

pub fn run(config: &CatConfig, out: &mut impl Write) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::Clean;
    let mut printed = 0u64;
    for path in &config.files {
        let reader = open_trace(path)?;
        let mut view = View::with_retention(STREAM_RETENTION_NS);
        for item in reader {
            match item {
                Ok(record) => {
                    let seen = view.observe(&record);
                    if !config.filter.keeps(&record, &seen) {
                        continue;
                    }
                    let protocol = seen.conn.map(|c| c.protocol);
                    if config.limit.is_some_and(|l| printed >= l) {
                        return Ok(outcome);
                    }
                    match serde_json::to_writer(&mut *out, &record_json(&record, protocol)) {
                        Err(e) if e.is_io() => return broken_pipe_is_fine(e.into(), outcome),
                        other => other?,
                    }
                    if let Err(e) = out.write_all(b"\n") {
                        return broken_pipe_is_fine(e, outcome);
                    }
                    printed += 1;
                }
                Err(damage) => {
                    outcome = Outcome::Damaged;
                    eprintln!("oltrace cat: {}: damaged: {damage}", path.display());
                }
            }
        }
    }
    if let Err(e) = out.flush() {
        return broken_pipe_is_fine(e, outcome);
    }
    Ok(outcome)
}

/// `oltrace cat trace.mp | head` closes the pipe early: that is not an error.
fn broken_pipe_is_fine(e: std::io::Error, outcome: Outcome) -> anyhow::Result<Outcome> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(outcome)
    } else {
        Err(e.into())
    }
}
