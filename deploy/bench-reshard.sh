#!/usr/bin/env bash
# Online resharding under load: moves one tenant's rows to another shard and back while loadgen sends mixed
# traffic through shardgate, and reports the backfill rate and the cutover pause; writes docs/benchmarks-reshard.md.
#
# Usage: deploy/bench-reshard.sh
#
#   Installs what is missing (mariadb-server, mariadb-client, python3; apt-get, needs root), builds shardgate,
#   shardctl and loadgen (cargo --release; a no-op when fresh), then in its own state folder: starts one mariadbd
#   (fresh datadir) holding the shard databases bench_000..bench_127, and shardgate in front of it with a 128-shard
#   topology and its admin endpoint on BENCH_ADMIN_PORT. `loadgen --prepare` creates loadgen_items through shardgate
#   and fills it (BENCH_TENANTS tenants x 10 rows); the moving tenant (BENCH_TENANT) then gets BENCH_ROWS more rows
#   (ids 1000.., multi-row INSERTs of 5,000 through shardgate), and its home shard is found by asking every shard
#   database where its rows are.
#   Each round: loadgen runs in the background (open loop, --mix mixed, BENCH_RATE statements/s on 16 connections,
#   tenants uniform, the moving tenant spiking x BENCH_SPIKE_FACTOR for the whole run, so that it has its own
#   latency class and enough traffic that a cutover of a few tens of milliseconds holds some of it: loadgen picks
#   it with probability factor / tenants, so x250 of 1000 tenants is a quarter, ~250 statements/s at the default
#   rate, where x20 would be 2 %); 2 s later `shardctl reshard move-tenant ... --stop-after complete --json` moves the
#   tenant (backfill, verify, cutover, cleanup): odd rounds to the shard in the middle of the key space (or the
#   first one, if that is its home), even rounds back home, so every round moves the same rows. The controller's
#   JSON record, the proxy's /metrics before and after the round and loadgen's JSON report are kept; between rounds
#   the rows loadgen inserted (ids >= 1,000,000) are deleted on the shards, so every round starts from the same data.
#   Every process it starts is stopped on exit; the controller is killed after BENCH_CONTROLLER_TIMEOUT seconds and
#   loadgen after its run plus 30 s, and such a round is recorded as failed. Results: docs/benchmarks-reshard.md
#   (overwritten).
#
# What the report shows per round: the controller's backfill rate (copy_rate: rows copied / backfill time), rows
# copied, the switching cutover's held_ms (hold published to hold lifted) and changes drained, verify passes and
# mismatched chunks, the controller's wall time; from the proxy's metrics, the statements held and p50/p99 of their
# delay (interpolated in the buckets of shardgate_reshard_hold_seconds); from loadgen, overall and moving-tenant
# p50/p99/max latency and errors by code.
#
# Environment:
#   BENCH_ROUNDS              moves (odd: away from home, even: back home); medians when > 1 (default 3)
#   BENCH_ROWS                extra rows of the moving tenant (default 200000; at most 900000)
#   BENCH_TENANT              the moving tenant, 1..BENCH_TENANTS (default 42)
#   BENCH_TENANTS             tenants loadgen prepares and draws from (default 1000)
#   BENCH_RATE                loadgen's open-loop rate, statements/s over all connections (default 1000)
#   BENCH_SPIKE_FACTOR        the moving tenant's traffic, in ordinary tenants' shares (default 250)
#   BENCH_LOAD_SECONDS        length of each round's loadgen run; it should last past the cutover (default 60)
#   BENCH_CONTROLLER_TIMEOUT  seconds a move may take before it is killed (default 300)
#   BENCH_RESHARD_EXTRA_ARGS  words added to every move-tenant command line (e.g. "--chunk-rows 5000"; default empty)
#   BENCH_MARIADB_PORT        mariadbd port (default 24507)
#   BENCH_PROXY_PORT          shardgate port (default 24506)
#   BENCH_ADMIN_PORT          shardgate admin HTTP port (default 24508)
#   BENCH_OUTPUT              markdown file to write (default <repo>/docs/benchmarks-reshard.md)
#   BENCH_SUMMARY_OUTPUT      file whose "reshard" section gets the summary table (default <repo>/docs/benchmarks.md;
#                             deploy/bench.sh keeps that section when it rewrites the file)
#   SHARDGATE_BENCH_STATE     state folder (default: a new temporary folder, removed after a successful run); its
#                             mariadb/, runs/ and reshard/ subfolders are recreated on every run
#   BENCH_KEEP_STATE          1 keeps the temporary state folder (logs, records, loadgen output) after the run
#
# About 3 minutes by default after the build (start and preparation about 15 s, then 3 rounds of a 60 s loadgen
# run; a round lasts longer only when its move does); the script prints its estimate first. On 2 busy cores a move
# of 200,000 rows reached its cutover 23-47 s after it started: BENCH_LOAD_SECONDS must leave room for that, and a
# round whose load ended before its cutover is flagged in the report and left out of the held-statement medians.
# Quick try (under a minute): BENCH_ROUNDS=1 BENCH_ROWS=20000 BENCH_LOAD_SECONDS=15 deploy/bench-reshard.sh
set -euo pipefail

# shellcheck source=deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=deploy/lib/bench/run.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench/run.sh"

ROUNDS="${BENCH_ROUNDS:-3}"
ROWS="${BENCH_ROWS:-200000}"
TENANT="${BENCH_TENANT:-42}"
TENANTS="${BENCH_TENANTS:-1000}"
RATE="${BENCH_RATE:-1000}"
LOAD_SECONDS="${BENCH_LOAD_SECONDS:-60}"
SPIKE_FACTOR="${BENCH_SPIKE_FACTOR:-250}"
CONTROLLER_TIMEOUT="${BENCH_CONTROLLER_TIMEOUT:-300}"
RESHARD_EXTRA_ARGS="${BENCH_RESHARD_EXTRA_ARGS:-}"
MARIADB_PORT="${BENCH_MARIADB_PORT:-24507}"
PROXY_PORT="${BENCH_PROXY_PORT:-24506}"
ADMIN_PORT="${BENCH_ADMIN_PORT:-24508}"
OUTPUT="${BENCH_OUTPUT:-$SHARDGATE_REPO/docs/benchmarks-reshard.md}"
SUMMARY_OUTPUT="${BENCH_SUMMARY_OUTPUT:-$SHARDGATE_REPO/docs/benchmarks.md}"
SHARDS=128
KEYSPACE=bench
ROWS_PER_TENANT=10
# The moving tenant's extra rows: ids FIRST_EXTRA_ID.., in INSERTs of INSERT_BATCH rows. loadgen's own inserts use
# ids from 1,000,000 up (LOADGEN_FIRST_ID), so the two never meet.
FIRST_EXTRA_ID=1000
INSERT_BATCH=5000
LOADGEN_FIRST_ID=1000000
LOAD_CONNECTIONS=16
# Seconds of load before the controller starts.
LEAD_SECONDS=2
STARTUP_DEADLINE_S=60
STOP_DEADLINE_S=30
# loadgen still running this long after its --seconds is killed and its round recorded as failed.
RUN_GRACE_S=30

# The round in progress: its loadgen, controller and the reader stamping the controller's progress lines.
LOADGEN_PID=""
CONTROLLER_PID=""
STAMPER_PID=""

check_settings() {
    is_count "$ROUNDS" || die "BENCH_ROUNDS must be a positive integer, not '$ROUNDS'"
    { is_count "$ROWS" && [ "$ROWS" -le 900000 ]; } || die "BENCH_ROWS must be an integer from 1 to 900000, not '$ROWS'"
    is_count "$TENANTS" || die "BENCH_TENANTS must be a positive integer, not '$TENANTS'"
    { is_count "$TENANT" && [ "$TENANT" -le "$TENANTS" ]; } \
        || die "BENCH_TENANT must be a tenant from 1 to BENCH_TENANTS ($TENANTS), not '$TENANT'"
    is_count "$RATE" || die "BENCH_RATE must be a positive integer, not '$RATE'"
    is_count "$SPIKE_FACTOR" || die "BENCH_SPIKE_FACTOR must be a positive integer, not '$SPIKE_FACTOR'"
    { is_count "$LOAD_SECONDS" && [ "$LOAD_SECONDS" -gt "$LEAD_SECONDS" ]; } \
        || die "BENCH_LOAD_SECONDS must be an integer above $LEAD_SECONDS, not '$LOAD_SECONDS'"
    is_count "$CONTROLLER_TIMEOUT" \
        || die "BENCH_CONTROLLER_TIMEOUT must be a positive integer, not '$CONTROLLER_TIMEOUT'"
    check_ports "$MARIADB_PORT" "$PROXY_PORT" "$ADMIN_PORT"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # A round cut short: its controller and loadgen first.
    [ -z "$CONTROLLER_PID" ] || stop_all "$CONTROLLER_PID:shardctl reshard"
    [ -z "$STAMPER_PID" ] || stop_all "$STAMPER_PID:progress reader"
    [ -z "$LOADGEN_PID" ] || stop_all "$LOADGEN_PID:loadgen"
    finish_cleanup "$rc" "logs, workflow records, loadgen output"
}

set_clients

PROXY_URL="mysql://app:app@127.0.0.1:$PROXY_PORT/$KEYSPACE?prefer_socket=false"

mariadbd_flags() {
    MARIADBD_FLAGS=(--skip-log-bin --skip-name-resolve --max-connections=2000 --innodb-buffer-pool-size=256M
        --innodb-flush-log-at-trx-commit=2)
}

write_shardgate_config() {
    # shellcheck disable=SC2119 # no tables of its own: loadgen_items is sharded by tenant_id, the default
    write_topology
    # The shards' names by database, before any move changes the file.
    "$BIN_DIR/shardctl" topology show "$STATE/topology.yaml" --json >"$STATE/topology.json"
    write_shardgate_yaml
}

# The name of the shard whose database is $1.
shard_name_of_db() {
    python3 - "$STATE/topology.json" "$1" <<'PY'
import json, sys
for shard in json.load(open(sys.argv[1]))["shards"]:
    if shard["database"] == sys.argv[2]:
        print(shard["name"])
        break
else:
    sys.exit(f"no shard with database {sys.argv[2]}")
PY
}

# The moving tenant's extra rows, through shardgate in multi-row INSERTs (so they land where the proxy routes them).
insert_tenant_rows() {
    local started="${EPOCHREALTIME/,/.}"
    log "inserting $ROWS rows of tenant $TENANT through shardgate, $INSERT_BATCH per INSERT"
    awk -v t="$TENANT" -v first="$FIRST_EXTRA_ID" -v n="$ROWS" -v batch="$INSERT_BATCH" 'BEGIN {
        for (i = 0; i < n; i++) {
            if (i % batch == 0) printf "%sINSERT INTO loadgen_items (tenant_id, id, v, note) VALUES ", i ? ";\n" : ""
            else printf ","
            id = first + i
            printf "(%d,%d,%d,\x27extra %d\x27)", t, id, id % 1000, id
        }
        print ";"
    }' | timeout --kill-after=10 $((60 + ROWS / 1000)) "${PROXY_CLIENT[@]}" \
        || { tail_log "$STATE/shardgate.log"; die "inserting tenant $TENANT's rows failed"; }
    INSERT_SECONDS="$(awk -v a="$started" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.1f", b - a }')"
}

# Sets ROW_COUNTS to "database count" lines of the shards holding rows of the moving tenant.
tenant_row_counts() {
    local s union=""
    for ((s = 0; s < SHARDS; s++)); do
        [ -z "$union" ] || union+=" UNION ALL "
        union+="SELECT '$(shard_db "$s")', COUNT(*) FROM \`$(shard_db "$s")\`.loadgen_items WHERE tenant_id = $TENANT"
    done
    ROW_COUNTS="$(db_sql -e "$union" | awk '$2 > 0')"
}

# Finds the moving tenant's home shard (where its rows are) and the shard odd rounds move it to; checks the rows.
find_shards() {
    local n_shards home_db away_db count
    tenant_row_counts
    n_shards="$(grep -c . <<<"$ROW_COUNTS" || true)"
    [ "$n_shards" -eq 1 ] || die "tenant $TENANT's rows are on $n_shards shards, expected 1: $ROW_COUNTS"
    read -r home_db count <<<"$ROW_COUNTS"
    TENANT_ROWS=$((ROWS + ROWS_PER_TENANT))
    [ "$count" -eq "$TENANT_ROWS" ] || die "tenant $TENANT has $count rows on $home_db, expected $TENANT_ROWS"
    away_db="$(shard_db $((SHARDS / 2)))"
    [ "$away_db" != "$home_db" ] || away_db="$(shard_db 0)"
    HOME_DB=$home_db AWAY_DB=$away_db
    HOME_SHARD="$(shard_name_of_db "$home_db")"
    AWAY_SHARD="$(shard_name_of_db "$away_db")"
    log "tenant $TENANT: $count rows on shard $HOME_SHARD ($home_db); odd rounds move it to $AWAY_SHARD ($away_db)"
}

# Deletes the rows loadgen inserted (ids from LOADGEN_FIRST_ID) on every shard, so that each round starts from the
# same data: loadgen's ids are the same in every run, so a second run's inserts would collide with the first's.
delete_loadgen_inserts() {
    local s statements=""
    for ((s = 0; s < SHARDS; s++)); do
        statements+="DELETE FROM \`$(shard_db "$s")\`.loadgen_items WHERE id >= $LOADGEN_FIRST_ID;"
    done
    db_sql -e "$statements"
}

# The proxy's /metrics into file $1.
scrape_metrics() {
    curl --silent --show-error --fail --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" >"$1" \
        || die "GET http://127.0.0.1:$ADMIN_PORT/metrics failed"
}

# Copies stdin to stdout, each line prefixed with the Unix time it arrived at (microseconds).
stamp_lines() {
    local line
    while IFS= read -r line; do printf '%s %s\n' "${EPOCHREALTIME/,/.}" "$line"; done
}

# The command line of round $1's move to shard $2, one word per line (printed in the report as it ran).
move_command() {
    local words=("$BIN_DIR/shardctl" reshard move-tenant --workflow "bench-$1" --tenant "$TENANT" --to="$2"
        --admin "127.0.0.1:$ADMIN_PORT" --state-dir "$STATE/reshard" --stop-after complete --json)
    # shellcheck disable=SC2206 # the extra arguments are words on purpose
    [ -z "$RESHARD_EXTRA_ARGS" ] || words+=($RESHARD_EXTRA_ARGS)
    printf '%s\n' "${words[@]}"
}

# One round: load, the move of the tenant from shard $2 to shard $3 (names; their databases are $4 and $5), the
# load's end. Appends a row to $STATE/results.tsv:
#   round from to status controller_rc controller_wall_s loadgen_status load_started_unix controller_started_unix
#   load_seconds rows_on_target rows_on_source proxy_log_lines loadavg (1-minute load average at the round's end)
# and leaves in runs/: round-N.workflow.json (the record, stdout of the controller), round-N.controller.err (its
# progress lines, each prefixed with the Unix time it came: a line ends each phase), round-N.loadgen.json and
# .err, round-N.metrics-before and -after, round-N.proxy-log (new shardgate log lines other than INFO),
# round-N.command (the controller's command line, a word per line).
run_round() {
    local round="$1" from="$2" to="$3" from_db="$4" to_db="$5" out="$STATE/runs/round-$1"
    local status=ok controller_rc=0 loadgen_status=ok before_lines started load_started deadline wall words=()
    log "round $round: moving tenant $TENANT from $from to $to under ${RATE}/s of load"
    delete_loadgen_inserts
    before_lines="$(wc -l <"$STATE/shardgate.log")"
    scrape_metrics "$out.metrics-before"
    load_started="${EPOCHREALTIME/,/.}"
    "$BIN_DIR/loadgen" --url "$PROXY_URL" --mix mixed --rate "$RATE" --connections "$LOAD_CONNECTIONS" \
        --tenants "$TENANTS" --zipf 0 --rows-per-tenant "$ROWS_PER_TENANT" --spike-tenant "$TENANT" \
        --spike-factor "$SPIKE_FACTOR" --spike-start 0 --spike-seconds "$LOAD_SECONDS" --seconds "$LOAD_SECONDS" \
        --json >"$out.loadgen.json" 2>"$out.loadgen.err" &
    LOADGEN_PID=$!
    sleep "$LEAD_SECONDS"
    kill -0 "$LOADGEN_PID" 2>/dev/null || { tail_log "$out.loadgen.err"; die "loadgen exited before the move started"; }
    mapfile -t words < <(move_command "$round" "$to")
    rm -f "$out.progress"
    mkfifo "$out.progress"
    stamp_lines <"$out.progress" >"$out.controller.err" &
    STAMPER_PID=$!
    started="${EPOCHREALTIME/,/.}"
    timeout --kill-after=10 "$CONTROLLER_TIMEOUT" "${words[@]}" >"$out.workflow.json" 2>"$out.progress" &
    CONTROLLER_PID=$!
    wait "$CONTROLLER_PID" || controller_rc=$?
    CONTROLLER_PID=""
    # The reader ends at the controller's last line.
    wait "$STAMPER_PID" || true
    STAMPER_PID=""
    rm -f "$out.progress"
    wall="$(awk -v a="$started" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.1f", b - a }')"
    if [ "$controller_rc" -ne 0 ]; then
        status="controller-exit-$controller_rc"
        [ "$controller_rc" -ne 124 ] || status="controller-timeout"
        log "the move failed ($status); the controller said:"
        tail -n 5 "$out.controller.err" | cut -d' ' -f2- >&2
    fi
    deadline=$((SECONDS + LOAD_SECONDS + RUN_GRACE_S))
    while kill -0 "$LOADGEN_PID" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "loadgen still running ${RUN_GRACE_S}s after its ${LOAD_SECONDS}s; stopping it"
            stop_all "$LOADGEN_PID:loadgen"
            break
        fi
        sleep 0.2
    done
    wait "$LOADGEN_PID" || loadgen_status="exit-$?"
    LOADGEN_PID=""
    if [ "$loadgen_status" != ok ]; then
        [ "$status" != ok ] || status="loadgen-$loadgen_status"
        log "loadgen failed ($loadgen_status); it said:"
        tail -n 5 "$out.loadgen.err" >&2
    fi
    scrape_metrics "$out.metrics-after"
    kill -0 "$SHARDGATE_PID" 2>/dev/null || { tail_log "$STATE/shardgate.log"; die "shardgate died during round $round"; }
    tail -n +"$((before_lines + 1))" "$STATE/shardgate.log" | grep -v ' INFO ' >"$out.proxy-log" || true
    # Where the tenant's rows are now: all on the target, none left on the source (cleanup deleted them).
    local on_target on_source
    on_target="$(db_sql -e "SELECT COUNT(*) FROM \`$to_db\`.loadgen_items WHERE tenant_id = $TENANT")"
    on_source="$(db_sql -e "SELECT COUNT(*) FROM \`$from_db\`.loadgen_items WHERE tenant_id = $TENANT")"
    local summary
    summary="$(python3 - "$out.workflow.json" "$out.loadgen.json" <<'PY' 2>/dev/null || echo "no record or no loadgen report"
import json, sys
w = json.load(open(sys.argv[1]))
t = json.load(open(sys.argv[2]))["targets"][0]
held = [c for c in w["cutovers"] if c["outcome"] == "switched"]
spike = t["classes"]["spike"]
print(f"phase={w['phase']} copy_rate={w['copy_rate']:.0f}/s held_ms={held[-1]['held_ms'] if held else '-'} "
      f"p99={t['p99_us'] / 1000:.1f}ms spike_p99={spike['p99_us'] / 1000:.1f}ms spike_max={spike['max_us'] / 1000:.1f}ms "
      f"errors={t['errors_by_code'] or 0}")
PY
)"
    log "round $round: $summary wall=${wall}s rows on $to=$on_target on $from=$on_source"
    [ ! -s "$out.proxy-log" ] || log "shardgate logged $(wc -l <"$out.proxy-log") line(s) other than INFO; see $out.proxy-log"
    printf '%s\t' "$round" "$from" "$to" "$status" "$controller_rc" "$wall" "$loadgen_status" "$load_started" \
        "$started" "$LOAD_SECONDS" "$on_target" "$on_source" >>"$STATE/results.tsv"
    printf '%s\t%s\n' "$(wc -l <"$out.proxy-log")" "$(cut -d' ' -f1 /proc/loadavg)" >>"$STATE/results.tsv"
    printf '%s\n' "${words[@]}" >"$out.command"
}

run_rounds() {
    local round
    : >"$STATE/results.tsv"
    for ((round = 1; round <= ROUNDS; round++)); do
        if ((round % 2 == 1)); then
            run_round "$round" "$HOME_SHARD" "$AWAY_SHARD" "$HOME_DB" "$AWAY_DB"
        else
            run_round "$round" "$AWAY_SHARD" "$HOME_SHARD" "$AWAY_DB" "$HOME_DB"
        fi
    done
}

write_meta() {
    {
        common_meta BENCH_ROUNDS BENCH_ROWS BENCH_TENANT BENCH_TENANTS BENCH_RATE BENCH_SPIKE_FACTOR \
            BENCH_LOAD_SECONDS BENCH_CONTROLLER_TIMEOUT BENCH_RESHARD_EXTRA_ARGS
        printf 'loadgen_command\t%s\n' "loadgen --url URL --mix mixed --rate $RATE --connections $LOAD_CONNECTIONS \
--tenants $TENANTS --zipf 0 --rows-per-tenant $ROWS_PER_TENANT --spike-tenant $TENANT --spike-factor $SPIKE_FACTOR \
--spike-start 0 --spike-seconds $LOAD_SECONDS --seconds $LOAD_SECONDS --json"
        printf 'move_command\t%s\n' "shardctl reshard move-tenant --workflow bench-ROUND --tenant $TENANT --to=SHARD \
--admin 127.0.0.1:$ADMIN_PORT --state-dir STATE/reshard --stop-after complete --json${RESHARD_EXTRA_ARGS:+ $RESHARD_EXTRA_ARGS}"
        printf 'rounds\t%s\nrows\t%s\ntenant\t%s\ntenants\t%s\nrows_per_tenant\t%s\n' "$ROUNDS" "$ROWS" "$TENANT" \
            "$TENANTS" "$ROWS_PER_TENANT"
        printf 'tenant_rows\t%s\ninsert_seconds\t%s\ninsert_batch\t%s\nfirst_extra_id\t%s\n' "$TENANT_ROWS" \
            "$INSERT_SECONDS" "$INSERT_BATCH" "$FIRST_EXTRA_ID"
        printf 'rate\t%s\nload_connections\t%s\nload_seconds\t%s\nlead_seconds\t%s\nspike_factor\t%s\n' "$RATE" \
            "$LOAD_CONNECTIONS" "$LOAD_SECONDS" "$LEAD_SECONDS" "$SPIKE_FACTOR"
        printf 'home_shard\t%s (%s)\naway_shard\t%s (%s)\n' "$HOME_SHARD" "$HOME_DB" "$AWAY_SHARD" "$AWAY_DB"
        printf 'reshard_extra_args\t%s\n' "$RESHARD_EXTRA_ARGS"
        printf 'shards\t%s\n' "$SHARDS"
        printf 'ports\tmariadbd %s, shardgate %s, admin %s\n' "$MARIADB_PORT" "$PROXY_PORT" "$ADMIN_PORT"
    } >"$STATE/meta.tsv"
}

main() {
    refuse_arguments "$@"
    check_settings
    log "moving tenant $TENANT ($ROWS + $ROWS_PER_TENANT rows) $ROUNDS time(s) under ${LOAD_SECONDS}s of load each:" \
        "about $((ROUNDS * (LOAD_SECONDS + 2) + 15))s after the build, longer if a move outlasts its load"
    ensure_tools python3
    build
    BENCH_STARTED=$SECONDS
    install_cleanup_traps
    make_state shardgate-bench-reshard mariadb runs reshard
    mariadbd_flags
    start_mariadb
    # shellcheck disable=SC2119 # no unsharded reference database: only the shards
    create_databases
    write_shardgate_config
    start_shardgate
    loadgen_prepare shardgate "$PROXY_URL" "$STATE/runs/prepare"
    insert_tenant_rows
    find_shards
    run_rounds
    write_meta
    mkdir -p "$(dirname "$OUTPUT")"
    python3 "$SHARDGATE_REPO/deploy/lib/bench/reshard_report.py" --meta "$STATE/meta.tsv" \
        --results "$STATE/results.tsv" --runs "$STATE/runs" --output "$OUTPUT" --summary-output "$SUMMARY_OUTPUT"
    log "wrote $OUTPUT in $((SECONDS - BENCH_STARTED))s"
}

main "$@"
