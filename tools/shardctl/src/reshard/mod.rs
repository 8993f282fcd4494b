//! `shardctl reshard`: the controller side of resharding. So far the steps that touch rows: create the target
//! tables from the source's own definitions, copy a table in locked primary-key chunks with checkpoints, and verify
//! key ranges by checksum (see `shardgate_reshard`). The workflow commands that drive them are not built yet.

pub mod copy;
