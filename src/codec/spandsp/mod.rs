//! SpanDSP (Debian libspandsp-dev 0.0.6): the G.722, G.726, GSM 06.10 and
//! DVI4 decoders, and its generic packet-loss concealer, which stands in for
//! lost packets of all four (none of them has a PLC of its own in SpanDSP).
//!
//! Each codec module checks a payload's length and framing and says how many
//! samples it decodes to ([`Frames::samples`]) before any byte reaches C:
//! SpanDSP itself trusts its input (GSM reads 33 bytes per frame whatever the
//! length, DVI4 indexes its step table with the header's byte).

pub(super) mod ffi;

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;

use super::{CodecError, DecodeError, Decoder};

/// A SpanDSP state allocated by its `*_init(NULL, ...)`, freed on drop.
pub(super) struct Handle {
    ptr: NonNull<c_void>,
    free: unsafe extern "C" fn(*mut c_void) -> c_int,
}

// SAFETY: a SpanDSP state is plain heap memory owned by this handle, with no
// thread affinity; `&mut self` serialises every use.
unsafe impl Send for Handle {}

impl Handle {
    /// Takes ownership of what an init function returned (NULL: it failed).
    pub(super) fn new(
        ptr: *mut c_void,
        free: unsafe extern "C" fn(*mut c_void) -> c_int,
        name: &'static str,
    ) -> Result<Handle, CodecError> {
        NonNull::new(ptr)
            .map(|ptr| Handle { ptr, free })
            .ok_or(CodecError::Library { name, code: -1 })
    }

    pub(super) fn as_ptr(&mut self) -> *mut c_void {
        self.ptr.as_ptr()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from the init function paired with `free` and is
        // freed once, here.
        unsafe {
            (self.free)(self.ptr.as_ptr());
        }
    }
}

/// The length C is told about: a payload or sample block, at most `i32::MAX`.
fn c_len(n: usize) -> c_int {
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

/// SpanDSP's generic concealer (an AMDF pitch estimate, the last pitch
/// period repeated and faded to silence over 50 ms; `spandsp/plc.h`).
pub(super) struct Plc(Handle);

impl Plc {
    pub(super) fn new() -> Result<Plc, CodecError> {
        // SAFETY: NULL asks plc_init to allocate the state.
        let ptr = unsafe { ffi::plc_init(std::ptr::null_mut()) };
        Handle::new(ptr, ffi::plc_free, "plc").map(Plc)
    }

    /// Remembers decoded audio (and blends it in after a concealed gap).
    pub(super) fn rx(&mut self, pcm: &mut [i16]) {
        for chunk in pcm.chunks_mut(1 << 20) {
            // SAFETY: `chunk` is valid for `chunk.len()` samples, read and written.
            unsafe { ffi::plc_rx(self.0.as_ptr(), chunk.as_mut_ptr(), c_len(chunk.len())) };
        }
    }

    /// Fills `pcm` with the continuation of the remembered audio.
    pub(super) fn fill(&mut self, pcm: &mut [i16]) {
        for chunk in pcm.chunks_mut(1 << 20) {
            // SAFETY: `chunk` is valid for `chunk.len()` samples, written.
            unsafe { ffi::plc_fillin(self.0.as_ptr(), chunk.as_mut_ptr(), c_len(chunk.len())) };
        }
    }
}

/// One SpanDSP codec: framing checks and the call into C.
pub(super) trait Frames: Send {
    fn name(&self) -> &'static str;
    fn rate(&self) -> u32;
    /// How many samples `payload` decodes to, or why it is malformed. Only a
    /// payload this accepts is passed to [`Frames::decode_into`].
    fn samples(&self, payload: &[u8]) -> Result<usize, DecodeError>;
    /// Decodes `payload` into `pcm`, which is exactly [`Frames::samples`]
    /// long; returns the library's sample count.
    fn decode_into(&mut self, payload: &[u8], pcm: &mut [i16]) -> c_int;
}

/// A SpanDSP codec with SpanDSP's PLC for lost packets.
pub(super) struct WithPlc<F> {
    frames: F,
    plc: Plc,
}

impl<F: Frames> WithPlc<F> {
    pub(super) fn new(frames: F) -> Result<WithPlc<F>, CodecError> {
        Ok(WithPlc {
            frames,
            plc: Plc::new()?,
        })
    }
}

impl<F: Frames> Decoder for WithPlc<F> {
    fn rate(&self) -> u32 {
        self.frames.rate()
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), DecodeError> {
        let n = self.frames.samples(payload)?;
        if n == 0 {
            return Ok(());
        }
        let start = out.len();
        out.resize(start + n, 0);
        let got = self.frames.decode_into(payload, &mut out[start..]);
        match usize::try_from(got) {
            Ok(got) if got == n => {}
            _ => {
                out.truncate(start);
                return Err(DecodeError::Library {
                    codec: self.frames.name(),
                    code: got,
                });
            }
        }
        self.plc.rx(&mut out[start..]);
        Ok(())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let start = out.len();
        out.resize(start + samples, 0);
        self.plc.fill(&mut out[start..]);
    }
}
