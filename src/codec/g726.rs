//! G.726 ADPCM at 16, 24, 32 and 40 kbit/s with SpanDSP, in both bit
//! orders: RFC 3551 §4.5.4 (`G726-xx`: the first code in the least
//! significant bits, SpanDSP's `G726_PACKING_RIGHT`, ffmpeg's `g726le`) and
//! ITU-T I.366.2 (`AAL2-G726-xx`: the first code in the most significant
//! bits, `G726_PACKING_LEFT`, ffmpeg's `g726`).

use std::ffi::c_int;

use super::spandsp::{ffi, Frames, Handle, WithPlc};
use super::{Codec, CodecError, DecodeError, Decoder, Format};

pub(super) struct G726 {
    state: Handle,
    name: &'static str,
    /// Bits per code: 2, 3, 4 or 5.
    bits: usize,
}

pub(super) fn new(format: &Format) -> Result<Box<dyn Decoder>, CodecError> {
    let Codec::G726 { kbps, aal2 } = format.codec else {
        return Err(CodecError::Unsupported {
            name: format.codec.name(),
        });
    };
    let name = format.codec.name();
    if format.channels != 1 || format.clock_rate != 8000 || !matches!(kbps, 16 | 24 | 32 | 40) {
        return Err(CodecError::BadParameters {
            name,
            clock_rate: format.clock_rate,
            channels: format.channels,
        });
    }
    let packing = if aal2 {
        ffi::G726_PACKING_LEFT
    } else {
        ffi::G726_PACKING_RIGHT
    };
    // SAFETY: NULL asks for a fresh state; the rate is one SpanDSP knows.
    let ptr = unsafe {
        ffi::g726_init(
            std::ptr::null_mut(),
            c_int::from(kbps) * 1000,
            ffi::G726_ENCODING_LINEAR,
            packing,
        )
    };
    let frames = G726 {
        state: Handle::new(ptr, ffi::g726_free, name)?,
        name,
        bits: usize::from(kbps / 8),
    };
    Ok(Box::new(WithPlc::new(frames)?))
}

impl Frames for G726 {
    fn name(&self) -> &'static str {
        self.name
    }

    fn rate(&self) -> u32 {
        8000
    }

    fn samples(&self, payload: &[u8]) -> Result<usize, DecodeError> {
        // A packet holds whole groups of 8 codes (`bits` bytes), so no code
        // straddles two packets: SpanDSP would carry the leftover bits into
        // the next packet, wrong after a loss. 16 and 32 kbit/s: any length.
        let group = if 8 % self.bits == 0 { 1 } else { self.bits };
        if payload.len() % group != 0 || payload.len() > c_int::MAX as usize / 8 {
            return Err(DecodeError::Malformed {
                codec: self.name,
                len: payload.len(),
            });
        }
        Ok(payload.len() * 8 / self.bits)
    }

    fn decode_into(&mut self, payload: &[u8], pcm: &mut [i16]) -> c_int {
        debug_assert_eq!(pcm.len(), payload.len() * 8 / self.bits);
        // SAFETY: `payload` is readable for its length (it fits a c_int);
        // `pcm` holds one sample per code, which is all SpanDSP writes.
        unsafe {
            ffi::g726_decode(
                self.state.as_ptr(),
                pcm.as_mut_ptr(),
                payload.as_ptr(),
                payload.len() as c_int,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    /// The project's speech through ffmpeg's G.726 encoder: `g726le` for
    /// RFC 3551 packing, `g726` for AAL2.
    fn encode(kbps: u8, aal2: bool) -> Vec<u8> {
        let (codec, fmt) = if aal2 {
            ("g726", "g726")
        } else {
            ("g726le", "g726le")
        };
        let rate = format!("{kbps}k");
        let raw = ["-f", "s16le", "-ar", "8000", "-ac", "1"];
        let out = ["-c:a", codec, "-b:a", &rate, "-f", fmt];
        ffmpeg(&raw, &s16le(&speech_8k()), &out)
    }

    fn ffmpeg_decode(bits: &[u8], kbps: u8, aal2: bool) -> Vec<i16> {
        let code_size = (kbps / 8).to_string();
        let fmt = if aal2 { "g726" } else { "g726le" };
        let input = ["-f", fmt, "-code_size", &code_size, "-sample_rate", "8000"];
        from_s16le(&ffmpeg(&input, bits, &["-f", "s16le"]))
    }

    /// SpanDSP's decode, in 20 ms packets, of what ffmpeg encoded, against
    /// ffmpeg's decode of it, for each rate and packing; and the other
    /// packing must not match (so the two are not swapped). The decoders
    /// are not bit-exact with each other (max difference ~800 of 32767).
    /// 40 kbit/s is left out: there ffmpeg and SpanDSP 0.0.6 disagree (see
    /// `forty_kbps`).
    #[test]
    fn matches_ffmpeg_every_rate_and_packing() {
        if !have_ffmpeg("g726::matches_ffmpeg_every_rate_and_packing") {
            return;
        }
        for kbps in [16u8, 24, 32] {
            for aal2 in [false, true] {
                let bits = encode(kbps, aal2);
                let reference = ffmpeg_decode(&bits, kbps, aal2);
                let mut dec = make(Codec::G726 { kbps, aal2 }, 8000);
                assert_eq!(dec.rate(), 8000);
                let packet = 160 * usize::from(kbps / 8) / 8;
                let whole = bits.len() / packet * packet;
                let packets: Vec<&[u8]> = bits[..whole].chunks(packet).collect();
                let ours = decode_all(dec.as_mut(), &packets);
                assert_eq!(ours.len(), whole * 8 / usize::from(kbps / 8));
                let c = compare(
                    &format!("G.726-{kbps} aal2={aal2} vs ffmpeg"),
                    &ours,
                    &reference,
                );
                assert!(c >= 0.99, "G.726-{kbps} aal2={aal2}: correlation {c}");
                let mut swapped = make(Codec::G726 { kbps, aal2: !aal2 }, 8000);
                let wrong = decode_all(swapped.as_mut(), &packets);
                let w = correlation(&wrong, &reference);
                assert!(w < 0.9, "G.726-{kbps}: the other packing matches too ({w})");
                eprintln!("  the other packing: correlation {w:.3}");
            }
        }
    }

    /// 40 kbit/s: ffmpeg's G.726 is not a reference here. It leaks the
    /// predictor's zeros by 2^-8 at every rate (`b[i] >> 8` in its
    /// `g726_decode`), where G.726's UPB block, Sun's reference code and
    /// SpanDSP use 2^-9 at 40 kbit/s; so its decoder drifts from SpanDSP's on
    /// the same bits (correlation ~0.70 measured) while each decodes its own
    /// encoder's bits well. Checked instead: SpanDSP's encoder to our
    /// decoder, against the input, both packings (the other packing must not
    /// match); the ffmpeg figure is printed, not asserted.
    #[test]
    fn forty_kbps() {
        let speech = speech_8k();
        for aal2 in [false, true] {
            let packing = if aal2 {
                ffi::G726_PACKING_LEFT
            } else {
                ffi::G726_PACKING_RIGHT
            };
            let mut bits = vec![0u8; speech.len() * 5 / 8 + 1];
            // SAFETY: a fresh encoder, freed below; it writes 5 bits a
            // sample, which `bits` has room for.
            let n = unsafe {
                let s = ffi::g726_init(
                    std::ptr::null_mut(),
                    40000,
                    ffi::G726_ENCODING_LINEAR,
                    packing,
                );
                assert!(!s.is_null());
                let n =
                    ffi::g726_encode(s, bits.as_mut_ptr(), speech.as_ptr(), speech.len() as c_int);
                ffi::g726_free(s);
                n as usize
            };
            let whole = n / 100 * 100;
            let packets: Vec<&[u8]> = bits[..whole].chunks(100).collect();
            let ours = decode_all(
                make(Codec::G726 { kbps: 40, aal2 }, 8000).as_mut(),
                &packets,
            );
            let c = correlation(&ours, &speech);
            eprintln!(
                "G.726-40 aal2={aal2}: SpanDSP round trip, correlation with the input {c:.4}"
            );
            assert!(c >= 0.99, "round trip correlation {c}");
            let mut swapped = make(
                Codec::G726 {
                    kbps: 40,
                    aal2: !aal2,
                },
                8000,
            );
            let w = correlation(&decode_all(swapped.as_mut(), &packets), &speech);
            assert!(w < 0.9, "the other packing matches too ({w})");
        }
        if have_ffmpeg("g726::forty_kbps (ffmpeg comparison)") {
            let bits = encode(40, false);
            let whole = bits.len() / 100 * 100;
            let packets: Vec<&[u8]> = bits[..whole].chunks(100).collect();
            let ours = decode_all(
                make(
                    Codec::G726 {
                        kbps: 40,
                        aal2: false,
                    },
                    8000,
                )
                .as_mut(),
                &packets,
            );
            let reference = ffmpeg_decode(&bits, 40, false);
            eprintln!(
                "G.726-40 from ffmpeg: correlation with ffmpeg's decode {:.4}, ffmpeg's with the input {:.4}",
                correlation(&ours, &reference),
                correlation(&reference, &speech)
            );
        }
    }

    #[test]
    fn rejects_partial_code_groups() {
        for (kbps, bad) in [(24u8, &[1usize, 2, 4, 59][..]), (40, &[1, 4, 6, 99][..])] {
            for aal2 in [false, true] {
                let mut dec = make(Codec::G726 { kbps, aal2 }, 8000);
                let payloads: Vec<Vec<u8>> = bad.iter().map(|&n| vec![0x5a; n]).collect();
                let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
                assert_rejects(dec.as_mut(), &refs);
                // Whole groups of garbage decode: 8 codes per group.
                let mut out = Vec::new();
                dec.decode(&vec![0xa5; usize::from(kbps / 8) * 3], &mut out)
                    .unwrap();
                assert_eq!(out.len(), 24);
            }
        }
        let mut dec = make(
            Codec::G726 {
                kbps: 16,
                aal2: false,
            },
            8000,
        );
        let mut out = Vec::new();
        dec.decode(&[0xff, 0x00, 0x12], &mut out).unwrap();
        assert_eq!(out.len(), 12);
        assert!(crate::codec::decoder(
            &Format::plain(
                Codec::G726 {
                    kbps: 32,
                    aal2: false
                },
                16000
            ),
            16000
        )
        .is_err());
    }

    #[test]
    fn conceals_with_plc() {
        if !have_ffmpeg("g726::conceals_with_plc") {
            return;
        }
        let bits = encode(32, false);
        let codec = Codec::G726 {
            kbps: 32,
            aal2: false,
        };
        let loudest = loudest_packet(&bits, 80, |p| decode_all(make(codec, 8000).as_mut(), &[p]));
        let mut dec = make(codec, 8000);
        decode_all(
            dec.as_mut(),
            &bits.chunks(80).take(loudest + 1).collect::<Vec<_>>(),
        );
        assert_conceals(dec.as_mut(), 8000);
    }
}
