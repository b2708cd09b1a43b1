#!/usr/bin/env bash
# Installs what the tests need and runs them all. Used by CI (.ci/run) and by
# developers alike: `./scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

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

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install the Rust toolchain (rustup) first" >&2
    exit 1
fi

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked --all-targets 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One total at the end, so the last line is not a target that has no tests.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
