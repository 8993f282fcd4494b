//! `shardctl`: the DBA's command-line tool for shardgate, as a library (the binary is its argument parsing).
//!
//! Place in the system: off the data path. It reads and writes topology files with the same
//! `shardgate-topology` code the proxy uses, so "valid here" means "accepted by the proxy". It
//! must not know the proxy's internals: it speaks to files and to the proxy's admin endpoint.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod reshard;
pub mod topology;

/// Exit codes, documented in `--help`.
pub const AFTER_HELP: &str = "\
Exit codes:
  0  ok
  1  invalid input: unreadable or invalid topology, impossible request
  2  usage error: unknown command, bad or missing argument";
