#!/usr/bin/env bash
# Point-select benchmark: sysbench oltp_point_select against one MariaDB directly, through haproxy (TCP mode) and
# through shardgate (128 shards on that same server), in alternating rounds; writes docs/benchmarks.md.
#
# Usage: deploy/bench.sh
#
#   Installs what is missing (mariadb-server, mariadb-client, sysbench, haproxy, python3; apt-get, needs root),
#   builds shardgate, shardctl and loadgen (cargo --release; a no-op when fresh), then in its own state folder:
#   starts one mariadbd (fresh datadir) holding the unsharded reference `sbtest` and the shard databases
#   bench_000..bench_127; haproxy (nbthread 1) in front of it; shardgate with a 128-shard topology on it, sbtest1
#   sharded by `id`. `sysbench prepare` fills sbtest.sbtest1 directly; the rows are copied into the shards with one
#   INSERT per row sent through shardgate (whose DDL fan-out also created the table), and the shard row counts are
#   checked to sum to the table size. Then, for each thread count and round, one sysbench run per target, the
#   targets alternating and the first one rotating each round. Every process it starts is stopped on exit.
#   Results: docs/benchmarks.md (overwritten) and the chart docs/benchmarks-point-select.svg.
#
# Environment:
#   BENCH_SECONDS          length of one measured run (default 10)
#   BENCH_ROUNDS           rounds per thread count (default 3)
#   BENCH_THREADS          sysbench thread counts (default "1 4 64")
#   BENCH_TABLE_SIZE       rows in sbtest1 (default 10000)
#   BENCH_WARMUP_SECONDS   unrecorded run per target before measuring, at the largest thread count (default 2)
#   BENCH_MARIADB_PORT     mariadbd port (default 24307)
#   BENCH_PROXY_PORT       shardgate port (default 24306)
#   BENCH_HAPROXY_PORT     haproxy port (default 24308)
#   BENCH_OUTPUT           markdown file to write (default <repo>/docs/benchmarks.md; the SVG goes beside it)
#   SHARDGATE_BENCH_STATE  state folder (default: a new temporary folder, removed after a successful run); its
#                          mariadb/ subfolder is recreated on every run
#   BENCH_KEEP_STATE       1 keeps the temporary state folder (logs, datadir, sysbench output) after the run
#
# Quick try: BENCH_SECONDS=3 BENCH_ROUNDS=1 BENCH_THREADS="1 4" deploy/bench.sh
set -euo pipefail

# shellcheck source=deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

RUN_SECONDS="${BENCH_SECONDS:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
THREADS="${BENCH_THREADS:-1 4 64}"
TABLE_SIZE="${BENCH_TABLE_SIZE:-10000}"
WARMUP_SECONDS="${BENCH_WARMUP_SECONDS:-2}"
MARIADB_PORT="${BENCH_MARIADB_PORT:-24307}"
PROXY_PORT="${BENCH_PROXY_PORT:-24306}"
HAPROXY_PORT="${BENCH_HAPROXY_PORT:-24308}"
OUTPUT="${BENCH_OUTPUT:-$SHARDGATE_REPO/docs/benchmarks.md}"
SHARDS=128
KEYSPACE=bench
POOL_MAX_SIZE=8
STARTUP_DEADLINE_S=60
STOP_DEADLINE_S=30
# A sysbench run that has not ended this long after its --time is killed (and recorded as failed).
RUN_GRACE_S=60
# Loading rows through the proxy: generous, but bounded.
LOAD_DEADLINE_S=$((600 + TABLE_SIZE / 100))
TARGETS=(direct haproxy shardgate)
MARIADBD_FLAGS=(--skip-log-bin --skip-name-resolve --max-connections=2000 --innodb-buffer-pool-size=256M
    --innodb-flush-log-at-trx-commit=2)

# "pid:name" of every process this run started, in start order; cleanup stops them in reverse.
STARTED=()
STATE=""
STATE_IS_TEMP=0

is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

check_settings() {
    local t
    is_count "$RUN_SECONDS" || die "BENCH_SECONDS must be a positive integer, not '$RUN_SECONDS'"
    is_count "$ROUNDS" || die "BENCH_ROUNDS must be a positive integer, not '$ROUNDS'"
    is_count "$TABLE_SIZE" || die "BENCH_TABLE_SIZE must be a positive integer, not '$TABLE_SIZE'"
    [[ "$WARMUP_SECONDS" =~ ^[0-9]+$ ]] || die "BENCH_WARMUP_SECONDS must be an integer, not '$WARMUP_SECONDS'"
    [ -n "${THREADS// /}" ] || die "BENCH_THREADS is empty"
    for t in $THREADS; do is_count "$t" || die "BENCH_THREADS must list positive integers, not '$t'"; done
    for t in "$MARIADB_PORT" "$PROXY_PORT" "$HAPROXY_PORT"; do
        { is_count "$t" && [ "$t" -lt 65536 ]; } || die "bad port '$t'"
        ! port_accepts "$t" || die "port $t is taken; choose others with BENCH_*_PORT"
    done
}

ensure_tools() {
    ensure_mariadb
    local missing=()
    command -v sysbench >/dev/null 2>&1 || missing+=(sysbench)
    command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    [ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
    command -v sysbench >/dev/null 2>&1 || die "sysbench still missing after installing it"
    command -v haproxy >/dev/null 2>&1 || die "haproxy still missing after installing it"
    command -v python3 >/dev/null 2>&1 || die "python3 still missing after installing it"
    command -v cargo >/dev/null 2>&1 || die "cargo not found (needed to build shardgate)"
}

BIN_DIR="${CARGO_TARGET_DIR:-$SHARDGATE_REPO/target}/release"

build() {
    log "building shardgate, shardctl and loadgen (cargo --release)"
    (cd "$SHARDGATE_REPO" && cargo build --release -p shardgate -p shardctl -p loadgen)
}

tail_log() {
    log "last lines of $1:"
    tail -n 20 "$1" >&2 2>/dev/null || true
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    # One at a time, newest first: the proxies before the server they talk to.
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_all "${STARTED[i]}"; done
    if [ -n "$STATE" ]; then
        if [ "$rc" -eq 0 ] && [ "$STATE_IS_TEMP" = 1 ] && [ "${BENCH_KEEP_STATE:-0}" != 1 ]; then
            rm -rf "$STATE"
        else
            log "state (logs, sysbench output) kept in $STATE"
        fi
    fi
    exit "$rc"
}

make_state() {
    if [ -n "${SHARDGATE_BENCH_STATE:-}" ]; then
        STATE="$SHARDGATE_BENCH_STATE"
        mkdir -p "$STATE"
    else
        STATE="$(mktemp -d "${TMPDIR:-/tmp}/shardgate-bench.XXXXXX")"
        STATE_IS_TEMP=1
    fi
    STATE="$(cd "$STATE" && pwd)"
    rm -rf "$STATE/mariadb" "$STATE/runs"
    mkdir -p "$STATE/mariadb" "$STATE/runs"
    log "state folder: $STATE"
}

# Client command lines: passwordless root on the server, and app/app in the keyspace through shardgate, over TCP.
DB_CLIENT=(mariadb --no-defaults --protocol=TCP --connect-timeout=5 -h127.0.0.1 -P"$MARIADB_PORT" -uroot
    --batch --skip-column-names)
PROXY_CLIENT=(mariadb --no-defaults --protocol=TCP --connect-timeout=5 -h127.0.0.1 -P"$PROXY_PORT" -uapp -papp
    -D"$KEYSPACE" --batch --skip-column-names)
db_sql() { "${DB_CLIENT[@]}" "$@"; }
proxy_sql() { "${PROXY_CLIENT[@]}" "$@"; }

shard_db() { printf '%s_%03d' "$KEYSPACE" "$1"; }

start_mariadb() {
    local dir="$STATE/mariadb" user_args=()
    [ "$(id -u)" -eq 0 ] && user_args=(--user=root)
    log "mariadb: creating datadir $dir/data"
    mariadb-install-db --no-defaults --datadir="$dir/data" "${user_args[@]}" \
        --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
        || { tail_log "$dir/install.log"; die "mariadb-install-db failed"; }
    log "mariadb: starting on 127.0.0.1:$MARIADB_PORT"
    setsid mariadbd --no-defaults --datadir="$dir/data" --port="$MARIADB_PORT" --bind-address=127.0.0.1 \
        --socket="$dir/mariadb.sock" --pid-file="$dir/mariadb.pid" --log-error="$dir/error.log" \
        "${user_args[@]}" "${MARIADBD_FLAGS[@]}" </dev/null >>"$dir/mariadbd.out" 2>&1 &
    local pid=$! deadline=$((SECONDS + STARTUP_DEADLINE_S))
    STARTED+=("$pid:mariadbd")
    MARIADB_PID=$pid
    until db_sql -e "SELECT 1" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { tail_log "$dir/error.log"; die "mariadbd exited during startup"; }
        [ "$SECONDS" -lt "$deadline" ] || { tail_log "$dir/error.log"; die "mariadbd not ready after ${STARTUP_DEADLINE_S}s"; }
        sleep 0.2
    done
}

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

create_databases() {
    local s statements="CREATE DATABASE sbtest;"
    for ((s = 0; s < SHARDS; s++)); do statements+="CREATE DATABASE \`$(shard_db "$s")\`;"; done
    db_sql -e "$statements"
    log "databases sbtest and $(shard_db 0)..$(shard_db $((SHARDS - 1))) created"
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

prepare_reference() {
    log "sysbench prepare: $TABLE_SIZE rows in sbtest.sbtest1 (directly on mariadbd)"
    # shellcheck disable=SC2046 # sysbench_args is a word list by design
    sysbench oltp_point_select $(sysbench_args direct) prepare >"$STATE/sysbench-prepare.log" 2>&1 \
        || { tail_log "$STATE/sysbench-prepare.log"; die "sysbench prepare failed"; }
}

write_shardgate_config() {
    # The generated topology shards tables by tenant_id; sbtest1 is listed with its own column, id.
    {
        "$BIN_DIR/shardctl" topology generate --shards "$SHARDS" --keyspace "$KEYSPACE" \
            --database-prefix "$KEYSPACE" --backend "db0=127.0.0.1:$MARIADB_PORT"
        printf 'tables:\n  - { name: sbtest1, column: id }\n'
    } >"$STATE/topology.yaml"
    "$BIN_DIR/shardctl" topology validate "$STATE/topology.yaml" >/dev/null \
        || die "generated topology $STATE/topology.yaml is invalid"
    cat >"$STATE/shardgate.yaml" <<YAML
# Written by deploy/bench.sh; see deploy/shardgate.example.yaml for every setting.
listen: "127.0.0.1:$PROXY_PORT"
users:
  - name: app
    password: app
backend:
  user: root
  password: ""
pool:
  max_size: $POOL_MAX_SIZE
  acquire_timeout_ms: 5000
  connect_timeout_ms: 3000
topology:
  file: topology.yaml
YAML
}

start_shardgate() {
    log "shardgate: starting on 127.0.0.1:$PROXY_PORT"
    setsid "$BIN_DIR/shardgate" --config "$STATE/shardgate.yaml" </dev/null >"$STATE/shardgate.stdout" \
        2>"$STATE/shardgate.log" &
    local pid=$! deadline=$((SECONDS + STARTUP_DEADLINE_S))
    STARTED+=("$pid:shardgate")
    SHARDGATE_PID=$pid
    # Ready when it announced its listener (so a stranger on the port does not count) and the port accepts.
    until grep -q '^shardgate listening mysql=' "$STATE/shardgate.stdout" && port_accepts "$PROXY_PORT"; do
        kill -0 "$pid" 2>/dev/null || { tail_log "$STATE/shardgate.log"; die "shardgate exited during startup"; }
        [ "$SECONDS" -lt "$deadline" ] || { tail_log "$STATE/shardgate.log"; die "shardgate not listening after ${STARTUP_DEADLINE_S}s"; }
        sleep 0.2
    done
}

# Creates sbtest1 in every shard through the proxy (DDL fans out) and copies the reference rows, one INSERT each.
load_shards() {
    local ddl
    # Batch mode prints the statement on one line with its newlines as \n.
    ddl="$(db_sql sbtest -e "SHOW CREATE TABLE sbtest1" | cut -f2 | sed 's/\\n/ /g')"
    [ -n "$ddl" ] || die "SHOW CREATE TABLE sbtest1 returned nothing"
    log "creating sbtest1 in $SHARDS shards through shardgate"
    proxy_sql -e "$ddl" || die "DDL fan-out through shardgate failed: $ddl"
    log "copying $TABLE_SIZE rows into the shards through shardgate, one INSERT per row"
    local started=$SECONDS
    # --raw: c and pad go out exactly as QUOTE() wrote them.
    timeout "$LOAD_DEADLINE_S" "${DB_CLIENT[@]}" --raw sbtest -e "SELECT CONCAT('INSERT INTO sbtest1
        (id,k,c,pad) VALUES (', id, ',', k, ',', QUOTE(c), ',', QUOTE(pad), ');') FROM sbtest1 ORDER BY id" \
        | timeout "$LOAD_DEADLINE_S" "${PROXY_CLIENT[@]}" >"$STATE/load.log" 2>&1 \
        || { tail_log "$STATE/load.log"; die "loading rows through shardgate failed"; }
    log "loaded in $((SECONDS - started))s"
}

# Checks the shards together hold exactly the reference rows; sets SHARD_ROWS_{MIN,MAX}.
verify_shards() {
    local s union="" counts total
    for ((s = 0; s < SHARDS; s++)); do
        [ -z "$union" ] || union+=" UNION ALL "
        union+="SELECT COUNT(*) AS n FROM \`$(shard_db "$s")\`.sbtest1"
    done
    counts="$(db_sql -e "SELECT SUM(n), MIN(n), MAX(n) FROM ($union) AS per_shard")"
    read -r total SHARD_ROWS_MIN SHARD_ROWS_MAX <<<"$counts"
    [ "$total" = "$TABLE_SIZE" ] || die "shards hold $total rows in all, expected $TABLE_SIZE"
    # One row read back through the proxy must equal the reference.
    local id=$(((TABLE_SIZE + 1) / 2)) want got
    want="$(db_sql sbtest -e "SELECT c FROM sbtest1 WHERE id=$id")"
    got="$(proxy_sql -e "SELECT c FROM sbtest1 WHERE id=$id")"
    [ "$want" = "$got" ] || die "row $id through shardgate differs from the reference"
    log "verified: $total rows over $SHARDS shards ($SHARD_ROWS_MIN..$SHARD_ROWS_MAX per shard)"
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

# Runs sysbench oltp_point_select against target $1 with $2 threads for $3 seconds, output in $4. Exit status
# is sysbench's (124/137 when it outlived its grace period).
sysbench_run() {
    local target="$1" threads="$2" secs="$3" out="$4"
    # shellcheck disable=SC2046 # sysbench_args is a word list by design
    timeout --kill-after=10 $((secs + RUN_GRACE_S)) sysbench oltp_point_select $(sysbench_args "$target") \
        --db-ps-mode=disable --threads="$threads" --time="$secs" --report-interval=0 run >"$out" 2>&1
}

# Busy and total jiffies of the whole machine (first line of /proc/stat: user nice system idle iowait irq softirq
# steal), to tell a saturated run from one that left cores idle.
host_jiffies() { awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit }' /proc/stat; }

# A global status counter of the server, e.g. Questions (statements received; each call adds its own one).
server_status() { db_sql -e "SHOW GLOBAL STATUS LIKE '$1'" | cut -f2; }

# Prints $1 * $2 / $3 with $4 decimals, or "-" when $3 is empty or zero.
per() { awk -v a="$1" -v b="$2" -v c="${3:-0}" -v d="$4" 'BEGIN { if (c > 0) printf "%.*f", d, a * b / c; else print "-" }'; }

# One measured run; appends a row to $STATE/results.tsv:
#   threads round target status qps queries avg_ms p95_ms errors reconnects proxy_cpu_us_per_stmt proxy_rss_kib
#   mariadbd_cpu_us_per_stmt server_stmts_per_stmt host_busy_pct server_conns (open on the server after the run,
#   besides the one asking: shardgate's pooled backend connections, once sysbench's own have closed)
measure() {
    local target="$1" threads="$2" round="$3" out pid status=ok
    local proxy_before=0 db_before db_after q_before q_after host_before host_after b0 t0 b1 t1
    out="$STATE/runs/t${threads}-r${round}-${target}.log"
    pid="$(proxy_pid "$target")"
    q_before="$(server_status Questions)"
    [ -z "$pid" ] || proxy_before="$(cpu_ticks "$pid")"
    db_before="$(cpu_ticks "$MARIADB_PID")"
    host_before="$(host_jiffies)"
    sysbench_run "$target" "$threads" "$RUN_SECONDS" "$out" || status="exit-$?"
    host_after="$(host_jiffies)"
    db_after="$(cpu_ticks "$MARIADB_PID")"
    local qps queries avg p95 errors reconnects cpu="-" rss="-" db_cpu stmts busy conns
    qps="$(awk '/^ *queries:/ { gsub(/\(/, "", $3); print $3 }' "$out")"
    queries="$(awk '/^ *queries:/ { print $2 }' "$out")"
    # Latency sum / events: sysbench prints avg with 10 µs resolution only, the sum to 10 µs over the whole run.
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
    [ "$status" = ok ] || log "run failed ($status): $target, $threads threads, round $round; output in $out"
    printf '%s\t' "$threads" "$round" "$target" "$status" "${qps:--}" "${queries:--}" "${avg:--}" "${p95:--}" \
        "${errors:--}" "${reconnects:--}" "$cpu" "$rss" "$db_cpu" "$stmts" "$busy" >>"$STATE/results.tsv"
    printf '%s\n' "$conns" >>"$STATE/results.tsv"
    log "$(printf '%-9s threads=%-3s round=%s qps=%-9s avg=%sms p95=%sms proxy=%sus/stmt mariadbd=%sus/stmt' \
        "$target" "$threads" "$round" "${qps:--}" "${avg:--}" "${p95:--}" "$cpu" "$db_cpu") host busy ${busy}%"
}

# Short unrecorded run per target (warms pools and caches). The shardgate one is also the check that sysbench's
# session works through the proxy: if it fails, its error is recorded and shardgate is left out of the rounds.
warm_up() {
    local target max=1 t secs=$((WARMUP_SECONDS > 0 ? WARMUP_SECONDS : 1)) out
    for t in $THREADS; do [ "$t" -le "$max" ] || max=$t; done
    : >"$STATE/refused.txt"
    for target in "${TARGETS[@]}"; do
        out="$STATE/runs/warmup-$target.log"
        log "warm-up: $target, $max threads, ${secs}s"
        local rc=0
        sysbench_run "$target" "$max" "$secs" "$out" || rc=$?
        [ "$rc" -ne 0 ] || continue
        [ "$target" = shardgate ] || { tail_log "$out"; die "sysbench against $target failed (exit $rc)"; }
        log "sysbench through shardgate failed (exit $rc); what sysbench printed:"
        grep -vE '^(sysbench 1|Running the test|Initializing|Threads started|$)' "$out" | head -n 20 >&2 || true
        {
            printf 'sysbench (exit %s), 1st run through shardgate:\n' "$rc"
            grep -iE 'FATAL|error|warning' "$out" | sort | uniq -c | sort -rn | head -n 10
        } >"$STATE/refused.txt"
        TARGETS=(direct haproxy)
    done
}

run_rounds() {
    local threads round k n=${#TARGETS[@]}
    : >"$STATE/results.tsv"
    for threads in $THREADS; do
        for ((round = 1; round <= ROUNDS; round++)); do
            for ((k = 0; k < n; k++)); do
                measure "${TARGETS[(k + round - 1) % n]}" "$threads" "$round"
            done
        done
    done
}

write_meta() {
    local commit dirty="" cmd="" var
    commit="$(git -C "$SHARDGATE_REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    # docs/ is left out: this script rewrites docs/benchmarks.md itself, and no doc goes into the binary.
    if [ -n "$(git -C "$SHARDGATE_REPO" status --porcelain --untracked-files=no -- . ':(exclude)docs' 2>/dev/null)" ]; then
        dirty=" (with uncommitted changes)"
    fi
    for var in BENCH_SECONDS BENCH_ROUNDS BENCH_THREADS BENCH_TABLE_SIZE BENCH_WARMUP_SECONDS; do
        [ -z "${!var:-}" ] || cmd+="$var=\"${!var}\" "
    done
    cmd+="deploy/bench.sh"
    {
        printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
        printf 'command\t%s\n' "$cmd"
        printf 'sysbench_command\t%s\n' "sysbench oltp_point_select --db-driver=mysql --mysql-host=127.0.0.1 \
--mysql-port=PORT --mysql-user=USER --mysql-password=PASSWORD --mysql-db=DB --tables=1 --table-size=$TABLE_SIZE \
--db-ps-mode=disable --threads=T --time=$RUN_SECONDS --report-interval=0 run"
        printf 'seconds\t%s\nrounds\t%s\nthreads\t%s\ntable_size\t%s\nwarmup_seconds\t%s\n' "$RUN_SECONDS" \
            "$ROUNDS" "$THREADS" "$TABLE_SIZE" "$WARMUP_SECONDS"
        printf 'nproc\t%s\n' "$(nproc)"
        printf 'cpu_model\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
        printf 'ram\t%s\n' "$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
        printf 'kernel\t%s\n' "$(uname -r)"
        printf 'mariadbd\t%s\n' "$(mariadbd --version)"
        printf 'sysbench\t%s\n' "$(sysbench --version)"
        printf 'haproxy\t%s\n' "$(haproxy -v | head -n 1)"
        printf 'shardgate\t%s\n' "git $commit$dirty"
        printf 'mariadbd_flags\t%s\n' "${MARIADBD_FLAGS[*]}"
        printf 'shards\t%s\npool_max_size\t%s\n' "$SHARDS" "$POOL_MAX_SIZE"
        printf 'shard_rows\t%s..%s\n' "$SHARD_ROWS_MIN" "$SHARD_ROWS_MAX"
        printf 'ports\tmariadbd %s, haproxy %s, shardgate %s\n' "$MARIADB_PORT" "$HAPROXY_PORT" "$PROXY_PORT"
        # Minus 1: the connection asking. What stays open are shardgate's pooled backend connections.
        printf 'server_connections\t%s\t%s\n' "$(($(server_status Threads_connected) - 1))" \
            "$(server_status Max_used_connections)"
    } >"$STATE/meta.tsv"
}

main() {
    [ $# -eq 0 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
    check_settings
    ensure_tools
    build
    CLK_TCK="$(getconf CLK_TCK)"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    make_state
    start_mariadb
    create_databases
    prepare_reference
    start_haproxy
    write_shardgate_config
    start_shardgate
    load_shards
    verify_shards
    warm_up
    run_rounds
    write_meta
    mkdir -p "$(dirname "$OUTPUT")"
    python3 "$SHARDGATE_REPO/deploy/lib/bench/report.py" --meta "$STATE/meta.tsv" \
        --results "$STATE/results.tsv" --refused "$STATE/refused.txt" --output "$OUTPUT" \
        --svg "${OUTPUT%.md}-point-select.svg"
    log "wrote $OUTPUT and ${OUTPUT%.md}-point-select.svg"
}

main "$@"
