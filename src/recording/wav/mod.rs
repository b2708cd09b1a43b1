//! Recording: crash-safe stereo WAV spool files (left = caller, right = callee).
//!
//! This is driver-side code: it does blocking file I/O and is meant to run on
//! a thread (or `spawn_blocking`) that owns the recorder, never inside the core.

mod header;
mod spool;

pub use header::recover;
pub use spool::{Channel, RecorderConfig, RecorderStats, StereoRecorder};

use std::path::PathBuf;

use serde::Serialize;

/// What a finished (or recovered) recording holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordingInfo {
    pub path: PathBuf,
    /// Sample frames (one sample per channel each).
    pub frames: u64,
    /// File size in bytes, header included.
    pub bytes: u64,
    pub sample_rate: u32,
    pub channels: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("creating recording {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing recording {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("recording {path}: WAV error: {source}")]
    Wav { path: PathBuf, source: hound::Error },
    /// An earlier write failed; the recording stopped there.
    #[error("recording {path} stopped after an earlier write error")]
    Failed { path: PathBuf },
    #[error("{path} is not a recoverable WAV spool file: {detail}")]
    NotWav { path: PathBuf, detail: &'static str },
}

impl RecordError {
    pub fn reason(&self) -> &'static str {
        match self {
            RecordError::Create { .. } => "record_create",
            RecordError::Write { .. } => "record_write",
            RecordError::Wav { .. } => "record_wav",
            RecordError::Failed { .. } => "record_failed",
            RecordError::NotWav { .. } => "record_not_wav",
        }
    }

    pub(crate) fn from_hound(path: &std::path::Path, e: hound::Error) -> Self {
        match e {
            hound::Error::IoError(source) => RecordError::Write {
                path: path.to_path_buf(),
                source,
            },
            source => RecordError::Wav {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        RecordError::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests;
