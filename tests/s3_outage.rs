//! Storage down while calls finish: a real Garage is stopped, captures with
//! answered calls are replayed (the calls are recorded and wait in the spool,
//! their rows say pending), Garage comes back while the replay waits, and every
//! recording is uploaded exactly once, byte for byte, with every row stored.

mod db_support;
mod store_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use pbxbridge::config::Config;
use pbxbridge::db::{Db, DbOptions};
use pbxbridge::replay::ReplayOptions;
use sha2::{Digest, Sha256};

const ANSWERED: [&str; 4] = [
    "answered_caller_bye",
    "answered_callee_bye",
    "dtmf",
    "hold_reinvite",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(format!(
        "{}/pcap-fixtures/{name}.pcap",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn wavs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            wavs(&p, out);
        } else if p.extension().is_some_and(|e| e == "wav") {
            out.push(p);
        }
    }
}

/// `status|key|bytes|sha256` of every call that has a recording.
async fn recorded_rows(db: &Db) -> Vec<String> {
    db_support::strings(
        db,
        "SELECT recording_status || '|' || recording_key || '|' || \
         CAST(recording_bytes AS TEXT) || '|' || COALESCE(recording_sha256, '-') \
         FROM {calls} WHERE recording_key IS NOT NULL ORDER BY recording_key",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_wait_out_an_s3_outage_and_go_up_exactly_once() {
    let mut garage = store_support::Garage::start().await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let db_url = format!("sqlite://{}", root.join("calls.db").display());
    let mut cfg = Config::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pcap-fixtures/pbxbridge.toml"
    )))
    .expect("fixture config");
    cfg.database.url = db_url.clone();
    cfg.recording.dir = root.join("recordings");
    cfg.daemon.state_dir = root.join("state");
    cfg.storage = garage.storage_config("outage");

    garage.stop().await;
    let mut opts = ReplayOptions::new(ANSWERED.iter().map(|f| fixture(f)).collect(), true);
    opts.db_wait = Duration::from_secs(120);
    let replay = tokio::spawn(pbxbridge::replay::run(cfg.clone(), opts));

    // The calls end and reach the database while storage is down: pending.
    let db = Db::connect(&db_url, &DbOptions::default())
        .await
        .expect("database");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = recorded_rows(&db).await;
        if rows.len() == ANSWERED.len() {
            assert!(
                rows.iter().all(|r| r.starts_with("pending|")),
                "storage is down, so nothing is stored yet: {rows:?}"
            );
            break;
        }
        if replay.is_finished() {
            let out = replay.await.expect("replay task");
            panic!("replay stopped before storage came back: {out:?}");
        }
        assert!(
            Instant::now() < deadline,
            "the calls never reached the database: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut spooled = Vec::new();
    wavs(&root.join("recordings"), &mut spooled);
    spooled.retain(|p| !p.components().any(|c| c.as_os_str() == ".spool"));
    assert_eq!(
        spooled.len(),
        ANSWERED.len(),
        "every recording waits in the spool: {spooled:?}"
    );
    // Let the uploader fail a few times against the dead server.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!replay.is_finished(), "replay waits for storage");

    garage.restart().await;
    let summary = tokio::time::timeout(Duration::from_secs(120), replay)
        .await
        .expect("replay finishes once storage is back")
        .expect("replay task")
        .expect("replay succeeds");
    let uploads = summary.uploads.expect("remote storage has an uploader");
    assert_eq!(
        uploads.uploaded.load(Ordering::Relaxed),
        ANSWERED.len() as u64,
        "each recording uploaded exactly once"
    );

    let rows = recorded_rows(&db).await;
    assert_eq!(rows.len(), ANSWERED.len(), "{rows:?}");
    let storage = pbxbridge::store::Storage::from_config(&cfg.storage)
        .expect("storage")
        .expect("s3 is remote");
    let store = storage.object_store();
    let listed: Vec<_> = store
        .list(Some(&object_store::path::Path::from("outage")))
        .try_collect()
        .await
        .expect("list bucket");
    assert_eq!(
        listed.len(),
        ANSWERED.len(),
        "one object per call: {listed:?}"
    );
    for row in &rows {
        let parts: Vec<&str> = row.split('|').collect();
        assert_eq!(parts[0], "stored", "{row}");
        let key = object_store::path::Path::from(parts[1]);
        assert!(
            parts[1].starts_with("outage/20") && parts[1].ends_with(".wav"),
            "{row}"
        );
        let body = store
            .get(&key)
            .await
            .expect("object exists")
            .bytes()
            .await
            .expect("object body");
        assert_eq!(
            body.len().to_string(),
            parts[2],
            "size matches the row: {row}"
        );
        let sha: String = Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sha, parts[3], "content matches the row: {row}");
        assert_eq!(&body[..4], b"RIFF", "a WAV: {row}");
    }
    let mut left = Vec::new();
    wavs(&root.join("recordings"), &mut left);
    left.retain(|p| !p.components().any(|c| c.as_os_str() == ".spool"));
    assert!(
        left.is_empty(),
        "uploaded recordings leave the spool: {left:?}"
    );
}
