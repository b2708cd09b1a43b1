#!/usr/bin/env python3
"""Write an RTP stream as a pcap file for SIPp's `play_pcap_audio`.

SIPp replays the UDP payloads with the pcap's timing and rewrites only the
addresses and ports, so everything an RTP receiver looks at (sequence numbers,
timestamps, SSRC, marker, payload type, RFC 4733 events) is decided here.

The audio is one 20 ms frame per packet, cut from `--audio` by `--codec`:
raw G.711 (160 bytes, one per sample at 8 kHz), raw G.722 (160 bytes: 320
samples at 16 kHz on an 8 kHz RTP clock), G.729 (two 10-byte frames) or the
Opus packets of an Ogg Opus file (RTP clock 48 kHz, 960 ticks per packet).
It is looped when the stream is longer than the file. `--start` lets a
stream continue an earlier one after a pause (hold): timestamp and source
offset advance as if the sender's clock had kept running, while sequence
numbers continue without a gap (`--seq-skip` = packets sent before).

Impairments (`--loss`, `--dup`, `--reorder`, `--jitter-ms`, `--seed`) drop,
duplicate, swap and delay audio packets by a seeded rule: the pcap's timing
carries them, since SIPp replays with it. `--facts` writes the sequence
numbers affected, as the capture must show them, to a JSON file.
"""

import argparse
import json
import random
import struct

# codec: (bytes per 20 ms packet from a raw file, RTP ticks per packet); None = Ogg packets
CODECS = {"pcmu": (160, 160), "pcma": (160, 160), "g722": (160, 160), "g729": (20, 160),
          "opus": (None, 960)}
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


def ogg_packets(data):
    """The packets of an Ogg stream (RFC 3533): pages of lacing values, a
    packet ends at the first lacing value below 255."""
    packets, cur, pos = [], bytearray(), 0
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS":
            raise SystemExit(f"not an Ogg page at byte {pos}")
        nseg = data[pos + 26]
        lacing = data[pos + 27:pos + 27 + nseg]
        body = pos + 27 + nseg
        for lv in lacing:
            cur += data[body:body + lv]
            body += lv
            if lv < 255:
                packets.append(bytes(cur))
                cur = bytearray()
        pos = body
    return packets


def opus_frames(path):
    """The audio packets of an Ogg Opus file (RFC 7845), each checked to be 20 ms."""
    pkts = ogg_packets(open(path, "rb").read())
    if len(pkts) < 3 or not pkts[0].startswith(b"OpusHead") or not pkts[1].startswith(b"OpusTags"):
        raise SystemExit(f"{path}: not an Ogg Opus file")
    audio = pkts[2:]
    for i, p in enumerate(audio):
        # TOC (RFC 6716 §3.1): config 0-11 SILK, 12-15 hybrid, 16-31 CELT; one frame (c=0)
        config, c = p[0] >> 3, p[0] & 3
        ms = ([10, 20, 40, 60] * 3 + [10, 20] * 2 + [2.5, 5, 10, 20] * 4)[config]
        if ms != 20 or c != 0:
            raise SystemExit(f"{path}: packet {i} is not one 20 ms frame (config {config}, c {c})")
    return audio


def payloads(codec, path):
    """payload(k): the k-th 20 ms packet's payload, the file looped."""
    if codec == "opus":
        audio = opus_frames(path)
        return lambda k: audio[k % len(audio)]
    size = CODECS[codec][0]
    data = open(path, "rb").read()
    n = len(data) // size
    if n == 0:
        raise SystemExit(f"{path}: shorter than one packet")
    if codec in ("pcmu", "pcma"):
        # one byte per sample: loop sample by sample, as the G.711 fixtures always have
        return lambda k: bytes(data[(k * size + j) % len(data)] for j in range(size))
    return lambda k: data[(k % n) * size:(k % n + 1) * size]


def impair(pkts, a):
    """Drops, duplicates, swaps and delays audio packets by the seeded rule.

    pkts: [send_us, kind, ts, payload, marker, seq]; returns the list to write,
    in send order, and the facts (sequence numbers as sent)."""
    rng = random.Random(a.seed)
    out, dropped, duplicated, reordered = [], [], [], []
    i = 0
    while i < len(pkts):
        p = list(pkts[i])
        if p[1] == "audio" and 0 < i < len(pkts) - 2:
            r = rng.random()
            if r < a.loss:
                dropped.append(p[5])
                i += 1
                continue
            if r < a.loss + a.reorder and pkts[i + 1][1] == "audio":
                # this packet goes out just after the next one
                nxt = list(pkts[i + 1])
                nxt[0] += rng.randint(0, a.jitter_ms * 1000)
                p[0] = nxt[0] + 2000
                out += [nxt, p]
                reordered.append(p[5])
                i += 2
                continue
            if r < a.loss + a.reorder + a.dup:
                p[0] += rng.randint(0, a.jitter_ms * 1000)
                again = list(p)
                again[0] += 1000
                out += [p, again]
                duplicated.append(p[5])
                i += 1
                continue
            p[0] += rng.randint(0, a.jitter_ms * 1000)
        out.append(p)
        i += 1
    # jitter below 20 ms never swaps packets, so send order is sequence order
    # except where swapped on purpose
    out.sort(key=lambda q: q[0])
    return out, {"dropped": dropped, "duplicated": duplicated, "reordered": reordered}


def rtp(pt, seq, ts, ssrc, payload, marker=False):
    b1 = (0x80 if marker else 0) | pt
    return struct.pack("!BBHII", 0x80, b1, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--audio", required=True, help="the encoded audio (see --codec)")
    ap.add_argument("--codec", choices=sorted(CODECS), help="default: pcmu for pt 0, pcma for pt 8")
    ap.add_argument("--pt", type=int, required=True, help="0 = PCMU, 8 = PCMA, 9 = G722, 18 = G729, ...")
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
    ap.add_argument("--loss", type=float, default=0.0, help="share of audio packets dropped")
    ap.add_argument("--dup", type=float, default=0.0, help="share of audio packets sent twice")
    ap.add_argument("--reorder", type=float, default=0.0, help="share sent after their successor")
    ap.add_argument("--jitter-ms", type=int, default=0, help="extra send delay, uniform 0..N ms (< 20)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--facts", help="write the impairments (sequence numbers) here as JSON")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.jitter_ms >= 20:
        raise SystemExit("--jitter-ms must stay below the 20 ms packet interval")
    codec = a.codec or {0: "pcmu", 8: "pcma"}.get(a.pt)
    if codec is None:
        raise SystemExit(f"--codec needed for pt {a.pt}")
    payload = payloads(codec, a.audio)
    tick = CODECS[codec][1]
    n_audio = int(round(a.duration * 1000 / 20))
    first = int(round(a.start * 1000 / 20))  # sender clock, in packets

    # (send time in µs relative to the pcap start, rtp bytes); sequence numbers later
    pkts = []
    for i in range(n_audio):
        k = first + i
        pkts.append((i * 20000, "audio", a.ts_base + k * tick, payload(k), i == 0))

    # RFC 4733: one event = 5 updates 20 ms apart (100 ms), then the final
    # update sent 3 times with the E bit; all carry the event's start timestamp.
    for n, digit in enumerate(a.dtmf):
        ev = DTMF_EVENTS[digit]
        start_pkt = int(round((a.dtmf_first + n * a.dtmf_gap) * 1000 / 20))
        ts = a.ts_base + (first + start_pkt) * tick
        steps = 5
        for s in range(steps + 2):
            dur = min(s + 1, steps) * tick
            end = s >= steps - 1
            payload = struct.pack("!BBH", ev, (0x80 if end else 0) | 10, dur)
            # 10 ms after the audio packet of the same tick, so both stay in order
            pkts.append(((start_pkt + s) * 20000 + 10000, "event", ts, payload, s == 0))

    pkts.sort(key=lambda p: p[0])
    seq0 = a.seq_base + a.seq_skip
    pkts = [list(p) + [(seq0 + n) & 0xFFFF] for n, p in enumerate(pkts)]
    facts = {}
    if a.loss or a.dup or a.reorder or a.jitter_ms:
        pkts, facts = impair(pkts, a)
    if a.facts:
        facts["sent"] = sum(1 for p in pkts if p[1] == "audio")
        with open(a.facts, "w") as f:
            json.dump(facts, f)
    base_sec = 1700000000
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for t_us, kind, ts, payload, marker, seq in pkts:
        pt = a.pt if kind == "audio" else a.dtmf_pt
        frame = udp_frame(rtp(pt, seq, ts, a.ssrc, payload, marker))
        out += struct.pack("<IIII", base_sec + t_us // 1000000, t_us % 1000000, len(frame), len(frame))
        out += frame
    with open(a.out, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
