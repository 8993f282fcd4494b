# shellcheck shell=bash
# shellcheck disable=SC2034  # MARIADB_PID and SHARDGATE_PID are set for the calling script.
# Steps the benchmark scripts share (deploy/bench.sh, deploy/bench-connections.sh). Sourced after lib/common.sh;
# they use the calling script's settings: STATE, MARIADB_PORT, MARIADBD_FLAGS, PROXY_PORT, BIN_DIR,
# STARTUP_DEADLINE_S, and its STARTED list of processes to stop on exit; db_sql is the script's own.

build() {
    log "building shardgate, shardctl and loadgen (cargo --release)"
    (cd "$SHARDGATE_REPO" && cargo build --release -p shardgate -p shardctl -p loadgen)
}

tail_log() {
    log "last lines of $1:"
    tail -n 20 "$1" >&2 2>/dev/null || true
}

start_mariadb() {
    local dir="$STATE/mariadb" user_args=()
    [ "$(id -u)" -eq 0 ] && user_args=(--user=root)
    log "mariadb: creating datadir $dir/data"
    # A tmpdir of its own: in a shared /tmp, another mariadbd's temporary table names can collide with ours.
    mkdir -p "$dir/tmp"
    mariadb-install-db --no-defaults --datadir="$dir/data" --tmpdir="$dir/tmp" "${user_args[@]}" \
        --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
        || { tail_log "$dir/install.log"; die "mariadb-install-db failed"; }
    log "mariadb: starting on 127.0.0.1:$MARIADB_PORT"
    setsid mariadbd --no-defaults --datadir="$dir/data" --port="$MARIADB_PORT" --bind-address=127.0.0.1 \
        --socket="$dir/mariadb.sock" --pid-file="$dir/mariadb.pid" --log-error="$dir/error.log" --tmpdir="$dir/tmp" \
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
