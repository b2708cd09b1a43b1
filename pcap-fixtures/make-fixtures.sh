#!/usr/bin/env bash
# Regenerates the pcap fixtures: real SIPp calls over loopback, captured by tcpdump.
#
#   sudo pcap-fixtures/make-fixtures.sh            # every fixture
#   sudo pcap-fixtures/make-fixtures.sh tcp dtmf   # only these
#   sudo pcap-fixtures/make-fixtures.sh --audio    # also re-make audio/ (espeak-ng, sox, ffmpeg, bcg729)
#
# Needs root (tcpdump on lo, SIPp play_pcap_audio), sipp >= 3.6
# (Debian sip-tester), tcpdump, tshark, python3 (with python3-cryptography for the
# SRTP fixtures), and for --audio espeak-ng, sox, ffmpeg (with libopus) and libbcg729-0.
# For each fixture it writes <name>.pcap and <name>.expected.json; the expected
# times come from the capture (tshark), the rest from what the scenario does.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SCEN=$HERE/scenarios
AUDIO=$HERE/audio
UAS_PORT=5060
UAC_PORT=5070
UAC_MP=6000 # caller's RTP port
UAS_MP=6100 # callee's RTP port
FILTER="udp port $UAS_PORT or udp port $UAC_PORT or tcp port $UAS_PORT or tcp port $UAC_PORT or udp port $UAC_MP or udp port $UAS_MP"

[[ $(id -u) -eq 0 ]] || { echo "run as root (tcpdump, SIPp play_pcap_audio)" >&2; exit 1; }
for tool in sipp tcpdump tshark python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/pbxbridge-fixtures.XXXXXX)
TCPDUMP_PID=""
UAS_PID=""
cleanup() {
  [[ -n $UAS_PID ]] && kill "$UAS_PID" 2>/dev/null || true
  [[ -n $TCPDUMP_PID ]] && kill "$TCPDUMP_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- audio
# Two voices, trimmed, with a little repeatable noise mixed in so that no 20 ms
# window is digital silence or repeats: the WAV test can then find exactly where
# in the source any recorded window came from.
make_audio() {
  command -v espeak-ng >/dev/null && command -v sox >/dev/null || { echo "need espeak-ng and sox" >&2; exit 1; }
  mkdir -p "$AUDIO"
  local t=$WORK/audio
  mkdir -p "$t"
  espeak-ng -v en-us -s 165 -w "$t/caller_tts.wav" \
    "Hello, this is the caller. I am phoning about order one two three."
  espeak-ng -v en-gb-x-rp+f3 -p 70 -s 175 -w "$t/callee_tts.wav" \
    "Good morning, support desk, how can I help you today?"
  local side d
  for side in caller callee; do
    sox -R "$t/${side}_tts.wav" -r 8000 -c 1 -b 16 "$t/${side}_8k.wav" \
      silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse rate -v 8000 gain -n -3
    d=$(soxi -D "$t/${side}_8k.wav")
    sox -R -n -r 8000 -c 1 -b 16 "$t/${side}_noise.wav" synth "$d" whitenoise vol 0.004
    sox -R -m -v 1 "$t/${side}_8k.wav" -v 1 "$t/${side}_noise.wav" "$t/${side}_mix.wav"
    sox -R "$t/${side}_mix.wav" -t raw -e mu-law -b 8 "$AUDIO/$side.pcmu"
    sox -R "$t/${side}_mix.wav" -t raw -e a-law -b 8 "$AUDIO/$side.pcma"
    # reference decodes, independent of pbxbridge's G.711 tables
    sox -R -t raw -r 8000 -c 1 -e mu-law -b 8 "$AUDIO/$side.pcmu" -t raw -e signed -b 16 -L "$AUDIO/$side.pcmu.s16"
    sox -R -t raw -r 8000 -c 1 -e a-law -b 8 "$AUDIO/$side.pcma" -t raw -e signed -b 16 -L "$AUDIO/$side.pcma.s16"
  done
  make_codec_audio
}

# The same voices for the other codecs, each encoded by a reference encoder
# from Debian: G.722 and Opus from a 16 kHz version (same trimming, its own
# noise), G.729 from the 8 kHz mix by libbcg729 (ffmpeg has no G.729 encoder).
make_codec_audio() {
  command -v ffmpeg >/dev/null || { echo "need ffmpeg" >&2; exit 1; }
  local t=$WORK/audio side d
  [[ -f $t/caller_mix.wav ]] || { rm -rf "$t"; make_audio; return; }
  local ff=(ffmpeg -hide_banner -loglevel error -y -fflags +bitexact)
  for side in caller callee; do
    sox -R "$t/${side}_tts.wav" -r 16000 -c 1 -b 16 "$t/${side}_16k.wav" \
      silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse rate -v 16000 gain -n -3
    d=$(soxi -D "$t/${side}_16k.wav")
    sox -R -n -r 16000 -c 1 -b 16 "$t/${side}_noise16.wav" synth "$d" whitenoise vol 0.004
    sox -R -m -v 1 "$t/${side}_16k.wav" -v 1 "$t/${side}_noise16.wav" "$t/${side}_mix16.wav"
    # 20 ms = 320 samples = 160 bytes per packet
    "${ff[@]}" -i "$t/${side}_mix16.wav" -c:a g722 -f g722 "$AUDIO/$side.g722"
    # 20 ms frames, ~24 kbit/s, mono, VoIP tuning; no DTX: neither ffmpeg nor opusenc offers it
    "${ff[@]}" -i "$t/${side}_mix16.wav" -c:a libopus -b:a 24k -application voip -frame_duration 20 \
      -ac 1 -flags:a +bitexact -map_metadata -1 -f ogg "$AUDIO/$side.opus"
    sox -R "$t/${side}_mix.wav" -t raw -e signed -b 16 -L "$t/${side}_8k.s16"
    python3 "$HERE/g729-encode.py" "$t/${side}_8k.s16" "$AUDIO/$side.g729"
  done
}

# ---------------------------------------------------------------- helpers
# rtp OUT SIDE CODEC SECONDS [extra rtp-pcap.py args]: an RTP stream for play_pcap_audio.
rtp() {
  local out=$1 side=$2 codec=$3 secs=$4
  shift 4
  local pt
  case $codec in
  pcmu) pt=0 ;; pcma) pt=8 ;; g722) pt=9 ;; g729) pt=18 ;; opus) pt=111 ;;
  *) echo "rtp: unknown codec $codec" >&2; exit 1 ;;
  esac
  python3 "$HERE/rtp-pcap.py" --audio "$AUDIO/$side.$codec" --codec "$codec" --pt "$pt" \
    --duration "$secs" --out "$WORK/$out" "$@"
}

# capture NAME TRANSPORT CODEC KEY=VALUE...  (SIPp arguments in the arrays UAS and UAC)
# Runs one call (UAS in background, UAC in foreground) under tcpdump, then
# writes NAME.expected.json from the capture and the KEY=VALUE facts.
capture() {
  local name=$1 transport=$2 codec=$3
  shift 3
  local pt=0 codec_name=PCMU
  [[ $codec == pcma ]] && { pt=8; codec_name=PCMA; }
  local common=(-i 127.0.0.1 -m 1 -nostdin -t "$transport" -key pt "$pt" -key codec "$codec_name"
    -timeout 30s -timeout_error -trace_err -trace_msg)
  echo "== $name"
  rm -f "$WORK"/*.log
  (cd "$WORK" && exec tcpdump -Z root --immediate-mode -i lo -U -s 0 -w "$WORK/$name.pcap" "$FILTER" 2>"$WORK/tcpdump.err") &
  TCPDUMP_PID=$!
  for _ in $(seq 50); do grep -q "listening on" "$WORK/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
  sleep 0.3
  (cd "$WORK" && exec sipp "${common[@]}" -p "$UAS_PORT" -mp "$UAS_MP" "${UAS[@]}" >"$WORK/uas.out" 2>&1) &
  UAS_PID=$!
  sleep 0.3
  local rc=0
  (cd "$WORK" && exec sipp "${common[@]}" -p "$UAC_PORT" -mp "$UAC_MP" "${UAC[@]}" "127.0.0.1:$UAS_PORT" >"$WORK/uac.out" 2>&1) || rc=$?
  local urc=0
  wait "$UAS_PID" || urc=$?
  UAS_PID=""
  sleep 1 # let the last packets reach tcpdump
  kill "$TCPDUMP_PID"
  wait "$TCPDUMP_PID" || true
  TCPDUMP_PID=""
  if [[ $rc -ne 0 || $urc -ne 0 ]]; then
    echo "sipp failed (uac rc=$rc, uas rc=$urc); logs:" >&2
    tail -n 40 "$WORK/uac.out" "$WORK/uas.out" >&2 || true
    cat "$WORK"/*_errors.log >&2 2>/dev/null || true
    exit 1
  fi
  cp "$WORK/$name.pcap" "$HERE/$name.pcap"
  local impaired=() side
  for side in caller callee; do
    [[ -f $WORK/$side.impaired.json ]] && impaired+=(--impaired "$side=$WORK/$side.impaired.json")
  done
  python3 "$HERE/expected.py" --pcap "$HERE/$name.pcap" --out "$HERE/$name.expected.json" \
    --caller-port "$UAC_MP" --callee-port "$UAS_MP" "${impaired[@]}" codec="$codec" "$@"
}

# Per-fixture RTP identities: fixed so reruns differ only in capture times and Call-IDs.
ids() { # ids SSRC SEQ TS
  echo "--ssrc $1 --seq-base $2 --ts-base $3"
}

INCOMING=(direction=incoming from_raw=+14155550101 from_number=+14155550101 to_raw=2001 to_number=2001 agent=2001)
OUTGOING=(direction=outgoing from_raw=2001 from_number=2001 to_raw=14155550199 to_number=+14155550199 agent=2001)
INTERNAL=(direction=internal from_raw=2001 from_number=2001 to_raw=2002 to_number=2002 agent=2002)
ANSWERED=(outcome=answered sip_code=200 recording=stored)
UAS_IN=(-key contact 2001)

# ---------------------------------------------------------------- fixtures
fx_answered_caller_bye() {
  rtp caller.rtp.pcap caller pcmu 3.0 $(ids 0x1a2b3c01 1000 160000)
  rtp callee.rtp.pcap callee pcmu 3.0 $(ids 0x5e6f7a01 30000 8000000)
  UAS=(-sf "$SCEN"/uas_answer.xml "${UAS_IN[@]}")
  UAC=(-sf "$SCEN"/uac_caller_bye.xml -key caller +14155550101 -s 2001 -d 3000)
  capture answered_caller_bye u1 pcmu \
    "${INCOMING[@]}" "${ANSWERED[@]}" end_reason=caller_bye
}

fx_answered_callee_bye() {
  # outgoing to a national number; the callee's RTP sequence number and timestamp wrap mid-call
  rtp caller.rtp.pcap caller pcmu 3.0 $(ids 0x1a2b3c02 2000 320000)
  rtp callee.rtp.pcap callee pcmu 3.0 $(ids 0x5e6f7a02 65470 4294963296)
  UAS=(-sf "$SCEN"/uas_answer_bye.xml -key contact 14155550199 -d 3000)
  UAC=(-sf "$SCEN"/uac_callee_bye.xml -key caller 2001 -s 14155550199)
  capture answered_callee_bye u1 pcmu \
    "${OUTGOING[@]}" "${ANSWERED[@]}" end_reason=callee_bye
}

reject() { # reject NAME SCENARIO CODE RING_MS OUTCOME [fact overrides]
  local name=$1 scen=$2 code=$3 ms=$4 outcome=$5
  shift 5
  UAS=(-sf "$SCEN/${scen}_$code.xml" "${UAS_IN[@]}" -d "$ms")
  UAC=(-sf "$SCEN/uac_reject.xml" -key caller "${CALLER:-+14155550101}" -s "${CALLEE:-2001}")
  capture "$name" u1 pcmu \
    "${INCOMING[@]}" outcome="$outcome" sip_code="$code" end_reason=rejected recording=none "$@"
}

fx_busy_486() {
  CALLER=4155550101 reject busy_486 uas_ring_reject 486 1200 busy \
    from_raw=4155550101 from_number=+14155550101
}
fx_declined_603() { reject declined_603 uas_ring_reject 603 1500 declined; }
fx_no_answer_480() { reject no_answer_480 uas_ring_reject 480 2500 no_answer; }
fx_timeout_408() { reject timeout_408 uas_ring_reject 408 3000 no_answer; }
fx_unavailable_503() { reject unavailable_503 uas_reject 503 100 failed; }
fx_not_found_404() {
  CALLEE=2099 reject not_found_404 uas_reject 404 50 failed \
    to_raw=2099 to_number=2099 agent=2099
}

fx_cancelled() {
  UAS=(-sf "$SCEN"/uas_cancel.xml "${UAS_IN[@]}")
  UAC=(-sf "$SCEN"/uac_cancel.xml -key caller +14155550101 -s 2001 -d 2000)
  capture cancelled u1 pcmu \
    "${INCOMING[@]}" outcome=cancelled sip_code=487 end_reason=cancel recording=none
}

fx_cancelled_elsewhere() {
  UAS=(-sf "$SCEN"/uas_cancel.xml "${UAS_IN[@]}")
  UAC=(-sf "$SCEN"/uac_cancel_elsewhere.xml -key caller +14155550101 -s 2001 -d 1500)
  capture cancelled_elsewhere u1 pcmu \
    "${INCOMING[@]}" outcome=cancelled sip_code=487 end_reason=cancel recording=none answered_elsewhere=true
}

fx_auth_407_answered() {
  # outgoing call from a phone that must authenticate to the PBX first
  rtp caller.rtp.pcap caller pcmu 3.0 $(ids 0x1a2b3c03 3000 480000)
  rtp callee.rtp.pcap callee pcmu 3.0 $(ids 0x5e6f7a03 31000 9600000)
  UAS=(-sf "$SCEN"/uas_auth.xml -key contact 14155550199)
  UAC=(-sf "$SCEN"/uac_auth.xml -key caller 2001 -s +14155550199 -au 2001 -ap fixture-secret -d 3000)
  capture auth_407_answered u1 pcmu \
    "${OUTGOING[@]}" to_raw=+14155550199 "${ANSWERED[@]}" end_reason=caller_bye
}

fx_early_media() {
  # the callee's stream starts with the 183 and runs on through the 200
  rtp caller.rtp.pcap caller pcmu 3.0 $(ids 0x1a2b3c04 4000 640000)
  rtp callee.rtp.pcap callee pcmu 4.5 $(ids 0x5e6f7a04 32000 11200000)
  UAS=(-sf "$SCEN"/uas_early_media.xml "${UAS_IN[@]}")
  UAC=(-sf "$SCEN"/uac_caller_bye.xml -key caller +14155550101 -s 2001 -d 3000)
  capture early_media u1 pcmu \
    "${INCOMING[@]}" "${ANSWERED[@]}" end_reason=caller_bye
}

fx_hold_reinvite() {
  # caller talks throughout; callee is silent between the sendonly and sendrecv
  # re-INVITEs and resumes with its RTP clock (timestamp, audio position) continued
  rtp caller.rtp.pcap caller pcmu 5.0 $(ids 0x1a2b3c05 5000 800000)
  rtp callee.rtp.pcap callee pcmu 2.0 $(ids 0x5e6f7a05 33000 12800000)
  rtp callee2.rtp.pcap callee pcmu 1.5 $(ids 0x5e6f7a05 33000 12800000) --start 3.5 --seq-skip 100
  UAS=(-sf "$SCEN"/uas_hold.xml -key contact 2002)
  UAC=(-sf "$SCEN"/uac_hold.xml -key caller 2001 -s 2002)
  capture hold_reinvite u1 pcmu \
    "${INTERNAL[@]}" "${ANSWERED[@]}" end_reason=caller_bye hold=true
}

fx_tcp() {
  rtp caller.rtp.pcap caller pcmu 3.0 $(ids 0x1a2b3c06 6000 960000)
  rtp callee.rtp.pcap callee pcmu 3.0 $(ids 0x5e6f7a06 34000 14400000)
  UAS=(-sf "$SCEN"/uas_answer.xml "${UAS_IN[@]}")
  UAC=(-sf "$SCEN"/uac_caller_bye.xml -key caller +14155550101 -s 2001 -d 3000)
  capture tcp t1 pcmu \
    "${INCOMING[@]}" "${ANSWERED[@]}" end_reason=caller_bye
}

fx_pcma() {
  rtp caller.rtp.pcap caller pcma 3.0 $(ids 0x1a2b3c07 7000 1120000)
  rtp callee.rtp.pcap callee pcma 3.0 $(ids 0x5e6f7a07 35000 16000000)
  UAS=(-sf "$SCEN"/uas_answer.xml -key contact 2002)
  UAC=(-sf "$SCEN"/uac_caller_bye.xml -key caller 2001 -s 2002 -d 3000)
  capture pcma u1 pcma \
    "${INTERNAL[@]}" "${ANSWERED[@]}" end_reason=caller_bye
}

fx_dtmf() {
  # RFC 4733 events (pt 101) interleaved with the caller's audio, same SSRC
  rtp caller.rtp.pcap caller pcmu 3.0 $(ids 0x1a2b3c08 8000 1280000) --dtmf "123#" --dtmf-first 0.6 --dtmf-gap 0.4
  rtp callee.rtp.pcap callee pcmu 3.0 $(ids 0x5e6f7a08 36000 17600000)
  UAS=(-sf "$SCEN"/uas_answer.xml "${UAS_IN[@]}")
  UAC=(-sf "$SCEN"/uac_caller_bye.xml -key caller +14155550101 -s 2001 -d 3000)
  capture dtmf u1 pcmu \
    "${INCOMING[@]}" "${ANSWERED[@]}" end_reason=caller_bye dtmf=123#
}

fx_forked() {
  rtp caller.rtp.pcap caller pcmu 3.0 $(ids 0x1a2b3c09 9000 1440000)
  rtp callee.rtp.pcap callee pcmu 3.0 $(ids 0x5e6f7a09 37000 19200000)
  UAS=(-sf "$SCEN"/uas_forked.xml -key contact 2003)
  UAC=(-sf "$SCEN"/uac_caller_bye.xml -key caller +14155550101 -s 2001 -d 3000)
  capture forked u1 pcmu \
    "${INCOMING[@]}" "${ANSWERED[@]}" end_reason=caller_bye agent=2003
}

# ---------------------------------------------------------------- other codecs
# SDP for the codec scenarios (uac_codec*, uas_codec*): the m= line's payload
# types before 101, and their a= lines, CRLF-separated (SIPp inserts keys verbatim).
CRLF=$'\r\n'
SDP_PCMU="a=rtpmap:0 PCMU/8000"
SDP_G722="a=rtpmap:9 G722/8000"
SDP_G729="a=rtpmap:18 G729/8000${CRLF}a=fmtp:18 annexb=no"
SDP_OPUS="a=rtpmap:111 opus/48000/2${CRLF}a=fmtp:111 useinbandfec=1"
CODEC_FACTS=(reference=ffmpeg)

# codec_call NAME CODEC PT SDP RATE: both sides send 3 s of CODEC, caller hangs up
codec_call() {
  local name=$1 codec=$2 pt=$3 sdp=$4 rate=$5 n=$6
  rtp caller.rtp.pcap caller "$codec" 3.0 $(ids "0x1a2b3c$n" "${n}000" "$((n * 160000))")
  rtp callee.rtp.pcap callee "$codec" 3.0 $(ids "0x5e6f7a$n" "$((n + 30))000" "$((n * 1600000))")
  UAS=(-sf "$SCEN"/uas_codec.xml "${UAS_IN[@]}" -key apts "$pt" -key artpmaps "$sdp")
  UAC=(-sf "$SCEN"/uac_codec.xml -key caller +14155550101 -s 2001 -d 3000 -key pts "$pt" -key rtpmaps "$sdp")
  local cname
  cname=$(sed 's/^a=rtpmap:[0-9]* \([^/]*\)\/.*/\1/;q' <<<"$sdp")
  capture "$name" u1 "$codec" \
    "${INCOMING[@]}" "${ANSWERED[@]}" end_reason=caller_bye "${CODEC_FACTS[@]}" \
    pts="$pt:$cname" rate="$rate"
}

fx_g722() { codec_call g722 g722 9 "$SDP_G722" 16000 10; }
# Opus is recorded at 16 kHz (rtp::codec::Format::recording_rate)
fx_opus() { codec_call opus opus 111 "$SDP_OPUS" 16000 11; }
fx_g729() { codec_call g729 g729 18 "$SDP_G729" 8000 12; }

fx_codec_change() {
  # PCMU for 1.5 s, then the caller's re-INVITE offers G.722 first and both
  # sides switch; the same SSRC continues with its sequence numbers and RTP
  # clock (and audio position). The file's rate is fixed by the SDP at the
  # first packet (PCMU both ways: 8 kHz), so the G.722 stretch is resampled.
  rtp caller.rtp.pcap caller pcmu 1.5 $(ids 0x1a2b3c13 13000 2080000)
  rtp caller2.rtp.pcap caller g722 1.5 $(ids 0x1a2b3c13 13000 2080000) --start 1.5 --seq-skip 75
  rtp callee.rtp.pcap callee pcmu 1.5 $(ids 0x5e6f7a13 43000 20800000)
  rtp callee2.rtp.pcap callee g722 1.5 $(ids 0x5e6f7a13 43000 20800000) --start 1.5 --seq-skip 75
  UAS=(-sf "$SCEN"/uas_codec_change.xml -key contact 2002 -key apts 0 -key artpmaps "$SDP_PCMU"
    -key apts2 9 -key artpmaps2 "$SDP_G722")
  UAC=(-sf "$SCEN"/uac_codec_change.xml -key caller 2001 -s 2002 -key pts 0 -key rtpmaps "$SDP_PCMU"
    -key pts2 "9 0" -key rtpmaps2 "$SDP_G722$CRLF$SDP_PCMU")
  capture codec_change u1 pcmu \
    "${INTERNAL[@]}" "${ANSWERED[@]}" end_reason=caller_bye reinvite=true "${CODEC_FACTS[@]}" \
    pts=0:PCMU,9:G722 rate=8000
}

fx_mixed_codecs() {
  # each side sends what the other listed first: the caller offers "0 9"
  # (it prefers to receive PCMU), the callee answers "9 0" (it prefers G.722);
  # so the caller sends G.722 and the callee PCMU. The file takes the higher
  # rate of the two first choices, 16 kHz.
  rtp caller.rtp.pcap caller g722 3.0 $(ids 0x1a2b3c14 14000 2240000)
  rtp callee.rtp.pcap callee pcmu 3.0 $(ids 0x5e6f7a14 44000 22400000)
  UAS=(-sf "$SCEN"/uas_codec.xml "${UAS_IN[@]}" -key apts "9 0" -key artpmaps "$SDP_G722$CRLF$SDP_PCMU")
  UAC=(-sf "$SCEN"/uac_codec.xml -key caller +14155550101 -s 2001 -d 3000 -key pts "0 9"
    -key rtpmaps "$SDP_PCMU$CRLF$SDP_G722")
  capture mixed_codecs u1 pcmu \
    "${INCOMING[@]}" "${ANSWERED[@]}" end_reason=caller_bye "${CODEC_FACTS[@]}" \
    pts=0:PCMU,9:G722 rate=16000
}

fx_lossy() {
  # PCMU both ways, 4 s, each stream impaired by its own seeded rule: 3 %
  # dropped, 2 % sent after their successor, 1 % sent twice, up to 15 ms of
  # extra delay. What was done is checked against the capture and kept in
  # _quality for the quality test.
  local imp=(--loss 0.03 --reorder 0.02 --dup 0.01 --jitter-ms 15)
  rtp caller.rtp.pcap caller pcmu 4.0 $(ids 0x1a2b3c15 15000 2400000) "${imp[@]}" --seed 15 \
    --facts "$WORK/caller.impaired.json"
  rtp callee.rtp.pcap callee pcmu 4.0 $(ids 0x5e6f7a15 45000 24000000) "${imp[@]}" --seed 45 \
    --facts "$WORK/callee.impaired.json"
  UAS=(-sf "$SCEN"/uas_answer.xml "${UAS_IN[@]}")
  UAC=(-sf "$SCEN"/uac_caller_bye.xml -key caller +14155550101 -s 2001 -d 4000)
  capture lossy u1 pcmu \
    "${INCOMING[@]}" "${ANSWERED[@]}" end_reason=caller_bye reference=none
}

# SRTP (SDES): no SIPp (it cannot encrypt); srtp-pcap.py writes the whole call
# with its own RFC 3711 implementation, expected.py reads it like the others.
srtp_fixture() { # srtp_fixture NAME RECORDING [srtp-pcap.py args]
  local name=$1 recording=$2
  shift 2
  (cd "$HERE" && python3 srtp-pcap.py --out "$name.pcap" "$@")
  python3 "$HERE/expected.py" --pcap "$HERE/$name.pcap" --out "$HERE/$name.expected.json" \
    --caller-port 6000 --callee-port 6100 codec=pcmu "${INTERNAL[@]}" outcome=answered \
    sip_code=200 end_reason=caller_bye recording="$recording"
}
fx_srtp_sdes() { srtp_fixture srtp_sdes stored --call-id srtp-sdes-80@10.0.0.10; }
fx_srtp_sdes_32_mki() {
  srtp_fixture srtp_sdes_32_mki stored --call-id srtp-sdes-32@10.0.0.10 --answer-tag 2 --mki --seed srtp32
}
fx_srtp_wrong_key() {
  srtp_fixture srtp_wrong_key encrypted --call-id srtp-wrong-key@10.0.0.10 --wrong-keys --seed wrong
}

# A B2BUA's two legs on one PBX media address: two Call-IDs in one capture,
# which expected.py does not do, so the generator writes the records itself.
fx_b2bua_shared_port() {
  (cd "$HERE" && python3 b2bua-pcap.py --out b2bua_shared_port.pcap \
    --expected b2bua_shared_port.expected.json)
}

ALL=(answered_caller_bye answered_callee_bye busy_486 declined_603 no_answer_480 timeout_408
  cancelled cancelled_elsewhere unavailable_503 not_found_404 auth_407_answered early_media
  hold_reinvite tcp pcma dtmf forked g722 opus g729 codec_change mixed_codecs lossy
  srtp_sdes srtp_sdes_32_mki srtp_wrong_key b2bua_shared_port)

want=()
for arg in "$@"; do
  case $arg in
  --audio) make_audio ;;
  *) want+=("$arg") ;;
  esac
done
[[ -f $AUDIO/caller.pcmu && -f $AUDIO/callee.pcmu ]] || make_audio
[[ -f $AUDIO/callee.g729 ]] || make_codec_audio
[[ ${#want[@]} -gt 0 ]] || want=("${ALL[@]}")
for name in "${want[@]}"; do
  declare -F "fx_$name" >/dev/null || { echo "unknown fixture $name" >&2; exit 1; }
  rm -f "$WORK"/*.rtp.pcap "$WORK"/*.impaired.json
  "fx_$name"
done
echo "done: ${want[*]}"
