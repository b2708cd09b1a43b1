//! A database that cannot be used says why at once: refused (nothing
//! listening), wrong user, no such database. Replay still waits `--db-wait`
//! for a server that is away, and no longer: the refused cases run the real
//! binary against a port with nothing behind it.

use crate::db_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pbxbridge::db::{Db, DbError, DbOptions};

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcap-fixtures/answered_caller_bye.pcap")
}

/// Runs replay of one answered call against `url`; exit success, stderr and
/// how long it took.
fn replay(url: &str, db_wait: u64) -> (bool, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pbxbridge.toml");
    std::fs::write(
        &config,
        "[pbx]\ndefault_country = \"US\"\n\n[recording]\nenabled = false\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .arg("replay")
        .arg("--config")
        .arg(&config)
        .arg("--db")
        .arg(url)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--db-wait")
        .arg(db_wait.to_string())
        .arg(fixture())
        .env("NO_COLOR", "1")
        .env_remove("PBXBRIDGE_LOG")
        .output()
        .expect("pbxbridge runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

fn refused_fails_within_the_wait(scheme: &str) {
    let port = free_port();
    let url = format!("{scheme}://dbuser:s3cret@127.0.0.1:{port}/x");
    let wait = 3;
    let (ok, stderr, took) = replay(&url, wait);
    assert!(!ok, "replay succeeded without a database:\n{stderr}");
    let addr = format!("connection refused to 127.0.0.1:{port}");
    assert!(stderr.contains(&addr), "no {addr:?} in:\n{stderr}");
    // The final error names the cause too, not only the first warning.
    let last = stderr
        .lines()
        .rfind(|l| l.starts_with("error:"))
        .unwrap_or("");
    assert!(
        last.contains(&addr),
        "final error without the cause: {last}"
    );
    assert!(
        !stderr.contains("s3cret"),
        "password in the output:\n{stderr}"
    );
    assert!(!stderr.contains("pool timed out"), "{stderr}");
    // It waited for the database (the calls were kept), but not 5 minutes.
    assert!(took >= Duration::from_secs(wait), "gave up early: {took:?}");
    assert!(
        took < Duration::from_secs(wait + 8),
        "took {took:?} with --db-wait {wait}"
    );
}

#[test]
fn postgres_refused_is_named_and_waited_for_only_db_wait() {
    refused_fails_within_the_wait("postgres");
}

#[test]
fn mysql_refused_is_named_and_waited_for_only_db_wait() {
    refused_fails_within_the_wait("mysql");
}

/// `scheme://user@host…` with another user (no password).
fn with_user(admin: &str, user: &str) -> String {
    let (scheme, rest) = admin.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

async fn connect_err(url: &str) -> DbError {
    let started = Instant::now();
    let e = Db::connect(url, &DbOptions::default()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{url}: took {:?}",
        started.elapsed()
    );
    e
}

#[tokio::test]
async fn an_unknown_user_is_a_login_refusal_not_an_outage() {
    for admin in [
        db_support::postgres_admin_url(),
        db_support::mysql_admin_url(),
    ] {
        let url = with_user(&admin, "pbxbridge_no_such_user");
        let e = connect_err(&url).await;
        assert!(matches!(e, DbError::AuthRefused { .. }), "{url}: {e:?}");
        assert!(!e.is_unavailable(), "retried in vain: {e}");
        assert!(e.to_string().contains("pbxbridge_no_such_user"), "{e}");
    }
}

#[tokio::test]
async fn a_missing_database_is_named() {
    for admin in [
        db_support::postgres_admin_url(),
        db_support::mysql_admin_url(),
    ] {
        let url = db_support::with_database(&admin, "pbxbridge_no_such_db");
        let e = connect_err(&url).await;
        assert!(matches!(e, DbError::NoDatabase { .. }), "{url}: {e:?}");
        assert!(!e.is_unavailable(), "retried in vain: {e}");
        assert!(
            e.to_string()
                .contains("database \"pbxbridge_no_such_db\" does not exist"),
            "{e}"
        );
    }
}

/// The one-shot commands have no --db-wait: a refused connection is their
/// error at once.
#[test]
fn calls_and_index_commands_say_refused_at_once() {
    let port = free_port();
    for (scheme, args) in [
        ("postgres", ["calls", "show", "abc@pbx"]),
        ("mysql", ["index", "stats", ""]),
    ] {
        let url = format!("{scheme}://dbuser:s3cret@127.0.0.1:{port}/x");
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
            .args(args.iter().filter(|a| !a.is_empty()))
            .arg("--db")
            .arg(&url)
            .env("NO_COLOR", "1")
            .output()
            .expect("pbxbridge runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("connection refused to 127.0.0.1:{port}")),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("s3cret"), "{stderr}");
        assert!(started.elapsed() < Duration::from_secs(5), "{args:?}");
    }
}
