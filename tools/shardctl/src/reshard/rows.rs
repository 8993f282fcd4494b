//! Moving rows between shard databases: copy a chunk, copy a key range again, apply captured changes, compare
//! checksums. Every read of the source that leads to a write on a target happens inside a source transaction
//! holding the rows' locks (`FOR UPDATE`) until the targets have them, so a concurrent client write to those rows
//! lands on the source after the copy and is captured for the next apply: targets see each row's versions in the
//! source's order.

use std::collections::{HashMap, HashSet};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use shardgate_reshard::TableProgress;
use shardgate_reshard::capture::{self, Filter};
use shardgate_reshard::chunk::{self, quote};
use shardgate_topology::{TenantRef, Topology};

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum RowsError {
    #[error("{what}: {source}")]
    Sql {
        what: String,
        source: mysql_async::Error,
    },
    #[error(
        "table {table}: a row's tenant {tenant} routes to shard {shard}, which this workflow does not write"
    )]
    NoTarget {
        table: String,
        tenant: String,
        shard: String,
    },
}

impl RowsError {
    /// A lock wait timeout or a deadlock: the step is worth trying again.
    pub fn is_transient(&self) -> bool {
        matches!(self, RowsError::Sql { source: mysql_async::Error::Server(e), .. } if e.code == 1205 || e.code == 1213)
    }
}

pub(crate) fn sql(what: impl Into<String>) -> impl FnOnce(mysql_async::Error) -> RowsError {
    let what = what.into();
    move |source| RowsError::Sql { what, source }
}

/// Where a moving row goes.
pub enum Resolver {
    /// Every row to one shard.
    One(String),
    /// By the tenant column, as this topology routes it (a split, or a merge sent back).
    ByTopology(Box<Topology>),
}

impl Resolver {
    /// The shard a row goes to; `None`: every target (a reference table's full copy).
    fn target(&self, table: &TableProgress, row: &Row) -> Result<Option<String>, RowsError> {
        let topology = match self {
            Resolver::One(shard) => return Ok(Some(shard.clone())),
            Resolver::ByTopology(t) => t,
        };
        let Some(column) = &table.tenant_column else {
            return Ok(None);
        };
        let at = row
            .columns_ref()
            .iter()
            .position(|c| c.name_str() == column.as_str());
        let value = at
            .and_then(|i| row.as_ref(i))
            .cloned()
            .unwrap_or(Value::NULL);
        let text;
        let tenant = match &value {
            Value::Int(n) => TenantRef::Int(*n as u64),
            Value::UInt(n) => TenantRef::Int(*n),
            Value::Bytes(b) => {
                text = String::from_utf8_lossy(b).into_owned();
                TenantRef::Str(&text)
            }
            other => {
                return Err(RowsError::NoTarget {
                    table: table.table.clone(),
                    tenant: other.as_sql(false),
                    shard: "?".into(),
                });
            }
        };
        let shard = topology
            .route(&table.table, tenant)
            .ok()
            .and_then(|id| topology.shard(id))
            .map(|s| s.name.clone())
            .unwrap_or_default();
        Ok(Some(shard))
    }
}

/// The moving rows of `table` (`filter`, as SQL) in a key range.
fn rows_of<'a>(
    table: &'a TableProgress,
    filter: &'a str,
    (after, upto): (Option<&'a [String]>, Option<&'a [String]>),
) -> chunk::KeyRange<'a> {
    chunk::KeyRange {
        table: &table.table,
        key_columns: &table.key_columns,
        filter,
        after,
        upto,
    }
}

/// Connections to the shards rows go to, by shard name.
pub type Targets = HashMap<String, Conn>;

fn target_conn<'a>(
    targets: &'a mut Targets,
    table: &TableProgress,
    shard: &str,
) -> Result<&'a mut Conn, RowsError> {
    targets.get_mut(shard).ok_or_else(|| RowsError::NoTarget {
        table: table.table.clone(),
        tenant: String::new(),
        shard: shard.to_string(),
    })
}

fn values_of(row: &Row) -> String {
    let cells: Vec<String> = (0..row.len())
        .map(|i| row.as_ref(i).unwrap_or(&Value::NULL).as_sql(false))
        .collect();
    format!("({})", cells.join(", "))
}

fn key_of(table: &TableProgress, row: &Row) -> Vec<String> {
    table
        .key_columns
        .iter()
        .map(|k| {
            let at = row
                .columns_ref()
                .iter()
                .position(|c| c.name_str() == k.as_str());
            at.and_then(|i| row.as_ref(i))
                .map_or("NULL".to_string(), |v| v.as_sql(false))
        })
        .collect()
}

/// Writes `rows` to the shards `resolver` sends them to (REPLACE: a row copied twice is the same row).
async fn write_rows(
    targets: &mut Targets,
    table: &TableProgress,
    resolver: &Resolver,
    rows: &[Row],
) -> Result<(), RowsError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let names: Vec<String> = first
        .columns_ref()
        .iter()
        .map(|c| quote(&c.name_str()))
        .collect();
    let mut by_shard: HashMap<String, Vec<String>> = HashMap::new();
    let every: Vec<String> = targets.keys().cloned().collect();
    for row in rows {
        let shards = match resolver.target(table, row)? {
            Some(shard) => vec![shard],
            None => every.clone(),
        };
        for shard in shards {
            by_shard.entry(shard).or_default().push(values_of(row));
        }
    }
    for (shard, values) in by_shard {
        let conn = target_conn(targets, table, &shard)?;
        let replace = format!(
            "REPLACE INTO {} ({}) VALUES {}",
            quote(&table.table),
            names.join(", "),
            values.join(", ")
        );
        conn.query_drop(&replace)
            .await
            .map_err(sql(format!("writing rows of {} to {shard}", table.table)))?;
    }
    Ok(())
}

async fn begin(src: &mut Conn) -> Result<(), RowsError> {
    src.query_drop("BEGIN")
        .await
        .map_err(sql("BEGIN on the source"))
}

async fn commit(src: &mut Conn) -> Result<(), RowsError> {
    src.query_drop("COMMIT")
        .await
        .map_err(sql("COMMIT on the source"))
}

/// Copies the next chunk of at most `limit` rows after the table's checkpoint; the rows copied and the last key,
/// or `None` at the end of the table.
pub async fn copy_chunk(
    src: &mut Conn,
    targets: &mut Targets,
    table: &TableProgress,
    filter: &Filter,
    resolver: &Resolver,
    limit: u64,
) -> Result<Option<(u64, Vec<String>)>, RowsError> {
    let filter = filter.sql("");
    let select = rows_of(table, &filter, (table.checkpoint.as_deref(), None)).select_chunk(limit);
    begin(src).await?;
    let rows: Vec<Row> = src
        .query(&select)
        .await
        .map_err(sql(format!("reading a chunk of {}", table.table)))?;
    let Some(last) = rows.last() else {
        commit(src).await?;
        return Ok(None);
    };
    let last_key = key_of(table, last);
    write_rows(targets, table, resolver, &rows).await?;
    // Only now may the source rows change: the targets have them.
    commit(src).await?;
    Ok(Some((rows.len() as u64, last_key)))
}

/// Row count and hash of a key range of the moving rows, over one or several databases (a split's targets: the
/// counts add up, the hashes XOR together).
pub async fn checksum(
    conns: &mut [&mut Conn],
    table: &TableProgress,
    filter: &Filter,
    after: Option<&[String]>,
    upto: Option<&[String]>,
) -> Result<(u64, u64), RowsError> {
    let filter = filter.sql("");
    let query = rows_of(table, &filter, (after, upto)).checksum(&table.columns);
    let (mut count, mut hash) = (0u64, 0u64);
    for conn in conns.iter_mut() {
        let row: Option<(u64, u64)> = conn
            .query_first(&query)
            .await
            .map_err(sql(format!("checksum of {}", table.table)))?;
        let (c, h) = row.unwrap_or_default();
        count += c;
        hash ^= h;
    }
    Ok((count, hash))
}

/// The keys of a key range whose rows differ between the sources and the targets (a row on one side only, or with
/// another hash, or on two targets).
pub async fn differing_keys(
    sources: &mut Targets,
    targets: &mut Targets,
    table: &TableProgress,
    filter: &Filter,
    range: (Option<&[String]>, Option<&[String]>),
) -> Result<HashSet<String>, RowsError> {
    let filter = filter.sql("");
    let query = rows_of(table, &filter, range).row_hashes(&table.columns);
    let source = row_hashes(sources, &query, &table.table).await?;
    let target = row_hashes(targets, &query, &table.table).await?;
    let mut differing: HashSet<String> = HashSet::new();
    for (key, hash) in &source {
        if hash.is_none() || target.get(key) != Some(hash) {
            differing.insert(key.clone());
        }
    }
    for key in target.keys() {
        if !source.contains_key(key) {
            differing.insert(key.clone());
        }
    }
    Ok(differing)
}

/// Each row's hash by key over `conns`; `None` for a key found twice (on two targets of a split), which matches
/// nothing.
async fn row_hashes(
    conns: &mut Targets,
    query: &str,
    table: &str,
) -> Result<HashMap<String, Option<u64>>, RowsError> {
    let mut hashes = HashMap::new();
    for (shard, conn) in conns.iter_mut() {
        let rows: Vec<(String, u64)> = conn
            .query(query)
            .await
            .map_err(sql(format!("row hashes of {table} on {shard}")))?;
        for (key, hash) in rows {
            if hashes.insert(key.clone(), Some(hash)).is_some() {
                hashes.insert(key, None);
            }
        }
    }
    Ok(hashes)
}

/// The keys of `table` with captured changes of `workflow` not yet applied, over `sources`.
pub async fn pending_keys(
    sources: &mut Targets,
    workflow: &str,
    table: &str,
) -> Result<HashSet<String>, RowsError> {
    let mut keys = HashSet::new();
    for (shard, conn) in sources.iter_mut() {
        let rows: Vec<String> = conn
            .query(capture::pending_keys(workflow, table))
            .await
            .map_err(sql(format!("pending changes of {table} on {shard}")))?;
        keys.extend(rows);
    }
    Ok(keys)
}

/// The end key of the verify chunk after `after`, or `None` when the rest of the table fits in one chunk.
pub async fn chunk_end(
    src: &mut Conn,
    table: &TableProgress,
    filter: &Filter,
    after: Option<&[String]>,
    rows: u64,
) -> Result<Option<Vec<String>>, RowsError> {
    let filter = filter.sql("");
    let query = rows_of(table, &filter, (after, None)).chunk_end(rows);
    let row: Option<Row> = src
        .query_first(&query)
        .await
        .map_err(sql(format!("chunk boundaries of {}", table.table)))?;
    Ok(row.map(|r| {
        (0..r.len())
            .map(|i| r.as_ref(i).unwrap_or(&Value::NULL).as_sql(false))
            .collect()
    }))
}

/// Copies the key range (`after`, `upto`] again: the targets' rows in it deleted, the sources' written, under the
/// sources' locks (a merge has several sources, a split several targets).
pub async fn recopy_range(
    sources: &mut Targets,
    targets: &mut Targets,
    table: &TableProgress,
    filter: &Filter,
    resolver: &Resolver,
    range: (Option<&[String]>, Option<&[String]>),
) -> Result<u64, RowsError> {
    let filter_sql = filter.sql("");
    let rows_in = rows_of(table, &filter_sql, range);
    let select = rows_in.select_locked();
    let mut rows: Vec<Row> = Vec::new();
    for (shard, src) in sources.iter_mut() {
        begin(src).await?;
        let mut part: Vec<Row> = src.query(&select).await.map_err(sql(format!(
            "reading a range of {} on {shard}",
            table.table
        )))?;
        rows.append(&mut part);
    }
    let delete = rows_in.delete();
    for (shard, conn) in targets.iter_mut() {
        conn.query_drop(&delete).await.map_err(sql(format!(
            "clearing a range of {} on {shard}",
            table.table
        )))?;
    }
    write_rows(targets, table, resolver, &rows).await?;
    for src in sources.values_mut() {
        commit(src).await?;
    }
    Ok(rows.len() as u64)
}

/// Applies up to `limit` captured changes of `workflow` from `src` (whose tables are `tables`) to the targets;
/// returns how many were applied (0: none pending).
pub async fn apply_changes(
    src: &mut Conn,
    targets: &mut Targets,
    workflow: &str,
    tables: &[&TableProgress],
    filters: &dyn Fn(&TableProgress) -> Filter,
    resolver: &Resolver,
    limit: u64,
) -> Result<u64, RowsError> {
    let changes: Vec<(u64, String, String)> = src
        .query(capture::read_changes(workflow, limit))
        .await
        .map_err(sql("reading captured changes"))?;
    if changes.is_empty() {
        return Ok(0);
    }
    let mut by_table: HashMap<&str, Vec<String>> = HashMap::new();
    for (_, table, pk) in &changes {
        by_table.entry(table.as_str()).or_default().push(pk.clone());
    }
    for (name, mut pks) in by_table {
        pks.sort();
        pks.dedup();
        let Some(table) = tables.iter().find(|t| t.table == name) else {
            continue;
        };
        let filter = filters(table);
        begin(src).await?;
        let select = capture::select_keys(&table.table, &table.key_columns, &pks);
        let select = match select.strip_suffix(" FOR UPDATE") {
            Some(head) => format!("{head} AND ({}) FOR UPDATE", filter.sql("")),
            None => select,
        };
        let rows: Vec<Row> = src
            .query(&select)
            .await
            .map_err(sql(format!("reading changed rows of {name}")))?;
        let delete = format!(
            "{} AND ({})",
            capture::delete_keys(&table.table, &table.key_columns, &pks),
            filter.sql("")
        );
        for (shard, conn) in targets.iter_mut() {
            conn.query_drop(&delete)
                .await
                .map_err(sql(format!("applying deletes to {name} on {shard}")))?;
        }
        write_rows(targets, table, resolver, &rows).await?;
        commit(src).await?;
    }
    let seqs: Vec<u64> = changes.iter().map(|(seq, _, _)| *seq).collect();
    for batch in seqs.chunks(100) {
        if let Some(forget) = capture::forget_changes(batch) {
            src.query_drop(forget)
                .await
                .map_err(sql("forgetting applied changes"))?;
        }
    }
    Ok(changes.len() as u64)
}

/// Captured changes of `workflow` not yet applied.
pub async fn pending(src: &mut Conn, workflow: &str) -> Result<u64, RowsError> {
    let n: Option<u64> = src
        .query_first(capture::pending_changes(workflow))
        .await
        .map_err(sql("counting captured changes"))?;
    Ok(n.unwrap_or(0))
}
