use super::*;
use std::sync::atomic::AtomicU32;

/// Opens numbered fake connections; these tests are about the pool's bookkeeping, not about a backend.
struct Counter {
    opened: AtomicU32,
    fail: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("refused")]
struct Refused;

impl Manager for Counter {
    type Conn = u32;
    type Error = Refused;
    async fn connect(&self) -> Result<u32, Refused> {
        if self.fail {
            return Err(Refused);
        }
        Ok(self.opened.fetch_add(1, Ordering::SeqCst))
    }
}

fn pool(max_size: usize, ms: u64) -> Pool<Counter> {
    Pool::new(
        Counter {
            opened: AtomicU32::new(0),
            fail: false,
        },
        PoolConfig {
            max_size,
            acquire_timeout: Duration::from_millis(ms),
        },
    )
}

#[tokio::test]
async fn a_released_connection_is_reused() {
    let p = pool(2, 100);
    let c = p.get().await.unwrap();
    assert_eq!(*c, 0);
    assert!(!c.was_reused());
    c.release();
    let c = p.get().await.unwrap();
    assert_eq!(*c, 0);
    assert!(c.was_reused());
    assert_eq!(p.manager().opened.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_dropped_checkout_is_closed_not_reused() {
    let p = pool(1, 100);
    drop(p.get().await.unwrap());
    let c = p.get().await.unwrap();
    assert_eq!(*c, 1);
    assert_eq!(
        p.status(),
        PoolStatus {
            idle: 0,
            in_use: 1,
            max_size: 1
        }
    );
}

#[tokio::test(start_paused = true)]
async fn acquire_times_out_when_every_connection_is_busy() {
    let p = pool(1, 250);
    let held = p.get().await.unwrap();
    let err = p.get().await.err().unwrap();
    assert!(
        matches!(err, PoolError::Timeout { max_size: 1, .. }),
        "{err}"
    );
    held.release();
    assert!(p.get().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_waiter_gets_the_connection_released_while_it_waits() {
    let p = pool(1, 10_000);
    let held = p.get().await.unwrap();
    let p2 = p.clone();
    let waiter = tokio::spawn(async move { *p2.get().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(5)).await;
    held.release();
    assert_eq!(waiter.await.unwrap(), 0);
}

#[tokio::test]
async fn a_failed_connect_frees_its_slot() {
    let p = Pool::new(
        Counter {
            opened: AtomicU32::new(0),
            fail: true,
        },
        PoolConfig {
            max_size: 1,
            acquire_timeout: Duration::from_millis(50),
        },
    );
    assert!(matches!(p.get().await, Err(PoolError::Connect(Refused))));
    assert!(matches!(p.get().await, Err(PoolError::Connect(Refused))));
    assert_eq!(p.status().in_use, 0);
}

#[tokio::test]
async fn close_refuses_new_checkouts_and_drops_returning_connections() {
    let p = pool(2, 50);
    let c = p.get().await.unwrap();
    p.close();
    assert!(matches!(p.get().await, Err(PoolError::Closed)));
    c.release();
    assert_eq!(p.status().idle, 0);
}
