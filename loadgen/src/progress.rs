//! A live progress line on stderr, once a second, while a round runs: elapsed time, operations per second so
//! far, errors. Only when stderr is a terminal, so logs and pipes stay clean. Connections bump shared counters;
//! they never wait on the printer.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Counters shared by a round's connections.
#[derive(Debug, Default)]
pub struct Counters {
    /// Operations answered, successfully or not.
    done: AtomicU64,
    /// Operations answered with an error.
    errors: AtomicU64,
}

impl Counters {
    /// Counts one answered operation.
    pub fn add(&self, failed: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The line for `done` operations and `errors` errors after `elapsed`.
pub fn line(label: &str, elapsed: Duration, done: u64, errors: u64) -> String {
    let secs = elapsed.as_secs_f64();
    let qps = done as f64 / secs.max(1e-9);
    format!("{label}: {secs:5.1} s  {qps:9.0} qps  {errors} errors")
}

/// The printer of one round; stops when dropped.
pub struct Ticker {
    /// The printing task.
    task: JoinHandle<()>,
}

impl Ticker {
    /// Starts printing `counters` once a second, if stderr is a terminal.
    pub fn start(label: String, counters: Arc<Counters>, started: Instant) -> Option<Ticker> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let task = tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
            loop {
                tick.tick().await;
                let text = line(
                    &label,
                    started.elapsed(),
                    counters.done.load(Ordering::Relaxed),
                    counters.errors.load(Ordering::Relaxed),
                );
                // Carriage return and erase-line: the line is rewritten in place.
                eprint!("\r\x1b[2K{text}");
                let _ = std::io::stderr().flush();
            }
        });
        Some(Ticker { task })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
        eprint!("\r\x1b[2K");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_elapsed_rate_and_errors() {
        assert_eq!(
            line("round 1", Duration::from_secs(2), 5000, 3),
            "round 1:   2.0 s       2500 qps  3 errors"
        );
    }
}
