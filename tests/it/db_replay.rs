//! The replay command against a real SQLite file: rows written, idempotent on a
//! second replay, the human summary, and clear errors.

use std::path::Path;
use std::process::Command;

use sqlx::{Row, SqlitePool};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
}

fn fixture(name: &str) -> String {
    format!("{}/pcap-fixtures/{name}.pcap", env!("CARGO_MANIFEST_DIR"))
}

fn replay(db: &Path, rec: &Path, files: &[String], json: bool) -> std::process::Output {
    let mut cmd = bin();
    cmd.arg("replay")
        .arg("--config")
        .arg(format!(
            "{}/pcap-fixtures/pbxbridge.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg("--db")
        .arg(format!("sqlite://{}", db.display()))
        .arg("--recordings")
        .arg(rec);
    if json {
        cmd.arg("--json");
    }
    cmd.args(files).output().unwrap()
}

async fn rows(db: &Path) -> Vec<String> {
    let pool = SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT call_id, direction, from_number, to_number, agent, started_at, answered_at,
                ended_at, duration, outcome, sip_code, end_reason, answered_elsewhere, dtmf,
                recording_status, recording_path, recording_samples, id
         FROM calls ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            let cols: Vec<String> = (0..r.len())
                .map(|i| {
                    r.try_get::<Option<String>, _>(i)
                        .map(|v| v.unwrap_or_default())
                        .or_else(|_| r.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}")))
                        .or_else(|_| r.try_get::<Option<f64>, _>(i).map(|v| format!("{v:?}")))
                        .unwrap()
                })
                .collect();
            cols.join("|")
        })
        .collect()
}

#[tokio::test]
async fn replay_writes_rows_once_even_when_replayed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sub").join("calls.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let rec = dir.path().join("rec");
    let files = vec![
        fixture("answered_caller_bye"),
        fixture("busy_486"),
        fixture("cancelled_elsewhere"),
        fixture("dtmf"),
    ];
    assert!(!db.exists());
    let out = replay(&db, &rec, &files, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists(), "--db sqlite://PATH creates the file");
    let first = rows(&db).await;
    assert_eq!(first.len(), 4, "{first:#?}");
    assert!(
        first
            .iter()
            .any(|r| r.contains("|busy|Some(486)|rejected|")),
        "{first:#?}"
    );
    assert!(
        first
            .iter()
            .any(|r| r.contains("|cancelled|") && r.contains("|Some(1)|")),
        "answered_elsewhere stored: {first:#?}"
    );
    assert!(first
        .iter()
        .any(|r| r.contains("|stored|") && r.contains(".wav|")));

    let out = replay(&db, &rec, &files, true);
    assert!(out.status.success());
    let second = rows(&db).await;
    assert_eq!(
        first, second,
        "a second replay leaves the same rows (ids included)"
    );
}

#[tokio::test]
async fn table_output_has_calls_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = replay(
        &dir.path().join("t.db"),
        &dir.path().join("rec"),
        &[fixture("answered_caller_bye"), fixture("declined_603")],
        false,
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("STARTED (UTC)") && text.contains("OUTCOME"),
        "{text}"
    );
    assert!(
        text.contains("declined") && text.contains("answered"),
        "{text}"
    );
    assert!(text.contains("packets:"), "{text}");
    assert!(text.contains("SIP messages:"), "{text}");
    assert!(text.contains("calls: 2 (answered 1, declined 1)"), "{text}");
    assert!(text.contains("malformed/dropped:"), "{text}");
}

#[test]
fn unreadable_capture_and_bad_config_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pcap");
    let out = replay(
        &dir.path().join("t.db"),
        &dir.path().join("rec"),
        &[missing.display().to_string()],
        true,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope.pcap"), "{err}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[pbx]\ndefault_country = \"XX\"\n").unwrap();
    let out = bin()
        .args(["replay", "--config"])
        .arg(&bad)
        .arg(fixture("busy_486"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("pbx.default_country"),
        "{err}"
    );
}
