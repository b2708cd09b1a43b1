//! Speex (RFC 5574) through the system libspeex: narrowband, wideband or
//! ultra-wideband by the RTP clock rate; one payload may hold several frames,
//! read until libspeex finds the terminator or too few bits.

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;

use super::{CodecError, DecodeError, Decoder, Format};

/// Hand-written declarations (speex.h, speex_bits.h, 1.2).
mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    /// `SpeexBits` as speex_bits.h lays it out; libspeex owns `chars`.
    #[repr(C)]
    pub struct SpeexBits {
        pub chars: *mut c_char,
        pub nb_bits: c_int,
        pub char_ptr: c_int,
        pub bit_ptr: c_int,
        pub owner: c_int,
        pub overflow: c_int,
        pub buf_size: c_int,
        pub reserved1: c_int,
        pub reserved2: *mut c_void,
    }

    #[repr(C)]
    pub struct SpeexMode {
        _private: [u8; 0],
    }

    #[link(name = "speex")]
    extern "C" {
        pub fn speex_lib_get_mode(mode: c_int) -> *const SpeexMode;
        pub fn speex_decoder_init(mode: *const SpeexMode) -> *mut c_void;
        pub fn speex_decoder_destroy(state: *mut c_void);
        pub fn speex_decoder_ctl(state: *mut c_void, request: c_int, ptr: *mut c_void) -> c_int;
        pub fn speex_decode_int(state: *mut c_void, bits: *mut SpeexBits, out: *mut i16) -> c_int;
        pub fn speex_bits_init(bits: *mut SpeexBits);
        pub fn speex_bits_destroy(bits: *mut SpeexBits);
        pub fn speex_bits_read_from(bits: *mut SpeexBits, bytes: *const c_char, len: c_int);
    }

    pub const SPEEX_GET_FRAME_SIZE: c_int = 3;
}

/// Larger than any RTP payload; libspeex copies the payload into its own
/// buffer and grows it, so this bounds that growth.
const MAX_PAYLOAD: usize = 4000;

pub(super) struct Speex {
    state: NonNull<c_void>,
    bits: Box<ffi::SpeexBits>,
    rate: u32,
    frame: usize,
    pcm: Vec<i16>,
}

// SAFETY: the decoder state and the bit buffer are heap memory owned by this
// value alone; libspeex keeps no global state for them.
unsafe impl Send for Speex {}

impl Speex {
    pub fn new(format: &Format) -> Result<Speex, CodecError> {
        let mode = match (format.clock_rate, format.channels) {
            (8000, 1) => 0,
            (16000, 1) => 1,
            (32000, 1) => 2,
            _ => {
                return Err(CodecError::BadParameters {
                    name: "speex",
                    clock_rate: format.clock_rate,
                    channels: format.channels,
                })
            }
        };
        let lib = |code| CodecError::Library {
            name: "speex",
            code,
        };
        // SAFETY: mode ids 0..=2 are the three built-in modes.
        let m = unsafe { ffi::speex_lib_get_mode(mode) };
        if m.is_null() {
            return Err(lib(mode));
        }
        // SAFETY: a valid mode pointer from libspeex.
        let state = NonNull::new(unsafe { ffi::speex_decoder_init(m) }).ok_or(lib(0))?;
        let mut frame: c_int = 0;
        // SAFETY: GET_FRAME_SIZE writes one int.
        unsafe {
            ffi::speex_decoder_ctl(
                state.as_ptr(),
                ffi::SPEEX_GET_FRAME_SIZE,
                (&mut frame as *mut c_int).cast(),
            );
        }
        let mut bits = Box::new(ffi::SpeexBits {
            chars: std::ptr::null_mut(),
            nb_bits: 0,
            char_ptr: 0,
            bit_ptr: 0,
            owner: 0,
            overflow: 0,
            buf_size: 0,
            reserved1: 0,
            reserved2: std::ptr::null_mut(),
        });
        // SAFETY: initialises the struct in place (allocating its buffer).
        unsafe { ffi::speex_bits_init(&mut *bits) };
        let speex = Speex {
            state,
            bits,
            rate: format.clock_rate,
            frame: usize::try_from(frame).unwrap_or(0),
            pcm: Vec::new(),
        };
        if !(80..=640).contains(&speex.frame) {
            return Err(lib(frame));
        }
        Ok(speex)
    }

    /// One frame into `self.pcm`'s tail; libspeex' return code.
    fn decode_one(&mut self, bits: bool) -> c_int {
        let start = self.pcm.len();
        self.pcm.resize(start + self.frame, 0);
        let b: *mut ffi::SpeexBits = if bits {
            &mut *self.bits
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: `pcm` has room for one frame at `start`; `b` is the
        // initialised bit buffer or null (libspeex' packet-loss concealment).
        let r = unsafe {
            ffi::speex_decode_int(self.state.as_ptr(), b, self.pcm[start..].as_mut_ptr())
        };
        if r != 0 {
            self.pcm.truncate(start);
        }
        r
    }
}

impl Drop for Speex {
    fn drop(&mut self) {
        // SAFETY: made by speex_decoder_init / speex_bits_init, freed once.
        unsafe {
            ffi::speex_decoder_destroy(self.state.as_ptr());
            ffi::speex_bits_destroy(&mut *self.bits);
        }
    }
}

impl Decoder for Speex {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), DecodeError> {
        let malformed = DecodeError::Malformed {
            codec: "speex",
            len: payload.len(),
        };
        if payload.is_empty() || payload.len() > MAX_PAYLOAD {
            return Err(malformed);
        }
        // SAFETY: libspeex copies `len` bytes from the live slice.
        unsafe {
            ffi::speex_bits_read_from(
                &mut *self.bits,
                payload.as_ptr().cast(),
                payload.len() as c_int,
            )
        };
        self.pcm.clear();
        loop {
            match self.decode_one(true) {
                0 => {}
                // End of the packet: terminator or fewer than 5 bits left.
                -1 => break,
                code => {
                    return Err(DecodeError::Library {
                        codec: "speex",
                        code,
                    })
                }
            }
            // A frame that read past the payload was made of invented bits.
            // More than 1 s of audio is refused: a 5-bit "silence" frame
            // would let a 1,500-byte packet claim 48 s.
            if self.bits.overflow != 0 || self.pcm.len() > self.rate as usize {
                return Err(malformed);
            }
        }
        if self.pcm.is_empty() {
            return Err(malformed);
        }
        out.extend_from_slice(&self.pcm);
        Ok(())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let end = out.len() + samples;
        while out.len() < end {
            self.pcm.clear();
            if self.decode_one(false) != 0 {
                break;
            }
            let take = self.pcm.len().min(end - out.len());
            out.extend_from_slice(&self.pcm[..take]);
        }
        out.resize(end, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::codec::Codec;

    #[test]
    fn modes_by_rate_and_garbage() {
        for (rate, frame) in [(8000, 160), (16000, 320), (32000, 640)] {
            let mut d = Speex::new(&Format::plain(Codec::Speex, rate)).unwrap();
            assert_eq!((d.rate(), d.frame), (rate, frame));
            let mut out = Vec::new();
            assert!(d.decode(&[], &mut out).is_err());
            // Narrowband mode 15 (terminator) first: no frame at all.
            assert!(d.decode(&[0x7f], &mut out).is_err());
            // One mode-0 ("silence", 5 bits) frame; 3 bits left end it.
            match d.decode(&[0x00], &mut out) {
                Ok(()) => assert_eq!(out.len(), frame),
                Err(e) => assert!(rate != 8000, "{e}"),
            }
            assert!(d.decode(&[0x00], &mut out).is_ok() || rate != 8000);
            out.clear();
            let before = out.len();
            d.conceal(1000, &mut out);
            assert_eq!(out.len(), before + 1000);
        }
        assert!(Speex::new(&Format::plain(Codec::Speex, 44100)).is_err());
    }
}
