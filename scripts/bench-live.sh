#!/usr/bin/env bash
# Live-capture benchmark (not a test): how fast can packets arrive on an
# interface before the kernel drops some on the daemon's capture?
#
#   sudo scripts/bench-live.sh
#   sudo RATES="20000 50000 topspeed" CALLS=1000 TALK_SECS=10 scripts/bench-live.sh
#
# A veth pair joins a private network namespace to the host. The daemon
# (release build, `pbxbridge run`) captures on the host end; tcpreplay, inside
# the namespace, sends the synthetic 1,000-call capture of examples/gencap.rs
# into the other end at each rate in turn, with a fresh daemon, database and
# recordings folder per rate. After each replay the daemon's /metrics gives the
# kernel drops (pbxbridge_kernel_drops_total); SIGTERM then flushes every call.
# It stops after the first rate with drops (STOP_ON_DROPS=0 runs them all).
#
# Columns: the rate asked for, packets/s tcpreplay achieved, packets sent and
# captured by the daemon, packets the kernel dropped on the way to any capture
# socket (input backlog, veth), kernel drops on the daemon's own capture ring,
# packets the daemon's full input queue discarded, calls in the database
# (complete = ended by the capture's own BYE, the rest were cut by SIGTERM),
# and the daemon's CPU (100% = one core) from /proc/<pid>/stat while replaying.
#
# Env: CALLS (1000), TALK_SECS (10), RATES (pps values or "topspeed"),
# STOP_ON_DROPS (1), KEEP (1 keeps the work dir), BUFFER_MIB (32), ADMIN_PORT (19391).
# Needs root, iproute2, tcpreplay, python3 and cargo (scripts/e2e-deps.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CALLS=${CALLS:-1000}
TALK_SECS=${TALK_SECS:-10}
RATES=${RATES:-"10000 20000 50000 100000 200000 400000 topspeed"}
STOP_ON_DROPS=${STOP_ON_DROPS:-1}
BUFFER_MIB=${BUFFER_MIB:-32}
ADMIN_PORT=${ADMIN_PORT:-19391}
KEEP=${KEEP:-0}

[[ $(id -u) -eq 0 ]] || { echo "bench-live: run as root (netns, veth, live capture)" >&2; exit 1; }
for tool in ip tcpreplay python3 cargo; do
    command -v "$tool" >/dev/null || { echo "bench-live: missing $tool (scripts/e2e-deps.sh installs it)" >&2; exit 1; }
done

NS=pbxb-bench-$$
HOST_IF=pbxbh$$
NS_IF=pbxbn$$
WORK=$(mktemp -d /tmp/pbxbridge-bench.XXXXXX)
DAEMON_PID=""

cleanup() {
    if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    ip link del "$HOST_IF" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    if [[ $KEEP == 1 ]]; then
        echo "bench-live: work dir kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench-live: $*" >&2; }

# ------------------------------------------------------------------ build and capture
log "building (release)"
(cd "$ROOT" && cargo build --release --quiet --bin pbxbridge --example gencap)
BIN=$ROOT/target/release/pbxbridge
[[ -n ${CARGO_TARGET_DIR:-} ]] && BIN=$CARGO_TARGET_DIR/release/pbxbridge
PCAP=$WORK/load.pcap
log "generating $CALLS calls of ${TALK_SECS}s"
(cd "$ROOT" && cargo run --release --quiet --example gencap -- \
    --calls "$CALLS" --concurrent "$CALLS" --talk-secs "$TALK_SECS" --out "$PCAP")

# ------------------------------------------------------------------ network
ip netns add "$NS"
ip link add "$HOST_IF" type veth peer name "$NS_IF"
ip link set "$NS_IF" netns "$NS"
ip link set "$HOST_IF" up
ip netns exec "$NS" ip link set "$NS_IF" up
ip netns exec "$NS" ip link set lo up
# No addresses: the frames carry the capture's own 10.x addresses and are
# dropped by the host's IP stack after the capture socket has seen them.
sysctl -qw "net.ipv6.conf.$HOST_IF.disable_ipv6=1" 2>/dev/null || true

# ------------------------------------------------------------------ helpers
CLK_TCK=$(getconf CLK_TCK)

cpu_ticks() { # utime + stime of a pid
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

http_get() { # PATH -> body on stdout
    python3 - "$ADMIN_PORT" "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}{sys.argv[2]}", timeout=2) as r:
        sys.stdout.write(r.read().decode())
except Exception:
    sys.exit(1)
PY
}

# Capture buffer overruns, and packets the daemon's full input queue discarded.
KERNEL_DROPS='^pbxbridge_kernel_drops_total[{].*kind="kernel"'
QUEUE_DROPS='^pbxbridge_capture_queue_full_total'

CAPTURED='^pbxbridge_capture_packets_total'

# Packets the kernel dropped before any capture socket saw them: the per-CPU
# input backlog (softnet_stat column 2) and the veth pair's own drop counters.
# pcap's kernel_drops cannot see these; at high rates into a veth they are the
# first to appear.
path_drops() {
    local soft veth
    soft=$(awk '{ s += strtonum("0x" $2) } END { printf "%d", s }' /proc/net/softnet_stat)
    veth=$(( $(cat "/sys/class/net/$HOST_IF/statistics/rx_dropped") + \
             $(ip netns exec "$NS" cat "/sys/class/net/$NS_IF/statistics/tx_dropped") ))
    echo $((soft + veth))
}

metric_sum() { # METRICS_TEXT REGEX -> sum of the samples whose name matches
    awk -v re="$2" '$1 ~ re && $0 !~ /^#/ { s += $NF } END { printf "%d\n", s }' <<<"$1"
}

db_count() { # DB WHERE
    python3 - "$1" "$2" <<'PY'
import sqlite3, sys
try:
    c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    print(c.execute(f"SELECT count(*) FROM calls WHERE {sys.argv[2]}").fetchone()[0])
except Exception:
    print(0)
PY
}

start_daemon() { # DIR
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/pbxbridge.toml" <<EOF
[pbx]
default_country = "US"
extension_pattern = "^[0-9]{3,5}\$"

[sip]
ports = [5060]
detect_any_port = false

[capture]
interfaces = ["$HOST_IF"]
filter = "udp"
promiscuous = true
buffer_mib = $BUFFER_MIB

[hep]
enabled = false

[admin]
enabled = true
listen = "127.0.0.1:$ADMIN_PORT"

[recording]
enabled = true
dir = "$dir/recordings"

[database]
url = "sqlite://$dir/calls.db"

[daemon]
state_dir = "$dir/state"

[log]
level = "warn"
EOF
    "$BIN" run --config "$dir/pbxbridge.toml" 2>"$dir/daemon.log" &
    DAEMON_PID=$!
    local i
    for i in $(seq 300); do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            log "daemon exited before it was ready:"
            tail -n 30 "$dir/daemon.log" >&2
            exit 1
        fi
        [[ $(http_get /readyz >/dev/null 2>&1 && echo ok) == ok ]] && return 0
        sleep 0.1
    done
    log "daemon not ready after 30 s"
    tail -n 30 "$dir/daemon.log" >&2
    exit 1
}

stop_daemon() {
    kill -TERM "$DAEMON_PID"
    local rc=0
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=""
    [[ $rc -eq 0 ]] || log "daemon exited with $rc after SIGTERM"
}

# ------------------------------------------------------------------ runs
SENT=$(python3 - "$PCAP" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    data = f.read()
magic = data[:4]
endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
off, n = 24, 0
while off + 16 <= len(data):
    incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
    off += 16 + incl
    n += 1
print(n)
PY
)
printf '%-10s %12s %10s %10s %12s %12s %10s %8s %9s %6s\n' rate "pkt/s" sent captured path_drops kernel_drops queue_full calls complete "cpu%"
for rate in $RATES; do
    dir=$WORK/run-$rate
    start_daemon "$dir"
    before=$(http_get /metrics || true)
    kd0=$(metric_sum "$before" "$KERNEL_DROPS")
    cap0=$(metric_sum "$before" "$CAPTURED")
    pd0=$(path_drops)
    t0=$(date +%s.%N)
    c0=$(cpu_ticks "$DAEMON_PID")
    if [[ $rate == topspeed ]]; then
        rate_args=(--topspeed)
    else
        rate_args=(--pps="$rate")
    fi
    out=$(ip netns exec "$NS" tcpreplay --preload-pcap --intf1="$NS_IF" "${rate_args[@]}" "$PCAP" 2>&1) || {
        log "tcpreplay failed:"
        echo "$out" >&2
        exit 1
    }
    # Let the daemon drain its queues before the counters are read.
    sleep 2
    c1=$(cpu_ticks "$DAEMON_PID")
    t1=$(date +%s.%N)
    after=$(http_get /metrics || true)
    kd=$(($(metric_sum "$after" "$KERNEL_DROPS") - kd0))
    od=$(metric_sum "$after" "$QUEUE_DROPS")
    captured=$(($(metric_sum "$after" "$CAPTURED") - cap0))
    pd=$(($(path_drops) - pd0))
    stop_daemon
    pps=$(sed -n 's/.*Rated: .* \([0-9.]*\) pps.*/\1/p' <<<"$out" | head -n 1)
    calls=$(db_count "$dir/calls.db" "1=1")
    complete=$(db_count "$dir/calls.db" "end_reason != 'shutdown'")
    cpu=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" \
        'BEGIN { printf "%.0f", 100 * (b - a) / hz / (t1 - t0) }')
    printf '%-10s %12s %10s %10s %12s %12s %10s %8s %9s %6s\n' "$rate" "${pps:-?}" "$SENT" "$captured" "$pd" "$kd" "$od" "$calls" "$complete" "$cpu"
    [[ $KEEP == 1 ]] || rm -rf "$dir/recordings"
    if [[ $STOP_ON_DROPS == 1 && ( $kd -gt 0 || $captured -lt $SENT ) ]]; then
        break
    fi
done
