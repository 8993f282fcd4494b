#!/usr/bin/env bash
# Local development cluster: 4 MariaDB servers holding 128 shards, and shardgate in front of them.
#
# Usage: deploy/dev-cluster.sh up|down|status|each-shard SQL
#
#   up          install MariaDB if missing (apt-get, needs root), start 4 mariadbd on 127.0.0.1:3307-3310 (own
#               datadirs, pid files, logs), create databases app_000..app_127 (32 per server, contiguous) with a
#               demo table `orders`, write topology.yaml (shardctl) and shardgate.yaml, build and start shardgate
#               on 127.0.0.1:15306. Idempotent: whatever already runs is left alone.
#   down        stop what `up` started (found by pid files in the state folder); data is kept.
#   status      show each process and whether it is up. Exit 0 when all are up, 3 otherwise.
#   each-shard  run SQL in every shard database directly on the servers, bypassing the proxy (DDL sent through
#               the proxy fans out to every shard by itself), e.g.: deploy/dev-cluster.sh each-shard "ALTER TABLE orders ADD COLUMN x INT"
#
# Environment:
#   SHARDGATE_STATE               state folder (default: <repo>/.state/dev-cluster); delete it to start afresh
#   SHARDGATE_MYSQL_PORT          proxy port (default 15306)
#   SHARDGATE_ADMIN_PORT          proxy admin HTTP port: /healthz, /readyz, /metrics, /backends (default 15001)
#   SHARDGATE_BACKEND_PORT_BASE   first server port (default 3307; the 4 servers use BASE..BASE+3)
#   SHARDGATE_BUILD_PROFILE       cargo profile for shardgate and shardctl (default release; `dev` reuses a test build)
#   SHARDGATE_DEMO_SCHEMA         1 (default) creates table `orders` in every shard; 0 creates no tables
set -euo pipefail

# shellcheck source=deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

STATE="${SHARDGATE_STATE:-$SHARDGATE_REPO/.state/dev-cluster}"
MYSQL_PORT="${SHARDGATE_MYSQL_PORT:-15306}"
ADMIN_PORT="${SHARDGATE_ADMIN_PORT:-15001}"
BACKEND_PORT_BASE="${SHARDGATE_BACKEND_PORT_BASE:-3307}"
PROFILE="${SHARDGATE_BUILD_PROFILE:-release}"
DEMO_SCHEMA="${SHARDGATE_DEMO_SCHEMA:-1}"
BACKENDS=4
SHARDS=128
KEYSPACE=app
STARTUP_DEADLINE_S=60
STOP_DEADLINE_S=30
DEMO_DDL="CREATE TABLE IF NOT EXISTS orders (id BIGINT PRIMARY KEY, tenant_id BIGINT UNSIGNED NOT NULL, note VARCHAR(64))"

backend_port() { echo $((BACKEND_PORT_BASE + $1)); }
backend_dir() { echo "$STATE/mariadb-$1"; }
shard_db() { printf '%s_%03d' "$KEYSPACE" "$1"; }
# Shard i lives on server i*B/n: contiguous blocks, as `shardctl topology generate` places them.
shard_backend() { echo $(($1 * BACKENDS / SHARDS)); }

# Runs SQL as passwordless root on server $1 over TCP (as the proxy does).
backend_sql() {
    local i="$1"
    shift
    mariadb --no-defaults --protocol=TCP --connect-timeout=5 -h127.0.0.1 -P"$(backend_port "$i")" -uroot \
        --batch --skip-column-names "$@"
}

target_dir() {
    local dir="${CARGO_TARGET_DIR:-$SHARDGATE_REPO/target}"
    case "$PROFILE" in
        dev | test) echo "$dir/debug" ;;
        *) echo "$dir/$PROFILE" ;;
    esac
}

mariadb_pid() { cat "$(backend_dir "$1")/mariadb.pid" 2>/dev/null || true; }
shardgate_pid() { cat "$STATE/shardgate.pid" 2>/dev/null || true; }

tail_log() {
    log "last lines of $1:"
    tail -n 20 "$1" >&2 2>/dev/null || true
}

start_backend() {
    local i="$1" dir port pid
    dir="$(backend_dir "$i")"
    port="$(backend_port "$i")"
    pid="$(mariadb_pid "$i")"
    if pid_is_ours "$pid" "$dir"; then
        log "mariadb-$i already running (pid $pid, port $port)"
        return
    fi
    mkdir -p "$dir"
    local user_args=()
    [ "$(id -u)" -eq 0 ] && user_args=(--user=root)
    if [ ! -d "$dir/data/mysql" ]; then
        log "mariadb-$i: creating datadir $dir/data"
        rm -rf "$dir/data"
        mariadb-install-db --no-defaults --datadir="$dir/data" "${user_args[@]}" \
            --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
            || { tail_log "$dir/install.log"; die "mariadb-install-db failed for mariadb-$i"; }
    fi
    log "mariadb-$i: starting on 127.0.0.1:$port"
    rm -f "$dir/mariadb.pid"
    setsid mariadbd --no-defaults --datadir="$dir/data" --port="$port" --bind-address=127.0.0.1 \
        --socket="$dir/mariadb.sock" --pid-file="$dir/mariadb.pid" --log-error="$dir/error.log" \
        "${user_args[@]}" --skip-log-bin --skip-name-resolve --max-connections=1000 \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --innodb-buffer-pool-size=64M </dev/null >>"$dir/mariadbd.out" 2>&1 &
    local started=$! deadline=$((SECONDS + STARTUP_DEADLINE_S))
    until backend_sql "$i" -e "SELECT 1" >/dev/null 2>&1; do
        if ! kill -0 "$started" 2>/dev/null; then
            tail_log "$dir/error.log"
            die "mariadb-$i exited during startup (port $port taken?)"
        fi
        [ "$SECONDS" -lt "$deadline" ] || { tail_log "$dir/error.log"; die "mariadb-$i not ready after ${STARTUP_DEADLINE_S}s"; }
        sleep 0.2
    done
    # mariadbd writes its pid file once it is up; `down` relies on it.
    [ -s "$dir/mariadb.pid" ] || echo "$started" >"$dir/mariadb.pid"
}

create_shard_databases() {
    local i s statements
    for ((i = 0; i < BACKENDS; i++)); do
        statements=""
        for ((s = 0; s < SHARDS; s++)); do
            [ "$(shard_backend "$s")" -eq "$i" ] || continue
            statements+="CREATE DATABASE IF NOT EXISTS \`$(shard_db "$s")\`;"
            if [ "$DEMO_SCHEMA" = 1 ]; then
                statements+="USE \`$(shard_db "$s")\`; $DEMO_DDL;"
            fi
        done
        backend_sql "$i" -e "$statements"
    done
    log "shard databases $(shard_db 0)..$(shard_db $((SHARDS - 1))) present on $BACKENDS servers"
}

build() {
    log "building shardgate and shardctl (cargo profile $PROFILE)"
    (cd "$SHARDGATE_REPO" && cargo build --profile "$PROFILE" -p shardgate -p shardctl)
}

# Writes $1 from stdin, replacing the file only when the content changed (shardgate reloads on change).
write_if_changed() {
    local target="$1" tmp="$1.tmp"
    cat >"$tmp"
    if cmp -s "$tmp" "$target"; then rm -f "$tmp"; else mv "$tmp" "$target"; fi
}

write_config() {
    local bin i backend_args=()
    bin="$(target_dir)"
    for ((i = 0; i < BACKENDS; i++)); do
        backend_args+=(--backend "db$i=127.0.0.1:$(backend_port "$i")")
    done
    "$bin/shardctl" topology generate --shards "$SHARDS" --keyspace "$KEYSPACE" --version 1 \
        --database-prefix "$KEYSPACE" "${backend_args[@]}" | write_if_changed "$STATE/topology.yaml"
    write_if_changed "$STATE/shardgate.yaml" <<YAML
# Written by deploy/dev-cluster.sh; see deploy/shardgate.example.yaml for every setting.
listen: "127.0.0.1:$MYSQL_PORT"
admin_listen: "127.0.0.1:$ADMIN_PORT"
users:
  - name: app
    password: app
backend:
  user: root
  password: ""
pool:
  max_size: 8
  acquire_timeout_ms: 5000
  connect_timeout_ms: 3000
topology:
  file: topology.yaml
YAML
    log "wrote $STATE/topology.yaml and $STATE/shardgate.yaml"
}

start_shardgate() {
    local pid bin
    pid="$(shardgate_pid)"
    if pid_is_ours "$pid" "$STATE/shardgate.yaml"; then
        log "shardgate already running (pid $pid, port $MYSQL_PORT)"
        return
    fi
    bin="$(target_dir)/shardgate"
    log "starting shardgate on 127.0.0.1:$MYSQL_PORT"
    : >"$STATE/shardgate.stdout"
    setsid "$bin" --config "$STATE/shardgate.yaml" </dev/null >"$STATE/shardgate.stdout" 2>>"$STATE/shardgate.log" &
    pid=$!
    echo "$pid" >"$STATE/shardgate.pid"
    local deadline=$((SECONDS + STARTUP_DEADLINE_S))
    # Ready when it announced its listener (so a stranger on the port does not count) and the port accepts.
    until grep -q '^shardgate listening mysql=' "$STATE/shardgate.stdout" && port_accepts "$MYSQL_PORT"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$STATE/shardgate.pid"
            tail_log "$STATE/shardgate.log"
            die "shardgate exited during startup"
        fi
        [ "$SECONDS" -lt "$deadline" ] || { tail_log "$STATE/shardgate.log"; die "shardgate not listening after ${STARTUP_DEADLINE_S}s"; }
        sleep 0.2
    done
}

cmd_up() {
    ensure_mariadb
    mkdir -p "$STATE"
    local i
    for ((i = 0; i < BACKENDS; i++)); do start_backend "$i"; done
    create_shard_databases
    build
    write_config
    start_shardgate
    log "up. Connect with:"
    echo "  mariadb -h127.0.0.1 -P$MYSQL_PORT -uapp -papp $KEYSPACE"
}

cmd_down() {
    local pid i dir backends=()
    # The proxy first, so that it does not see its backends vanish under live sessions.
    pid="$(shardgate_pid)"
    if pid_is_ours "$pid" "$STATE/shardgate.yaml"; then stop_all "$pid:shardgate"; fi
    rm -f "$STATE/shardgate.pid"
    for ((i = 0; i < BACKENDS; i++)); do
        pid="$(mariadb_pid "$i")"
        if pid_is_ours "$pid" "$(backend_dir "$i")"; then backends+=("$pid:mariadb-$i"); fi
    done
    [ "${#backends[@]}" -eq 0 ] || stop_all "${backends[@]}"
    for ((i = 0; i < BACKENDS; i++)); do
        dir="$(backend_dir "$i")"
        rm -f "$dir/mariadb.pid"
    done
    log "down (data kept in $STATE)"
}

cmd_status() {
    local all_up=0 pid i dir port state
    printf '%-10s %-8s %-7s %s\n' PROCESS PID STATE ADDRESS
    for ((i = 0; i < BACKENDS; i++)); do
        dir="$(backend_dir "$i")"
        port="$(backend_port "$i")"
        pid="$(mariadb_pid "$i")"
        state=down
        if pid_is_ours "$pid" "$dir" && port_accepts "$port"; then state=up; else all_up=3; fi
        printf '%-10s %-8s %-7s %s\n' "mariadb-$i" "${pid:--}" "$state" "127.0.0.1:$port"
    done
    pid="$(shardgate_pid)"
    state=down
    if pid_is_ours "$pid" "$STATE/shardgate.yaml" && port_accepts "$MYSQL_PORT"; then state=up; else all_up=3; fi
    printf '%-10s %-8s %-7s %s\n' shardgate "${pid:--}" "$state" "127.0.0.1:$MYSQL_PORT"
    return "$all_up"
}

cmd_each_shard() {
    [ $# -eq 1 ] || die "usage: $0 each-shard SQL"
    local s
    for ((s = 0; s < SHARDS; s++)); do
        backend_sql "$(shard_backend "$s")" "$(shard_db "$s")" -e "$1" \
            || die "failed in $(shard_db "$s") on mariadb-$(shard_backend "$s")"
    done
    log "ran on all $SHARDS shards"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    each-shard) shift; cmd_each_shard "$@" ;;
    *)
        echo "usage: $0 up|down|status|each-shard SQL" >&2
        exit 2
        ;;
esac
