//! Hand-written declarations for the few SpanDSP 0.0.6 functions we call
//! (`/usr/include/spandsp/*.h`; Debian libspandsp-dev). Every state is
//! opaque: each `*_init(NULL, ...)` allocates its own and the matching
//! `*_free` releases it, so no struct layout is copied here.

use std::ffi::{c_int, c_void};

/// `G726_ENCODING_LINEAR`: 16-bit linear samples out.
pub const G726_ENCODING_LINEAR: c_int = 0;
/// `G726_PACKING_LEFT`: first code in the most significant bits (ITU-T I.366.2, AAL2).
pub const G726_PACKING_LEFT: c_int = 1;
/// `G726_PACKING_RIGHT`: first code in the least significant bits (RFC 3551).
pub const G726_PACKING_RIGHT: c_int = 2;
/// `GSM0610_PACKING_VOIP`: 33-byte frames with the 0xD signature (RFC 3551 §4.5.8).
pub const GSM0610_PACKING_VOIP: c_int = 2;
/// `IMA_ADPCM_DVI4`: RFC 3551 DVI4, high nibble first.
pub const IMA_ADPCM_DVI4: c_int = 1;

#[link(name = "spandsp")]
extern "C" {
    pub fn g722_decode_init(s: *mut c_void, rate: c_int, options: c_int) -> *mut c_void;
    pub fn g722_decode_free(s: *mut c_void) -> c_int;
    pub fn g722_decode(s: *mut c_void, amp: *mut i16, data: *const u8, len: c_int) -> c_int;

    pub fn g726_init(
        s: *mut c_void,
        bit_rate: c_int,
        ext_coding: c_int,
        packing: c_int,
    ) -> *mut c_void;
    pub fn g726_free(s: *mut c_void) -> c_int;
    pub fn g726_decode(s: *mut c_void, amp: *mut i16, data: *const u8, bytes: c_int) -> c_int;

    pub fn gsm0610_init(s: *mut c_void, packing: c_int) -> *mut c_void;
    pub fn gsm0610_free(s: *mut c_void) -> c_int;
    pub fn gsm0610_decode(s: *mut c_void, amp: *mut i16, code: *const u8, len: c_int) -> c_int;

    /// `chunk_size` 0: every call is one packet, starting with the DVI4 header.
    pub fn ima_adpcm_init(s: *mut c_void, variant: c_int, chunk_size: c_int) -> *mut c_void;
    pub fn ima_adpcm_free(s: *mut c_void) -> c_int;
    pub fn ima_adpcm_decode(s: *mut c_void, amp: *mut i16, data: *const u8, bytes: c_int) -> c_int;

    pub fn plc_init(s: *mut c_void) -> *mut c_void;
    pub fn plc_free(s: *mut c_void) -> c_int;
    pub fn plc_rx(s: *mut c_void, amp: *mut i16, len: c_int) -> c_int;
    pub fn plc_fillin(s: *mut c_void, amp: *mut i16, len: c_int) -> c_int;
}

// Encoders, for the tests' bitstreams: ffmpeg has no DVI4 encoder, and its
// G.726 at 40 kbit/s disagrees with SpanDSP's.
#[cfg(test)]
#[link(name = "spandsp")]
extern "C" {
    pub fn g726_encode(s: *mut c_void, data: *mut u8, amp: *const i16, len: c_int) -> c_int;
    pub fn ima_adpcm_encode(s: *mut c_void, data: *mut u8, amp: *const i16, len: c_int) -> c_int;
}
