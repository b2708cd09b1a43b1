//! The secret that signs short-lived recording links.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the link secret {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the link secret {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the link secret {path} is too short: at least 32 characters are needed")]
    TooShort { path: PathBuf },
    #[error("the system's random source failed: {reason}")]
    Random { reason: String },
}

/// Bytes that sign links. `Debug` never shows them.
#[derive(Clone)]
pub struct LinkKey(Vec<u8>);

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey(<secret>)")
    }
}

impl LinkKey {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// An HMAC-SHA256 under this secret, started with `context`, so a tag
    /// made for one use (a cursor, a link) is never valid for another.
    pub fn mac(&self, context: &[u8]) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length (RFC 2104)"));
        m.update(context);
        m
    }

    /// A key for tests and one-off tools.
    pub fn from_bytes(bytes: &[u8]) -> LinkKey {
        LinkKey(bytes.to_vec())
    }

    /// `[api] link_secret_file`: the file's text, trimmed.
    pub fn from_file(path: &Path) -> Result<LinkKey, SecretError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = text.trim();
        if text.len() < 32 {
            return Err(SecretError::TooShort {
                path: path.to_path_buf(),
            });
        }
        Ok(LinkKey(text.as_bytes().to_vec()))
    }

    /// The secret in `path`, made (random, mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> Result<LinkKey, SecretError> {
        match Self::from_file(path) {
            Ok(k) => return Ok(k),
            Err(SecretError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| SecretError::Random {
            reason: e.to_string(),
        })?;
        let text: String = hex::encode(raw);
        let create = |source| SecretError::Create {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(create)?;
        }
        // create_new: two processes starting together keep one secret.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut f) => {
                f.write_all(text.as_bytes()).map_err(create)?;
                f.sync_all().map_err(create)?;
                Ok(LinkKey(text.into_bytes()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::from_file(path),
            Err(e) => Err(create(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s/api-link-secret");
        let a = LinkKey::load_or_create(&path).unwrap();
        let b = LinkKey::load_or_create(&path).unwrap();
        assert_eq!(a.bytes(), b.bytes());
        assert_eq!(a.bytes().len(), 64);
        assert_eq!(format!("{a:?}"), "LinkKey(<secret>)");
        std::fs::write(dir.path().join("short"), "abc").unwrap();
        assert!(matches!(
            LinkKey::from_file(&dir.path().join("short")),
            Err(SecretError::TooShort { .. })
        ));
    }
}
