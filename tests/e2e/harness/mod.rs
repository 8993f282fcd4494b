//! Test harness: starts real MariaDB servers and the real proxy, speaks the wire protocol by hand where a driver
//! would hide what is being tested, and checks errors the way a client sees them.
//!
//! Nothing here mocks MariaDB or the proxy. Processes are killed and their files removed when their handle drops.
// The harness offers a slightly wider API than today's tests use (e.g. `pool()`), so that new tests need no
// harness changes; unused helpers must not fail `clippy -D warnings`.
#![allow(dead_code)]

pub mod binaries;
pub mod cli;
pub mod cluster;
pub mod deadline;
pub mod expect;
pub mod http;
pub mod layout;
pub mod mariadb;
pub mod outcome;
pub mod proxy;
pub mod raw;
pub mod schema;
pub mod shardctl;

pub use cluster::Cluster;
pub use deadline::{bounded, within};
pub use mariadb::MariaDb;

/// Waits for every task of `tasks`, re-raising the first panic so the test fails with the task's message.
pub async fn join_all<T: 'static>(mut tasks: tokio::task::JoinSet<T>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(value) => results.push(value),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    results
}
