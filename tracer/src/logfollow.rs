//! `--log FILE`: folds log files into the trace as they grow, one `log`
//! record per line (origin: the path as given; stream: `file`).
//!
//! Semantics are `tail -F` from the start of the file: what the file
//! already holds is recorded first, then appends as they come. A file
//! that does not exist yet is waited for. A file made shorter than what
//! was read (truncated, `copytruncate` rotation) is read again from its
//! start; a file replaced under the same name (renamed away and created
//! anew) is read to its end, then the new file is followed from its start.
//! A truncation followed by more writes than were read before, all between
//! two polls, cannot be told from appends: those lines are missed.
//!
//! [`Follower`] is the synchronous core (open, read, detect truncation or
//! rotation, split lines); [`follow`] polls a set of them from a tokio task
//! every 100 ms and hands the lines to the recorder.

use crate::proxy::tap::{Note, Tap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often files are checked for new lines.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A longer line is recorded in pieces of this size, so one runaway line
/// cannot hold memory or exceed a record's limit.
const MAX_LINE: usize = 64 << 10;

/// One followed file.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    /// Device and inode of `file`, to notice a replacement.
    id: (u64, u64),
    /// Bytes read from `file`.
    offset: u64,
    /// The start of a line whose newline has not come yet.
    partial: Vec<u8>,
}

impl Follower {
    pub fn new(path: &Path) -> Follower {
        Follower { path: path.to_path_buf(), file: None, id: (0, 0), offset: 0, partial: Vec::new() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what was written since the last poll and appends the complete
    /// lines to `lines` (without their `\n` or `\r\n`). A missing file is
    /// not an error: it is waited for.
    pub fn poll(&mut self, lines: &mut Vec<String>) -> std::io::Result<()> {
        if self.file.is_none() && !self.open()? {
            return Ok(());
        }
        // Truncated in place: start over from the beginning.
        let len = self.file.as_ref().map(|f| f.metadata().map(|m| m.len())).transpose()?.unwrap_or(0);
        if len < self.offset {
            self.partial.clear();
            self.offset = 0;
            if let Some(f) = self.file.as_mut() {
                f.seek(SeekFrom::Start(0))?;
            }
        }
        self.read_to_end(lines)?;
        // Replaced (rotated): the old file is read to its end; the new one
        // is followed from its start.
        let replaced = match std::fs::metadata(&self.path) {
            Ok(m) => (m.dev(), m.ino()) != self.id,
            Err(_) => false, // renamed away, nothing new yet: keep the old one
        };
        if replaced {
            self.flush_partial(lines);
            if self.open()? {
                self.read_to_end(lines)?;
            }
        }
        Ok(())
    }

    /// Records an unfinished last line, if any (at the end of the run).
    pub fn finish(&mut self, lines: &mut Vec<String>) {
        self.flush_partial(lines);
    }

    /// Opens the file at `path`; false if it does not exist (yet).
    fn open(&mut self) -> std::io::Result<bool> {
        match File::open(&self.path) {
            Ok(f) => {
                let m = f.metadata()?;
                self.id = (m.dev(), m.ino());
                self.file = Some(f);
                self.offset = 0;
                self.partial.clear();
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn read_to_end(&mut self, lines: &mut Vec<String>) -> std::io::Result<()> {
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        let mut buf = [0u8; 16 << 10];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.offset += n as u64;
            let mut rest = &buf[..n];
            while let Some(i) = rest.iter().position(|&b| b == b'\n') {
                self.partial.extend_from_slice(&rest[..i]);
                rest = &rest[i + 1..];
                lines.push(line_text(&self.partial));
                self.partial.clear();
            }
            self.partial.extend_from_slice(rest);
            while self.partial.len() >= MAX_LINE {
                let piece: Vec<u8> = self.partial.drain(..MAX_LINE).collect();
                lines.push(line_text(&piece));
            }
        }
    }

    fn flush_partial(&mut self, lines: &mut Vec<String>) {
        if !self.partial.is_empty() {
            lines.push(line_text(&self.partial));
            self.partial.clear();
        }
    }
}

fn line_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// Follows `paths` until `stop` turns true, then reads each file one last
/// time (so lines written before the stop are all recorded) and returns.
/// Each line becomes a `log` record through `tap`. A file that cannot be
/// read is reported once on stderr and retried.
pub async fn follow(paths: Vec<PathBuf>, tap: Tap, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut followers: Vec<(Follower, bool)> = paths.iter().map(|p| (Follower::new(p), false)).collect();
    let mut lines = Vec::new();
    loop {
        let stopping = *stop.borrow();
        for (f, reported) in &mut followers {
            match f.poll(&mut lines) {
                Ok(()) => *reported = false,
                Err(e) if !*reported => {
                    eprintln!("oltrace: --log {}: {e} (will retry)", f.path().display());
                    *reported = true;
                }
                Err(_) => {}
            }
            if stopping {
                f.finish(&mut lines);
            }
            let origin = f.path().display().to_string();
            let ts = tap.now();
            for text in lines.drain(..) {
                tap.send_control(Note::Log { origin: origin.clone(), stream: format::LogStream::File, text, ts });
            }
        }
        if stopping {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Log files being followed by a background task.
pub struct LogFiles {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl LogFiles {
    /// Starts following `paths` (nothing to do when empty).
    pub fn start(paths: &[PathBuf], tap: &Tap) -> LogFiles {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = (!paths.is_empty()).then(|| tokio::spawn(follow(paths.to_vec(), tap.clone(), rx)));
        LogFiles { stop, task }
    }

    /// Reads every file one last time and stops.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
    }

    fn poll(f: &mut Follower) -> Vec<String> {
        let mut lines = Vec::new();
        f.poll(&mut lines).unwrap();
        lines
    }

    #[test]
    fn follows_from_the_start_through_appends_truncation_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mut f = Follower::new(&path);
        assert!(poll(&mut f).is_empty(), "a missing file is waited for");
        append(&path, "before start\nsecond\n");
        assert_eq!(poll(&mut f), ["before start", "second"], "existing content is read from the start");
        append(&path, "half");
        assert!(poll(&mut f).is_empty(), "an unfinished line waits for its newline");
        append(&path, " done\r\nnext\n");
        assert_eq!(poll(&mut f), ["half done", "next"]);
        assert!(poll(&mut f).is_empty(), "nothing is read twice");

        // copytruncate: emptied in place, then written again.
        std::fs::OpenOptions::new().write(true).truncate(true).open(&path).unwrap();
        append(&path, "after truncate\n");
        assert_eq!(poll(&mut f), ["after truncate"]);

        // Rotation: renamed away (a last line still going to the old file),
        // a new file created under the name.
        append(&path, "last in old");
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        append(&dir.path().join("app.log.1"), " file\n");
        assert_eq!(poll(&mut f), ["last in old file"], "renamed away: the old file is still read");
        append(&path, "first in new\n");
        assert_eq!(poll(&mut f), ["first in new"]);
        append(&path, "tail without newline");
        assert!(poll(&mut f).is_empty());
        let mut lines = Vec::new();
        f.finish(&mut lines);
        assert_eq!(lines, ["tail without newline"]);
    }

    #[test]
    fn long_lines_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        append(&path, &format!("{}\n", "x".repeat(MAX_LINE + 10)));
        let lines = poll(&mut Follower::new(&path));
        assert_eq!(lines.iter().map(|l| l.len()).collect::<Vec<_>>(), [MAX_LINE, 10]);
    }
}
