//! Short-lived signed recording links, so an `<audio src>` plays without an
//! `Authorization` header. The signature (HMAC-SHA256 with the API's link
//! secret) binds the call row, the access kind, the expiry and the key that
//! made the link; the key itself is checked again at every use.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::api::LinkKey;

/// Keeps these tags from ever being valid for another use of the secret.
const CONTEXT: &[u8] = b"pbxbridge recording link v1\0";

/// `listen` (played inline) or `download` (an attachment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Listen,
    Download,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Listen => "listen",
            Access::Download => "download",
        }
    }

    pub fn parse(text: &str) -> Option<Access> {
        match text {
            "listen" => Some(Access::Listen),
            "download" => Some(Access::Download),
            _ => None,
        }
    }
}

/// What a link grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub row: i64,
    pub access: Access,
    /// Unix seconds.
    pub expires: i64,
    pub key_id: i64,
}

fn mac(key: &LinkKey, g: &Grant) -> Hmac<Sha256> {
    let mut m = key.mac(CONTEXT);
    m.update(format!("{}|{}|{}|{}", g.row, g.access.as_str(), g.expires, g.key_id).as_bytes());
    m
}

/// The hex signature of `g`.
pub fn sign(key: &LinkKey, g: &Grant) -> String {
    hex::encode(mac(key, g).finalize().into_bytes())
}

/// True when `sig_hex` is `g`'s signature (compared in constant time).
pub fn verify(key: &LinkKey, g: &Grant, sig_hex: &str) -> bool {
    match hex::decode(sig_hex) {
        Ok(sig) if sig.len() == 32 => mac(key, g).verify_slice(&sig).is_ok(),
        _ => false,
    }
}

/// The link's path and query.
pub fn url(key: &LinkKey, g: &Grant) -> String {
    format!(
        "/v1/calls/{}/recording?access={}&expires={}&key={}&sig={}",
        g.row,
        g.access.as_str(),
        g.expires,
        g.key_id,
        sign(key, g)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_field() {
        let key = LinkKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let g = Grant {
            row: 7,
            access: Access::Listen,
            expires: 1_900_000_000,
            key_id: 3,
        };
        let sig = sign(&key, &g);
        assert_eq!(sig.len(), 64);
        assert!(verify(&key, &g, &sig));
        for other in [
            Grant { row: 8, ..g },
            Grant {
                access: Access::Download,
                ..g
            },
            Grant {
                expires: g.expires + 1,
                ..g
            },
            Grant { key_id: 4, ..g },
        ] {
            assert!(!verify(&key, &other, &sig), "{other:?}");
        }
        let other_key = LinkKey::from_bytes(b"fedcba9876543210fedcba9876543210");
        assert!(!verify(&other_key, &g, &sig));
        assert!(!verify(&key, &g, "zz"));
        assert!(!verify(&key, &g, &"é".repeat(32)));
        assert!(url(&key, &g)
            .starts_with("/v1/calls/7/recording?access=listen&expires=1900000000&key=3&sig="));
    }
}
