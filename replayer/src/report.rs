//! The replay report: counts, the first differences, latencies, schedule
//! lateness; text for people, JSON and JUnit for CI.
//!
//! SKELETON (to be replaced by the report work): counts only.

use crate::model::{Difference, Replayed};

#[derive(Debug, Default)]
pub struct Report {
    pub replayed: u64,
    pub matched: u64,
    pub differed: u64,
    pub failed: u64,
    /// Exchanges not replayed, by reason (`--read-only` writes, requests
    /// whose bytes were truncated or redacted, damaged trace stretches).
    pub skipped: std::collections::BTreeMap<String, u64>,
}

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    /// Adds one replayed exchange and its differences (empty: matched).
    pub fn add(&mut self, exchange: &Replayed, diffs: &[Difference]) {
        self.replayed += 1;
        match (&exchange.replayed, diffs.is_empty()) {
            (Err(_), _) => self.failed += 1,
            (Ok(_), true) => self.matched += 1,
            (Ok(_), false) => self.differed += 1,
        }
    }

    /// Counts `n` exchanges not replayed, for `reason`.
    pub fn skip(&mut self, reason: &str, n: u64) {
        *self.skipped.entry(reason.to_string()).or_default() += n;
    }

    /// Exit code: 0 clean, 1 differences or failures.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.differed + self.failed > 0)
    }

    /// The text report for people.
    pub fn text(&self) -> String {
        format!(
            "replayed {}, matched {}, differed {}, failed {}, skipped {}\n",
            self.replayed,
            self.matched,
            self.differed,
            self.failed,
            self.skipped.values().sum::<u64>()
        )
    }
}
