# shellcheck shell=bash
# shellcheck disable=SC2034  # MARIADB_PID and SHARDGATE_PID are set for the calling script.
# Steps the benchmark scripts share (deploy/bench.sh, deploy/bench-connections.sh, deploy/bench-reshard.sh). Sourced
# after lib/common.sh, before the script's settings. It defines BIN_DIR, STATE, STATE_IS_TEMP and the STARTED list of
# processes to stop on exit; the functions use the script's settings when they run: MARIADB_PORT, MARIADBD_FLAGS,
# PROXY_PORT, ADMIN_PORT, KEYSPACE, SHARDS, STARTUP_DEADLINE_S, TENANTS and ROWS_PER_TENANT (loadgen_prepare),
# BENCH_STARTED (its $SECONDS when its work began; common_meta), and its cleanup function (install_cleanup_traps).

# Where build() puts the binaries.
BIN_DIR="${CARGO_TARGET_DIR:-$SHARDGATE_REPO/target}/release"

# "pid:name" of every process this run started, in start order; finish_cleanup stops them in reverse.
STARTED=()
# The state folder (see make_state); STATE_IS_TEMP=1 when make_state created it, so cleanup may remove it.
STATE=""
STATE_IS_TEMP=0

is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

# The scripts take no arguments: given any, prints the script's header comment as its usage and exits 2.
refuse_arguments() {
    [ $# -eq 0 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
}

# Dies unless each argument is a port number that nothing listens on yet.
check_ports() {
    local port
    for port in "$@"; do
        { is_count "$port" && [ "$port" -lt 65536 ]; } || die "bad port '$port'"
        ! port_accepts "$port" || die "port $port is taken; choose others with BENCH_*_PORT"
    done
}

# Makes sure mariadb, cargo and the commands named as arguments are present; each of those comes from the Debian
# package of the same name, installed with one apt-get for all that are missing.
ensure_tools() {
    local missing=() tool
    ensure_mariadb
    for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
    [ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
    for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || die "$tool still missing after installing it"; done
    command -v cargo >/dev/null 2>&1 || die "cargo not found (needed to build shardgate)"
}

build() {
    log "building shardgate, shardctl and loadgen (cargo --release)"
    (cd "$SHARDGATE_REPO" && cargo build --release -p shardgate -p shardctl -p loadgen)
}

# Runs the calling script's `cleanup` on exit, also after Ctrl-C or TERM (exiting with the shell's usual statuses).
install_cleanup_traps() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# The end of every script's cleanup, after its own first steps: stops what STARTED lists one at a time, newest first
# (a proxy before the server it talks to), then removes the state folder if the run succeeded and the folder is a
# temporary one (unless BENCH_KEEP_STATE=1), or says where it is kept, $2 naming what it holds; exits with status $1.
finish_cleanup() {
    local rc="$1" contents="$2" i
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_all "${STARTED[i]}"; done
    if [ -n "$STATE" ]; then
        if [ "$rc" -eq 0 ] && [ "$STATE_IS_TEMP" = 1 ] && [ "${BENCH_KEEP_STATE:-0}" != 1 ]; then
            rm -rf "$STATE"
        else
            log "state ($contents) kept in $STATE"
        fi
    fi
    exit "$rc"
}

# Sets STATE to SHARDGATE_BENCH_STATE, or else to a new temporary folder named $1.XXXXXX, and recreates in it, empty,
# the subfolders named by the other arguments (what an earlier run left there would mix with this run's).
make_state() {
    local prefix="$1" subfolder
    shift
    if [ -n "${SHARDGATE_BENCH_STATE:-}" ]; then
        STATE="$SHARDGATE_BENCH_STATE"
        mkdir -p "$STATE"
    else
        STATE="$(mktemp -d "${TMPDIR:-/tmp}/$prefix.XXXXXX")"
        STATE_IS_TEMP=1
    fi
    STATE="$(cd "$STATE" && pwd)"
    for subfolder in "$@"; do
        rm -rf "${STATE:?}/$subfolder"
        mkdir -p "$STATE/$subfolder"
    done
    log "state folder: $STATE"
}

# Sets the client command lines, DB_CLIENT and PROXY_CLIENT: passwordless root on the server, and app/app in the
# keyspace through shardgate, over TCP. Called once the script has set MARIADB_PORT, PROXY_PORT and KEYSPACE.
set_clients() {
    DB_CLIENT=(mariadb --no-defaults --protocol=TCP --connect-timeout=5 -h127.0.0.1 -P"$MARIADB_PORT" -uroot
        --batch --skip-column-names)
    PROXY_CLIENT=(mariadb --no-defaults --protocol=TCP --connect-timeout=5 -h127.0.0.1 -P"$PROXY_PORT" -uapp -papp
        -D"$KEYSPACE" --batch --skip-column-names)
}
db_sql() { "${DB_CLIENT[@]}" "$@"; }
proxy_sql() { "${PROXY_CLIENT[@]}" "$@"; }

shard_db() { printf '%s_%03d' "$KEYSPACE" "$1"; }

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

# Creates on the server the databases named as arguments (unsharded references) and the shard databases
# KEYSPACE_000 to KEYSPACE_(SHARDS-1).
create_databases() {
    local db s statements="" named=""
    for db in "$@"; do
        statements+="CREATE DATABASE \`$db\`;"
        named+="$db and "
    done
    for ((s = 0; s < SHARDS; s++)); do statements+="CREATE DATABASE \`$(shard_db "$s")\`;"; done
    db_sql -e "$statements"
    log "databases $named$(shard_db 0)..$(shard_db $((SHARDS - 1))) created"
}

# Writes $STATE/topology.yaml: SHARDS shards of KEYSPACE in the shard databases, all on the one server, followed by
# the YAML lines $1 (default none); dies unless shardctl accepts it.
write_topology() {
    {
        "$BIN_DIR/shardctl" topology generate --shards "$SHARDS" --keyspace "$KEYSPACE" \
            --database-prefix "$KEYSPACE" --backend "db0=127.0.0.1:$MARIADB_PORT"
        [ -z "${1:-}" ] || printf '%s\n' "$1"
    } >"$STATE/topology.yaml"
    "$BIN_DIR/shardctl" topology validate "$STATE/topology.yaml" >/dev/null \
        || die "generated topology $STATE/topology.yaml is invalid"
}

# Writes $STATE/shardgate.yaml: listening on PROXY_PORT (admin on ADMIN_PORT), user app/app, root on the server, the
# topology of write_topology. A script appends its own settings.
write_shardgate_yaml() {
    cat >"$STATE/shardgate.yaml" <<YAML
# Written by deploy/$(basename "$0"); see deploy/shardgate.example.yaml for every setting.
listen: "127.0.0.1:$PROXY_PORT"
admin_listen: "127.0.0.1:$ADMIN_PORT"
users:
  - name: app
    password: app
backend:
  user: root
  password: ""
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

# loadgen --prepare against target $1 at URL $2 (through shardgate the CREATE TABLE fans out to every shard; one
# INSERT per tenant), followed by loadgen's one-second run on one connection; its output in $3.json and $3.err.
loadgen_prepare() {
    local target="$1" url="$2" out="$3"
    log "loadgen --prepare on $target: $TENANTS tenants x $ROWS_PER_TENANT rows"
    timeout --kill-after=10 $((120 + TENANTS / 20)) "$BIN_DIR/loadgen" --url "$url" --prepare \
        --tenants "$TENANTS" --rows-per-tenant "$ROWS_PER_TENANT" --connections 1 --seconds 1 --json \
        >"$out.json" 2>"$out.err" || { tail_log "$out.err"; tail_log "$STATE/shardgate.log"; die "preparing $target failed"; }
}

# The key<TAB>value lines every benchmark's meta.tsv holds: when it ran, its command line (the script, after those of
# the BENCH_* variables named as arguments that were set), how long it ran, the machine, mariadbd's version and
# flags, shardgate's commit and its number of workers.
common_meta() {
    local commit dirty="" cmd="" var
    commit="$(git -C "$SHARDGATE_REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    # docs/ is left out: the benchmarks rewrite their reports there, and no doc goes into the binaries.
    if [ -n "$(git -C "$SHARDGATE_REPO" status --porcelain --untracked-files=no -- . ':(exclude)docs' 2>/dev/null)" ]; then
        dirty=" (with uncommitted changes)"
    fi
    for var in "$@"; do
        [ -z "${!var:-}" ] || cmd+="$var=\"${!var}\" "
    done
    cmd+="deploy/$(basename "$0")"
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'command\t%s\n' "$cmd"
    printf 'elapsed_seconds\t%s\n' "$((SECONDS - BENCH_STARTED))"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'cpu_model\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    printf 'ram\t%s\n' "$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'mariadbd\t%s\n' "$(mariadbd --version)"
    printf 'mariadbd_flags\t%s\n' "${MARIADBD_FLAGS[*]}"
    printf 'shardgate\t%s\n' "git $commit$dirty"
    printf 'workers\t%s\n' "$(grep -o 'workers=[0-9]*' "$STATE/shardgate.log" | head -n 1 | cut -d= -f2)"
}
