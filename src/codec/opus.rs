//! Opus (RFC 7587) through the system libopus.
//!
//! The decoder is created with one channel: libopus mixes a stereo stream down
//! itself (a stream may switch between mono and stereo packets at any time,
//! which a downmix of ours would have to follow). It decodes at the recording
//! rate directly when that is one Opus supports, so no resampler runs after it.

use std::ptr::NonNull;

use super::{CodecError, DecodeError, Decoder, Format};

/// Hand-written declarations for the four functions we call (opus.h, 1.3).
mod ffi {
    use std::ffi::c_int;

    #[repr(C)]
    pub struct OpusDecoder {
        _private: [u8; 0],
    }

    #[link(name = "opus")]
    extern "C" {
        pub fn opus_decoder_create(fs: i32, channels: c_int, error: *mut c_int)
            -> *mut OpusDecoder;
        pub fn opus_decode(
            st: *mut OpusDecoder,
            data: *const u8,
            len: i32,
            pcm: *mut i16,
            frame_size: c_int,
            decode_fec: c_int,
        ) -> c_int;
        pub fn opus_decoder_destroy(st: *mut OpusDecoder);
    }

    pub const OPUS_INVALID_PACKET: c_int = -4;
}

/// Rates libopus decodes at.
const RATES: [u32; 5] = [8000, 12000, 16000, 24000, 48000];
/// The longest Opus packet is 120 ms (RFC 6716 §3.2.5).
const MAX_MS: usize = 120;
/// The largest payload RFC 6716 allows (§3.4 R1 bounds a frame at 1275
/// bytes; six of them with their lengths stay below this).
const MAX_PAYLOAD: usize = 1275 * 6 + 7;

pub(super) struct Opus {
    st: NonNull<ffi::OpusDecoder>,
    rate: u32,
    /// Samples of the last decoded packet: what an empty payload stands for.
    last_samples: usize,
    /// One 120 ms packet at `rate`, reused.
    pcm: Vec<i16>,
}

// SAFETY: the decoder state is heap memory owned by this value alone; libopus
// keeps no thread-local or global state for it.
unsafe impl Send for Opus {}

impl Opus {
    /// `rate` is used when libopus can decode at it, 48 kHz otherwise.
    pub fn new(format: &Format, rate: u32) -> Result<Opus, CodecError> {
        if !(1..=2).contains(&format.channels) {
            return Err(CodecError::BadParameters {
                name: "opus",
                clock_rate: format.clock_rate,
                channels: format.channels,
            });
        }
        let rate = if RATES.contains(&rate) { rate } else { 48000 };
        let mut error = 0;
        // SAFETY: valid rate and channel count; `error` outlives the call.
        let st = unsafe { ffi::opus_decoder_create(rate as i32, 1, &mut error) };
        let st = NonNull::new(st).ok_or(CodecError::Library {
            name: "opus",
            code: error,
        })?;
        Ok(Opus {
            st,
            rate,
            last_samples: rate as usize / 50,
            pcm: vec![0; rate as usize * MAX_MS / 1000],
        })
    }

    /// 2.5 ms at the output rate: libopus conceals in multiples of it.
    fn quantum(&self) -> usize {
        self.rate as usize / 400
    }

    /// Runs opus_decode into `self.pcm`; `frame_size` must fit in it.
    fn run(&mut self, data: Option<&[u8]>, frame_size: usize, fec: bool) -> Result<usize, i32> {
        let frame_size = frame_size.min(self.pcm.len());
        let (ptr, len) = match data {
            Some(d) => (d.as_ptr(), d.len() as i32),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: `ptr`/`len` describe a live slice (or are null/0, libopus'
        // "lost packet"); `pcm` holds `frame_size` samples for one channel.
        let n = unsafe {
            ffi::opus_decode(
                self.st.as_ptr(),
                ptr,
                len,
                self.pcm.as_mut_ptr(),
                frame_size as i32,
                i32::from(fec),
            )
        };
        if n < 0 {
            Err(n)
        } else {
            Ok((n as usize).min(frame_size))
        }
    }

    /// Concealment of `samples`, rounded up to 2.5 ms for libopus and cut
    /// back after, so that no step of silence is heard.
    fn plc(&mut self, samples: usize, out: &mut Vec<i16>) {
        let q = self.quantum();
        let max = self.pcm.len();
        let mut left = samples;
        while left > 0 {
            let chunk = left.div_ceil(q).saturating_mul(q).min(max);
            match self.run(None, chunk, false) {
                Ok(n) => out.extend_from_slice(&self.pcm[..n.min(left)]),
                Err(_) => break,
            }
            left = left.saturating_sub(chunk);
        }
        // Whatever libopus refused is silence, so the timeline stays whole.
        if left > 0 {
            out.resize(out.len() + left, 0);
        }
    }
}

impl Drop for Opus {
    fn drop(&mut self) {
        // SAFETY: created by opus_decoder_create, freed once.
        unsafe { ffi::opus_decoder_destroy(self.st.as_ptr()) }
    }
}

impl Decoder for Opus {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), DecodeError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(DecodeError::Malformed {
                codec: "opus",
                len: payload.len(),
            });
        }
        if payload.is_empty() {
            // libopus would read an empty payload as a loss of the whole
            // buffer (120 ms); a sender that sends one means "nothing this
            // packet", so conceal one packet's worth.
            self.plc(self.last_samples, out);
            return Ok(());
        }
        let max = self.pcm.len();
        match self.run(Some(payload), max, false) {
            Ok(n) => {
                self.last_samples = n;
                out.extend_from_slice(&self.pcm[..n]);
                Ok(())
            }
            Err(ffi::OPUS_INVALID_PACKET) => Err(DecodeError::Malformed {
                codec: "opus",
                len: payload.len(),
            }),
            Err(code) => Err(DecodeError::Library {
                codec: "opus",
                code,
            }),
        }
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.plc(samples, out);
    }

    /// In-band FEC: libopus decodes the lower-rate copy of the lost frame
    /// that `next` carries (and conceals when it carries none).
    fn recover(&mut self, next: &[u8], samples: usize, out: &mut Vec<i16>) {
        if next.is_empty() || next.len() > MAX_PAYLOAD || samples == 0 {
            self.plc(samples, out);
            return;
        }
        let q = self.quantum();
        let want = samples.div_ceil(q).saturating_mul(q);
        // FEC restores at most one packet; anything before it is concealed.
        let fec = want.min(self.pcm.len());
        let before = samples.saturating_sub(fec);
        if before > 0 {
            self.plc(before, out);
        }
        let need = samples - before;
        match self.run(Some(next), fec, true) {
            Ok(n) => {
                let n = n.min(need);
                out.extend_from_slice(&self.pcm[..n]);
                out.resize(out.len() + (need - n), 0);
            }
            Err(_) => self.plc(need, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::codec::Codec;

    fn opus(rate: u32) -> Opus {
        Opus::new(&Format::plain(Codec::Opus, 48000), rate).unwrap()
    }

    #[test]
    fn rate_falls_back_to_48k() {
        assert_eq!(opus(16000).rate(), 16000);
        assert_eq!(opus(8000).rate(), 8000);
        assert_eq!(opus(44100).rate(), 48000);
        let mut f = Format::plain(Codec::Opus, 48000);
        f.channels = 3;
        assert!(Opus::new(&f, 48000).is_err());
    }

    #[test]
    fn dtx_and_toc_only_packets_give_their_duration() {
        let mut d = opus(16000);
        let mut out = Vec::new();
        // TOC 0x08: SILK NB 20 ms, code 0, with an empty frame (DTX).
        d.decode(&[0x08], &mut out).unwrap();
        assert_eq!(out.len(), 320);
        // TOC 0x00 config 0 = SILK NB 10 ms.
        d.decode(&[0x00], &mut out).unwrap();
        assert_eq!(out.len(), 320 + 160);
        // An empty payload stands for one packet like the last one.
        d.decode(&[], &mut out).unwrap();
        assert_eq!(out.len(), 320 + 160 + 160);
    }

    #[test]
    fn conceal_and_recover_give_exact_counts() {
        let mut d = opus(48000);
        let mut out = Vec::new();
        d.conceal(1000, &mut out); // not a multiple of 2.5 ms (120)
        assert_eq!(out.len(), 1000);
        d.conceal(20000, &mut out); // longer than 120 ms
        assert_eq!(out.len(), 21000);
        d.recover(&[0x08], 960, &mut out);
        assert_eq!(out.len(), 21960);
        d.recover(&[0x08], 7000, &mut out);
        assert_eq!(out.len(), 28960);
    }

    #[test]
    fn garbage_is_an_error_and_appends_nothing() {
        let mut d = opus(48000);
        let mut out = Vec::new();
        // Code 3 (arbitrary frame count) with no count byte.
        assert!(d.decode(&[0x03], &mut out).is_err());
        // Code 1 (two equal frames) with an odd remainder of 3 bytes.
        assert!(d.decode(&[0x01, 1, 2, 3], &mut out).is_err());
        // Code 3 with 0 frames.
        assert!(d.decode(&[0x03, 0x00], &mut out).is_err());
        // Code 3 with 49 frames of 20 ms = 980 ms > 120 ms.
        assert!(d.decode(&[0x0b, 49], &mut out).is_err());
        assert!(d.decode(&vec![0u8; MAX_PAYLOAD + 1], &mut out).is_err());
        assert!(out.is_empty());
    }
}
