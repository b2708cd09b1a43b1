//! Where a call's recording is and how to read it: a file under
//! `recording.dir` (the local backend, or a pending recording still waiting
//! there for storage), or an object in the share or S3 storage.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use axum::body::Body;
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::api::{ApiError, ApiState};
use crate::db::recording_lookup::RecordingRef;
use crate::report::RecordingStatus;
use crate::store::Storage;

/// A container a browser plays, by its file name extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub ext: &'static str,
    pub content_type: &'static str,
}

/// Captured recordings are WAV; uploads may be any of these.
pub const FORMATS: [Format; 5] = [
    Format {
        ext: "wav",
        content_type: "audio/wav",
    },
    Format {
        ext: "mp3",
        content_type: "audio/mpeg",
    },
    Format {
        ext: "ogg",
        content_type: "audio/ogg",
    },
    Format {
        ext: "m4a",
        content_type: "audio/mp4",
    },
    Format {
        ext: "webm",
        content_type: "audio/webm",
    },
];

const UNKNOWN: Format = Format {
    ext: "bin",
    content_type: "application/octet-stream",
};

/// The format a stored name (`…/x.wav`) says.
pub fn format_of(name: &str) -> Format {
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    FORMATS
        .iter()
        .find(|f| f.ext.eq_ignore_ascii_case(ext))
        .copied()
        .unwrap_or(UNKNOWN)
}

#[derive(Debug, Clone)]
pub enum Where {
    File(PathBuf),
    Object { storage: Storage, key: String },
}

/// A recording found, with what its response headers need.
#[derive(Debug, Clone)]
pub struct Located {
    pub place: Where,
    pub size: u64,
    pub modified: Option<SystemTime>,
    /// Strong and quoted.
    pub etag: String,
    pub format: Format,
}

impl Located {
    pub fn is_s3(&self) -> bool {
        matches!(&self.place, Where::Object { storage, .. } if storage.backend_name() == "s3")
    }
}

fn gone(detail: impl Into<String>) -> ApiError {
    ApiError::not_found(detail.into())
}

/// 404 (saying why) unless the row says a recording exists.
pub fn check_status(rec: &RecordingRef) -> Result<(), ApiError> {
    match rec.status {
        RecordingStatus::Stored | RecordingStatus::Pending => Ok(()),
        RecordingStatus::Expired => Err(gone(
            "recording (it was deleted by retention: recording_status \"expired\")",
        )),
        RecordingStatus::Failed => Err(gone(
            "recording (writing it failed: recording_status \"failed\")",
        )),
        other => Err(gone(format!(
            "recording (this call has none: recording_status \"{other}\")"
        ))),
    }
}

/// `stored` (a recording_path) as a file inside `dir`, if it is one there.
/// The path comes from the database: it may not lead out of the folder.
pub fn local_file(dir: &Path, stored: &str) -> Option<(PathBuf, std::fs::Metadata)> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let path = std::fs::canonicalize(dir.join(stored)).ok()?;
    if !path.starts_with(&dir) {
        tracing::warn!(path = %path.display(), "recording_path is outside recording.dir; not served");
        return None;
    }
    let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
    Some((path, meta))
}

fn etag(rec: &RecordingRef, size: u64, modified: Option<SystemTime>) -> String {
    let known = rec
        .sha256
        .as_deref()
        .filter(|s| s.len() >= 32 && s.is_ascii())
        .filter(|_| {
            rec.bytes
                .is_none_or(|b| u64::try_from(b).ok() == Some(size))
        });
    match known {
        Some(sha) => format!("\"{}\"", sha.get(..32).unwrap_or(sha)),
        None => {
            let micros = modified
                .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_micros());
            format!("\"{size:x}-{micros:x}\"")
        }
    }
}

fn storage_for<'a>(state: &'a ApiState, backend: &str) -> Option<&'a Storage> {
    state.storage().filter(|s| s.backend_name() == backend)
}

/// Finds the recording of `rec` (whose status `check_status` passed).
pub async fn locate(state: &ApiState, rec: &RecordingRef) -> Result<Located, ApiError> {
    check_status(rec)?;
    let backend = rec.backend.as_deref().unwrap_or("local");
    // A file here first: the local backend, or a pending recording that the
    // uploader has not moved yet.
    if let Some(stored) = rec.path.as_deref().filter(|p| !p.is_empty()) {
        let dir = state.config().recording.dir.clone();
        let stored_owned = stored.to_owned();
        let found = tokio::task::spawn_blocking(move || local_file(&dir, &stored_owned))
            .await
            .map_err(|_| ApiError::Internal)?;
        if let Some((path, meta)) = found {
            let modified = meta.modified().ok();
            return Ok(Located {
                etag: etag(rec, meta.len(), modified),
                size: meta.len(),
                modified,
                format: format_of(stored),
                place: Where::File(path),
            });
        }
    }
    if backend == "local" {
        return Err(gone(
            "recording file (recording.dir on this server has no such file)",
        ));
    }
    let key = rec
        .key
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| gone("recording (the call row names no storage key)"))?;
    let Some(storage) = storage_for(state, backend) else {
        return Err(gone(format!(
            "recording (it is kept by the {backend} storage, which this server is not configured for)"
        )));
    };
    let meta = match storage
        .object_store()
        .head(&object_store::path::Path::from(key))
        .await
    {
        Ok(m) => m,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(gone(if rec.status == RecordingStatus::Pending {
                "recording (it is pending: still on the sensor that recorded it, not in storage yet)"
            } else {
                "recording object (storage has no object under the call's key)"
            }))
        }
        Err(e) => {
            tracing::warn!(error = %storage.op_error("reading", key, e), "recording not served");
            return Err(ApiError::Unavailable);
        }
    };
    let modified = Some(SystemTime::from(meta.last_modified));
    Ok(Located {
        etag: etag(rec, meta.size, modified),
        size: meta.size,
        modified,
        format: format_of(key),
        place: Where::Object {
            storage: storage.clone(),
            key: key.to_owned(),
        },
    })
}

const CHUNK: u64 = 64 * 1024;

/// The bytes of `range`, streamed: never the whole file in memory.
pub async fn open(loc: &Located, range: RangeInclusive<u64>) -> Result<Body, ApiError> {
    let (start, end) = (*range.start(), *range.end());
    let len = end.saturating_sub(start).saturating_add(1);
    match &loc.place {
        Where::File(path) => {
            let mut file = tokio::fs::File::open(path).await.map_err(|e| {
                tracing::warn!(path = %path.display(), error = %e, "cannot open recording");
                ApiError::not_found("recording file")
            })?;
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|_| ApiError::Internal)?;
            // A file that got shorter ends the body early; the client sees
            // fewer bytes than Content-Length said and knows it was cut.
            let stream = tokio_util::io::ReaderStream::with_capacity(
                file.take(len),
                usize::try_from(CHUNK).unwrap_or(64 * 1024),
            );
            Ok(Body::from_stream(stream))
        }
        Where::Object { storage, key } => {
            let opened = crate::store::link::open_recording(
                storage,
                key,
                Some(start..end.saturating_add(1)),
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "recording not served");
                if e.is_unavailable() {
                    ApiError::Unavailable
                } else {
                    ApiError::not_found("recording object")
                }
            })?;
            let stream = opened
                .body
                .into_stream()
                .map_err(|e| std::io::Error::other(e.to_string()))
                .boxed();
            Ok(Body::from_stream(stream))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_name() {
        assert_eq!(
            format_of("recordings/2024/01/02/a@b.wav").content_type,
            "audio/wav"
        );
        assert_eq!(format_of("x.MP3").content_type, "audio/mpeg");
        assert_eq!(format_of("x.webm").content_type, "audio/webm");
        assert_eq!(format_of("x").content_type, "application/octet-stream");
    }

    #[test]
    fn files_outside_the_folder_are_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("rec");
        std::fs::create_dir_all(inner.join("2024")).unwrap();
        std::fs::write(inner.join("2024/a.wav"), b"RIFF").unwrap();
        std::fs::write(dir.path().join("secret.wav"), b"no").unwrap();
        assert!(local_file(&inner, "2024/a.wav").is_some());
        let abs = inner.join("2024/a.wav").display().to_string();
        assert!(local_file(&inner, &abs).is_some());
        assert!(local_file(&inner, "../secret.wav").is_none());
        assert!(local_file(&inner, &dir.path().join("secret.wav").display().to_string()).is_none());
        assert!(local_file(&inner, "2024").is_none());
        assert!(local_file(&inner, "2024/missing.wav").is_none());
    }
}
