//! The forwarders' side of the recorder: [`Note`]s, the copies of
//! forwarded bytes they carry ([`copy_of`]), and the [`Tap`] that offers
//! them to the recorder thread through a bounded queue.
//!
//! The queue is a lock-free ring (`crossbeam_queue::ArrayQueue`) that the
//! recorder polls; forwarders never wake it. A channel that wakes its
//! receiver on every send cost the forwarding threads a futex wake-up per
//! chunk (12% of the proxy's CPU under redis-benchmark, measured with
//! `perf`); recording has no latency target, so the recorder instead sleeps
//! briefly whenever it finds the queue empty, and is woken only when the
//! queue passes half full.
//!
//! By default forwarding never waits for the recorder: a full queue drops
//! the copy (recorded as a gap). With `--block` ([`Tap::blocking`]) a full
//! queue makes the forwarder wait for room instead: nothing is lost, and
//! the traffic slows to the recorder's pace.

use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};
use wire::{Direction, Protocol};

/// What forwarders tell the recorder.
#[derive(Clone, Debug)]
pub enum Note {
    /// `tls`: what became of TLS on the client's side, on routes that
    /// handle it.
    Open { conn: u64, protocol: Protocol, client: String, server: String, route: String, tls: Option<format::TlsMode>, ts: u64 },
    Data { conn: u64, dir: Direction, data: Bytes, ts: u64 },
    Eof { conn: u64, dir: Direction, ts: u64 },
    /// Bytes of a connection the queue had no room for.
    Lost { conn: u64, dir: Direction, bytes: u64, ts: u64 },
    Close { conn: u64, ts: u64, bytes_to_server: u64, bytes_to_client: u64, error: Option<String> },
    /// A line the wrapped command wrote.
    Log { origin: String, stream: format::LogStream, text: String, ts: u64 },
}

/// A copy of forwarded bytes for a [`Note::Data`], cut from a block the
/// calling thread shares among all its connections' copies.
///
/// A copy of its own per chunk cost a `malloc` on the forwarding thread
/// and a `free` on the spooler's, which glibc makes expensive across
/// threads (about 5% of forwarding's CPU under `redis-benchmark -P 16`,
/// by `perf`). A block is freed once the spooler has dropped every copy
/// cut from it; one per connection instead would hold 1,000 connections'
/// idle blocks.
pub fn copy_of(data: &[u8]) -> Bytes {
    use std::cell::RefCell;
    thread_local!(static BLOCK: RefCell<bytes::BytesMut> = RefCell::new(bytes::BytesMut::new()));
    BLOCK.with_borrow_mut(|block| {
        if block.capacity() < data.len() {
            *block = bytes::BytesMut::with_capacity(COPY_BLOCK.max(data.len()));
        }
        block.extend_from_slice(data);
        block.split().freeze()
    })
}

/// The size of the blocks [`copy_of`] cuts copies from.
const COPY_BLOCK: usize = 64 << 10;

/// State shared by every tap and the recorder.
struct Shared {
    queue: ArrayQueue<Note>,
    /// Set when the recorder stopped (disk full, write error): forwarders
    /// stop copying, traffic goes on.
    stopped: AtomicBool,
    /// The recorder thread, to wake when the queue fills up.
    recorder: OnceLock<Thread>,
}

/// The forwarders' end of the queue. Cloned into every task; the recorder
/// finishes once every clone is gone.
#[derive(Clone)]
pub struct Tap {
    shared: Arc<Shared>,
    /// Bytes dropped because the queue was full.
    pub dropped_bytes: Arc<AtomicU64>,
    clock: Instant,
    /// Wait for room in a full queue instead of dropping (`--block`).
    block: bool,
}

/// The recorder's end of the queue.
pub struct Inbox {
    shared: Arc<Shared>,
    /// Consecutive polls that found nothing: after a while the recorder
    /// sleeps longer, so an idle proxy does not spin.
    idle_polls: u32,
}

/// Makes a queue holding up to `capacity` notes, with times measured from
/// `clock`.
pub fn queue(capacity: usize, clock: Instant) -> (Tap, Inbox) {
    let shared = Arc::new(Shared { queue: ArrayQueue::new(capacity.max(2)), stopped: AtomicBool::new(false), recorder: OnceLock::new() });
    let tap = Tap { shared: shared.clone(), dropped_bytes: Arc::new(AtomicU64::new(0)), clock, block: false };
    (tap, Inbox { shared, idle_polls: 0 })
}

impl Tap {
    /// Nanoseconds since the trace's anchor.
    pub fn now(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// This tap, waiting for room when the queue is full (`on`) instead of
    /// dropping. Every clone made afterwards inherits the choice.
    pub fn blocking(mut self, on: bool) -> Tap {
        self.block = on;
        self
    }

    /// Hands `note` to the recorder if there is room. Never blocks unless
    /// this tap is [`Tap::blocking`]; then a full queue makes it wait for
    /// room. Returns false when the note was dropped (queue full and not
    /// blocking, or the recorder stopped).
    pub fn send(&self, note: Note) -> bool {
        if self.shared.stopped.load(Ordering::Relaxed) {
            return false;
        }
        let result = self.shared.queue.push(note);
        if self.shared.queue.len() * 2 > self.shared.queue.capacity() {
            self.wake_recorder();
        }
        match result {
            Ok(()) => true,
            Err(note) if self.block => self.wait_for_room(note),
            Err(_) => false,
        }
    }

    /// A blocking send that, on a multi-threaded tokio runtime, first hands
    /// this worker's other tasks to another thread: only this connection
    /// waits, not every connection that shares the worker.
    fn wait_for_room(&self, note: Note) -> bool {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(|| self.push_waiting(note))
        } else {
            self.push_waiting(note)
        }
    }

    /// Sends a note the trace must have (open, eof, close), waiting briefly
    /// for room rather than losing it: these are rare and small.
    pub fn send_control(&self, note: Note) {
        self.push_waiting(note);
    }

    /// Pushes `note`, waiting (and waking the recorder) while the queue is
    /// full. False if the recorder stopped first.
    fn push_waiting(&self, mut note: Note) -> bool {
        while !self.shared.stopped.load(Ordering::Relaxed) {
            match self.shared.queue.push(note) {
                Ok(()) => return true,
                Err(back) => {
                    note = back;
                    self.wake_recorder();
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
        }
        false
    }

    fn wake_recorder(&self) {
        if let Some(t) = self.shared.recorder.get() {
            t.unpark();
        }
    }
}

impl Inbox {
    /// Registers the calling thread as the recorder (to be woken when the
    /// queue fills up). Call once, from the recorder thread.
    pub fn attach(&self) {
        let _ = self.shared.recorder.set(std::thread::current());
    }

    /// The next note, if one is waiting.
    pub fn pop(&mut self) -> Option<Note> {
        let note = self.shared.queue.pop();
        if note.is_some() {
            self.idle_polls = 0;
        }
        note
    }

    /// Sleeps until notes may have arrived: 1 ms while traffic flows,
    /// 10 ms once the queue has been empty for a while (or until woken).
    pub fn wait(&mut self) {
        self.idle_polls = self.idle_polls.saturating_add(1);
        let pause = if self.idle_polls < 100 { Duration::from_millis(1) } else { Duration::from_millis(10) };
        std::thread::park_timeout(pause);
    }

    /// True once every [`Tap`] is gone and the queue is empty: nothing more
    /// can arrive.
    pub fn finished(&self) -> bool {
        Arc::strong_count(&self.shared) == 1 && self.shared.queue.is_empty()
    }

    /// Tells forwarders to stop copying (recording failed).
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Copies cut from one block hold what they were given, whatever is
    /// copied after them; so do copies larger than a block, and copies
    /// dropped on another thread.
    #[test]
    fn copies_are_exact_and_independent() {
        let inputs: Vec<Vec<u8>> = (0..5000usize).map(|i| vec![(i % 251) as u8; 1 + (i * 37) % 700]).collect();
        let big = vec![7u8; COPY_BLOCK * 2 + 3];
        let mut copies: Vec<Bytes> = inputs.iter().map(|d| copy_of(d)).collect();
        copies.push(copy_of(&big));
        copies.push(copy_of(b"after"));
        for (c, d) in copies.iter().zip(inputs.iter().chain([&big, &b"after".to_vec()])) {
            assert_eq!(&c[..], &d[..]);
        }
        // Some copies share a block (they are cut from it, not allocated).
        let (a, b) = (&copies[0], &copies[1]);
        assert_eq!(a.as_ptr().wrapping_add(a.len()), b.as_ptr());
        let dropped = std::thread::spawn(move || copies.len()).join().unwrap();
        assert_eq!(dropped, inputs.len() + 2);
        assert_eq!(&copy_of(b"again")[..], b"again");
    }
}
