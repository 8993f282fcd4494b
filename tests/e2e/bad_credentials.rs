//! Bad credentials: refused with MySQL's own error (1045, SQLSTATE 28000, the server's exact message), and the
//! proxy keeps serving everyone else.

use mysql_async::Opts;
use mysql_async::prelude::Queryable;

use crate::harness::expect::{self, codes};
use crate::harness::proxy;
use crate::harness::raw::RawConn;
use crate::harness::{Cluster, bounded};

#[tokio::test]
async fn wrong_password_is_refused_with_1045_and_the_proxy_keeps_serving() {
    bounded(async {
        let cluster = Cluster::start(1, 2).await;
        let port = cluster.proxy_port();

        let refusals = [
            (
                "app:wrong",
                "Access denied for user 'app'@'127.0.0.1' (using password: YES)",
            ),
            (
                "nobody:app",
                "Access denied for user 'nobody'@'127.0.0.1' (using password: YES)",
            ),
            (
                "app",
                "Access denied for user 'app'@'127.0.0.1' (using password: NO)",
            ),
        ];
        for (credentials, expected) in refusals {
            let result = proxy::try_connect(
                Opts::from_url(&format!("mysql://{credentials}@127.0.0.1:{port}/app"))
                    .expect("URL"),
            )
            .await;
            let message = expect::server_error(result, codes::ACCESS_DENIED, credentials);
            assert_eq!(message, expected, "login as {credentials}");
        }
        // The same through a client that offers mysql_native_password itself.
        let refused = RawConn::login(port, "app", "wrong", Some("app"))
            .await
            .err()
            .expect("wrong password accepted");
        let message = expect::raw_error(
            &refused,
            codes::ACCESS_DENIED,
            "raw login with a wrong password",
        );
        assert_eq!(
            message,
            "Access denied for user 'app'@'127.0.0.1' (using password: YES)"
        );

        let mut conn = cluster.proxy_conn().await;
        conn.ping()
            .await
            .expect("the right password must still work");
        conn.disconnect().await.expect("disconnect failed");
        RawConn::login(port, "app", "app", Some("app"))
            .await
            .expect("raw login with the right password refused");
    })
    .await;
}
