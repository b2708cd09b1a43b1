#!/usr/bin/env bash
# The README's daemon quick-start: runs `pbxbridge run --config
# config/loopback.toml` on the loopback interface, places one answered call
# with audio between two SIPp instances on 127.0.0.1 (the project's own
# scenarios and audio, as the end-to-end tests use them: +14155550101 calls
# extension 2001, each side talks for 4 s, the caller hangs up), prints the
# call's row and where its WAV is, and stops the daemon with SIGTERM.
#
#   ./scripts/demo-daemon.sh        (as root: live capture, SIPp's RTP player)
#
# Installs sip-tester (SIPp) and python3 when missing (no service is started
# or enabled). Uses SIP ports 5070/5080, RTP 6000/6100, HEP 9060 and the
# admin endpoint 9091 on 127.0.0.1; the row goes to ./pbxbridge.db and the
# WAV under ./recordings, as in config/loopback.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/debian.sh
. scripts/lib/debian.sh

[ "$(id -u)" -eq 0 ] || { echo "demo-daemon: run as root (live capture on lo, SIPp plays RTP from raw sockets)" >&2; exit 1; }
install_missing demo-daemon sip-tester python3
cargo_on_path || { echo "demo-daemon: cargo not found: run ./scripts/demo.sh first (it installs Rust)" >&2; exit 1; }

config=config/loopback.toml
caller=+14155550101 # an outside number: the call is inbound
callee=2001         # matches [pbx] extension_pattern: the agent
talk_ms=4000
call_id="demo-$(date +%s)-$$@127.0.0.1"
work=$(mktemp -d /tmp/pbxbridge-demo.XXXXXX)
daemon=""
uas=""
cleanup() {
    [ -n "$uas" ] && kill "$uas" 2>/dev/null
    if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
        kill -TERM "$daemon"
        wait "$daemon" || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo build --release --locked --quiet --bin pbxbridge
bin=${CARGO_TARGET_DIR:-target}/release/pbxbridge

http_get() {
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:9091" + sys.argv[1], timeout=2).read().decode())' "$1"
}

echo "demo-daemon: starting pbxbridge run --config $config (log: below, prefixed 'daemon |')"
NO_COLOR=1 "$bin" run --config "$config" 2> >(sed -u 's/^/daemon | /' >&2) &
daemon=$!
for _ in $(seq 1 300); do
    kill -0 "$daemon" 2>/dev/null || { echo "demo-daemon: the daemon exited at start" >&2; daemon=""; exit 1; }
    http_get /readyz >/dev/null 2>&1 && break
    sleep 0.1
done
http_get /readyz >/dev/null 2>&1 || { echo "demo-daemon: the daemon is not ready after 30 s" >&2; exit 1; }

# What each side says: the fixtures' G.711 audio as RTP for SIPp's play_pcap_audio.
secs=$(((talk_ms + 2000) / 1000))
for side in caller:0x1000c001 callee:0x2000c002; do
    python3 pcap-fixtures/rtp-pcap.py --audio "pcap-fixtures/audio/${side%:*}.pcmu" --pt 0 \
        --duration "$secs" --ssrc "${side#*:}" --out "$work/${side%:*}.rtp.pcap"
done
scen=$PWD/pcap-fixtures/scenarios
sipp_common=(-i 127.0.0.1 -m 1 -nostdin -key pt 0 -key codec PCMU -timeout 30s -timeout_error)
echo "demo-daemon: $caller calls $callee (answered after ~1 s of ringing, ${talk_ms} ms of talk, the caller hangs up)"
(cd "$work" && exec sipp "${sipp_common[@]}" -sf "$scen/uas_answer.xml" -p 5080 -mp 6100 \
    -key contact "$callee" >"$work/uas.out" 2>&1) &
uas=$!
sleep 0.3
(cd "$work" && exec sipp "${sipp_common[@]}" -sf "$scen/uac_caller_bye.xml" -p 5070 -mp 6000 \
    -key caller "$caller" -s "$callee" -d "$talk_ms" -cid_str "$call_id" 127.0.0.1:5080 >"$work/uac.out" 2>&1) ||
    { echo "demo-daemon: the calling SIPp failed:" >&2; tail -n 20 "$work/uac.out" >&2; exit 1; }
wait "$uas" || { echo "demo-daemon: the answering SIPp failed:" >&2; tail -n 20 "$work/uas.out" >&2; exit 1; }
uas=""

# A call is final 2 s after its BYE (late retransmissions still count); then
# its record goes through the outbox to the database.
echo "demo-daemon: waiting for the call's row"
for _ in $(seq 1 150); do
    "$bin" calls --config "$config" show "$call_id" >/dev/null 2>&1 && break
    sleep 0.1
done

echo "demo-daemon: stopping the daemon (SIGTERM)"
kill -TERM "$daemon"
wait "$daemon" || { echo "demo-daemon: the daemon exited with $?" >&2; }
daemon=""

echo
"$bin" calls --config "$config" show "$call_id" --json >"$work/row.json" || {
    echo "demo-daemon: no row for $call_id in ./pbxbridge.db" >&2
    exit 1
}
python3 - "$work/row.json" <<'PY'
import json, sys, wave, array
call = json.load(open(sys.argv[1]))["call"]
keys = ["call_id", "direction", "from_number", "to_number", "agent", "outcome",
        "end_reason", "started_at", "answered_at", "ended_at", "duration",
        "recording_status", "recording_path"]
print("The call's row in ./pbxbridge.db:")
for k in keys:
    if k in call:
        print(f"  {k:17} {call[k]}")
path = call.get("recording_path")
if path:
    with wave.open(path) as w:
        frames = array.array("h", w.readframes(w.getnframes()))
        secs = w.getnframes() / w.getframerate()
    for name, ch in (("left (caller)", frames[0::2]), ("right (callee)", frames[1::2])):
        loud = sum(1 for s in ch if abs(s) > 64)
        print(f"  {name:15} {loud / max(len(ch), 1):5.0%} of {secs:.1f} s audible, peak {max(map(abs, ch), default=0)}")
    print(f"Its recording: {path} (play it with aplay or any player)")
PY
