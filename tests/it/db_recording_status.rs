//! The uploader's columns on SQLite, PostgreSQL and MariaDB: a pending row
//! becomes stored by its key, and re-upserting the call (retry, restart,
//! replay) never moves it back to pending.

use crate::db_support;

use db_support::{strings, TestDb, ALL};
use pbxbridge::db::{DbTime, RecordingState};
use pbxbridge::report::{CallReport, RecordingReport, RecordingStatus};
use pbxbridge::time::Timestamp;

fn pending_call(call_id: &str, key: &str) -> CallReport {
    let leg = serde_json::json!({"packets": 1, "lost": 0, "jitter_ms": 0.0});
    let mut c: CallReport = serde_json::from_value(serde_json::json!({
        "call_id": call_id,
        "direction": "incoming",
        "from_number": null, "to_number": null, "from_raw": null, "to_raw": null,
        "from_display": null, "agent": null,
        "started_at": Timestamp::from_secs(1_700_000_000),
        "answered_at": Timestamp::from_secs(1_700_000_001),
        "ended_at": Timestamp::from_secs(1_700_000_010),
        "duration": 9.0, "outcome": "answered", "sip_code": 200,
        "end_reason": "caller_bye", "answered_elsewhere": false, "dtmf": "", "held": false,
        // An outbox line written before the storage columns existed.
        "recording": {"status": "stored", "path": "/r/x.wav", "codec": "PCMU",
                      "sample_rate": 8000, "channels": 2, "samples": 72000,
                      "bytes": 288044, "detail": null},
        "sip_src": null, "sip_dst": null,
        "rtp": {"caller": leg, "callee": leg}
    }))
    .expect("old outbox JSON still reads");
    assert_eq!(c.recording.key, None);
    c.recording = RecordingReport {
        status: RecordingStatus::Pending,
        backend: Some("share".into()),
        key: Some(key.into()),
        ..c.recording
    };
    c
}

async fn row(db: &pbxbridge::db::Db, call_id: &str) -> Vec<String> {
    strings(
        db,
        &format!(
            "SELECT {} FROM {{calls}} WHERE call_id = '{call_id}'",
            db.dialect().cast_text(&format!(
                "CONCAT_WS('|', recording_status, COALESCE(recording_backend, '-'), \
             COALESCE(recording_key, '-'), COALESCE(recording_sha256, '-'), \
             COALESCE(recording_path, '-'), {}, \
             CASE WHEN recording_stored_at IS NULL THEN 'no' ELSE 'yes' END)",
                db.dialect().cast_text("recording_bytes")
            ))
        ),
    )
    .await
}

#[tokio::test]
async fn stored_recordings_stay_stored_when_the_call_is_written_again() {
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = t.connect().await;
        let key = "recordings/2023/11/14/a@b.wav";
        let call = pending_call("a@b", key);
        db.upsert_calls("s1", std::slice::from_ref(&call))
            .await
            .unwrap();
        assert_eq!(
            db.recording_state(key).await.unwrap(),
            Some(RecordingState {
                status: RecordingStatus::Pending,
                sha256: None
            }),
            "{backend:?}"
        );
        // Not there yet: nothing changes.
        assert_eq!(
            db.mark_stored(
                "recordings/other.wav",
                "share",
                1,
                "00",
                DbTime(Timestamp::now())
            )
            .await
            .unwrap(),
            0,
            "{backend:?}"
        );
        let sha = "ab".repeat(32);
        let n = db
            .mark_stored(key, "share", 288_100, &sha, DbTime(Timestamp::now()))
            .await
            .unwrap();
        assert_eq!(n, 1, "{backend:?}");
        let stored = row(&db, "a@b").await;
        assert_eq!(
            stored,
            vec![format!("stored|share|{key}|{sha}|-|288100|yes")],
            "{backend:?}"
        );
        // A retry or a replay re-upserts the call as the recorder saw it.
        db.upsert_calls("s1", std::slice::from_ref(&call))
            .await
            .unwrap();
        assert_eq!(row(&db, "a@b").await, stored, "{backend:?}");
        // The rest of the row is still replaced.
        let mut later = call.clone();
        later.dtmf = "123#".into();
        db.upsert_calls("s1", &[later]).await.unwrap();
        assert_eq!(
            strings(&db, "SELECT dtmf FROM {calls} WHERE call_id = 'a@b'").await,
            vec!["123#".to_string()],
            "{backend:?}"
        );
        assert_eq!(row(&db, "a@b").await, stored, "{backend:?}");

        // Expired by retention: also kept, and never marked stored again.
        db_support::exec(
            &db,
            &db.sql("UPDATE {calls} SET recording_status = 'expired' WHERE call_id = 'a@b'"),
        )
        .await;
        db.upsert_calls("s1", std::slice::from_ref(&call))
            .await
            .unwrap();
        assert_eq!(
            db.recording_state(key).await.unwrap().map(|s| s.status),
            Some(RecordingStatus::Expired),
            "{backend:?}"
        );
        assert_eq!(
            db.mark_stored(key, "share", 1, &sha, DbTime(Timestamp::now()))
                .await
                .unwrap(),
            0,
            "{backend:?}"
        );

        // A pending row is still updated by a re-upsert (new path, bytes).
        let other = pending_call("c@d", "recordings/2023/11/14/c@d.wav");
        db.upsert_calls("s1", std::slice::from_ref(&other))
            .await
            .unwrap();
        let mut again = other.clone();
        again.recording.bytes = Some(5);
        db.upsert_calls("s1", &[again]).await.unwrap();
        assert_eq!(
            row(&db, "c@d").await,
            vec!["pending|share|recordings/2023/11/14/c@d.wav|-|/r/x.wav|5|no".to_string()],
            "{backend:?}"
        );
    }
}

/// A name no version of pbxbridge writes (a hand edit, a newer version) is
/// an error that says which column held what, on every backend and for
/// every reader of the enum columns.
#[tokio::test]
async fn an_unknown_status_in_a_row_is_an_error_naming_column_and_value() {
    use pbxbridge::db::call_list::{list_calls, CallFilter};
    use pbxbridge::db::recording_lookup::recording_of;
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = t.connect().await;
        let key = "recordings/2023/11/14/u@v.wav";
        db.upsert_calls("s1", &[pending_call("u@v", key)])
            .await
            .unwrap();
        db_support::exec(
            &db,
            &db.sql("UPDATE {calls} SET recording_status = 'mislaid' WHERE call_id = 'u@v'"),
        )
        .await;
        let says = |e: String| {
            assert!(
                e.contains("recording_status") && e.contains("\"mislaid\""),
                "{backend:?}: {e}"
            )
        };
        says(db.recording_state(key).await.unwrap_err().to_string());
        says(
            recording_of(&db, "s1", "u@v")
                .await
                .unwrap_err()
                .to_string(),
        );
        db_support::exec(
            &db,
            &db.sql(
                "UPDATE {calls} SET recording_status = 'pending', direction = 'sideways' \
                 WHERE call_id = 'u@v'",
            ),
        )
        .await;
        let filter = CallFilter {
            limit: 10,
            ..CallFilter::default()
        };
        let e = list_calls(&db, &filter).await.unwrap_err().to_string();
        assert!(
            e.contains("direction") && e.contains("\"sideways\""),
            "{backend:?}: {e}"
        );
    }
}

/// Retention's two queries, on every backend: only stored rows past the
/// cutoff are listed, and a row is expired once.
#[tokio::test]
async fn retention_lists_stored_rows_and_expires_each_once() {
    use pbxbridge::db::recording_lookup::{mark_expired, stored_before};
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = t.connect().await;
        let (stored_key, pending_key) = ("recordings/s.wav", "recordings/p.wav");
        db.upsert_calls(
            "s1",
            &[
                pending_call("s@x", stored_key),
                pending_call("p@x", pending_key),
            ],
        )
        .await
        .unwrap();
        let now = DbTime(Timestamp::now());
        assert_eq!(
            db.mark_stored(stored_key, "share", 9, "00", now)
                .await
                .unwrap(),
            1
        );
        let cutoff = Timestamp::from_secs(1_800_000_000);
        let rows = stored_before(&db, cutoff, 0, 10).await.unwrap();
        assert_eq!(rows.len(), 1, "{backend:?}: {rows:?}");
        assert_eq!(rows[0].call_id, "s@x", "{backend:?}");
        assert_eq!(rows[0].status, RecordingStatus::Stored, "{backend:?}");
        assert!(
            stored_before(&db, Timestamp::from_secs(1_600_000_000), 0, 10)
                .await
                .unwrap()
                .is_empty(),
            "{backend:?}: started after the cutoff"
        );
        assert!(mark_expired(&db, rows[0].id).await.unwrap(), "{backend:?}");
        assert!(!mark_expired(&db, rows[0].id).await.unwrap(), "{backend:?}");
        assert!(stored_before(&db, cutoff, 0, 10).await.unwrap().is_empty());
        assert_eq!(
            db.recording_state(stored_key)
                .await
                .unwrap()
                .map(|s| s.status),
            Some(RecordingStatus::Expired),
            "{backend:?}"
        );
        assert_eq!(
            db.recording_state(pending_key)
                .await
                .unwrap()
                .map(|s| s.status),
            Some(RecordingStatus::Pending),
            "{backend:?}"
        );
    }
}
