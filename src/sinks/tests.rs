//! The sinks run in process: start, submit, finish, with the shutdown future
//! in the test's hands.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::outbox::tests::report;
use super::*;

fn sqlite_config(dir: &Path, crm: bool) -> Config {
    let url = format!("sqlite://{}", dir.join("calls.db").display());
    let mut text = format!("[database]\nurl = \"{url}\"\n[recording]\nenabled = false\n");
    if crm {
        text.push_str(
            "[[crm.records]]\ntype = \"contact\"\ntable = \"contacts\"\nphones = [\"phone\"]\n",
        );
    }
    Config::parse(&text, Path::new("t.toml")).unwrap()
}

async fn rows(cfg: &Config, call_id: &str) -> i64 {
    let db = DbTarget::from_config(cfg).connect().await.unwrap();
    let crate::db::Pool::Sqlite(pool) = db.pool() else {
        panic!("sqlite expected")
    };
    let n = sqlx::query_scalar("SELECT count(*) FROM calls WHERE call_id = ?")
        .bind(call_id)
        .fetch_one(pool)
        .await
        .unwrap();
    db.close().await;
    n
}

#[tokio::test]
async fn replay_role_writes_what_is_submitted_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = sqlite_config(dir.path(), false);
    let role = Role::Replay {
        lock_wait: Duration::from_secs(1),
    };
    let sinks = Sinks::start(
        &cfg,
        &dir.path().join("state"),
        role,
        None,
        std::future::pending(),
    )
    .await
    .unwrap();
    let submitter = sinks.submitter();
    tokio::task::spawn_blocking(move || submitter.submit(&[report("a@pbx"), report("b@pbx")]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sinks.stats().calls_submitted.load(Ordering::Relaxed), 2);
    let finished = sinks.finish(Duration::from_secs(30)).await;
    assert_eq!(finished.unwritten_calls, 0);
    assert_eq!(finished.outbox_batches, 0);
    assert!(finished.last_db_error.is_none());
    assert_eq!(rows(&cfg, "a@pbx").await, 1);
    assert_eq!(rows(&cfg, "b@pbx").await, 1);
}

#[tokio::test]
async fn the_daemon_role_persists_through_its_thread_and_stops_on_the_shutdown_future() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = sqlite_config(dir.path(), true);
    // The CRM table the phone index reads.
    let db = DbTarget::from_config(&cfg).connect().await.unwrap();
    let crate::db::Pool::Sqlite(pool) = db.pool() else {
        panic!("sqlite expected")
    };
    sqlx::query("CREATE TABLE contacts (id INTEGER PRIMARY KEY, phone TEXT)")
        .execute(pool)
        .await
        .unwrap();
    db.close().await;

    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let state = dir.path().join("state");
    let mut sinks = Sinks::start(&cfg, &state, Role::Daemon, None, async move {
        let _ = rx.await;
    })
    .await
    .unwrap();
    // The state folder is this run's: another daemon is turned away.
    let other = Sinks::start(&cfg, &state, Role::Daemon, None, std::future::pending()).await;
    assert!(
        matches!(other, Err(SinksError::Lock(StateLockError::Busy { .. }))),
        "{:?}",
        other.err()
    );
    let tx = sinks.persist_thread(None).unwrap();
    tx.send(vec![report("c@pbx")]).unwrap();
    // Calls wait for the index's first build; after it the task keeps running.
    tokio::time::timeout(Duration::from_secs(30), sinks.index.ready.clone().wait())
        .await
        .expect("the phone index was never built");
    assert!(
        !sinks.index.task.is_finished(),
        "the daemon's index task keeps running"
    );
    shutdown.send(()).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while !sinks.index.task.is_finished() {
        assert!(
            Instant::now() < until,
            "the shutdown future did not stop the index task"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(tx); // the last sender: the persist thread ends
    let finished = sinks.finish(Duration::from_secs(30)).await;
    assert_eq!(finished.outbox_batches, 0);
    assert_eq!(rows(&cfg, "c@pbx").await, 1);
}

#[tokio::test]
async fn replay_role_refuses_a_database_that_refuses_us_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = sqlite_config(dir.path(), false);
    // A directory is no SQLite file: not something waiting fixes.
    cfg.database.url = format!("sqlite://{}", dir.path().display());
    let role = Role::Replay {
        lock_wait: Duration::from_secs(1),
    };
    let started = Instant::now();
    let e = Sinks::start(
        &cfg,
        &dir.path().join("state"),
        role,
        None,
        std::future::pending(),
    )
    .await
    .err()
    .expect("a database that cannot be opened fails the start");
    assert!(matches!(e, SinksError::Db(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
}
