//! End-to-end tests: real `mariadbd` servers and the real `shardgate` binary.
//!
//! Every test owns its servers: it starts its own MariaDB instances (temporary datadirs, free ports) and its own
//! proxy (listening on port 0), so tests run in parallel and never share state. The harness lives in `harness/`;
//! each other module holds tests for one area, named as the claims they prove.
//!
//! Tests fail by panicking, so `unwrap`/`expect` with a message saying what failed are the house style here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod harness;

mod auth_plugins;
mod bad_credentials;
mod bad_packets;
mod bad_sql;
mod bad_topology;
mod commands;
mod differential;
mod etcd;
mod faults;
mod harness_selftest;
mod insert_select;
mod isolation;
mod joins;
mod mariadb_cli;
mod multi_statements;
mod observability;
mod pooling;
mod prepared;
mod reload;
mod reshard;
mod reshard_hold;
mod reshard_sql;
mod routing;
mod scatter;
mod scatter_writes;
mod sequences;
mod sessions;
mod temporary_tables;
mod transactions;
mod twopc;
