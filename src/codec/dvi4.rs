//! DVI4, IMA ADPCM as RFC 3551 §4.5.1 packs it, with SpanDSP: every packet
//! starts with the decoder state (predicted sample, big-endian i16; step
//! index 0..=88; a reserved byte), then two 4-bit codes per byte, the first
//! in the high nibble. The header makes each packet decodable on its own, so
//! a loss costs only the lost packet. Any clock rate (8000, 16000, 11025,
//! 22050 are the static ones) is the sample rate.

use std::ffi::c_int;

use super::spandsp::{ffi, Frames, Handle, WithPlc};
use super::{CodecError, DecodeError, Decoder, Format};

const HEADER: usize = 4;
/// The largest step index: IMA's step table has 89 entries.
const MAX_STEP_INDEX: u8 = 88;

pub(super) struct Dvi4 {
    state: Handle,
    rate: u32,
}

pub(super) fn new(format: &Format) -> Result<Box<dyn Decoder>, CodecError> {
    if format.channels != 1 || !(8000..=48000).contains(&format.clock_rate) {
        return Err(CodecError::BadParameters {
            name: "DVI4",
            clock_rate: format.clock_rate,
            channels: format.channels,
        });
    }
    // SAFETY: NULL asks for a fresh state; chunk size 0 makes SpanDSP read
    // the RFC 3551 header at the start of every decode call.
    let ptr = unsafe { ffi::ima_adpcm_init(std::ptr::null_mut(), ffi::IMA_ADPCM_DVI4, 0) };
    let frames = Dvi4 {
        state: Handle::new(ptr, ffi::ima_adpcm_free, "DVI4")?,
        rate: format.clock_rate,
    };
    Ok(Box::new(WithPlc::new(frames)?))
}

impl Frames for Dvi4 {
    fn name(&self) -> &'static str {
        "DVI4"
    }

    fn rate(&self) -> u32 {
        self.rate
    }

    fn samples(&self, payload: &[u8]) -> Result<usize, DecodeError> {
        // SpanDSP reads the header unchecked and indexes its step table with
        // the third byte: both are checked here.
        match payload.get(..HEADER) {
            Some(h) if h[2] <= MAX_STEP_INDEX && payload.len() <= 1 << 24 => {
                Ok((payload.len() - HEADER) * 2)
            }
            _ => Err(DecodeError::Malformed {
                codec: "DVI4",
                len: payload.len(),
            }),
        }
    }

    fn decode_into(&mut self, payload: &[u8], pcm: &mut [i16]) -> c_int {
        debug_assert_eq!(pcm.len(), (payload.len() - HEADER) * 2);
        // SAFETY: `payload` has a header with a valid step index and fits a
        // c_int; `pcm` holds two samples per byte after the header.
        unsafe {
            ffi::ima_adpcm_decode(
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
    use crate::rtp::codec::Codec;

    /// DVI4 packets of `samples` each from SpanDSP's encoder (ffmpeg has no
    /// DVI4 encoder): each starts with the encoder's state.
    fn encode(pcm: &[i16], samples: usize) -> Vec<Vec<u8>> {
        // SAFETY: a fresh DVI4 encoder, freed below; every call reads
        // `samples` (even) samples and writes at most 4 + samples / 2 bytes.
        unsafe {
            let s = ffi::ima_adpcm_init(std::ptr::null_mut(), ffi::IMA_ADPCM_DVI4, 0);
            assert!(!s.is_null());
            let packets = pcm
                .chunks_exact(samples)
                .map(|chunk| {
                    let mut buf = vec![0u8; HEADER + samples / 2];
                    let n = ffi::ima_adpcm_encode(
                        s,
                        buf.as_mut_ptr(),
                        chunk.as_ptr(),
                        samples as c_int,
                    );
                    assert_eq!(n as usize, buf.len());
                    buf
                })
                .collect();
            ffi::ima_adpcm_free(s);
            packets
        }
    }

    /// ffmpeg's IMA decoder for Simon & Schuster's KVAG files
    /// (`adpcm_ima_ssi`: high nibble first, the IMA step arithmetic DVI4
    /// uses, state starting at 0 like a fresh encoder) is the reference: fed
    /// the packets' codes without their headers, as one stream, it must
    /// decode what ours decodes from the packets. Then a packet decoded
    /// alone, by a fresh decoder, must equal its part of the stream: the
    /// header carries the state across a loss.
    #[test]
    fn matches_ffmpeg_and_restarts_from_header() {
        if !have_ffmpeg("dvi4::matches_ffmpeg_and_restarts_from_header") {
            return;
        }
        let speech = speech_8k();
        let packets = encode(&speech, 160);
        let mut kvag = b"KVAG".to_vec();
        let codes: Vec<u8> = packets.iter().flat_map(|p| p[HEADER..].to_vec()).collect();
        kvag.extend_from_slice(&(codes.len() as u32).to_le_bytes());
        kvag.extend_from_slice(&8000u32.to_le_bytes());
        kvag.extend_from_slice(&0u16.to_le_bytes());
        kvag.extend_from_slice(&codes);
        let reference = from_s16le(&ffmpeg(&["-f", "kvag"], &kvag, &["-f", "s16le"]));

        let mut dec = make(Codec::Dvi4, 8000);
        assert_eq!(dec.rate(), 8000);
        let refs: Vec<&[u8]> = packets.iter().map(|p| p.as_slice()).collect();
        let ours = decode_all(dec.as_mut(), &refs);
        assert_eq!(ours.len(), packets.len() * 160);
        assert_eq!(ours.len(), reference.len());
        let c = correlation(&ours, &reference);
        let to_input = correlation(&ours, &speech);
        eprintln!(
            "DVI4 vs ffmpeg adpcm_ima_ssi: {} samples, correlation {c:.6}, max diff {}; \
             vs the input {to_input:.4}",
            ours.len(),
            max_diff(&ours, &reference)
        );
        assert!(c >= 0.99, "correlation {c}");
        assert!(to_input >= 0.9, "correlation with the input {to_input}");

        for k in [1, packets.len() / 2, packets.len() - 1] {
            let alone = decode_all(make(Codec::Dvi4, 8000).as_mut(), &[&packets[k]]);
            assert_eq!(alone, ours[k * 160..(k + 1) * 160], "packet {k}");
        }
    }

    #[test]
    fn any_clock_rate_is_the_sample_rate() {
        for rate in [8000, 11025, 16000, 22050, 48000] {
            assert_eq!(make(Codec::Dvi4, rate).rate(), rate);
        }
        for rate in [4000, 96000] {
            let format = Format::plain(Codec::Dvi4, rate);
            assert!(crate::codec::decoder(&format, rate).is_err());
        }
    }

    #[test]
    fn rejects_short_headers_and_bad_step_index() {
        let mut dec = make(Codec::Dvi4, 8000);
        assert_rejects(
            dec.as_mut(),
            &[
                &[],
                &[0],
                &[0, 0, 0],
                &[0, 0, 89, 0, 0x12],
                &[0x7f, 0xff, 0xff, 0, 0x77],
            ],
        );
        let mut out = Vec::new();
        dec.decode(&[0x01, 0x00, 88, 0], &mut out).unwrap();
        assert!(out.is_empty());
        dec.decode(&[0x01, 0x00, 0, 0, 0x00], &mut out).unwrap();
        // Code 0 adds step/8 (7/8 = 0 at index 0) to the header's 256.
        assert_eq!(out, vec![256, 256]);
    }

    #[test]
    fn conceals_with_plc() {
        let speech = speech_8k();
        let packets = encode(&speech, 160);
        let loudest = (0..packets.len())
            .max_by(|&a, &b| {
                rms(&speech[a * 160..(a + 1) * 160])
                    .total_cmp(&rms(&speech[b * 160..(b + 1) * 160]))
            })
            .unwrap();
        let mut dec = make(Codec::Dvi4, 8000);
        let refs: Vec<&[u8]> = packets[..=loudest].iter().map(|p| p.as_slice()).collect();
        decode_all(dec.as_mut(), &refs);
        assert_conceals(dec.as_mut(), 8000);
    }
}
