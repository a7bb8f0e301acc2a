//! The progress bar of commands that read whole traces (`export`, `logs`):
//! records read so far, on stderr, hidden when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A spinner counting records, or a hidden bar when not `wanted` or
/// stderr is not a terminal (so pipes and CI logs stay clean).
pub fn records_bar(wanted: bool, verb: &str) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let template = format!("{{spinner}} {{pos}} records {verb} ({{per_sec}}, {{elapsed}})");
    bar.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_spinner()));
    bar
}
