#!/usr/bin/env python3
"""Encode raw 8 kHz 16-bit little-endian mono audio to a G.729 bitstream.

ffmpeg has no G.729 encoder, so this drives Debian's libbcg729 (the codec's
own library, package libbcg729-0) through ctypes: one 10 ms frame of 80
samples in, 10 bytes out (2 bytes for an annex B SID frame, nothing for an
untransmitted frame when VAD is on). The output is the frames back to back,
as ffmpeg's `-f g729` demuxer reads them.

Usage: g729-encode.py IN.s16 OUT.g729 [--vad]
"""

import argparse
import ctypes
import ctypes.util
import sys

FRAME = 80  # samples per 10 ms frame


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--vad", action="store_true", help="annex B: SID frames in silence")
    a = ap.parse_args()

    name = ctypes.util.find_library("bcg729") or "libbcg729.so.0"
    lib = ctypes.CDLL(name)
    lib.initBcg729EncoderChannel.restype = ctypes.c_void_p
    lib.initBcg729EncoderChannel.argtypes = [ctypes.c_uint8]
    lib.bcg729Encoder.restype = None
    lib.bcg729Encoder.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16),
                                  ctypes.POINTER(ctypes.c_uint8), ctypes.POINTER(ctypes.c_uint8)]
    lib.closeBcg729EncoderChannel.restype = None
    lib.closeBcg729EncoderChannel.argtypes = [ctypes.c_void_p]

    raw = open(a.src, "rb").read()
    n = len(raw) // (2 * FRAME)
    if n == 0:
        sys.exit("g729-encode.py: input shorter than one frame")
    ctx = lib.initBcg729EncoderChannel(1 if a.vad else 0)
    if not ctx:
        sys.exit("g729-encode.py: initBcg729EncoderChannel failed")
    pcm = (ctypes.c_int16 * FRAME)()
    buf = (ctypes.c_uint8 * 10)()
    length = ctypes.c_uint8(0)
    out = bytearray()
    try:
        for k in range(n):
            chunk = raw[k * 2 * FRAME:(k + 1) * 2 * FRAME]
            ctypes.memmove(pcm, chunk, 2 * FRAME)
            lib.bcg729Encoder(ctx, pcm, buf, ctypes.byref(length))
            if length.value not in (0, 2, 10):
                sys.exit(f"g729-encode.py: frame {k}: unexpected length {length.value}")
            out += bytes(buf[:length.value])
    finally:
        lib.closeBcg729EncoderChannel(ctx)
    with open(a.out, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
