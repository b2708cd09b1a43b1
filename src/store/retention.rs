//! Retention: recordings of calls older than `storage.retention_days` are
//! deleted (object, share file or local file) and the call record is marked
//! `expired`; the call itself stays.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use object_store::ObjectStore;
use serde::Serialize;

use super::Storage;
use crate::config::Config;
use crate::db::recording_lookup::{mark_expired, stored_before, RecordingRef};
use crate::db::{Db, DbError};
use crate::time::Timestamp;

/// Rows read per query: bounds memory and each statement's work.
pub const BATCH: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What one run deleted (or, on a dry run, would delete).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ExpireReport {
    pub dry_run: bool,
    /// Calls that started before this are past retention.
    pub cutoff: Option<String>,
    /// Recordings deleted and marked expired.
    pub deleted: u64,
    pub bytes: u64,
    pub call_ids: Vec<String>,
    /// Marked expired although the object was already gone.
    pub already_gone: u64,
    /// Left as they are, with why (storage away, a path outside
    /// `recording.dir`, a backend not configured).
    pub failed: Vec<ExpireFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpireFailure {
    pub call_id: String,
    pub reason: String,
}

/// Deletes the recordings past `cfg.storage.retention_days` at `now`.
/// Nothing happens when retention is 0 (keep forever). Running it again
/// deletes nothing more: only `stored` rows are looked at.
pub async fn expire(
    db: &Db,
    storage: Option<&Storage>,
    cfg: &Config,
    now: Timestamp,
    dry_run: bool,
) -> Result<ExpireReport, RetentionError> {
    let mut report = ExpireReport {
        dry_run,
        ..ExpireReport::default()
    };
    let days = cfg.storage.retention_days;
    if days == 0 {
        return Ok(report);
    }
    let cutoff = Timestamp::from_micros(
        now.micros()
            .saturating_sub(i64::from(days).saturating_mul(86_400_000_000)),
    );
    report.cutoff = Some(cutoff.to_rfc3339());
    let mut after = 0i64;
    loop {
        let rows = stored_before(db, cutoff, after, BATCH).await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for rec in &rows {
            match delete_one(rec, storage, &cfg.recording.dir, dry_run).await {
                Ok(gone) => {
                    if !dry_run && !mark_expired(db, rec.id).await? {
                        continue;
                    }
                    match gone {
                        Some(bytes) => {
                            report.deleted += 1;
                            report.bytes += bytes;
                            report.call_ids.push(rec.call_id.clone());
                        }
                        None => report.already_gone += 1,
                    }
                    if !dry_run {
                        tracing::info!(call_id = %rec.call_id, bytes = gone.unwrap_or(0), "recording expired");
                    }
                }
                Err(reason) => {
                    tracing::warn!(call_id = %rec.call_id, %reason, "cannot expire recording");
                    report.failed.push(ExpireFailure {
                        call_id: rec.call_id.clone(),
                        reason,
                    });
                }
            }
        }
        if rows.len() < BATCH as usize {
            break;
        }
    }
    Ok(report)
}

/// Deletes one recording: `Some(bytes)` when it existed, `None` when it
/// was already gone. A dry run only measures.
async fn delete_one(
    rec: &RecordingRef,
    storage: Option<&Storage>,
    dir: &Path,
    dry_run: bool,
) -> Result<Option<u64>, String> {
    let backend = rec.backend.as_deref().unwrap_or("local");
    if backend == "local" {
        let path = rec
            .path
            .as_deref()
            .ok_or_else(|| "recording_path is empty".to_owned())?;
        let path = inside(dir, Path::new(path)).ok_or_else(|| {
            format!(
                "recording_path {path:?} is not inside recording.dir {}",
                dir.display()
            )
        })?;
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        if !dry_run {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(format!("deleting {}: {e}", path.display())),
            }
        }
        return Ok(Some(size));
    }
    let st = storage
        .filter(|s| s.backend_name() == backend)
        .ok_or_else(|| {
            format!(
                "stored in {backend:?}, which is not the configured storage.backend ({})",
                storage.map_or("local", Storage::backend_name)
            )
        })?;
    let key = rec
        .key
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| "recording_key is empty".to_owned())?;
    let path = object_store::path::Path::from(key);
    let op_err =
        |op: &'static str, source: object_store::Error| st.op_error(op, key, source).to_string();
    let size = match st.object_store().head(&path).await {
        Ok(meta) => meta.size,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(op_err("looking up", e)),
    };
    if !dry_run {
        match st.object_store().delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(op_err("deleting", e)),
        }
    }
    Ok(Some(size))
}

/// `path` when it lies in `dir` (`..` refused), relative paths taken from
/// the working folder as the recorder wrote them.
pub(crate) fn inside(dir: &Path, path: &Path) -> Option<PathBuf> {
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return None;
    }
    let strip_cur = |p: &Path| -> PathBuf {
        p.components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect()
    };
    let (d, p) = (strip_cur(dir), strip_cur(path));
    (p.starts_with(&d) && p != d).then_some(p)
}

/// Runs [`expire`] every `storage.expire_interval_secs` until `stop` says
/// so. Does nothing when retention is 0. Errors are logged, not fatal: the
/// next round tries again.
pub async fn run_periodically(
    db: Db,
    storage: Option<Storage>,
    cfg: Config,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if cfg.storage.retention_days == 0 {
        return;
    }
    let every = Duration::from_secs(cfg.storage.expire_interval_secs.max(60));
    loop {
        match expire(&db, storage.as_ref(), &cfg, Timestamp::now(), false).await {
            Ok(r) if r.deleted > 0 || !r.failed.is_empty() => tracing::info!(
                deleted = r.deleted,
                bytes = r.bytes,
                failed = r.failed.len(),
                "retention run"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention run failed; trying again later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_inside_the_recording_dir() {
        let d = Path::new("/var/rec");
        assert_eq!(
            inside(d, Path::new("/var/rec/2024/01/02/a.wav")),
            Some(PathBuf::from("/var/rec/2024/01/02/a.wav"))
        );
        assert_eq!(inside(d, Path::new("/var/rec/../etc/passwd")), None);
        assert_eq!(inside(d, Path::new("/var/recx/a.wav")), None);
        assert_eq!(inside(d, Path::new("/var/rec")), None);
        assert_eq!(
            inside(
                Path::new("./recordings"),
                Path::new("recordings/2024/a.wav")
            ),
            Some(PathBuf::from("recordings/2024/a.wav"))
        );
    }
}
