use super::*;
use std::sync::atomic::AtomicU32;

/// Opens numbered fake connections; these tests are about the pool's bookkeeping, not about a backend (the proxy's
/// end-to-end tests drive pools against real MariaDB servers).
struct Counter {
    opened: AtomicU32,
    fail: bool,
    /// While set, connects fail (a server that is down).
    down: std::sync::atomic::AtomicBool,
    resets: AtomicU32,
}

fn counter(fail: bool) -> Counter {
    Counter {
        opened: AtomicU32::new(0),
        fail,
        down: std::sync::atomic::AtomicBool::new(false),
        resets: AtomicU32::new(0),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("refused")]
struct Refused;

impl Manager for Counter {
    type Conn = u32;
    type Error = Refused;
    type Key = bool;
    async fn connect(&self, _key: bool) -> Result<u32, Refused> {
        if self.fail || self.down.load(Ordering::SeqCst) {
            return Err(Refused);
        }
        Ok(self.opened.fetch_add(1, Ordering::SeqCst))
    }
    async fn check(&self, _conn: &mut u32) -> Result<(), Refused> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Refused);
        }
        Ok(())
    }
    async fn reset(&self, conn: &mut u32) -> Result<(), Refused> {
        self.resets.fetch_add(1, Ordering::SeqCst);
        // Odd connections fail their reset, to show that a failed reset closes the connection.
        if *conn % 2 == 1 {
            return Err(Refused);
        }
        Ok(())
    }
}

fn pool(max_size: usize, ms: u64) -> Pool<Counter> {
    Pool::new(
        counter(false),
        PoolConfig::new(max_size, Duration::from_millis(ms)),
    )
}

#[tokio::test]
async fn a_released_connection_is_reused() {
    let p = pool(2, 100);
    let c = p.get(false).await.unwrap();
    assert_eq!(*c, 0);
    assert!(!c.was_reused());
    c.release();
    let c = p.get(false).await.unwrap();
    assert_eq!(*c, 0);
    assert!(c.was_reused());
    assert_eq!(p.manager().opened.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_dropped_checkout_is_closed_not_reused() {
    let p = pool(1, 100);
    drop(p.get(false).await.unwrap());
    let c = p.get(false).await.unwrap();
    assert_eq!(*c, 1);
    assert_eq!(
        p.status(),
        PoolStatus {
            idle: 0,
            in_use: 1,
            max_size: 1,
            opened: 2,
            ..PoolStatus::default()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn acquire_times_out_when_every_connection_is_busy() {
    let p = pool(1, 250);
    let held = p.get(false).await.unwrap();
    let err = p.get(false).await.err().unwrap();
    assert!(
        matches!(err, PoolError::Timeout { max_size: 1, .. }),
        "{err}"
    );
    held.release();
    assert!(p.get(false).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_waiter_gets_the_connection_released_while_it_waits() {
    let p = pool(1, 10_000);
    let held = p.get(false).await.unwrap();
    let p2 = p.clone();
    let waiter = tokio::spawn(async move { *p2.get(false).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(5)).await;
    held.release();
    assert_eq!(waiter.await.unwrap(), 0);
}

#[tokio::test]
async fn a_failed_connect_frees_its_slot() {
    let p = Pool::new(counter(true), PoolConfig::new(1, Duration::from_millis(50)));
    assert!(matches!(
        p.get(false).await,
        Err(PoolError::Connect(Refused))
    ));
    assert!(matches!(
        p.get(false).await,
        Err(PoolError::Connect(Refused))
    ));
    assert_eq!(p.status().in_use, 0);
    assert_eq!(p.status().connect_failures, 2);
}

#[tokio::test]
async fn close_refuses_new_checkouts_and_drops_returning_connections() {
    let p = pool(2, 50);
    let c = p.get(false).await.unwrap();
    p.close();
    assert!(matches!(p.get(false).await, Err(PoolError::Closed)));
    c.release();
    assert_eq!(p.status().idle, 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_wait_queue_fails_at_once() {
    let config = PoolConfig {
        max_waiters: 1,
        ..PoolConfig::new(1, Duration::from_secs(60))
    };
    let p = Pool::new(counter(false), config);
    let held = p.get(false).await.unwrap();
    let p2 = p.clone();
    let waiter = tokio::spawn(async move { p2.get(false).await.map(|c| *c) });
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(p.status().waiting, 1);
    let err = p.get(false).await.err().unwrap();
    assert!(
        matches!(err, PoolError::QueueFull { waiters: 1, .. }),
        "{err}"
    );
    held.release();
    assert_eq!(waiter.await.unwrap().unwrap(), 0);
    assert_eq!(p.status().waiting, 0);
    assert_eq!(p.status().acquire_timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn connections_past_their_idle_timeout_or_lifetime_are_not_reused() {
    let config = PoolConfig {
        idle_timeout: Some(Duration::from_secs(10)),
        max_lifetime: Some(Duration::from_secs(25)),
        ..PoolConfig::new(2, Duration::from_millis(50))
    };
    let p = Pool::new(counter(false), config);
    p.get(false).await.unwrap().release();
    tokio::time::advance(Duration::from_secs(11)).await;
    let c = p.get(false).await.unwrap();
    assert_eq!(*c, 1, "the idle-too-long connection 0 was closed");
    c.release();
    tokio::time::advance(Duration::from_secs(9)).await;
    let c = p.get(false).await.unwrap();
    assert_eq!(*c, 1, "idle 9 s: still reused");
    tokio::time::advance(Duration::from_secs(17)).await;
    // Connection 1 is 26 s old: past its lifetime it is closed when it comes back.
    c.release();
    assert_eq!(p.status().idle, 0);
    assert_eq!(p.status().expired, 2);
}

#[tokio::test(start_paused = true)]
async fn maintain_closes_idle_connections_beyond_min_idle_and_tops_up_to_it() {
    let config = PoolConfig {
        min_idle: 2,
        idle_timeout: Some(Duration::from_secs(10)),
        ..PoolConfig::new(4, Duration::from_millis(50))
    };
    let p = Pool::new(counter(false), config);
    p.maintain().await;
    assert_eq!(p.status().idle, 2, "opened ahead of demand");
    let a = p.get(false).await.unwrap();
    let b = p.get(false).await.unwrap();
    let c = p.get(false).await.unwrap();
    a.release();
    b.release();
    c.release();
    assert_eq!(p.status().idle, 3);
    tokio::time::advance(Duration::from_secs(11)).await;
    p.maintain().await;
    assert_eq!(
        p.status().idle,
        2,
        "idle beyond min_idle closed, min_idle kept"
    );
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_failures_fails_fast_and_closes_by_itself() {
    let health = Arc::new(Health::new(HealthConfig {
        failure_threshold: 2,
        base_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(8),
        check_interval: Duration::from_secs(60),
    }));
    let p = Pool::with_health(
        counter(false),
        PoolConfig::new(2, Duration::from_millis(50)),
        Arc::clone(&health),
    );
    p.manager().down.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        assert!(matches!(
            p.get(false).await,
            Err(PoolError::Connect(Refused))
        ));
    }
    assert_eq!(health.status().state, BreakerState::Open);
    // Open: no connect is tried.
    assert!(matches!(
        p.get(false).await,
        Err(PoolError::Unavailable { .. })
    ));
    assert_eq!(p.status().connect_failures, 2);
    // After the backoff (at most base), one probe; it fails and the next backoff is longer (1 to 2 s).
    tokio::time::advance(Duration::from_millis(1001)).await;
    assert!(matches!(
        p.get(false).await,
        Err(PoolError::Connect(Refused))
    ));
    assert_eq!(p.status().connect_failures, 3);
    assert!(matches!(
        p.get(false).await,
        Err(PoolError::Unavailable { .. })
    ));
    // The server comes back; without any checkout, maintenance probes and closes the breaker.
    p.manager().down.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_millis(2001)).await;
    p.maintain().await;
    assert_eq!(health.status().state, BreakerState::Closed);
    assert_eq!(health.status().opened_total, 1);
    assert_eq!(
        *p.get(false).await.unwrap(),
        0,
        "the probe's connection went idle"
    );
}

#[tokio::test(start_paused = true)]
async fn pools_sharing_a_health_share_one_breaker() {
    let health = Arc::new(Health::new(HealthConfig {
        failure_threshold: 1,
        ..HealthConfig::default()
    }));
    let config = PoolConfig::new(1, Duration::from_millis(50));
    let a = Pool::with_health(counter(true), config, Arc::clone(&health));
    let b = Pool::with_health(counter(false), config, Arc::clone(&health));
    assert!(matches!(
        a.get(false).await,
        Err(PoolError::Connect(Refused))
    ));
    assert!(matches!(
        b.get(false).await,
        Err(PoolError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn reset_and_release_keeps_a_reset_connection_and_closes_one_whose_reset_failed() {
    let p = pool(2, 50);
    let even = p.get(false).await.unwrap();
    let odd = p.get(false).await.unwrap();
    assert_eq!((*even, *odd), (0, 1));
    even.reset_and_release().await;
    odd.reset_and_release().await;
    assert_eq!(p.manager().resets.load(Ordering::SeqCst), 2);
    assert_eq!(p.status().idle, 1);
    assert_eq!(*p.get(false).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_periodic_check_that_fails_counts_toward_the_breaker() {
    let health = Arc::new(Health::new(HealthConfig {
        failure_threshold: 2,
        check_interval: Duration::from_secs(1),
        ..HealthConfig::default()
    }));
    let p = Pool::with_health(
        counter(false),
        PoolConfig::new(2, Duration::from_millis(50)),
        Arc::clone(&health),
    );
    p.get(false).await.unwrap().release();
    p.maintain().await;
    assert!(health.status().last_check.is_some());
    assert_eq!(health.status().state, BreakerState::Closed);
    p.manager().down.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        tokio::time::advance(Duration::from_millis(1001)).await;
        p.maintain().await;
    }
    assert_eq!(health.status().state, BreakerState::Open);
    assert!(health.status().last_error.is_some());
}

#[tokio::test]
async fn a_checkout_gets_a_connection_of_its_key_and_the_pool_stays_within_max_size() {
    let p = pool(2, 50);
    let a = p.get(false).await.unwrap();
    let b = p.get(false).await.unwrap();
    a.release();
    b.release();
    assert_eq!(p.status().idle, 2);
    // No idle connection has key `true`: the oldest idle one is closed to make room for a new one.
    let c = p.get(true).await.unwrap();
    assert_eq!(*c, 2);
    assert_eq!(p.status().idle, 1);
    c.release();
    assert_eq!(*p.get(true).await.unwrap(), 2, "reused by key");
    assert_eq!(
        *p.get(false).await.unwrap(),
        1,
        "the newest idle connection of key false"
    );
    assert_eq!(p.status().opened, 3);
}

/// Connections whose ping fails while the server accepts new ones: an idle socket the server closed.
struct StaleSockets(AtomicU32);

impl Manager for StaleSockets {
    type Conn = u32;
    type Error = Refused;
    type Key = bool;
    async fn connect(&self, _key: bool) -> Result<u32, Refused> {
        Ok(self.0.fetch_add(1, Ordering::SeqCst))
    }
    async fn check(&self, conn: &mut u32) -> Result<(), Refused> {
        // Connection 0 went stale; fresh ones answer.
        if *conn == 0 { Err(Refused) } else { Ok(()) }
    }
    async fn reset(&self, _conn: &mut u32) -> Result<(), Refused> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_stale_idle_socket_failing_its_ping_does_not_count_against_a_server_that_accepts_connections()
 {
    let health = Arc::new(Health::new(HealthConfig {
        failure_threshold: 1,
        check_interval: Duration::from_secs(1),
        ..HealthConfig::default()
    }));
    let p = Pool::with_health(
        StaleSockets(AtomicU32::new(0)),
        PoolConfig::new(2, Duration::from_millis(50)),
        Arc::clone(&health),
    );
    p.get(false).await.unwrap().release();
    p.maintain().await;
    assert_eq!(
        health.status().state,
        BreakerState::Closed,
        "{:?}",
        health.status()
    );
    assert_eq!(
        *p.get(false).await.unwrap(),
        1,
        "the stale one was replaced by a fresh one"
    );
}
