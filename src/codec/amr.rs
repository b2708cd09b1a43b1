//! AMR (8 kHz) and AMR-WB (16 kHz) through opencore-amr, fed frame by frame
//! in storage format by our RFC 4867 depayloader ([`super::rfc4867`]).

use std::ffi::c_void;
use std::ptr::NonNull;

use super::rfc4867::{AmrPayload, Band, STORAGE_MAX};
use super::{CodecError, DecodeError, Decoder, Format};

/// Hand-written declarations (opencore-amrnb interf_dec.h, opencore-amrwb
/// dec_if.h). Each decode reads one storage-format frame (its length follows
/// from the ToC byte) and writes exactly 160 or 320 samples.
mod ffi {
    use std::ffi::{c_int, c_short, c_uchar, c_void};

    #[link(name = "opencore-amrnb")]
    extern "C" {
        pub fn Decoder_Interface_init() -> *mut c_void;
        pub fn Decoder_Interface_exit(state: *mut c_void);
        pub fn Decoder_Interface_Decode(
            state: *mut c_void,
            input: *const c_uchar,
            out: *mut c_short,
            bfi: c_int,
        );
    }

    #[link(name = "opencore-amrwb")]
    extern "C" {
        pub fn D_IF_init() -> *mut c_void;
        pub fn D_IF_decode(
            state: *mut c_void,
            bits: *const c_uchar,
            synth: *mut c_short,
            bfi: c_int,
        );
        pub fn D_IF_exit(state: *mut c_void);
    }
}

/// Storage ToC byte of a NO_DATA frame: opencore conceals (bad-frame
/// handling, then comfort noise) when it gets one.
const NO_DATA: u8 = (15 << 3) | 0x04;

pub(super) struct Amr {
    state: NonNull<c_void>,
    band: Band,
    octet_aligned: bool,
}

// SAFETY: the state is heap memory owned by this value alone; opencore keeps
// no global state for it.
unsafe impl Send for Amr {}

impl Amr {
    pub fn new(format: &Format, band: Band) -> Result<Amr, CodecError> {
        let (name, rate) = match band {
            Band::Narrow => ("AMR", 8000),
            Band::Wide => ("AMR-WB", 16000),
        };
        if format.channels != 1 || format.clock_rate != rate {
            return Err(CodecError::BadParameters {
                name,
                clock_rate: format.clock_rate,
                channels: format.channels,
            });
        }
        // SAFETY: plain constructors; null on allocation failure.
        let state = unsafe {
            match band {
                Band::Narrow => ffi::Decoder_Interface_init(),
                Band::Wide => ffi::D_IF_init(),
            }
        };
        let state = NonNull::new(state).ok_or(CodecError::Library { name, code: 0 })?;
        Ok(Amr {
            state,
            band,
            octet_aligned: format.octet_aligned,
        })
    }

    fn name(&self) -> &'static str {
        match self.band {
            Band::Narrow => "AMR",
            Band::Wide => "AMR-WB",
        }
    }

    /// Decodes one storage-format frame, whose length the caller built from
    /// its own ToC byte, so opencore reads no further than `frame`.
    fn decode_frame(&mut self, frame: &[u8], out: &mut Vec<i16>) {
        let mut pcm = [0i16; 320];
        let mut buf = [0u8; STORAGE_MAX];
        // opencore reads as many bytes as the ToC says; give it a full-size
        // buffer regardless, so even a short `frame` cannot be over-read.
        let n = frame.len().min(STORAGE_MAX);
        buf[..n].copy_from_slice(&frame[..n]);
        // SAFETY: `buf` holds the largest frame of either codec and `pcm` the
        // 320 samples AMR-WB writes (AMR writes 160).
        unsafe {
            match self.band {
                Band::Narrow => ffi::Decoder_Interface_Decode(
                    self.state.as_ptr(),
                    buf.as_ptr(),
                    pcm.as_mut_ptr(),
                    0,
                ),
                Band::Wide => {
                    ffi::D_IF_decode(self.state.as_ptr(), buf.as_ptr(), pcm.as_mut_ptr(), 0)
                }
            }
        }
        out.extend_from_slice(&pcm[..self.band.frame_samples()]);
    }
}

impl Drop for Amr {
    fn drop(&mut self) {
        // SAFETY: made by the matching init, freed once.
        unsafe {
            match self.band {
                Band::Narrow => ffi::Decoder_Interface_exit(self.state.as_ptr()),
                Band::Wide => ffi::D_IF_exit(self.state.as_ptr()),
            }
        }
    }
}

impl Decoder for Amr {
    fn rate(&self) -> u32 {
        match self.band {
            Band::Narrow => 8000,
            Band::Wide => 16000,
        }
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), DecodeError> {
        let p = AmrPayload::new_checked(payload, self.band, self.octet_aligned).map_err(|_| {
            DecodeError::Malformed {
                codec: self.name(),
                len: payload.len(),
            }
        })?;
        let mut buf = [0u8; STORAGE_MAX];
        for frame in p.frames() {
            let storage = frame.to_storage(&mut buf);
            self.decode_frame(storage, out);
        }
        Ok(())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let end = out.len() + samples;
        let frames = samples.div_ceil(self.band.frame_samples());
        for _ in 0..frames {
            self.decode_frame(&[NO_DATA], out);
        }
        out.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::codec::Codec;

    fn fmt(codec: Codec, rate: u32, oa: bool) -> Format {
        let mut f = Format::plain(codec, rate);
        f.octet_aligned = oa;
        f
    }

    #[test]
    fn frames_decode_to_20ms_each_and_garbage_appends_nothing() {
        for (codec, rate, band) in [
            (Codec::Amr, 8000, Band::Narrow),
            (Codec::AmrWb, 16000, Band::Wide),
        ] {
            let mut d = Amr::new(&fmt(codec, rate, true), band).unwrap();
            let mut out = Vec::new();
            // Three NO_DATA frames in one octet-aligned packet.
            d.decode(&[0xf0, 0xfc, 0xfc, 0x7c], &mut out).unwrap();
            assert_eq!(out.len(), 3 * band.frame_samples());
            // The SID type with its bits (NB 39 → 5 bytes, WB 40 → 5 bytes).
            let sid = if band == Band::Narrow { 8 } else { 9 };
            d.decode(&[0xf0, (sid << 3) | 4, 1, 2, 3, 4, 0], &mut out)
                .unwrap();
            assert_eq!(out.len(), 4 * band.frame_samples());
            for bad in [&[][..], &[0xf0], &[0xf0, 0x3c, 1, 2], &[0xf0, 0x7c, 9]] {
                assert!(d.decode(bad, &mut out).is_err(), "{bad:?}");
            }
            assert_eq!(out.len(), 4 * band.frame_samples());
            d.conceal(100, &mut out);
            assert_eq!(out.len(), 4 * band.frame_samples() + 100);
            assert_eq!(d.rate(), rate);
        }
        assert!(Amr::new(&fmt(Codec::Amr, 16000, false), Band::Narrow).is_err());
    }
}
