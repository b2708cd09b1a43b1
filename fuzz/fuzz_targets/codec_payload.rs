//! Any bytes as RTP payloads for every decoder of `pbxbridge::codec`, and
//! through the RFC 4867 AMR depayloader directly: each payload is decoded or
//! refused (appending nothing), never a panic, and never a read or write out
//! of bounds in the C libraries behind them (the framing checks stand
//! between those and the bytes; ASan catches what the C side would do
//! wrong). The first byte picks the format; the rest is a run of packets,
//! each [len u8][payload], where a zero length means "a packet was lost
//! here" (concealment, or Opus FEC from the next packet).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxbridge::codec::rfc4867::{AmrPayload, Band, STORAGE_MAX};
use pbxbridge::codec::{decoder, Codec, Format};

/// Formats of the SpanDSP/bcg729/G.711/L16 decoders (mono, no fmtp).
const PLAIN: &[(Codec, u32)] = &[
    (Codec::Pcmu, 8000),
    (Codec::L16, 16000),
    (Codec::G722, 8000),
    (
        Codec::G726 {
            kbps: 16,
            aal2: false,
        },
        8000,
    ),
    (
        Codec::G726 {
            kbps: 24,
            aal2: false,
        },
        8000,
    ),
    (
        Codec::G726 {
            kbps: 32,
            aal2: false,
        },
        8000,
    ),
    (
        Codec::G726 {
            kbps: 40,
            aal2: false,
        },
        8000,
    ),
    (
        Codec::G726 {
            kbps: 16,
            aal2: true,
        },
        8000,
    ),
    (
        Codec::G726 {
            kbps: 24,
            aal2: true,
        },
        8000,
    ),
    (
        Codec::G726 {
            kbps: 32,
            aal2: true,
        },
        8000,
    ),
    (
        Codec::G726 {
            kbps: 40,
            aal2: true,
        },
        8000,
    ),
    (Codec::Gsm, 8000),
    (Codec::Dvi4, 8000),
    (Codec::Dvi4, 22050),
    (Codec::G729, 8000),
];

/// Formats with channels and the AMR packing.
const FORMATS: &[(Codec, u32, u8, bool)] = &[
    (Codec::Opus, 48000, 1, false),
    (Codec::Opus, 48000, 2, false),
    (Codec::Amr, 8000, 1, false),
    (Codec::Amr, 8000, 1, true),
    (Codec::AmrWb, 16000, 1, false),
    (Codec::AmrWb, 16000, 1, true),
    (Codec::Speex, 8000, 1, false),
    (Codec::Speex, 16000, 1, false),
    (Codec::Speex, 32000, 1, false),
];

fuzz_target!(|data: &[u8]| {
    for band in [Band::Narrow, Band::Wide] {
        for octet_aligned in [false, true] {
            if let Ok(p) = AmrPayload::new_checked(data, band, octet_aligned) {
                assert!(!p.is_empty() && p.len() <= pbxbridge::codec::rfc4867::MAX_FRAMES);
                assert!(p.cmr() <= 15);
                let mut buf = [0u8; STORAGE_MAX];
                let mut n = 0;
                for f in p.frames() {
                    let s = f.to_storage(&mut buf);
                    assert_eq!(s[0] >> 3, f.ft);
                    n += 1;
                }
                assert_eq!(n, p.len());
            }
        }
    }

    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let i = usize::from(pick) % (PLAIN.len() + FORMATS.len());
    let (codec, clock_rate, channels, octet_aligned) = match PLAIN.get(i) {
        Some(&(codec, clock_rate)) => (codec, clock_rate, 1, false),
        None => FORMATS[i - PLAIN.len()],
    };
    let mut format = Format::plain(codec, clock_rate);
    format.channels = channels;
    format.octet_aligned = octet_aligned;
    let rate = [8000, 16000, 44100, 48000][usize::from(pick >> 6)];
    let mut d = decoder(&format, rate).expect("every listed format has a decoder");
    let mut out = Vec::new();
    let mut lost = false;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        if len == 0 {
            lost = true;
            continue;
        }
        let frame = d.rate() as usize / 50;
        if lost {
            let before = out.len();
            d.recover(payload, frame, &mut out);
            assert_eq!(out.len(), before + frame);
            lost = false;
        }
        let before = out.len();
        if d.decode(payload, &mut out).is_err() {
            assert_eq!(out.len(), before, "an error appends nothing");
        }
        // A decoded packet is never more than 1 s of audio.
        assert!(out.len() - before <= d.rate() as usize);
        out.clear();
    }
    let before = out.len();
    d.conceal(1234, &mut out);
    assert_eq!(out.len(), before + 1234);
});
