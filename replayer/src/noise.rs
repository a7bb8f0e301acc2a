//! Noise rules: differences that are expected between runs (timestamps,
//! generated ids, `Date` headers) and must not fail a regression run.
//!
//! SKELETON (to be replaced by the comparison work): no rules, nothing is noise.

use crate::model::Difference;

#[derive(Clone, Debug, Default)]
pub struct NoiseRules {}

impl NoiseRules {
    /// Reads rules from a file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<NoiseRules> {
        let _ = std::fs::read_to_string(path)?;
        Ok(NoiseRules::default())
    }

    /// Whether `diff` is expected noise.
    pub fn is_noise(&self, diff: &Difference) -> bool {
        let _ = diff;
        false
    }
}
