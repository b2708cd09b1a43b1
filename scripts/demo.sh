#!/usr/bin/env bash
# The README's first command: from a fresh clone on Debian, as root,
#
#   ./scripts/demo.sh
#
# installs what building pbxbridge needs when it is missing (a C compiler,
# libc headers, pkg-config, libpcap's and the codec libraries' headers, CA
# certificates; no service is
# started or enabled), installs Rust with rustup when there is no cargo, builds
# the release binary and replays one of the project's own captures
# (pcap-fixtures/answered_caller_bye.pcap: an answered 3-second call) with the
# embedded defaults: the call goes to SQLite ./pbxbridge.db, its stereo WAV
# under ./recordings, the state (outbox) under ./state. Then it says where the
# WAV and the row are. Running it again rebuilds nothing and leaves the same
# row (calls are keyed by Call-ID).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/debian.sh
. scripts/lib/debian.sh

capture=pcap-fixtures/answered_caller_bye.pcap
rust_min=1.85 # Cargo.toml rust-version; Debian 12's own rustc is 1.63

# ---------------------------------------------------------------- packages
# gcc + libc6-dev: the C parts of ring (TLS) and SQLite; pkg-config and
# libpcap-dev: the pcap crate links libpcap; ca-certificates: cargo fetches
# crates over HTTPS; curl only when rustup has to be fetched. The audio
# decoders the binary links (src/codec/): SpanDSP (G.722, G.726, GSM 06.10,
# DVI4), bcg729 (G.729), libopus, opencore AMR and AMR-WB, libspeex; and
# libsrtp2 (SRTP decryption).
pkgs=(gcc libc6-dev pkg-config libpcap-dev ca-certificates libsrtp2-dev)
pkgs+=(libspandsp-dev libbcg729-dev libopus-dev libopencore-amrnb-dev libopencore-amrwb-dev libspeex-dev)
cargo_on_path || pkgs+=(curl)
install_missing demo "${pkgs[@]}"

# ---------------------------------------------------------------- Rust
rustup_help() {
    cat >&2 <<EOF
demo: install Rust (>= $rust_min) with rustup, then run ./scripts/demo.sh again:

    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    . "\$HOME/.cargo/env"

  (or download https://static.rust-lang.org/rustup/dist/$(uname -m)-unknown-linux-gnu/rustup-init,
  chmod +x it and run ./rustup-init -y --profile minimal). Debian's own rustc/cargo packages are too old.
EOF
}

if ! command -v cargo >/dev/null 2>&1; then
    # The installer behind sh.rustup.rs, fetched directly: the same binary.
    url=https://static.rust-lang.org/rustup/dist/$(uname -m)-unknown-linux-gnu/rustup-init
    echo "demo: cargo not found; installing Rust (stable, minimal profile) with rustup into" \
        "${CARGO_HOME:-$HOME/.cargo} (rustup adds it to PATH in your shell profile)" >&2
    tmp=$(mktemp -d)
    if curl --proto '=https' --tlsv1.2 -fsS "$url" -o "$tmp/rustup-init" &&
        curl --proto '=https' --tlsv1.2 -fsS "$url.sha256" -o "$tmp/rustup-init.sha256" &&
        [ "$(cut -d' ' -f1 <"$tmp/rustup-init.sha256")" = "$(sha256sum "$tmp/rustup-init" | cut -d' ' -f1)" ] &&
        chmod +x "$tmp/rustup-init" &&
        "$tmp/rustup-init" -y --profile minimal --default-toolchain stable >&2; then
        rm -rf "$tmp"
        . "${CARGO_HOME:-$HOME/.cargo}/env"
    else
        rm -rf "$tmp"
        echo "demo: could not install Rust from $url" >&2
        rustup_help
        exit 1
    fi
fi

have=$(rustc --version | awk '{ print $2 }')
if [ "$(printf '%s\n%s\n' "$rust_min" "$have" | sort -V | head -n 1)" != "$rust_min" ]; then
    echo "demo: rustc $have is older than $rust_min, which pbxbridge needs" >&2
    if command -v rustup >/dev/null 2>&1; then
        echo "demo: update it with: rustup update stable" >&2
    else
        rustup_help
    fi
    exit 1
fi

# ---------------------------------------------------------------- build and replay
echo "demo: building pbxbridge (release; the first build takes a while, later ones are instant)" >&2
start=$(date +%s)
cargo build --release --locked --bin pbxbridge
echo "demo: built in $(($(date +%s) - start)) s" >&2
bin=${CARGO_TARGET_DIR:-target}/release/pbxbridge

echo "demo: replaying $capture (embedded defaults: ./pbxbridge.db, ./recordings)" >&2
"$bin" replay "$capture"

# The capture holds one call; its Call-ID is in the fixture's expected record.
call_id=$(sed -n 's/.*"call_id": "\(.*\)".*/\1/p' "${capture%.pcap}.expected.json" | head -n 1)
wav=$(find recordings -name "$call_id.wav" 2>/dev/null | head -n 1)
echo
echo "The call's row in ./pbxbridge.db (pbxbridge calls show '$call_id'):"
"$bin" calls show "$call_id"
echo
echo "Its recording (stereo WAV, left = caller, right = callee): ${wav:-not found under ./recordings}"
echo "Play it with any player (e.g. aplay $wav); every row: sqlite3 pbxbridge.db 'select * from calls'"
