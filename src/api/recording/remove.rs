//! Deleting a call's recording: the file under `recording.dir` (local, or
//! the spool of a pending upload) and the object in storage. What would be
//! touched is checked first, so a refusal changes nothing.

use std::path::{Path, PathBuf};

use crate::api::problem::ApiError;
use crate::api::ApiState;
use crate::db::recording_lookup::RecordingRef;
use crate::store::retention::inside;
use crate::store::Storage;

/// Why a recording cannot be deleted.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("the recording's file {path:?} is not inside recording.dir; it was left alone and the call kept")]
    Outside { path: String },
    #[error("the recording is kept in {backend:?} storage, which is not the configured storage.backend; the call was kept")]
    NotConfigured { backend: String },
    #[error("deleting {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl From<RemoveError> for ApiError {
    fn from(e: RemoveError) -> ApiError {
        match &e {
            RemoveError::Outside { .. } | RemoveError::NotConfigured { .. } => ApiError::Conflict {
                detail: e.to_string(),
            },
            RemoveError::Store(s) if s.is_unavailable() => {
                tracing::warn!(error = %e, "deleting a call: storage unavailable");
                ApiError::Unavailable
            }
            _ => {
                tracing::error!(error = %e, "deleting a call's recording failed");
                ApiError::Internal
            }
        }
    }
}

/// What deleting a recording touches.
#[derive(Debug)]
pub struct Removal<'a> {
    /// The file under recording.dir: local, or the spool of a pending upload.
    pub file: Option<PathBuf>,
    /// The object in remote storage.
    pub object: Option<(&'a Storage, &'a str)>,
}

/// Where a recording is: (backend, key, path) of its call row.
pub type Place<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// What deleting the recording at `place` would touch, checked before
/// anything is changed.
pub fn removal_plan<'a>(
    (backend, key, path): Place<'a>,
    storage: Option<&'a Storage>,
    dir: &Path,
) -> Result<Removal<'a>, RemoveError> {
    let file = match path.filter(|p| !p.is_empty()) {
        Some(p) => Some(
            inside(dir, Path::new(p)).ok_or_else(|| RemoveError::Outside { path: p.to_owned() })?,
        ),
        None => None,
    };
    let backend = backend.unwrap_or("local");
    let object = match key.filter(|k| !k.is_empty()) {
        Some(key) if backend != "local" => {
            let st = storage
                .filter(|s| s.backend_name() == backend)
                .ok_or_else(|| RemoveError::NotConfigured {
                    backend: backend.to_owned(),
                })?;
            Some((st, key))
        }
        _ => None,
    };
    Ok(Removal { file, object })
}

/// Deletes the file and the object; either already gone is fine.
pub async fn remove_recording(r: Removal<'_>) -> Result<(), RemoveError> {
    if let Some(path) = r.file {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RemoveError::File {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
    }
    if let Some((st, key)) = r.object {
        let path = object_store::path::Path::from(key);
        match st.object_store().delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(source) => return Err(st.op_error("deleting", key, source).into()),
        }
    }
    Ok(())
}

/// Deletes `rec`'s file and object (DELETE of a call, an upload that
/// replaces a recording).
pub async fn delete_recording_object(state: &ApiState, rec: &RecordingRef) -> Result<(), ApiError> {
    let place = (
        rec.backend.as_deref(),
        rec.key.as_deref(),
        rec.path.as_deref(),
    );
    let removal = removal_plan(place, state.storage(), &state.config().recording.dir)?;
    remove_recording(removal).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<'a>(backend: Option<&'a str>, key: Option<&'a str>, path: Option<&'a str>) -> Place<'a> {
        (backend, key, path)
    }

    #[test]
    fn a_recording_outside_the_folder_or_storage_is_refused() {
        let dir = Path::new("/var/rec");
        let r = removal_plan(rec(None, None, Some("/var/rec/a.wav")), None, dir).unwrap();
        assert_eq!(r.file.unwrap(), Path::new("/var/rec/a.wav"));
        assert!(r.object.is_none());
        for bad in ["/var/rec/../etc/passwd", "/etc/passwd", "/var/rec"] {
            assert!(matches!(
                removal_plan(rec(None, None, Some(bad)), None, dir),
                Err(RemoveError::Outside { .. })
            ));
        }
        assert!(matches!(
            removal_plan(rec(Some("s3"), Some("k/a.wav"), None), None, dir),
            Err(RemoveError::NotConfigured { .. })
        ));
        let r = removal_plan(rec(Some("local"), Some("k"), None), None, dir).unwrap();
        assert!(r.file.is_none() && r.object.is_none());
    }
}
