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
