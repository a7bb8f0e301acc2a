//! Comparing a replayed response with the recorded one.
//!
//! SKELETON (to be replaced by the comparison work): only the exchange
//! status and the protocol summary are compared, whole.

use crate::model::{Difference, Side};
use crate::noise::NoiseRules;

/// Every difference between `recorded` and `replayed` that `rules` do not
/// call noise. Empty means they match.
pub fn compare(protocol: format::Protocol, recorded: &Side, replayed: &Side, rules: &NoiseRules) -> Vec<Difference> {
    let _ = protocol;
    let mut diffs = Vec::new();
    if recorded.status != replayed.status {
        diffs.push(Difference { field: "status".into(), recorded: format!("{:?}", recorded.status), replayed: format!("{:?}", replayed.status) });
    }
    if recorded.summary != replayed.summary {
        diffs.push(Difference { field: "summary".into(), recorded: format!("{:?}", recorded.summary), replayed: format!("{:?}", replayed.summary) });
    }
    diffs.retain(|d| !rules.is_noise(d));
    diffs
}
