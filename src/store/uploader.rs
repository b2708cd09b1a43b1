//! Moves finished recordings from the local spool (`recording.dir`) to remote
//! storage. The local file is the truth until the call row says `stored`:
//! upload, check the size storage reports, mark the row, and only then delete.
//! Storage or database away: retry with backoff, never give up.

use std::collections::{BinaryHeap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use object_store::path::Path as Key;
use object_store::{
    Attribute, Attributes, PutMultipartOptions, PutOptions, PutPayload, WriteMultipart,
};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

use super::{object_key, Storage, StoreError};
use crate::backoff::Backoff;
use crate::config::{StorageBackend, StorageConfig};
use crate::db::{Db, DbError, DbTime, SharedDb};
use crate::events::model::RecordingData;
use crate::events::{Emitter, EventType};
use crate::report::{RecordingReport, RecordingStatus};
use crate::time::Timestamp;

mod spool;
pub use spool::{hash_file, scan, upload, Scan, Waiting};

/// Where finished recordings go, known without reaching storage: the
/// recorder names a pending recording's key from it.
#[derive(Clone, Debug)]
pub struct RemoteTarget {
    backend: &'static str,
    prefix: String,
}

impl RemoteTarget {
    /// `None` for the local backend.
    pub fn from_config(cfg: &StorageConfig) -> Option<RemoteTarget> {
        let backend = match cfg.backend {
            StorageBackend::Local => return None,
            StorageBackend::Share => "share",
            StorageBackend::S3 => "s3",
        };
        Some(RemoteTarget {
            backend,
            prefix: cfg.prefix.clone(),
        })
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    pub fn key_for(&self, relative: &Path) -> Key {
        object_key(&self.prefix, relative)
    }

    /// A report of a file filed under `dir` becomes `pending`, with its key.
    pub fn mark_pending(&self, report: &mut RecordingReport, dir: &Path) {
        if report.status != RecordingStatus::Stored {
            return;
        }
        let Some(rel) = report
            .path
            .as_deref()
            .and_then(|p| Path::new(p).strip_prefix(dir).ok())
        else {
            return;
        };
        report.key = Some(self.key_for(rel).to_string());
        report.backend = Some(self.backend.to_owned());
        report.status = RecordingStatus::Pending;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{key}: storage reports {found} bytes after the upload; the file has {expected}")]
    SizeMismatch {
        key: String,
        expected: u64,
        found: u64,
    },
    #[error("reading recording {path}: {source}")]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Gauges and counters for `/metrics` and replay's summary.
#[derive(Debug, Default)]
pub struct UploadStats {
    /// Finished recordings waiting for storage, and their bytes plus the
    /// open calls' spool.
    pub pending_files: AtomicU64,
    pub pending_bytes: AtomicU64,
    pub over_alarm: AtomicBool,
    pub uploaded: AtomicU64,
    pub uploaded_bytes: AtomicU64,
    pub errors: AtomicU64,
    /// Set once a scan found nothing left to do.
    pub idle: AtomicBool,
}

/// Asks a running uploader to stop or to finish.
#[derive(Clone, Debug, Default)]
pub struct UploadControl {
    stop: Arc<AtomicBool>,
    finish: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

impl UploadControl {
    /// Return after the file in hand (the daemon stopping).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Return once nothing is left in the spool (replay at its end).
    pub fn finish(&self) {
        self.finish.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Look at the spool now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sleeps `d`, cut short by `stop`, `finish` or `wake`.
    async fn pause(&self, d: Duration) {
        if self.stopped() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.wake.notified() => {}
        }
    }
}

/// Files looked at per pass: the oldest first, so a long outage drains in order.
const SCAN_BATCH: usize = 1024;
/// Uploaded keys whose call row had not arrived yet, remembered so that they
/// are not uploaded again; beyond this they are (harmlessly) uploaded again.
const MAX_REMEMBERED: usize = 16_384;

/// An upload done while its call row had not arrived yet.
struct Remembered {
    size: u64,
    modified: SystemTime,
    sha256: String,
}
/// Retry steps while storage or the database is away.
const UPLOAD_BACKOFF_MIN: Duration = Duration::from_millis(500);
const UPLOAD_BACKOFF_MAX: Duration = Duration::from_secs(60);
const IDLE_POLL: Duration = Duration::from_secs(2);
const ROW_POLL: Duration = Duration::from_millis(500);
const MULTIPART_CHUNK: usize = 8 * 1024 * 1024;
const READ_CHUNK: usize = 1024 * 1024;
const MIB: u64 = 1024 * 1024;

pub struct Uploader {
    cfg: StorageConfig,
    dir: PathBuf,
    db: SharedDb,
    stats: Arc<UploadStats>,
    control: UploadControl,
    /// Told of each recording once storage has it and its row says so.
    events: Option<Emitter>,
}

enum Done {
    /// The row says stored; the local file is gone.
    Stored,
    /// Uploaded, but no call row names the key yet (still in the outbox).
    RowMissing,
    /// Uploaded; the database could not be asked.
    NoDb,
    /// The file vanished or retention had expired it.
    Gone,
}

impl Uploader {
    /// `None` for the local backend. `dir` is `recording.dir`.
    pub fn new(
        cfg: &StorageConfig,
        dir: &Path,
        db: SharedDb,
        events: Option<Emitter>,
    ) -> Option<Uploader> {
        RemoteTarget::from_config(cfg)?;
        Some(Uploader {
            events,
            cfg: cfg.clone(),
            dir: std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
            db,
            stats: Arc::default(),
            control: UploadControl::default(),
        })
    }

    pub fn stats(&self) -> Arc<UploadStats> {
        self.stats.clone()
    }

    pub fn control(&self) -> UploadControl {
        self.control.clone()
    }

    /// Runs until stopped, or with `finish` until the spool is empty.
    pub async fn run(self) {
        let mut backoff = Backoff::new(UPLOAD_BACKOFF_MIN, UPLOAD_BACKOFF_MAX);
        let mut storage: Option<Storage> = None;
        let mut db: Option<Db> = None;
        let mut remembered: HashMap<String, Remembered> = HashMap::new();
        let alarm = self.cfg.spool_alarm_mib.saturating_mul(MIB);
        loop {
            if self.control.stopped() {
                return;
            }
            let dir = self.dir.clone();
            let scan = tokio::task::spawn_blocking(move || scan(&dir, SCAN_BATCH))
                .await
                .unwrap_or_default();
            self.publish(&scan, alarm);
            if scan.files.is_empty() {
                self.stats.idle.store(true, Ordering::Release);
                if self.control.finish.load(Ordering::Acquire) {
                    return;
                }
                self.control.pause(IDLE_POLL).await;
                continue;
            }
            self.stats.idle.store(false, Ordering::Release);
            let store = match &storage {
                Some(s) => s.clone(),
                None => match Storage::from_config(&self.cfg) {
                    Ok(Some(s)) => {
                        storage = Some(s.clone());
                        s
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let wait = backoff.next_wait();
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, files = scan.total_files, retry_in_ms = wait.as_millis() as u64, "storage cannot be opened; recordings wait in the spool");
                        self.control.pause(wait).await;
                        continue;
                    }
                },
            };
            if db.is_none() {
                match self.db.get().await {
                    Ok(d) => db = Some(d),
                    Err(e) => {
                        tracing::warn!(error = %e, "database unreachable; recordings are uploaded and marked stored once it answers")
                    }
                }
            }
            let mut row_missing = false;
            let mut failed = None;
            for file in &scan.files {
                if self.control.stopped() {
                    return;
                }
                match self
                    .process(&store, db.as_ref(), file, &mut remembered)
                    .await
                {
                    Ok(Done::Stored | Done::Gone) => backoff.reset(),
                    Ok(Done::RowMissing) => row_missing = true,
                    Ok(Done::NoDb) => failed = Some(file.relative.clone()),
                    Err(e) => {
                        let wait = backoff.next_wait();
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            call_id = %call_id_of(&file.relative),
                            key = %store.key_for(&file.relative),
                            error = %e,
                            retry_in_ms = wait.as_millis() as u64,
                            "recording upload failed; it stays in the spool and is retried"
                        );
                        if matches!(&e, UploadError::Db(_)) {
                            db = None;
                            self.db.reset().await;
                        }
                        failed = Some(file.relative.clone());
                        self.control.pause(wait).await;
                        break;
                    }
                }
            }
            if failed.is_some() && db.is_none() {
                self.control.pause(backoff.next_wait()).await;
            } else if row_missing {
                self.control.pause(ROW_POLL).await;
            }
        }
    }

    fn publish(&self, scan: &Scan, alarm: u64) {
        let s = &self.stats;
        s.pending_files.store(scan.total_files, Ordering::Relaxed);
        s.pending_bytes.store(scan.total_bytes, Ordering::Relaxed);
        let over = alarm > 0 && scan.total_bytes > alarm;
        let was = s.over_alarm.swap(over, Ordering::Relaxed);
        if over && !was {
            tracing::warn!(
                files = scan.total_files,
                "storage is behind: {} MiB of recordings wait in the spool (alarm at {} MiB); recording continues",
                scan.total_bytes / MIB,
                alarm / MIB
            );
        } else if was && !over {
            tracing::info!(
                files = scan.total_files,
                "storage caught up: {} MiB of recordings wait in the spool (alarm at {} MiB)",
                scan.total_bytes / MIB,
                alarm / MIB
            );
        }
    }

    async fn process(
        &self,
        storage: &Storage,
        db: Option<&Db>,
        file: &Waiting,
        remembered: &mut HashMap<String, Remembered>,
    ) -> Result<Done, UploadError> {
        let key = storage.key_for(&file.relative);
        let key_text = key.to_string();
        let call_id = call_id_of(&file.relative);
        // A finished recording never changes: one whose upload is remembered
        // with the same size and mtime is not read and hashed again on every
        // pass while its call row is still on its way.
        let known = remembered
            .get(&key_text)
            .filter(|r| r.size == file.size && r.modified == file.modified)
            .map(|r| r.sha256.clone());
        let already = known.is_some();
        let (size, sha256) = match known {
            Some(sha256) => (file.size, sha256),
            None => {
                let path = file.path.clone();
                let hashed = tokio::task::spawn_blocking(move || hash_file(&path))
                    .await
                    .map_err(|e| UploadError::Local {
                        path: file.path.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                match hashed {
                    Ok(h) => h,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Done::Gone),
                    Err(source) => {
                        return Err(UploadError::Local {
                            path: file.path.clone(),
                            source,
                        })
                    }
                }
            }
        };
        if !already {
            if let Some(db) = db {
                if let Some(state) = db.recording_state(&key_text).await? {
                    let same = state.sha256.as_deref() == Some(sha256.as_str());
                    if state.status == RecordingStatus::Expired
                        || (state.status == RecordingStatus::Stored && same)
                    {
                        // Stored before a crash kept us from deleting it, or a
                        // replay recorded it again; retention's word is final.
                        tracing::info!(call_id = %call_id, key = %key_text, status = %state.status, "recording is already in storage; local copy removed");
                        remove_local(&file.path);
                        return Ok(Done::Gone);
                    }
                }
            }
            upload(storage, &key, &file.path, size, self.threshold()).await?;
            let found = storage
                .object_store()
                .head(&key)
                .await
                .map_err(|e| op_err(storage, "checking", &key, e))?
                .size;
            if found != size {
                return Err(UploadError::SizeMismatch {
                    key: key_text,
                    expected: size,
                    found,
                });
            }
            // The row is marked stored and the local copy deleted only
            // after the file and its directory entry are on the share's disk.
            storage
                .make_durable(&key)
                .await
                .map_err(UploadError::Store)?;
            self.stats.uploaded.fetch_add(1, Ordering::Relaxed);
            self.stats.uploaded_bytes.fetch_add(size, Ordering::Relaxed);
            tracing::debug!(call_id = %call_id, key = %key_text, bytes = size, "recording uploaded");
            if remembered.len() < MAX_REMEMBERED {
                remembered.insert(
                    key_text.clone(),
                    Remembered {
                        size,
                        modified: file.modified,
                        sha256: sha256.clone(),
                    },
                );
            }
        }
        let Some(db) = db else {
            return Ok(Done::NoDb);
        };
        let rows = db
            .mark_stored(
                &key_text,
                storage.backend_name(),
                size,
                &sha256,
                DbTime(Timestamp::now()),
            )
            .await?;
        if rows == 0 {
            return Ok(Done::RowMissing);
        }
        remembered.remove(&key_text);
        remove_local(&file.path);
        tracing::info!(call_id = %call_id, key = %key_text, bytes = size, "recording stored");
        if let Some(ev) = &self.events {
            let data = RecordingData {
                call: 0,
                agent_id: None,
                status: "stored".into(),
                key: Some(key_text.clone()),
                bytes: Some(size),
                detail: None,
            };
            ev.about_row(
                EventType::RecordingStored,
                &call_id,
                Timestamp::now(),
                &data,
            );
        }
        Ok(Done::Stored)
    }

    fn threshold(&self) -> u64 {
        self.cfg.multipart_threshold_mib.saturating_mul(MIB)
    }
}

fn op_err(storage: &Storage, op: &'static str, key: &Key, e: object_store::Error) -> UploadError {
    UploadError::Store(storage.op_error(op, key.as_ref(), e))
}

fn remove_local(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot delete the uploaded recording from the spool");
        }
    }
}

/// The file name is the (cleaned) Call-ID.
fn call_id_of(relative: &Path) -> String {
    relative
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_lists_finished_files_oldest_first_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("2024/01/02");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::create_dir_all(dir.path().join(".spool")).unwrap();
        std::fs::create_dir_all(dir.path().join("recovered/2024/01/02")).unwrap();
        std::fs::write(day.join("b.wav"), b"bb").unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        let f = std::fs::File::create(day.join("a.wav")).unwrap();
        std::io::Write::write_all(&mut &f, b"aaa").unwrap();
        f.set_modified(old).unwrap();
        std::fs::write(day.join(".c.wav.tmp"), b"x").unwrap();
        std::fs::write(day.join("d.txt"), b"x").unwrap();
        // Ogg/Opus recordings (recording.format = "opus") wait the same way;
        // the hidden file they are written through does not.
        let e = std::fs::File::create(day.join("e.ogg")).unwrap();
        std::io::Write::write_all(&mut &e, b"eeee").unwrap();
        e.set_modified(old + Duration::from_secs(1)).unwrap();
        std::fs::write(day.join(".e.ogg.tmp"), b"x").unwrap();
        std::fs::write(dir.path().join(".spool/1-x.wav"), b"12345").unwrap();
        std::fs::write(dir.path().join("recovered/2024/01/02/r.wav"), b"r").unwrap();
        let s = scan(dir.path(), 10);
        let names: Vec<_> = s.files.iter().map(|w| w.relative.clone()).collect();
        assert_eq!(
            names,
            vec![
                PathBuf::from("2024/01/02/a.wav"),
                PathBuf::from("2024/01/02/e.ogg"),
                PathBuf::from("2024/01/02/b.wav")
            ]
        );
        assert_eq!(s.total_files, 3);
        assert_eq!(s.total_bytes, 3 + 4 + 2 + 5);
        let s = scan(dir.path(), 1);
        assert_eq!(s.files.len(), 1);
        assert_eq!(s.files[0].relative, PathBuf::from("2024/01/02/a.wav"));
        assert_eq!(s.total_files, 3);
    }

    #[test]
    fn pending_reports_carry_the_key() {
        let cfg = StorageConfig {
            backend: StorageBackend::S3,
            prefix: "rec/x".into(),
            ..StorageConfig::default()
        };
        let t = RemoteTarget::from_config(&cfg).unwrap();
        let mut r = RecordingReport::without_file(RecordingStatus::Stored, None);
        r.path = Some("/data/rec/2024/01/02/abc.wav".into());
        t.mark_pending(&mut r, Path::new("/data/rec"));
        assert_eq!(r.status, RecordingStatus::Pending);
        assert_eq!(r.key.as_deref(), Some("rec/x/2024/01/02/abc.wav"));
        assert_eq!(r.backend.as_deref(), Some("s3"));
        let mut none = RecordingReport::without_file(RecordingStatus::NoAudio, None);
        t.mark_pending(&mut none, Path::new("/data/rec"));
        assert_eq!(none.status, RecordingStatus::NoAudio);
        assert!(RemoteTarget::from_config(&StorageConfig::default()).is_none());
    }
}
