//! [`Timer`]: sleeps that end within tens of microseconds of their
//! deadline.
//!
//! tokio's timer wheel has a 1 ms tick, so a request due at 10.2 ms goes
//! out at 11 ms: at 1x a replay would be up to a millisecond late on every
//! request. Long waits still go through tokio (cheap, no thread); the last
//! two milliseconds are handed to one thread that keeps the deadlines in a
//! heap and sleeps on a condition variable with nanosecond timeouts (the
//! kernel's timer slack, 50 µs by default, is what is left), then wakes the
//! waiting task.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Below this much waiting the timer thread takes over from tokio.
const HANDOVER: Duration = Duration::from_millis(2);

struct Entry {
    due: Instant,
    seq: u64,
    tx: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    stop: bool,
}

/// A handle to the timer thread; cheap to clone. The thread ends when the
/// last handle is dropped.
#[derive(Clone)]
pub struct Timer {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.state.lock() {
            s.stop = true;
        }
        self.0.cv.notify_all();
    }
}

impl Timer {
    /// Starts the timer thread. It stops once `Timer::shutdown` is called.
    pub fn start() -> Timer {
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), cv: Condvar::new() });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("olreplay-timer".into())
            .spawn(move || run(s))
            .expect("spawning the timer thread");
        Timer { shared }
    }

    /// Stops the thread (pending sleeps end at once).
    pub fn shutdown(&self) {
        drop(StopOnDrop(self.shared.clone()));
    }

    /// Sleeps until `due`.
    pub async fn sleep_until(&self, due: Instant) {
        let now = Instant::now();
        if due <= now {
            return;
        }
        if due - now > HANDOVER + Duration::from_millis(1) {
            tokio::time::sleep_until((due - HANDOVER).into()).await;
        }
        if due <= Instant::now() {
            return;
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut s = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.stop {
                return;
            }
            s.seq += 1;
            let seq = s.seq;
            let earliest = s.heap.peek().map(|Reverse(e)| e.due);
            s.heap.push(Reverse(Entry { due, seq, tx }));
            if earliest.is_none_or(|e| due < e) {
                self.shared.cv.notify_one();
            }
        }
        let _ = rx.await;
    }
}

fn run(shared: Arc<Shared>) {
    let mut s = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if s.stop {
            // Wake everyone: dropping the senders ends their waits.
            s.heap.clear();
            return;
        }
        let now = Instant::now();
        while s.heap.peek().is_some_and(|Reverse(e)| e.due <= now) {
            if let Some(Reverse(e)) = s.heap.pop() {
                let _ = e.tx.send(());
            }
        }
        s = match s.heap.peek() {
            Some(Reverse(e)) => {
                let wait = e.due.saturating_duration_since(now);
                shared.cv.wait_timeout(s, wait).unwrap_or_else(|e| e.into_inner()).0
            }
            None => shared.cv.wait(s).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleeps_end_after_their_deadline_in_order() {
        let t = Timer::start();
        let start = Instant::now();
        let mut handles = Vec::new();
        for ms in [5u64, 1, 3, 0, 8] {
            let t = t.clone();
            handles.push(tokio::spawn(async move {
                let due = start + Duration::from_millis(ms);
                t.sleep_until(due).await;
                assert!(Instant::now() >= due);
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        t.shutdown();
    }
}
