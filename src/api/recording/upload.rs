//! `POST /v1/calls/{id}/recording`: a recording for a call pbxbridge did not
//! capture (a mobile phone, another PBX). The file streams into a temporary
//! file (bounded memory, counted against `[api] max_upload_mib`), its type
//! is read from its own bytes, and only then is it moved into place, with
//! the same layout and key scheme as captured recordings.

use std::path::{Path, PathBuf};

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use object_store::{Attribute, Attributes, PutMultipartOptions, WriteMultipart};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utoipa::ToSchema;

use super::remove::delete_recording_object;
use super::source::{Format, FORMATS};
use crate::api::auth::Caller;
use crate::api::problem::{ApiError, Problem};
use crate::api::roles::Need;
use crate::api::ApiState;
use crate::db::recording_lookup::RecordingRef;
use crate::db::recording_upload::Uploaded;
use crate::report::RecordingStatus;
use crate::time::Timestamp;

const MIB: u64 = 1024 * 1024;
/// Bytes read before the type is decided (WebM needs 256).
const SNIFF: usize = 4096;
/// Parts of a form looked at before giving up on finding `file`.
const MAX_FIELDS: usize = 16;
/// Temporary uploads, inside `recording.dir` so the final rename stays on
/// one file system; the uploader's scan skips dot folders.
const TEMP_DIR: &str = ".upload";

/// (Documented in `upload_recording`'s params.)
#[derive(Debug, Default, Deserialize)]
pub struct UploadQuery {
    pub replace: Option<String>,
}

/// The form of the upload: one part named `file`.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the form; the handler streams it
pub struct UploadForm {
    /// WAV, MP3, Ogg (Opus or Vorbis), M4A or WebM audio.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedRecording {
    /// The call's row id.
    pub call: i64,
    /// Always `stored`.
    pub status: String,
    /// wav, mp3, ogg, m4a or webm.
    pub format: String,
    pub content_type: String,
    pub bytes: u64,
    pub sha256: String,
    /// `local`, `share` or `s3`.
    pub backend: String,
    /// Where it plays: `GET` this path.
    pub url: String,
    /// True when it replaced an earlier recording.
    pub replaced: bool,
}

/// The type of an upload from its first bytes; `None` for anything a
/// browser's `<audio>` should not be handed.
pub fn sniff(head: &[u8]) -> Option<Format> {
    let ext = match infer::get(head)?.mime_type() {
        "audio/x-wav" | "audio/wav" => "wav",
        "audio/mpeg" => "mp3",
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/m4a" => "m4a",
        "video/webm" | "audio/webm" => "webm",
        _ => return None,
    };
    FORMATS.iter().find(|f| f.ext == ext).copied()
}

/// A temporary file deleted on drop unless it was moved away.
struct Temp {
    path: PathBuf,
    keep: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> ApiError {
    move |e| {
        tracing::error!(error = %e, "recording upload: {what}");
        ApiError::Internal
    }
}

fn too_large(cap_mib: u64) -> ApiError {
    ApiError::TooLarge {
        detail: format!("the recording is larger than [api] max_upload_mib ({cap_mib} MiB)"),
    }
}

fn multipart_err(e: axum::extract::multipart::MultipartError, cap_mib: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(cap_mib)
    } else {
        ApiError::bad("file", e.body_text())
    }
}

/// The received file: where it is, what it is.
struct Received {
    temp: Temp,
    format: Format,
    bytes: u64,
    sha256: String,
}

/// Streams the `file` part into a temporary file in `dir`.
async fn receive(mut form: Multipart, dir: &Path, cap_mib: u64) -> Result<Received, ApiError> {
    let cap = cap_mib.saturating_mul(MIB);
    for _ in 0..MAX_FIELDS {
        let Some(mut field) = form
            .next_field()
            .await
            .map_err(|e| multipart_err(e, cap_mib))?
        else {
            break;
        };
        if field.name() != Some("file") {
            continue;
        }
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io_err("creating the upload folder"))?;
        let mut rnd = [0u8; 12];
        getrandom::fill(&mut rnd).map_err(|_| ApiError::Internal)?;
        let name: String = hex::encode(rnd);
        let temp = Temp {
            path: dir.join(format!("{name}.part")),
            keep: false,
        };
        let mut out = tokio::fs::File::create(&temp.path)
            .await
            .map_err(io_err("creating a temporary file"))?;
        let mut head: Vec<u8> = Vec::with_capacity(SNIFF);
        let mut format = None;
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_err(e, cap_mib))? {
            bytes += chunk.len() as u64;
            if bytes > cap {
                return Err(too_large(cap_mib));
            }
            if format.is_none() {
                let take = (SNIFF - head.len()).min(chunk.len());
                head.extend_from_slice(chunk.get(..take).unwrap_or_default());
                if head.len() >= SNIFF {
                    format = Some(sniff(&head).ok_or_else(unsupported)?);
                }
            }
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(io_err("writing a temporary file"))?;
        }
        let format = match format {
            Some(f) => f,
            None => sniff(&head).ok_or_else(unsupported)?,
        };
        out.sync_all()
            .await
            .map_err(io_err("writing a temporary file"))?;
        let sha256 = hex::encode(hasher.finalize());
        return Ok(Received {
            temp,
            format,
            bytes,
            sha256,
        });
    }
    Err(ApiError::bad(
        "file",
        "the form has no part named \"file\" with the recording",
    ))
}

fn unsupported() -> ApiError {
    ApiError::Unsupported {
        detail: "the file is not WAV, MP3, Ogg (Opus or Vorbis), M4A or WebM audio \
                 (the type is read from its bytes, not its name)"
            .into(),
    }
}

/// `{yyyy}/{mm}/{dd}/{call id}.{ext}`, as captured recordings are named.
fn relative_path(rec: &RecordingRef, format: Format) -> PathBuf {
    crate::recording::recording_path(Path::new(""), rec.started_at, &rec.call_id)
        .with_extension(format.ext)
}

/// For a WAV: sample rate, channels and frames, read from its header.
fn wav_info(path: &Path) -> (Option<u32>, Option<u16>, Option<u64>) {
    match hound::WavReader::open(path) {
        Ok(r) => {
            let spec = r.spec();
            (
                Some(spec.sample_rate),
                Some(spec.channels),
                Some(u64::from(r.duration())),
            )
        }
        Err(_) => (None, None, None),
    }
}

/// Puts the file into remote storage under `key`, in parts, with its type.
async fn put_remote(
    storage: &crate::store::Storage,
    key: &object_store::path::Path,
    file: &Path,
    format: Format,
) -> Result<(), ApiError> {
    let fail = |e: object_store::Error| {
        let e = storage.op_error("uploading", key.as_ref(), e);
        tracing::error!(error = %e, "recording upload");
        if e.is_unavailable() {
            ApiError::Unavailable
        } else {
            ApiError::Internal
        }
    };
    let mut attributes = Attributes::new();
    if storage.backend_name() == "s3" {
        attributes.insert(Attribute::ContentType, format.content_type.into());
    }
    let opts = PutMultipartOptions {
        attributes,
        ..PutMultipartOptions::default()
    };
    let up = storage
        .object_store()
        .put_multipart_opts(key, opts)
        .await
        .map_err(fail)?;
    let mut writer = WriteMultipart::new_with_chunk_size(up, 8 * MIB as usize);
    let copied = async {
        let mut f = tokio::fs::File::open(file)
            .await
            .map_err(io_err("reading the upload"))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f
                .read(&mut buf)
                .await
                .map_err(io_err("reading the upload"))?;
            if n == 0 {
                return Ok(());
            }
            writer.wait_for_capacity(2).await.map_err(fail)?;
            writer.write(buf.get(..n).unwrap_or_default());
        }
    }
    .await;
    match copied {
        Ok(()) => writer.finish().await.map(|_| ()).map_err(fail),
        Err(e) => {
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

/// Uploads the call's recording (multipart form, part `file`). The type is
/// read from the file's bytes: WAV, MP3, Ogg, M4A or WebM. A call that has
/// a recording answers 409 unless `replace=true`.
#[utoipa::path(post, path = "/v1/calls/{id}/recording", tag = "recordings",
    params(
        ("id" = String, Path, description = "The call's row id, or sensor/call_id (slash as %2F)"),
        ("replace" = Option<String>, Query, description = "`true`: replace the call's recording if it has one (else 409)"),
    ),
    request_body(content = inline(UploadForm), content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = UploadedRecording),
        (status = 200, description = "Replaced the earlier recording", body = UploadedRecording),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The call has a recording (send replace=true), or one is still on its way to storage",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than [api] max_upload_mib",
            body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not audio a browser plays",
            body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn upload_recording(
    caller: Caller,
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadedRecording>), ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad("query", e.body_text()))?;
    let replace = super::flag("replace", q.replace.as_deref())?;
    caller.require(Need::WriteCalls)?;
    let cap_mib = state.api_config().max_upload_mib;
    // A declared size over the cap is refused before anything is read (the
    // form's own framing adds a little).
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap_mib.saturating_mul(MIB).saturating_add(64 * 1024)) {
        return Err(too_large(cap_mib));
    }
    let form = form.map_err(|e| ApiError::Unsupported {
        detail: format!(
            "send the recording as multipart/form-data with a part named \"file\" ({e})"
        ),
    })?;
    let (call, rec) = super::call_and_recording(&state, &caller, &id).await?;
    let had = match rec.status {
        RecordingStatus::Pending => {
            return Err(ApiError::Conflict {
                detail: "the call's captured recording is still on its way to storage; \
                         try again once it is stored"
                    .into(),
            })
        }
        RecordingStatus::Stored if !replace => {
            return Err(ApiError::Conflict {
                detail: "the call already has a recording; send replace=true to replace it".into(),
            })
        }
        RecordingStatus::Stored => true,
        _ => false,
    };
    let dir = state.config().recording.dir.clone();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(io_err("creating recording.dir"))?;
    let dir = tokio::fs::canonicalize(&dir)
        .await
        .map_err(io_err("finding recording.dir"))?;
    let mut got = receive(form, &dir.join(TEMP_DIR), cap_mib).await?;
    let relative = relative_path(&rec, got.format);
    let (sample_rate, channels, samples) = if got.format.ext == "wav" {
        let p = got.temp.path.clone();
        tokio::task::spawn_blocking(move || wav_info(&p))
            .await
            .unwrap_or((None, None, None))
    } else {
        (None, None, None)
    };
    let mut new = Uploaded {
        backend: "local".into(),
        key: None,
        path: None,
        bytes: got.bytes,
        sha256: got.sha256.clone(),
        format: got.format.ext.into(),
        sample_rate,
        channels,
        samples,
        at: Timestamp::now(),
    };
    match state.storage() {
        None => {
            let dest = dir.join(&relative);
            if let Some(parent) = dest.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(io_err("creating the recording's folder"))?;
            }
            tokio::fs::rename(&got.temp.path, &dest)
                .await
                .map_err(io_err("moving the upload into place"))?;
            got.temp.keep = true;
            new.path = Some(dest.display().to_string());
        }
        Some(storage) => {
            let key = storage.key_for(&relative);
            put_remote(storage, &key, &got.temp.path, got.format).await?;
            storage.make_durable(&key).await.map_err(|e| {
                tracing::error!(error = %e, "upload: cannot make the recording durable");
                ApiError::Internal
            })?;
            new.backend = storage.backend_name().into();
            new.key = Some(key.to_string());
        }
    }
    let db = state.db().await?;
    if !db
        .set_uploaded_recording(call.row, rec.status, &new)
        .await?
    {
        return Err(ApiError::Conflict {
            detail: "the call's recording changed while this one was uploaded; look again".into(),
        });
    }
    // The earlier recording goes unless the new one took its very place.
    if had
        && (rec.key != new.key
            || rec.path != new.path
            || rec.backend.as_deref() != Some(new.backend.as_str()))
    {
        if let Err(e) = delete_recording_object(&state, &rec).await {
            tracing::warn!(call = call.row, error = %e, "the replaced recording could not be deleted");
        }
    }
    tracing::info!(
        call = call.row,
        key = caller.key_id,
        format = got.format.ext,
        bytes = got.bytes,
        "recording uploaded"
    );
    Ok((
        if had {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        Json(UploadedRecording {
            call: call.row,
            status: RecordingStatus::Stored.as_str().into(),
            format: got.format.ext.into(),
            content_type: got.format.content_type.into(),
            bytes: got.bytes,
            sha256: got.sha256,
            backend: new.backend,
            url: format!("/v1/calls/{}/recording", call.row),
            replaced: had,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        let mut wav = b"RIFF\x24\0\0\0WAVEfmt ".to_vec();
        wav.resize(64, 0);
        assert_eq!(sniff(&wav).map(|f| f.ext), Some("wav"));
        assert_eq!(sniff(b"ID3\x04\0\0\0\0\0\0").map(|f| f.ext), Some("mp3"));
        assert_eq!(sniff(b"OggS\0\x02\0\0\0\0").map(|f| f.ext), Some("ogg"));
        assert_eq!(sniff(b"hello, world, not audio").map(|f| f.ext), None);
        assert_eq!(sniff(b"%PDF-1.7\n").map(|f| f.ext), None);
        assert_eq!(sniff(b"").map(|f| f.ext), None);
    }
}
