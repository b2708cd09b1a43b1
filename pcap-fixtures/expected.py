#!/usr/bin/env python3
"""Write <fixture>.expected.json from a capture, independently of pbxbridge.

Times come from the capture through tshark; the facts the scenario decides
(direction, numbers, agent, outcome, ...) come as KEY=VALUE arguments. It also
checks the capture is sane (one Call-ID, the SIP flow the facts claim, RTP both
ways after answer, the DTMF digits) and refuses to write the file otherwise.

Usage: expected.py --pcap F --out F.expected.json --caller-port 6000 --callee-port 6100
                   [--impaired caller=FACTS.json] KEY=VALUE...

Facts for codecs other than G.711: `pts=9:G722,0:PCMU` (the audio payload
types the call uses and the codec name the record must show; the record's
codec is the one of the first audio packet after the answer), `rate=16000`
(the WAV's rate) and `reference=ffmpeg` (the WAV test compares the channels
with an ffmpeg decoding of the captured payloads: `_codec_audio`, instead of
the sox-decoded G.711 source: `_audio`) or `reference=none`.
`--impaired SIDE=FILE` takes what rtp-pcap.py did to a side's stream
(dropped, duplicated, reordered sequence numbers), checks the capture shows
exactly that, and keeps it under `_quality`.
"""

import argparse
import datetime
import json
import subprocess
import sys

DIGITS = "0123456789*#ABCD"
INT_FACTS = {"sip_code"}
BOOL_FACTS = {"answered_elsewhere", "hold", "reinvite"}


def fail(msg):
    sys.exit(f"expected.py: {msg}")


def tshark(pcap, fields, display_filter, extra=()):
    cmd = ["tshark", "-r", pcap, "-n", *extra, "-Y", display_filter, "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=;"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def epoch_us(s):
    """tshark's frame.time_epoch ("1795243305.642132000") as integer microseconds."""
    sec, _, frac = s.partition(".")
    return int(sec) * 1_000_000 + int((frac + "000000")[:6])


def rfc3339(us):
    dt = datetime.datetime.fromtimestamp(us // 1_000_000, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{us % 1_000_000:06d}Z"


def sip_messages(pcap):
    """[(time_us, src_port, kind, method_or_code, cseq_method, call_id)], one per SIP message.

    A TCP segment may carry several messages; the Info column and the
    aggregated CSeq/Call-ID fields list them in the same order."""
    rows = tshark(pcap, ["frame.time_epoch", "udp.srcport", "tcp.srcport", "_ws.col.Info",
                         "sip.CSeq.method", "sip.Call-ID"], "sip")
    msgs = []
    for t, usrc, tsrc, info, cseq_methods, call_ids in rows:
        parts = [p.strip() for p in info.split("|") if p.strip()]
        cseqs = cseq_methods.split(";")
        cids = call_ids.split(";")
        if not (len(parts) == len(cseqs) == len(cids)):
            fail(f"cannot split SIP frame at {t}: {info!r} {cseq_methods!r}")
        for p, cm, cid in zip(parts, cseqs, cids):
            if p.startswith("Request: "):
                kind, what = "req", p.split()[1]
            elif p.startswith("Status: "):
                kind, what = "resp", int(p.split()[1])
            else:
                fail(f"unexpected SIP info {p!r}")
            msgs.append((epoch_us(t), int(usrc or tsrc), kind, what, cm, cid))
    return msgs


def check_impairments(side, want, got):
    """The capture must show exactly what rtp-pcap.py did to the stream."""
    if len(got) != want["sent"]:
        fail(f"{side}: {want['sent']} packets sent, {len(got)} captured")
    # sequence numbers as unwrapped integers (a fixture's stream does not wrap)
    seen, dup, late = set(), [], []
    top = None
    for s in got:
        if s in seen:
            dup.append(s)
        elif top is not None and s < top:
            late.append(s)
        seen.add(s)
        top = s if top is None else max(top, s)
    missing = sorted(set(range(min(got), max(got) + 1)) - seen)
    for what, w, g in (("dropped", want["dropped"], missing), ("duplicated", want["duplicated"], dup),
                       ("reordered", want["reordered"], late)):
        if sorted(w) != sorted(g):
            fail(f"{side}: {what} {sorted(w)} by the generator, {sorted(g)} in the capture")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--caller-port", type=int, required=True, help="caller's RTP port")
    ap.add_argument("--callee-port", type=int, required=True, help="callee's RTP port")
    ap.add_argument("--uas-sip-port", type=int, default=5060)
    ap.add_argument("--impaired", action="append", default=[], help="SIDE=FILE (rtp-pcap.py --facts)")
    ap.add_argument("facts", nargs="*", help="KEY=VALUE")
    a = ap.parse_args()

    facts = {"answered_elsewhere": False, "dtmf": "", "hold": False}
    for kv in a.facts:
        k, _, v = kv.partition("=")
        if k in INT_FACTS:
            facts[k] = int(v)
        elif k in BOOL_FACTS:
            facts[k] = v == "true"
        else:
            facts[k] = None if v == "null" else v

    msgs = sip_messages(a.pcap)
    call_ids = sorted({m[5] for m in msgs})
    if len(call_ids) != 1:
        fail(f"expected one Call-ID, got {call_ids}")
    invites = [m for m in msgs if m[2] == "req" and m[3] == "INVITE"]
    if not invites:
        fail("no INVITE")
    started = invites[0][0]
    ok = [m for m in msgs if m[2] == "resp" and 200 <= m[3] < 300 and m[4] == "INVITE"]
    answered = ok[0][0] if ok else None
    finals = [m for m in msgs if m[2] == "resp" and m[3] >= 300 and m[3] not in (401, 407) and m[4] == "INVITE"]
    cancels = [m for m in msgs if m[2] == "req" and m[3] == "CANCEL"]
    byes = [m for m in msgs if m[2] == "req" and m[3] == "BYE"]

    if answered is not None:
        if not byes:
            fail("answered but no BYE")
        ended = byes[0][0]
        sip_code = 200
        end_reason = "callee_bye" if byes[0][1] == a.uas_sip_port else "caller_bye"
    elif cancels:
        ended = cancels[0][0]
        sip_code = finals[-1][3] if finals else None
        end_reason = "cancel"
    elif finals:
        ended = finals[0][0]
        sip_code = finals[0][3]
        end_reason = "rejected"
    else:
        fail("call neither answered, cancelled nor rejected")

    # the scenario's claims must agree with the capture
    for k, v in (("sip_code", sip_code), ("end_reason", end_reason)):
        if facts.get(k) != v:
            fail(f"{k}: facts say {facts.get(k)!r}, capture says {v!r}")
    if (facts["outcome"] == "answered") != (answered is not None):
        fail(f"outcome {facts['outcome']} but answered={answered}")
    if facts["answered_elsewhere"] and not cancels:
        fail("answered_elsewhere without a CANCEL")
    if len(invites) > 1 and not (facts["hold"] or facts.get("reinvite")):
        codes = [m[3] for m in msgs if m[2] == "resp" and m[4] == "INVITE"]
        if 407 not in codes and 401 not in codes:
            fail("several INVITEs without a challenge or hold")

    duration = (ended - answered) / 1e6 if answered is not None else 0.0
    call = {
        "call_id": call_ids[0],
        "direction": facts["direction"],
        "from_number": facts["from_number"],
        "to_number": facts["to_number"],
        "from_raw": facts["from_raw"],
        "to_raw": facts["to_raw"],
        "agent": facts["agent"],
        "started_at": rfc3339(started),
        "answered_at": rfc3339(answered) if answered is not None else None,
        "ended_at": rfc3339(ended),
        "duration": round(duration, 6),
        "outcome": facts["outcome"],
        "sip_code": sip_code,
        "end_reason": end_reason,
        "answered_elsewhere": facts["answered_elsewhere"],
        "dtmf": facts["dtmf"],
    }

    codec = facts.get("codec", "pcmu")
    pts = facts.get("pts") or ("8:PCMA" if codec == "pcma" else "0:PCMU")
    pt_names = {p: n for p, _, n in (x.partition(":") for x in pts.split(","))}
    rate = int(facts.get("rate", 8000))
    reference = facts.get("reference", "sox")
    rtp_rows = tshark(a.pcap, ["frame.time_epoch", "udp.srcport", "rtp.p_type", "rtp.timestamp",
                               "rtpevent.event_id", "rtpevent.end_of_event", "rtp.seq"], "rtp",
                      extra=["-d", f"udp.port=={a.caller_port},rtp", "-d", f"udp.port=={a.callee_port},rtp"])
    sides = {"left": a.caller_port, "right": a.callee_port}
    pkts = {s: [(epoch_us(r[0]), int(r[3])) for r in rtp_rows if int(r[1]) == p and r[2] in pt_names]
            for s, p in sides.items()}
    seqs = {s: [int(r[6]) for r in rtp_rows if int(r[1]) == p and r[2] in pt_names]
            for s, p in sides.items()}

    if facts["recording"] == "stored":
        audio = {}
        for side in ("left", "right"):
            talk = [x for x in pkts[side] if answered <= x[0] < ended]
            if len(talk) < 50:
                fail(f"{side}: only {len(talk)} RTP packets during the talk time")
        after = [r for r in rtp_rows if r[2] in pt_names and epoch_us(r[0]) >= answered]
        first_codec = pt_names[after[0][2]]
    if facts["recording"] == "stored" and reference == "sox":
        for side, name in (("left", "caller"), ("right", "callee")):
            p = pkts[side]
            talk = [x for x in p if answered <= x[0] < ended]
            audio[side] = f"audio/{name}.{codec}.s16"
            # the generator puts source sample k at RTP timestamp first_ts + k
            audio[f"{side}_start"] = (talk[0][1] - p[0][1]) % (1 << 32)
            gaps = []
            for (t0, _), (t1, _) in zip(talk, talk[1:]):
                if t1 - t0 > 100_000:
                    gaps.append([round((t0 + 20_000 - answered) * 8000 / 1e6),
                                 round((t1 - answered) * 8000 / 1e6)])
            if gaps:
                audio[f"{side}_gaps"] = gaps
        if facts["hold"] and "right_gaps" not in audio:
            fail("hold fixture without a gap in the callee's audio")
        call["_audio"] = audio
    elif facts["recording"] == "stored" and reference == "ffmpeg":
        call["_codec_audio"] = {"caller_port": a.caller_port, "callee_port": a.callee_port,
                                "payload_types": {p: n for p, n in pt_names.items()}}
    if facts["recording"] == "stored":
        call["recording"] = {
            "status": "stored",
            "codec": first_codec,
            "sample_rate": rate,
            "channels": 2,
            "samples": round(duration * rate),
        }
        for k in ("_audio", "_codec_audio"):  # after "recording", as always
            if k in call:
                call[k] = call.pop(k)
    elif facts["recording"] == "encrypted":
        # SRTP whose keys the SDP does not give (or gives wrong): no audio.
        if not all(len(p) >= 50 for p in pkts.values()):
            fail("encrypted fixture without (S)RTP both ways")
        call["recording"] = {"status": "encrypted"}
    else:
        late = [x for s in pkts.values() for x in s]
        if late:
            fail(f"RTP in a call that was never answered: {len(late)} packets")
        call["recording"] = {"status": "none"}

    quality = {}
    for arg in a.impaired:
        side, _, path = arg.partition("=")
        port = {"caller": a.caller_port, "callee": a.callee_port}[side]
        want = json.load(open(path))
        got = [int(r[6]) for r in rtp_rows if int(r[1]) == port and r[2] in pt_names]
        check_impairments(side, want, got)
        quality[side] = {k: want[k] for k in ("dropped", "duplicated", "reordered")}
        quality[side]["packets"] = len(got)
    if quality:
        call["_quality"] = quality

    # DTMF: one event per distinct RTP timestamp among the caller's telephone-event packets
    events, seen = [], set()
    for r in rtp_rows:
        if int(r[1]) == a.caller_port and r[4]:
            if r[3] not in seen:
                seen.add(r[3])
                events.append(DIGITS[int(r[4])])
    if "".join(events) != facts["dtmf"]:
        fail(f"DTMF in capture {''.join(events)!r} != {facts['dtmf']!r}")

    with open(a.out, "w") as f:
        json.dump([call], f, indent=2)
        f.write("\n")
    print(f"  {call['call_id']}: {call['outcome']} {sip_code} {end_reason} "
          f"duration={call['duration']} rtp caller={len(pkts['left'])} callee={len(pkts['right'])}"
          + (f" dtmf={''.join(events)}" if events else ""))


if __name__ == "__main__":
    main()
