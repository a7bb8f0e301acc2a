//! The progress bar of a graceful stop: the traffic has ended and the
//! recorder decodes what is left in the spool (on stderr, and only when it
//! is a terminal; a second SIGINT stops decoding and leaves the rest for
//! `oltrace recover`).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A backlog smaller than this is decoded without a bar.
const SHOW_FROM: u64 = 16 << 20;

/// Bytes of spool decoded, of the backlog there was when traffic ended.
pub struct Backlog {
    bar: ProgressBar,
    total: u64,
}

impl Backlog {
    /// A bar for a backlog of `bytes`, if it is worth one.
    pub fn show(bytes: u64) -> Option<Backlog> {
        if bytes < SHOW_FROM {
            return None;
        }
        // Hidden when stderr is not a terminal (indicatif checks).
        let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("oltrace: decoding the spool {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left; Ctrl-C again to leave it for `oltrace recover`)")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(Backlog { bar, total: bytes })
    }

    /// `left` bytes of it are still to decode.
    pub fn set_left(&self, left: u64) {
        self.bar.set_position(self.total.saturating_sub(left));
    }
}

impl Drop for Backlog {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
