// A small multi-tenant application flow through shardgate with MariaDB Connector/J (Debian's libmariadb-java, 2.x)
// and server-side prepared statements (useServerPrepStmts=true: COM_STMT_PREPARE / COM_STMT_EXECUTE, binary rows).
//
// Usage: java -cp /usr/share/java/mariadb-java-client.jar:CLASSES JdbcFlow PROXY_PORT DIRECT_PORT
//
// The flow runs first directly on a plain MariaDB database (root, database ref_jdbc_flow, created here), which proves
// the flow's expectations right (a failure there exits 2), then through shardgate (app/app, keyspace app). Each
// step asserts its results against the flow's model of the tables and, through the proxy, against what the direct run
// saw (differential). Steps go on after a failure; exit 1 when any step failed through the proxy.
// Only timeouts are added to the driver's defaults, so that a proxy that stops answering fails the flow.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

public final class JdbcFlow {
    static final long[] TENANTS = {101, 202, 303, 404};
    static final String TIMEOUTS = "connectTimeout=10000&socketTimeout=60000";
    static final String T = "jdbc_flow";
    static final String BULK = "jdbc_flow_bulk";

    /** A step saw something other than what the flow expects. */
    static final class Mismatch extends Exception {
        Mismatch(String message) {
            super(message);
        }
    }

    /** One step's body: returns what it observed (compared with the direct run), throws on failure. */
    interface Body {
        Object run(StepLog log) throws Exception;
    }

    /** The statements one step sent, so that a failure names the exact statement. */
    static final class StepLog {
        final List<String> sent = new ArrayList<>();
    }

    record Result(String name, boolean ok, Object observed, String message, List<String> sent) {}

    final String target;
    final String url;
    final String user;
    final String password;
    /** tenant -> id -> {name, balance}: what the table must hold after each committed step. */
    final Map<Long, TreeMap<Long, String[]>> model = new TreeMap<>();
    final List<Result> results = new ArrayList<>();
    Connection conn;

    JdbcFlow(String target, int port, String database, String user, String password) {
        this.target = target;
        this.url = "jdbc:mariadb://127.0.0.1:" + port + "/" + database + "?useServerPrepStmts=true&" + TIMEOUTS;
        this.user = user;
        this.password = password;
        for (long t : TENANTS) {
            model.put(t, new TreeMap<>());
        }
    }

    Connection connect() throws SQLException {
        return DriverManager.getConnection(url, user, password);
    }

    static void check(String what, Object got, Object want) throws Mismatch {
        if (!Objects.equals(got, want)) {
            throw new Mismatch(what + ": got " + got + ", expected " + want);
        }
    }

    /** All rows of a result set, each value as getObject gives it (BigDecimal as plain text). */
    static List<List<Object>> rows(ResultSet rs) throws SQLException {
        List<List<Object>> out = new ArrayList<>();
        ResultSetMetaData md = rs.getMetaData();
        while (rs.next()) {
            List<Object> row = new ArrayList<>();
            for (int i = 1; i <= md.getColumnCount(); i++) {
                Object v = rs.getObject(i);
                if (v instanceof BigDecimal d) {
                    v = d.toPlainString();
                } else if (v instanceof Number n && !(v instanceof Double) && !(v instanceof Float)) {
                    v = n.longValue();
                } else if (v instanceof java.math.BigInteger b) {
                    v = b.longValue();
                }
                row.add(v);
            }
            out.add(row);
        }
        return out;
    }

    /**
     * Connector/J 2.x quietly falls back to a client-side (text) prepared statement when the server refuses
     * COM_STMT_PREPARE (CONJ-238), so a refusal would go unnoticed: every statement must have been prepared on the
     * server, as useServerPrepStmts=true asks.
     */
    static PreparedStatement prepare(Connection c, String sql) throws SQLException, Mismatch {
        PreparedStatement ps = c.prepareStatement(sql);
        String kind = ps.getClass().getSimpleName();
        if (!kind.startsWith("ServerSide")) {
            ps.close();
            throw new Mismatch("COM_STMT_PREPARE refused, the driver fell back to " + kind + " for: " + sql);
        }
        return ps;
    }

    /** A prepared statement (server-side), executed with `params`: its rows, or its update count as [[n]]. */
    static List<List<Object>> exec(StepLog log, Connection c, String sql, Object... params)
            throws SQLException, Mismatch {
        log.sent.add(params.length == 0 ? sql : sql + "  -- prepared, params " + Arrays.toString(params));
        try (PreparedStatement ps = prepare(c, sql)) {
            for (int i = 0; i < params.length; i++) {
                ps.setObject(i + 1, params[i]);
            }
            if (ps.execute()) {
                try (ResultSet rs = ps.getResultSet()) {
                    return rows(rs);
                }
            }
            return List.of(List.of((long) ps.getUpdateCount()));
        }
    }

    static long count(List<List<Object>> result) {
        return (Long) result.get(0).get(0);
    }

    static void ddl(StepLog log, Connection c, String sql) throws SQLException {
        log.sent.add(sql + "  -- Statement.execute");
        try (Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }

    List<List<Object>> expectedRows(long tenant) {
        List<List<Object>> out = new ArrayList<>();
        for (Map.Entry<Long, String[]> e : model.get(tenant).entrySet()) {
            out.add(List.of(tenant, e.getKey(), e.getValue()[0], e.getValue()[1]));
        }
        return out;
    }

    List<List<Object>> checkTenant(StepLog log, Connection c, long tenant, String what) throws Exception {
        List<List<Object>> got = exec(log, c,
                "SELECT tenant_id, id, name, balance FROM " + T + " WHERE tenant_id = ? ORDER BY id", tenant);
        check(what + ": rows of tenant " + tenant, got, expectedRows(tenant));
        return got;
    }

    /** Every tenant read back on a fresh autocommit connection (committed data only), compared with the model. */
    List<Object> checkAll(StepLog log, String what) throws Exception {
        List<Object> seen = new ArrayList<>();
        try (Connection reader = connect()) {
            for (long t : TENANTS) {
                seen.add(checkTenant(log, reader, t, what));
            }
        }
        return seen;
    }

    void step(String name, Body body) {
        StepLog log = new StepLog();
        long started = System.nanoTime();
        boolean ok;
        try {
            if (conn == null || conn.isClosed()) {
                conn = connect();
            }
            Object observed = body.run(log);
            results.add(new Result(name, true, observed, "", log.sent));
            ok = true;
        } catch (Exception e) {
            String kind = e instanceof Mismatch ? "mismatch"
                    : e instanceof SQLException s ? "error " + s.getErrorCode() + " (" + s.getSQLState() + ")"
                    : e.getClass().getSimpleName();
            results.add(new Result(name, false, null, kind + ": " + e.getMessage(), log.sent));
            ok = false;
            recover();
        }
        System.out.printf("  [%s] %s %s (%.2fs)%n", target, ok ? "PASS" : "FAIL", name,
                (System.nanoTime() - started) / 1e9);
        if (!ok) {
            Result r = results.get(results.size() - 1);
            System.out.println("      " + clip(r.message()));
            for (String s : r.sent().subList(Math.max(0, r.sent().size() - 3), r.sent().size())) {
                System.out.println("      sent: " + clip(s));
            }
        }
        System.out.flush();
    }

    /** After a failed step: roll back and go back to autocommit, or start over on a new connection. */
    void recover() {
        try {
            if (conn != null && !conn.getAutoCommit()) {
                conn.rollback();
                conn.setAutoCommit(true);
            }
            return;
        } catch (SQLException e) {
            // fall through: a new connection
        }
        try {
            if (conn != null) {
                conn.close();
            }
        } catch (SQLException e) {
            // already gone
        }
        conn = null;
    }

    static String clip(String s) {
        return s.length() <= 700 ? s : s.substring(0, 700) + "... (" + s.length() + " characters)";
    }

    List<Result> run() {
        step("CREATE TABLE (fans out)", log -> {
            ddl(log, conn, "DROP TABLE IF EXISTS " + T);
            ddl(log, conn, "DROP TABLE IF EXISTS " + BULK);
            ddl(log, conn, "CREATE TABLE " + T + " (tenant_id BIGINT UNSIGNED NOT NULL, id BIGINT NOT NULL, "
                    + "name VARCHAR(64) NOT NULL, balance DECIMAL(12,2) NOT NULL, PRIMARY KEY (tenant_id, id))");
            ddl(log, conn, "CREATE TABLE " + BULK + " (tenant_id BIGINT UNSIGNED NOT NULL, id BIGINT NOT NULL, "
                    + "note VARCHAR(64) NOT NULL, PRIMARY KEY (tenant_id, id))");
            return null;
        });

        step("prepared INSERT, one row per execution, one statement reused across tenants", log -> {
            List<Long> counts = new ArrayList<>();
            String sql = "INSERT INTO " + T + " (tenant_id, id, name, balance) VALUES (?, ?, ?, ?)";
            try (PreparedStatement ps = prepare(conn, sql)) {
                for (long t : TENANTS) {
                    for (long i = 1; i <= 3; i++) {
                        String name = "t" + t + "-acct" + i;
                        BigDecimal bal = new BigDecimal(100 * i).setScale(2);
                        log.sent.add(sql + "  -- prepared, params [" + t + ", " + i + ", " + name + ", " + bal + "]");
                        ps.setLong(1, t);
                        ps.setLong(2, i);
                        ps.setString(3, name);
                        ps.setBigDecimal(4, bal);
                        counts.add((long) ps.executeUpdate());
                        model.get(t).put(i, new String[] {name, bal.toPlainString()});
                    }
                }
            }
            check("update counts", counts, java.util.Collections.nCopies(12, 1L));
            return checkAll(log, "after INSERT");
        });

        step("executeBatch INSERT across tenants", log -> {
            String sql = "INSERT INTO " + BULK + " (tenant_id, id, note) VALUES (?, ?, ?)";
            log.sent.add(sql + "  -- addBatch x" + TENANTS.length + " (tenants " + Arrays.toString(TENANTS)
                    + "), executeBatch");
            int[] counts;
            try (PreparedStatement ps = prepare(conn, sql)) {
                for (long t : TENANTS) {
                    ps.setLong(1, t);
                    ps.setLong(2, 10);
                    ps.setString(3, "t" + t + "-bulk");
                    ps.addBatch();
                }
                counts = ps.executeBatch();
            }
            List<Object> seen = new ArrayList<>();
            for (long t : TENANTS) {
                List<List<Object>> got = exec(log, conn,
                        "SELECT tenant_id, id, note FROM " + BULK + " WHERE tenant_id = ?", t);
                check("batched row of tenant " + t, got, List.of(List.of(t, 10L, "t" + t + "-bulk")));
                seen.add(got);
            }
            return List.of(Arrays.toString(counts), seen);
        });

        step("transaction: setAutoCommit(false) ... commit()", log -> {
            log.sent.add("setAutoCommit(false)");
            conn.setAutoCommit(false);
            String move = "UPDATE " + T + " SET balance = balance + ? WHERE tenant_id = ? AND id = ?";
            long n1 = count(exec(log, conn, move, new BigDecimal("-25.00"), 101L, 1L));
            long n2 = count(exec(log, conn, move, new BigDecimal("25.00"), 101L, 2L));
            long n3 = count(exec(log, conn, "UPDATE " + T + " SET name = ? WHERE tenant_id = ? AND id = ?",
                    "t202-renamed", 202L, 3L));
            check("affected rows in the transaction", List.of(n1, n2, n3), List.of(1L, 1L, 1L));
            log.sent.add("commit()");
            conn.commit();
            conn.setAutoCommit(true);
            model.get(101L).get(1L)[1] = "75.00";
            model.get(101L).get(2L)[1] = "225.00";
            model.get(202L).get(3L)[0] = "t202-renamed";
            return checkAll(log, "after commit");
        });

        step("transaction: setAutoCommit(false) ... rollback() leaves nothing", log -> {
            log.sent.add("setAutoCommit(false)");
            conn.setAutoCommit(false);
            String ins = "INSERT INTO " + T + " (tenant_id, id, name, balance) VALUES (?, ?, ?, ?)";
            exec(log, conn, ins, 202L, 99L, "t202-ghost", new BigDecimal("1.00"));
            exec(log, conn, ins, 303L, 99L, "t303-ghost", new BigDecimal("1.00"));
            long zeroed = count(exec(log, conn, "UPDATE " + T + " SET balance = 0 WHERE tenant_id = ?", 101L));
            check("rows zeroed for tenant 101 inside the transaction", zeroed, (long) model.get(101L).size());
            long deleted = count(exec(log, conn, "DELETE FROM " + T + " WHERE tenant_id = ? AND id = ?", 404L, 1L));
            check("rows deleted for tenant 404 inside the transaction", deleted, 1L);
            List<List<Object>> inside = exec(log, conn,
                    "SELECT name FROM " + T + " WHERE tenant_id = ? AND id = ?", 303L, 99L);
            check("own uncommitted insert, read inside the transaction", inside, List.of(List.of("t303-ghost")));
            log.sent.add("rollback()");
            conn.rollback();
            conn.setAutoCommit(true);
            List<Object> seen = checkAll(log, "after rollback");
            for (long t : TENANTS) {
                checkTenant(log, conn, t, "after rollback, same connection");
            }
            return seen;
        });

        step("prepared UPDATE", log -> {
            long n = count(exec(log, conn, "UPDATE " + T + " SET name = CONCAT(name, ?) WHERE tenant_id = ?",
                    "!", 303L));
            check("rows updated for tenant 303", n, (long) model.get(303L).size());
            for (String[] v : model.get(303L).values()) {
                v[0] = v[0] + "!";
            }
            return checkAll(log, "after UPDATE");
        });

        step("prepared SELECT per tenant", log -> {
            List<Object> out = new ArrayList<>();
            for (long t : TENANTS) {
                BigDecimal total = BigDecimal.ZERO.setScale(2);
                for (String[] v : model.get(t).values()) {
                    total = total.add(new BigDecimal(v[1]));
                }
                List<List<Object>> got = exec(log, conn,
                        "SELECT COUNT(*), SUM(balance) FROM " + T + " WHERE tenant_id = ?", t);
                check("aggregate of tenant " + t, got, List.of(List.of((long) model.get(t).size(),
                        total.toPlainString())));
                out.add(got);
                got = exec(log, conn, "SELECT id, name FROM " + T
                        + " WHERE tenant_id = ? AND balance >= ? ORDER BY balance DESC, id LIMIT 2", t,
                        new BigDecimal("100"));
                out.add(got);
            }
            return out;
        });

        step("SELECT across tenants (GROUP BY tenant_id)", log -> {
            List<List<Object>> got = exec(log, conn,
                    "SELECT tenant_id, COUNT(*) FROM " + T + " GROUP BY tenant_id ORDER BY tenant_id");
            List<List<Object>> want = new ArrayList<>();
            for (long t : TENANTS) {
                want.add(List.of(t, (long) model.get(t).size()));
            }
            check("rows per tenant, all tenants", got, want);
            return got;
        });

        step("duplicate key gives 1062", log -> {
            try {
                exec(log, conn, "INSERT INTO " + T + " (tenant_id, id, name, balance) VALUES (?, ?, ?, ?)",
                        202L, 1L, "dup", BigDecimal.ZERO);
            } catch (SQLException e) {
                check("error code of a duplicate key", e.getErrorCode(), 1062);
                return e.getErrorCode();
            }
            throw new Mismatch("a duplicate primary key was accepted");
        });

        step("prepared DELETE", log -> {
            String sql = "DELETE FROM " + T + " WHERE tenant_id = ? AND id = ?";
            check("rows deleted", count(exec(log, conn, sql, 202L, 2L)), 1L);
            check("rows deleted for a missing id", count(exec(log, conn, sql, 202L, 12345L)), 0L);
            model.get(202L).remove(2L);
            return checkAll(log, "after DELETE");
        });

        step("DROP TABLE (fans out)", log -> {
            ddl(log, conn, "DROP TABLE " + T);
            ddl(log, conn, "DROP TABLE " + BULK);
            return null;
        });
        if (conn != null) {
            try {
                conn.close();
            } catch (SQLException e) {
                // the flow is over either way
            }
        }
        return results;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: JdbcFlow PROXY_PORT DIRECT_PORT");
            System.exit(64);
        }
        int proxyPort = Integer.parseInt(args[0]);
        int directPort = Integer.parseInt(args[1]);
        java.sql.Driver driver = DriverManager.getDriver("jdbc:mariadb://127.0.0.1/");
        System.out.println("MariaDB Connector/J " + driver.getMajorVersion() + "." + driver.getMinorVersion()
                + ", useServerPrepStmts=true");
        String refDb = "ref_" + T;
        try (Connection c = DriverManager.getConnection(
                "jdbc:mariadb://127.0.0.1:" + directPort + "/?" + TIMEOUTS, "root", "");
                Statement st = c.createStatement()) {
            st.execute("CREATE DATABASE IF NOT EXISTS " + refDb);
        }
        List<Result> direct = new JdbcFlow("direct", directPort, refDb, "root", "").run();
        if (direct.stream().anyMatch(r -> !r.ok())) {
            System.out.println("FLOW IS WRONG: some steps fail on plain MariaDB, so their expectations are wrong");
            System.exit(2);
        }
        List<Result> proxied = new JdbcFlow("shardgate", proxyPort, "app", "app", "app").run();
        int failed = 0;
        StringBuilder report = new StringBuilder();
        for (int i = 0; i < proxied.size(); i++) {
            Result p = proxied.get(i);
            Result d = direct.get(i);
            String problem = !p.ok() ? p.message()
                    : !Objects.equals(p.observed(), d.observed())
                            ? "differs from plain MariaDB: shardgate " + p.observed() + ", MariaDB " + d.observed()
                            : null;
            if (problem != null) {
                failed++;
                report.append("FAIL [jdbc] ").append(p.name()).append(": ").append(clip(problem)).append('\n');
                for (String s : p.sent().subList(Math.max(0, p.sent().size() - 3), p.sent().size())) {
                    report.append("    sent: ").append(clip(s)).append('\n');
                }
            }
        }
        System.out.println("jdbc: " + (proxied.size() - failed) + " passed, " + failed + " failed");
        System.out.print(report);
        System.exit(failed == 0 ? 0 : 1);
    }
}
