# shellcheck shell=bash
# Shared helpers for deploy/*.sh; sourced, not run.
#
# Callers set `set -euo pipefail` themselves. Everything here prints what it does on stderr, prefixed with the
# calling script's name, so that CI logs say which step failed.

# The system folders where Debian puts mariadbd, which are often missing from a non-root PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# Repository root (this file lives in deploy/lib/).
# shellcheck disable=SC2034 # used by the scripts that source this file
SHARDGATE_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Runs a command as root: directly when we are root, through non-interactive sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root to run: $*"
    fi
}

# Installs Debian packages (with one `apt-get update` first).
apt_install() {
    log "installing with apt-get: $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Makes sure the MariaDB server, its installer and the command-line client are present.
ensure_mariadb() {
    local missing=()
    command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
    command -v mariadb-install-db >/dev/null 2>&1 || missing+=(mariadb-server)
    command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
    if [ "${#missing[@]}" -gt 0 ]; then
        # Both, always: on Debian the client is a separate package and the tests need each.
        apt_install mariadb-server mariadb-client
    fi
    command -v mariadbd >/dev/null 2>&1 || die "mariadbd still missing after installing mariadb-server"
    command -v mariadb >/dev/null 2>&1 || die "mariadb client still missing after installing mariadb-client"
}

# Whether process $1 is alive and its command line mentions $2 (so a recycled pid is not mistaken for ours).
pid_is_ours() {
    local pid="$1" marker="$2"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_accepts() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Stops the processes named in "pid:name" arguments: SIGTERM to all at once, then SIGKILL after STOP_DEADLINE_S
# seconds (default 30).
stop_all() {
    local entry pid name deadline=$((SECONDS + ${STOP_DEADLINE_S:-30}))
    for entry in "$@"; do
        log "stopping ${entry#*:} (pid ${entry%%:*})"
        kill -TERM "${entry%%:*}" 2>/dev/null || true
    done
    for entry in "$@"; do
        pid="${entry%%:*}"
        name="${entry#*:}"
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                log "$name did not stop within ${STOP_DEADLINE_S:-30}s; killing it"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    done
}
