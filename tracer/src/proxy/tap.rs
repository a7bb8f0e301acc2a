//! The forwarders' side of the recorder: [`Note`]s, and the [`Tap`] that
//! offers them to the recorder thread through a bounded queue. By default
//! forwarding never waits for the recorder: a full queue drops the copy
//! (recorded as a gap). With `--block` ([`Tap::blocking`]) a full queue
//! makes the forwarder wait for room instead: nothing is lost, and the
//! traffic slows to the recorder's pace.

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Instant;
use wire::{Direction, Protocol};

/// What forwarders tell the recorder.
pub enum Note {
    Open { conn: u64, protocol: Protocol, client: String, server: String, route: String, ts: u64 },
    Data { conn: u64, dir: Direction, data: Bytes, ts: u64 },
    Eof { conn: u64, dir: Direction, ts: u64 },
    /// Bytes of a connection the queue had no room for.
    Lost { conn: u64, dir: Direction, bytes: u64, ts: u64 },
    Close { conn: u64, ts: u64, bytes_to_server: u64, bytes_to_client: u64, error: Option<String> },
    /// A line the wrapped command wrote.
    Log { origin: String, stream: format::LogStream, text: String, ts: u64 },
}

/// The forwarders' end of the queue. Cloned into every task.
#[derive(Clone)]
pub struct Tap {
    pub(super) tx: SyncSender<Note>,
    /// Set when the recorder stopped (disk full, write error): forwarders
    /// stop copying, traffic goes on.
    pub(super) stopped: Arc<AtomicBool>,
    /// Bytes dropped because the queue was full.
    pub dropped_bytes: Arc<AtomicU64>,
    pub(super) clock: Instant,
    /// Wait for room in a full queue instead of dropping (`--block`).
    pub(super) block: bool,
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
        if self.stopped.load(Ordering::Relaxed) {
            return false;
        }
        match self.tx.try_send(note) {
            Ok(()) => true,
            Err(TrySendError::Full(note)) if self.block => self.wait_for_room(note),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// A blocking send that, on a multi-threaded tokio runtime, first hands
    /// this worker's other tasks to another thread: only this connection
    /// waits, not every connection that shares the worker.
    fn wait_for_room(&self, note: Note) -> bool {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let sent = if multi_thread {
            tokio::task::block_in_place(|| self.tx.send(note))
        } else {
            self.tx.send(note)
        };
        sent.is_ok()
    }

    /// Sends a note the trace must have (open, eof, close), waiting briefly
    /// for room rather than losing it: these are rare and small.
    pub fn send_control(&self, note: Note) {
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        let _ = self.tx.send(note);
    }
}

