//! The spool: forwarded chunks (and every other note) written to an
//! unnamed file as they come, so that decoding can run behind the traffic.
//!
//! Decoding, converting, encoding and compressing cost the recorder about
//! 2 us per pipelined Redis command, twice what haproxy spends forwarding
//! it; on a machine whose cores the traffic keeps busy, that CPU is taken
//! from the client and the server. So recording is two threads:
//!
//! - the spooler (normal priority) takes notes off the forwarders' queue
//!   and appends them to the spool, framed: a copy, and one `write` per
//!   256 KiB (for 100,000 unpipelined Redis GETs it used 0.12 s of CPU,
//!   the recorder 0.45 s);
//! - the recorder reads them back in the same order and does the real work:
//!   in the traffic's pauses (see [`super::pacer`]), at idle CPU priority
//!   (`SCHED_IDLE`) while traffic flows, so it uses only CPU nothing else
//!   wants; once the traffic ends it returns to normal priority and
//!   catches up.
//!
//! The spool is an unnamed file in the trace's directory (`O_TMPFILE`, or
//! created and unlinked at once): it holds unredacted bytes, so it never
//! has a name anyone could open, and it disappears with the process, even
//! one killed with SIGKILL. What the recorder has read is freed with
//! `fallocate(PUNCH_HOLE)` as it goes, so the spool takes disk space only
//! for the backlog, and once the recorder has caught up with a file of
//! 256 MiB or more the spooler starts it again from the beginning. The backlog is bounded ([`MAX_BACKLOG`]): beyond it the
//! spooler waits, the forwarders' queue fills, and what does not fit is
//! dropped and recorded as a gap, as without the spool.

use super::tap::Note;
use bytes::{Bytes, BytesMut};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};
use wire::{Direction, Protocol};

/// How far decoding may fall behind the traffic, in spooled bytes.
pub const MAX_BACKLOG: u64 = 1 << 30;
/// The spooler writes when it holds this much...
const WRITE_BATCH: usize = 256 << 10;
/// ...or when its oldest buffered note has waited this long
/// ([`SpoolWriter::write_if_due`]). Writing whenever the forwarders' queue
/// ran empty meant a write, a read and two thread wake-ups per few notes:
/// under unpipelined redis-benchmark, 0.4 `pwrite`, 0.35 `pread` and 0.77
/// `futex` calls per request (strace), CPU taken from the traffic on a
/// busy machine. Recording has no latency target; a few milliseconds of
/// delay cost nothing.
pub const WRITE_DELAY: Duration = Duration::from_millis(10);
/// The recorder reads this much at a time.
const READ_BATCH: usize = 1 << 20;
/// Read bytes are freed in steps of this much.
const PUNCH_STEP: u64 = 64 << 20;
/// Once the file is this long and the recorder has read all of it, the
/// spooler starts again at its beginning (so it does not grow for ever,
/// even sparsely).
const REWIND_AFTER: u64 = 256 << 20;

/// What the spooler and the recorder share. Positions are logical: bytes
/// spooled since the start; the file holds those from `rewound_at` on, at
/// offset `position - rewound_at`.
struct Shared {
    file: File,
    /// Bytes written (whole notes only).
    written: AtomicU64,
    /// Bytes the recorder has read and handled.
    read: AtomicU64,
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
}

/// Creates an unnamed spool file in `dir`.
pub fn create(dir: &Path) -> std::io::Result<(SpoolWriter, SpoolReader)> {
    create_rewinding_after(dir, REWIND_AFTER)
}

fn create_rewinding_after(dir: &Path, rewind_after: u64) -> std::io::Result<(SpoolWriter, SpoolReader)> {
    let file = tempfile::tempfile_in(dir)?;
    let shared = Arc::new(Shared {
        file,
        written: AtomicU64::new(0),
        read: AtomicU64::new(0),
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
        SpoolReader { shared, buf: Bytes::new(), pos: 0, base: 0, punched: 0 },
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
        encode(note, &mut self.buf);
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
        if self.backlog() == 0 && self.offset - rewound_at >= self.shared.rewind_after {
            // The recorder has read everything (and freed it first, see
            // `fill`), and reads nothing more until `written` moves past
            // `offset`, which it does below, after this store.
            rewound_at = self.offset;
            self.shared.rewound_at.store(rewound_at, Ordering::Release);
            self.shared.file.set_len(0)?;
        }
        self.shared.file.write_all_at(&self.buf, self.offset - rewound_at)?;
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
        let (note, used) = decode(&self.buf.slice(self.pos..))
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "spool: a note is cut short (a bug: notes are written whole)"))?;
        self.pos += used;
        Ok(Next::Note(note))
    }

    /// Marks what was read so far as handled (freeing its disk space now
    /// and then) and reads the next batch of written notes, if any.
    fn fill(&mut self) -> std::io::Result<bool> {
        let end = self.base + self.buf.len() as u64;
        // Free space before saying it was read: once `read` reaches
        // `written`, the spooler may start the file again.
        if end >= self.punched + PUNCH_STEP {
            self.punch(end);
        }
        // No wake-up for the spooler: it waits on the backlog only past
        // MAX_BACKLOG, and then looks again every 10 ms by itself.
        self.shared.read.store(end, Ordering::Release);
        // `written` before `rewound_at`: bytes past `end` were written after
        // any rewind that moved them, so this load sees that rewind.
        let written = self.shared.written.load(Ordering::Acquire);
        if written <= end {
            return Ok(false);
        }
        let at = end - self.shared.rewound_at.load(Ordering::Acquire);
        let n = (written - end).min(READ_BATCH as u64) as usize;
        let mut batch = BytesMut::zeroed(n);
        self.shared.file.read_exact_at(&mut batch, at)?;
        // A batch cut at READ_BATCH may end inside a note: keep the whole
        // notes, the rest is read next time. (The spooler writes whole
        // notes, so a batch that ends at `written` is all whole.)
        let whole = whole_prefix(&batch);
        if whole > 0 {
            batch.truncate(whole);
        } else {
            // One note larger than a batch: read just it.
            let len = frame_len(&batch).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "spool: bad frame"))?;
            batch = BytesMut::zeroed(len);
            self.shared.file.read_exact_at(&mut batch, at)?;
        }
        self.buf = batch.freeze();
        self.base = end;
        self.pos = 0;
        Ok(true)
    }

    /// Frees the disk space of what has been read, up to `upto` (best
    /// effort: not every file system can).
    fn punch(&mut self, upto: u64) {
        let rewound_at = self.shared.rewound_at.load(Ordering::Acquire);
        let from = self.punched.max(rewound_at);
        if upto > from {
            // SAFETY: fallocate on a file descriptor we own, with plain integers.
            let _ = unsafe {
                libc::fallocate(
                    self.shared.file.as_raw_fd(),
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    (from - rewound_at) as libc::off_t,
                    (upto - from) as libc::off_t,
                )
            };
        }
        self.punched = upto;
    }

    /// Bytes spooled so far (whole notes, written to the file).
    pub fn spooled(&self) -> u64 {
        self.shared.written.load(Ordering::Acquire)
    }

    /// Bytes spooled and not read back yet.
    pub fn backlog(&self) -> u64 {
        self.spooled().saturating_sub(self.base + self.pos as u64)
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

// ----- framing: [tag u8][body length u32 LE][body] -----

const OPEN: u8 = 1;
const DATA: u8 = 2;
const EOF: u8 = 3;
const LOST: u8 = 4;
const CLOSE: u8 = 5;
const LOG: u8 = 6;

/// The length of the frame that starts `b`, if its header is there.
fn frame_len(b: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(b.get(1..5)?.try_into().ok()?) as usize;
    Some(5 + len)
}

/// How many bytes at the start of `b` are whole frames.
fn whole_prefix(b: &[u8]) -> usize {
    let mut at = 0;
    while let Some(len) = frame_len(&b[at..]) {
        if at + len > b.len() {
            break;
        }
        at += len;
    }
    at
}

fn encode(note: &Note, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 5]);
    let tag = match note {
        Note::Open { conn, protocol, client, server, route, ts } => {
            put_u64(out, *conn);
            put_u64(out, *ts);
            out.push(protocol.code());
            put_str(out, client);
            put_str(out, server);
            put_str(out, route);
            OPEN
        }
        Note::Data { conn, dir, data, ts } => {
            put_u64(out, *conn);
            put_u64(out, *ts);
            out.push(dir.code());
            out.extend_from_slice(data);
            DATA
        }
        Note::Eof { conn, dir, ts } => {
            put_u64(out, *conn);
            put_u64(out, *ts);
            out.push(dir.code());
            EOF
        }
        Note::Lost { conn, dir, bytes, ts } => {
            put_u64(out, *conn);
            put_u64(out, *ts);
            out.push(dir.code());
            put_u64(out, *bytes);
            LOST
        }
        Note::Close { conn, ts, bytes_to_server, bytes_to_client, error } => {
            put_u64(out, *conn);
            put_u64(out, *ts);
            put_u64(out, *bytes_to_server);
            put_u64(out, *bytes_to_client);
            match error {
                Some(e) => {
                    out.push(1);
                    put_str(out, e);
                }
                None => out.push(0),
            }
            CLOSE
        }
        Note::Log { origin, stream, text, ts } => {
            put_u64(out, *ts);
            out.push(stream.code());
            put_str(out, origin);
            put_str(out, text);
            LOG
        }
    };
    let len = (out.len() - start - 5) as u32;
    out[start] = tag;
    out[start + 1..start + 5].copy_from_slice(&len.to_le_bytes());
}

/// The note that starts `b` and the bytes it took; `None` if `b` does not
/// start with a whole, well-formed note. Data is a slice of `b`, not a copy.
fn decode(b: &Bytes) -> Option<(Note, usize)> {
    let len = frame_len(b)?;
    let mut r = Cursor { b: b.get(5..len)? };
    let note = match b[0] {
        OPEN => Note::Open {
            conn: r.u64()?,
            ts: r.u64()?,
            protocol: Protocol::from_code(r.u8()?)?,
            client: r.string()?,
            server: r.string()?,
            route: r.string()?,
        },
        DATA => {
            let (conn, ts, dir) = (r.u64()?, r.u64()?, Direction::from_code(r.u8()?)?);
            let start = len - r.rest().len();
            Note::Data { conn, dir, ts, data: b.slice(start..len) }
        }
        EOF => Note::Eof { conn: r.u64()?, ts: r.u64()?, dir: Direction::from_code(r.u8()?)? },
        LOST => Note::Lost { conn: r.u64()?, ts: r.u64()?, dir: Direction::from_code(r.u8()?)?, bytes: r.u64()? },
        CLOSE => Note::Close {
            conn: r.u64()?,
            ts: r.u64()?,
            bytes_to_server: r.u64()?,
            bytes_to_client: r.u64()?,
            error: match r.u8()? {
                0 => None,
                _ => Some(r.string()?),
            },
        },
        LOG => {
            let ts = r.u64()?;
            let stream = format::LogStream::from_code(r.u8()?)?;
            Note::Log { ts, stream, origin: r.string()?, text: r.string()? }
        }
        _ => return None,
    };
    Some((note, len))
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.b.get(..n)?, self.b.get(n..)?);
        self.b = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.b)
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

    fn notes() -> Vec<Note> {
        vec![
            Note::Open { conn: 7, protocol: Protocol::Redis, client: "127.0.0.1:5".into(), server: "s:1".into(), route: "redis:0".into(), ts: 1 },
            Note::Data { conn: 7, dir: Direction::ToServer, data: Bytes::from_static(b"PING\r\n"), ts: 2 },
            Note::Data { conn: 7, dir: Direction::ToClient, data: Bytes::new(), ts: 3 },
            Note::Eof { conn: 7, dir: Direction::ToClient, ts: 4 },
            Note::Lost { conn: 7, dir: Direction::ToServer, bytes: 99, ts: 5 },
            Note::Log { origin: "worker".into(), stream: format::LogStream::Stderr, text: "héllo".into(), ts: 6 },
            Note::Close { conn: 7, ts: 7, bytes_to_server: 6, bytes_to_client: 0, error: Some("reset".into()) },
            Note::Close { conn: 8, ts: 8, bytes_to_server: 0, bytes_to_client: 0, error: None },
        ]
    }

    fn show(n: &Note) -> String {
        match n {
            Note::Open { conn, protocol, client, server, route, ts } => format!("open {conn} {protocol:?} {client} {server} {route} {ts}"),
            Note::Data { conn, dir, data, ts } => format!("data {conn} {dir:?} {data:?} {ts}"),
            Note::Eof { conn, dir, ts } => format!("eof {conn} {dir:?} {ts}"),
            Note::Lost { conn, dir, bytes, ts } => format!("lost {conn} {dir:?} {bytes} {ts}"),
            Note::Close { conn, ts, bytes_to_server, bytes_to_client, error } => format!("close {conn} {ts} {bytes_to_server} {bytes_to_client} {error:?}"),
            Note::Log { origin, stream, text, ts } => format!("log {origin} {stream:?} {text} {ts}"),
        }
    }

    #[test]
    fn every_note_reads_back_as_written() {
        let mut buf = Vec::new();
        for n in notes() {
            encode(&n, &mut buf);
        }
        let buf = Bytes::from(buf);
        let mut at = 0;
        let mut back = Vec::new();
        while at < buf.len() {
            let (n, used) = decode(&buf.slice(at..)).expect("whole note");
            back.push(show(&n));
            at += used;
        }
        assert_eq!(back, notes().iter().map(show).collect::<Vec<_>>());
        // Every strict prefix of a note is not a note.
        let mut one = Vec::new();
        encode(&notes()[0], &mut one);
        let one = Bytes::from(one);
        for cut in 0..one.len() {
            assert!(decode(&one.slice(..cut)).is_none(), "cut at {cut}");
        }
        assert_eq!(whole_prefix(&buf[..buf.len() - 1]), buf.len() - {
            let mut last = Vec::new();
            encode(notes().last().unwrap(), &mut last);
            last.len()
        });
    }

    /// A lone note waits in the writer's buffer until it is due, then
    /// reaches the reader.
    #[test]
    fn a_buffered_note_is_written_once_due() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, mut r) = create(dir.path()).unwrap();
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
        let (mut w, mut r) = create_rewinding_after(dir.path(), rewind_after).unwrap();
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
                    while w.backlog() > 0 {
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
                Next::Empty => std::thread::park_timeout(Duration::from_millis(1)),
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
