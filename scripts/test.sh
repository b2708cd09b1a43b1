#!/usr/bin/env bash
# Installs what the tests need and runs them all. Used by CI (.ci/run) and by
# developers alike: `./scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

# `--db-only`: set up the database servers as below, show that they answer,
# stop what was started, and exit (to check this part on its own).
db_only=false
[ "${1:-}" = "--db-only" ] && db_only=true

# Ports to use or start servers on (the tests' defaults are 5432 and 3306).
pg_port=${PBXBRIDGE_TEST_PG_PORT:-5432}
my_port=${PBXBRIDGE_TEST_MYSQL_PORT:-3306}
cleanup_dirs=()
cleanup_pids=()
pg_started=""
cleanup() {
    local pid dir
    if [ -n "$pg_started" ]; then
        runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$pg_started/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    for pid in "${cleanup_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${cleanup_pids[@]}"; do
        # Not our child after setsid/pg_ctl: wait by polling.
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    for dir in "${cleanup_dirs[@]}"; do
        rm -rf "$dir"
    done
    if [ -n "${log:-}" ]; then rm -f "$log"; fi
}
trap cleanup EXIT

as_root_or_die() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$1: run as root, or start the server yourself" >&2
        exit 1
    fi
}

apt_install() {
    as_root_or_die "missing Debian packages: $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "$@"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits until `$2...` succeeds (a server accepting connections), up to 60 s.
wait_for() {
    local what=$1
    shift
    for _ in $(seq 1 600); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "$what did not come up within 60 s" >&2
    return 1
}

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# PostgreSQL: the one on 127.0.0.1 when it answers, else a throwaway cluster
# (initdb into a temp folder as user postgres, trust auth on 127.0.0.1).
setup_postgres() {
    if [ -n "${PBXBRIDGE_TEST_POSTGRES:-}" ]; then
        echo "PostgreSQL: using PBXBRIDGE_TEST_POSTGRES"
        return
    fi
    if port_open "$pg_port"; then
        echo "PostgreSQL: using the server on 127.0.0.1:$pg_port"
    else
        as_root_or_die "PostgreSQL is not running on 127.0.0.1:$pg_port"
        [ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || apt_install postgresql
        local bin dir
        bin=$(pg_bin)
        dir=$(mktemp -d /tmp/pbxbridge-pg.XXXXXX)
        cleanup_dirs+=("$dir")
        chown postgres: "$dir"
        runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log"
        runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $pg_port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
        pg_started=$dir
        echo "PostgreSQL: started a throwaway $(basename "$(dirname "$bin")") server on 127.0.0.1:$pg_port (data in $dir, stopped at exit)"
    fi
    wait_for "PostgreSQL on 127.0.0.1:$pg_port" pg_isready -h 127.0.0.1 -p "$pg_port" -U postgres
    export PBXBRIDGE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pg_port/postgres"
}

# MariaDB: the one on 127.0.0.1 when it answers, else a throwaway server
# (mariadb-install-db into a temp folder; root without password on 127.0.0.1).
setup_mariadb() {
    if [ -n "${PBXBRIDGE_TEST_MYSQL:-}" ]; then
        echo "MariaDB: using PBXBRIDGE_TEST_MYSQL"
        return
    fi
    if port_open "$my_port"; then
        echo "MariaDB: using the server on 127.0.0.1:$my_port"
    else
        as_root_or_die "MariaDB is not running on 127.0.0.1:$my_port"
        command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
        local dir
        dir=$(mktemp -d /tmp/pbxbridge-mariadb.XXXXXX)
        cleanup_dirs+=("$dir")
        mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
            --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1
        setsid /usr/sbin/mariadbd --no-defaults --datadir="$dir/data" --user=root \
            --port="$my_port" --bind-address=127.0.0.1 --socket="$dir/mysqld.sock" \
            --pid-file="$dir/mysqld.pid" --skip-log-bin --innodb-flush-log-at-trx-commit=0 \
            >"$dir/server.log" 2>&1 </dev/null &
        cleanup_pids+=("$!")
        wait_for "MariaDB on $dir/mysqld.sock" mariadb-admin --socket="$dir/mysqld.sock" -uroot ping
        # root@localhost has no password; make 127.0.0.1 the same root.
        mariadb --socket="$dir/mysqld.sock" -uroot -e \
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION"
        echo "MariaDB: started a throwaway server on 127.0.0.1:$my_port (data in $dir, stopped at exit)"
    fi
    wait_for "MariaDB on 127.0.0.1:$my_port" mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$my_port" -uroot ping
    export PBXBRIDGE_TEST_MYSQL="mysql://root@127.0.0.1:$my_port/mysql"
}

if $db_only; then
    setup_postgres
    setup_mariadb
    psql "${PBXBRIDGE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:$pg_port/postgres}" -Atc "SELECT 'PostgreSQL answers: ' || version()"
    mariadb --protocol=tcp -h 127.0.0.1 -P "$my_port" -uroot -Ne "SELECT CONCAT('MariaDB answers: ', VERSION())"
    exit 0
fi

# System packages the build and tests need (Debian). Only touches apt when
# something is missing, so a warm machine starts testing at once.
need=()
for p in build-essential pkg-config libpcap-dev systemd; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${need[*]} (run as root or install them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${need[@]}"
fi

# The end-to-end tests (tests/e2e_*.rs) drive real peers: SIPp, Kamailio,
# tshark, tcpreplay; they capture live, so they need root.
./scripts/e2e-deps.sh

# The database tests need PostgreSQL and MariaDB (tests/db_support); the
# private servers of tests/db_outage.rs need their binaries too.
setup_postgres
setup_mariadb
[ -x "$(pg_bin)/initdb" ] || apt_install postgresql
[ -x /usr/sbin/mariadbd ] || apt_install mariadb-server

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install the Rust toolchain (rustup) first" >&2
    exit 1
fi

# The storage tests (tests/s3_storage.rs, tests/store_support) run a real
# S3 server: Garage. Reuse an installed binary; building one takes long.
if ! command -v garage >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/garage" ]; then
    echo "Garage: not installed; building it with cargo install (about 14 min on 2 cores)"
    cargo install garage --locked --version 2.5.0
fi
echo "Garage: $("$(command -v garage || echo "${CARGO_HOME:-$HOME/.cargo}/bin/garage")" --version)"

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
log=$(mktemp)
set +e
cargo test --locked --all-targets 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One total at the end, so the last line is not a target that has no tests.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
