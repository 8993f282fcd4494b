#!/usr/bin/env bash
# sysbench oltp_read_write, unmodified and with its default server-side prepared statements, through shardgate.
#
# Usage: tests/clients/sysbench.sh    (normally started by tests/clients/run.sh)
#
#   The topology in front of it lists sbtest1..sbtestN as sharded by column `id` (run.sh writes it). Steps:
#     1. `sysbench oltp_read_write prepare` through the proxy: CREATE TABLE (fans out), the bulk INSERTs, CREATE INDEX.
#     2. `run` for SYSBENCH_SECONDS through the proxy. It passes only if sysbench exits 0, prints no FATAL/ALERT
#        line, stops on no error (the deadlocks and lock wait timeouts it retries by design are counted and shown),
#        reports 0 reconnects and at least one transaction, the
#        shards together still hold exactly SYSBENCH_TABLE_SIZE rows per table afterwards (oltp_read_write deletes
#        and re-inserts the same ids, so the count is invariant), counted on the backends directly, and
#        `SELECT COUNT(*), SUM(k)` through the proxy equals those totals.
#     3. `cleanup` through the proxy (DROP TABLE fans out); no sbtest table may be left on any shard.
#   Every option is sysbench's default. With its default --auto_inc=on, prepare's bulk INSERTs carry no `id`: run.sh's
#   topology gives the sbtest tables sequences, so the proxy hands out the ids and places each row by its id.
#   If step 1 fails, the check has failed; the tables are then still loaded another way (sysbench prepare on a plain
#   database, DDL without the engine comment and one INSERT per row through the proxy), so that step 2 shows in the
#   same run what `run` would hit. That load is a diagnostic, never a pass.
#
# Environment:
#   SHARDGATE_CLIENTS_PROXY_PORT     shardgate (user app/app, keyspace app)
#   SHARDGATE_CLIENTS_DIRECT_PORT    a plain MariaDB (root without password)
#   SHARDGATE_CLIENTS_BACKEND_PORTS  the shard servers, space-separated (rows are counted there)
#   SHARDGATE_CLIENTS_WORK           folder for sysbench's output
#   SYSBENCH_SECONDS                 length of `run` (default 60)
#   SYSBENCH_TABLES                  tables (default 2; run.sh's topology lists sbtest1..sbtest8)
#   SYSBENCH_TABLE_SIZE              rows per table (default 1000)
#   SYSBENCH_THREADS                 client threads (default 4)
# Exit 0 when every step passed, 1 otherwise.
set -euo pipefail

# shellcheck source=deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib/common.sh"

PROXY_PORT="${SHARDGATE_CLIENTS_PROXY_PORT:?set SHARDGATE_CLIENTS_PROXY_PORT}"
DIRECT_PORT="${SHARDGATE_CLIENTS_DIRECT_PORT:?set SHARDGATE_CLIENTS_DIRECT_PORT}"
BACKEND_PORTS="${SHARDGATE_CLIENTS_BACKEND_PORTS:?set SHARDGATE_CLIENTS_BACKEND_PORTS}"
WORK="${SHARDGATE_CLIENTS_WORK:?set SHARDGATE_CLIENTS_WORK}/sysbench"
SECONDS_RUN="${SYSBENCH_SECONDS:-60}"
TABLES="${SYSBENCH_TABLES:-2}"
TABLE_SIZE="${SYSBENCH_TABLE_SIZE:-1000}"
THREADS="${SYSBENCH_THREADS:-4}"
KEYSPACE=app
REF_DB=ref_sbtest
# prepare and cleanup are bounded too; run gets its --time plus this much grace before it is killed.
STEP_TIMEOUT_S=300
RUN_GRACE_S=60

for v in "$SECONDS_RUN" "$TABLES" "$TABLE_SIZE" "$THREADS"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "SYSBENCH_SECONDS, _TABLES, _TABLE_SIZE and _THREADS must be positive integers"
done
[ "$TABLES" -le 8 ] || die "SYSBENCH_TABLES must be at most 8: run.sh's topology lists sbtest1..sbtest8"

mkdir -p "$WORK"
FAILED=()
pass() { printf '  PASS %s\n' "$1"; }
fail() {
    printf '  FAIL %s\n' "$1"
    FAILED+=("$1")
}

SB_COMMON=(--db-driver=mysql --mysql-host=127.0.0.1 --tables="$TABLES" --table-size="$TABLE_SIZE")
SB_PROXY=("${SB_COMMON[@]}" --mysql-port="$PROXY_PORT" --mysql-user=app --mysql-password=app --mysql-db="$KEYSPACE")
SB_DIRECT=("${SB_COMMON[@]}" --mysql-port="$DIRECT_PORT" --mysql-user=root --mysql-password= --mysql-db="$REF_DB")

direct() {
    timeout 60 mariadb --no-defaults --protocol=TCP --connect-timeout=10 -h127.0.0.1 -P"$DIRECT_PORT" -uroot \
        --batch --skip-column-names "$@"
}
proxy() {
    timeout "$STEP_TIMEOUT_S" mariadb --no-defaults --protocol=TCP --connect-timeout=10 -h127.0.0.1 \
        -P"$PROXY_PORT" -uapp -papp --batch --skip-column-names "$KEYSPACE" "$@"
}

# Prints sysbench's complaints from output file $1 (the statement and error it aborted on), indented.
show_errors() {
    { grep -E -A8 '^(FATAL|ALERT|WARNING)' "$1" || tail -n 15 "$1"; } | head -n 30 | sed 's/^/      /'
}

# Per table, the rows all shards hold together and the sum of their `k`, read on the backends directly:
# "sbtest1 1000 500500 sbtest2 ..."; a table missing on a server shows as "missing".
shard_totals() {
    local port db t out="" union
    for ((t = 1; t <= TABLES; t++)); do
        local rows=0 sum=0 n k
        for port in $BACKEND_PORTS; do
            union=""
            for db in $(mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$port" -uroot --batch --skip-column-names \
                -e "SHOW DATABASES LIKE '${KEYSPACE}\\_%'"); do
                [ -z "$union" ] || union+=" UNION ALL "
                union+="SELECT COUNT(*) AS n, COALESCE(SUM(k), 0) AS k FROM \`$db\`.sbtest$t"
            done
            [ -n "$union" ] || continue
            if read -r n k < <(mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$port" -uroot --batch \
                --skip-column-names -e "SELECT SUM(n), SUM(k) FROM ($union) AS per_shard" 2>/dev/null); then
                rows=$((rows + n))
                sum=$((sum + k))
            else
                rows=missing sum=missing
                break
            fi
        done
        out+="sbtest$t $rows $sum "
    done
    echo "${out% }"
}

# The same totals read through the proxy (a scatter over every shard).
proxy_totals() {
    local t out="" n k
    for ((t = 1; t <= TABLES; t++)); do
        read -r n k < <(proxy -e "SELECT COUNT(*), SUM(k) FROM sbtest$t" 2>&1 | tr '\n' ' ')
        out+="sbtest$t $n $k "
    done
    echo "${out% }"
}

# The row counts of shard_totals output $1: "sbtest1 1000 sbtest2 1000 ...".
row_counts_of() { awk '{ for (i = 1; i <= NF; i += 3) printf "%s%s %s", (i > 1 ? " " : ""), $i, $(i + 1) }' <<<"$1"; }

expected_counts() {
    local t out=""
    for ((t = 1; t <= TABLES; t++)); do out+="sbtest$t $TABLE_SIZE "; done
    echo "${out% }"
}

# Tables with any sbtest table left on any shard, counted on the backends.
# sbtest tables left on any shard (the sequence tables run.sh made, sbtestN_seq, are not sysbench's).
leftover_tables() {
    local port n=0
    for port in $BACKEND_PORTS; do
        n=$((n + $(mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$port" -uroot --batch --skip-column-names \
            -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE '${KEYSPACE}\\_%'
                AND TABLE_NAME LIKE 'sbtest%' AND TABLE_NAME NOT LIKE '%\\_seq'")))
    done
    echo "$n"
}

# The fallback load after a failed prepare (see the header): diagnostic only.
load_around_prepare() {
    local t ddl
    log "loading the sbtest tables another way, to see what \`run\` hits (diagnostic; the check has failed)"
    proxy -e "$(for ((t = 1; t <= TABLES; t++)); do printf 'DROP TABLE IF EXISTS sbtest%d;' "$t"; done)" \
        >/dev/null 2>&1 || true
    direct -e "DROP DATABASE IF EXISTS $REF_DB; CREATE DATABASE $REF_DB"
    timeout "$STEP_TIMEOUT_S" sysbench oltp_read_write "${SB_DIRECT[@]}" --auto_inc=off prepare \
        >"$WORK/prepare-direct.log" 2>&1 || { show_errors "$WORK/prepare-direct.log"; return 1; }
    for ((t = 1; t <= TABLES; t++)); do
        # Batch mode prints the statement on one line with its newlines as \n.
        ddl="$(direct "$REF_DB" -e "SHOW CREATE TABLE sbtest$t" | cut -f2 | sed 's/\\n/ /g')"
        proxy -e "$ddl" >>"$WORK/load.log" 2>&1 || { tail -n 5 "$WORK/load.log"; return 1; }
        # --raw: c and pad go out exactly as QUOTE() wrote them.
        direct --raw "$REF_DB" -e "SELECT CONCAT('INSERT INTO sbtest$t (id, k, c, pad) VALUES (', id, ', ', k, ', ',
            QUOTE(c), ', ', QUOTE(pad), ');') FROM sbtest$t ORDER BY id" | proxy >>"$WORK/load.log" 2>&1 \
            || { tail -n 5 "$WORK/load.log"; return 1; }
    done
    direct -e "DROP DATABASE IF EXISTS $REF_DB"
    [ "$(row_counts_of "$(shard_totals)")" = "$(expected_counts)" ] || return 1
}

check_prepare() {
    local name="sysbench oltp_read_write prepare through the proxy ($TABLES tables x $TABLE_SIZE rows)"
    if timeout "$STEP_TIMEOUT_S" sysbench oltp_read_write "${SB_PROXY[@]}" prepare \
        >"$WORK/prepare.log" 2>&1; then
        local counts
        counts="$(row_counts_of "$(shard_totals)")"
        if [ "$counts" = "$(expected_counts)" ]; then
            pass "$name"
            return 0
        fi
        fail "$name (rows on the shards: $counts; expected $(expected_counts))"
    else
        fail "$name"
        show_errors "$WORK/prepare.log"
    fi
    load_around_prepare || { log "the diagnostic load failed too; skipping run"; return 1; }
}

check_run() {
    local name="sysbench oltp_read_write run, ${SECONDS_RUN}s, $THREADS threads, prepared statements"
    local out="$WORK/run.log" rc=0
    timeout --kill-after=10 $((SECONDS_RUN + RUN_GRACE_S)) sysbench oltp_read_write "${SB_PROXY[@]}" \
        --threads="$THREADS" --time="$SECONDS_RUN" --report-interval=10 run >"$out" 2>&1 || rc=$?
    local problems=() errors reconnects transactions counts
    [ "$rc" -eq 0 ] || problems+=("sysbench exited $rc")
    ! grep -qE '^(FATAL|ALERT)' "$out" || problems+=("sysbench printed FATAL/ALERT")
    errors="$(awk '/ignored errors:/ { print $3 }' "$out")"
    reconnects="$(awk '/reconnects:/ { print $2 }' "$out")"
    transactions="$(awk '/^ *transactions:/ { print $2 }' "$out")"
    # Ignored errors are the deadlocks and lock wait timeouts sysbench retries by design (--mysql-ignore-errors);
    # across shards a lock cycle ends only at the lock wait timeout. Any other error stops sysbench (rc, FATAL).
    [ -n "$errors" ] || problems+=("no ignored-errors line in sysbench's report")
    [ "$reconnects" = 0 ] || problems+=("reconnects: ${reconnects:-none reported}")
    [ "${transactions:-0}" -gt 0 ] 2>/dev/null || problems+=("transactions: ${transactions:-none reported}")
    local totals through
    totals="$(shard_totals)"
    counts="$(row_counts_of "$totals")"
    [ "$counts" = "$(expected_counts)" ] || problems+=("rows on the shards after the run: $counts")
    # COUNT(*) and SUM(k) through the proxy (scatter-gather) against the shards' own totals.
    through="$(proxy_totals)"
    [ "$through" = "$totals" ] || problems+=("COUNT(*), SUM(k) through the proxy: $through; on the shards: $totals")
    if [ "${#problems[@]}" -eq 0 ]; then
        pass "$name: $transactions transactions, $(awk '/^ *queries:/ { print $2 }' "$out") queries, 0 errors, $errors retried (deadlocks, lock waits)"
    else
        fail "$name"
        local p
        for p in "${problems[@]}"; do printf '      %s\n' "$p"; done
        show_errors "$out"
    fi
}

check_cleanup() {
    local name="sysbench oltp_read_write cleanup through the proxy"
    if ! timeout "$STEP_TIMEOUT_S" sysbench oltp_read_write "${SB_PROXY[@]}" cleanup >"$WORK/cleanup.log" 2>&1; then
        fail "$name"
        show_errors "$WORK/cleanup.log"
        return
    fi
    local left
    left="$(leftover_tables)"
    if [ "$left" = 0 ]; then pass "$name"; else fail "$name ($left sbtest tables left on the shards)"; fi
}

printf '%s\n' "$(sysbench --version)"
if check_prepare; then
    check_run
else
    fail "sysbench oltp_read_write run (not started: no tables)"
fi
check_cleanup
printf 'sysbench: %d passed, %d failed\n' $((3 - ${#FAILED[@]})) "${#FAILED[@]}"
[ "${#FAILED[@]}" -eq 0 ]
