//! The spool's file: its header, and the notes in it, each in a
//! checksummed frame. [`super::spool`] writes and reads it while
//! recording; `oltrace recover` reads what a killed recorder left.
//!
//! ```text
//! header (HEADER_LEN bytes)
//!   0   magic "OLSPOOL\n", version u16, 2 reserved, the trace's identity
//!       (its anchor u64 and its prefix checksum u32), flags u32
//!       (bit 0: redact), CRC32 of bytes 0..28
//!   512 where the file last started again: logical position u64, CRC32
//!   1024 the recorder's checkpoint: logical position u64 up to which every
//!       note is decoded and in the trace, the trace's length u64 then, CRC32
//! frames, from HEADER_LEN on
//!   length u32 (of tag and body), CRC32 u32 (of position, tag and body),
//!   logical position u64, tag u8, body
//! ```
//!
//! Positions are logical: bytes spooled since the recording started. The
//! file holds those from its last restart on (see `REWIND_AFTER` in
//! [`super::spool`]), at `HEADER_LEN + position - restart`. Each slot of
//! the header has one writer (the spooler owns the restart, the recorder
//! the checkpoint) and is written in one `pwrite` inside one sector; its
//! checksum tells a torn one. A frame carries its own position, so a frame
//! found at the wrong place (after damage, or a restart the header missed)
//! is never taken for another.

use super::tap::Note;
use bytes::Bytes;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use wire::{Direction, Protocol};

/// Bytes before the first frame: a page, so frames start page-aligned.
pub const HEADER_LEN: u64 = 4096;
/// A frame's head: length, checksum, position.
pub const FRAME_HEAD: usize = 16;
/// No frame is larger (a forwarded chunk is at most 64 KiB; a log line
/// 64 KiB): a length beyond it is damage.
const MAX_FRAME: usize = 16 << 20;
const MAGIC: &[u8; 8] = b"OLSPOOL\n";
const VERSION: u16 = 1;
const REWIND_SLOT: u64 = 512;
const CHECKPOINT_SLOT: u64 = 1024;
const FLAG_REDACT: u32 = 1;

/// `TRACE.spool`: where a trace's spool lives.
pub fn path_for(trace: &Path) -> PathBuf {
    let mut name = trace.as_os_str().to_owned();
    name.push(".spool");
    PathBuf::from(name)
}

/// Takes the lock that says a recording is writing `file` (released when
/// the process ends, however it ends). A spool whose lock is free is left
/// over; one whose lock is held is in use ([`in_use`]).
pub fn lock(file: &File) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// True when a running recording holds the spool at `path` ([`lock`]).
pub fn in_use(path: &Path) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(file) = File::open(path) else { return false };
    // SAFETY: flock on a descriptor we own; closing it releases the lock.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } != 0;
    locked && std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
}

/// What ties a spool to its trace: the trace's anchor and the checksum of
/// its prefix (the header, with host, command line and routes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceId {
    pub anchor_unix_ns: u64,
    pub prefix_crc: u32,
}

/// Reads the identity of the trace at `path`, and its prefix length.
pub fn trace_id(path: &Path) -> Result<(TraceId, u64), format::FormatError> {
    let mut file = File::open(path).map_err(|err| format::FormatError::Io { path: path.to_path_buf(), err })?;
    let (header, _, prefix_len) = format::Header::read_prefix(&mut file)?;
    let mut crc = [0u8; 4];
    file.read_exact_at(&mut crc, prefix_len - 4)?;
    Ok((TraceId { anchor_unix_ns: header.anchor_unix_ns, prefix_crc: u32::from_le_bytes(crc) }, prefix_len))
}

/// A spool's header, as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub trace: TraceId,
    pub redact: bool,
    /// Logical position of the file's first frame.
    pub restart: u64,
    /// Every note before this position is decoded and in the trace...
    pub checkpoint: u64,
    /// ...whose first `trace_len` bytes held them.
    pub trace_len: u64,
}

/// Writes a new spool's header: nothing decoded, the trace `trace_len`
/// bytes long (its prefix).
pub fn write_header(file: &File, trace: TraceId, redact: bool, trace_len: u64) -> std::io::Result<()> {
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&trace.anchor_unix_ns.to_le_bytes());
    b.extend_from_slice(&trace.prefix_crc.to_le_bytes());
    b.extend_from_slice(&(if redact { FLAG_REDACT } else { 0 }).to_le_bytes());
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    file.write_all_at(&b, 0)?;
    write_restart(file, 0)?;
    write_checkpoint(file, 0, trace_len)?;
    file.set_len(HEADER_LEN)
}

/// Records that the file's first frame is now at logical position `at`.
pub fn write_restart(file: &File, at: u64) -> std::io::Result<()> {
    file.write_all_at(&slot(&[at]), REWIND_SLOT)
}

/// Records that every note before `pos` is in the trace's first
/// `trace_len` bytes.
pub fn write_checkpoint(file: &File, pos: u64, trace_len: u64) -> std::io::Result<()> {
    file.write_all_at(&slot(&[pos, trace_len]), CHECKPOINT_SLOT)
}

fn slot(values: &[u64]) -> Vec<u8> {
    let mut b: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn read_slot<const N: usize>(file: &File, at: u64) -> Option<[u64; N]> {
    let mut b = vec![0u8; N * 8 + 4];
    file.read_exact_at(&mut b, at).ok()?;
    let crc = u32::from_le_bytes(b[N * 8..].try_into().ok()?);
    if crc32fast::hash(&b[..N * 8]) != crc {
        return None;
    }
    let mut out = [0u64; N];
    for (i, v) in out.iter_mut().enumerate() {
        *v = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().ok()?);
    }
    Some(out)
}

/// Reads a spool's header; the error says what is wrong with it.
pub fn read_header(file: &File) -> Result<Header, String> {
    let mut b = [0u8; 32];
    file.read_exact_at(&mut b, 0).map_err(|e| format!("cannot read its header: {e}"))?;
    if &b[..8] != MAGIC {
        return Err("not an oltrace spool (wrong magic)".into());
    }
    if crc32fast::hash(&b[..28]) != u32::from_le_bytes(b[28..32].try_into().expect("4 bytes")) {
        return Err("its header is damaged (checksum mismatch)".into());
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    if version != VERSION {
        return Err(format!("spool version {version}, this build reads version {VERSION}"));
    }
    let trace = TraceId {
        anchor_unix_ns: u64::from_le_bytes(b[12..20].try_into().expect("8 bytes")),
        prefix_crc: u32::from_le_bytes(b[20..24].try_into().expect("4 bytes")),
    };
    let flags = u32::from_le_bytes(b[24..28].try_into().expect("4 bytes"));
    let [restart] = read_slot::<1>(file, REWIND_SLOT).ok_or("its restart slot is damaged (checksum mismatch)")?;
    let [checkpoint, trace_len] = read_slot::<2>(file, CHECKPOINT_SLOT).ok_or("its checkpoint is damaged (checksum mismatch)")?;
    if checkpoint < restart {
        return Err(format!("its checkpoint ({checkpoint}) is before its restart ({restart})"));
    }
    Ok(Header { trace, redact: flags & FLAG_REDACT != 0, restart, checkpoint, trace_len })
}

/// What [`Scan`] finds in a spool, in order.
#[derive(Debug)]
pub enum Scanned {
    Note(Note),
    /// Bytes that hold no intact frame: torn (the file ends inside a
    /// frame) or corrupt (a wrong length, checksum or position).
    Damage { bytes: u64, what: String },
}

/// Reads the frames of a spool from a logical position on, reporting
/// damage and carrying on after it: the next intact frame is the first
/// place whose head names its own position and whose checksum holds.
pub struct Scan<R> {
    input: R,
    buf: Bytes,
    /// Logical position of `buf[0]`.
    pos: u64,
    eof: bool,
    /// Notes found, and bytes they took.
    pub notes: u64,
    pub note_bytes: u64,
    /// Damaged bytes skipped.
    pub damaged_bytes: u64,
    /// Of those, the bytes at the very end that hold no whole frame: after
    /// a kill, the frame being written when the process died (a SIGKILL
    /// can cut a `pwrite` short).
    pub torn_tail: u64,
}

/// How much a scan reads at a time.
const SCAN_READ: usize = 4 << 20;

impl<R: std::io::Read> Scan<R> {
    /// Scans `input`, whose first byte is at logical position `pos`.
    pub fn new(input: R, pos: u64) -> Scan<R> {
        Scan { input, buf: Bytes::new(), pos, eof: false, notes: 0, note_bytes: 0, damaged_bytes: 0, torn_tail: 0 }
    }

    /// Reads more into `buf`; false at the end of the input.
    fn more(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        // What is left (at most a frame) moves to the front of a new buffer.
        let have = self.buf.len();
        let mut next = bytes::BytesMut::zeroed(have + SCAN_READ.max(have));
        next[..have].copy_from_slice(&self.buf);
        let mut got = 0;
        while have + got < next.len() {
            match self.input.read(&mut next[have + got..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        next.truncate(have + got);
        self.buf = next.freeze();
        Ok(got > 0)
    }

    fn skip(&mut self, n: usize) {
        self.buf = self.buf.slice(n..);
        self.pos += n as u64;
    }

    /// The next note or stretch of damage; `None` at the end.
    pub fn next_item(&mut self) -> std::io::Result<Option<Scanned>> {
        loop {
            if self.buf.is_empty() && !self.more()? {
                return Ok(None);
            }
            match decode(&self.buf, self.pos) {
                Frame::Note(note, used) => {
                    self.skip(used);
                    self.notes += 1;
                    self.note_bytes += used as u64;
                    return Ok(Some(Scanned::Note(note)));
                }
                // A frame cut by the end of the file (or whose length was
                // damaged): what follows may still hold intact frames.
                Frame::Cut if !self.more()? => return self.resync("torn or corrupt: the file ends inside a frame, or a frame's length is damaged").map(Some),
                Frame::Cut => {}
                Frame::Bad => return self.resync("corrupt: no intact frame here").map(Some),
            }
        }
    }

    /// Skips to the next place an intact frame starts (or the end).
    fn resync(&mut self, what: &str) -> std::io::Result<Scanned> {
        let mut skipped = 1usize;
        self.skip(1);
        loop {
            // A cheap test first: the head names this very position.
            let found = (0..self.buf.len().saturating_sub(FRAME_HEAD - 1)).find(|&at| {
                self.buf[at + 8..at + 16] == (self.pos + at as u64).to_le_bytes()
                    && !matches!(decode(&self.buf.slice(at..), self.pos + at as u64), Frame::Bad)
            });
            match found {
                Some(at) => {
                    self.skip(at);
                    return Ok(self.damage(skipped + at, what));
                }
                None => {
                    // Keep the last bytes: a frame head may start there.
                    let keep = self.buf.len().min(FRAME_HEAD - 1);
                    let drop = self.buf.len() - keep;
                    skipped += drop;
                    self.skip(drop);
                    if !self.more()? {
                        skipped += self.buf.len();
                        let rest = self.buf.len();
                        self.skip(rest);
                        self.torn_tail = skipped as u64;
                        return Ok(self.damage(skipped, what));
                    }
                }
            }
        }
    }

    fn damage(&mut self, bytes: usize, what: &str) -> Scanned {
        self.damaged_bytes += bytes as u64;
        Scanned::Damage { bytes: bytes as u64, what: format!("{bytes} bytes at spool position {}: {what}", self.pos - bytes as u64) }
    }
}

impl<R: std::io::Read> Iterator for Scan<R> {
    type Item = std::io::Result<Scanned>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_item().transpose()
    }
}

// ----- notes: the tag and body of a frame -----

const OPEN: u8 = 1;
const DATA: u8 = 2;
const EOF: u8 = 3;
const LOST: u8 = 4;
const CLOSE: u8 = 5;
const LOG: u8 = 6;

/// The length of the frame that starts `b`, if its head is there.
pub fn frame_len(b: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    Some(FRAME_HEAD + len)
}

/// How many bytes at the start of `b` are whole frames (by their lengths:
/// for the spool being written, whose frames are whole and intact).
pub fn whole_prefix(b: &[u8]) -> usize {
    let mut at = 0;
    while let Some(len) = frame_len(&b[at..]) {
        if at + len > b.len() {
            break;
        }
        at += len;
    }
    at
}

/// Appends `note`'s frame, at logical spool position `pos`, to `out`.
pub fn encode(note: &Note, pos: u64, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEAD]);
    out.push(0);
    let tag = match note {
        Note::Open { conn, protocol, client, server, route, tls, ts } => {
            put_u64(out, *conn);
            put_u64(out, *ts);
            out.push(protocol.code());
            put_str(out, client);
            put_str(out, server);
            put_str(out, route);
            out.push(tls.map_or(0, |t| t.code() + 1));
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
    out[start + FRAME_HEAD] = tag;
    let len = (out.len() - start - FRAME_HEAD) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 8..start + 16].copy_from_slice(&pos.to_le_bytes());
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What starts a buffer of spooled bytes.
#[derive(Debug)]
pub enum Frame {
    /// A whole, intact note, and the bytes its frame took. Data is a slice
    /// of the buffer, not a copy.
    Note(Note, usize),
    /// The start of a frame whose rest is not in the buffer (yet).
    Cut,
    /// Not a frame at `pos`: a wrong length, checksum or position, or a
    /// body that does not parse.
    Bad,
}

/// The frame at the start of `b`, which should be at logical position `pos`.
pub fn decode(b: &Bytes, pos: u64) -> Frame {
    let Some(head) = b.get(..FRAME_HEAD) else { return Frame::Cut };
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
    if len == 0 || len > MAX_FRAME {
        return Frame::Bad;
    }
    let Some(frame) = b.get(..FRAME_HEAD + len) else {
        // A plausible head whose position is wrong is no frame, cut or not.
        return if head[8..16] == pos.to_le_bytes() { Frame::Cut } else { Frame::Bad };
    };
    let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    if crc32fast::hash(&frame[8..]) != crc || frame[8..16] != pos.to_le_bytes() {
        return Frame::Bad;
    }
    match note_of(b, FRAME_HEAD + len) {
        Some(note) => Frame::Note(note, FRAME_HEAD + len),
        None => Frame::Bad,
    }
}

/// The note in the frame `b[..len]`, whose checksum was checked.
fn note_of(b: &Bytes, len: usize) -> Option<Note> {
    let mut r = Cursor { b: b.get(FRAME_HEAD + 1..len)? };
    let note = match b[FRAME_HEAD] {
        OPEN => Note::Open {
            conn: r.u64()?,
            ts: r.u64()?,
            protocol: Protocol::from_code(r.u8()?)?,
            client: r.string()?,
            server: r.string()?,
            route: r.string()?,
            tls: match r.u8()? {
                0 => None,
                code => Some(format::TlsMode::from_code(code - 1)?),
            },
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
    Some(note)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn notes() -> Vec<Note> {
        vec![
            Note::Open { conn: 7, protocol: Protocol::Redis, client: "127.0.0.1:5".into(), server: "s:1".into(), route: "redis:0".into(), tls: None, ts: 1 },
            Note::Open { conn: 9, protocol: Protocol::Postgres, client: "c:2".into(), server: "s:2".into(), route: "postgres:0".into(), tls: Some(format::TlsMode::Declined), ts: 1 },
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
            Note::Open { conn, protocol, client, server, route, tls, ts } => format!("open {conn} {protocol:?} {client} {server} {route} {tls:?} {ts}"),
            Note::Data { conn, dir, data, ts } => format!("data {conn} {dir:?} {data:?} {ts}"),
            Note::Eof { conn, dir, ts } => format!("eof {conn} {dir:?} {ts}"),
            Note::Lost { conn, dir, bytes, ts } => format!("lost {conn} {dir:?} {bytes} {ts}"),
            Note::Close { conn, ts, bytes_to_server, bytes_to_client, error } => format!("close {conn} {ts} {bytes_to_server} {bytes_to_client} {error:?}"),
            Note::Log { origin, stream, text, ts } => format!("log {origin} {stream:?} {text} {ts}"),
        }
    }

    fn frames(notes: &[Note]) -> Vec<u8> {
        let mut buf = Vec::new();
        for n in notes {
            let pos = buf.len() as u64;
            encode(n, pos, &mut buf);
        }
        buf
    }

    #[test]
    fn every_note_reads_back_as_written() {
        let buf = Bytes::from(frames(&notes()));
        let mut at = 0;
        let mut back = Vec::new();
        while at < buf.len() {
            let Frame::Note(n, used) = decode(&buf.slice(at..), at as u64) else { panic!("whole note at {at}") };
            back.push(show(&n));
            at += used;
        }
        assert_eq!(back, notes().iter().map(show).collect::<Vec<_>>());
        // Every strict prefix of a note is cut, not a note.
        let one = Bytes::from(frames(&notes()[..1]));
        for cut in 0..one.len() {
            assert!(matches!(decode(&one.slice(..cut), 0), Frame::Cut), "cut at {cut}");
        }
        // At the wrong position it is no frame.
        assert!(matches!(decode(&one, 1), Frame::Bad));
        let last = frames(&notes()[notes().len() - 1..]).len();
        assert_eq!(whole_prefix(&buf[..buf.len() - 1]), buf.len() - last);
    }

    /// Scans `bytes` (the frames of a spool from position 0); returns the
    /// notes found, shown, and the damaged bytes reported.
    fn scan(bytes: Vec<u8>) -> (Vec<String>, u64) {
        let mut notes = Vec::new();
        let mut damaged = 0;
        for item in Scan::new(std::io::Cursor::new(bytes), 0) {
            match item.unwrap() {
                Scanned::Note(n) => notes.push(show(&n)),
                Scanned::Damage { bytes, .. } => damaged += bytes,
            }
        }
        (notes, damaged)
    }

    /// A spool whose last frame was cut short (a kill during its `pwrite`)
    /// has a torn tail of exactly the cut frame's bytes; damage before the
    /// end is not a torn tail.
    #[test]
    fn a_frame_cut_at_the_end_is_a_torn_tail() {
        let notes = many();
        let whole = frames(&notes);
        let last = frames(std::slice::from_ref(notes.last().unwrap())).len();
        let mut scan = Scan::new(std::io::Cursor::new(whole[..whole.len() - last / 2].to_vec()), 0);
        let found = scan.by_ref().filter(|i| matches!(i, Ok(Scanned::Note(_)))).count();
        assert_eq!((found, scan.damaged_bytes, scan.torn_tail), (notes.len() - 1, (last - last / 2) as u64, (last - last / 2) as u64));
        let mut middle = whole.clone();
        middle[last] ^= 0xff;
        let mut scan = Scan::new(std::io::Cursor::new(middle), 0);
        scan.by_ref().for_each(drop);
        assert!(scan.damaged_bytes > 0);
        assert_eq!(scan.torn_tail, 0);
    }

    fn many() -> Vec<Note> {
        (0..60u64)
            .map(|i| match i % 3 {
                0 => Note::Data { conn: i, dir: Direction::ToClient, data: Bytes::from(vec![i as u8; (i * 37 % 500) as usize]), ts: i },
                _ => notes()[(i % 8) as usize].clone(),
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// A spool cut at any offset, with bytes flipped anywhere:
        /// every frame left intact is found, in order; every other byte is
        /// reported as damage; nothing panics.
        #[test]
        fn a_torn_spool_recovers_every_intact_frame(cut in 0usize..20_000, flips in proptest::collection::vec((0usize..20_000, 1u8..=255), 0..6)) {
            let notes = many();
            let mut bytes = frames(&notes);
            // Each frame's range, to tell which survive.
            let mut ranges = Vec::new();
            let mut at = 0;
            for n in &notes {
                let len = frames(std::slice::from_ref(n)).len();
                ranges.push(at..at + len);
                at += len;
            }
            let cut = cut % (bytes.len() + 1);
            bytes.truncate(cut);
            let mut hit = vec![false; ranges.len()];
            for (at, x) in &flips {
                if bytes.is_empty() { break; }
                let at = at % bytes.len();
                bytes[at] ^= x;
                if let Some(i) = ranges.iter().position(|r| r.contains(&at)) { hit[i] = true; }
            }
            let intact: Vec<String> = notes.iter().zip(&ranges).zip(&hit)
                .filter(|((_, r), hit)| r.end <= cut && !**hit)
                .map(|((n, _), _)| show(n)).collect();
            let intact_bytes: usize = ranges.iter().zip(&hit).filter(|(r, hit)| r.end <= cut && !**hit).map(|(r, _)| r.len()).sum();
            let (found, damaged) = scan(bytes);
            prop_assert_eq!(found, intact);
            prop_assert_eq!(damaged as usize, cut - intact_bytes);
        }
    }
}
