#!/usr/bin/env bash
# The `mariadb` client and `mariadb-dump`, unmodified, through shardgate; every result compared with the same
# commands run directly on a plain MariaDB database (differential) and with the rows the flow wrote.
#
# Usage: tests/clients/mariadb_cli.sh    (normally started by tests/clients/run.sh)
#
#   1. batch: `mariadb --batch` runs a script through the proxy (DDL that fans out, INSERTs for tenants 7, 8 and 9,
#      UPDATE, DELETE, SELECTs) and the same script on the plain database; the outputs must be identical and equal
#      to the expected text.
#   2. dump: `mariadb-dump --single-transaction --where "tenant_id = 8"` dumps tenant 8's rows of the two sharded
#      tables through the proxy. It must succeed, match the same dump taken from the plain database line for line
#      (but for the header naming the server), hold exactly tenant 8's rows, and load into a new plain database
#      where both tables then hold exactly those rows.
#   3. restore: tenant 8's rows are deleted through the proxy and a data-only dump of them (`--no-create-info
#      --complete-insert`, taken from the plain database) is loaded back through the proxy with `mariadb`; tenant 8
#      must get its rows back and tenants 7 and 9 must be untouched.
#
# Environment (set by run.sh):
#   SHARDGATE_CLIENTS_PROXY_PORT    shardgate (user app/app, keyspace app)
#   SHARDGATE_CLIENTS_DIRECT_PORT   a plain MariaDB (root without password) for the reference databases
#   SHARDGATE_CLIENTS_WORK          folder for the outputs (dumps, diffs)
# Exit 0 when every check passed, 1 otherwise; each check prints PASS or FAIL with what differed.
set -euo pipefail

# shellcheck source=deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib/common.sh"

PROXY_PORT="${SHARDGATE_CLIENTS_PROXY_PORT:?set SHARDGATE_CLIENTS_PROXY_PORT}"
DIRECT_PORT="${SHARDGATE_CLIENTS_DIRECT_PORT:?set SHARDGATE_CLIENTS_DIRECT_PORT}"
WORK="${SHARDGATE_CLIENTS_WORK:?set SHARDGATE_CLIENTS_WORK}/mariadb_cli"
KEYSPACE=app
REF_DB=ref_cli
LOAD_DB=ref_cli_load
# Every client call is bounded: a proxy that stops answering fails the check instead of hanging CI.
CALL_TIMEOUT_S=60
TENANT=8

mkdir -p "$WORK"
FAILED=()
pass() { printf '  PASS %s\n' "$1"; }
fail() {
    printf '  FAIL %s\n' "$1"
    FAILED+=("$1")
}

# mariadb-dump has no --connect-timeout; `timeout` bounds it all the same.
CONN_OPTS=(--no-defaults --protocol=TCP -h127.0.0.1)
proxy() {
    timeout "$CALL_TIMEOUT_S" mariadb "${CONN_OPTS[@]}" --connect-timeout=10 -P"$PROXY_PORT" -uapp -papp "$KEYSPACE" "$@"
}
direct() { timeout "$CALL_TIMEOUT_S" mariadb "${CONN_OPTS[@]}" --connect-timeout=10 -P"$DIRECT_PORT" -uroot "$@"; }
dump_proxy() { timeout "$CALL_TIMEOUT_S" mariadb-dump "${CONN_OPTS[@]}" -P"$PROXY_PORT" -uapp -papp "$@"; }
dump_direct() { timeout "$CALL_TIMEOUT_S" mariadb-dump "${CONN_OPTS[@]}" -P"$DIRECT_PORT" -uroot "$@"; }

# Prints the last lines of file $1 indented, for a FAIL's explanation.
show() { sed -n '1,40p' "$1" | sed 's/^/      /'; }

# The rows every check expects, as `mariadb --batch --skip-column-names` prints them.
rows_of_tenant() {
    case "$1" in
        notes-7) printf '7\t1\tseven one\n7\t2\tseven two\n' ;;
        notes-8) printf '8\t1\teight one (edited)\n8\t2\teight two\n8\t3\teight three: tab\\there, quote '"'"'q'"'"'\n' ;;
        notes-9) printf '9\t2\tnine two\n' ;;
        tags-7) printf '7\t1\tred\n' ;;
        tags-8) printf '8\t1\tblue\n8\t3\tgreen\n' ;;
        tags-9) printf '9\t2\tred\n' ;;
    esac
}

BATCH_SQL="$(
    cat <<'SQL'
DROP TABLE IF EXISTS cli_notes;
DROP TABLE IF EXISTS cli_tags;
CREATE TABLE cli_notes (tenant_id BIGINT UNSIGNED NOT NULL, id BIGINT NOT NULL, body VARCHAR(200) NOT NULL,
                        PRIMARY KEY (tenant_id, id)) DEFAULT CHARSET = utf8mb4;
CREATE TABLE cli_tags (tenant_id BIGINT UNSIGNED NOT NULL, note_id BIGINT NOT NULL, tag VARCHAR(20) NOT NULL,
                       PRIMARY KEY (tenant_id, note_id, tag)) DEFAULT CHARSET = utf8mb4;
INSERT INTO cli_notes (tenant_id, id, body) VALUES (7, 1, 'seven one'), (7, 2, 'seven two');
INSERT INTO cli_notes (tenant_id, id, body) VALUES (8, 1, 'eight one'), (8, 2, 'eight two'),
                                                   (8, 3, 'eight three: tab\there, quote ''q''');
INSERT INTO cli_notes (tenant_id, id, body) VALUES (9, 1, 'nine one'), (9, 2, 'nine two');
INSERT INTO cli_tags (tenant_id, note_id, tag) VALUES (7, 1, 'red');
INSERT INTO cli_tags (tenant_id, note_id, tag) VALUES (8, 1, 'blue'), (8, 3, 'green');
INSERT INTO cli_tags (tenant_id, note_id, tag) VALUES (9, 2, 'red');
UPDATE cli_notes SET body = CONCAT(body, ' (edited)') WHERE tenant_id = 8 AND id = 1;
DELETE FROM cli_notes WHERE tenant_id = 9 AND id = 1;
SELECT tenant_id, id, body FROM cli_notes WHERE tenant_id = 7 ORDER BY id;
SELECT tenant_id, id, body FROM cli_notes WHERE tenant_id = 8 ORDER BY id;
SELECT tenant_id, id, body FROM cli_notes WHERE tenant_id = 9 ORDER BY id;
SELECT COUNT(*) FROM cli_tags WHERE tenant_id = 9;
SQL
)"

# A join of two tables sharded by the same column, on that column, for one tenant: one shard holds the answer.
JOIN_SQL="SELECT n.tenant_id, n.id, n.body, t.tag FROM cli_notes AS n JOIN cli_tags AS t
  ON t.tenant_id = n.tenant_id AND t.note_id = n.id WHERE n.tenant_id = 8 ORDER BY n.id, t.tag"

expected_batch() {
    rows_of_tenant notes-7
    rows_of_tenant notes-8
    rows_of_tenant notes-9
    printf '1\n'
}

check_batch() {
    local name="mariadb --batch: DDL, INSERT, UPDATE, DELETE, SELECT per tenant"
    direct -e "DROP DATABASE IF EXISTS $REF_DB; CREATE DATABASE $REF_DB" || die "cannot create $REF_DB directly"
    expected_batch >"$WORK/batch.expected"
    if ! direct --batch --skip-column-names "$REF_DB" <<<"$BATCH_SQL" >"$WORK/batch.direct" 2>&1; then
        show "$WORK/batch.direct"
        die "the batch script fails on plain MariaDB: the test is wrong"
    fi
    diff -u "$WORK/batch.expected" "$WORK/batch.direct" >/dev/null \
        || { diff -u "$WORK/batch.expected" "$WORK/batch.direct" | show /dev/stdin; die "plain MariaDB disagrees with the expected batch output: the test is wrong"; }
    if ! proxy --batch --skip-column-names <<<"$BATCH_SQL" >"$WORK/batch.proxy" 2>&1; then
        fail "$name"
        show "$WORK/batch.proxy"
        return
    fi
    if diff -u "$WORK/batch.direct" "$WORK/batch.proxy" >"$WORK/batch.diff"; then
        pass "$name"
    else
        fail "$name (output differs from plain MariaDB)"
        show "$WORK/batch.diff"
    fi
}

check_join() {
    local name="mariadb --batch: JOIN of two tables on tenant_id, within tenant $TENANT"
    printf '8\t1\teight one (edited)\tblue\n8\t3\teight three: tab\\there, quote '"'"'q'"'"'\tgreen\n' \
        >"$WORK/join.expected"
    if ! direct --batch --skip-column-names "$REF_DB" -e "$JOIN_SQL" >"$WORK/join.direct" 2>&1 \
        || ! diff -q "$WORK/join.expected" "$WORK/join.direct" >/dev/null; then
        show "$WORK/join.direct"
        die "the join gives other rows on plain MariaDB: the test is wrong"
    fi
    if ! proxy --batch --skip-column-names -e "$JOIN_SQL" >"$WORK/join.proxy" 2>&1; then
        fail "$name"
        printf '      sent: %s\n' "$(tr '\n' ' ' <<<"$JOIN_SQL")"
        show "$WORK/join.proxy"
    elif diff -u "$WORK/join.direct" "$WORK/join.proxy" >"$WORK/join.diff"; then
        pass "$name"
    else
        fail "$name (rows differ from plain MariaDB)"
        show "$WORK/join.diff"
    fi
}

# The dump without its header lines that name the server and the database, which differ by design.
dump_body() { grep -v -e '^-- Host:' -e '^-- Server version' -e '^-- MariaDB dump' "$1"; }

check_dump() {
    local name="mariadb-dump --single-transaction --where \"tenant_id = $TENANT\" through the proxy"
    local opts=(--single-transaction --skip-dump-date --where "tenant_id = $TENANT")
    dump_direct "${opts[@]}" "$REF_DB" cli_notes cli_tags >"$WORK/dump.direct.sql" 2>"$WORK/dump.direct.err" \
        || { show "$WORK/dump.direct.err"; die "mariadb-dump fails on plain MariaDB: the test is wrong"; }
    if ! dump_proxy "${opts[@]}" "$KEYSPACE" cli_notes cli_tags >"$WORK/dump.proxy.sql" 2>"$WORK/dump.proxy.err"; then
        fail "$name"
        printf '      mariadb-dump exited non-zero; its stderr:\n'
        show "$WORK/dump.proxy.err"
        return
    fi
    local ok=1
    if ! diff -u <(dump_body "$WORK/dump.direct.sql") <(dump_body "$WORK/dump.proxy.sql") >"$WORK/dump.diff"; then
        ok=0
        printf '      the dump differs from the same dump of plain MariaDB:\n'
        show "$WORK/dump.diff"
    fi
    # Only tenant 8's rows: every row tuple in the INSERTs starts with its tenant id.
    local others
    others="$(grep -E '^(INSERT INTO|\()' "$WORK/dump.proxy.sql" | grep -oE '\([0-9]+,' | grep -vc "^($TENANT,$" || true)"
    if [ "$others" != 0 ]; then
        ok=0
        printf '      the dump holds %s row(s) of other tenants\n' "$others"
    fi
    # Loaded into a new plain database, the tables hold exactly tenant 8's rows.
    direct -e "DROP DATABASE IF EXISTS $LOAD_DB; CREATE DATABASE $LOAD_DB"
    if direct "$LOAD_DB" <"$WORK/dump.proxy.sql" >"$WORK/load.out" 2>&1; then
        direct --batch --skip-column-names "$LOAD_DB" \
            -e "SELECT tenant_id, id, body FROM cli_notes ORDER BY tenant_id, id;
                SELECT tenant_id, note_id, tag FROM cli_tags ORDER BY tenant_id, note_id, tag" >"$WORK/load.rows"
        if ! diff -u <(rows_of_tenant notes-$TENANT; rows_of_tenant tags-$TENANT) "$WORK/load.rows" \
            >"$WORK/load.diff"; then
            ok=0
            printf '      after loading the dump into a plain database, its rows differ from tenant %s:\n' "$TENANT"
            show "$WORK/load.diff"
        fi
    else
        ok=0
        printf '      loading the dump into a plain database failed:\n'
        show "$WORK/load.out"
    fi
    if [ "$ok" = 1 ]; then pass "$name"; else fail "$name"; fi
}

check_restore() {
    local name="restore tenant $TENANT through the proxy from a data-only mariadb-dump (mariadb < dump.sql)"
    # --skip-add-locks: LOCK TABLES is refused by the proxy (a lock on every shard is not offered; README).
    dump_direct --single-transaction --skip-dump-date --no-create-info --complete-insert --skip-add-locks \
        --where "tenant_id = $TENANT" "$REF_DB" cli_notes cli_tags >"$WORK/restore.sql" 2>"$WORK/restore.err" \
        || { show "$WORK/restore.err"; die "data-only mariadb-dump fails on plain MariaDB: the test is wrong"; }
    if ! proxy -e "DELETE FROM cli_tags WHERE tenant_id = $TENANT; DELETE FROM cli_notes WHERE tenant_id = $TENANT" \
        >"$WORK/restore.delete" 2>&1; then
        fail "$name (deleting tenant $TENANT's rows first)"
        show "$WORK/restore.delete"
        return
    fi
    local ok=1 t
    if ! proxy <"$WORK/restore.sql" >"$WORK/restore.out" 2>&1; then
        ok=0
        printf '      mariadb < restore.sql through the proxy failed:\n'
        show "$WORK/restore.out"
    fi
    for t in 7 8 9; do
        proxy --batch --skip-column-names \
            -e "SELECT tenant_id, id, body FROM cli_notes WHERE tenant_id = $t ORDER BY id;
                SELECT tenant_id, note_id, tag FROM cli_tags WHERE tenant_id = $t ORDER BY note_id, tag" \
            >"$WORK/restore.rows-$t" 2>&1 || true
        if ! diff -u <(rows_of_tenant "notes-$t"; rows_of_tenant "tags-$t") "$WORK/restore.rows-$t" \
            >"$WORK/restore.diff-$t"; then
            ok=0
            printf '      tenant %s after the restore:\n' "$t"
            show "$WORK/restore.diff-$t"
        fi
    done
    if [ "$ok" = 1 ]; then pass "$name"; else fail "$name"; fi
}

cleanup_tables() {
    proxy -e "DROP TABLE IF EXISTS cli_notes; DROP TABLE IF EXISTS cli_tags" >/dev/null 2>&1 \
        || log "could not drop the flow's tables through the proxy"
    direct -e "DROP DATABASE IF EXISTS $REF_DB; DROP DATABASE IF EXISTS $LOAD_DB" >/dev/null 2>&1 || true
}

printf 'mariadb client %s\n' "$(mariadb --version)"
check_batch
check_join
check_dump
check_restore
cleanup_tables
total=4
printf 'mariadb_cli: %d passed, %d failed\n' $((total - ${#FAILED[@]})) "${#FAILED[@]}"
[ "${#FAILED[@]}" -eq 0 ]
