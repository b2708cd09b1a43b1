//! SDES keys: the `a=crypto` attribute (RFC 4568 §9.1).
//!
//! `a=crypto:<tag> <crypto-suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<len>] [<session-params>]`
//!
//! Each side's attribute keys the SRTP that side *sends* (RFC 4568 §6.1: "the
//! key ... in the offer is used by the offerer to encrypt the SRTP ... it
//! sends"; the answer's key likewise for the answerer's). Keys are secrets: the
//! `Debug` output never shows them, and their bytes are wiped on drop.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// `a=crypto` lines kept per media section; offers list 1-4 suites.
pub const MAX_CRYPTO: usize = 8;
/// The longest master key + salt (AES-256: 32 + 14).
pub const MAX_KEY_LEN: usize = 46;
/// Longest `inline:` base64 text read (46 bytes are 64 base64 characters).
const MAX_B64_LEN: usize = 64;
/// RFC 4568 allows an MKI of up to 128 bytes; libsrtp and every PBX use 1-4.
pub const MAX_MKI_LEN: u8 = 4;

/// Some PBXs drop the `=` padding of the key; RFC 4568 keeps it. Both decode.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The SRTP crypto suites libsrtp implements (RFC 4568, RFC 6188, RFC 7714).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AesCm192HmacSha1_80,
    AesCm192HmacSha1_32,
    AesCm256HmacSha1_80,
    AesCm256HmacSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
}

impl CryptoSuite {
    pub fn from_name(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"AES_CM_128_HMAC_SHA1_80" => Self::AesCm128HmacSha1_80,
            b"AES_CM_128_HMAC_SHA1_32" => Self::AesCm128HmacSha1_32,
            b"AES_192_CM_HMAC_SHA1_80" => Self::AesCm192HmacSha1_80,
            b"AES_192_CM_HMAC_SHA1_32" => Self::AesCm192HmacSha1_32,
            b"AES_256_CM_HMAC_SHA1_80" => Self::AesCm256HmacSha1_80,
            b"AES_256_CM_HMAC_SHA1_32" => Self::AesCm256HmacSha1_32,
            b"AEAD_AES_128_GCM" => Self::AeadAes128Gcm,
            b"AEAD_AES_256_GCM" => Self::AeadAes256Gcm,
            _ => return None,
        })
    }

    /// Master key and master salt lengths in bytes.
    pub fn key_salt_len(self) -> (usize, usize) {
        match self {
            Self::AesCm128HmacSha1_80 | Self::AesCm128HmacSha1_32 => (16, 14),
            Self::AesCm192HmacSha1_80 | Self::AesCm192HmacSha1_32 => (24, 14),
            Self::AesCm256HmacSha1_80 | Self::AesCm256HmacSha1_32 => (32, 14),
            Self::AeadAes128Gcm => (16, 12),
            Self::AeadAes256Gcm => (32, 12),
        }
    }
}

/// A master key followed by its master salt.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    bytes: [u8; MAX_KEY_LEN],
    len: u8,
}

impl MasterKey {
    pub fn new(key_and_salt: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; MAX_KEY_LEN];
        bytes
            .get_mut(..key_and_salt.len())?
            .copy_from_slice(key_and_salt);
        Some(MasterKey {
            bytes,
            len: u8::try_from(key_and_salt.len()).ok()?,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(<{} bytes redacted>)", self.len)
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        // Volatile so the wipe of a secret is not optimised away as a dead store.
        for b in self.bytes.iter_mut() {
            // SAFETY: `b` is a valid, aligned, exclusive reference.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// One usable `a=crypto` attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: CryptoSuite,
    pub key: MasterKey,
    /// `(value, length in bytes)`: the MKI each packet carries before the tag.
    pub mki: Option<(u32, u8)>,
}

/// Parses the value of `a=crypto:` (after the colon). `None` for what cannot
/// key SRTP here: unknown suites, wrong key lengths, bad base64, session
/// parameters that change the packet format (`UNENCRYPTED_SRTP`,
/// `UNAUTHENTICATED_SRTP`, `KDR`, `FEC_*`, `WSH`), an MKI over 4 bytes.
pub fn parse_crypto(value: &[u8]) -> Option<Crypto> {
    let mut f = value
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|f| !f.is_empty());
    let tag = f.next()?;
    if tag.is_empty() || tag.len() > 9 || !tag.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let tag = std::str::from_utf8(tag).ok()?.parse().ok()?;
    let suite = CryptoSuite::from_name(f.next()?)?;
    // Several key-params (`;`-separated) only come with multiple MKIs: the first is used.
    let key_params = f.next()?.split(|&b| b == b';').next()?;
    if f.next().is_some() {
        // Any session parameter changes how packets are protected; libsrtp's
        // policy here is the RFC's default, so such a key is not used.
        return None;
    }
    let inline = key_params.strip_prefix(b"inline:")?;
    let mut parts = inline.split(|&b| b == b'|');
    let b64 = parts.next()?;
    if b64.is_empty() || b64.len() > MAX_B64_LEN {
        return None;
    }
    let mut buf = [0u8; MAX_B64_LEN];
    let n = B64.decode_slice(b64, &mut buf).ok()?;
    let (klen, slen) = suite.key_salt_len();
    if n != klen + slen {
        return None;
    }
    let key = MasterKey::new(buf.get(..n)?);
    buf.fill(0);
    let key = key?;
    let mut mki = None;
    for p in parts {
        if let Some(i) = p.iter().position(|&b| b == b':') {
            let value = parse_u32(p.get(..i)?)?;
            let len = u8::try_from(parse_u32(p.get(i + 1..)?)?).ok()?;
            if len == 0 || len > MAX_MKI_LEN || (len < 4 && value >> (8 * u32::from(len)) != 0) {
                return None;
            }
            mki = Some((value, len));
        } else if !valid_lifetime(p) {
            return None;
        }
    }
    Some(Crypto {
        tag,
        suite,
        key,
        mki,
    })
}

fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// `2^31` or a decimal count of packets; its value is not enforced (libsrtp's
/// own limit of 2^48 packets applies).
fn valid_lifetime(s: &[u8]) -> bool {
    match s.strip_prefix(b"2^") {
        Some(exp) => parse_u32(exp).is_some_and(|e| e <= 64),
        None => !s.is_empty() && s.len() <= 20 && s.iter().all(u8::is_ascii_digit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 §9.1's example key (30 bytes).
    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn rfc4568_example_with_lifetime_and_mki() {
        let v = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4");
        let c = parse_crypto(v.as_bytes()).expect("parses");
        assert_eq!(c.tag, 1);
        assert_eq!(c.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(c.key.as_bytes().len(), 30);
        assert_eq!(&c.key.as_bytes()[..4], b"YS__");
        assert_eq!(c.mki, Some((1, 4)));
    }

    #[test]
    fn suites_need_their_key_length() {
        let k30 = KEY;
        let v = format!("2 AES_CM_128_HMAC_SHA1_32 inline:{k30}");
        assert_eq!(
            parse_crypto(v.as_bytes()).unwrap().suite,
            CryptoSuite::AesCm128HmacSha1_32
        );
        // A 30-byte key is too short for AES-256 (46) and too long for GCM-128 (28).
        for s in ["AES_256_CM_HMAC_SHA1_80", "AEAD_AES_128_GCM"] {
            let v = format!("1 {s} inline:{k30}");
            assert!(parse_crypto(v.as_bytes()).is_none(), "{s}");
        }
        let k46 = B64.encode([7u8; 46]);
        let v = format!("1 AES_256_CM_HMAC_SHA1_80 inline:{k46}");
        assert_eq!(parse_crypto(v.as_bytes()).unwrap().key.as_bytes(), [7; 46]);
        let k28 = B64.encode([9u8; 28]).trim_end_matches('=').to_string();
        let v = format!("1 AEAD_AES_128_GCM inline:{k28}");
        assert_eq!(parse_crypto(v.as_bytes()).unwrap().key.as_bytes(), [9; 28]);
    }

    #[test]
    fn unusable_attributes_are_none() {
        for v in [
            "",
            "1",
            "x AES_CM_128_HMAC_SHA1_80 inline:WVNf",
            "1 F8_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
            "1 AES_CM_128_HMAC_SHA1_80 WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
            "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!",
            "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz UNENCRYPTED_SRTP",
            "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|1:5",
            "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|256:1",
            "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^x",
            "99999999999 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        ] {
            assert!(parse_crypto(v.as_bytes()).is_none(), "{v:?}");
        }
        let long = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", "A".repeat(10_000));
        assert!(parse_crypto(long.as_bytes()).is_none());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let v = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}");
        let c = parse_crypto(v.as_bytes()).unwrap();
        let shown = format!("{c:?} {c:#?}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("YS__") && !shown.contains(KEY) && !shown.contains("89, 83"));
    }
}
