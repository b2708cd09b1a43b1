#!/usr/bin/env bash
# Installs the tools the end-to-end tests (tests/e2e_*.rs) and scripts/bench-live.sh
# need, on Debian. Idempotent: touches apt only when a package is missing, so a
# warm machine returns at once. Run as root (CI does, from scripts/test.sh).
# Installing starts and enables no service (Debian would run kamailio on 5060).
#
#   scripts/e2e-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/debian.sh
. scripts/lib/debian.sh

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

# tshark asks whether non-root users may capture; the answer does not matter here.
if ! installed tshark && [ "$(id -u)" -eq 0 ]; then
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
fi
names=()
for entry in "${pkgs[@]}"; do
    names+=("${entry%%:*}")
done
# Kamailio is a SIP proxy Debian would start on 5060 and enable at boot: the
# install starts and enables nothing (scripts/lib/debian.sh); the tests run
# their own instance on a free port.
install_missing e2e-deps "${names[@]}"

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
