//! Precise sleeps for the open loop.
//!
//! Tokio's timer rounds deadlines up to the next millisecond. The open loop times each operation from when it was
//! due, so that rounding would be added to every latency: about 1 ms on statements that take 0.1 ms. Instead one
//! thread keeps the pending wake-ups in a heap and waits on a condition variable until the earliest (a futex
//! with a timeout: late by the kernel's timer slack, typically 50–100 µs). It neither spins nor knows about SQL.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Instant;

/// The pacing thread; stops and is joined when dropped.
pub struct Pacer {
    /// State shared with the thread and with pending sleeps.
    shared: Arc<Shared>,
    /// The thread, joined on drop.
    thread: Option<JoinHandle<()>>,
}

/// Pending wake-ups and the signal that the earliest one changed.
#[derive(Default)]
struct Shared {
    /// The heap and the stop flag.
    state: Mutex<State>,
    /// Notified when an earlier wake-up arrives or the pacer stops.
    changed: Condvar,
}

/// What the thread works on.
#[derive(Default)]
struct State {
    /// Wake-ups, earliest first.
    heap: BinaryHeap<Reverse<Entry>>,
    /// Ties broken by arrival, so entries are totally ordered without comparing wakers.
    next_seq: u64,
    /// Set when the pacer is dropped.
    stopped: bool,
}

/// One pending wake-up.
struct Entry {
    /// When to wake.
    at: Instant,
    /// Arrival order.
    seq: u64,
    /// The task to wake.
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Locks `state`; a panic elsewhere cannot leave the heap inconsistent, so a poisoned lock is still used.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pacer {
    /// Starts the pacing thread.
    pub fn start() -> std::io::Result<Pacer> {
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("loadgen-pacer".into())
            .spawn(move || run(&theirs))?;
        Ok(Pacer {
            shared,
            thread: Some(thread),
        })
    }

    /// A future that completes at `at`, not before.
    pub fn sleep_until(&self, at: Instant) -> Sleep {
        Sleep {
            at,
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        lock(&self.shared.state).stopped = true;
        self.shared.changed.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread: wake what is due, then wait until the earliest pending wake-up or a new earlier one.
fn run(shared: &Shared) {
    let mut due = Vec::new();
    let mut state = lock(&shared.state);
    loop {
        if state.stopped {
            return;
        }
        let now = Instant::now();
        while let Some(Reverse(e)) = state.heap.peek() {
            if e.at > now {
                break;
            }
            if let Some(Reverse(e)) = state.heap.pop() {
                due.push(e.waker);
            }
        }
        if !due.is_empty() {
            drop(state);
            due.drain(..).for_each(Waker::wake);
            state = lock(&shared.state);
            continue;
        }
        state = match state.heap.peek() {
            Some(Reverse(e)) => {
                let wait = e.at.saturating_duration_since(now);
                match shared.changed.wait_timeout(state, wait) {
                    Ok((s, _)) => s,
                    Err(poisoned) => poisoned.into_inner().0,
                }
            }
            None => shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// Completes at its instant; see [`Pacer::sleep_until`].
pub struct Sleep {
    /// When to complete.
    at: Instant,
    /// Where to ask for a wake-up.
    shared: Arc<Shared>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        let mut state = lock(&self.shared.state);
        let earliest = state.heap.peek().is_none_or(|Reverse(e)| self.at < e.at);
        let seq = state.next_seq;
        state.next_seq += 1;
        state.heap.push(Reverse(Entry {
            at: self.at,
            seq,
            waker: cx.waker().clone(),
        }));
        drop(state);
        if earliest {
            self.shared.changed.notify_one();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn sleeps_end_no_earlier_than_their_instant() {
        let pacer = Pacer::start().unwrap();
        let base = Instant::now();
        // Instants already past when their turn comes complete at once.
        for ms in [1u64, 3, 2, 0] {
            let at = base + Duration::from_millis(ms);
            pacer.sleep_until(at).await;
            assert!(Instant::now() >= at);
        }
    }

    #[tokio::test]
    async fn concurrent_sleeps_all_complete() {
        let pacer = Arc::new(Pacer::start().unwrap());
        let base = Instant::now();
        let tasks: Vec<_> = (0..8u64)
            .map(|i| {
                let p = pacer.clone();
                tokio::spawn(async move {
                    p.sleep_until(base + Duration::from_micros(300 * (8 - i)))
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }
}
