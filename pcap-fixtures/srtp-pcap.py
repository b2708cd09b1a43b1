#!/usr/bin/env python3
"""Write a capture of one SDES-SRTP call (RFC 4568 keys in the SDP, RFC 3711
AES-CM + HMAC-SHA1 media), with SRTP done here, independently of libsrtp.

The call: 2001 (10.0.0.10) calls 2002 (10.0.0.20) directly, both extensions,
answered, caller hangs up. The offer lists two suites (tag 1
AES_CM_128_HMAC_SHA1_80, tag 2 AES_CM_128_HMAC_SHA1_32); the answer picks
`--answer-tag`. Each side encrypts what it sends with the key in its own SDP
(RFC 4568 §6.1). `--wrong-keys` encrypts with other keys than the SDP says
(the recording must then be `encrypted`). `--mki` adds a 2-byte MKI.

Audio: raw G.711 PCMU files (pcap-fixtures/audio/*.pcmu), source sample k at
RTP timestamp ts_base + k, as rtp-pcap.py does.

`--vectors` prints test vectors (key, plain packet, SRTP packet) for the unit
tests instead of writing a capture.
"""

import argparse
import base64
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PTIME = 160
CALLER_IP, CALLEE_IP = (10, 0, 0, 10), (10, 0, 0, 20)
CALLER_SIP, CALLEE_SIP = 5062, 5060
CALLER_RTP, CALLEE_RTP = 6000, 6100
T0 = 1_795_000_000_000_000  # µs


# ---------------------------------------------------------------- RFC 3711
def aes_cm(key, iv16, n):
    """AES in counter mode (RFC 3711 §4.1.1): E(k, IV), E(k, IV+1), ..."""
    enc = Cipher(algorithms.AES(key), modes.CTR(iv16)).encryptor()
    return enc.update(b"\0" * n) + enc.finalize()


def derive(master_key, master_salt, label, n):
    """RFC 3711 §4.3.1 with key_derivation_rate 0: x = (label << 48) XOR salt."""
    x = (label << 48) ^ int.from_bytes(master_salt, "big")
    return aes_cm(master_key, (x << 16).to_bytes(16, "big"), n)


def self_test():
    """RFC 3711 Appendix B.3: the key derivation test vectors."""
    mk = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")
    ms = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")
    assert derive(mk, ms, 0, 16).hex() == "c61e7a93744f39ee10734afe3ff7a087"
    assert derive(mk, ms, 2, 14).hex() == "30cbbc08863d8c85d49db34a9ae1"
    assert derive(mk, ms, 1, 20).hex() == "cebe321f6ff7716b6fd4ab49af256a156d38baa4"


class SrtpSender:
    def __init__(self, key_salt, tag_len, mki=None):
        mk, ms = key_salt[:16], key_salt[16:30]
        self.ke = derive(mk, ms, 0, 16)
        self.ka = derive(mk, ms, 1, 20)
        self.ks = derive(mk, ms, 2, 14)
        self.tag_len = tag_len
        self.mki = mki or b""
        self.roc = 0
        self.last_seq = None

    def protect(self, pkt):
        seq, ssrc = struct.unpack("!H", pkt[2:4])[0], struct.unpack("!I", pkt[8:12])[0]
        if self.last_seq is not None and seq < self.last_seq and self.last_seq - seq > 0x8000:
            self.roc += 1
        self.last_seq = seq
        index = (self.roc << 16) | seq
        iv = (int.from_bytes(self.ks, "big") << 16) ^ (ssrc << 64) ^ (index << 16)
        hdr, payload = pkt[:12], pkt[12:]
        ks = aes_cm(self.ke, iv.to_bytes(16, "big"), len(payload))
        enc = hdr + bytes(a ^ b for a, b in zip(payload, ks))
        tag = hmac.new(self.ka, enc + struct.pack("!I", self.roc), hashlib.sha1).digest()
        return enc + self.mki + tag[: self.tag_len]


# ---------------------------------------------------------------- packets
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


def rtp(seq, ts, ssrc, payload, marker=False):
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0), seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + payload


def sdp(ip, port, cryptos):
    lines = ["v=0", f"o=- 1 1 IN IP4 {ip}", "s=-", f"c=IN IP4 {ip}", "t=0 0",
             f"m=audio {port} RTP/SAVP 0 101", "a=rtpmap:0 PCMU/8000",
             "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"]
    lines += [f"a=crypto:{tag} {suite} inline:{base64.b64encode(k).decode()}{extra}"
              for tag, suite, k, extra in cryptos]
    lines.append("a=sendrecv")
    return "\r\n".join(lines) + "\r\n"


def sip(start, cid, cseq, method, body="", code=None, to_tag=""):
    hdrs = [
        start,
        f"Via: SIP/2.0/UDP 10.0.0.10:{CALLER_SIP};branch=z9hG4bK{cid[:6]}{cseq}{method}",
        "From: <sip:2001@10.0.0.10>;tag=srtpA",
        f"To: <sip:2002@10.0.0.20>{to_tag}",
        f"Call-ID: {cid}",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:2001@10.0.0.10:5062>" if code is None else "Contact: <sip:2002@10.0.0.20>",
    ]
    if body:
        hdrs.append("Content-Type: application/sdp")
    hdrs.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(hdrs) + "\r\n\r\n" + body).encode()


SUITES = {1: ("AES_CM_128_HMAC_SHA1_80", 10), 2: ("AES_CM_128_HMAC_SHA1_32", 4)}


def key(seed):
    return hashlib.sha256(seed.encode()).digest()[:30]


def write_pcap(a):
    caller_src = open(a.caller_audio, "rb").read()
    callee_src = open(a.callee_audio, "rb").read()
    mki_extra, mki = ("|2^31|7:2", b"\x00\x07") if a.mki else ("", None)
    offer = [(t, SUITES[t][0], key(f"{a.seed}-caller-{t}"), mki_extra) for t in (1, 2)]
    answer = [(a.answer_tag, SUITES[a.answer_tag][0], key(f"{a.seed}-callee"), mki_extra)]
    tag_len = SUITES[a.answer_tag][1]
    caller_key = offer[a.answer_tag - 1][2]
    callee_key = answer[0][2]
    if a.wrong_keys:
        caller_key, callee_key = key("not the caller's"), key("not the callee's")
    senders = {"caller": SrtpSender(caller_key, tag_len, mki),
               "callee": SrtpSender(callee_key, tag_len, mki)}

    caller_sip = (CALLER_IP, CALLER_SIP)
    callee_sip = (CALLEE_IP, CALLEE_SIP)
    cid = a.call_id
    frames = []  # (t_us, frame)
    uri = "INVITE sip:2002@10.0.0.20 SIP/2.0"
    frames.append((0, udp_frame(caller_sip, callee_sip,
                                sip(uri, cid, 1, "INVITE", sdp("10.0.0.10", CALLER_RTP, offer)))))
    frames.append((100_000, udp_frame(callee_sip, caller_sip,
                                      sip("SIP/2.0 180 Ringing", cid, 1, "INVITE", code=180,
                                          to_tag=";tag=srtpB"))))
    answered = 800_000
    frames.append((answered, udp_frame(callee_sip, caller_sip,
                                       sip("SIP/2.0 200 OK", cid, 1, "INVITE",
                                           sdp("10.0.0.20", CALLEE_RTP, answer), code=200,
                                           to_tag=";tag=srtpB"))))
    frames.append((answered + 10_000, udp_frame(caller_sip, callee_sip,
                                                sip("ACK sip:2002@10.0.0.20 SIP/2.0", cid, 1,
                                                    "ACK", to_tag=";tag=srtpB"))))
    n = int(a.seconds * 50)
    streams = [("caller", caller_src, (CALLER_IP, CALLER_RTP), (CALLEE_IP, CALLEE_RTP),
                0x5A1E0001, 65500, 160000),  # crosses a sequence wrap: ROC 0 → 1
               ("callee", callee_src, (CALLEE_IP, CALLEE_RTP), (CALLER_IP, CALLER_RTP),
                0x5A1E0002, 20000, 8000000)]
    for who, src, s, d, ssrc, seq0, ts0 in streams:
        for i in range(n):
            off = i * PTIME
            payload = bytes(src[(off + j) % len(src)] for j in range(PTIME))
            pkt = rtp(seq0 + i, ts0 + off, ssrc, payload, i == 0)
            t = answered + 20_000 + i * 20_000 + (3_000 if who == "callee" else 0)
            frames.append((t, udp_frame(s, d, senders[who].protect(pkt))))
    bye = answered + 20_000 + n * 20_000 + 10_000
    frames.append((bye, udp_frame(caller_sip, callee_sip,
                                  sip("BYE sip:2002@10.0.0.20 SIP/2.0", cid, 2, "BYE",
                                      to_tag=";tag=srtpB"))))
    frames.append((bye + 5_000, udp_frame(callee_sip, caller_sip,
                                          sip("SIP/2.0 200 OK", cid, 2, "BYE", code=200,
                                              to_tag=";tag=srtpB"))))
    frames.sort(key=lambda f: f[0])
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for t, fr in frames:
        t += T0
        out += struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(fr), len(fr)) + fr
    with open(a.out, "wb") as f:
        f.write(out)


def vectors():
    """Rust unit-test vectors: (suite, key b64, mki, plain hex, srtp hex)."""
    for tag, mki in ((1, None), (2, None), (1, b"\x00\x07")):
        k = key(f"vector-{tag}-{mki is not None}")
        s = SrtpSender(k, SUITES[tag][1], mki)
        for seq in (65535, 0):  # the second packet is past a wrap (ROC 1)
            plain = rtp(seq, 1234 + seq, 0xDEADBEEF, bytes(range(seq % 7, seq % 7 + 40)))
            print(SUITES[tag][0], base64.b64encode(k).decode(), mki.hex() if mki else "-",
                  plain.hex(), s.protect(plain).hex())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--call-id", default="srtp-sdes-1@10.0.0.10")
    ap.add_argument("--caller-audio", default="audio/caller.pcmu")
    ap.add_argument("--callee-audio", default="audio/callee.pcmu")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--answer-tag", type=int, choices=(1, 2), default=1)
    ap.add_argument("--seed", default="srtp")
    ap.add_argument("--wrong-keys", action="store_true")
    ap.add_argument("--mki", action="store_true")
    ap.add_argument("--vectors", action="store_true")
    a = ap.parse_args()
    self_test()
    if a.vectors:
        return vectors()
    if not a.out:
        raise SystemExit("--out is required")
    write_pcap(a)


if __name__ == "__main__":
    main()
