#!/usr/bin/env bash
# Installs what the tests need and runs them all. Used by CI (.ci/run) and by
# developers alike: `./scripts/test.sh` (as root on Debian: it installs
# packages, and the end-to-end tests capture live).
#
# It leaves the host's services as they were: packages are installed without
# starting or enabling their services (scripts/lib/debian.sh), and the
# database servers it starts itself are throwaways on free ports, stopped and
# deleted at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/debian.sh
. scripts/lib/debian.sh

# `--db-only`: set up the database servers (and NATS) as below, show that
# they answer, stop what was started, and exit (to check this part on its own).
db_only=false
[ "${1:-}" = "--db-only" ] && db_only=true

# Where to look for servers the tests may use as they are.
pg_port=${PBXBRIDGE_TEST_PG_PORT:-5432}
my_port=${PBXBRIDGE_TEST_MYSQL_PORT:-3306}
nats_port=${PBXBRIDGE_TEST_NATS_PORT:-4222}
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
trap 'exit 130' INT TERM

as_root_or_die() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$1: run as root, or start the server yourself" >&2
        exit 1
    fi
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
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

# Does the server on this port take what the tests log in with? Debian's own
# servers do not: peer/scram auth for postgres, unix_socket auth for root.
pg_accepts() {
    PGPASSFILE=/dev/null PGCONNECT_TIMEOUT=5 \
        psql -w -X -Atq -d "postgres://postgres@127.0.0.1:$1/postgres" -c 'SELECT 1' >/dev/null 2>&1
}
my_accepts() {
    mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$1" -uroot --connect-timeout=5 \
        -Ne 'SELECT 1' >/dev/null 2>&1
}

# PostgreSQL: the server on 127.0.0.1:$pg_port when it lets postgres in
# without a password, else a throwaway cluster on a free port (initdb into a
# temp folder as user postgres, trust auth on 127.0.0.1).
setup_postgres() {
    if [ -n "${PBXBRIDGE_TEST_POSTGRES:-}" ]; then
        echo "PostgreSQL: using PBXBRIDGE_TEST_POSTGRES"
        return
    fi
    if pg_accepts "$pg_port"; then
        echo "PostgreSQL: using the server on 127.0.0.1:$pg_port"
        export PBXBRIDGE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pg_port/postgres"
        return
    fi
    if port_open "$pg_port"; then
        echo "PostgreSQL: the server on 127.0.0.1:$pg_port does not let postgres in without a password; starting a throwaway"
    fi
    as_root_or_die "PostgreSQL: no usable server on 127.0.0.1:$pg_port"
    local bin dir port
    bin=$(pg_bin)
    port=$(free_port)
    dir=$(mktemp -d /tmp/pbxbridge-pg.XXXXXX)
    cleanup_dirs+=("$dir")
    chown postgres: "$dir"
    runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log"
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    pg_started=$dir
    wait_for "PostgreSQL on 127.0.0.1:$port" pg_accepts "$port"
    echo "PostgreSQL: started a throwaway $(basename "$(dirname "$bin")") server on 127.0.0.1:$port (data in $dir, stopped at exit)"
    export PBXBRIDGE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres"
}

# MariaDB: the server on 127.0.0.1:$my_port when it lets root in without a
# password, else a throwaway server on a free port (mariadb-install-db into a
# temp folder; root without password on 127.0.0.1).
setup_mariadb() {
    if [ -n "${PBXBRIDGE_TEST_MYSQL:-}" ]; then
        echo "MariaDB: using PBXBRIDGE_TEST_MYSQL"
        return
    fi
    if my_accepts "$my_port"; then
        echo "MariaDB: using the server on 127.0.0.1:$my_port"
        export PBXBRIDGE_TEST_MYSQL="mysql://root@127.0.0.1:$my_port/mysql"
        return
    fi
    if port_open "$my_port"; then
        echo "MariaDB: the server on 127.0.0.1:$my_port does not let root in without a password; starting a throwaway"
    fi
    as_root_or_die "MariaDB: no usable server on 127.0.0.1:$my_port"
    local dir port
    port=$(free_port)
    dir=$(mktemp -d /tmp/pbxbridge-mariadb.XXXXXX)
    cleanup_dirs+=("$dir")
    mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
        --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1
    setsid /usr/sbin/mariadbd --no-defaults --datadir="$dir/data" --user=root \
        --port="$port" --bind-address=127.0.0.1 --socket="$dir/mysqld.sock" \
        --pid-file="$dir/mysqld.pid" --skip-log-bin --innodb-flush-log-at-trx-commit=0 \
        >"$dir/server.log" 2>&1 </dev/null &
    cleanup_pids+=("$!")
    wait_for "MariaDB on $dir/mysqld.sock" mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -uroot ping
    # root@localhost has no password; make 127.0.0.1 the same root.
    mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot -e \
        "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION"
    wait_for "MariaDB on 127.0.0.1:$port" my_accepts "$port"
    echo "MariaDB: started a throwaway server on 127.0.0.1:$port (data in $dir, stopped at exit)"
    export PBXBRIDGE_TEST_MYSQL="mysql://root@127.0.0.1:$port/mysql"
}

# Does a NATS server with JetStream answer on this port? Its greeting (INFO)
# says so.
nats_js_answers() {
    timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && head -n 1 <&3" 2>/dev/null |
        grep -q '"jetstream":true'
}

# NATS JetStream (tests/nats_support, tests/it/nats_events.rs): the tests run
# private servers from PBXBRIDGE_NATS_SERVER, which they stop and start again;
# PBXBRIDGE_TEST_NATS names a server that answers now: the one on
# 127.0.0.1:$nats_port when it has JetStream, else a throwaway on a free port
# with its store in a temp folder.
setup_nats() {
    PBXBRIDGE_NATS_SERVER=${PBXBRIDGE_NATS_SERVER:-/usr/sbin/nats-server}
    export PBXBRIDGE_NATS_SERVER
    if [ -n "${PBXBRIDGE_TEST_NATS:-}" ]; then
        echo "NATS: using PBXBRIDGE_TEST_NATS"
        return
    fi
    if nats_js_answers "$nats_port"; then
        echo "NATS: using the server on 127.0.0.1:$nats_port"
        export PBXBRIDGE_TEST_NATS="nats://127.0.0.1:$nats_port"
        return
    fi
    local dir port
    port=$(free_port)
    dir=$(mktemp -d /tmp/pbxbridge-nats.XXXXXX)
    cleanup_dirs+=("$dir")
    setsid "$PBXBRIDGE_NATS_SERVER" -js -sd "$dir/store" -a 127.0.0.1 -p "$port" \
        >"$dir/server.log" 2>&1 </dev/null &
    cleanup_pids+=("$!")
    wait_for "NATS on 127.0.0.1:$port" nats_js_answers "$port"
    echo "NATS: started a throwaway nats-server on 127.0.0.1:$port (store in $dir, stopped at exit)"
    export PBXBRIDGE_TEST_NATS="nats://127.0.0.1:$port"
}

# The database servers' packages: their clients probe the servers above, and
# their binaries run the throwaway servers and tests/db_outage.rs's private
# ones. Installed without starting Debian's own servers on 5432/3306.
db_pkgs=(postgresql mariadb-server python3 nats-server)

if $db_only; then
    install_missing test.sh "${db_pkgs[@]}"
    setup_postgres
    setup_mariadb
    setup_nats
    psql -X -Atc "SELECT 'PostgreSQL answers: ' || version()" "$PBXBRIDGE_TEST_POSTGRES"
    my=${PBXBRIDGE_TEST_MYSQL#mysql://root@127.0.0.1:}
    mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "${my%%/*}" -uroot -Ne "SELECT CONCAT('MariaDB answers: ', VERSION())"
    nats=${PBXBRIDGE_TEST_NATS##*:}
    nats_js_answers "$nats" && echo "NATS answers with JetStream on port $nats"
    exit 0
fi

# System packages the build and tests need (Debian): a C toolchain, libpcap's
# headers, libsrtp2's headers (SRTP decryption), CA certificates for
# crates.io, systemd-analyze (tests/systemd_unit.rs) and the database servers.
# Only touches apt when something is missing, so a warm machine starts
# testing at once. The audio decoders' libraries (src/codec/: SpanDSP,
# bcg729, libopus, opencore AMR/AMR-WB, libspeex), VisualOn's AMR-WB encoder,
# which only tests/codec_reference.rs links (Debian's ffmpeg has no AMR
# encoder), and opus-tools' opusinfo, which checks the Ogg/Opus files we write.
codec_pkgs=(libspandsp-dev libbcg729-dev libopus-dev libopencore-amrnb-dev libopencore-amrwb-dev
    libspeex-dev libvo-amrwbenc-dev opus-tools)
install_missing test.sh build-essential pkg-config libpcap-dev libsrtp2-dev ca-certificates systemd \
    "${db_pkgs[@]}" "${codec_pkgs[@]}"

# The end-to-end tests (tests/e2e_*.rs) drive real peers: SIPp, Kamailio,
# tshark, tcpreplay; they capture live, so they need root.
./scripts/e2e-deps.sh

# The HTTP API's tests: headless Chromium plays a recording from a signed link
# (tests/it/api_browser.rs); schemathesis, from PyPI, checks every answer
# against the API's own OpenAPI document (tests/it/api_schemathesis.rs). It
# goes into a virtualenv of its own, pinned, made once. ffmpeg (with its
# libopus decoder) is also the codec tests' independent reference (src/codec
# unit tests, tests/it/codec_audio.rs); tshark (e2e-deps.sh) checks the
# quality figures; without them those tests print SKIPPED.
install_missing test.sh chromium ffmpeg python3-venv
schemathesis_version=4.32.5
st_venv=/var/cache/pbxbridge/venv
if ! "$st_venv/bin/schemathesis" --version 2>/dev/null | grep -q "$schemathesis_version"; then
    echo "schemathesis: installing $schemathesis_version into $st_venv"
    mkdir -p "$(dirname "$st_venv")"
    python3 -m venv "$st_venv"
    "$st_venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi
export PBXBRIDGE_SCHEMATHESIS="$st_venv/bin/schemathesis"
export PBXBRIDGE_CHROMIUM=/usr/bin/chromium

# The database tests (tests/db_support) use these servers.
setup_postgres
setup_mariadb
setup_nats

if ! cargo_on_path; then
    echo "cargo not found: install the Rust toolchain first (./scripts/demo.sh does, with rustup)" >&2
    exit 1
fi
# A minimal rustup profile (./scripts/demo.sh installs one) lacks these two.
if command -v rustup >/dev/null 2>&1 && ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

# The storage tests (tests/s3_storage.rs, tests/store_support) run a real S3
# server: Garage, built once into a cache (scripts/garage.sh says how long).
PBXBRIDGE_GARAGE=$(./scripts/garage.sh)
export PBXBRIDGE_GARAGE
echo "Garage: $PBXBRIDGE_GARAGE ($("$PBXBRIDGE_GARAGE" --version | head -n 1))"

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# The fuzz targets (fuzz/, a crate of its own) are built and linted too, so a
# change to the core cannot leave them broken; running them needs nightly
# (`cargo +nightly fuzz run <target>`), building them does not.
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check
cargo clippy --locked --manifest-path fuzz/Cargo.toml --target-dir target/fuzz --all-targets -- -D warnings
log=$(mktemp)
set +e
cargo test --locked --all-targets 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One total at the end, so the last line is not a target that has no tests.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
