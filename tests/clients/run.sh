#!/usr/bin/env bash
# Real MySQL clients, unmodified, through shardgate: PyMySQL, mysql-connector-python, MariaDB Connector/J with
# server-side prepared statements, the `mariadb` client and `mariadb-dump`, and sysbench oltp_read_write.
#
# Usage: tests/clients/run.sh
#
#   Installs what is missing (apt-get: mariadb-server, mariadb-client, sysbench, libmariadb-java, a JDK, python3-venv;
#   pip into a virtualenv under target/: the pinned drivers of requirements.txt), builds shardgate and shardctl
#   (cargo, dev profile), starts a dev cluster of its own (deploy/dev-cluster.sh: 4 MariaDB servers, 128 shards) on
#   its own ports, and in front of it a second shardgate whose topology also lists sbtest1..sbtest8 as sharded by
#   `id`, logging at debug level. Then runs each flow against that proxy, each also comparing with a plain MariaDB
#   database on the first server (differential), prints a summary, and stops everything it started.
#   Exit 0 when every flow passed, 1 otherwise.
#
#   flow        what                                                     script
#   pymysql     app flow: DDL, inserts, BEGIN/COMMIT/ROLLBACK, ...       app_flow.py --driver pymysql
#   connector   the same with mysql-connector-python (+ prepared cursor)  app_flow.py --driver connector
#   jdbc        the same with Connector/J, useServerPrepStmts=true        jdbc/JdbcFlow.java
#   mariadb_cli batch statements, mariadb-dump of one tenant, restore     mariadb_cli.sh
#   sysbench    oltp_read_write prepare, run, cleanup                     sysbench.sh
#
# Environment:
#   SHARDGATE_CLIENTS_FLOWS       flows to run (default: all of the above, in that order)
#   SHARDGATE_CLIENTS_PORT_BASE   ports: servers BASE+7..BASE+10, dev-cluster proxy BASE+6 (admin BASE+5), flows' proxy BASE+16 (admin BASE+17)
#                                 (default 26300)
#   SHARDGATE_CLIENTS_KEEP_STATE  1 keeps the state folder (datadirs, logs, dumps, sysbench output) after the run
#   SYSBENCH_SECONDS              length of the sysbench run (default 60); see sysbench.sh for the other SYSBENCH_*
set -euo pipefail

# shellcheck source=deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib/common.sh"

CLIENTS_DIR="$SHARDGATE_REPO/tests/clients"
FLOWS="${SHARDGATE_CLIENTS_FLOWS:-pymysql connector jdbc mariadb_cli sysbench}"
PORT_BASE="${SHARDGATE_CLIENTS_PORT_BASE:-26300}"
TARGET_DIR="${CARGO_TARGET_DIR:-$SHARDGATE_REPO/target}"
VENV="$TARGET_DIR/clients-venv"
JDBC_JAR=/usr/share/java/mariadb-java-client.jar
SYSBENCH_TABLES_LISTED=8
STARTUP_DEADLINE_S=60
STOP_DEADLINE_S=30
# Upper bounds per flow (sysbench: its run plus prepare, cleanup and grace).
FLOW_TIMEOUT_S=600
SYSBENCH_SECONDS="${SYSBENCH_SECONDS:-60}"
export SYSBENCH_SECONDS

if ! [[ "$PORT_BASE" =~ ^[1-9][0-9]*$ ]] || [ "$PORT_BASE" -ge 65500 ]; then
    die "bad SHARDGATE_CLIENTS_PORT_BASE '$PORT_BASE'"
fi
PROXY_PORT=$((PORT_BASE + 16))
BACKEND_PORTS="$((PORT_BASE + 7)) $((PORT_BASE + 8)) $((PORT_BASE + 9)) $((PORT_BASE + 10))"

STATE=""
PROXY_PID=""

ensure_tools() {
    ensure_mariadb
    local missing=()
    command -v mariadb-dump >/dev/null 2>&1 || missing+=(mariadb-client)
    command -v sysbench >/dev/null 2>&1 || missing+=(sysbench)
    [ -f "$JDBC_JAR" ] || missing+=(libmariadb-java)
    command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    [ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
    command -v sysbench >/dev/null 2>&1 || die "sysbench still missing after installing it"
    [ -f "$JDBC_JAR" ] || die "$JDBC_JAR still missing after installing libmariadb-java"
    command -v javac >/dev/null 2>&1 || die "javac still missing after installing a JDK"
    command -v cargo >/dev/null 2>&1 || die "cargo not found (needed to build shardgate)"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating the Python virtualenv $VENV"
        python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$VENV"; } \
            || die "cannot create a Python virtualenv"
    fi
    # A no-op (and no download) when the pinned versions are already there.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$CLIENTS_DIR/requirements.txt" \
        || die "pip install of tests/clients/requirements.txt failed"
}

cluster() {
    SHARDGATE_STATE="$STATE/cluster" SHARDGATE_MYSQL_PORT=$((PORT_BASE + 6)) SHARDGATE_ADMIN_PORT=$((PORT_BASE + 5)) \
        SHARDGATE_BACKEND_PORT_BASE=$((PORT_BASE + 7)) SHARDGATE_BUILD_PROFILE=dev SHARDGATE_DEMO_SCHEMA=0 \
        "$SHARDGATE_REPO/deploy/dev-cluster.sh" "$@"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -z "$PROXY_PID" ] || stop_all "$PROXY_PID:shardgate (clients)"
    if [ -n "$STATE" ]; then
        cluster down || log "dev-cluster.sh down failed; state in $STATE"
        if [ "${SHARDGATE_CLIENTS_KEEP_STATE:-0}" = 1 ]; then
            log "state kept in $STATE"
        else
            rm -rf "$STATE"
        fi
    fi
    exit "$rc"
}

check_ports() {
    local p
    for p in $((PORT_BASE + 5)) $((PORT_BASE + 6)) $BACKEND_PORTS "$PROXY_PORT" $((PORT_BASE + 17)); do
        ! port_accepts "$p" || die "port $p is taken; choose other ports with SHARDGATE_CLIENTS_PORT_BASE"
    done
}

# A second shardgate on the cluster's servers: the cluster's topology plus the sbtest tables, sharded by `id`.
start_proxy() {
    local dir="$STATE/proxy" t
    mkdir -p "$dir"
    {
        cat "$STATE/cluster/topology.yaml"
        printf 'tables:\n'
        for ((t = 1; t <= SYSBENCH_TABLES_LISTED; t++)); do
            printf '  - { name: sbtest%d, column: id, auto_increment: { column: id, sequence: sbtest%d_seq } }\n' "$t" "$t"
        done
    } >"$dir/topology.yaml"
    "$TARGET_DIR/debug/shardctl" topology validate "$dir/topology.yaml" >/dev/null \
        || die "the clients' topology $dir/topology.yaml is invalid"
    sed -e "s/^listen: .*/listen: \"127.0.0.1:$PROXY_PORT\"/" \
        -e "s/^admin_listen: .*/admin_listen: \"127.0.0.1:$((PORT_BASE + 17))\"/" \
        "$STATE/cluster/shardgate.yaml" >"$dir/shardgate.yaml"
    grep -q "^listen: \"127.0.0.1:$PROXY_PORT\"" "$dir/shardgate.yaml" || die "could not set the listen address"
    # sysbench's prepare inserts rows without ids: they come from sequence tables in the first shard's database
    # (app_000 on the first server, as deploy/dev-cluster.sh lays shards out).
    local seqs=""
    for ((t = 1; t <= SYSBENCH_TABLES_LISTED; t++)); do
        seqs+="CREATE TABLE IF NOT EXISTS sbtest${t}_seq (id INT PRIMARY KEY, next_id BIGINT UNSIGNED NOT NULL,"
        seqs+=" cache BIGINT UNSIGNED NOT NULL); INSERT IGNORE INTO sbtest${t}_seq VALUES (0, 1, 1000);"
    done
    mariadb --no-defaults -h127.0.0.1 -P"${BACKEND_PORTS%% *}" -uroot app_000 -e "$seqs" \
        || die "could not create the sbtest sequence tables"
    # A lock cycle across two shards is two transactions on two servers' connections: no server sees the cycle,
    # so only the lock wait timeout breaks it (docs/operations.md). Keep it short, as a deployment would.
    local port
    for port in $BACKEND_PORTS; do
        mariadb --no-defaults -h127.0.0.1 -P"$port" -uroot -e "SET GLOBAL innodb_lock_wait_timeout = 5" \
            || die "could not set innodb_lock_wait_timeout on port $port"
    done
    log "starting shardgate for the client flows on 127.0.0.1:$PROXY_PORT (debug log: $dir/shardgate.log)"
    SHARDGATE_LOG=info,shardgate=debug setsid "$TARGET_DIR/debug/shardgate" --config "$dir/shardgate.yaml" \
        </dev/null >"$dir/shardgate.stdout" 2>"$dir/shardgate.log" &
    PROXY_PID=$!
    local deadline=$((SECONDS + STARTUP_DEADLINE_S))
    until grep -q '^shardgate listening mysql=' "$dir/shardgate.stdout" && port_accepts "$PROXY_PORT"; do
        kill -0 "$PROXY_PID" 2>/dev/null || { tail -n 20 "$dir/shardgate.log" >&2; die "shardgate exited during startup"; }
        [ "$SECONDS" -lt "$deadline" ] || die "shardgate not listening after ${STARTUP_DEADLINE_S}s"
        sleep 0.2
    done
}

compile_jdbc() {
    mkdir -p "$STATE/jdbc-classes"
    javac -d "$STATE/jdbc-classes" -cp "$JDBC_JAR" "$CLIENTS_DIR/jdbc/JdbcFlow.java" \
        || die "javac of tests/clients/jdbc/JdbcFlow.java failed"
}

# Runs flow $1, its output both shown and kept in $STATE/$1.log; returns its exit status.
run_flow() {
    local flow="$1" direct_port="${BACKEND_PORTS%% *}" limit=$FLOW_TIMEOUT_S
    local cmd
    case "$flow" in
        pymysql | connector)
            cmd=("$VENV/bin/python" "$CLIENTS_DIR/app_flow.py" --driver "$flow" --proxy-port "$PROXY_PORT"
                --direct-port "$direct_port")
            ;;
        jdbc) cmd=(java -cp "$JDBC_JAR:$STATE/jdbc-classes" JdbcFlow "$PROXY_PORT" "$direct_port") ;;
        mariadb_cli) cmd=("$CLIENTS_DIR/mariadb_cli.sh") ;;
        sysbench)
            cmd=("$CLIENTS_DIR/sysbench.sh")
            limit=$((SYSBENCH_SECONDS + FLOW_TIMEOUT_S))
            ;;
        *) die "unknown flow '$flow' (known: pymysql connector jdbc mariadb_cli sysbench)" ;;
    esac
    SHARDGATE_CLIENTS_PROXY_PORT="$PROXY_PORT" SHARDGATE_CLIENTS_DIRECT_PORT="$direct_port" \
        SHARDGATE_CLIENTS_BACKEND_PORTS="$BACKEND_PORTS" SHARDGATE_CLIENTS_WORK="$STATE/work" \
        timeout --kill-after=10 "$limit" "${cmd[@]}" 2>&1 | tee "$STATE/$flow.log"
    return "${PIPESTATUS[0]}"
}

main() {
    local flow
    for flow in $FLOWS; do
        case "$flow" in pymysql | connector | jdbc | mariadb_cli | sysbench) ;; *) die "unknown flow '$flow'" ;; esac
    done
    [[ "$SYSBENCH_SECONDS" =~ ^[1-9][0-9]*$ ]] || die "SYSBENCH_SECONDS must be a positive integer"
    ensure_tools
    check_ports
    log "building shardgate and shardctl (cargo, dev profile)"
    (cd "$SHARDGATE_REPO" && cargo build -p shardgate -p shardctl)
    STATE="$(mktemp -d "${TMPDIR:-/tmp}/shardgate-clients.XXXXXX")"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$STATE/work"
    cluster up
    start_proxy
    compile_jdbc

    local results=() passed=0 failed=0 rc started
    for flow in $FLOWS; do
        printf '\n--- %s\n' "$flow"
        started=$SECONDS
        rc=0
        run_flow "$flow" || rc=$?
        if [ "$rc" -eq 0 ]; then
            passed=$((passed + 1))
            results+=("$(printf '%-12s PASS  %4ss' "$flow" $((SECONDS - started)))")
        else
            failed=$((failed + 1))
            results+=("$(printf '%-12s FAIL  %4ss  (exit %s)' "$flow" $((SECONDS - started)) "$rc")")
        fi
        kill -0 "$PROXY_PID" 2>/dev/null || { results+=("shardgate died during $flow"); failed=$((failed + 1)); break; }
    done

    printf '\n=== client flows through shardgate\n'
    printf '  %s\n' "${results[@]}"
    if grep -q 'error to client' "$STATE/proxy/shardgate.log"; then
        printf '\nerrors shardgate sent to clients (count, code and message, from its debug log):\n'
        sed -n 's/.*error to client conn=[0-9]* //p' "$STATE/proxy/shardgate.log" | sort | uniq -c | sort -rn \
            | head -n 25 | cut -c1-220
    fi
    printf 'clients: %d passed, %d failed\n' "$passed" "$failed"
    [ "$failed" -eq 0 ]
}

main "$@"
