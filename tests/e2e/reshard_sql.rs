//! The SQL a resharding controller copies and verifies with (`shardgate_reshard::chunk`), run on real MariaDB:
//! checksums agree exactly when two copies hold the same rows, and a chunk read locks its rows.

use mysql_async::prelude::Queryable;
use shardgate_reshard::chunk::{checksum, select_chunk};

use crate::harness::{MariaDb, bounded};

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

async fn sum(conn: &mut mysql_async::Conn, db: &str, upto: Option<&[String]>) -> (u64, u64) {
    let sql = checksum(
        "t",
        &cols(&["id", "tenant_id", "note"]),
        &cols(&["id"]),
        "`tenant_id` = 42",
        None,
        upto,
    );
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
        let after = cols(&["1"]);
        let chunk: Vec<(u32, u32, Option<String>)> = conn
            .query(select_chunk("t", &cols(&["id"]), "`tenant_id` = 42", Some(&after), 2))
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
async fn a_tenant_is_copied_in_checkpointed_chunks_and_verified_by_range() {
    use shardctl::reshard::copy::{MovingRows, copy_chunk, create_tables, describe, range_matches};
    use shardgate_reshard::{Kind, Phase, TableProgress, Workflow};
    bounded(async {
        let server = MariaDb::start().await;
        let mut admin = server.conn().await;
        admin
            .query_drop(
                "CREATE DATABASE src; CREATE DATABASE dst; CREATE TABLE src.orders (tenant_id INT, id INT, \
                 note VARCHAR(40), made DATETIME(6), PRIMARY KEY (tenant_id, id))",
            )
            .await
            .expect("setup");
        let values: Vec<String> = (1..=1000)
            .map(|i| format!("(42, {i}, 'n{i}', NOW(6)), (7, {i}, 'other', NULL)"))
            .collect();
        admin
            .query_drop(format!("INSERT INTO src.orders VALUES {}", values.join(", ")))
            .await
            .expect("rows");
        let mut src = server.conn_db(Some("src")).await;
        let mut dst = server.conn_db(Some("dst")).await;
        create_tables(&mut src, &mut dst, &["orders".to_string()]).await.expect("create");
        let (columns, keys) = describe(&mut src, "orders").await.expect("describe");
        assert_eq!(keys, ["tenant_id", "id"]);
        let mut workflow = Workflow::new(
            "move-42",
            "app",
            Kind::MoveTenants {
                tenants: vec!["42".into()],
                to: "80-".into(),
            },
        );
        workflow.tables.push(TableProgress::new("orders", keys.clone(), 1000));
        workflow.advance().expect("dual-write");
        workflow.advance().expect("backfill");
        let filter = "`tenant_id` = 42";
        let mut chunks = 0;
        while let Some((n, last)) = copy_chunk(&mut src, &mut dst, &workflow.tables[0], filter, 128)
            .await
            .expect("chunk")
        {
            workflow.checkpoint("orders", n, last).expect("checkpoint");
            chunks += 1;
        }
        assert_eq!(chunks, 8, "1,000 rows in chunks of 128");
        assert_eq!(workflow.tables[0].rows_copied, 1000);
        assert_eq!(workflow.fraction(), 1.0);
        let copied: Vec<u64> = dst.query("SELECT COUNT(*) FROM orders").await.expect("count");
        assert_eq!(copied, [1000], "only the moving tenant");
        workflow.advance().expect("verify");
        assert_eq!(workflow.phase, Phase::Verify);
        let rows = MovingRows {
            table: "orders".into(),
            columns,
            keys,
            filter: filter.into(),
        };
        assert!(range_matches(&mut src, &mut dst, &rows, None, None).await.expect("verify"));
        // A source row changed after its chunk was copied shows up in its range only.
        admin
            .query_drop("UPDATE src.orders SET note = 'late' WHERE tenant_id = 42 AND id = 700")
            .await
            .expect("late write");
        let upto_600 = ["42".to_string(), "600".to_string()];
        assert!(range_matches(&mut src, &mut dst, &rows, None, Some(&upto_600)).await.expect("first part"));
        assert!(!range_matches(&mut src, &mut dst, &rows, Some(&upto_600), None).await.expect("second part"));
    })
    .await;
}
