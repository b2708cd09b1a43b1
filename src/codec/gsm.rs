//! GSM 06.10 full rate (RFC 3551 §4.5.8) with SpanDSP: 33-byte frames of
//! 160 samples, any number per packet, each starting with the 0xD signature.

use std::ffi::c_int;

use super::spandsp::{ffi, Frames, Handle, WithPlc};
use super::{CodecError, DecodeError, Decoder, Format};

const FRAME_BYTES: usize = 33;
const FRAME_SAMPLES: usize = 160;

pub(super) struct Gsm(Handle);

pub(super) fn new(format: &Format) -> Result<Box<dyn Decoder>, CodecError> {
    if format.channels != 1 || format.clock_rate != 8000 {
        return Err(CodecError::BadParameters {
            name: "GSM",
            clock_rate: format.clock_rate,
            channels: format.channels,
        });
    }
    // SAFETY: NULL asks for a fresh state; VOIP packing is a valid option.
    let ptr = unsafe { ffi::gsm0610_init(std::ptr::null_mut(), ffi::GSM0610_PACKING_VOIP) };
    let frames = Gsm(Handle::new(ptr, ffi::gsm0610_free, "GSM")?);
    Ok(Box::new(WithPlc::new(frames)?))
}

impl Frames for Gsm {
    fn name(&self) -> &'static str {
        "GSM"
    }

    fn rate(&self) -> u32 {
        8000
    }

    fn samples(&self, payload: &[u8]) -> Result<usize, DecodeError> {
        // SpanDSP reads 33 bytes per frame whatever the length, and ignores
        // the signature; libgsm rejects a frame without it, and so do we: it
        // is how a payload that is not GSM at all shows.
        let whole = payload.len() % FRAME_BYTES == 0 && payload.len() <= 1 << 24;
        if !whole || payload.chunks(FRAME_BYTES).any(|f| f[0] >> 4 != 0xD) {
            return Err(DecodeError::Malformed {
                codec: "GSM",
                len: payload.len(),
            });
        }
        Ok(payload.len() / FRAME_BYTES * FRAME_SAMPLES)
    }

    fn decode_into(&mut self, payload: &[u8], pcm: &mut [i16]) -> c_int {
        debug_assert_eq!(pcm.len(), payload.len() / FRAME_BYTES * FRAME_SAMPLES);
        // SAFETY: `payload` is whole 33-byte frames (so every frame SpanDSP
        // reads is in bounds) and `pcm` holds 160 samples for each.
        unsafe {
            ffi::gsm0610_decode(
                self.0.as_ptr(),
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

    fn encode() -> Vec<u8> {
        let raw = ["-f", "s16le", "-ar", "8000", "-ac", "1"];
        ffmpeg(&raw, &s16le(&speech_8k()), &["-c:a", "libgsm", "-f", "gsm"])
    }

    /// libgsm (through ffmpeg) encodes the project's speech; ffmpeg's own
    /// GSM decoder is the reference for SpanDSP's, fed two frames (40 ms) a
    /// packet. Both are bit-exact GSM 06.10.
    #[test]
    fn matches_ffmpeg() {
        if !have_ffmpeg("gsm::matches_ffmpeg") {
            return;
        }
        let bits = encode();
        assert_eq!(bits.len() % FRAME_BYTES, 0);
        let reference = from_s16le(&ffmpeg(
            &["-f", "gsm", "-c:a", "gsm"],
            &bits,
            &["-f", "s16le"],
        ));
        let mut dec = make(Codec::Gsm, 8000);
        let packets: Vec<&[u8]> = bits.chunks(2 * FRAME_BYTES).collect();
        let ours = decode_all(dec.as_mut(), &packets);
        assert_eq!(ours.len(), bits.len() / FRAME_BYTES * FRAME_SAMPLES);
        assert_eq!(ours.len(), reference.len());
        let c = compare("GSM vs ffmpeg", &ours, &reference);
        assert!(c >= 0.99, "correlation {c}");
        assert!(rms(&ours) > 500.0, "decoded speech is near silent");
    }

    #[test]
    fn rejects_partial_frames_and_missing_signature() {
        let mut dec = make(Codec::Gsm, 8000);
        let mut frame = [0u8; FRAME_BYTES];
        frame[0] = 0xd0;
        let mut two = frame.to_vec();
        two.extend_from_slice(&[0u8; FRAME_BYTES]);
        assert_rejects(
            dec.as_mut(),
            &[
                &frame[..32],
                &[0xd0; 34],
                &[0u8; FRAME_BYTES],
                &two,
                &[0xd5; 1],
            ],
        );
        let mut out = Vec::new();
        dec.decode(&frame, &mut out).unwrap();
        dec.decode(&[], &mut out).unwrap();
        assert_eq!(out.len(), FRAME_SAMPLES);
    }

    #[test]
    fn conceals_with_plc() {
        if !have_ffmpeg("gsm::conceals_with_plc") {
            return;
        }
        let bits = encode();
        let loudest = loudest_packet(&bits, FRAME_BYTES, |p| {
            decode_all(make(Codec::Gsm, 8000).as_mut(), &[p])
        });
        let mut dec = make(Codec::Gsm, 8000);
        let packets: Vec<&[u8]> = bits.chunks(FRAME_BYTES).take(loudest + 1).collect();
        decode_all(dec.as_mut(), &packets);
        assert_conceals(dec.as_mut(), 8000);
    }
}
