//! Nothing lost, nothing twice, while the database goes away: `pbxbridge
//! replay` against private PostgreSQL and MariaDB servers that the test stops
//! and starts again, on free ports (never the shared ones the other database
//! tests use).
//!
//! The capture reaches replay through a FIFO, so the test decides when the
//! second half of the calls exists: the server is stopped after the first rows
//! have arrived and before the rest can, which makes "an outage in the middle
//! of a run" certain instead of a race.

mod db_support;

// Benchmark tooling, kept out of the library; each user takes a part of it.
#[allow(dead_code)]
#[path = "../tools/loadgen/mod.rs"]
mod loadgen;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use db_support::servers::PrivateServer;
use loadgen::{call_identity, write_capture, LoadSpec};
use pbxbridge::db::{Backend, Db, DbOptions};

const PATIENCE: Duration = Duration::from_secs(90);

/// A capture of `calls` short answered calls, and their Call-IDs.
fn capture(calls: usize) -> (Vec<u8>, Vec<String>) {
    let mut bytes = Vec::new();
    let summary = write_capture(&LoadSpec::new(calls, 20, 1), &mut bytes).unwrap();
    assert_eq!(summary.calls, calls);
    let ids = (0..calls).map(|i| call_identity(i).call_id).collect();
    (bytes, ids)
}

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("pbxbridge.toml");
    std::fs::write(
        &path,
        "[pbx]\ndefault_country = \"US\"\n\n[recording]\nenabled = false\n",
    )
    .unwrap();
    path
}

/// `pbxbridge replay` running, its stderr collected as it comes.
struct Replay {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

fn start_replay(dir: &Path, url: &str, db_wait: u64, files: &[PathBuf]) -> Replay {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .arg("replay")
        .arg("--config")
        .arg(config(dir))
        .arg("--db")
        .arg(url)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--db-wait")
        .arg(db_wait.to_string())
        .arg("--json")
        .args(files)
        .env("PBXBRIDGE_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pbxbridge runs");
    let stderr = Arc::new(Mutex::new(String::new()));
    let (err_pipe, out_pipe) = (child.stderr.take().unwrap(), child.stdout.take().unwrap());
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(out_pipe), &mut s);
        s
    });
    Replay {
        child,
        stderr,
        stdout: Some(stdout),
    }
}

impl Replay {
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    async fn wait_for_stderr(&mut self, needle: &str) {
        let until = Instant::now() + PATIENCE;
        while !self.stderr().contains(needle) {
            if let Some(s) = self.child.try_wait().unwrap() {
                panic!(
                    "replay exited ({s}) before saying {needle:?}:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < until,
                "replay did not say {needle:?} within {PATIENCE:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Exit status, stdout, stderr.
    async fn finish(mut self) -> (ExitStatus, String, String) {
        let until = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!(
                    "replay still running after {PATIENCE:?}:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let stdout = self.stdout.take().unwrap().join().unwrap();
        // The stderr reader ends with the pipe; give it the moment it needs.
        tokio::time::sleep(Duration::from_millis(100)).await;
        (status, stdout, self.stderr())
    }
}

fn json_lines(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("call_id").cloned())
                .is_some()
        })
        .count()
}

async fn connect(url: &str) -> Db {
    Db::connect(url, &DbOptions::default())
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

async fn rows(db: &Db) -> i64 {
    db_support::count(db, "SELECT count(*) FROM {calls}").await
}

/// Every expected Call-ID is there, once, and nothing else.
async fn assert_exactly_once(url: &str, expected: &[String]) {
    let db = connect(url).await;
    let total = rows(&db).await;
    let distinct = db_support::count(&db, "SELECT count(DISTINCT call_id) FROM {calls}").await;
    assert_eq!(total, expected.len() as i64, "rows");
    assert_eq!(distinct, total, "one row per Call-ID");
    let mut got = db_support::strings(&db, "SELECT call_id FROM {calls}").await;
    got.sort();
    let mut want = expected.to_vec();
    want.sort();
    assert!(
        got == want,
        "the Call-IDs written differ from the calls replayed"
    );
    db.close().await;
}

fn outbox_batches(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("state").join("outbox"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        })
        .count()
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success(), "mkfifo {}", path.display());
}

/// The server stops after the first rows arrived and before the rest of the
/// calls exist; replay keeps going, waits at the end, and once the server is
/// back every call is there exactly once.
async fn restart_in_the_middle(backend: Backend) {
    let mut server = PrivateServer::new(backend).await;
    let url = server.create_database("pbx").await;
    let dir = tempfile::tempdir().unwrap();
    let calls = 1200;
    let (bytes, ids) = capture(calls);
    let fifo = dir.path().join("live.pcap");
    mkfifo(&fifo);

    let mut replay = start_replay(dir.path(), &url, 120, std::slice::from_ref(&fifo));
    let (go, wait_go) = std::sync::mpsc::channel::<()>();
    let feeder = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let half = bytes.len() / 2;
            f.write_all(&bytes[..half]).unwrap();
            f.flush().unwrap();
            if wait_go.recv().is_ok() {
                f.write_all(&bytes[half..]).unwrap();
            }
        })
    };

    // The first batches reach the database while replay waits for more input.
    let db = connect(&url).await;
    let until = Instant::now() + PATIENCE;
    let mut before = rows(&db).await;
    while before == 0 {
        assert!(
            Instant::now() < until,
            "no rows after {PATIENCE:?}:\n{}",
            replay.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        before = rows(&db).await;
    }
    db.close().await;
    assert!(
        (before as usize) < calls,
        "half the capture cannot hold every call"
    );

    server.stop().await;
    go.send(()).unwrap();
    feeder.join().unwrap();
    replay.wait_for_stderr("database unreachable; ").await;
    server.start().await;

    let (status, stdout, stderr) = replay.finish().await;
    assert!(status.success(), "replay failed ({status}):\n{stderr}");
    assert_eq!(json_lines(&stdout), calls, "--json prints every call once");
    assert_exactly_once(&url, &ids).await;
    assert_eq!(outbox_batches(dir.path()), 0, "the outbox is drained");
}

/// The database is down for a whole replay: it exits 1 saying the calls wait in
/// the outbox; the next replay (another capture, server back) writes them, once.
async fn down_for_a_whole_run(backend: Backend) {
    let mut server = PrivateServer::new(backend).await;
    let url = server.create_database("pbx").await;
    let dir = tempfile::tempdir().unwrap();
    let calls = 300;
    let (bytes, mut ids) = capture(calls);
    let pcap = dir.path().join("load.pcap");
    std::fs::write(&pcap, bytes).unwrap();
    server.stop().await;

    let (status, stdout, stderr) = start_replay(dir.path(), &url, 2, &[pcap]).finish().await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{calls} calls could not be written"))
            && stderr.contains("kept in the outbox"),
        "{stderr}"
    );
    assert_eq!(
        json_lines(&stdout),
        calls,
        "the calls were replayed all the same"
    );
    assert!(
        outbox_batches(dir.path()) > 0,
        "the calls wait in the outbox"
    );

    server.start().await;
    let other = PathBuf::from(format!(
        "{}/pcap-fixtures/busy_486.pcap",
        env!("CARGO_MANIFEST_DIR")
    ));
    let (status, stdout, stderr) = start_replay(dir.path(), &url, 60, &[other]).finish().await;
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("calls = {calls}")) || stderr.contains(&format!("calls={calls}")),
        "the leftovers are announced: {stderr}"
    );
    let fixture: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("call_id")?.as_str().map(String::from))
        .collect();
    assert_eq!(fixture.len(), 1, "{stdout}");
    ids.extend(fixture);
    assert_exactly_once(&url, &ids).await;
    assert_eq!(outbox_batches(dir.path()), 0, "the outbox is drained");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_in_the_middle_of_a_replay() {
    restart_in_the_middle(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restart_in_the_middle_of_a_replay() {
    restart_in_the_middle(Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_for_a_whole_run_then_the_next_run_writes_the_rest() {
    down_for_a_whole_run(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_down_for_a_whole_run_then_the_next_run_writes_the_rest() {
    down_for_a_whole_run(Backend::MySql).await;
}

/// The daemon holds its state folder; a replay on the same one is refused at
/// once, naming the daemon, instead of draining the outbox beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_refuses_the_state_folder_the_daemon_holds() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let state = dir.path().join("state");
    let cfg = dir.path().join("daemon.toml");
    std::fs::write(
        &cfg,
        format!(
            "[capture]\nfolder = {input:?}\n\n[admin]\nenabled = false\n\n\
             [daemon]\nstate_dir = {state:?}\n\n[database]\nurl = \"sqlite://{}\"\n\n\
             [recording]\nenabled = false\n",
            dir.path().join("d.db").display()
        ),
    )
    .unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .args(["run", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + PATIENCE;
    while !std::fs::read_to_string(state.join("lock")).is_ok_and(|t| t.starts_with("daemon")) {
        if let Some(s) = daemon.try_wait().unwrap() {
            panic!("the daemon exited ({s})");
        }
        assert!(Instant::now() < until, "the daemon never took its lock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pcap = PathBuf::from(format!(
        "{}/pcap-fixtures/busy_486.pcap",
        env!("CARGO_MANIFEST_DIR")
    ));
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let (status, _, stderr) = start_replay(dir.path(), &url, 60, &[pcap]).finish().await;
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("is in use by daemon (pid {})", daemon.id())),
        "{stderr}"
    );
    assert!(!dir.path().join("r.db").exists(), "nothing was written");
}
