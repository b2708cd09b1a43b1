//! SRTP decryption (RFC 3711) with libsrtp 2 (Debian `libsrtp2-dev`), the
//! implementation Asterisk, FreeSWITCH and Chromium use.
//!
//! Why not a crate: `webrtc-srtp` is a native implementation tied to the
//! webrtc-rs stack (tokio, its own util crates), and the `libsrtp` /
//! `srtp2-sys` bindings are unmaintained or build libsrtp from a vendored copy
//! with bindgen. libsrtp itself is well kept and already packaged; the five
//! functions used here are declared by hand in [`ffi`].
//!
//! One [`SrtpSession`] decrypts what one sender sends under one SDES key, for
//! any SSRC (`ssrc_any_inbound`). SRTCP is not decrypted (the tracker does not
//! read RTCP contents).

use std::sync::OnceLock;

use crate::sip::sdp::{Crypto, CryptoSuite};

/// The replay window: packets older than this many indices are refused. Wide
/// because captures reorder and may see a packet twice (two capture points).
const REPLAY_WINDOW: std::ffi::c_ulong = 1024;
/// No datagram is larger; also keeps the length inside C's `int`.
const MAX_PACKET: usize = 65_535;

#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpError {
    #[error("libsrtp failed to initialise (status {status})")]
    Init { status: i32 },
    #[error("libsrtp refused the key (status {status})")]
    Create { status: i32 },
    #[error("SRTP authentication failed")]
    AuthFailed,
    #[error("SRTP packet replayed or too old for the replay window")]
    Replay,
    #[error("SRTP packet of {len} bytes is malformed (status {status})")]
    Malformed { len: usize, status: i32 },
}

impl SrtpError {
    pub fn reason(&self) -> &'static str {
        match self {
            SrtpError::Init { .. } => "srtp_init_failed",
            SrtpError::Create { .. } => "srtp_bad_key",
            SrtpError::AuthFailed => "srtp_auth_failed",
            SrtpError::Replay => "srtp_replay",
            SrtpError::Malformed { .. } => "srtp_malformed",
        }
    }
}

#[allow(non_camel_case_types)]
mod ffi {
    use std::ffi::{c_int, c_uint, c_ulong, c_void};

    pub type srtp_err_status_t = c_int;
    pub const OK: srtp_err_status_t = 0;
    pub const AUTH_FAIL: srtp_err_status_t = 7;
    pub const REPLAY_FAIL: srtp_err_status_t = 9;
    pub const REPLAY_OLD: srtp_err_status_t = 10;
    pub const SSRC_ANY_INBOUND: c_int = 2;

    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    pub struct srtp_crypto_policy_t {
        pub cipher_type: u32,
        pub cipher_key_len: c_int,
        pub auth_type: u32,
        pub auth_key_len: c_int,
        pub auth_tag_len: c_int,
        pub sec_serv: c_int,
    }

    #[repr(C)]
    pub struct srtp_ssrc_t {
        pub type_: c_int,
        pub value: c_uint,
    }

    #[repr(C)]
    pub struct srtp_master_key_t {
        pub key: *mut u8,
        pub mki_id: *mut u8,
        pub mki_size: c_uint,
    }

    /// `srtp_policy_t` of libsrtp 2.x (srtp2/srtp.h).
    #[repr(C)]
    pub struct srtp_policy_t {
        pub ssrc: srtp_ssrc_t,
        pub rtp: srtp_crypto_policy_t,
        pub rtcp: srtp_crypto_policy_t,
        pub key: *mut u8,
        pub keys: *mut *mut srtp_master_key_t,
        pub num_master_keys: c_ulong,
        pub deprecated_ekt: *mut c_void,
        pub window_size: c_ulong,
        pub allow_repeat_tx: c_int,
        pub enc_xtn_hdr: *mut c_int,
        pub enc_xtn_hdr_count: c_int,
        pub next: *mut srtp_policy_t,
    }

    pub enum srtp_ctx_t {}

    #[link(name = "srtp2")]
    extern "C" {
        pub fn srtp_init() -> srtp_err_status_t;
        pub fn srtp_create(
            session: *mut *mut srtp_ctx_t,
            policy: *const srtp_policy_t,
        ) -> srtp_err_status_t;
        pub fn srtp_unprotect_mki(
            ctx: *mut srtp_ctx_t,
            srtp_hdr: *mut c_void,
            len_ptr: *mut c_int,
            use_mki: c_uint,
        ) -> srtp_err_status_t;
        pub fn srtp_dealloc(s: *mut srtp_ctx_t) -> srtp_err_status_t;
        pub fn srtp_crypto_policy_set_rtp_default(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_cm_192_hmac_sha1_32(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_gcm_128_16_auth(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_gcm_256_16_auth(p: *mut srtp_crypto_policy_t);
    }
}

/// libsrtp's crypto kernel is global and must be set up once per process.
fn init() -> Result<(), SrtpError> {
    static INIT: OnceLock<i32> = OnceLock::new();
    // SAFETY: srtp_init takes no arguments; OnceLock runs it exactly once.
    let status = *INIT.get_or_init(|| unsafe { ffi::srtp_init() });
    if status == ffi::OK {
        Ok(())
    } else {
        Err(SrtpError::Init { status })
    }
}

/// (SRTP policy, SRTCP policy): SRTCP always uses an 80-bit tag (RFC 4568 §6.2).
fn policies(suite: CryptoSuite) -> (ffi::srtp_crypto_policy_t, ffi::srtp_crypto_policy_t) {
    type Setter = unsafe extern "C" fn(*mut ffi::srtp_crypto_policy_t);
    let (rtp, rtcp): (Setter, Setter) = match suite {
        CryptoSuite::AesCm128HmacSha1_80 => (
            ffi::srtp_crypto_policy_set_rtp_default,
            ffi::srtp_crypto_policy_set_rtp_default,
        ),
        CryptoSuite::AesCm128HmacSha1_32 => (
            ffi::srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32,
            ffi::srtp_crypto_policy_set_rtp_default,
        ),
        CryptoSuite::AesCm192HmacSha1_80 => (
            ffi::srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80,
            ffi::srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80,
        ),
        CryptoSuite::AesCm192HmacSha1_32 => (
            ffi::srtp_crypto_policy_set_aes_cm_192_hmac_sha1_32,
            ffi::srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80,
        ),
        CryptoSuite::AesCm256HmacSha1_80 => (
            ffi::srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80,
            ffi::srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80,
        ),
        CryptoSuite::AesCm256HmacSha1_32 => (
            ffi::srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32,
            ffi::srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80,
        ),
        CryptoSuite::AeadAes128Gcm => (
            ffi::srtp_crypto_policy_set_aes_gcm_128_16_auth,
            ffi::srtp_crypto_policy_set_aes_gcm_128_16_auth,
        ),
        CryptoSuite::AeadAes256Gcm => (
            ffi::srtp_crypto_policy_set_aes_gcm_256_16_auth,
            ffi::srtp_crypto_policy_set_aes_gcm_256_16_auth,
        ),
    };
    let (mut a, mut b) = (
        ffi::srtp_crypto_policy_t::default(),
        ffi::srtp_crypto_policy_t::default(),
    );
    // SAFETY: the setters only write the struct they are given.
    unsafe {
        rtp(&mut a);
        rtcp(&mut b);
    }
    (a, b)
}

/// A receiving SRTP session for one sender's key; freed on drop.
pub struct SrtpSession {
    ctx: *mut ffi::srtp_ctx_t,
    use_mki: bool,
}

// SAFETY: the session is only touched through `&mut self`, and libsrtp
// sessions have no thread affinity.
unsafe impl Send for SrtpSession {}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession")
            .field("use_mki", &self.use_mki)
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    pub fn new(crypto: &Crypto) -> Result<Self, SrtpError> {
        init()?;
        let (rtp, rtcp) = policies(crypto.suite);
        // libsrtp takes `unsigned char *` but only reads the key while deriving
        // the session keys in srtp_create: a local copy, wiped afterwards.
        let mut key_buf = [0u8; crate::sip::sdp_crypto::MAX_KEY_LEN];
        let key_bytes = crypto.key.as_bytes();
        let Some(dst) = key_buf.get_mut(..key_bytes.len()) else {
            return Err(SrtpError::Create { status: -1 });
        };
        dst.copy_from_slice(key_bytes);
        let mut mki_id = [0u8; 4];
        let mut mki_size = 0;
        if let Some((value, len)) = crypto.mki {
            let len = usize::from(len).min(4);
            mki_id[..len].copy_from_slice(&value.to_be_bytes()[4 - len..]);
            mki_size = len as std::ffi::c_uint;
        }
        let mut master = ffi::srtp_master_key_t {
            key: key_buf.as_mut_ptr(),
            mki_id: mki_id.as_mut_ptr(),
            mki_size,
        };
        let mut master_ptr: *mut ffi::srtp_master_key_t = &mut master;
        let with_mki = crypto.mki.is_some();
        let policy = ffi::srtp_policy_t {
            ssrc: ffi::srtp_ssrc_t {
                type_: ffi::SSRC_ANY_INBOUND,
                value: 0,
            },
            rtp,
            rtcp,
            // Without an MKI, the single key; with one, the key list.
            key: if with_mki {
                std::ptr::null_mut()
            } else {
                key_buf.as_mut_ptr()
            },
            keys: if with_mki {
                &mut master_ptr
            } else {
                std::ptr::null_mut()
            },
            num_master_keys: u32::from(with_mki).into(),
            deprecated_ekt: std::ptr::null_mut(),
            window_size: REPLAY_WINDOW,
            allow_repeat_tx: 0,
            enc_xtn_hdr: std::ptr::null_mut(),
            enc_xtn_hdr_count: 0,
            next: std::ptr::null_mut(),
        };
        let mut ctx: *mut ffi::srtp_ctx_t = std::ptr::null_mut();
        // SAFETY: the policy and the buffers it points to outlive the call;
        // libsrtp copies what it keeps.
        let status = unsafe { ffi::srtp_create(&mut ctx, &policy) };
        for b in key_buf.iter_mut() {
            // SAFETY: a valid exclusive reference; volatile so the wipe stays.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
        if status != ffi::OK || ctx.is_null() {
            return Err(SrtpError::Create { status });
        }
        Ok(SrtpSession {
            ctx,
            use_mki: crypto.mki.is_some(),
        })
    }

    /// Authenticates and decrypts `packet` into `out` (cleared first): a plain
    /// RTP packet, the tag (and MKI) removed.
    pub fn unprotect(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        out.clear();
        let malformed = |status| SrtpError::Malformed {
            len: packet.len(),
            status,
        };
        if packet.len() < 12 || packet.len() > MAX_PACKET {
            return Err(malformed(-1));
        }
        out.extend_from_slice(packet);
        let mut len = i32::try_from(out.len()).map_err(|_| malformed(-1))?;
        // SAFETY: `out` holds `len` initialised bytes; libsrtp reads and
        // writes only within them and reports the shorter plain length.
        let status = unsafe {
            ffi::srtp_unprotect_mki(
                self.ctx,
                out.as_mut_ptr().cast(),
                &mut len,
                u32::from(self.use_mki),
            )
        };
        match status {
            ffi::OK => {
                let len = usize::try_from(len).map_err(|_| malformed(status))?;
                if len > packet.len() || len < 12 {
                    out.clear();
                    return Err(malformed(status));
                }
                out.truncate(len);
                Ok(())
            }
            ffi::AUTH_FAIL => Err(SrtpError::AuthFailed),
            ffi::REPLAY_FAIL | ffi::REPLAY_OLD => Err(SrtpError::Replay),
            status => Err(malformed(status)),
        }
    }
}

impl Drop for SrtpSession {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from srtp_create and is freed exactly once.
        unsafe {
            ffi::srtp_dealloc(self.ctx);
        }
    }
}

#[cfg(test)]
#[path = "tests/srtp.rs"]
mod tests;
