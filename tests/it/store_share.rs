//! Recordings to a network share (`[storage] backend = "share"`), through
//! replay: uploaded byte for byte, the row marked stored with key, size and
//! SHA-256, the local copy gone; with the share away the calls are still
//! recorded and wait in the spool, and the next run uploads them once.

use crate::db_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::ObjectStore;
use pbxbridge::config::{Config, StorageBackend};
use pbxbridge::db::{Db, DbOptions};
use pbxbridge::replay::{ReplayError, ReplayOptions, ReplaySummary};
use pbxbridge::report::RecordingStatus;
use pbxbridge::store::uploader::hash_file;

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    share: PathBuf,
    db_url: String,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        Setup {
            share: root.join("share"),
            db_url: format!("sqlite://{}", root.join("calls.db").display()),
            root,
            _tmp: tmp,
        }
    }

    fn config(&self) -> Config {
        let mut cfg = Config::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/pcap-fixtures/pbxbridge.toml"
        )))
        .unwrap();
        cfg.database.url = self.db_url.clone();
        cfg.recording.dir = self.root.join("recordings");
        cfg.daemon.state_dir = self.root.join("state");
        cfg.storage.backend = StorageBackend::Share;
        cfg.storage.path = Some(self.share.clone());
        cfg
    }

    async fn replay(&self, wait: Duration) -> Result<ReplaySummary, ReplayError> {
        let mut opts = ReplayOptions::new(
            vec![PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/pcap-fixtures/answered_caller_bye.pcap"
            ))],
            false,
        );
        opts.db_wait = wait;
        pbxbridge::replay::run(self.config(), opts).await
    }

    async fn db(&self) -> Db {
        Db::connect(&self.db_url, &DbOptions::default())
            .await
            .unwrap()
    }

    /// status|backend|key|bytes|sha256 of the one answered call.
    async fn row(&self) -> Vec<String> {
        let db = self.db().await;
        db_support::strings(
            &db,
            "SELECT recording_status || '|' || COALESCE(recording_backend, '-') || '|' || \
             COALESCE(recording_key, '-') || '|' || COALESCE(CAST(recording_bytes AS TEXT), '-') \
             || '|' || COALESCE(recording_sha256, '-') || '|' || \
             CASE WHEN recording_stored_at IS NULL THEN 'no' ELSE 'yes' END \
             FROM {calls} WHERE answered_at IS NOT NULL",
        )
        .await
    }

    fn local_wavs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.root.join("recordings"), &mut out);
        out.retain(|p| !p.components().any(|c| c.as_os_str() == ".spool"));
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|e| e == "wav") {
            out.push(p);
        }
    }
}

#[tokio::test]
async fn a_recording_reaches_the_share_and_its_row_says_stored() {
    let s = Setup::new();
    let summary = s.replay(Duration::from_secs(120)).await.unwrap();
    let answered: Vec<_> = summary
        .calls
        .iter()
        .filter(|c| c.answered_at.is_some())
        .collect();
    assert_eq!(answered.len(), 1);
    let rec = &answered[0].recording;
    // The call record says where the file will go, not that it is there.
    assert_eq!(rec.status, RecordingStatus::Pending);
    assert_eq!(rec.backend.as_deref(), Some("share"));
    let key = rec.key.clone().unwrap();
    assert!(
        key.starts_with("recordings/") && key.ends_with(".wav"),
        "{key}"
    );
    let local = PathBuf::from(rec.path.clone().unwrap());
    assert_eq!(
        summary
            .uploads
            .as_ref()
            .unwrap()
            .uploaded
            .load(Ordering::Relaxed),
        1
    );

    let object = s.share.join(&key);
    let (size, sha) = hash_file(&object).unwrap();
    assert_eq!(Some(size), rec.bytes, "the share has the whole file");
    assert!(!local.exists(), "the local copy is deleted once stored");
    assert!(s.local_wavs().is_empty(), "{:?}", s.local_wavs());
    assert_eq!(
        s.row().await,
        vec![format!("stored|share|{key}|{size}|{sha}|yes")]
    );
    let wav = hound::WavReader::open(&object).unwrap();
    assert_eq!(wav.spec().channels, 2);
    assert_eq!(u64::from(wav.duration()), rec.samples.unwrap());
}

#[tokio::test]
async fn with_the_share_away_calls_wait_in_the_spool_and_go_up_once_when_it_is_back() {
    let s = Setup::new();
    // The mount is gone: a plain file where the folder should be.
    std::fs::write(&s.share, b"not a folder").unwrap();
    let err = s.replay(Duration::from_secs(3)).await.unwrap_err();
    assert!(
        matches!(err, ReplayError::NotUploaded { files: 1, .. }),
        "{err}"
    );
    let rows = s.row().await;
    assert_eq!(rows.len(), 1);
    let parts: Vec<&str> = rows[0].split('|').collect();
    assert_eq!(parts[0..2], ["pending", "share"], "{rows:?}");
    assert_eq!(parts[4..6], ["-", "no"], "{rows:?}");
    let key = parts[2].to_owned();
    let waiting = s.local_wavs();
    assert_eq!(waiting.len(), 1, "the recording stays in the spool");
    let (size, sha) = hash_file(&waiting[0]).unwrap();

    // The share comes back holding the temp file of an upload that was cut
    // off: it must never show under the final key.
    std::fs::remove_file(&s.share).unwrap();
    let stale = s.share.join(format!("{key}#1"));
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, &b"RIFF half a file"[..]).unwrap();
    let fs = object_store::local::LocalFileSystem::new_with_prefix(&s.share).unwrap();
    let listed: Vec<_> = fs.list(None).try_collect().await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");

    // The next run records the same capture again and uploads once.
    let summary = s.replay(Duration::from_secs(120)).await.unwrap();
    assert_eq!(
        summary
            .uploads
            .as_ref()
            .unwrap()
            .uploaded
            .load(Ordering::Relaxed),
        1
    );
    assert_eq!(
        s.row().await,
        vec![format!("stored|share|{key}|{size}|{sha}|yes")]
    );
    assert_eq!(hash_file(&s.share.join(&key)).unwrap(), (size, sha.clone()));
    assert!(s.local_wavs().is_empty());
    let listed: Vec<String> = fs
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed, vec![key.clone()]);

    // A third run finds the row stored with the same file: nothing goes up,
    // and the row does not fall back to pending.
    let summary = s.replay(Duration::from_secs(120)).await.unwrap();
    assert_eq!(
        summary
            .uploads
            .as_ref()
            .unwrap()
            .uploaded
            .load(Ordering::Relaxed),
        0
    );
    assert_eq!(
        s.row().await,
        vec![format!("stored|share|{key}|{size}|{sha}|yes")]
    );
    assert!(s.local_wavs().is_empty());
}

#[tokio::test]
async fn large_recordings_go_up_in_parts() {
    let s = Setup::new();
    let mut cfg = s.config();
    // Every file counts as large: the multipart path.
    cfg.storage.multipart_threshold_mib = 0;
    let opts = ReplayOptions {
        db_wait: Duration::from_secs(120),
        ..ReplayOptions::new(
            vec![PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/pcap-fixtures/answered_caller_bye.pcap"
            ))],
            false,
        )
    };
    let summary = pbxbridge::replay::run(cfg, opts).await.unwrap();
    let rec = &summary
        .calls
        .iter()
        .find(|c| c.answered_at.is_some())
        .unwrap()
        .recording;
    let key = rec.key.clone().unwrap();
    let (size, sha) = hash_file(&s.share.join(&key)).unwrap();
    assert_eq!(Some(size), rec.bytes);
    assert_eq!(
        s.row().await,
        vec![format!("stored|share|{key}|{size}|{sha}|yes")]
    );
    assert!(s.local_wavs().is_empty());
}
