#!/usr/bin/env bash
# Installs the tools the end-to-end tests (tests/e2e_*.rs) and scripts/bench-live.sh
# need, on Debian. Idempotent: touches apt only when a package is missing, so a
# warm machine returns at once. Run as root (CI does, from scripts/test.sh).
#
#   scripts/e2e-deps.sh
set -euo pipefail

# package: a command it provides (checked after the install)
pkgs=(
    "sip-tester:sipp"
    "kamailio:kamailio"
    "tcpreplay:tcpreplay"
    "tshark:tshark"
    "tcpdump:tcpdump"
    "iproute2:ip"
    "procps:kill"
    "python3:python3"
)

need=()
for entry in "${pkgs[@]}"; do
    pkg=${entry%%:*}
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done

if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "e2e-deps: missing Debian packages: ${need[*]} (run as root or install them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # tshark asks whether non-root users may capture; the answer does not matter here.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need[@]}"
fi

missing=()
for entry in "${pkgs[@]}"; do
    cmd=${entry#*:}
    PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "e2e-deps: still missing after install: ${missing[*]}" >&2
    exit 1
fi
echo "e2e-deps: sipp kamailio tcpreplay tshark tcpdump ip kill python3 present"
