#!/usr/bin/env bash
# sysbench against one MariaDB directly, through haproxy (TCP mode) and through shardgate (128 shards on that same
# server), in alternating rounds, for several workloads; writes docs/benchmarks.md.
#
# Usage: deploy/bench.sh
#
#   Installs what is missing (mariadb-server, mariadb-client, sysbench, haproxy, python3; apt-get, needs root),
#   builds shardgate, shardctl and loadgen (cargo --release; a no-op when fresh), then in its own state folder:
#   starts one mariadbd (fresh datadir) holding the unsharded reference `sbtest` and the shard databases
#   bench_000..bench_127; haproxy (nbthread 1) in front of it; shardgate with a 128-shard topology on it, sbtest1
#   sharded by `id`. `sysbench prepare --auto_inc=off` through shardgate fills the shards (DDL fan-out, multi-row
#   INSERTs split by shard, CREATE INDEX fan-out); the reference sbtest.sbtest1 is then copied from the shards on
#   the server (sysbench's prepare data is random even with --rand-seed, so a second prepare would differ). It
#   checks that the ids are exactly 1..N and that every id is found through the proxy, i.e. on the shard it routes
#   to. --auto_inc=off: with the default (on) sysbench leaves `id` out of its INSERTs for AUTO_INCREMENT to fill,
#   which a proxy cannot route by `id` (and each shard would count its own ids from 1).
#   Then, per workload: an unrecorded warm-up per target, and for each thread count and round one sysbench run per
#   target, the targets alternating and the first one rotating each round. Every process it starts is stopped on
#   exit. Results: docs/benchmarks.md (overwritten) and one chart per workload, docs/benchmarks-WORKLOAD.svg.
#
# Workloads (BENCH_WORKLOADS, in this order by default):
#   point-select         oltp_point_select --db-ps-mode=disable (text protocol, COM_QUERY)
#   point-select-ps      oltp_point_select --db-ps-mode=auto (server-side prepared statements, sysbench's default)
#   read-only            oltp_read_only, default options (prepared BEGIN, 10 point selects, 4 range selects, COMMIT)
#   read-only-no-ranges  oltp_read_only --range_selects=off (BEGIN, 10 point selects, COMMIT)
#
# Environment:
#   BENCH_WORKLOADS        workloads to run (default "point-select point-select-ps read-only read-only-no-ranges")
#   BENCH_SECONDS          length of one measured run (default 5)
#   BENCH_ROUNDS           rounds per workload and thread count (default 3)
#   BENCH_THREADS          sysbench thread counts (default "1 4 64")
#   BENCH_TABLE_SIZE       rows in sbtest1 (default 10000)
#   BENCH_WARMUP_SECONDS   unrecorded run per workload and target before measuring, at the largest thread count
#                          (default 2)
#   BENCH_MARIADB_PORT     mariadbd port (default 24307)
#   BENCH_PROXY_PORT       shardgate port (default 24306)
#   BENCH_HAPROXY_PORT     haproxy port (default 24308)
#   BENCH_ADMIN_PORT       shardgate's admin HTTP port (default 24309)
#   BENCH_OUTPUT           markdown file to write (default <repo>/docs/benchmarks.md; the SVGs go beside it)
#   SHARDGATE_BENCH_STATE  state folder (default: a new temporary folder, removed after a successful run); its
#                          mariadb/, runs/ and failures/ subfolders are recreated on every run
#   BENCH_KEEP_STATE       1 keeps the temporary state folder (logs, datadir, sysbench output) after the run
#
# Measured time is workloads x thread counts x rounds x 3 targets x BENCH_SECONDS (default 4 x 3 x 3 x 3 x 5 s = 9 min)
# plus about 1 s per run and the warm-ups; the script prints its estimate first.
# Quick try (about 2 minutes): BENCH_SECONDS=3 BENCH_ROUNDS=1 BENCH_THREADS="1 4" deploy/bench.sh
set -euo pipefail

# shellcheck source=deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=deploy/lib/bench/run.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench/run.sh"

ALL_WORKLOADS="point-select point-select-ps read-only read-only-no-ranges"
WORKLOADS="${BENCH_WORKLOADS:-$ALL_WORKLOADS}"
RUN_SECONDS="${BENCH_SECONDS:-5}"
ROUNDS="${BENCH_ROUNDS:-3}"
THREADS="${BENCH_THREADS:-1 4 64}"
TABLE_SIZE="${BENCH_TABLE_SIZE:-10000}"
WARMUP_SECONDS="${BENCH_WARMUP_SECONDS:-2}"
MARIADB_PORT="${BENCH_MARIADB_PORT:-24307}"
PROXY_PORT="${BENCH_PROXY_PORT:-24306}"
HAPROXY_PORT="${BENCH_HAPROXY_PORT:-24308}"
ADMIN_PORT="${BENCH_ADMIN_PORT:-24309}"
OUTPUT="${BENCH_OUTPUT:-$SHARDGATE_REPO/docs/benchmarks.md}"
SHARDS=128
KEYSPACE=bench
POOL_MAX_SIZE=8
STARTUP_DEADLINE_S=60
STOP_DEADLINE_S=30
# A sysbench run that has not ended this long after its --time is killed (and recorded as failed).
RUN_GRACE_S=30
# sysbench prepare through the proxy and the read-back check: generous, but bounded.
LOAD_DEADLINE_S=$((120 + TABLE_SIZE / 100))
ALL_TARGETS=(direct haproxy shardgate)
# The targets of the workload and thread count being measured: shardgate sits out the remaining rounds after it
# failed one (see record_failure).
TARGETS=()
MARIADBD_FLAGS=(--skip-log-bin --skip-name-resolve --max-connections=2000 --innodb-buffer-pool-size=256M
    --innodb-flush-log-at-trx-commit=2)

check_settings() {
    local t
    is_count "$RUN_SECONDS" || die "BENCH_SECONDS must be a positive integer, not '$RUN_SECONDS'"
    is_count "$ROUNDS" || die "BENCH_ROUNDS must be a positive integer, not '$ROUNDS'"
    is_count "$TABLE_SIZE" || die "BENCH_TABLE_SIZE must be a positive integer, not '$TABLE_SIZE'"
    [[ "$WARMUP_SECONDS" =~ ^[0-9]+$ ]] || die "BENCH_WARMUP_SECONDS must be an integer, not '$WARMUP_SECONDS'"
    [ -n "${THREADS// /}" ] || die "BENCH_THREADS is empty"
    [ -n "${WORKLOADS// /}" ] || die "BENCH_WORKLOADS is empty"
    for t in $WORKLOADS; do
        [[ " $ALL_WORKLOADS " == *" $t "* ]] || die "unknown workload '$t' in BENCH_WORKLOADS (known: $ALL_WORKLOADS)"
    done
    for t in $THREADS; do is_count "$t" || die "BENCH_THREADS must list positive integers, not '$t'"; done
    check_ports "$MARIADB_PORT" "$PROXY_PORT" "$HAPROXY_PORT"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    finish_cleanup "$rc" "logs, sysbench output"
}

set_clients

start_haproxy() {
    local cfg="$STATE/haproxy.cfg"
    cat >"$cfg" <<CFG
# Written by deploy/bench.sh: a plain TCP relay in front of the benchmark's mariadbd.
global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen mariadb
    bind 127.0.0.1:$HAPROXY_PORT
    server db 127.0.0.1:$MARIADB_PORT
CFG
    log "haproxy: starting on 127.0.0.1:$HAPROXY_PORT"
    # -db: stay in the foreground as one process, so its pid is the one doing the work.
    setsid haproxy -db -f "$cfg" </dev/null >"$STATE/haproxy.log" 2>&1 &
    local pid=$! deadline=$((SECONDS + STARTUP_DEADLINE_S))
    STARTED+=("$pid:haproxy")
    HAPROXY_PID=$pid
    until port_accepts "$HAPROXY_PORT"; do
        kill -0 "$pid" 2>/dev/null || { tail_log "$STATE/haproxy.log"; die "haproxy exited during startup"; }
        [ "$SECONDS" -lt "$deadline" ] || { tail_log "$STATE/haproxy.log"; die "haproxy not listening after ${STARTUP_DEADLINE_S}s"; }
        sleep 0.2
    done
    mariadb --no-defaults --protocol=TCP --connect-timeout=5 -h127.0.0.1 -P"$HAPROXY_PORT" -uroot \
        --batch --skip-column-names -e "SELECT 1" >/dev/null || die "no MariaDB answer through haproxy"
}

# The sysbench arguments shared by every call against target $1 (host, port, account, database, table).
sysbench_args() {
    local port db user pass
    case "$1" in
        direct) port=$MARIADB_PORT db=sbtest user=root pass="" ;;
        haproxy) port=$HAPROXY_PORT db=sbtest user=root pass="" ;;
        shardgate) port=$PROXY_PORT db=$KEYSPACE user=app pass=app ;;
        *) die "unknown target $1" ;;
    esac
    echo "--db-driver=mysql --mysql-host=127.0.0.1 --mysql-port=$port --mysql-user=$user --mysql-password=$pass"
    echo "--mysql-db=$db --tables=1 --table-size=$TABLE_SIZE"
}

# The sysbench test and its options for workload $1.
workload_args() {
    case "$1" in
        point-select) echo "oltp_point_select --db-ps-mode=disable" ;;
        point-select-ps) echo "oltp_point_select --db-ps-mode=auto" ;;
        read-only) echo "oltp_read_only --db-ps-mode=auto" ;;
        read-only-no-ranges) echo "oltp_read_only --db-ps-mode=auto --range_selects=off" ;;
        *) die "unknown workload $1" ;;
    esac
}

# sysbench prepare through shardgate: the shards get sbtest1 (DDL and CREATE INDEX fan out) and its rows (each
# multi-row INSERT is split by shard). --auto_inc=off: sysbench then creates `id INTEGER NOT NULL` (no
# AUTO_INCREMENT) and writes id = 1..N itself in every INSERT, so the proxy can route each row by id.
prepare_shards() {
    local out="$STATE/sysbench-prepare.log" started=$SECONDS
    log "sysbench prepare through shardgate: $TABLE_SIZE rows in sbtest1 over $SHARDS shards"
    # shellcheck disable=SC2046 # sysbench_args is a word list by design
    timeout --kill-after=10 "$LOAD_DEADLINE_S" sysbench oltp_read_only $(sysbench_args shardgate) --auto_inc=off \
        --threads=1 prepare >"$out" 2>&1 \
        || { tail_log "$out"; tail_log "$STATE/shardgate.log"; die "sysbench prepare through shardgate failed"; }
    PREPARE_SECONDS=$((SECONDS - started))
    log "prepared through shardgate in ${PREPARE_SECONDS}s"
}

# The union of every shard's sbtest1, as a derived table's query on the server.
all_shards() {
    local s union=""
    for ((s = 0; s < SHARDS; s++)); do
        [ -z "$union" ] || union+=" UNION ALL "
        union+="SELECT $1 FROM \`$(shard_db "$s")\`.sbtest1"
    done
    echo "$union"
}

# The unsharded reference for direct and haproxy: the same definition and rows, copied on the server.
copy_reference() {
    db_sql -e "CREATE TABLE sbtest.sbtest1 LIKE \`$(shard_db 0)\`.sbtest1;
        INSERT INTO sbtest.sbtest1 SELECT * FROM ($(all_shards '*')) AS every_shard ORDER BY id;
        ANALYZE TABLE sbtest.sbtest1" >/dev/null || die "copying the shards' rows into sbtest.sbtest1 failed"
    log "sbtest.sbtest1: $(db_sql -e "SELECT COUNT(*) FROM sbtest.sbtest1") rows copied from the shards"
}

write_shardgate_config() {
    # The generated topology shards tables by tenant_id; sbtest1 is listed with its own column, id.
    write_topology "tables:
  - { name: sbtest1, column: id }"
    write_shardgate_yaml
    cat >>"$STATE/shardgate.yaml" <<YAML
pool:
  max_size: $POOL_MAX_SIZE
  acquire_timeout_ms: 5000
  connect_timeout_ms: 3000
YAML
}

# Checks the shards together hold ids 1..N once each, each on the shard it routes to; sets SHARD_ROWS_{MIN,MAX}.
verify_shards() {
    local total distinct lowest highest per_shard found
    read -r total distinct lowest highest <<<"$(db_sql -e "SELECT COUNT(*), COUNT(DISTINCT id), MIN(id), MAX(id)
        FROM ($(all_shards id)) AS every_shard")"
    [ "$total $distinct $lowest $highest" = "$TABLE_SIZE $TABLE_SIZE 1 $TABLE_SIZE" ] \
        || die "the shards hold $total rows, $distinct distinct ids from $lowest to $highest; expected 1..$TABLE_SIZE"
    per_shard="$(all_shards 'COUNT(*) AS n')"
    read -r SHARD_ROWS_MIN SHARD_ROWS_MAX <<<"$(db_sql -e "SELECT MIN(n), MAX(n) FROM ($per_shard) AS counts")"
    # Every id, read back through the proxy: found only if its row is on the shard the id routes to.
    found="$(seq 1 "$TABLE_SIZE" | sed 's/.*/SELECT id FROM sbtest1 WHERE id=&;/' \
        | timeout "$LOAD_DEADLINE_S" "${PROXY_CLIENT[@]}" | grep -c .)" || true
    [ "$found" = "$TABLE_SIZE" ] || die "$found of $TABLE_SIZE ids found through shardgate"
    log "verified: ids 1..$TABLE_SIZE over $SHARDS shards ($SHARD_ROWS_MIN..$SHARD_ROWS_MAX per shard), every one" \
        "found through shardgate"
}

# Prints the pid of target $1's proxy process, or nothing for direct.
proxy_pid() {
    case "$1" in
        haproxy) echo "$HAPROXY_PID" ;;
        shardgate) echo "$SHARDGATE_PID" ;;
        *) ;;
    esac
}

# utime+stime of process $1 in clock ticks (fields 14 and 15 of /proc/PID/stat; the name may hold spaces).
cpu_ticks() {
    local stat rest
    stat="$(cat "/proc/$1/stat")"
    rest="${stat##*) }"
    # After "pid (comm) ", field 3 (state) is the first: fields 14 and 15 are the 12th and 13th.
    # shellcheck disable=SC2086 # splitting into fields is the point
    set -- $rest
    echo $((${12} + ${13}))
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Runs workload $1 against target $2 with $3 threads for $4 seconds, output in $5. Exit status is sysbench's
# (124/137 when it outlived its grace period).
sysbench_run() {
    local workload="$1" target="$2" threads="$3" secs="$4" out="$5"
    # shellcheck disable=SC2046 # workload_args and sysbench_args are word lists by design
    timeout --kill-after=10 $((secs + RUN_GRACE_S)) sysbench $(workload_args "$workload") \
        $(sysbench_args "$target") --threads="$threads" --time="$secs" --report-interval=0 run >"$out" 2>&1
}

# Busy and total jiffies of the whole machine (first line of /proc/stat: user nice system idle iowait irq softirq
# steal), to tell a saturated run from one that left cores idle.
host_jiffies() { awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit }' /proc/stat; }

# A global status counter of the server, e.g. Questions (statements received; each call adds its own one).
server_status() { db_sql -e "SHOW GLOBAL STATUS LIKE '$1'" | cut -f2; }

# Prints $1 * $2 / $3 with $4 decimals, or "-" when $3 is empty or zero.
per() { awk -v a="$1" -v b="$2" -v c="${3:-0}" -v d="$4" 'BEGIN { if (c > 0) printf "%.*f", d, a * b / c; else print "-" }'; }

# One measured run; appends a row to $STATE/results.tsv:
#   workload threads round target status qps tps queries avg_ms p95_ms errors reconnects proxy_cpu_us_per_stmt
#   proxy_rss_kib mariadbd_cpu_us_per_stmt server_stmts_per_stmt host_busy_pct server_conns (open on the server
#   after the run, besides the one asking: shardgate's pooled backend connections, once sysbench's own have closed)
# Sets LAST_STATUS: ok, or exit-N when sysbench failed.
measure() {
    local workload="$1" target="$2" threads="$3" round="$4" out pid status=ok
    local proxy_before=0 db_before db_after q_before q_after host_before host_after b0 t0 b1 t1
    out="$STATE/runs/$workload-t${threads}-r${round}-${target}.log"
    pid="$(proxy_pid "$target")"
    q_before="$(server_status Questions)"
    [ -z "$pid" ] || proxy_before="$(cpu_ticks "$pid")"
    db_before="$(cpu_ticks "$MARIADB_PID")"
    host_before="$(host_jiffies)"
    sysbench_run "$workload" "$target" "$threads" "$RUN_SECONDS" "$out" || status="exit-$?"
    host_after="$(host_jiffies)"
    db_after="$(cpu_ticks "$MARIADB_PID")"
    local qps tps queries avg p95 errors reconnects cpu="-" rss="-" db_cpu stmts busy conns
    qps="$(awk '/^ *queries:/ { gsub(/\(/, "", $3); print $3 }' "$out")"
    tps="$(awk '/^ *transactions:/ { gsub(/\(/, "", $3); print $3 }' "$out")"
    queries="$(awk '/^ *queries:/ { print $2 }' "$out")"
    # Latency sum / events: sysbench prints avg with 10 µs resolution only, the sum to 10 µs over the whole run.
    # An event is one statement for oltp_point_select, one transaction for oltp_read_only.
    avg="$(awk '/total number of events:/ { n = $5 } /^ *sum:/ { s = $2 }
        END { if (n > 0) printf "%.4f", s / n }' "$out")"
    p95="$(awk '/95th percentile:/ { print $3 }' "$out")"
    errors="$(awk '/ignored errors:/ { print $3 }' "$out")"
    reconnects="$(awk '/reconnects:/ { print $2 }' "$out")"
    if [ -n "$pid" ]; then
        kill -0 "$pid" 2>/dev/null || die "$target (pid $pid) died during the run; see $STATE"
        cpu="$(per $(($(cpu_ticks "$pid") - proxy_before)) "$((1000000 / CLK_TCK))" "$queries" 1)"
        rss="$(rss_kib "$pid")"
    fi
    q_after="$(server_status Questions)"
    conns=$(($(server_status Threads_connected) - 1))
    db_cpu="$(per $((db_after - db_before)) "$((1000000 / CLK_TCK))" "$queries" 1)"
    # Minus 1: the SHOW GLOBAL STATUS that read q_before.
    stmts="$(per $((q_after - q_before - 1)) 1 "$queries" 2)"
    read -r b0 t0 <<<"$host_before"
    read -r b1 t1 <<<"$host_after"
    busy="$(per $((b1 - b0)) 100 $((t1 - t0)) 0)"
    [ "$status" = ok ] || log "run failed ($status): $workload, $target, $threads threads, round $round; output in $out"
    printf '%s\t' "$workload" "$threads" "$round" "$target" "$status" "${qps:--}" "${tps:--}" "${queries:--}" \
        "${avg:--}" "${p95:--}" "${errors:--}" "${reconnects:--}" "$cpu" "$rss" "$db_cpu" "$stmts" "$busy" \
        >>"$STATE/results.tsv"
    printf '%s\n' "$conns" >>"$STATE/results.tsv"
    log "$(printf '%-19s %-9s threads=%-3s round=%s qps=%-9s avg=%sms p95=%sms proxy=%sus/stmt mariadbd=%sus/stmt' \
        "$workload" "$target" "$threads" "$round" "${qps:--}" "${avg:--}" "${p95:--}" "$cpu" "$db_cpu") host busy ${busy}%"
    LAST_STATUS=$status
}

# sysbench failed through shardgate in workload $1 (its output in $2, its exit status $3, what it was doing in $4):
# appends what sysbench and shardgate said to $STATE/failures/WORKLOAD.txt, for the report.
record_failure() {
    local workload="$1" out="$2" rc="$3" what="$4"
    log "sysbench through shardgate failed (exit $rc) in $what; what sysbench printed:"
    grep -vE '^(sysbench 1|Running the test|Initializing|Threads started|Number of threads|$)' "$out" \
        | head -n 10 >&2 || true
    {
        printf 'sysbench exit %s, %s; its distinct error lines, most frequent first (count, line):\n' "$rc" "$what"
        grep -iE 'FATAL|error|warning' "$out" | grep -v "thread_run' function failed" | sort | uniq -c \
            | sort -rn | head -n 6
        printf 'shardgate log lines other than INFO so far, last 5:\n'
        grep -v ' INFO ' "$STATE/shardgate.log" | tail -n 5 | grep . || printf '(none)\n'
        printf '\n'
    } >>"$STATE/failures/$workload.txt"
}

# Short unrecorded run of workload $1 per target, at the largest thread count (fills pools, warms caches). A
# failure through shardgate is recorded, and shardgate is still measured at each thread count.
warm_up() {
    local workload="$1" target max=1 t secs=$((WARMUP_SECONDS > 0 ? WARMUP_SECONDS : 1)) out
    for t in $THREADS; do [ "$t" -le "$max" ] || max=$t; done
    for target in "${ALL_TARGETS[@]}"; do
        out="$STATE/runs/$workload-warmup-$target.log"
        log "warm-up: $workload, $target, $max threads, ${secs}s"
        local rc=0
        sysbench_run "$workload" "$target" "$max" "$secs" "$out" || rc=$?
        [ "$rc" -ne 0 ] || continue
        [ "$target" = shardgate ] || { tail_log "$out"; die "sysbench $workload against $target failed (exit $rc)"; }
        record_failure "$workload" "$out" "$rc" "warm-up at $max threads"
    done
}

run_rounds() {
    local workload threads round k n target order
    : >"$STATE/results.tsv"
    for workload in $WORKLOADS; do
        warm_up "$workload"
        for threads in $THREADS; do
            TARGETS=("${ALL_TARGETS[@]}")
            for ((round = 1; round <= ROUNDS; round++)); do
                n=${#TARGETS[@]} order=()
                for ((k = 0; k < n; k++)); do order+=("${TARGETS[(k + round - 1) % n]}"); done
                for target in "${order[@]}"; do
                    measure "$workload" "$target" "$threads" "$round"
                    { [ "$LAST_STATUS" != ok ] && [ "$target" = shardgate ]; } || continue
                    record_failure "$workload" "$STATE/runs/$workload-t${threads}-r${round}-shardgate.log" \
                        "${LAST_STATUS#exit-}" "measured run at $threads threads, round $round"
                    # It would most likely fail the same way again (or hang until killed): the other targets go on.
                    TARGETS=(direct haproxy)
                done
            done
        done
    done
}

write_meta() {
    {
        common_meta BENCH_WORKLOADS BENCH_SECONDS BENCH_ROUNDS BENCH_THREADS BENCH_TABLE_SIZE BENCH_WARMUP_SECONDS
        printf 'workloads\t%s\n' "$WORKLOADS"
        local w
        for w in $WORKLOADS; do
            printf 'sysbench_command.%s\t%s\n' "$w" "sysbench $(workload_args "$w") --db-driver=mysql \
--mysql-host=127.0.0.1 --mysql-port=PORT --mysql-user=USER --mysql-password=PASSWORD --mysql-db=DB --tables=1 \
--table-size=$TABLE_SIZE --threads=T --time=$RUN_SECONDS --report-interval=0 run"
        done
        printf 'prepare_command\t%s\n' "sysbench oltp_read_only --db-driver=mysql --mysql-host=127.0.0.1 \
--mysql-port=$PROXY_PORT --mysql-user=app --mysql-password=app --mysql-db=$KEYSPACE --tables=1 \
--table-size=$TABLE_SIZE --auto_inc=off --threads=1 prepare"
        printf 'prepare_seconds\t%s\n' "$PREPARE_SECONDS"
        printf 'seconds\t%s\nrounds\t%s\nthreads\t%s\ntable_size\t%s\nwarmup_seconds\t%s\n' "$RUN_SECONDS" \
            "$ROUNDS" "$THREADS" "$TABLE_SIZE" "$WARMUP_SECONDS"
        printf 'sysbench\t%s\n' "$(sysbench --version)"
        printf 'haproxy\t%s\n' "$(haproxy -v | head -n 1)"
        printf 'shards\t%s\npool_max_size\t%s\n' "$SHARDS" "$POOL_MAX_SIZE"
        printf 'shard_rows\t%s..%s\n' "$SHARD_ROWS_MIN" "$SHARD_ROWS_MAX"
        printf 'ports\tmariadbd %s, haproxy %s, shardgate %s\n' "$MARIADB_PORT" "$HAPROXY_PORT" "$PROXY_PORT"
        # Minus 1: the connection asking. What stays open are shardgate's pooled backend connections.
        printf 'server_connections\t%s\t%s\n' "$(($(server_status Threads_connected) - 1))" \
            "$(server_status Max_used_connections)"
    } >"$STATE/meta.tsv"
}

main() {
    refuse_arguments "$@"
    check_settings
    local nw nt
    nw=$(wc -w <<<"$WORKLOADS") nt=$(wc -w <<<"$THREADS")
    log "measuring $nw workload(s) x $nt thread count(s) x $ROUNDS round(s) x 3 targets x ${RUN_SECONDS}s =" \
        "$((nw * nt * ROUNDS * 3 * RUN_SECONDS))s, plus warm-ups ($((nw * 3 * WARMUP_SECONDS))s) and about 1s per run"
    ensure_tools sysbench haproxy python3
    build
    BENCH_STARTED=$SECONDS
    CLK_TCK="$(getconf CLK_TCK)"
    install_cleanup_traps
    make_state shardgate-bench mariadb runs failures
    start_mariadb
    create_databases sbtest
    start_haproxy
    write_shardgate_config
    start_shardgate
    prepare_shards
    verify_shards
    copy_reference
    run_rounds
    write_meta
    mkdir -p "$(dirname "$OUTPUT")"
    python3 "$SHARDGATE_REPO/deploy/lib/bench/report.py" --meta "$STATE/meta.tsv" \
        --results "$STATE/results.tsv" --failures-dir "$STATE/failures" --output "$OUTPUT" \
        --svg-prefix "${OUTPUT%.md}"
    log "wrote $OUTPUT and its charts ${OUTPUT%.md}-*.svg in $((SECONDS - BENCH_STARTED))s"
}

main "$@"
