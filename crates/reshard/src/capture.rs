//! The SQL of change capture on a source shard, of the cutover fence, and of the source's cleanup.
//!
//! While rows are copied, writes to them go on. Triggers on the source record the primary key of every moving row a
//! committed statement touches in a changelog table in the same database. They run inside the writing transaction,
//! so a rolled-back write leaves no entry and a committed one cannot be missed. The controller reads the changelog
//! in order, re-copies the current source rows of those keys (a key whose row is gone is deleted on the target), and
//! forgets the entries it applied; the number of entries left is the lag.
//!
//! At cutover, "deny" triggers make the source refuse writes to the moving rows, so that a proxy still routing by the
//! old topology fails loudly instead of writing where nobody will read. The controller's own sessions set
//! [`BYPASS_VARIABLE`], so that their writes (cleanup, a reverse) are neither captured nor refused.
//!
//! Pure builders: nothing here opens a connection. Statements name tables without a database, so the controller runs
//! them on a session whose default database is the shard's. Each statement is sent on its own over the protocol, so
//! trigger bodies (`BEGIN ... END`) need no client `DELIMITER`.
//!
//! A key is recorded as the body of an SQL tuple of literals (`'42','7'`, from `QUOTE` of each key column), ready to
//! paste into `WHERE (key columns) IN ((...), ...)`. Key columns of binary types holding bytes that are not valid
//! UTF-8 cannot be recorded this way: the changelog's text column refuses them (and so the write, under a strict
//! `sql_mode`), so the controller must not capture such tables.

use crate::chunk::{quote, string_literal};

/// The changelog table, one per source database, shared by every workflow reading from it.
pub const CHANGELOG_TABLE: &str = "_shardgate_changelog";

/// The session variable that, when not NULL, makes the triggers ignore a session's writes: the controller sets it
/// (to the workflow id) on its own connections.
pub const BYPASS_VARIABLE: &str = "@shardgate_reshard";

/// `MESSAGE_TEXT` of a `SIGNAL` holds at most this many characters.
const MESSAGE_TEXT_MAX: usize = 128;

/// Which rows of a table move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every row (a split or merge moves the whole shard; reference tables copied to a new shard).
    All,
    /// Rows whose tenant column is one of these values (SQL literals, already quoted/escaped, e.g. `42` or `'acme'`).
    TenantIn { column: String, values: Vec<String> },
}

impl Filter {
    /// The condition on a row, with an alias prefix: `""` for plain queries, `"NEW."` or `"OLD."` inside triggers.
    /// `All` is `1`; `TenantIn` is `` `tenant_id` IN (42, 43) `` (no values: `0`, matching no row, rather than a
    /// syntax error).
    pub fn sql(&self, alias: &str) -> String {
        match self {
            Filter::All => "1".to_string(),
            Filter::TenantIn { values, .. } if values.is_empty() => "0".to_string(),
            Filter::TenantIn { column, values } => {
                format!("{alias}{} IN ({})", quote(column), values.join(", "))
            }
        }
    }
}

/// What a trigger is for; part of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Records moving rows' keys in the changelog.
    Capture,
    /// Refuses writes to moving rows after cutover.
    Deny,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Purpose::Capture => "cap",
            Purpose::Deny => "deny",
        }
    }
}

/// The statement kind a trigger fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    Insert,
    Update,
    Delete,
}

impl Event {
    /// Every event, in the order the trigger builders return their statements.
    pub const ALL: [Event; 3] = [Event::Insert, Event::Update, Event::Delete];

    /// The SQL keyword: `INSERT`, `UPDATE` or `DELETE`.
    pub fn keyword(self) -> &'static str {
        match self {
            Event::Insert => "INSERT",
            Event::Update => "UPDATE",
            Event::Delete => "DELETE",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Event::Insert => "i",
            Event::Update => "u",
            Event::Delete => "d",
        }
    }
}

/// `CREATE TABLE IF NOT EXISTS` the changelog. `seq` orders entries (and names them for [`forget_changes`]); the
/// `(workflow, seq)` index serves [`read_changes`] and [`pending_changes`]. Explicitly utf8mb4, so that the
/// database's default character set cannot refuse a key; `pk` is longer than InnoDB's 3,072-byte key limit because
/// quoting can double a value and adds quotes and commas.
pub fn create_changelog() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, workflow \
         VARCHAR(64) NOT NULL, tbl VARCHAR(64) NOT NULL, pk VARCHAR(8192) NOT NULL, KEY (workflow, seq)) \
         ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        quote(CHANGELOG_TABLE)
    )
}

/// A trigger's name: deterministic (a resumed controller finds what it installed), distinct per workflow, table,
/// purpose and event, and within MariaDB's 64 characters whatever the names' lengths (they enter as a hash).
pub fn trigger_name(workflow: &str, table: &str, purpose: Purpose, event: Event) -> String {
    let mut input = Vec::with_capacity(workflow.len() + 1 + table.len());
    input.extend_from_slice(workflow.as_bytes());
    input.push(0);
    input.extend_from_slice(table.as_bytes());
    let hash = xxhash_rust::xxh64::xxh64(&input, 0);
    format!("sg_{}_{}_{hash:016x}", purpose.tag(), event.tag())
}

/// `CREATE TRIGGER <name> <timing> <event> ON <table> FOR EACH ROW BEGIN <body> END`.
fn trigger(
    workflow: &str,
    table: &str,
    purpose: Purpose,
    event: Event,
    timing: &str,
    body: &str,
) -> String {
    format!(
        "CREATE TRIGGER {} {timing} {} ON {} FOR EACH ROW BEGIN {body} END",
        quote(&trigger_name(workflow, table, purpose, event)),
        event.keyword(),
        quote(table)
    )
}

/// The statement recording the key of the row `alias` (`NEW.` or `OLD.`).
fn record(workflow: &str, table: &str, key_columns: &[String], alias: &str) -> String {
    let values: Vec<String> = key_columns
        .iter()
        .map(|c| format!("QUOTE({alias}{})", quote(c)))
        .collect();
    format!(
        "INSERT INTO {} (workflow, tbl, pk) VALUES ({}, {}, CONCAT_WS(',', {}));",
        quote(CHANGELOG_TABLE),
        string_literal(workflow),
        string_literal(table),
        values.join(", ")
    )
}

/// Three `AFTER INSERT/UPDATE/DELETE` triggers recording moving rows' keys: an inserted row's if it matches the
/// filter, a deleted row's likewise, and for an update the old key if the old row matches and the new key if the new
/// row matches (both when the key or the tenant changed; once when neither did). Writes of a session with
/// [`BYPASS_VARIABLE`] set are not recorded. `workflow` must fit the changelog's 64 characters.
pub fn capture_triggers(
    workflow: &str,
    table: &str,
    key_columns: &[String],
    filter: &Filter,
) -> Vec<String> {
    let old = filter.sql("OLD.");
    let new = filter.sql("NEW.");
    let same_key: Vec<String> = key_columns
        .iter()
        .map(|c| format!("OLD.{0} <=> NEW.{0}", quote(c)))
        .collect();
    let on =
        |event, body: String| trigger(workflow, table, Purpose::Capture, event, "AFTER", &body);
    let unless_bypassed =
        |inner: String| format!("IF {BYPASS_VARIABLE} IS NULL THEN {inner} END IF;");
    vec![
        on(
            Event::Insert,
            format!(
                "IF {BYPASS_VARIABLE} IS NULL AND ({new}) THEN {} END IF;",
                record(workflow, table, key_columns, "NEW.")
            ),
        ),
        on(
            Event::Update,
            unless_bypassed(format!(
                "IF ({old}) THEN {} END IF; IF ({new}) AND NOT (({old}) AND {}) THEN {} END IF;",
                record(workflow, table, key_columns, "OLD."),
                same_key.join(" AND "),
                record(workflow, table, key_columns, "NEW.")
            )),
        ),
        on(
            Event::Delete,
            format!(
                "IF {BYPASS_VARIABLE} IS NULL AND ({old}) THEN {} END IF;",
                record(workflow, table, key_columns, "OLD.")
            ),
        ),
    ]
}

/// Three `BEFORE INSERT/UPDATE/DELETE` triggers refusing writes to moving rows (the new row of an insert, the old
/// one of a delete, either of an update) with SQLSTATE 45000 and error 1644, naming the table and the workflow, so
/// that a proxy routing by an old topology fails instead of writing to the source nobody reads any more. Sessions
/// with [`BYPASS_VARIABLE`] set may write.
pub fn deny_triggers(workflow: &str, table: &str, filter: &Filter) -> Vec<String> {
    let text = format!(
        "rows of table {} moved by resharding workflow {workflow}: this proxy routes by an old topology",
        quote(table)
    );
    let text: String = text.chars().take(MESSAGE_TEXT_MAX).collect();
    let signal = format!(
        "SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO = 1644, MESSAGE_TEXT = {};",
        string_literal(&text)
    );
    let condition = |event| match event {
        Event::Insert => filter.sql("NEW."),
        Event::Update => format!("({}) OR ({})", filter.sql("OLD."), filter.sql("NEW.")),
        Event::Delete => filter.sql("OLD."),
    };
    Event::ALL
        .into_iter()
        .map(|event| {
            let body = format!(
                "IF {BYPASS_VARIABLE} IS NULL AND ({}) THEN {signal} END IF;",
                condition(event)
            );
            trigger(workflow, table, Purpose::Deny, event, "BEFORE", &body)
        })
        .collect()
}

/// `DROP TRIGGER IF EXISTS` for the three triggers of a purpose: safe to repeat after a crash.
pub fn drop_triggers(workflow: &str, table: &str, purpose: Purpose) -> Vec<String> {
    Event::ALL
        .into_iter()
        .map(|event| {
            format!(
                "DROP TRIGGER IF EXISTS {}",
                quote(&trigger_name(workflow, table, purpose, event))
            )
        })
        .collect()
}

/// The oldest `limit` entries of a workflow: `seq, tbl, pk`, in the order they were committed.
pub fn read_changes(workflow: &str, limit: u64) -> String {
    format!(
        "SELECT seq, tbl, pk FROM {} WHERE workflow = {} ORDER BY seq LIMIT {limit}",
        quote(CHANGELOG_TABLE),
        string_literal(workflow)
    )
}

/// Deletes applied entries, one primary-key lookup each (a `seq IN (…)` over a small changelog is read whole, and
/// would wait on an entry a client's open transaction has just written); `None` when there is nothing to forget.
pub fn forget_changes(seqs: &[u64]) -> Option<String> {
    if seqs.is_empty() {
        return None;
    }
    let each: Vec<String> = seqs
        .iter()
        .map(|seq| format!("DELETE FROM {} WHERE seq = {seq}", quote(CHANGELOG_TABLE)))
        .collect();
    Some(each.join("; "))
}

/// The keys of `table` with captured changes not yet applied.
pub fn pending_keys(workflow: &str, table: &str) -> String {
    format!(
        "SELECT pk FROM {} WHERE workflow = {} AND tbl = {}",
        quote(CHANGELOG_TABLE),
        string_literal(workflow),
        string_literal(table)
    )
}

/// The number of entries of a workflow not yet applied: the lag.
pub fn pending_changes(workflow: &str) -> String {
    format!(
        "SELECT COUNT(*) FROM {} WHERE workflow = {}",
        quote(CHANGELOG_TABLE),
        string_literal(workflow)
    )
}

/// `` (`a`, `b`) IN ((pk1), (pk2)) `` for recorded keys; `0` (no row) for none.
fn keys_in(key_columns: &[String], pks: &[String]) -> String {
    if pks.is_empty() {
        return "0".to_string();
    }
    let cols: Vec<String> = key_columns.iter().map(|c| quote(c)).collect();
    let tuples: Vec<String> = pks.iter().map(|pk| format!("({pk})")).collect();
    format!("({}) IN ({})", cols.join(", "), tuples.join(", "))
}

/// The current source rows of recorded keys (`pks` as read from the changelog), locked until the target has them.
pub fn select_keys(table: &str, key_columns: &[String], pks: &[String]) -> String {
    format!(
        "SELECT * FROM {} WHERE {} FOR UPDATE",
        quote(table),
        keys_in(key_columns, pks)
    )
}

/// Deletes the rows of recorded keys: on the target, for keys whose source row is gone.
pub fn delete_keys(table: &str, key_columns: &[String], pks: &[String]) -> String {
    format!(
        "DELETE FROM {} WHERE {}",
        quote(table),
        keys_in(key_columns, pks)
    )
}

/// Deletes at most `limit` moving rows in key order: cleanup of the source after cutover, or of a shared target on
/// cancel, in chunks short enough not to hold locks for long. Repeat until it affects no row.
pub fn delete_chunk(table: &str, key_columns: &[String], filter: &Filter, limit: u64) -> String {
    let order: Vec<String> = key_columns.iter().map(|c| quote(c)).collect();
    format!(
        "DELETE FROM {} WHERE ({}) ORDER BY {} LIMIT {limit}",
        quote(table),
        filter.sql(""),
        order.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn tenant_42() -> Filter {
        Filter::TenantIn {
            column: "tenant_id".into(),
            values: cols(&["42", "43"]),
        }
    }

    #[test]
    fn a_filter_is_a_condition_on_a_plain_or_trigger_row() {
        assert_eq!(Filter::All.sql("NEW."), "1");
        assert_eq!(tenant_42().sql(""), "`tenant_id` IN (42, 43)");
        assert_eq!(tenant_42().sql("OLD."), "OLD.`tenant_id` IN (42, 43)");
        let none = Filter::TenantIn {
            column: "t".into(),
            values: vec![],
        };
        assert_eq!(none.sql(""), "0", "no tenants match no row");
    }

    #[test]
    fn trigger_names_are_short_stable_and_distinct_per_workflow_table_purpose_and_event() {
        let long = "w".repeat(200);
        let mut names = std::collections::HashSet::new();
        for (workflow, table) in [
            ("wf-1", "t"),
            ("wf-1", "u"),
            ("wf-2", "t"),
            (long.as_str(), "t"),
        ] {
            for purpose in [Purpose::Capture, Purpose::Deny] {
                for event in Event::ALL {
                    let name = trigger_name(workflow, table, purpose, event);
                    assert!(name.len() <= 64, "{name}");
                    assert_eq!(name, trigger_name(workflow, table, purpose, event));
                    names.insert(name);
                }
            }
        }
        assert_eq!(names.len(), 4 * 2 * 3);
        assert_ne!(
            trigger_name("a", "bc", Purpose::Capture, Event::Insert),
            trigger_name("ab", "c", Purpose::Capture, Event::Insert),
            "the separator keeps workflow and table apart"
        );
    }

    #[test]
    fn capture_triggers_record_moving_keys_as_literal_tuples_unless_bypassed() {
        let keys = cols(&["tenant_id", "id"]);
        let [ins, upd, del] =
            <[String; 3]>::try_from(capture_triggers("wf-1", "t", &keys, &tenant_42())).unwrap();
        let h = |e| trigger_name("wf-1", "t", Purpose::Capture, e);
        let rec = |a: &str| {
            format!(
                "INSERT INTO `_shardgate_changelog` (workflow, tbl, pk) VALUES ('wf-1', 't', \
                 CONCAT_WS(',', QUOTE({a}`tenant_id`), QUOTE({a}`id`)));"
            )
        };
        assert_eq!(
            ins,
            format!(
                "CREATE TRIGGER `{}` AFTER INSERT ON `t` FOR EACH ROW BEGIN IF @shardgate_reshard IS NULL AND \
                 (NEW.`tenant_id` IN (42, 43)) THEN {} END IF; END",
                h(Event::Insert),
                rec("NEW.")
            )
        );
        assert_eq!(
            upd,
            format!(
                "CREATE TRIGGER `{}` AFTER UPDATE ON `t` FOR EACH ROW BEGIN IF @shardgate_reshard IS NULL THEN \
                 IF (OLD.`tenant_id` IN (42, 43)) THEN {} END IF; IF (NEW.`tenant_id` IN (42, 43)) AND NOT \
                 ((OLD.`tenant_id` IN (42, 43)) AND OLD.`tenant_id` <=> NEW.`tenant_id` AND OLD.`id` <=> NEW.`id`) \
                 THEN {} END IF; END IF; END",
                h(Event::Update),
                rec("OLD."),
                rec("NEW.")
            )
        );
        assert_eq!(
            del,
            format!(
                "CREATE TRIGGER `{}` AFTER DELETE ON `t` FOR EACH ROW BEGIN IF @shardgate_reshard IS NULL AND \
                 (OLD.`tenant_id` IN (42, 43)) THEN {} END IF; END",
                h(Event::Delete),
                rec("OLD.")
            )
        );
        let all = capture_triggers("wf-1", "t", &cols(&["id"]), &Filter::All);
        assert!(all[0].contains("IS NULL AND (1) THEN"), "{}", all[0]);
        assert!(
            all[1].contains("IF (1) AND NOT ((1) AND OLD.`id` <=> NEW.`id`)"),
            "{}",
            all[1]
        );
    }

    #[test]
    fn deny_triggers_signal_1644_naming_the_workflow_unless_bypassed() {
        let triggers = deny_triggers("wf-1", "t", &tenant_42());
        let message = "'rows of table `t` moved by resharding workflow wf-1: this proxy routes by an old topology'";
        let signal =
            format!("SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO = 1644, MESSAGE_TEXT = {message};");
        assert_eq!(
            triggers[0],
            format!(
                "CREATE TRIGGER `{}` BEFORE INSERT ON `t` FOR EACH ROW BEGIN IF @shardgate_reshard IS NULL AND \
                 (NEW.`tenant_id` IN (42, 43)) THEN {signal} END IF; END",
                trigger_name("wf-1", "t", Purpose::Deny, Event::Insert)
            )
        );
        assert!(triggers[1].contains(
            "BEFORE UPDATE ON `t` FOR EACH ROW BEGIN IF @shardgate_reshard IS NULL AND ((OLD.`tenant_id` IN (42, \
             43)) OR (NEW.`tenant_id` IN (42, 43))) THEN"
        ));
        assert!(triggers[2].contains(
            "BEFORE DELETE ON `t` FOR EACH ROW BEGIN IF @shardgate_reshard IS NULL AND \
             (OLD.`tenant_id` IN (42, 43)) THEN"
        ));
        let long = deny_triggers(&"w".repeat(300), "t", &Filter::All);
        let text = long[0].split("MESSAGE_TEXT = '").nth(1).unwrap();
        let text = text.strip_suffix("'; END IF; END").unwrap();
        assert_eq!(
            text.chars().count(),
            128,
            "MESSAGE_TEXT holds 128 characters"
        );
    }

    #[test]
    fn identifiers_are_quoted_and_names_are_escaped_literals() {
        let keys = cols(&["i`d"]);
        let triggers = capture_triggers("it's", "a`b", &keys, &Filter::All);
        assert!(
            triggers[0].contains(" AFTER INSERT ON `a``b` "),
            "{}",
            triggers[0]
        );
        assert!(triggers[0].contains("VALUES ('it''s', 'a`b', CONCAT_WS(',', QUOTE(NEW.`i``d`)))"));
        let deny = deny_triggers("wf", "a`b", &Filter::All);
        assert!(
            deny[0].contains("'rows of table `a``b` moved"),
            "{}",
            deny[0]
        );
        assert_eq!(
            select_keys("a`b", &keys, &cols(&["'1'", "'2'"])),
            "SELECT * FROM `a``b` WHERE (`i``d`) IN (('1'), ('2')) FOR UPDATE"
        );
        assert_eq!(
            drop_triggers("wf", "a`b", Purpose::Deny)[1],
            format!(
                "DROP TRIGGER IF EXISTS `{}`",
                trigger_name("wf", "a`b", Purpose::Deny, Event::Update)
            )
        );
    }

    #[test]
    fn the_changelog_is_read_in_order_forgotten_by_seq_and_counted() {
        assert_eq!(
            create_changelog(),
            "CREATE TABLE IF NOT EXISTS `_shardgate_changelog` (seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT \
             PRIMARY KEY, workflow VARCHAR(64) NOT NULL, tbl VARCHAR(64) NOT NULL, pk VARCHAR(8192) NOT NULL, KEY \
             (workflow, seq)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        );
        assert_eq!(
            read_changes("wf-1", 500),
            "SELECT seq, tbl, pk FROM `_shardgate_changelog` WHERE workflow = 'wf-1' ORDER BY seq LIMIT 500"
        );
        assert_eq!(forget_changes(&[]), None);
        assert_eq!(
            forget_changes(&[3, 5]).unwrap(),
            "DELETE FROM `_shardgate_changelog` WHERE seq = 3; DELETE FROM `_shardgate_changelog` WHERE seq = 5"
        );
        assert_eq!(
            pending_changes("wf-1"),
            "SELECT COUNT(*) FROM `_shardgate_changelog` WHERE workflow = 'wf-1'"
        );
    }

    #[test]
    fn recorded_keys_are_selected_locked_deleted_and_moving_rows_cleaned_in_chunks() {
        let keys = cols(&["tenant_id", "id"]);
        let pks = cols(&["'42','1'", "'42','7'"]);
        assert_eq!(
            select_keys("t", &keys, &pks),
            "SELECT * FROM `t` WHERE (`tenant_id`, `id`) IN (('42','1'), ('42','7')) FOR UPDATE"
        );
        assert_eq!(
            delete_keys("t", &keys, &pks),
            "DELETE FROM `t` WHERE (`tenant_id`, `id`) IN (('42','1'), ('42','7'))"
        );
        assert_eq!(delete_keys("t", &keys, &[]), "DELETE FROM `t` WHERE 0");
        assert_eq!(
            delete_chunk("t", &keys, &tenant_42(), 1000),
            "DELETE FROM `t` WHERE (`tenant_id` IN (42, 43)) ORDER BY `tenant_id`, `id` LIMIT 1000"
        );
        assert_eq!(
            delete_chunk("t", &keys, &Filter::All, 10),
            "DELETE FROM `t` WHERE (1) ORDER BY `tenant_id`, `id` LIMIT 10"
        );
    }
}
