//! Any bytes as RTP payloads through every decoder `codec::decoder` makes:
//! each payload is decoded or refused (appending nothing), never a panic, and
//! never a read or write out of bounds in the C libraries behind them
//! (SpanDSP, bcg729, ...): the framing checks stand between those and the
//! bytes. Build with `cargo +nightly fuzz run codec_payload` (ASan catches
//! what the C side would do wrong).
//!
//! Input: one byte picks the format; then payloads, each a length byte and
//! that many bytes; the length 0xff stands for a lost packet (conceal).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxbridge::codec::{decoder, Codec, Format};

/// Every format with a decoder, at the clock rates it is met at.
const FORMATS: &[(Codec, u32)] = &[
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

/// Concealment asked for per lost packet: 20 ms at 16 kHz.
const LOST: usize = 320;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let (codec, rate) = FORMATS[usize::from(pick) % FORMATS.len()];
    let mut dec = decoder(&Format::plain(codec, rate), rate).expect("every listed format decodes");
    let mut out = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let before = out.len();
        if len == 0xff {
            dec.conceal(LOST, &mut out);
            assert_eq!(out.len(), before + LOST);
            rest = tail;
            continue;
        }
        let (payload, next) = tail.split_at(usize::from(len).min(tail.len()));
        if dec.decode(payload, &mut out).is_err() {
            assert_eq!(out.len(), before, "{codec:?}: an error appended samples");
        }
        rest = next;
    }
});
