//! The SQL of a chunked copy and of its verification, on one table of one shard.
//!
//! A chunk is the next `limit` rows of the moving keys after a checkpoint, in primary-key order. The copy reads it
//! with `FOR UPDATE` inside a transaction on the source, so no concurrent write can change a row between the read
//! and the upsert into the target; the transaction ends once the target has the chunk. Verification compares, per
//! key range, the row count and an order-independent hash of the rows (`BIT_XOR` of each row's CRC32) on both sides.
//!
//! `filter` is a condition selecting the moving rows (`tenant_id IN (42)`), written by the controller from the
//! topology; key values are SQL literals as read back from a previous chunk. Identifiers are quoted here.

/// `` `name` `` with backticks doubled.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `'text'` as a string literal, with backslashes and quotes escaped (MariaDB's default `sql_mode`, where a
/// backslash escapes): for values the controller writes into statements, such as workflow ids and table names.
pub fn string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// The key compared with `values` by `op` (`>` or `<`), in key order, written out column by column:
/// `a > 1 OR (a = 1 AND b > 2)`. MariaDB turns this into index ranges; a row comparison `(a, b) > (1, 2)` it
/// does not, and reads every row before the checkpoint again for each chunk.
fn key_beyond(key_columns: &[String], values: &[String], op: &str) -> String {
    let terms: Vec<String> = (0..key_columns.len().min(values.len()))
        .map(|i| {
            let mut parts: Vec<String> = (0..i)
                .map(|j| format!("{} = {}", quote(&key_columns[j]), values[j]))
                .collect();
            parts.push(format!("{} {op} {}", quote(&key_columns[i]), values[i]));
            format!("({})", parts.join(" AND "))
        })
        .collect();
    format!("({})", terms.join(" OR "))
}

/// The key equal to `values`.
fn key_equal(key_columns: &[String], values: &[String]) -> String {
    let parts: Vec<String> = key_columns
        .iter()
        .zip(values)
        .map(|(c, v)| format!("{} = {v}", quote(c)))
        .collect();
    format!("({})", parts.join(" AND "))
}

/// The condition for rows after `after` and up to `upto` (both optional), besides `filter`.
fn range(
    filter: &str,
    key_columns: &[String],
    after: Option<&[String]>,
    upto: Option<&[String]>,
) -> String {
    let mut parts = vec![format!("({filter})")];
    if let Some(after) = after {
        parts.push(key_beyond(key_columns, after, ">"));
    }
    if let Some(upto) = upto {
        parts.push(format!(
            "({} OR {})",
            key_beyond(key_columns, upto, "<"),
            key_equal(key_columns, upto)
        ));
    }
    parts.join(" AND ")
}

/// The moving rows of one table in the key range (`after`, `upto`] (either end open when `None`).
#[derive(Debug, Clone, Copy)]
pub struct KeyRange<'a> {
    pub table: &'a str,
    pub key_columns: &'a [String],
    pub filter: &'a str,
    pub after: Option<&'a [String]>,
    pub upto: Option<&'a [String]>,
}

impl KeyRange<'_> {
    fn condition(&self) -> String {
        range(self.filter, self.key_columns, self.after, self.upto)
    }

    /// Deletes the range's rows: a chunk about to be copied again.
    pub fn delete(&self) -> String {
        format!(
            "DELETE FROM {} WHERE {}",
            quote(self.table),
            self.condition()
        )
    }

    /// The range's rows, locked: a chunk copied again after verify found it differing.
    pub fn select_locked(&self) -> String {
        format!(
            "SELECT * FROM {} WHERE {} FOR UPDATE",
            quote(self.table),
            self.condition()
        )
    }

    fn key_list(&self) -> String {
        let cols: Vec<String> = self.key_columns.iter().map(|c| quote(c)).collect();
        cols.join(", ")
    }

    /// The next chunk to copy, its first `limit` rows in key order, locked: run inside a transaction on the source.
    pub fn select_chunk(&self, limit: u64) -> String {
        format!(
            "SELECT * FROM {} WHERE {} ORDER BY {} LIMIT {limit} FOR UPDATE",
            quote(self.table),
            self.condition(),
            self.key_list()
        )
    }

    /// The key of the range's `n`th row (the end of a verify chunk), or nothing when fewer rows are left.
    pub fn chunk_end(&self, n: u64) -> String {
        format!(
            "SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT 1 OFFSET {}",
            self.key_list(),
            quote(self.table),
            self.condition(),
            self.key_list(),
            n.saturating_sub(1)
        )
    }

    /// Row count and hash of the range's rows: equal on both sides when they hold the same rows. `columns` are
    /// every column of the table; NULL and the empty string hash differently.
    pub fn checksum(&self, columns: &[String]) -> String {
        format!(
            "SELECT COUNT(*), COALESCE(BIT_XOR({}), 0) FROM {} WHERE {}",
            row_hash(columns),
            quote(self.table),
            self.condition()
        )
    }

    /// Each row's key, written as the changelog records it (`'42','7'`), and its hash: where two copies'
    /// checksums differ, which rows do.
    pub fn row_hashes(&self, columns: &[String]) -> String {
        let key: Vec<String> = self
            .key_columns
            .iter()
            .map(|c| format!("QUOTE({})", quote(c)))
            .collect();
        format!(
            "SELECT CONCAT_WS(',', {}), {} FROM {} WHERE {}",
            key.join(", "),
            row_hash(columns),
            quote(self.table),
            self.condition()
        )
    }
}

/// The hash of one row: CRC32 of every column (NULL and the empty string told apart).
fn row_hash(columns: &[String]) -> String {
    let values: Vec<String> = columns
        .iter()
        .map(|c| format!("IFNULL({}, '\\0NULL')", quote(c)))
        .collect();
    let nulls: Vec<String> = columns
        .iter()
        .map(|c| format!("ISNULL({})", quote(c)))
        .collect();
    format!(
        "CRC32(CONCAT_WS(0x1f, {}, {}))",
        values.join(", "),
        nulls.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_chunk_is_the_next_rows_after_the_checkpoint_in_key_order_locked() {
        let keys = cols(&["tenant_id", "id"]);
        let sql = KeyRange {
            table: "orders",
            key_columns: &keys,
            filter: "`tenant_id` IN (42)",
            after: None,
            upto: None,
        }
        .select_chunk(500);
        assert_eq!(
            sql,
            "SELECT * FROM `orders` WHERE (`tenant_id` IN (42)) ORDER BY `tenant_id`, `id` LIMIT 500 FOR UPDATE"
        );
        let after = cols(&["42", "1000"]);
        let sql = KeyRange {
            table: "or`ders",
            key_columns: &keys,
            filter: "1",
            after: Some(&after),
            upto: None,
        }
        .select_chunk(10);
        assert_eq!(
            sql,
            "SELECT * FROM `or``ders` WHERE (1) AND ((`tenant_id` > 42) OR (`tenant_id` = 42 AND `id` > 1000)) ORDER BY `tenant_id`, `id` \
             LIMIT 10 FOR UPDATE"
        );
    }

    #[test]
    fn a_string_literal_escapes_backslashes_and_quotes() {
        assert_eq!(string_literal("wf-1"), "'wf-1'");
        assert_eq!(string_literal("it's a\\b"), "'it''s a\\\\b'");
    }

    #[test]
    fn a_checksum_covers_a_key_range_and_tells_null_from_empty() {
        let (keys, after, upto) = (cols(&["id"]), cols(&["10"]), cols(&["20"]));
        let sql = KeyRange {
            table: "orders",
            key_columns: &keys,
            filter: "`tenant_id` = 42",
            after: Some(&after),
            upto: Some(&upto),
        }
        .checksum(&cols(&["id", "note"]));
        assert_eq!(
            sql,
            "SELECT COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS(0x1f, IFNULL(`id`, '\\0NULL'), IFNULL(`note`, \
             '\\0NULL'), ISNULL(`id`), ISNULL(`note`)))), 0) FROM `orders` WHERE (`tenant_id` = 42) AND ((`id` > \
             10)) AND (((`id` < 20)) OR (`id` = 20))"
        );
    }
}
