#!/usr/bin/env python3
"""A small multi-tenant application flow, run unmodified through shardgate by a real Python MySQL driver.

Usage: app_flow.py --driver pymysql|connector --proxy-port P --direct-port D [--table NAME]

The same flow runs twice: first directly on one plain MariaDB database (as root, database `ref_<table>`, created
here), then through shardgate (user app/app, keyspace `app`). Every step asserts its result against the flow's own
model of what the tables must hold; the direct run proves the model right (a mismatch there exits 2: the test is
wrong, not the proxy), the proxied run is then checked against the model and against what the direct run saw, step
by step (differential). The driver keeps its defaults: PyMySQL sends `SET AUTOCOMMIT = 0` on connect and
mysql-connector-python its own session settings, exactly as an application's driver would. Only the timeouts are
set, so that a proxy that stops answering fails the flow instead of hanging it.

Steps do not stop at the first failure: each one is reported (PASS/FAIL, with the statement the driver sent and
the error or the rows it got), later steps go on where they can, and the exit status is 1 when any step failed
through the proxy. Exit 0: every step passed on both sides and they agreed.
"""

import argparse
import decimal
import sys
import time

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
TENANTS = (101, 202, 303, 404)


class StepFailed(Exception):
    """A step saw something other than what the flow expects."""


class Driver:
    """The one driver under test: connecting, and what differs between drivers (transactions, error codes)."""

    def __init__(self, name):
        self.name = name
        # A cursor class that records the statement text sent (mysql-connector-python's cursors keep `statement`).
        self.recording_cursor = None
        if name == "pymysql":
            import pymysql
            import pymysql.cursors

            self.mod = pymysql

            class RecordingCursor(pymysql.cursors.Cursor):
                """PyMySQL's own cursor, remembering each query text it sends (also when the server refuses it)."""

                wire = None

                def _query(self, q):
                    self.wire = q
                    return super()._query(q)

            self.recording_cursor = RecordingCursor
            self.version = pymysql.VERSION_STRING
        elif name == "connector":
            import mysql.connector

            self.mod = mysql.connector
            self.version = mysql.connector.__version__
        else:
            raise SystemExit(f"unknown driver {name!r}")

    def connect(self, port, user, password, database):
        if self.name == "pymysql":
            return self.mod.connect(host="127.0.0.1", port=port, user=user, password=password, database=database,
                                    connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                                    write_timeout=READ_TIMEOUT_S)
        return self.mod.connect(host="127.0.0.1", port=port, user=user, password=password, database=database,
                                connection_timeout=READ_TIMEOUT_S)

    def begin(self, conn, log):
        """The driver's own way to open a transaction (PyMySQL: BEGIN; connector: START TRANSACTION)."""
        if self.name == "pymysql":
            log.sent("BEGIN (conn.begin())")
            conn.begin()
        else:
            log.sent("START TRANSACTION (conn.start_transaction())")
            conn.start_transaction()

    def error_code(self, err):
        """The MySQL error number of a driver exception, or None."""
        if self.name == "pymysql":
            args = getattr(err, "args", ())
            return args[0] if args and isinstance(args[0], int) else None
        return getattr(err, "errno", None)


def norm(value):
    """A driver value in a form both drivers and both targets agree on (Decimal and bytes to str)."""
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8")
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def clip(text, limit=700):
    """Long results shortened for the log."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def norm_rows(rows):
    return [tuple(norm(v) for v in row) for row in rows]


class StepLog:
    """What one step sent, so that a failure names the exact statement."""

    def __init__(self):
        self.statements = []

    def sent(self, text):
        self.statements.append(text)


class Flow:
    """The application flow against one target; `model` is what the table must hold after each committed step."""

    def __init__(self, driver, target, port, user, password, database, table):
        self.driver = driver
        self.target = target
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.t = table
        self.ledger = table + "_ledger"
        self.bulk = table + "_bulk"
        self.model = {t: {} for t in TENANTS}
        self.conn = None
        self.results = []

    # -- plumbing -------------------------------------------------------------------------------------------------

    def connect(self):
        return self.driver.connect(self.port, self.user, self.password, self.database)

    def exec(self, log, conn, sql, params=None, many=False):
        """Runs one statement on `conn`; returns (rowcount, rows or None). Records the statement text."""
        cur = conn.cursor(self.driver.recording_cursor) if self.driver.recording_cursor else conn.cursor()
        try:
            log.sent(sql if params is None else f"{sql}  -- params {params!r}")
            if many:
                cur.executemany(sql, params)
            elif params is None:
                cur.execute(sql)
            else:
                cur.execute(sql, params)
            rows = norm_rows(cur.fetchall()) if cur.description else None
            return cur.rowcount, rows
        finally:
            # The text the driver put on the wire (parameters interpolated, executemany batched).
            try:
                wire = getattr(cur, "wire", None) or getattr(cur, "statement", None)
            except Exception:  # noqa: BLE001 -- a driver that cannot tell
                wire = None
            if isinstance(wire, (bytes, bytearray)):
                wire = wire.decode("utf-8", "replace")
            if wire and wire != sql:
                log.sent(f"(driver sent: {wire})")
            cur.close()

    def commit(self, log, conn):
        log.sent("COMMIT (conn.commit())")
        conn.commit()

    def rollback(self, log, conn):
        log.sent("ROLLBACK (conn.rollback())")
        conn.rollback()

    def expected_rows(self, tenant):
        return [(tenant, i, name, bal) for i, (name, bal) in sorted(self.model[tenant].items())]

    def check(self, what, got, want):
        if got != want:
            raise StepFailed(f"{what}: got {got!r}, expected {want!r}")

    def check_tenant(self, log, conn, tenant, what):
        _, rows = self.exec(log, conn, f"SELECT tenant_id, id, name, balance FROM {self.t} WHERE tenant_id = %s "
                                       "ORDER BY id", (tenant,))
        self.check(f"{what}: rows of tenant {tenant}", rows, self.expected_rows(tenant))
        return rows

    def check_all_tenants(self, log, conn, what):
        """Reads every tenant back on a fresh connection (committed data only) and compares with the model."""
        reader = self.connect()
        try:
            seen = [self.check_tenant(log, reader, t, what) for t in TENANTS]
            self.commit(log, reader)
            return seen
        finally:
            reader.close()

    def step(self, name, fn):
        log = StepLog()
        started = time.monotonic()
        try:
            if self.conn is None:
                self.conn = self.connect()
            observed = fn(log)
            self.results.append((name, True, observed, "", log.statements))
            status = "PASS"
        except Exception as err:  # noqa: BLE001 -- every failure is reported, whatever raised it
            code = self.driver.error_code(err)
            kind = "mismatch" if isinstance(err, StepFailed) else f"error {code}" if code else type(err).__name__
            message = f"{kind}: {err}"
            self.results.append((name, False, None, message, log.statements))
            status = "FAIL"
            self.recover()
        elapsed = time.monotonic() - started
        print(f"  [{self.target}] {status} {name} ({elapsed:.2f}s)", flush=True)
        if status == "FAIL":
            print(f"      {clip(self.results[-1][3])}", flush=True)
            for statement in log.statements[-3:]:
                print(f"      sent: {clip(statement)}", flush=True)

    def recover(self):
        """After a failed step: roll back what it left open, or start over on a new connection."""
        try:
            if self.conn is not None:
                self.conn.rollback()
                return
        except Exception:  # noqa: BLE001
            pass
        try:
            if self.conn is not None:
                self.conn.close()
        except Exception:  # noqa: BLE001
            pass
        self.conn = None

    # -- the flow -------------------------------------------------------------------------------------------------

    def run(self):
        c = lambda: self.conn  # noqa: E731 -- the live connection, which `recover` may replace

        def session(log):
            _, rows = self.exec(log, c(), "SELECT DATABASE()")
            self.check("DATABASE()", rows, [(self.database,)])
            self.rollback(log, c())
            return None  # the database name differs between targets by design

        def create(log):
            self.exec(log, c(), f"DROP TABLE IF EXISTS {self.t}")
            self.exec(log, c(), f"DROP TABLE IF EXISTS {self.ledger}")
            self.exec(log, c(), f"DROP TABLE IF EXISTS {self.bulk}")
            self.exec(log, c(), f"CREATE TABLE {self.t} (tenant_id BIGINT UNSIGNED NOT NULL, id BIGINT NOT NULL, "
                                "name VARCHAR(64) NOT NULL, balance DECIMAL(12,2) NOT NULL, "
                                "PRIMARY KEY (tenant_id, id))")
            self.exec(log, c(), f"CREATE TABLE {self.ledger} (tenant_id BIGINT UNSIGNED NOT NULL, "
                                "id BIGINT NOT NULL AUTO_INCREMENT, amount DECIMAL(12,2) NOT NULL, "
                                "PRIMARY KEY (id), KEY (tenant_id))")
            self.exec(log, c(), f"CREATE TABLE {self.bulk} (tenant_id BIGINT UNSIGNED NOT NULL, id BIGINT NOT NULL, "
                                "note VARCHAR(64) NOT NULL, PRIMARY KEY (tenant_id, id))")
            _, rows = self.exec(log, c(), f"SHOW TABLES LIKE '{self.t}'")
            self.check("SHOW TABLES", rows, [(self.t,)])
            return rows

        def insert_per_tenant(log):
            counts = []
            for tenant in TENANTS:
                rows = [(tenant, i, f"t{tenant}-acct{i}", f"{100 * i}.00") for i in (1, 2, 3)]
                placeholders = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
                flat = [v for row in rows for v in row]
                n, _ = self.exec(log, c(), f"INSERT INTO {self.t} (tenant_id, id, name, balance) VALUES "
                                           f"{placeholders}", flat)
                self.check(f"rows inserted for tenant {tenant}", n, 3)
                counts.append(n)
                for _, i, name, bal in rows:
                    self.model[tenant][i] = (name, bal)
            self.commit(log, c())
            self.check_all_tenants(log, c(), "after insert")
            return counts

        def insert_many_tenants(log):
            # executemany: both drivers send ONE multi-row INSERT holding rows of all four tenants. Its own table,
            # so that the other steps' state does not depend on it.
            rows = [(tenant, 10, f"t{tenant}-bulk") for tenant in TENANTS]
            n, _ = self.exec(log, c(), f"INSERT INTO {self.bulk} (tenant_id, id, note) VALUES (%s, %s, %s)",
                             rows, many=True)
            self.check("rows inserted by executemany", n, len(rows))
            self.commit(log, c())
            seen = []
            for tenant, i, note in rows:
                _, got = self.exec(log, c(), f"SELECT tenant_id, id, note FROM {self.bulk} WHERE tenant_id = %s",
                                   (tenant,))
                self.check(f"executemany row of tenant {tenant}", got, [(tenant, i, note)])
                seen.append(got)
            self.rollback(log, c())
            return [n, seen]

        def transaction_commit(log):
            # A transfer inside tenant 101 plus a ledger row, and one statement for tenant 202 (another shard).
            self.driver.begin(c(), log)
            n1, _ = self.exec(log, c(), f"UPDATE {self.t} SET balance = balance - 25 WHERE tenant_id = %s AND id = %s",
                              (101, 1))
            n2, _ = self.exec(log, c(), f"UPDATE {self.t} SET balance = balance + 25 WHERE tenant_id = %s AND id = %s",
                              (101, 2))
            n3, _ = self.exec(log, c(), f"INSERT INTO {self.ledger} (tenant_id, amount) VALUES (%s, %s)", (101, "25.00"))
            n4, _ = self.exec(log, c(), f"UPDATE {self.t} SET name = %s WHERE tenant_id = %s AND id = %s",
                              ("t202-renamed", 202, 3))
            self.check("affected rows in the transaction", [n1, n2, n3, n4], [1, 1, 1, 1])
            self.commit(log, c())
            self.model[101][1] = (self.model[101][1][0], "75.00")
            self.model[101][2] = (self.model[101][2][0], "225.00")
            self.model[202][3] = ("t202-renamed", self.model[202][3][1])
            seen = self.check_all_tenants(log, c(), "after COMMIT")
            _, ledger = self.exec(log, c(), f"SELECT tenant_id, amount FROM {self.ledger} WHERE tenant_id = %s", (101,))
            self.check("ledger of tenant 101", ledger, [(101, "25.00")])
            self.rollback(log, c())
            return [seen, ledger]

        def transaction_rollback(log):
            # Writes on three tenants (several shards), visible inside; a ROLLBACK must leave nothing.
            self.driver.begin(c(), log)
            self.exec(log, c(), f"INSERT INTO {self.t} (tenant_id, id, name, balance) VALUES (%s, %s, %s, %s)",
                      (202, 99, "t202-ghost", "1.00"))
            self.exec(log, c(), f"INSERT INTO {self.t} (tenant_id, id, name, balance) VALUES (%s, %s, %s, %s)",
                      (303, 99, "t303-ghost", "1.00"))
            n, _ = self.exec(log, c(), f"UPDATE {self.t} SET balance = 0 WHERE tenant_id = %s", (101,))
            self.check("rows zeroed for tenant 101 inside the transaction", n, len(self.model[101]))
            n, _ = self.exec(log, c(), f"DELETE FROM {self.t} WHERE tenant_id = %s AND id = %s", (404, 1))
            self.check("rows deleted for tenant 404 inside the transaction", n, 1)
            self.exec(log, c(), f"INSERT INTO {self.ledger} (tenant_id, amount) VALUES (%s, %s)", (303, "1.00"))
            _, inside = self.exec(log, c(), f"SELECT name FROM {self.t} WHERE tenant_id = %s AND id = %s", (303, 99))
            self.check("own uncommitted insert, read inside the transaction", inside, [("t303-ghost",)])
            self.rollback(log, c())
            seen = self.check_all_tenants(log, c(), "after ROLLBACK")
            for tenant in TENANTS:
                self.check_tenant(log, c(), tenant, "after ROLLBACK, same connection")
            _, ledger = self.exec(log, c(), f"SELECT tenant_id, amount FROM {self.ledger} WHERE tenant_id = %s", (303,))
            self.check("ledger of tenant 303 after ROLLBACK", ledger, [])
            self.rollback(log, c())
            return seen

        def update(log):
            n, _ = self.exec(log, c(), f"UPDATE {self.t} SET name = CONCAT(name, '!') WHERE tenant_id = %s", (303,))
            self.check("rows updated for tenant 303", n, len(self.model[303]))
            # Changed or matched rows, as the driver's CLIENT_FOUND_ROWS flag asks: compared with plain MariaDB.
            noop, _ = self.exec(log, c(), f"UPDATE {self.t} SET balance = balance WHERE tenant_id = %s AND id = %s",
                                (303, 1))
            self.commit(log, c())
            for i, (name, bal) in self.model[303].items():
                self.model[303][i] = (name + "!", bal)
            return [noop, self.check_all_tenants(log, c(), "after UPDATE")]

        def select(log):
            out = []
            for tenant in TENANTS:
                want = self.model[tenant]
                total = sum(decimal.Decimal(bal) for _, bal in want.values())
                _, rows = self.exec(log, c(), f"SELECT COUNT(*), SUM(balance), MAX(name) FROM {self.t} "
                                              "WHERE tenant_id = %s", (tenant,))
                self.check(f"aggregate of tenant {tenant}", rows,
                           [(len(want), str(total), max(name for name, _ in want.values()))])
                _, rows = self.exec(log, c(), f"SELECT id, name FROM {self.t} WHERE tenant_id = %s AND balance >= %s "
                                              "ORDER BY balance DESC, id LIMIT 2", (tenant, "100"))
                big = sorted(((i, n, decimal.Decimal(b)) for i, (n, b) in want.items() if decimal.Decimal(b) >= 100),
                             key=lambda r: (-r[2], r[0]))[:2]
                self.check(f"top balances of tenant {tenant}", rows, [(i, n) for i, n, _ in big])
                out.append(rows)
            self.rollback(log, c())
            return out

        def report_across_tenants(log):
            # An admin report without a tenant condition: every shard must answer (scatter-gather).
            _, rows = self.exec(log, c(), f"SELECT tenant_id, COUNT(*) FROM {self.t} GROUP BY tenant_id "
                                          "ORDER BY tenant_id")
            self.check("rows per tenant, all tenants", rows, [(t, len(self.model[t])) for t in TENANTS])
            self.rollback(log, c())
            return rows

        def duplicate_key(log):
            try:
                self.exec(log, c(), f"INSERT INTO {self.t} (tenant_id, id, name, balance) VALUES (%s, %s, %s, %s)",
                          (202, 1, "dup", "0"))
            except Exception as err:  # noqa: BLE001
                code = self.driver.error_code(err)
                self.check("error code of a duplicate key", code, 1062)
                self.rollback(log, c())
                return code
            raise StepFailed("a duplicate primary key was accepted")

        def delete(log):
            n, _ = self.exec(log, c(), f"DELETE FROM {self.t} WHERE tenant_id = %s AND id = %s", (202, 2))
            self.check("rows deleted for tenant 202", n, 1)
            n, _ = self.exec(log, c(), f"DELETE FROM {self.t} WHERE tenant_id = %s AND id = %s", (202, 12345))
            self.check("rows deleted for a missing id", n, 0)
            self.commit(log, c())
            del self.model[202][2]
            return self.check_all_tenants(log, c(), "after DELETE")

        def prepared(log):
            # mysql-connector-python's server-side prepared statements (COM_STMT_PREPARE/EXECUTE, binary rows).
            cur = c().cursor(prepared=True)
            try:
                sql = f"SELECT id, name, balance FROM {self.t} WHERE tenant_id = %s AND id >= %s ORDER BY id"
                out = []
                for tenant in TENANTS:
                    log.sent(f"{sql}  -- prepared, params {(tenant, 1)!r}")
                    cur.execute(sql, (tenant, 1))
                    rows = norm_rows(cur.fetchall())
                    self.check(f"prepared select of tenant {tenant}", rows,
                               [r[1:] for r in self.expected_rows(tenant)])
                    out.append(rows)
                usql = f"UPDATE {self.t} SET balance = balance + %s WHERE tenant_id = %s AND id = %s"
                log.sent(f"{usql}  -- prepared, params {('1.00', 404, 2)!r}")
                cur.execute(usql, ("1.00", 404, 2))
                self.check("rows updated by a prepared UPDATE", cur.rowcount, 1)
            finally:
                cur.close()
            self.commit(log, c())
            name, bal = self.model[404][2]
            self.model[404][2] = (name, str(decimal.Decimal(bal) + 1))
            self.check_all_tenants(log, c(), "after prepared UPDATE")
            return out

        def drop(log):
            self.exec(log, c(), f"DROP TABLE {self.t}")
            self.exec(log, c(), f"DROP TABLE {self.ledger}")
            self.exec(log, c(), f"DROP TABLE {self.bulk}")
            _, rows = self.exec(log, c(), f"SHOW TABLES LIKE '{self.t}'")
            self.check("SHOW TABLES after DROP", rows, [])
            return rows

        steps = [("connect, SELECT DATABASE()", session), ("CREATE TABLE (fans out)", create),
                 ("INSERT, one tenant per statement", insert_per_tenant),
                 ("executemany INSERT across tenants", insert_many_tenants),
                 ("transaction: BEGIN ... COMMIT", transaction_commit),
                 ("transaction: BEGIN ... ROLLBACK leaves nothing", transaction_rollback),
                 ("UPDATE", update), ("SELECT per tenant", select),
                 ("SELECT across tenants (GROUP BY tenant_id)", report_across_tenants),
                 ("duplicate key gives 1062", duplicate_key), ("DELETE", delete)]
        if self.driver.name == "connector":
            steps.append(("server-side prepared statements", prepared))
        steps.append(("DROP TABLE (fans out)", drop))
        for name, fn in steps:
            self.step(name, fn)
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass
        return self.results


def prepare_reference_database(driver, port, database):
    conn = driver.connect(port, "root", "", None)
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        cur.close()
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", required=True, choices=("pymysql", "connector"))
    parser.add_argument("--proxy-port", type=int, required=True)
    parser.add_argument("--direct-port", type=int, required=True, help="a plain MariaDB, root without password")
    parser.add_argument("--table", default=None, help="table name (default: flow_<driver>)")
    parser.add_argument("--keyspace", default="app")
    args = parser.parse_args()
    driver = Driver(args.driver)
    table = args.table or f"flow_{args.driver}"
    print(f"{args.driver} {driver.version}: table {table}", flush=True)

    reference_db = f"ref_{table}"
    prepare_reference_database(driver, args.direct_port, reference_db)
    direct = Flow(driver, "direct", args.direct_port, "root", "", reference_db, table).run()
    wrong = [r for r in direct if not r[1]]
    if wrong:
        print(f"FLOW IS WRONG: {len(wrong)} step(s) fail on plain MariaDB, so their expectations are wrong",
              flush=True)
        return 2

    proxied = Flow(driver, "shardgate", args.proxy_port, "app", "app", args.keyspace, table).run()
    failures = []
    for (name, _, want, _, _), (_, ok, got, message, statements) in zip(direct, proxied):
        if not ok:
            failures.append((name, message, statements))
        elif got != want:
            failures.append((name, f"differs from plain MariaDB: shardgate {got!r}, MariaDB {want!r}", statements))
    print(f"{args.driver}: {len(proxied) - len(failures)} passed, {len(failures)} failed", flush=True)
    for name, message, statements in failures:
        print(f"FAIL [{args.driver}] {name}: {clip(message)}", flush=True)
        for statement in statements[-3:]:
            print(f"    sent: {clip(statement)}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
