//! The SQL a resharding controller copies and verifies with (`shardgate_reshard::chunk`), run on real MariaDB:
//! checksums agree exactly when two copies hold the same rows, and a chunk read locks its rows.

use mysql_async::prelude::Queryable;
use shardgate_reshard::chunk::KeyRange;

use crate::harness::{MariaDb, bounded};

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

async fn sum(conn: &mut mysql_async::Conn, db: &str, upto: Option<&[String]>) -> (u64, u64) {
    let keys = cols(&["id"]);
    let sql = KeyRange {
        table: "t",
        key_columns: &keys,
        filter: "`tenant_id` = 42",
        after: None,
        upto,
    }
    .checksum(&cols(&["id", "tenant_id", "note"]));
    conn.query_drop(format!("USE {db}")).await.expect("use");
    conn.query_first(sql)
        .await
        .expect("checksum")
        .expect("a row")
}

#[tokio::test]
async fn checksums_agree_only_on_equal_copies_and_a_chunk_read_locks_its_rows() {
    bounded(async {
        let server = MariaDb::start().await;
        let mut conn = server.conn().await;
        for db in ["src", "dst"] {
            conn.query_drop(format!(
                "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, tenant_id INT, note VARCHAR(20)); \
                 INSERT INTO {db}.t VALUES (1, 42, 'a'), (2, 42, NULL), (3, 7, 'x'), (4, 42, 'd'), (5, 42, '')"
            ))
            .await
            .expect("setup");
        }
        let same = sum(&mut conn, "src", None).await;
        assert_eq!(same.0, 4, "only the moving tenant's rows");
        assert_eq!(sum(&mut conn, "dst", None).await, same);
        // Another tenant's row differing changes nothing; the moving tenant's does.
        conn.query_drop("UPDATE dst.t SET note = 'y' WHERE id = 3").await.expect("update");
        assert_eq!(sum(&mut conn, "dst", None).await, same);
        conn.query_drop("UPDATE dst.t SET note = '' WHERE id = 2").await.expect("update");
        assert_ne!(sum(&mut conn, "dst", None).await, same, "NULL and '' differ");
        // Only the range up to id 1 is equal now.
        let first = Some(cols(&["1"]));
        assert_eq!(
            sum(&mut conn, "dst", first.as_deref()).await,
            sum(&mut conn, "src", first.as_deref()).await
        );
        // A chunk read inside a transaction holds its rows: a concurrent write to one of them waits.
        conn.query_drop("USE src").await.expect("use");
        conn.query_drop("BEGIN").await.expect("begin");
        let (keys, after) = (cols(&["id"]), cols(&["1"]));
        let next = KeyRange {
            table: "t",
            key_columns: &keys,
            filter: "`tenant_id` = 42",
            after: Some(&after),
            upto: None,
        };
        let chunk: Vec<(u32, u32, Option<String>)> = conn
            .query(next.select_chunk(2))
            .await
            .expect("chunk");
        assert_eq!(chunk, [(2, 42, None), (4, 42, Some("d".to_string()))]);
        let mut other = server.conn_db(Some("src")).await;
        other
            .query_drop("SET SESSION innodb_lock_wait_timeout = 1")
            .await
            .expect("set");
        let blocked = other.query_drop("UPDATE t SET note = 'z' WHERE id = 4").await;
        match blocked {
            Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1205, "{}", e.message),
            other => panic!("a write to a row of the chunk went through: {other:?}"),
        }
        other
            .query_drop("UPDATE t SET note = 'z' WHERE id = 5")
            .await
            .expect("a row outside the chunk is free");
        conn.query_drop("COMMIT").await.expect("commit");
    })
    .await;
}

#[tokio::test]
async fn triggers_capture_committed_writes_to_moving_rows_and_deny_them_after_cutover() {
    use shardgate_reshard::capture::{
        Filter, Purpose, capture_triggers, create_changelog, delete_chunk, deny_triggers,
        drop_triggers, forget_changes, pending_changes, read_changes, select_keys,
    };
    /// The workflow's entries, oldest first: (seq, pk), each checked to name table `t`.
    async fn changes(conn: &mut mysql_async::Conn) -> Vec<(u64, String)> {
        let rows: Vec<(u64, String, String)> = conn
            .query(read_changes("wf-1", 100))
            .await
            .expect("read changes");
        rows.into_iter()
            .map(|(seq, tbl, pk)| {
                assert_eq!(tbl, "t");
                (seq, pk)
            })
            .collect()
    }
    fn pks(changes: &[(u64, String)]) -> Vec<&str> {
        changes.iter().map(|(_, pk)| pk.as_str()).collect()
    }
    async fn count(conn: &mut mysql_async::Conn, workflow: &str) -> u64 {
        conn.query_first(pending_changes(workflow))
            .await
            .expect("pending")
            .expect("a row")
    }
    /// The error code and message of a write the deny triggers refused.
    async fn refused(conn: &mut mysql_async::Conn, sql: &str) -> (u16, String, String) {
        match conn.query_drop(sql).await {
            Err(mysql_async::Error::Server(e)) => (e.code, e.state, e.message),
            other => panic!("{sql} was not refused: {other:?}"),
        }
    }
    bounded(async {
        let server = MariaDb::start().await;
        let mut ctl = server.conn().await;
        ctl.query_drop(
            "CREATE DATABASE src; USE src; CREATE TABLE t (tenant_id INT, id INT, note VARCHAR(20), \
             PRIMARY KEY (tenant_id, id))",
        )
        .await
        .expect("setup");
        ctl.query_drop(create_changelog()).await.expect("changelog");
        ctl.query_drop(create_changelog()).await.expect("creating the changelog again is harmless");
        let keys = cols(&["tenant_id", "id"]);
        let moving = Filter::TenantIn {
            column: "tenant_id".into(),
            values: vec!["42".into()],
        };
        for sql in capture_triggers("wf-1", "t", &keys, &moving) {
            ctl.query_drop(sql).await.expect("capture trigger");
        }
        let mut app = server.conn_db(Some("src")).await;

        // A committed insert of a moving row is recorded, as a key the controller can select by.
        app.query_drop("INSERT INTO t VALUES (42, 1, 'a')").await.expect("insert");
        let first = changes(&mut ctl).await;
        assert_eq!(pks(&first), ["'42','1'"]);
        let found: Vec<(i32, i32, String)> =
            ctl.query(select_keys("t", &keys, &[first[0].1.clone()])).await.expect("select keys");
        assert_eq!(found, [(42, 1, "a".to_string())]);
        // Another tenant's row and a rolled-back write leave nothing.
        app.query_drop("INSERT INTO t VALUES (7, 1, 'x')").await.expect("other tenant");
        app.query_drop("BEGIN").await.expect("begin");
        app.query_drop("INSERT INTO t VALUES (42, 2, 'b')").await.expect("insert");
        app.query_drop("ROLLBACK").await.expect("rollback");
        assert_eq!(changes(&mut ctl).await, first);
        // A key change records the old and the new key; an update keeping the key records it once; a delete too.
        app.query_drop("UPDATE t SET id = 3 WHERE tenant_id = 42 AND id = 1").await.expect("update key");
        app.query_drop("UPDATE t SET note = 'c' WHERE tenant_id = 42 AND id = 3").await.expect("update note");
        app.query_drop("DELETE FROM t WHERE tenant_id = 42 AND id = 3").await.expect("delete");
        // The controller's own writes are not recorded.
        app.query_drop("SET @shardgate_reshard = 'wf-1'").await.expect("bypass");
        app.query_drop("INSERT INTO t VALUES (42, 9, 'z')").await.expect("bypassed insert");
        app.query_drop("SET @shardgate_reshard = NULL").await.expect("bypass off");
        let all = changes(&mut ctl).await;
        assert_eq!(pks(&all), ["'42','1'", "'42','1'", "'42','3'", "'42','3'", "'42','3'"]);
        let gone: Vec<(i32, i32, String)> =
            ctl.query(select_keys("t", &keys, &[all[1].1.clone()])).await.expect("select keys");
        assert!(gone.is_empty(), "the old key has no row any more");

        // Forgetting removes exactly the given entries; the lag counts the rest, of this workflow only.
        assert_eq!(count(&mut ctl, "wf-1").await, 5);
        assert_eq!(forget_changes(&[]), None);
        ctl.query_drop(forget_changes(&[all[0].0, all[2].0]).expect("seqs")).await.expect("forget");
        assert_eq!(changes(&mut ctl).await, [all[1].clone(), all[3].clone(), all[4].clone()]);
        assert_eq!(count(&mut ctl, "wf-1").await, 3);
        assert_eq!(count(&mut ctl, "wf-2").await, 0);

        // After cutover the moving rows refuse writes, naming the workflow; other tenants and the controller write.
        for sql in deny_triggers("wf-1", "t", &moving) {
            ctl.query_drop(sql).await.expect("deny trigger");
        }
        for sql in [
            "INSERT INTO t VALUES (42, 10, 'd')",
            "UPDATE t SET note = 'e' WHERE tenant_id = 42 AND id = 9",
            "DELETE FROM t WHERE tenant_id = 42 AND id = 9",
            "UPDATE t SET tenant_id = 42 WHERE tenant_id = 7 AND id = 1",
        ] {
            let (code, state, message) = refused(&mut app, sql).await;
            assert_eq!((code, state.as_str()), (1644, "45000"), "{sql}: {message}");
            assert!(message.contains("table `t` moved by resharding workflow wf-1"), "{message}");
        }
        app.query_drop("INSERT INTO t VALUES (7, 2, 'y')").await.expect("another tenant writes");
        app.query_drop("SET @shardgate_reshard = 'wf-1'").await.expect("bypass");
        app.query_drop("INSERT INTO t VALUES (42, 10, 'd')").await.expect("the controller writes");
        app.query_drop("SET @shardgate_reshard = NULL").await.expect("bypass off");
        assert_eq!(count(&mut ctl, "wf-1").await, 3, "neither refused nor bypassed writes are recorded");

        // Dropping removes every trigger (twice is harmless) and writes go through unrecorded.
        for _ in 0..2 {
            for purpose in [Purpose::Capture, Purpose::Deny] {
                for sql in drop_triggers("wf-1", "t", purpose) {
                    ctl.query_drop(sql).await.expect("drop trigger");
                }
            }
        }
        let triggers: Vec<u64> = ctl
            .query(
                "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = 'src' AND \
                 EVENT_OBJECT_TABLE = 't'",
            )
            .await
            .expect("triggers");
        assert_eq!(triggers, [0]);
        app.query_drop("INSERT INTO t VALUES (42, 11, 'f'), (42, 12, 'g'), (42, 13, 'h')")
            .await
            .expect("writes after the fence is gone");
        assert_eq!(count(&mut ctl, "wf-1").await, 3);

        // Cleanup deletes at most a chunk of moving rows per statement, never another tenant's.
        ctl.query_drop(delete_chunk("t", &keys, &moving, 2)).await.expect("delete chunk");
        assert_eq!(ctl.affected_rows(), 2);
        let left: Vec<(i32, i32)> =
            ctl.query("SELECT tenant_id, id FROM t ORDER BY tenant_id, id").await.expect("rows");
        assert_eq!(left, [(7, 1), (7, 2), (42, 11), (42, 12), (42, 13)]);
        let mut statements = 1;
        loop {
            ctl.query_drop(delete_chunk("t", &keys, &moving, 2)).await.expect("delete chunk");
            statements += 1;
            if ctl.affected_rows() == 0 {
                break;
            }
        }
        assert_eq!(statements, 4, "5 rows in chunks of 2, then one finding none");
        let left: Vec<(i32, i32)> =
            ctl.query("SELECT tenant_id, id FROM t ORDER BY tenant_id, id").await.expect("rows");
        assert_eq!(left, [(7, 1), (7, 2)]);
    })
    .await;
}
