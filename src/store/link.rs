//! Handing a recording to the CRM: a time-limited presigned link (S3), or the
//! bytes themselves, a range at a time (for the HTTP API to serve
//! for the share backend, and for S3 when the CRM should not see the bucket).

use std::ops::Range;
use std::time::Duration;

use object_store::{GetOptions, GetRange, GetResult, ObjectStore};

use super::{Storage, StoreError};
use crate::db::recording_lookup::recording_of;
use crate::db::{Db, DbError};
use crate::report::RecordingStatus;

/// S3 refuses presigned URLs valid for longer than seven days.
pub const MAX_LINK_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum RecordingLinkError {
    #[error("no call {call_id:?} (sensor {sensor:?}) in the database")]
    NoCall { sensor: String, call_id: String },
    #[error(
        "call {call_id:?}: the recording is not in storage yet (recording_status \"{status}\")"
    )]
    NotStored {
        call_id: String,
        status: RecordingStatus,
    },
    #[error(
        "call {call_id:?}: the recording was deleted by retention (recording_status \"expired\")"
    )]
    Expired { call_id: String },
    #[error("call {call_id:?}: the recording is kept by the {backend} backend, which has no links; read the file where that backend keeps it or play it through the HTTP API: POST /v1/calls/{{id}}/recording/link")]
    NotLinkable { call_id: String, backend: String },
    #[error("call {call_id:?}: recording_status is \"stored\" but recording_key is empty")]
    NoKey { call_id: String },
    #[error(
        "links: storage.backend is {configured:?} but call {call_id:?} is stored in {stored:?}"
    )]
    OtherBackend {
        call_id: String,
        configured: &'static str,
        stored: String,
    },
    #[error("link lifetime {asked:?} must be between 1 s and 7 days")]
    Lifetime { asked: Duration },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A presigned GET URL for call `call_id`'s recording, valid for `expires`.
pub async fn recording_link(
    db: &Db,
    storage: &Storage,
    sensor: &str,
    call_id: &str,
    expires: Duration,
) -> Result<String, RecordingLinkError> {
    if expires < Duration::from_secs(1) || expires > MAX_LINK_LIFETIME {
        return Err(RecordingLinkError::Lifetime { asked: expires });
    }
    let rec =
        recording_of(db, sensor, call_id)
            .await?
            .ok_or_else(|| RecordingLinkError::NoCall {
                sensor: sensor.to_owned(),
                call_id: call_id.to_owned(),
            })?;
    match rec.status {
        RecordingStatus::Stored => {}
        RecordingStatus::Expired => {
            return Err(RecordingLinkError::Expired {
                call_id: call_id.to_owned(),
            })
        }
        other => {
            return Err(RecordingLinkError::NotStored {
                call_id: call_id.to_owned(),
                status: other,
            })
        }
    }
    let backend = rec.backend.as_deref().unwrap_or("local");
    if backend != "s3" {
        return Err(RecordingLinkError::NotLinkable {
            call_id: call_id.to_owned(),
            backend: backend.to_owned(),
        });
    }
    if storage.backend_name() != "s3" {
        return Err(RecordingLinkError::OtherBackend {
            call_id: call_id.to_owned(),
            configured: storage.backend_name(),
            stored: backend.to_owned(),
        });
    }
    let key = rec
        .key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| RecordingLinkError::NoKey {
            call_id: call_id.to_owned(),
        })?;
    let url = storage.presigned_get(&key, expires).await?;
    tracing::info!(call_id = %call_id, expires_secs = expires.as_secs(), "recording link made");
    Ok(url)
}

/// An opened recording: `body` streams the bytes of `range` out of `size`.
#[derive(Debug)]
pub struct OpenedRecording {
    pub size: u64,
    pub range: Range<u64>,
    /// `body.into_stream()` yields the bytes.
    pub body: GetResult,
}

/// Opens `key` in storage, all of it or `range` (end exclusive, clamped to the
/// object's size, as an HTTP Range is).
pub async fn open_recording(
    storage: &Storage,
    key: &str,
    range: Option<Range<u64>>,
) -> Result<OpenedRecording, StoreError> {
    let opts = GetOptions {
        range: range.map(GetRange::Bounded),
        ..GetOptions::default()
    };
    let path = object_store::path::Path::from(key);
    let body = storage
        .object_store()
        .get_opts(&path, opts)
        .await
        .map_err(|source| storage.op_error("reading", key, source))?;
    Ok(OpenedRecording {
        size: body.meta.size,
        range: body.range.clone(),
        body,
    })
}

/// `15m`, `2h`, `90s`, `1d` or plain seconds → a duration (CLI input).
pub fn parse_lifetime(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (num, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (text.get(..i)?, c),
        _ => (text, 's'),
    };
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        'd' => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_lifetime("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_lifetime("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_lifetime("7d"), Some(MAX_LINK_LIFETIME));
        assert_eq!(parse_lifetime("m"), None);
        assert_eq!(parse_lifetime("5x"), None);
        assert_eq!(parse_lifetime(""), None);
    }
}
