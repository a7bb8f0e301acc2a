//! `--learn-noise`: two replays against the same target (the baseline),
//! and the noise rules for what differed between them; never for what
//! differs from the recording, which is what a replay is there to find.

use crate::noise::NoiseRules;
use crate::run::{self, Config};
use std::path::Path;

/// What learning found and wrote.
#[derive(Debug)]
pub struct Learned {
    /// Rules written, and the distinct keys they are scoped to.
    pub rules: usize,
    pub keys: usize,
    /// Exchanges per replay.
    pub exchanges: usize,
    /// Exchanges that failed in either replay (nothing is learned from them).
    pub failed: u64,
}

/// Replays `cfg` twice and writes the rules learned to `path`.
pub async fn learn_noise(mut cfg: Config, path: &Path) -> anyhow::Result<Learned> {
    cfg.keep_exchanges = true;
    let headers = cfg.noise.headers().to_vec();
    let first = run::run(cfg.clone()).await?;
    let second = run::run(cfg).await?;
    let learned = NoiseRules::learn(&first.exchanges, &second.exchanges, &headers);
    learned.save(path)?;
    let keys: std::collections::BTreeSet<_> = learned.rules().filter_map(|r| r.key.as_deref()).collect();
    Ok(Learned {
        rules: learned.rules().count(),
        keys: keys.len(),
        exchanges: first.exchanges.len(),
        failed: first.report.failed + second.report.failed,
    })
}
