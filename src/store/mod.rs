//! Recording storage through `object_store`: an S3-compatible bucket or a
//! mounted network share. The local spool is the truth until storage has a
//! file (see `uploader`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::signer::Signer;
use object_store::ObjectStore;

use crate::config::{StorageBackend, StorageConfig};

pub mod link;
pub mod retention;
pub mod uploader;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage config: {key}: {reason}")]
    Config { key: &'static str, reason: String },
    #[error("cannot open the {backend} storage: {source}")]
    Open {
        backend: &'static str,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("{op} {key:?} on the {backend} storage failed: {source}")]
    Op {
        op: &'static str,
        backend: &'static str,
        key: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("reading {path}: {source}")]
    Local {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("links: the {backend} storage has no presigned URLs; its recordings are files there (the HTTP API serves them: POST /v1/calls/{{id}}/recording/link)")]
    NoPresign { backend: &'static str },
}

impl StoreError {
    /// True when the error is the storage being away or slow (retry later),
    /// not a refusal (bad credentials, missing bucket).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Op { source, .. } | StoreError::Open { source, .. } => {
                let text = source.to_string();
                !(matches!(
                    **source,
                    object_store::Error::PermissionDenied { .. }
                        | object_store::Error::Unauthenticated { .. }
                ) || text.contains("SignatureDoesNotMatch")
                    || text.contains("InvalidAccessKeyId")
                    || text.contains("NoSuchBucket"))
            }
            _ => false,
        }
    }
}

/// An opened storage backend: where finished recordings go.
#[derive(Clone, Debug)]
pub struct Storage {
    kind: StorageBackend,
    store: Arc<dyn ObjectStore>,
    /// The same S3 client, for presigned URLs.
    s3: Option<Arc<AmazonS3>>,
    prefix: String,
    sse: String,
    /// The share's mounted folder (share backend).
    root: Option<std::path::PathBuf>,
}

impl Storage {
    /// `None` for the `local` backend: recordings stay in `recording.dir`.
    pub fn from_config(cfg: &StorageConfig) -> Result<Option<Storage>, StoreError> {
        match cfg.backend {
            StorageBackend::Local => Ok(None),
            StorageBackend::Share => {
                let path = cfg.path.as_deref().ok_or(StoreError::Config {
                    key: "storage.path",
                    reason: "the share backend needs the mounted folder's path".into(),
                })?;
                std::fs::create_dir_all(path).map_err(|source| StoreError::Local {
                    path: path.display().to_string(),
                    source,
                })?;
                let fs =
                    LocalFileSystem::new_with_prefix(path).map_err(|source| StoreError::Open {
                        backend: "share",
                        source: Box::new(source),
                    })?;
                Ok(Some(Storage {
                    kind: StorageBackend::Share,
                    store: Arc::new(fs),
                    s3: None,
                    prefix: cfg.prefix.clone(),
                    sse: String::new(),
                    root: Some(path.to_path_buf()),
                }))
            }
            StorageBackend::S3 => {
                let s3 = &cfg.s3;
                // The environment (AWS_ACCESS_KEY_ID, …) first, the config over it.
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_allow_http(s3.allow_http)
                    .with_virtual_hosted_style_request(s3.virtual_hosted_style);
                if !s3.endpoint.is_empty() {
                    b = b.with_endpoint(bucket_endpoint(s3));
                }
                if !s3.access_key_id.is_empty() {
                    b = b.with_access_key_id(&s3.access_key_id);
                }
                if !s3.secret_access_key.is_empty() {
                    b = b.with_secret_access_key(&s3.secret_access_key);
                }
                match s3.sse.as_str() {
                    "aws:kms" => b = b.with_sse_kms_encryption(&s3.kms_key_id),
                    "AES256" => {
                        // The encryption key enum is not exported; its name is.
                        if let Ok(key) = "aws_server_side_encryption".parse::<AmazonS3ConfigKey>() {
                            b = b.with_config(key, "AES256");
                        }
                    }
                    _ => {}
                }
                let client = Arc::new(b.build().map_err(|source| StoreError::Open {
                    backend: "s3",
                    source: Box::new(source),
                })?);
                Ok(Some(Storage {
                    kind: StorageBackend::S3,
                    store: client.clone(),
                    s3: Some(client),
                    prefix: cfg.prefix.clone(),
                    sse: s3.sse.clone(),
                    root: None,
                }))
            }
        }
    }

    pub fn kind(&self) -> StorageBackend {
        self.kind
    }

    /// `s3` or `share`, as the call record stores it.
    pub fn backend_name(&self) -> &'static str {
        match self.kind {
            StorageBackend::Local => "local",
            StorageBackend::Share => "share",
            StorageBackend::S3 => "s3",
        }
    }

    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Server-side encryption asked for ("" when none).
    pub fn sse(&self) -> &str {
        &self.sse
    }

    /// `{prefix}/{relative}`: `relative` is the recording's path under
    /// `recording.dir`, `{yyyy}/{mm}/{dd}/{call id}.wav`.
    /// Makes a written object survive a crash of the share's host.
    /// `LocalFileSystem` renames its temp file into place but never fsyncs:
    /// the object could be acknowledged yet lost if the share's host (or
    /// this client's cache of an NFS/SMB mount) crashed before writing it
    /// back. S3 acknowledges only what it keeps: nothing to do there.
    pub async fn make_durable(&self, key: &Key) -> Result<(), StoreError> {
        let Some(root) = self.root.clone() else {
            return Ok(());
        };
        let path = root.join(key.as_ref());
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&path)?.sync_all()?;
            if let Some(parent) = path.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok::<_, std::io::Error>(())
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(|source| StoreError::Local {
            path: shown,
            source,
        })
    }

    pub fn key_for(&self, relative: &Path) -> Key {
        object_key(&self.prefix, relative)
    }

    /// A time-limited GET URL for `key` (S3 only). It carries no Range: the
    /// browser's Range header is honoured by the server, which is what seeking
    /// in an audio player uses.
    pub async fn presigned_get(&self, key: &str, expires: Duration) -> Result<String, StoreError> {
        let s3 = self.s3.as_ref().ok_or(StoreError::NoPresign {
            backend: self.backend_name(),
        })?;
        let url = s3
            .signed_url(http_get(), &Key::from(key), expires)
            .await
            .map_err(|source| self.op_error("presigning", key, source))?;
        Ok(url.to_string())
    }

    /// An object_store error from `op` on `key`, named with this backend.
    pub fn op_error(&self, op: &'static str, key: &str, source: object_store::Error) -> StoreError {
        StoreError::Op {
            op,
            backend: self.backend_name(),
            key: key.to_owned(),
            source: Box::new(source),
        }
    }
}

/// object_store takes a virtual-hosted endpoint as the bucket's own URL
/// (`http://bucket.host`); the config names the server (`http://host`), as
/// for path-style, so the bucket goes in front of the host here.
fn bucket_endpoint(s3: &crate::config::S3Config) -> String {
    if !s3.virtual_hosted_style {
        return s3.endpoint.clone();
    }
    match s3.endpoint.split_once("://") {
        Some((scheme, host)) if !host.starts_with(&format!("{}.", s3.bucket)) => {
            format!("{scheme}://{}.{host}", s3.bucket)
        }
        _ => s3.endpoint.clone(),
    }
}

/// `{prefix}/{relative}` without an opened store: the recorder names the key
/// of a pending recording before storage has been reached.
pub fn object_key(prefix: &str, relative: &Path) -> Key {
    let rel: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let mut parts: Vec<&str> = prefix.split('/').filter(|p| !p.is_empty()).collect();
    parts.extend(rel.iter().map(String::as_str));
    Key::from_iter(parts)
}

fn http_get() -> axum::http::Method {
    axum::http::Method::GET
}
