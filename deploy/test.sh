#!/usr/bin/env bash
# Everything CI checks, in order: tools, formatting, lints, all tests (including the end-to-end tests against
# real MariaDB), a smoke test of the dev cluster through the real `mariadb` client, and real MySQL clients run
# unmodified through shardgate (tests/clients/run.sh: PyMySQL, mysql-connector-python, Connector/J, mariadb and
# mariadb-dump, sysbench). Exits non-zero on the first failure. Run from anywhere; installs what is missing with
# apt-get (needs root or passwordless sudo) and pip (into a virtualenv under target/).
#
# Environment:
#   SHARDGATE_SKIP_SMOKE=1     skip the dev-cluster smoke test
#   SHARDGATE_SKIP_CLIENTS=1   skip the real-client flows
#   SYSBENCH_SECONDS           length of the client flows' sysbench run (default 60)
set -euo pipefail

# shellcheck source=deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$SHARDGATE_REPO"

step() { printf '\n==> %s\n' "$*" >&2; }

step "checking tools"
ensure_mariadb
# The end-to-end tests drive the interactive client through a pseudo terminal made by util-linux `script`.
command -v script >/dev/null 2>&1 || apt_install bsdutils
# One end-to-end test scrapes the proxy with a real Prometheus and loads deploy/prometheus/alerts.yml into it.
command -v prometheus >/dev/null 2>&1 || apt_install prometheus
# Two end-to-end tests run proxies that follow a topology kept in a real etcd.
command -v etcd >/dev/null 2>&1 || apt_install etcd-server
command -v etcdctl >/dev/null 2>&1 || apt_install etcd-client
mariadbd --version >&2
cargo --version >&2

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# The resharding tests run the shardctl binary, which a test build does not make by itself.
step "cargo build -p shardctl"
cargo build -p shardctl

if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run --workspace"
    cargo nextest run --workspace --no-fail-fast
else
    step "cargo test --workspace"
    cargo test --workspace --no-fail-fast
fi

# Runs in a subshell, so that its exported settings and its EXIT trap (which stops its cluster) end with it.
smoke_test() (
    smoke_state="$(mktemp -d "${TMPDIR:-/tmp}/shardgate-smoke.XXXXXX")"
    export SHARDGATE_STATE="$smoke_state"
    # Ports of their own, so a developer's running dev cluster (3307-3310, 15306) does not get in the way.
    export SHARDGATE_MYSQL_PORT=25306
    export SHARDGATE_BACKEND_PORT_BASE=23307
    # The test run above already built the debug binaries; a release build would take minutes more.
    export SHARDGATE_BUILD_PROFILE=dev
    # shellcheck disable=SC2317 # run by the EXIT trap
    smoke_cleanup() {
        local status=$?
        if [ "$status" -ne 0 ] && [ -f "$smoke_state/shardgate.log" ]; then
            log "smoke test failed; last lines of shardgate.log:"
            tail -n 40 "$smoke_state/shardgate.log" >&2 || true
        fi
        deploy/dev-cluster.sh down || true
        rm -rf "$smoke_state"
        exit "$status"
    }
    trap smoke_cleanup EXIT

    deploy/dev-cluster.sh up
    deploy/dev-cluster.sh status
    note="smoke-$$"
    got="$(mariadb --no-defaults --connect-timeout=10 -h127.0.0.1 -P"$SHARDGATE_MYSQL_PORT" -uapp -papp app --batch --skip-column-names \
        -e "INSERT INTO orders (id, tenant_id, note) VALUES (1, 42, '$note'); SELECT note FROM orders WHERE tenant_id = 42")"
    if [ "$got" != "$note" ]; then
        die "smoke test: wrote '$note' for tenant 42 through the proxy, read back '$got'"
    fi
    # Behind the proxy: the row is in exactly one shard database.
    copies=0
    for ((i = 0; i < 4; i++)); do
        port=$((SHARDGATE_BACKEND_PORT_BASE + i))
        for db in $(mariadb --no-defaults -h127.0.0.1 -P"$port" -uroot --batch --skip-column-names -e "SHOW DATABASES LIKE 'app\\_%'"); do
            n="$(mariadb --no-defaults -h127.0.0.1 -P"$port" -uroot --batch --skip-column-names "$db" \
                -e "SELECT COUNT(*) FROM orders WHERE tenant_id = 42")"
            copies=$((copies + n))
        done
    done
    [ "$copies" -eq 1 ] || die "smoke test: tenant 42's row is stored $copies times across the shards, expected once"
    step "smoke test passed: tenant 42's row went through the proxy to exactly one shard and back"
)

if [ "${SHARDGATE_SKIP_SMOKE:-0}" = 1 ]; then
    step "dev-cluster smoke test skipped (SHARDGATE_SKIP_SMOKE=1)"
else
    step "dev-cluster smoke test"
    smoke_test
fi

if [ "${SHARDGATE_SKIP_CLIENTS:-0}" = 1 ]; then
    step "client flows skipped (SHARDGATE_SKIP_CLIENTS=1)"
else
    # Own cluster on ports 26306-26316; reuses the debug build of the test step above.
    step "real clients through shardgate (tests/clients/run.sh)"
    tests/clients/run.sh
fi
