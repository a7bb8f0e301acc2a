//! The spool: forwarded chunks (and every other note) written to a file
//! beside the trace as they come, so that decoding can run behind the
//! traffic, and so that what is not decoded yet survives the process.
//!
//! Decoding, converting, encoding and compressing cost the recorder about
//! 2 us per pipelined Redis command, twice what haproxy spends forwarding
//! it; on a machine whose cores the traffic keeps busy, that CPU is taken
//! from the client and the server. So recording is two threads:
//!
//! - the spooler (normal priority) takes notes off the forwarders' queue
//!   and appends them to the spool, framed: a copy, and one `write` per
//!   256 KiB or per [`WRITE_DELAY`] (for 100,000 unpipelined Redis GETs it
//!   used 0.12 s of CPU, the recorder 0.45 s);
//! - the recorder reads them back in the same order and does the real work:
//!   in the traffic's pauses (see [`super::pacer`]), at idle CPU priority
//!   (`SCHED_IDLE`) while traffic flows, so it uses only CPU nothing else
//!   wants; once the traffic ends it returns to normal priority and
//!   catches up.
//!
//! The spool is `TRACE.spool` (mode 0600; its layout is in
//! [`super::spool_file`]). A write is in the kernel's page cache once
//! `pwrite` returns, so a process killed with SIGKILL loses none of it (no
//! `fsync`: a power cut is not what this guards against). Every time the
//! recorder flushes the trace it records a checkpoint in the spool's
//! header: the spool position up to which every note is decoded, and the
//! trace's length then. `oltrace recover` cuts the trace back to that
//! length and decodes the spool from that position, so a record is neither
//! lost nor written twice (docs/recording.md, "What a crash loses"). A
//! clean stop that decoded everything removes the spool. With `--no-spool`
//! the file has no name (`O_TMPFILE`) and dies with the process.
//!
//! Space before the checkpoint is freed with `fallocate(PUNCH_HOLE)` as the
//! recorder goes, so the spool takes disk space only for the backlog, and
//! once the checkpoint has caught up with a file of 256 MiB or more the
//! spooler starts it again from the beginning. The backlog is bounded
//! ([`MAX_BACKLOG`]): beyond it the spooler waits, the forwarders' queue
//! fills, and what does not fit is dropped and recorded as a gap, as
//! without the spool.

use super::spool_file::{self, Frame, TraceId, HEADER_LEN};
use super::tap::Note;
use bytes::{Bytes, BytesMut};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How far decoding may fall behind the traffic, in spooled bytes.
pub const MAX_BACKLOG: u64 = 1 << 30;
/// The spooler writes when it holds this much...
const WRITE_BATCH: usize = 256 << 10;
/// ...or when its oldest buffered note has waited this long
/// ([`SpoolWriter::write_if_due`]). Writing whenever the forwarders' queue
/// ran empty meant a write, a read and two thread wake-ups per few notes:
/// under unpipelined redis-benchmark, 0.4 `pwrite`, 0.35 `pread` and 0.77
/// `futex` calls per request (strace), CPU taken from the traffic on a
/// busy machine. It is also what a SIGKILL can lose of the spool: far
/// under the 100 ms the trace format promises.
pub const WRITE_DELAY: Duration = Duration::from_millis(10);
/// The recorder reads this much at a time.
const READ_BATCH: usize = 1 << 20;
/// Checkpointed bytes are freed in steps of this much.
const PUNCH_STEP: u64 = 64 << 20;
/// Once the file is this long and the checkpoint has reached its end, the
/// spooler starts again at its beginning (so it does not grow for ever,
/// even sparsely).
const REWIND_AFTER: u64 = 256 << 20;

/// Where the spool goes and what its header says.
pub struct SpoolOptions {
    /// `TRACE.spool`, created new; `None` (`--no-spool`): an unnamed file
    /// in `dir`, lost with the process.
    pub path: Option<PathBuf>,
    pub dir: PathBuf,
    pub trace: TraceId,
    pub redact: bool,
    /// The trace's length when the spool is created (its prefix).
    pub trace_len: u64,
}

/// What the spooler and the recorder share. Positions are logical: bytes
/// spooled since the start; the file holds those from `rewound_at` on, at
/// offset `HEADER_LEN + position - rewound_at`.
struct Shared {
    file: File,
    path: Option<PathBuf>,
    /// Bytes written (whole notes only).
    written: AtomicU64,
    /// Bytes the recorder has read and handled.
    read: AtomicU64,
    /// Bytes the recorder has decoded into the trace and flushed (its last
    /// checkpoint).
    checkpointed: AtomicU64,
    /// Where the file last started again (see [`REWIND_AFTER`]).
    rewound_at: AtomicU64,
    rewind_after: u64,
    /// Set once the spooler has written its last note.
    done: AtomicBool,
    /// Set when the recorder stopped (a write error): the spooler stops too.
    stopped: AtomicBool,
    /// Largest backlog seen, in bytes.
    peak_backlog: AtomicU64,
    recorder: OnceLock<Thread>,
    spooler: OnceLock<Thread>,
}

/// The spooler's end.
pub struct SpoolWriter {
    shared: Arc<Shared>,
    buf: Vec<u8>,
    /// Logical position of `buf[0]`.
    offset: u64,
    /// When the oldest note in `buf` was framed.
    buffered_since: Option<Instant>,
}

/// The recorder's end.
pub struct SpoolReader {
    shared: Arc<Shared>,
    /// The batch being parsed; data notes are slices of it.
    buf: Bytes,
    /// Next unparsed byte of `buf`.
    pos: usize,
    /// Position of `buf[0]`.
    base: u64,
    /// Space before this position has been freed.
    punched: u64,
    /// The trace's length at the last checkpoint.
    checkpoint_trace_len: u64,
}

/// Creates the spool (see [`SpoolOptions`]) and writes its header.
pub fn create(opts: SpoolOptions) -> std::io::Result<(SpoolWriter, SpoolReader)> {
    create_rewinding_after(opts, REWIND_AFTER)
}

fn create_rewinding_after(opts: SpoolOptions, rewind_after: u64) -> std::io::Result<(SpoolWriter, SpoolReader)> {
    let file = match &opts.path {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(path)?;
            spool_file::lock(&file)?;
            file
        }
        None => tempfile::tempfile_in(&opts.dir)?,
    };
    if let Err(e) = spool_file::write_header(&file, opts.trace, opts.redact, opts.trace_len) {
        if let Some(path) = &opts.path {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    let shared = Arc::new(Shared {
        file,
        path: opts.path,
        written: AtomicU64::new(0),
        read: AtomicU64::new(0),
        checkpointed: AtomicU64::new(0),
        rewound_at: AtomicU64::new(0),
        rewind_after,
        done: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
        peak_backlog: AtomicU64::new(0),
        recorder: OnceLock::new(),
        spooler: OnceLock::new(),
    });
    Ok((
        SpoolWriter { shared: shared.clone(), buf: Vec::with_capacity(WRITE_BATCH * 2), offset: 0, buffered_since: None },
        SpoolReader { shared, buf: Bytes::new(), pos: 0, base: 0, punched: 0, checkpoint_trace_len: opts.trace_len },
    ))
}

impl SpoolWriter {
    /// Registers the calling thread as the spooler (woken when the recorder
    /// stops).
    pub fn attach(&self) {
        let _ = self.shared.spooler.set(std::thread::current());
    }

    /// Frames `note` into the write buffer; writes when the buffer is full.
    pub fn push(&mut self, note: &Note) -> std::io::Result<()> {
        if self.buf.is_empty() {
            self.buffered_since = Some(Instant::now());
        }
        spool_file::encode(note, self.offset + self.buf.len() as u64, &mut self.buf);
        if self.buf.len() >= WRITE_BATCH {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes what is buffered if its oldest note has waited [`WRITE_DELAY`].
    pub fn write_if_due(&mut self) -> std::io::Result<()> {
        match self.buffered_since {
            Some(t) if t.elapsed() >= WRITE_DELAY => self.write_out(),
            _ => Ok(()),
        }
    }

    /// Writes what is buffered and tells the recorder. Waits first while the
    /// backlog is over [`MAX_BACKLOG`] (the forwarders' queue takes the
    /// strain meanwhile).
    pub fn write_out(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        while self.backlog() > MAX_BACKLOG && !self.recorder_stopped() {
            std::thread::park_timeout(Duration::from_millis(10));
        }
        let mut rewound_at = self.shared.rewound_at.load(Ordering::Relaxed);
        if self.shared.checkpointed.load(Ordering::Acquire) >= self.offset && self.offset - rewound_at >= self.shared.rewind_after {
            // Everything written is decoded and in the trace (and freed
            // first, see `checkpoint`); the recorder reads nothing more
            // until `written` moves past `offset`, which it does below,
            // after this store. The header learns of the restart before
            // any frame is written at the new place, so a recovery never
            // looks for a frame where there is none.
            rewound_at = self.offset;
            self.shared.file.set_len(HEADER_LEN)?;
            spool_file::write_restart(&self.shared.file, rewound_at)?;
            self.shared.rewound_at.store(rewound_at, Ordering::Release);
        }
        self.shared.file.write_all_at(&self.buf, HEADER_LEN + self.offset - rewound_at)?;
        self.offset += self.buf.len() as u64;
        self.buf.clear();
        self.buffered_since = None;
        self.shared.written.store(self.offset, Ordering::Release);
        self.shared.peak_backlog.fetch_max(self.backlog(), Ordering::Relaxed);
        if let Some(t) = self.shared.recorder.get() {
            t.unpark();
        }
        Ok(())
    }

    fn backlog(&self) -> u64 {
        self.offset.saturating_sub(self.shared.read.load(Ordering::Acquire))
    }

    /// True once the recorder has stopped (recording failed).
    pub fn recorder_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Relaxed)
    }

    /// Writes what is left; the recorder then reads to the end and stops.
    pub fn finish(mut self) -> std::io::Result<()> {
        let result = self.write_out();
        self.shared.done.store(true, Ordering::Release);
        if let Some(t) = self.shared.recorder.get() {
            t.unpark();
        }
        result
    }
}

impl Drop for SpoolWriter {
    /// However the spooler ends, the recorder must not wait for it forever.
    fn drop(&mut self) {
        self.shared.done.store(true, Ordering::Release);
        if let Some(t) = self.shared.recorder.get() {
            t.unpark();
        }
    }
}

/// What [`SpoolReader::next_note`] found.
pub enum Next {
    Note(Note),
    /// Nothing yet: more may come.
    Empty,
    /// The spooler is done and everything has been read.
    End,
}

impl SpoolReader {
    /// Registers the calling thread as the recorder.
    pub fn attach(&self) {
        let _ = self.shared.recorder.set(std::thread::current());
    }

    /// The next note, in the order the spooler took them.
    pub fn next_note(&mut self) -> std::io::Result<Next> {
        if self.pos == self.buf.len() {
            // `done` before `written`: whatever was written before `done`
            // was set is then seen by `fill`.
            let done = self.shared.done.load(Ordering::Acquire);
            if !self.fill()? {
                return Ok(if done { Next::End } else { Next::Empty });
            }
        }
        match spool_file::decode(&self.buf.slice(self.pos..), self.position()) {
            Frame::Note(note, used) => {
                self.pos += used;
                Ok(Next::Note(note))
            }
            _ => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "spool: a note reads back damaged (a bug, or the file was changed under us)")),
        }
    }

    /// The logical position of the next note.
    fn position(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Marks what was read so far as handled and reads the next batch of
    /// written notes, if any.
    fn fill(&mut self) -> std::io::Result<bool> {
        let end = self.position();
        // No wake-up for the spooler: it waits on the backlog only past
        // MAX_BACKLOG, and then looks again every 10 ms by itself.
        self.shared.read.store(end, Ordering::Release);
        // `written` before `rewound_at`: bytes past `end` were written after
        // any rewind that moved them, so this load sees that rewind.
        let written = self.shared.written.load(Ordering::Acquire);
        if written <= end {
            return Ok(false);
        }
        let at = HEADER_LEN + end - self.shared.rewound_at.load(Ordering::Acquire);
        let n = (written - end).min(READ_BATCH as u64) as usize;
        let mut batch = BytesMut::zeroed(n);
        self.shared.file.read_exact_at(&mut batch, at)?;
        // A batch cut at READ_BATCH may end inside a note: keep the whole
        // notes, the rest is read next time. (The spooler writes whole
        // notes, so a batch that ends at `written` is all whole.)
        let whole = spool_file::whole_prefix(&batch);
        if whole > 0 {
            batch.truncate(whole);
        } else {
            // One note larger than a batch: read just it.
            let len = spool_file::frame_len(&batch).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "spool: bad frame"))?;
            batch = BytesMut::zeroed(len);
            self.shared.file.read_exact_at(&mut batch, at)?;
        }
        self.buf = batch.freeze();
        self.base = end;
        self.pos = 0;
        Ok(true)
    }

    /// The position of the last checkpoint.
    pub fn checkpointed(&self) -> u64 {
        self.shared.checkpointed.load(Ordering::Relaxed)
    }

    /// True when notes were handled since the last checkpoint.
    pub fn unchecked(&self) -> bool {
        self.position() > self.shared.checkpointed.load(Ordering::Relaxed)
    }

    /// Records that every note handled so far is in the trace, now
    /// `trace_len` bytes long and flushed (the caller flushed it), and
    /// frees the disk space of what came before.
    pub fn checkpoint(&mut self, trace_len: u64) -> std::io::Result<()> {
        let pos = self.position();
        if pos == self.shared.checkpointed.load(Ordering::Relaxed) && trace_len == self.checkpoint_trace_len {
            return Ok(());
        }
        // Free space before publishing the checkpoint: once it reaches
        // `written`, the spooler may start the file again.
        if pos >= self.punched + PUNCH_STEP {
            self.punch(pos);
        }
        spool_file::write_checkpoint(&self.shared.file, pos, trace_len)?;
        self.checkpoint_trace_len = trace_len;
        self.shared.checkpointed.store(pos, Ordering::Release);
        Ok(())
    }

    /// Frees the disk space of what has been checkpointed, up to `upto`
    /// (best effort: not every file system can).
    fn punch(&mut self, upto: u64) {
        let rewound_at = self.shared.rewound_at.load(Ordering::Acquire);
        let from = self.punched.max(rewound_at);
        if upto > from {
            // SAFETY: fallocate on a file descriptor we own, with plain integers.
            let _ = unsafe {
                libc::fallocate(
                    self.shared.file.as_raw_fd(),
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    (HEADER_LEN + from - rewound_at) as libc::off_t,
                    (upto - from) as libc::off_t,
                )
            };
        }
        self.punched = upto;
    }

    /// Removes the spool's file: everything in it is in the trace.
    pub fn remove(&self) -> std::io::Result<()> {
        match &self.shared.path {
            Some(path) => std::fs::remove_file(path),
            None => Ok(()),
        }
    }

    /// The spool's name, if it has one.
    pub fn path(&self) -> Option<&Path> {
        self.shared.path.as_deref()
    }

    /// Bytes spooled so far (whole notes, written to the file).
    pub fn spooled(&self) -> u64 {
        self.shared.written.load(Ordering::Acquire)
    }

    /// Bytes spooled and not read back yet.
    pub fn backlog(&self) -> u64 {
        self.spooled().saturating_sub(self.position())
    }

    /// Tells the spooler to stop (recording failed).
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        if let Some(t) = self.shared.spooler.get() {
            t.unpark();
        }
    }

    /// True once the spooler has written everything.
    pub fn traffic_done(&self) -> bool {
        self.shared.done.load(Ordering::Acquire)
    }

    /// The largest backlog decoding had, in bytes.
    pub fn peak_backlog(&self) -> u64 {
        self.shared.peak_backlog.load(Ordering::Relaxed)
    }
}

/// Puts the calling thread at idle CPU priority (`SCHED_IDLE`: it runs
/// only when nothing else wants the CPU), or back to normal. Best effort.
pub fn set_idle_priority(idle: bool) {
    let policy = if idle { libc::SCHED_IDLE } else { libc::SCHED_OTHER };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
    unsafe {
        libc::sched_setscheduler(0, policy, &param);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::Direction;

    fn unnamed(dir: &Path) -> SpoolOptions {
        SpoolOptions { path: None, dir: dir.to_path_buf(), trace: TraceId { anchor_unix_ns: 1, prefix_crc: 2 }, redact: true, trace_len: 100 }
    }

    fn data(i: u64, n: usize) -> Note {
        Note::Data { conn: i, dir: Direction::ToServer, data: Bytes::from(vec![(i % 251) as u8; n]), ts: i }
    }

    /// Reads every note there is now, checkpointing after each, with the
    /// trace `trace_len` long.
    fn read_all(r: &mut SpoolReader, trace_len: u64) -> Vec<u64> {
        let mut got = Vec::new();
        while let Next::Note(Note::Data { conn, .. }) = r.next_note().unwrap() {
            got.push(conn);
            r.checkpoint(trace_len).unwrap();
        }
        got
    }

    /// What a recovery would decode: the notes from the header's checkpoint.
    fn recoverable(path: &Path) -> (spool_file::Header, Vec<u64>) {
        let file = File::open(path).unwrap();
        let header = spool_file::read_header(&file).unwrap();
        let mut input = File::open(path).unwrap();
        std::io::Seek::seek(&mut input, std::io::SeekFrom::Start(HEADER_LEN + header.checkpoint - header.restart)).unwrap();
        let found = spool_file::Scan::new(input, header.checkpoint)
            .map(|item| match item.unwrap() {
                spool_file::Scanned::Note(Note::Data { conn, .. }) => conn,
                other => panic!("{other:?}"),
            })
            .collect();
        (header, found)
    }

    /// A named spool: the header's checkpoint says where recovery starts,
    /// before and after the file starts again, so that what follows it is
    /// every note not yet checkpointed, no more, no less.
    #[test]
    fn the_checkpoint_finds_exactly_the_notes_not_yet_in_the_trace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.mp.spool");
        let (mut w, mut r) = create_rewinding_after(SpoolOptions { path: Some(path.clone()), ..unnamed(dir.path()) }, 4096).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(recoverable(&path), (spool_file::Header { trace: TraceId { anchor_unix_ns: 1, prefix_crc: 2 }, redact: true, restart: 0, checkpoint: 0, trace_len: 100 }, vec![]));
        for i in 0..10 {
            w.push(&data(i, 1000)).unwrap();
        }
        w.write_out().unwrap();
        assert_eq!(recoverable(&path).1, (0..10).collect::<Vec<_>>(), "nothing decoded: all of it");
        assert_eq!(read_all(&mut r, 200), (0..10).collect::<Vec<_>>());
        let (header, rest) = recoverable(&path);
        assert_eq!((header.trace_len, rest), (200, vec![]), "all decoded");
        // The next write starts the file again (10 KB > 4096, all checkpointed).
        for i in 10..13 {
            w.push(&data(i, 100)).unwrap();
        }
        w.write_out().unwrap();
        let (header, rest) = recoverable(&path);
        assert_eq!((header.restart, rest), (header.checkpoint, vec![10, 11, 12]), "the file started again");
        assert!(std::fs::metadata(&path).unwrap().len() < HEADER_LEN + 1000);
        // Part read, then checkpointed: the rest only.
        assert!(matches!(r.next_note().unwrap(), Next::Note(Note::Data { conn: 10, .. })));
        r.checkpoint(300).unwrap();
        assert!(matches!(r.next_note().unwrap(), Next::Note(Note::Data { conn: 11, .. })));
        let (header, rest) = recoverable(&path);
        assert_eq!((header.trace_len, rest), (300, vec![11, 12]), "read but not checkpointed: still to recover");
        w.finish().unwrap();
        r.remove().unwrap();
        assert!(!path.exists());
    }

    /// A lone note waits in the writer's buffer until it is due, then
    /// reaches the reader.
    #[test]
    fn a_buffered_note_is_written_once_due() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, mut r) = create(unnamed(dir.path())).unwrap();
        w.push(&Note::Eof { conn: 7, dir: Direction::ToClient, ts: 1 }).unwrap();
        w.write_if_due().unwrap();
        if w.buffered_since.is_some_and(|t| t.elapsed() < WRITE_DELAY) {
            assert!(matches!(r.next_note().unwrap(), Next::Empty), "not written before it is due");
        }
        std::thread::sleep(WRITE_DELAY);
        w.write_if_due().unwrap();
        assert!(matches!(r.next_note().unwrap(), Next::Note(Note::Eof { conn: 7, .. })));
        assert!(matches!(r.next_note().unwrap(), Next::Empty));
    }

    /// A spooler thread and a reader, through a real file, with notes
    /// larger than a read batch and many small ones: all arrive, in order.
    #[test]
    fn spool_carries_every_note_in_order_across_threads() {
        carry_notes(REWIND_AFTER);
    }

    /// The same with the file starting again whenever the recorder has read
    /// 4 KiB or more and caught up: still every note, in order, and the
    /// file stays short.
    #[test]
    fn spool_rewinds_without_losing_or_reordering_notes() {
        let (spooled, file_len) = carry_notes(4096);
        assert!(file_len < spooled / 4, "the file started again: {file_len} bytes long after {spooled} spooled");
    }

    /// Spools 20,000 notes from another thread and reads them back; returns
    /// the bytes spooled and the file's final length.
    fn carry_notes(rewind_after: u64) -> (u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, mut r) = create_rewinding_after(unnamed(dir.path()), rewind_after).unwrap();
        r.attach();
        let sizes: Vec<usize> = (0..20_000).map(|i| if i % 5000 == 1 { 3 << 20 } else { i % 300 }).collect();
        let expect = sizes.clone();
        let spooler = std::thread::spawn(move || {
            w.attach();
            for (i, &n) in sizes.iter().enumerate() {
                let data = Bytes::from(vec![(i % 251) as u8; n]);
                w.push(&Note::Data { conn: i as u64, dir: Direction::ToServer, data, ts: i as u64 }).unwrap();
                if i % 777 == 0 {
                    w.write_out().unwrap();
                }
                if i % 1000 == 999 {
                    // Now and then let the reader catch up, so that the next
                    // write may start the file again.
                    w.write_out().unwrap();
                    while w.shared.checkpointed.load(Ordering::Acquire) < w.offset {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            w.finish().unwrap();
        });
        let mut got = 0;
        loop {
            match r.next_note().unwrap() {
                Next::Note(Note::Data { conn, data, ts, .. }) => {
                    assert_eq!((conn, ts), (got as u64, got as u64), "in order");
                    assert_eq!(data.len(), expect[got]);
                    assert!(data.iter().all(|&b| b == (got % 251) as u8), "note {got} intact");
                    got += 1;
                }
                Next::Note(_) => panic!("only data was sent"),
                Next::Empty => {
                    // As the recorder does after flushing the trace.
                    r.checkpoint(0).unwrap();
                    std::thread::park_timeout(Duration::from_millis(1));
                }
                Next::End => break,
            }
        }
        spooler.join().unwrap();
        assert_eq!(got, expect.len());
        assert!(r.peak_backlog() > 0);
        // No file is left behind: the spool never had a name.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        (r.shared.written.load(Ordering::Relaxed), r.shared.file.metadata().unwrap().len())
    }
}
