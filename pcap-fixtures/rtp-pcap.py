#!/usr/bin/env python3
"""Write an RTP stream as a pcap file for SIPp's `play_pcap_audio`.

SIPp replays the UDP payloads with the pcap's timing and rewrites only the
addresses and ports, so everything an RTP receiver looks at (sequence numbers,
timestamps, SSRC, marker, payload type, RFC 4733 events) is decided here.

The audio file is raw G.711 (one byte per sample at 8 kHz); it is looped
modulo its length when the stream is longer than the file. `--start` lets a
stream continue an earlier one after a pause (hold): timestamp and source
offset advance as if the sender's clock had kept running, while sequence
numbers continue without a gap (`--seq-skip` = packets sent before).
"""

import argparse
import struct

PTIME_SAMPLES = 160  # 20 ms at 8 kHz
DTMF_EVENTS = {str(d): d for d in range(10)}
DTMF_EVENTS.update({"*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15})


def udp_frame(payload):
    """Ethernet/IPv4/UDP around `payload`; SIPp replaces addresses and ports."""
    src_ip, dst_ip = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    udp = struct.pack("!HHHH", 40000, 40002, 8 + len(payload), 0) + payload
    total = 20 + len(udp)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 17, 0, src_ip, dst_ip)
    csum = 0
    for i in range(0, 20, 2):
        csum += (hdr[i] << 8) | hdr[i + 1]
    while csum >> 16:
        csum = (csum & 0xFFFF) + (csum >> 16)
    hdr = hdr[:10] + struct.pack("!H", (~csum) & 0xFFFF) + hdr[12:]
    eth = b"\x00\x00\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + hdr + udp


def rtp(pt, seq, ts, ssrc, payload, marker=False):
    b1 = (0x80 if marker else 0) | pt
    return struct.pack("!BBHII", 0x80, b1, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--audio", required=True, help="raw G.711 file (8 kHz, 1 byte/sample)")
    ap.add_argument("--pt", type=int, required=True, help="0 = PCMU, 8 = PCMA")
    ap.add_argument("--duration", type=float, required=True, help="seconds of audio to send")
    ap.add_argument("--start", type=float, default=0.0, help="sender clock at the first packet (s)")
    ap.add_argument("--seq-skip", type=int, default=0, help="packets sent by the earlier part")
    ap.add_argument("--ssrc", type=lambda s: int(s, 0), required=True)
    ap.add_argument("--seq-base", type=int, default=1000)
    ap.add_argument("--ts-base", type=int, default=160000)
    ap.add_argument("--dtmf", default="", help="RFC 4733 digits, e.g. 123#")
    ap.add_argument("--dtmf-first", type=float, default=0.6, help="first digit at (s, stream time)")
    ap.add_argument("--dtmf-gap", type=float, default=0.4, help="digit start to next digit start (s)")
    ap.add_argument("--dtmf-pt", type=int, default=101)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    audio = open(a.audio, "rb").read()
    if not audio:
        raise SystemExit("empty audio file")
    n_audio = int(round(a.duration * 1000 / 20))
    first = int(round(a.start * 1000 / 20))  # sender clock, in packets

    # (send time in µs relative to the pcap start, rtp bytes); sequence numbers later
    pkts = []
    for i in range(n_audio):
        k = first + i
        off = k * PTIME_SAMPLES
        payload = bytes(audio[(off + j) % len(audio)] for j in range(PTIME_SAMPLES))
        pkts.append((i * 20000, "audio", a.ts_base + off, payload, i == 0))

    # RFC 4733: one event = 5 updates 20 ms apart (100 ms), then the final
    # update sent 3 times with the E bit; all carry the event's start timestamp.
    for n, digit in enumerate(a.dtmf):
        ev = DTMF_EVENTS[digit]
        start_pkt = int(round((a.dtmf_first + n * a.dtmf_gap) * 1000 / 20))
        ts = a.ts_base + (first + start_pkt) * PTIME_SAMPLES
        steps = 5
        for s in range(steps + 2):
            dur = min(s + 1, steps) * PTIME_SAMPLES
            end = s >= steps - 1
            payload = struct.pack("!BBH", ev, (0x80 if end else 0) | 10, dur)
            # 10 ms after the audio packet of the same tick, so both stay in order
            pkts.append(((start_pkt + s) * 20000 + 10000, "event", ts, payload, s == 0))

    pkts.sort(key=lambda p: p[0])
    base_sec = 1700000000
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    seq = a.seq_base + a.seq_skip
    for t_us, kind, ts, payload, marker in pkts:
        pt = a.pt if kind == "audio" else a.dtmf_pt
        frame = udp_frame(rtp(pt, seq, ts, a.ssrc, payload, marker))
        seq += 1
        out += struct.pack("<IIII", base_sec + t_us // 1000000, t_us % 1000000, len(frame), len(frame))
        out += frame
    with open(a.out, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
