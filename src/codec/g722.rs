//! G.722 at 64 kbit/s (RFC 3551 §4.5.2) with SpanDSP: one byte is two
//! samples at 16 kHz, although the RTP clock says 8000 (an RFC 1890 mistake
//! kept for compatibility).

use std::ffi::c_int;

use super::spandsp::{ffi, Frames, Handle, WithPlc};
use super::{CodecError, DecodeError, Decoder, Format};

pub(super) struct G722(Handle);

pub(super) fn new(format: &Format) -> Result<Box<dyn Decoder>, CodecError> {
    if format.channels != 1 {
        return Err(CodecError::BadParameters {
            name: "G722",
            clock_rate: format.clock_rate,
            channels: format.channels,
        });
    }
    // SAFETY: NULL asks for a fresh state; 64000 and no options (16 kHz
    // output, one code per byte) are valid arguments.
    let ptr = unsafe { ffi::g722_decode_init(std::ptr::null_mut(), 64000, 0) };
    let frames = G722(Handle::new(ptr, ffi::g722_decode_free, "G722")?);
    Ok(Box::new(WithPlc::new(frames)?))
}

impl Frames for G722 {
    fn name(&self) -> &'static str {
        "G722"
    }

    fn rate(&self) -> u32 {
        16000
    }

    fn samples(&self, payload: &[u8]) -> Result<usize, DecodeError> {
        // Every byte is a valid pair of codes; only the size is bounded.
        if payload.len() > c_int::MAX as usize / 2 {
            return Err(DecodeError::Malformed {
                codec: "G722",
                len: payload.len(),
            });
        }
        Ok(payload.len() * 2)
    }

    fn decode_into(&mut self, payload: &[u8], pcm: &mut [i16]) -> c_int {
        debug_assert_eq!(pcm.len(), payload.len() * 2);
        // SAFETY: `payload` is readable for its length (checked to fit a
        // c_int) and `pcm` holds the two samples per byte SpanDSP writes.
        unsafe {
            ffi::g722_decode(
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
    use crate::rtp::codec::Codec;

    /// ffmpeg encodes the project's speech (upsampled to 16 kHz) to G.722 and
    /// decodes it again; SpanDSP's decode of the same bits, in 20 ms packets,
    /// must match it (both are bit-exact ITU-T G.722 decoders).
    #[test]
    fn matches_ffmpeg() {
        if !have_ffmpeg("g722::matches_ffmpeg") {
            return;
        }
        let input = s16le(&speech_8k());
        let raw = ["-f", "s16le", "-ar", "8000", "-ac", "1"];
        let bits = ffmpeg(
            &raw,
            &input,
            &["-ar", "16000", "-c:a", "g722", "-f", "g722"],
        );
        let reference = from_s16le(&ffmpeg(&["-f", "g722"], &bits, &["-f", "s16le"]));
        let mut dec = make(Codec::G722, 8000);
        assert_eq!(dec.rate(), 16000);
        let packets: Vec<&[u8]> = bits.chunks(160).collect();
        let ours = decode_all(dec.as_mut(), &packets);
        assert_eq!(ours.len(), bits.len() * 2);
        assert_eq!(ours.len(), reference.len());
        let c = compare("G.722 vs ffmpeg", &ours, &reference);
        assert!(c >= 0.99, "correlation {c}");
        assert!(rms(&ours) > 500.0, "decoded speech is near silent");
    }

    /// Every byte is two valid codes: garbage decodes (to noise) without a
    /// panic, two samples a byte; an empty payload gives nothing.
    #[test]
    fn any_bytes_decode() {
        let mut dec = make(Codec::G722, 8000);
        let mut out = Vec::new();
        dec.decode(&[], &mut out).unwrap();
        assert!(out.is_empty());
        let garbage: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        dec.decode(&garbage, &mut out).unwrap();
        assert_eq!(out.len(), 2000);
    }

    #[test]
    fn conceals_with_plc() {
        if !have_ffmpeg("g722::conceals_with_plc") {
            return;
        }
        let input = s16le(&speech_8k());
        let raw = ["-f", "s16le", "-ar", "8000", "-ac", "1"];
        let bits = ffmpeg(
            &raw,
            &input,
            &["-ar", "16000", "-c:a", "g722", "-f", "g722"],
        );
        let mut dec = make(Codec::G722, 8000);
        let loudest = loudest_packet(&bits, 160, |p| {
            decode_all(make(Codec::G722, 8000).as_mut(), &[p])
        });
        decode_all(
            dec.as_mut(),
            &bits.chunks(160).take(loudest + 1).collect::<Vec<_>>(),
        );
        assert_conceals(dec.as_mut(), 16000);
    }
}
