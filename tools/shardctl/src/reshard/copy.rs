//! Copying and verifying one table's moving rows from a source shard database to a target one.
//!
//! Each chunk is read with `FOR UPDATE` in a transaction on the source and written to the target with `REPLACE`
//! before that transaction ends, so a concurrent write to a row of the chunk waits for the copy and then reaches
//! the source after it (dual-write carries it to the target). The checkpoint is the last key copied.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use shardgate_reshard::TableProgress;
use shardgate_reshard::chunk::{checksum, quote, select_chunk};

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{what}: {source}")]
    Sql {
        what: String,
        source: mysql_async::Error,
    },
    #[error("table {0} has no primary key: it cannot be copied in chunks")]
    NoPrimaryKey(String),
}

fn sql(what: impl Into<String>) -> impl FnOnce(mysql_async::Error) -> CopyError {
    let what = what.into();
    move |source| CopyError::Sql { what, source }
}

/// Creates each table on the target as the source defines it (`SHOW CREATE TABLE`), unless it exists.
pub async fn create_tables(
    src: &mut Conn,
    dst: &mut Conn,
    tables: &[String],
) -> Result<(), CopyError> {
    for table in tables {
        let what = format!("SHOW CREATE TABLE {table}");
        let row: Option<(String, String)> = src
            .query_first(format!("SHOW CREATE TABLE {}", quote(table)))
            .await
            .map_err(sql(what))?;
        let Some((_, ddl)) = row else { continue };
        let ddl = ddl.replacen("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1);
        dst.query_drop(&ddl)
            .await
            .map_err(sql(format!("creating {table} on the target")))?;
    }
    Ok(())
}

/// The table's columns, and its primary-key columns, in order.
pub async fn describe(
    conn: &mut Conn,
    table: &str,
) -> Result<(Vec<String>, Vec<String>), CopyError> {
    let columns: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND \
             TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (table,),
        )
        .await
        .map_err(sql(format!("columns of {table}")))?;
    let keys: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() AND \
             TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
            (table,),
        )
        .await
        .map_err(sql(format!("primary key of {table}")))?;
    if keys.is_empty() {
        return Err(CopyError::NoPrimaryKey(table.to_string()));
    }
    Ok((columns, keys))
}

/// Copies the next chunk of at most `limit` rows after `progress`'s checkpoint; returns how many rows and the last
/// key copied, or `None` when nothing is left.
pub async fn copy_chunk(
    src: &mut Conn,
    dst: &mut Conn,
    progress: &TableProgress,
    filter: &str,
    limit: u64,
) -> Result<Option<(u64, Vec<String>)>, CopyError> {
    let table = &progress.table;
    let select = select_chunk(
        table,
        &progress.key_columns,
        filter,
        progress.checkpoint.as_deref(),
        limit,
    );
    src.query_drop("BEGIN")
        .await
        .map_err(sql("BEGIN on the source"))?;
    let rows: Vec<Row> = src
        .query(&select)
        .await
        .map_err(sql(format!("reading a chunk of {table}")))?;
    let Some(last) = rows.last() else {
        src.query_drop("COMMIT")
            .await
            .map_err(sql("COMMIT on the source"))?;
        return Ok(None);
    };
    let columns: Vec<String> = last
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    let last_key: Vec<String> = progress
        .key_columns
        .iter()
        .map(|k| {
            let at = columns.iter().position(|c| c == k);
            at.and_then(|i| last.as_ref(i))
                .map_or("NULL".to_string(), |v| v.as_sql(false))
        })
        .collect();
    let values: Vec<String> = rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = (0..row.len())
                .map(|i| row.as_ref(i).unwrap_or(&Value::NULL).as_sql(false))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    let names: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let replace = format!(
        "REPLACE INTO {} ({}) VALUES {}",
        quote(table),
        names.join(", "),
        values.join(", ")
    );
    dst.query_drop(&replace)
        .await
        .map_err(sql(format!("writing a chunk of {table} to the target")))?;
    // Only now may the source rows change: the target has them.
    src.query_drop("COMMIT")
        .await
        .map_err(sql("COMMIT on the source"))?;
    Ok(Some((rows.len() as u64, last_key)))
}

/// A table's moving rows: its name, columns, primary-key columns and the condition selecting them.
#[derive(Debug, Clone)]
pub struct MovingRows {
    pub table: String,
    pub columns: Vec<String>,
    pub keys: Vec<String>,
    pub filter: String,
}

/// Whether source and target hold the same moving rows in the key range (`after`, `upto`].
pub async fn range_matches(
    src: &mut Conn,
    dst: &mut Conn,
    rows: &MovingRows,
    after: Option<&[String]>,
    upto: Option<&[String]>,
) -> Result<bool, CopyError> {
    let table = &rows.table;
    let query = checksum(table, &rows.columns, &rows.keys, &rows.filter, after, upto);
    let a: Option<(u64, u64)> = src
        .query_first(&query)
        .await
        .map_err(sql(format!("checksum of {table}")))?;
    let b: Option<(u64, u64)> = dst
        .query_first(&query)
        .await
        .map_err(sql(format!("checksum of {table}")))?;
    Ok(a == b)
}
