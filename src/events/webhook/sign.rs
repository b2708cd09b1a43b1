//! Signatures as the Standard Webhooks specification has them: HMAC-SHA256
//! under the endpoint's secret over `<webhook-id>.<webhook-timestamp>.<body>`,
//! sent as `v1,<base64>`; during a rotation each live secret signs and the
//! signatures go space-separated in one header, so a receiver holding either
//! secret accepts the request.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Every secret starts with this, as the specification spells it.
pub const SECRET_PREFIX: &str = "whsec_";
/// The specification's bounds on a secret's key, in bytes.
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
/// Bytes of a secret pbxbridge makes.
const NEW_KEY_BYTES: usize = 32;
/// Secrets one file may hold (a rotation needs two).
pub const MAX_SECRETS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("a secret must start with {SECRET_PREFIX}")]
    Prefix,
    #[error("the part after {SECRET_PREFIX} is not base64")]
    Base64,
    #[error("the key is {bytes} bytes; it must be 24 to 64")]
    Length { bytes: usize },
    #[error("no random bytes from the system: {reason}")]
    Random { reason: String },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: line {line}: {why}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        why: Box<SecretError>,
    },
    #[error("{}: no secret in it", path.display())]
    Empty { path: PathBuf },
    #[error("{}: more than {MAX_SECRETS} secrets", path.display())]
    TooMany { path: PathBuf },
}

/// A signing secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    text: String,
    key: Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

impl Secret {
    /// `whsec_<base64>`, its key 24 to 64 bytes.
    pub fn parse(text: &str) -> Result<Secret, SecretError> {
        let text = text.trim();
        let b64 = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(b64).map_err(|_| SecretError::Base64)?;
        if !KEY_BYTES.contains(&key.len()) {
            return Err(SecretError::Length { bytes: key.len() });
        }
        Ok(Secret {
            text: text.to_owned(),
            key,
        })
    }

    /// A fresh secret of 256 random bits.
    pub fn generate() -> Result<Secret, SecretError> {
        let mut key = vec![0u8; NEW_KEY_BYTES];
        getrandom::fill(&mut key).map_err(|e| SecretError::Random {
            reason: e.to_string(),
        })?;
        Ok(Secret {
            text: format!("{SECRET_PREFIX}{}", STANDARD.encode(&key)),
            key,
        })
    }

    /// The `whsec_…` text, for the one answer that hands it out.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// `v1,<base64>` for one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` value: one signature per secret, space-separated.
pub fn signature_header(secrets: &[Secret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The secrets of a `secret_file`: one per line, blank lines and `#`
/// comments skipped; all of them sign.
pub fn read_secret_file(path: &Path) -> Result<Vec<Secret>, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let s = Secret::parse(line).map_err(|why| SecretError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            why: Box::new(why),
        })?;
        out.push(s);
    }
    if out.is_empty() {
        return Err(SecretError::Empty {
            path: path.to_path_buf(),
        });
    }
    if out.len() > MAX_SECRETS {
        return Err(SecretError::TooMany {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (and of its
    /// reference libraries' tests).
    #[test]
    fn signs_the_specifications_example() {
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            s.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn rotation_sends_one_signature_per_secret() {
        let a = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let b = Secret::generate().unwrap();
        let h = signature_header(&[a.clone(), b.clone()], "evt_1", 5, b"{}");
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(
            parts,
            [a.sign("evt_1", 5, b"{}"), b.sign("evt_1", 5, b"{}")]
        );
        assert_ne!(parts[0], parts[1]);
        // Any change to id, time or body changes the signature.
        assert_ne!(a.sign("evt_2", 5, b"{}"), parts[0]);
        assert_ne!(a.sign("evt_1", 6, b"{}"), parts[0]);
        assert_ne!(a.sign("evt_1", 5, b"{ }"), parts[0]);
    }

    #[test]
    fn secrets_are_checked_and_never_shown() {
        assert!(matches!(
            Secret::parse("MfKQ9r8G"),
            Err(SecretError::Prefix)
        ));
        assert!(matches!(
            Secret::parse("whsec_%%%"),
            Err(SecretError::Base64)
        ));
        assert!(matches!(
            Secret::parse("whsec_AAAA"),
            Err(SecretError::Length { bytes: 3 })
        ));
        let s = Secret::generate().unwrap();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(Secret::parse(s.expose()).unwrap(), s);
        assert_eq!(format!("{s:?}"), "Secret(<hidden>)");
        assert_ne!(Secret::generate().unwrap(), s);
    }

    #[test]
    fn secret_files_hold_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        std::fs::write(&path, format!("# new\n{}\n\n{}\n", a.expose(), b.expose())).unwrap();
        assert_eq!(read_secret_file(&path).unwrap(), vec![a, b]);
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(matches!(
            read_secret_file(&path),
            Err(SecretError::Empty { .. })
        ));
        std::fs::write(&path, "whsec_x\n").unwrap();
        let e = read_secret_file(&path).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(matches!(
            read_secret_file(&dir.path().join("none")),
            Err(SecretError::File { .. })
        ));
    }
}
