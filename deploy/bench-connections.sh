#!/usr/bin/env bash
# Point selects from 1 to 10,000 client connections, through shardgate (128 shards on one mariadbd, 4 backend
# connections per shard) and against that mariadbd directly, in the same run; writes docs/benchmarks-connections.md.
#
# Usage: deploy/bench-connections.sh
#
#   Installs what is missing (mariadb-server, mariadb-client, python3; apt-get, needs root), builds shardgate,
#   shardctl and loadgen (cargo --release; a no-op when fresh), raises the soft open-files limit (ulimit -n) to what
#   the largest connection count needs, then in its own state folder: starts one mariadbd (fresh datadir,
#   --max-connections=11000 and a matching --open-files-limit, so 10,000 direct clients fit) holding the shard
#   databases bench_000..bench_127 and the unsharded reference database `direct`; shardgate with a 128-shard
#   topology on it and `pool: {max_size: 4}`, so the server sees at most 128 x 4 connections from the proxy however
#   many clients it has. `loadgen --prepare` fills loadgen_items (tenants x 10 rows) through shardgate and, the same
#   rows, in `direct`; a point select through the proxy checks a row comes back.
#   Then an unrecorded warm-up per target (100 connections, 2 s), and for each connection count and round one
#   `loadgen --mix point` run per target, targets alternating and the first one rotating each round. loadgen opens
#   every connection before it measures (64 at a time), so all of them are held at once during the measurement.
#   While a run lasts, every BENCH_SAMPLE_MS: the server's Threads_connected (one persistent client asks, and
#   is subtracted), the proxy's VmRSS and open file descriptors, mariadbd's and loadgen's VmRSS.
#   Every process it starts is stopped on exit; every run is bounded (BENCH_SECONDS + connect allowance, then
#   killed and recorded as failed). Results: docs/benchmarks-connections.md (overwritten).
#
# Columns of the report: qps, p50 and p99 latency (loadgen's HDR histograms, successful statements only); backend
# conns peak = the peak of Threads_connected during the run minus what was connected before it that is not the
# target's: for shardgate minus the sampler (its pooled connections, including those left from earlier runs, are
# counted), for direct minus the sampler and shardgate's idle pooled connections; proxy RSS = the peak of the
# sampled VmRSS of shardgate during the run.
#
# Environment:
#   BENCH_CONNECTIONS         client connection counts (default "1 100 1000 10000")
#   BENCH_SECONDS             length of one measured run, after its connections are open (default 6)
#   BENCH_ROUNDS              rounds per connection count; the report shows medians when > 1 (default 3)
#   BENCH_TENANTS             tenants, drawn uniformly (Zipf 0): every shard gets a similar share (default 1000)
#   BENCH_SAMPLE_MS           sampling interval of connections and RSS (default 200)
#   BENCH_MARIADB_PORT        mariadbd port (default 24407)
#   BENCH_PROXY_PORT          shardgate port (default 24406)
#   BENCH_ADMIN_PORT          shardgate admin HTTP port (default 24408)
#   BENCH_PROXY_EXTRA_CONFIG  YAML lines added to the shardgate config as they are (default empty)
#   BENCH_OUTPUT              markdown file to write (default <repo>/docs/benchmarks-connections.md)
#   SHARDGATE_BENCH_STATE     state folder (default: a new temporary folder, removed after a successful run); its
#                             mariadb/ and runs/ subfolders are recreated on every run
#   BENCH_KEEP_STATE          1 keeps the temporary state folder (logs, datadir, loadgen output) after the run
#
# About 3.5 minutes by default after the build (4 counts x 3 rounds x 2 targets x 6 s, plus connecting 10,000
# clients six times, the start and the preparation); the script prints its estimate first.
# Quick try (under a minute): BENCH_CONNECTIONS="1 100" BENCH_SECONDS=3 BENCH_ROUNDS=1 deploy/bench-connections.sh
set -euo pipefail

# shellcheck source=deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=deploy/lib/bench/run.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench/run.sh"

COUNTS="${BENCH_CONNECTIONS:-1 100 1000 10000}"
RUN_SECONDS="${BENCH_SECONDS:-6}"
ROUNDS="${BENCH_ROUNDS:-3}"
TENANTS="${BENCH_TENANTS:-1000}"
SAMPLE_MS="${BENCH_SAMPLE_MS:-200}"
MARIADB_PORT="${BENCH_MARIADB_PORT:-24407}"
PROXY_PORT="${BENCH_PROXY_PORT:-24406}"
ADMIN_PORT="${BENCH_ADMIN_PORT:-24408}"
PROXY_EXTRA_CONFIG="${BENCH_PROXY_EXTRA_CONFIG:-}"
OUTPUT="${BENCH_OUTPUT:-$SHARDGATE_REPO/docs/benchmarks-connections.md}"
SHARDS=128
KEYSPACE=bench
DIRECT_DB=direct
POOL_MAX_SIZE=4
ROWS_PER_TENANT=10
WARMUP_CONNECTIONS=100
WARMUP_SECONDS=2
STARTUP_DEADLINE_S=60
STOP_DEADLINE_S=30
# The server admits this many clients (10,000 direct ones, shardgate's pool, the script's own).
SERVER_MAX_CONNECTIONS=11000
# A run that has not ended this long after BENCH_SECONDS plus its connect allowance (connect_allowance) is killed.
RUN_GRACE_S=30
# Waiting for the server to see a finished run's clients gone.
DRAIN_DEADLINE_S=60
TARGETS=(direct shardgate)

# The loadgen of the run in progress, and the sampling client (a coprocess), for cleanup.
LOADGEN_PID=""
SAMPLER_CLIENT_PID=""

# The largest of BENCH_CONNECTIONS.
max_count() {
    local c max=1
    for c in $COUNTS; do [ "$c" -le "$max" ] || max=$c; done
    echo "$max"
}

check_settings() {
    local c
    [ -n "${COUNTS// /}" ] || die "BENCH_CONNECTIONS is empty"
    for c in $COUNTS; do is_count "$c" || die "BENCH_CONNECTIONS must list positive integers, not '$c'"; done
    [ "$(max_count)" -le 10000 ] || die "BENCH_CONNECTIONS goes up to 10000 (the server admits $SERVER_MAX_CONNECTIONS)"
    is_count "$RUN_SECONDS" || die "BENCH_SECONDS must be a positive integer, not '$RUN_SECONDS'"
    is_count "$ROUNDS" || die "BENCH_ROUNDS must be a positive integer, not '$ROUNDS'"
    is_count "$TENANTS" || die "BENCH_TENANTS must be a positive integer, not '$TENANTS'"
    { is_count "$SAMPLE_MS" && [ "$SAMPLE_MS" -ge 50 ]; } || die "BENCH_SAMPLE_MS must be an integer >= 50"
    check_ports "$MARIADB_PORT" "$PROXY_PORT"
}

# Raises the soft open-files limit for this shell and what it starts: loadgen holds every client connection, the
# proxy every client and backend connection, mariadbd (which sets its own from --open-files-limit) all of them.
# Sets FD_LIMIT.
raise_fd_limit() {
    local need=$(($(max_count) + 2048)) soft hard
    soft="$(ulimit -Sn)" hard="$(ulimit -Hn)"
    if [ "$soft" != unlimited ] && [ "$soft" -lt "$need" ]; then
        if [ "$hard" = unlimited ] || [ "$hard" -ge "$need" ]; then
            ulimit -Sn "$need"
        else
            # Raising the hard limit needs root (CAP_SYS_RESOURCE).
            ulimit -n "$need" 2>/dev/null || die "ulimit -n is $soft (hard $hard); $need are needed"
        fi
        log "open-files limit raised from $soft to $(ulimit -Sn)"
    fi
    FD_LIMIT="$(ulimit -Sn)"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # A run cut short: its loadgen and the sampling client first.
    [ -z "$LOADGEN_PID" ] || stop_all "$LOADGEN_PID:loadgen"
    [ -z "$SAMPLER_CLIENT_PID" ] || stop_all "$SAMPLER_CLIENT_PID:sampling client"
    finish_cleanup "$rc" "logs, loadgen output"
}

set_clients

# loadgen's URL for target $1. prefer_socket=false: otherwise mysql_async asks for @@socket and moves a loopback
# connection to the server's Unix socket, so direct would not go over TCP as the proxy's clients do.
target_url() {
    case "$1" in
        direct) echo "mysql://root@127.0.0.1:$MARIADB_PORT/$DIRECT_DB?prefer_socket=false" ;;
        shardgate) echo "mysql://app:app@127.0.0.1:$PROXY_PORT/$KEYSPACE?prefer_socket=false" ;;
        *) die "unknown target $1" ;;
    esac
}

# The server's settings for many clients: room for 10,000 of them and their file descriptors; a thread cache so
# that connecting thousands does not create a thread each time; back_log for bursts of connects.
mariadbd_flags() {
    MARIADBD_FLAGS=(--skip-log-bin --skip-name-resolve --max-connections="$SERVER_MAX_CONNECTIONS"
        --open-files-limit="$((SERVER_MAX_CONNECTIONS + 4096))" --thread-cache-size=1024 --back-log=1024
        --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=2)
}

# What the server really got: mariadbd lowers max_connections when it cannot have the file descriptors.
read_server_limits() {
    read -r SERVER_MAX_CONNS SERVER_OPEN_FILES <<<"$(db_sql -e "SELECT @@max_connections, @@open_files_limit")"
    log "mariadb: max_connections $SERVER_MAX_CONNS, open_files_limit $SERVER_OPEN_FILES"
}

write_shardgate_config() {
    # shellcheck disable=SC2119 # no tables of its own: loadgen_items is sharded by tenant_id, the default
    write_topology
    write_shardgate_yaml
    cat >>"$STATE/shardgate.yaml" <<YAML
# 10,000 clients, plus the warm-up's and the sampler's.
max_client_connections: 12000
pool:
  max_size: $POOL_MAX_SIZE
  acquire_timeout_ms: 5000
  connect_timeout_ms: 3000
YAML
    [ -z "$PROXY_EXTRA_CONFIG" ] || printf '%s\n' "$PROXY_EXTRA_CONFIG" >>"$STATE/shardgate.yaml"
}

# loadgen --prepare on target $1, its output in runs/prepare-TARGET.json and .err.
prepare_target() { loadgen_prepare "$1" "$(target_url "$1")" "$STATE/runs/prepare-$1"; }

# Checks the shards together hold every row once, and that a row comes back through the proxy.
verify_rows() {
    local s union="" total direct row
    for ((s = 0; s < SHARDS; s++)); do
        [ -z "$union" ] || union+=" UNION ALL "
        union+="SELECT COUNT(*) AS n FROM \`$(shard_db "$s")\`.loadgen_items"
    done
    total="$(db_sql -e "SELECT SUM(n) FROM ($union) AS counts")"
    direct="$(db_sql -e "SELECT COUNT(*) FROM \`$DIRECT_DB\`.loadgen_items")"
    [ "$total $direct" = "$((TENANTS * ROWS_PER_TENANT)) $((TENANTS * ROWS_PER_TENANT))" ] \
        || die "the shards hold $total rows and $DIRECT_DB $direct; expected $((TENANTS * ROWS_PER_TENANT)) each"
    row="$(proxy_sql -e "SELECT v, note FROM loadgen_items WHERE tenant_id = $TENANTS AND id = $ROWS_PER_TENANT")"
    [ "$row" = "$ROWS_PER_TENANT	row $ROWS_PER_TENANT" ] || die "point select through shardgate returned '$row'"
    log "verified: $total rows over $SHARDS shards and in $DIRECT_DB; a point select through shardgate finds its row"
}

# A global status value of the server, asked on a connection of its own.
server_status() { db_sql -e "SHOW GLOBAL STATUS LIKE '$1'" | cut -f2; }

# A field of /proc/$1/status in KiB (VmRSS, VmHWM), or nothing when the process is gone.
proc_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# Sets KIB to field $2 of /proc/$1/status in KiB, or "-" when the process is gone. Without a subprocess: the
# sampling loop runs it several times every BENCH_SAMPLE_MS on a machine whose cores the benchmark keeps busy.
read_kib() {
    local key value rest
    KIB="-"
    { while read -r key value rest; do
        [ "$key" != "$2:" ] || { KIB=$value; break; }
    done <"/proc/$1/status"; } 2>/dev/null || true
}

# Sets FDS to the number of open file descriptors of process $1 (0 when it is gone); without a subprocess.
count_fds() {
    local fds=("/proc/$1/fd/"*)
    FDS=${#fds[@]}
    [ -e "${fds[0]}" ] || FDS=0
}

# utime+stime of process $1 in clock ticks (fields 14 and 15 of /proc/PID/stat; the name may hold spaces), with
# $2 = "children": cutime+cstime instead (fields 16 and 17), the CPU time of its children that it waited for.
cpu_ticks() {
    local stat rest children="${2:-}"
    stat="$(cat "/proc/$1/stat")"
    rest="${stat##*) }"
    # After "pid (comm) ", field 3 (state) is the first: fields 14 to 17 are the 12th to 15th.
    # shellcheck disable=SC2086 # splitting into fields is the point
    set -- $rest
    if [ "$children" = children ]; then echo $((${14} + ${15})); else echo $((${12} + ${13})); fi
}

# Busy and total jiffies of the whole machine (first line of /proc/stat: user nice system idle iowait irq softirq
# steal). Busy leaves out irq and softirq: loopback traffic is mostly processed there, charged to no process, so
# it would count the benchmark's own packets as someone else's work.
host_jiffies() { awk '/^cpu / { b = $2 + $3 + $4 + $9; print b, b + $5 + $6 + $7 + $8; exit }' /proc/stat; }

# Seconds a run may spend opening and closing its $1 connections, besides BENCH_SECONDS.
connect_allowance() { echo $((30 + $1 / 100)); }

# The pid of target $1's proxy process, or nothing for direct.
proxy_pid() { [ "$1" != shardgate ] || echo "$SHARDGATE_PID"; }

# Starts the sampling client: one connection to the server, kept for the whole run, that answers a SHOW GLOBAL
# STATUS on each line written to it, into $1.
start_sampler_client() {
    coproc SAMPLER { exec "${DB_CLIENT[@]}" --unbuffered >"$1" 2>&1; }
    SAMPLER_CLIENT_PID=$SAMPLER_PID
}

# Asks the sampling client for Threads_connected once more.
sample_connections() {
    printf "SHOW GLOBAL STATUS LIKE 'Threads_connected';\n" >&"${SAMPLER[1]}"
}

stop_sampler_client() {
    local pid=$SAMPLER_CLIENT_PID fd=${SAMPLER[1]}
    # End of input: the client logs out and exits.
    exec {fd}>&-
    wait "$pid" 2>/dev/null || true
    SAMPLER_CLIENT_PID=""
}

# Waits until the server has at most $1 connections besides the one asking (a finished run's clients logging
# out); bounded.
wait_drained() {
    local want="$1" deadline=$((SECONDS + DRAIN_DEADLINE_S)) now
    while now=$(($(server_status Threads_connected) - 1)) && [ "$now" -gt "$want" ]; do
        [ "$SECONDS" -lt "$deadline" ] || { log "warning: $now server connections still open, expected $want"; return; }
        sleep 0.2
    done
}

# The highest number in column $2 of file $1 (default column 1), or "-".
peak() { awk -v c="${2:-1}" '$c ~ /^[0-9]+$/ && $c + 0 > m { m = $c + 0; seen = 1 } END { print seen ? m : "-" }' "$1"; }

# One measured run of $2 connections against target $1; $3 names it (round, or "warmup"). Appends a row to
# $STATE/results.tsv (not for the warm-up):
#   connections round target status wall_s backend_conns conns_peak conns_before proxy_rss_peak_kib
#   proxy_fds_peak mariadbd_rss_peak_kib loadgen_rss_peak_kib proxy_log_lines other_cpu_pct
# and leaves loadgen's JSON in runs/NAME.json, its stderr in runs/NAME.err, new shardgate log lines other than
# INFO in runs/NAME.proxy-log.
measure() {
    local target="$1" count="$2" round="$3" name pid secs=$RUN_SECONDS status=ok
    name="c$count-$round-$target"
    [ "$round" != warmup ] || secs=$WARMUP_SECONDS
    pid="$(proxy_pid "$target")"
    local out="$STATE/runs/$name" before_lines started deadline sample_s
    before_lines="$(wc -l <"$STATE/shardgate.log")"
    sample_s="$(awk -v ms="$SAMPLE_MS" 'BEGIN { printf "%.3f", ms / 1000 }')"
    : >"$out.rss"
    start_sampler_client "$out.conns"
    # The first answer, before loadgen starts: what is connected that is not this run's.
    sample_connections
    deadline=$((SECONDS + 10))
    until [ -s "$out.conns" ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "the sampling client did not answer; see $out.conns"
        sleep 0.05
    done
    local conns_before
    conns_before="$(peak "$out.conns" 2)"
    # CPU time of the machine, and of what this benchmark runs, to tell how busy the rest of the machine was.
    local host_before ours_before
    host_before="$(host_jiffies)"
    ours_before=$(($(cpu_ticks "$MARIADB_PID") + $(cpu_ticks "$SHARDGATE_PID") + $(cpu_ticks $$ children)))
    started="$(date +%s.%N)"
    "$BIN_DIR/loadgen" --url "$(target_url "$target")" --connections "$count" --seconds "$secs" \
        --tenants "$TENANTS" --zipf 0 --rows-per-tenant "$ROWS_PER_TENANT" --mix point --json \
        >"$out.json" 2>"$out.err" &
    LOADGEN_PID=$!
    deadline=$((SECONDS + secs + $(connect_allowance "$count") + RUN_GRACE_S))
    while kill -0 "$LOADGEN_PID" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "loadgen still running ${secs}s + $(($(connect_allowance "$count") + RUN_GRACE_S))s after it started; stopping it"
            stop_all "$LOADGEN_PID:loadgen"
            break
        fi
        sample_connections
        local proxy_rss="-" proxy_fds="-" db_rss lg_rss
        if [ -n "$pid" ]; then
            read_kib "$pid" VmRSS
            count_fds "$pid"
            proxy_rss=$KIB proxy_fds=$FDS
        fi
        read_kib "$MARIADB_PID" VmRSS
        db_rss=$KIB
        read_kib "$LOADGEN_PID" VmRSS
        lg_rss=$KIB
        printf '%s %s %s %s\n' "$proxy_rss" "$proxy_fds" "$db_rss" "$lg_rss" >>"$out.rss"
        sleep "$sample_s"
    done
    wait "$LOADGEN_PID" || status="exit-$?"
    LOADGEN_PID=""
    # The share of the machine's CPU time used by processes other than mariadbd, shardgate, loadgen and the
    # sampling (this shell's children), in percent.
    local b0 t0 b1 t1 ours others
    read -r b0 t0 <<<"$host_before"
    read -r b1 t1 <<<"$(host_jiffies)"
    ours=$(($(cpu_ticks "$MARIADB_PID") + $(cpu_ticks "$SHARDGATE_PID") + $(cpu_ticks $$ children) - ours_before))
    others="$(awk -v b=$((b1 - b0)) -v o="$ours" -v t=$((t1 - t0)) \
        'BEGIN { v = t > 0 ? 100 * (b - o) / t : 0; printf "%.0f", v < 0 ? 0 : v }')"
    local wall
    wall="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
    sample_connections
    stop_sampler_client
    if [ -n "$pid" ]; then
        kill -0 "$pid" 2>/dev/null || { tail_log "$STATE/shardgate.log"; die "shardgate (pid $pid) died during the run"; }
    fi
    tail -n +"$((before_lines + 1))" "$STATE/shardgate.log" | grep -v ' INFO ' >"$out.proxy-log" || true
    # Direct: until the server sees this run's clients gone (shardgate's clients never reach it).
    [ "$target" != direct ] || wait_drained "$((conns_before - 1))"
    local conns_peak backend="-" rss fds db_rss lg_rss
    conns_peak="$(peak "$out.conns" 2)"
    if [ "$conns_peak" != - ]; then
        # Minus the sampling client; for direct also minus what was there before (shardgate's idle pool).
        case "$target" in
            direct) backend=$((conns_peak - conns_before)) ;;
            *) backend=$((conns_peak - 1)) ;;
        esac
    fi
    rss="$(peak "$out.rss" 1)" fds="$(peak "$out.rss" 2)" db_rss="$(peak "$out.rss" 3)" lg_rss="$(peak "$out.rss" 4)"
    local summary
    summary="$(python3 - "$out.json" <<'PY' 2>/dev/null || echo "no report from loadgen"
import json, sys
t = json.load(open(sys.argv[1]))["targets"][0]
print(f"qps={t['qps']:.0f} p50={t['p50_us'] / 1000:.2f}ms p99={t['p99_us'] / 1000:.2f}ms "
      f"errors={t['errors_by_code'] or 0} timeouts={t['timeouts']}")
PY
)"
    log "$(printf '%-9s connections=%-5s round=%-6s %s backend_conns=%s proxy_rss=%sKiB wall=%ss other_cpu=%s%%' \
        "$target" "$count" "$round" "$summary" "$backend" "$rss" "$wall" "$others")"
    [ "$status" = ok ] || { log "loadgen failed ($status); it said:"; tail -n 5 "$out.err" >&2; }
    [ ! -s "$out.proxy-log" ] || log "shardgate logged $(wc -l <"$out.proxy-log") line(s) other than INFO; see $out.proxy-log"
    [ "$round" != warmup ] || return 0
    printf '%s\t' "$count" "$round" "$target" "$status" "$wall" "$backend" "$conns_peak" "$conns_before" "$rss" \
        "$fds" "$db_rss" >>"$STATE/results.tsv"
    printf '%s\t%s\t%s\n' "$lg_rss" "$(wc -l <"$out.proxy-log")" "$others" >>"$STATE/results.tsv"
}

run_rounds() {
    local count round k n=${#TARGETS[@]}
    : >"$STATE/results.tsv"
    for k in "${TARGETS[@]}"; do
        log "warm-up: $k, $WARMUP_CONNECTIONS connections, ${WARMUP_SECONDS}s"
        measure "$k" "$WARMUP_CONNECTIONS" warmup
    done
    for count in $COUNTS; do
        for ((round = 1; round <= ROUNDS; round++)); do
            for ((k = 0; k < n; k++)); do
                measure "${TARGETS[(k + round - 1) % n]}" "$count" "$round"
            done
        done
    done
}

write_meta() {
    {
        common_meta BENCH_CONNECTIONS BENCH_SECONDS BENCH_ROUNDS BENCH_TENANTS BENCH_SAMPLE_MS BENCH_PROXY_EXTRA_CONFIG
        printf 'loadgen_command\t%s\n' "loadgen --url URL --connections N --seconds $RUN_SECONDS --tenants $TENANTS \
--zipf 0 --rows-per-tenant $ROWS_PER_TENANT --mix point --json"
        printf 'seconds\t%s\nrounds\t%s\nconnections\t%s\ntenants\t%s\nsample_ms\t%s\n' "$RUN_SECONDS" "$ROUNDS" \
            "$COUNTS" "$TENANTS" "$SAMPLE_MS"
        printf 'server_limits\tmax_connections %s, open_files_limit %s\n' "$SERVER_MAX_CONNS" "$SERVER_OPEN_FILES"
        printf 'fd_limit\t%s\n' "$FD_LIMIT"
        printf 'shards\t%s\npool_max_size\t%s\n' "$SHARDS" "$POOL_MAX_SIZE"
        printf 'proxy_extra_config\t%s\n' "${PROXY_EXTRA_CONFIG//$'\n'/; }"
        printf 'proxy_hwm_kib\t%s\n' "$(proc_kib "$SHARDGATE_PID" VmHWM)"
        printf 'ports\tmariadbd %s, shardgate %s\n' "$MARIADB_PORT" "$PROXY_PORT"
        printf 'max_used_connections\t%s\n' "$(server_status Max_used_connections)"
    } >"$STATE/meta.tsv"
}

main() {
    refuse_arguments "$@"
    check_settings
    local nc sum=0 c
    nc=$(wc -w <<<"$COUNTS")
    for c in $COUNTS; do sum=$((sum + c)); done
    log "measuring $nc connection count(s) x $ROUNDS round(s) x 2 targets x ${RUN_SECONDS}s =" \
        "$((nc * ROUNDS * 2 * RUN_SECONDS))s, plus connecting $((sum * ROUNDS * 2)) clients and about 40s to start"
    ensure_tools python3
    build
    raise_fd_limit
    BENCH_STARTED=$SECONDS
    install_cleanup_traps
    make_state shardgate-bench-connections mariadb runs
    mariadbd_flags
    start_mariadb
    read_server_limits
    create_databases "$DIRECT_DB"
    write_shardgate_config
    start_shardgate
    prepare_target shardgate
    prepare_target direct
    verify_rows
    run_rounds
    write_meta
    mkdir -p "$(dirname "$OUTPUT")"
    python3 "$SHARDGATE_REPO/deploy/lib/bench/connections_report.py" --meta "$STATE/meta.tsv" \
        --results "$STATE/results.tsv" --runs "$STATE/runs" --output "$OUTPUT"
    log "wrote $OUTPUT in $((SECONDS - BENCH_STARTED))s"
}

main "$@"
