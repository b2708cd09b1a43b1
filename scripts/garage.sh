#!/usr/bin/env bash
# Prints the path of a Garage 2.5.0 binary (the S3 server the storage tests
# run), building it once into a cache that later runs, and CI on the same
# machine, reuse:
#
#   ${PBXBRIDGE_CACHE:-/var/cache/pbxbridge}/garage-2.5.0/bin/garage
#
# A garage 2.5.0 already on PATH or in ~/.cargo/bin is used as it is. The build
# keeps its target folder in the cache too, so an interrupted build resumes
# where it stopped. Only the features the tests use are built (SQLite
# metadata, bundled C libraries), without LTO. Measured: 57 min in all on a
# 2-core machine busy with other builds (a plain `cargo install garage` took
# 23 min on a quiet one); later runs take no time.
set -euo pipefail

version=2.5.0
cache=${PBXBRIDGE_CACHE:-/var/cache/pbxbridge}
root="$cache/garage-$version"

# A release build says "garage v2.5.0 [...]", one from `cargo install`
# "garage cargo:2.5.0 [...]".
is_ours() {
    [ -x "$1" ] && "$1" --version 2>/dev/null | grep -qE "^garage (v|cargo:)${version//./\\.} "
}

for candidate in "$(command -v garage 2>/dev/null || true)" \
    "${CARGO_HOME:-$HOME/.cargo}/bin/garage" "$root/bin/garage"; do
    if [ -n "$candidate" ] && is_ours "$candidate"; then
        echo "$candidate"
        exit 0
    fi
done

mkdir -p "$cache"
echo "Garage $version: not found; building it into $root (tens of minutes on 2 cores, once)" >&2
start=$(date +%s)
CARGO_TARGET_DIR="$cache/garage-build" \
    CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    cargo install garage --locked --version "$version" --root "$root" \
    --no-default-features --features bundled-libs,sqlite >&2
echo "Garage $version: built in $(($(date +%s) - start)) s" >&2
echo "$root/bin/garage"
