#!/usr/bin/env python3
"""Write a capture of a B2BUA call whose two legs share one PBX media address,
and its expected records.

Leg A: phone A (2001, 10.0.0.10) calls the PBX (10.0.0.1); leg B: the PBX calls
phone B (10.0.0.20) with 2001's caller ID. The PBX answers leg A and offers
leg B the same RTP address, 10.0.0.1:10000, and relays the audio: A's audio
(audio/caller.pcmu) goes A → PBX → B, B's (audio/callee.pcmu) B → PBX → A,
each relay with its own SSRC, sequence and timestamps. Phone A hangs up; the
PBX then hangs up leg B. Every time and fact is decided here, so the expected
records are written here too (as expected.py would for one call): leg A's
WAV must be A | B, leg B's A (relayed) | B.

Usage: b2bua-pcap.py --out b2bua_shared_port.pcap --expected b2bua_shared_port.expected.json
"""

import argparse
import datetime
import json
import struct

PTIME = 160
PHONE_A, PHONE_B, PBX = (10, 0, 0, 10), (10, 0, 0, 20), (10, 0, 0, 1)
A_SIP, B_SIP, PBX_SIP = (PHONE_A, 5062), (PHONE_B, 5060), (PBX, 5060)
A_RTP, B_RTP, PBX_RTP = (PHONE_A, 4000), (PHONE_B, 4002), (PBX, 10000)
T0 = 1_795_100_000_000_000  # µs


def checksum(b):
    s = sum((b[i] << 8) | b[i + 1] for i in range(0, len(b) - 1, 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def udp_frame(src, dst, payload):
    (sip, sport), (dip, dport) = src, dst
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                      bytes(sip), bytes(dip))
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return b"\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x01\x08\x00" + hdr + udp


def ip(a):
    return ".".join(map(str, a))


def sdp(addr):
    (a, port) = addr
    return "\r\n".join(["v=0", f"o=- 1 1 IN IP4 {ip(a)}", "s=-", f"c=IN IP4 {ip(a)}", "t=0 0",
                        f"m=audio {port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=sendrecv"]) + "\r\n"


def sip(start, leg, cseq, method, body="", to_tag=""):
    hdrs = [start,
            f"Via: SIP/2.0/UDP {ip(leg['caller'][0])}:{leg['caller'][1]};branch=z9hG4bK{leg['cid'][:4]}{cseq}{method}",
            f"From: <sip:2001@{ip(leg['caller'][0])}>;tag={leg['cid'][:4]}F",
            f"To: <sip:2002@{ip(leg['callee'][0])}>{to_tag}",
            f"Call-ID: {leg['cid']}", f"CSeq: {cseq} {method}",
            f"Contact: <sip:x@{ip(leg['caller'][0])}>"]
    if body:
        hdrs.append("Content-Type: application/sdp")
    hdrs.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(hdrs) + "\r\n\r\n" + body).encode()


def rtp(seq, ts, ssrc, payload, marker=False):
    return struct.pack("!BBHII", 0x80, 0x80 if marker else 0, seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + payload


def rfc3339(us):
    dt = datetime.datetime.fromtimestamp(us // 1_000_000, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{us % 1_000_000:06d}Z"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    caller_src = open("audio/caller.pcmu", "rb").read()
    callee_src = open("audio/callee.pcmu", "rb").read()

    legs = {
        "A": {"cid": "b2bA-leg-a@10.0.0.10", "caller": A_SIP, "callee": PBX_SIP,
              "offer": A_RTP, "answer": PBX_RTP, "invite": 0, "answered": 800_000},
        "B": {"cid": "b2bB-leg-b@10.0.0.1", "caller": PBX_SIP, "callee": B_SIP,
              "offer": PBX_RTP, "answer": B_RTP, "invite": 20_000, "answered": 780_000},
    }
    frames = []
    for leg in legs.values():
        c, e, t = leg["caller"], leg["callee"], leg["invite"]
        frames.append((t, udp_frame(c, e, sip("INVITE sip:2002@x SIP/2.0", leg, 1, "INVITE",
                                              sdp(leg["offer"])))))
        frames.append((t + 100_000, udp_frame(e, c, sip("SIP/2.0 180 Ringing", leg, 1, "INVITE",
                                                        to_tag=";tag=T"))))
        frames.append((leg["answered"], udp_frame(e, c, sip("SIP/2.0 200 OK", leg, 1, "INVITE",
                                                            sdp(leg["answer"]), ";tag=T"))))
        frames.append((leg["answered"] + 10_000,
                       udp_frame(c, e, sip("ACK sip:2002@x SIP/2.0", leg, 1, "ACK", to_tag=";tag=T"))))
    start = 820_000
    n = int(a.seconds * 50)
    # (src, dst, audio, ssrc, seq0, ts0, offset µs): each talker, then the PBX's relay
    flows = [(A_RTP, PBX_RTP, caller_src, 0xB2B0000A, 1000, 160000, 0),
             (PBX_RTP, B_RTP, caller_src, 0xB2B0001A, 7000, 480000, 2_000),
             (B_RTP, PBX_RTP, callee_src, 0xB2B0000B, 30000, 8000000, 5_000),
             (PBX_RTP, A_RTP, callee_src, 0xB2B0001B, 44000, 9600000, 7_000)]
    for src, dst, audio, ssrc, seq0, ts0, off in flows:
        for i in range(n):
            o = i * PTIME
            payload = bytes(audio[(o + j) % len(audio)] for j in range(PTIME))
            frames.append((start + i * 20_000 + off, udp_frame(src, dst, rtp(seq0 + i, ts0 + o, ssrc, payload, i == 0))))
    bye_a = start + n * 20_000 + 10_000
    bye_b = bye_a + 5_000
    for leg, t in ((legs["A"], bye_a), (legs["B"], bye_b)):
        c, e = leg["caller"], leg["callee"]
        frames.append((t, udp_frame(c, e, sip("BYE sip:2002@x SIP/2.0", leg, 2, "BYE", to_tag=";tag=T"))))
        frames.append((t + 3_000, udp_frame(e, c, sip("SIP/2.0 200 OK", leg, 2, "BYE", to_tag=";tag=T"))))
        leg["ended"] = t
    frames.sort(key=lambda f: f[0])
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for t, fr in frames:
        t += T0
        out += struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(fr), len(fr)) + fr
    with open(a.out, "wb") as f:
        f.write(out)

    calls = []
    for leg in legs.values():
        duration = (leg["ended"] - leg["answered"]) / 1e6
        calls.append({
            "call_id": leg["cid"], "direction": "internal",
            "from_number": "2001", "to_number": "2002", "from_raw": "2001", "to_raw": "2002",
            "agent": "2002",
            "started_at": rfc3339(T0 + leg["invite"]),
            "answered_at": rfc3339(T0 + leg["answered"]),
            "ended_at": rfc3339(T0 + leg["ended"]),
            "duration": round(duration, 6),
            "outcome": "answered", "sip_code": 200, "end_reason": "caller_bye",
            "answered_elsewhere": False, "dtmf": "",
            "recording": {"status": "stored", "codec": "PCMU", "sample_rate": 8000,
                          "channels": 2, "samples": round(duration * 8000)},
            # every stream starts after both answers: source offset 0 on both channels
            "_audio": {"left": "audio/caller.pcmu.s16", "left_start": 0,
                       "right": "audio/callee.pcmu.s16", "right_start": 0},
        })
    with open(a.expected, "w") as f:
        json.dump(calls, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
