//! G.729 and G.729A (one bitstream; annex B silence frames) with bcg729
//! (Debian libbcg729-dev). RFC 3551 §4.5.6: a payload is any number of
//! 10-byte frames of 10 ms, optionally followed by one 2-byte SID frame;
//! bcg729's frame erasure conceals lost packets.

use std::ffi::c_void;
use std::ptr::NonNull;

use super::{CodecError, DecodeError, Decoder, Format};

const FRAME_BYTES: usize = 10;
const SID_BYTES: usize = 2;
const FRAME_SAMPLES: usize = 80;

pub(super) mod ffi {
    //! Hand-written from `/usr/include/bcg729/{decoder,encoder}.h` (1.1.1).
    use std::ffi::c_void;

    #[link(name = "bcg729")]
    extern "C" {
        pub fn initBcg729DecoderChannel() -> *mut c_void;
        pub fn closeBcg729DecoderChannel(ctx: *mut c_void);
        /// Writes 80 samples to `signal`. `bit_stream` may be NULL when
        /// `frame_erasure` is set.
        pub fn bcg729Decoder(
            ctx: *mut c_void,
            bit_stream: *const u8,
            bit_stream_length: u8,
            frame_erasure: u8,
            sid_frame: u8,
            rfc3389_payload: u8,
            signal: *mut i16,
        );
    }

    // The encoder, for the tests' bitstreams (ffmpeg decodes G.729 but
    // cannot encode it).
    #[cfg(test)]
    #[link(name = "bcg729")]
    extern "C" {
        pub fn initBcg729EncoderChannel(enable_vad: u8) -> *mut c_void;
        pub fn closeBcg729EncoderChannel(ctx: *mut c_void);
        /// Reads 80 samples; writes 10 bytes (speech), 2 (SID) or 0 (nothing
        /// to send) and their count.
        pub fn bcg729Encoder(
            ctx: *mut c_void,
            input: *const i16,
            bit_stream: *mut u8,
            bit_stream_length: *mut u8,
        );
    }
}

pub(super) struct G729(NonNull<c_void>);

// SAFETY: bcg729's channel context is plain heap memory owned by this value,
// with no thread affinity; `&mut self` serialises every use.
unsafe impl Send for G729 {}

impl Drop for G729 {
    fn drop(&mut self) {
        // SAFETY: the context came from initBcg729DecoderChannel and is
        // closed once, here.
        unsafe { ffi::closeBcg729DecoderChannel(self.0.as_ptr()) }
    }
}

impl G729 {
    pub(super) fn new(format: &Format) -> Result<G729, CodecError> {
        if format.channels != 1 || format.clock_rate != 8000 {
            return Err(CodecError::BadParameters {
                name: "G729",
                clock_rate: format.clock_rate,
                channels: format.channels,
            });
        }
        // SAFETY: no arguments; NULL on allocation failure.
        let ctx = unsafe { ffi::initBcg729DecoderChannel() };
        NonNull::new(ctx).map(G729).ok_or(CodecError::Library {
            name: "G729",
            code: -1,
        })
    }

    /// Decodes one frame (`Some`: 10 bytes of speech or a 2-byte SID) or
    /// conceals one (`None`), appending 80 samples.
    fn frame(&mut self, frame: Option<&[u8]>, out: &mut Vec<i16>) {
        let start = out.len();
        out.resize(start + FRAME_SAMPLES, 0);
        let (ptr, len, erased, sid) = match frame {
            Some(f) => (f.as_ptr(), f.len() as u8, 0, u8::from(f.len() == SID_BYTES)),
            None => (std::ptr::null(), 0, 1, 0),
        };
        debug_assert!(matches!(len as usize, 0 | SID_BYTES | FRAME_BYTES));
        // SAFETY: `ptr` is NULL only with the erasure flag, else it points
        // at `len` readable bytes (10 or 2, what bcg729 reads for a speech
        // or SID frame); the output has room for the 80 samples it writes.
        unsafe {
            ffi::bcg729Decoder(
                self.0.as_ptr(),
                ptr,
                len,
                erased,
                sid,
                0,
                out[start..].as_mut_ptr(),
            )
        }
    }
}

impl Decoder for G729 {
    fn rate(&self) -> u32 {
        8000
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), DecodeError> {
        let (speech, sid) = match payload.len() % FRAME_BYTES {
            0 => (payload, None),
            SID_BYTES => {
                let (speech, sid) = payload.split_at(payload.len() - SID_BYTES);
                (speech, Some(sid))
            }
            _ => {
                return Err(DecodeError::Malformed {
                    codec: "G729",
                    len: payload.len(),
                })
            }
        };
        out.reserve((speech.len() / FRAME_BYTES + 1) * FRAME_SAMPLES);
        for frame in speech.chunks_exact(FRAME_BYTES) {
            self.frame(Some(frame), out);
        }
        if let Some(sid) = sid {
            self.frame(Some(sid), out);
        }
        Ok(())
    }

    /// bcg729's concealment (G.729 §4.4: the last frame's parameters with
    /// decaying gains), one 10 ms frame at a time; a partial last frame is cut.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let end = out.len() + samples;
        while out.len() < end {
            self.frame(None, out);
        }
        out.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::rtp::codec::Codec;

    /// bcg729's encoder over 10 ms frames: each frame's bytes (10, 2 or 0).
    fn encode(pcm: &[i16], vad: bool) -> Vec<Vec<u8>> {
        // SAFETY: a fresh encoder, closed below; each call reads 80 samples
        // and writes at most 10 bytes and their count.
        unsafe {
            let ctx = ffi::initBcg729EncoderChannel(u8::from(vad));
            assert!(!ctx.is_null());
            let frames = pcm
                .chunks_exact(FRAME_SAMPLES)
                .map(|chunk| {
                    let mut buf = [0u8; FRAME_BYTES];
                    let mut len = 0u8;
                    ffi::bcg729Encoder(ctx, chunk.as_ptr(), buf.as_mut_ptr(), &mut len);
                    buf[..usize::from(len)].to_vec()
                })
                .collect();
            ffi::closeBcg729EncoderChannel(ctx);
            frames
        }
    }

    /// bcg729 encodes the project's speech; ffmpeg's G.729 decoder (an
    /// independent implementation, not bit-exact with bcg729's: different
    /// post-filter arithmetic) decodes the same frames as the reference for
    /// ours, fed 20 ms packets.
    #[test]
    fn matches_ffmpeg() {
        if !have_ffmpeg("g729::matches_ffmpeg") {
            return;
        }
        let frames = encode(&speech_8k(), false);
        assert!(frames.iter().all(|f| f.len() == FRAME_BYTES));
        let bits: Vec<u8> = frames.concat();
        let reference = from_s16le(&ffmpeg(&["-f", "g729"], &bits, &["-f", "s16le"]));
        let mut dec = make(Codec::G729, 8000);
        assert_eq!(dec.rate(), 8000);
        let packets: Vec<&[u8]> = bits.chunks(2 * FRAME_BYTES).collect();
        let ours = decode_all(dec.as_mut(), &packets);
        assert_eq!(ours.len(), frames.len() * FRAME_SAMPLES);
        assert_eq!(ours.len(), reference.len());
        let c = compare("G.729 vs ffmpeg", &ours, &reference);
        assert!(c >= 0.95, "correlation {c}");
        assert!(rms(&ours) > 300.0, "decoded speech is near silent");
    }

    /// With VAD the encoder sends SID frames (2 bytes) and nothing (0 bytes)
    /// in the silence after the speech: a SID gives 10 ms of comfort noise,
    /// an empty payload nothing, a speech frame followed by a SID 20 ms.
    #[test]
    fn annex_b_sid_and_empty_frames() {
        let mut pcm = speech_8k();
        pcm.extend(std::iter::repeat_n(0i16, 8000));
        let frames = encode(&pcm, true);
        let sids = frames.iter().filter(|f| f.len() == SID_BYTES).count();
        let empty = frames.iter().filter(|f| f.is_empty()).count();
        assert!(sids > 0 && empty > 0, "no DTX: {sids} SID, {empty} empty");
        let mut dec = make(Codec::G729, 8000);
        let mut out = Vec::new();
        for f in &frames {
            let before = out.len();
            dec.decode(f, &mut out).unwrap();
            let want = if f.is_empty() { 0 } else { FRAME_SAMPLES };
            assert_eq!(out.len() - before, want, "{}-byte frame", f.len());
        }
        let speech = frames.iter().find(|f| f.len() == FRAME_BYTES).unwrap();
        let sid = frames.iter().find(|f| f.len() == SID_BYTES).unwrap();
        let both = [speech.as_slice(), sid.as_slice()].concat();
        out.clear();
        dec.decode(&both, &mut out).unwrap();
        assert_eq!(out.len(), 2 * FRAME_SAMPLES);
    }

    #[test]
    fn rejects_partial_frames() {
        let mut dec = make(Codec::G729, 8000);
        assert_rejects(
            dec.as_mut(),
            &[&[0], &[0; 3], &[0xff; 9], &[0; 11], &[0; 13], &[0xaa; 25]],
        );
        let mut out = Vec::new();
        dec.decode(&[0x5a; 30], &mut out).unwrap();
        assert_eq!(out.len(), 3 * FRAME_SAMPLES);
    }

    /// Erasure continues the speech (not silence) in whole 10 ms frames;
    /// a count that is not a whole frame is cut to size.
    #[test]
    fn conceals_with_frame_erasure() {
        let speech = speech_8k();
        let frames = encode(&speech, false);
        let loudest = (0..frames.len())
            .max_by(|&a, &b| {
                let f = |i: usize| rms(&speech[i * FRAME_SAMPLES..(i + 1) * FRAME_SAMPLES]);
                f(a).total_cmp(&f(b))
            })
            .unwrap();
        let mut dec = make(Codec::G729, 8000);
        let refs: Vec<&[u8]> = frames[..=loudest].iter().map(|f| f.as_slice()).collect();
        decode_all(dec.as_mut(), &refs);
        let mut out = Vec::new();
        dec.conceal(200, &mut out);
        assert_eq!(out.len(), 200);
        let level = rms(&out[..80]);
        eprintln!(
            "G.729 concealment: first 10 ms rms {level:.0}, last 5 ms {:.0}",
            rms(&out[160..])
        );
        assert!(level > 100.0, "concealment is silent: rms {level}");
    }
}
