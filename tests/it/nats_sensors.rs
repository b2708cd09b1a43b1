//! Many sensors, one system, as deployed: two `pbxbridge run` daemons (each
//! reading a capture folder) write to one PostgreSQL and publish to one NATS;
//! one `pbxbridge serve` consumes the stream. Its SSE stream shows both
//! sensors' events, `/v1/calls` both sensors' rows; NATS stopped in the
//! middle loses nothing and repeats nothing. Every node's config names the
//! same webhook: only `serve` sends it, once per event of every sensor.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use pbxbridge::db::Backend;

use pbxbridge::time::Timestamp;

use crate::db_support::TestDb;
use crate::loadgen::{write_capture, LoadSpec};
use crate::nats_support::NatsServer;

const PATIENCE: Duration = Duration::from_secs(90);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `[events]` with NATS and one webhook, the same on every node.
fn nats_section(url: &str, hook: &Hook) -> String {
    format!(
        "[events]\nwebhook_allow = [\"127.0.0.1\"]\nwebhook_retry_secs = [1, 1, 1]\n\n\
         [events.nats]\nurl = \"{url}\"\nstream = \"E2E\"\nconsumer = \"central\"\n\n\
         [[webhooks]]\nname = \"crm\"\nurl = \"http://{}/hook\"\nsecret_file = \"{}\"\n\n\
         [log]\nlevel = \"info,pbxbridge=debug\"\n",
        hook.addr,
        hook.secret.display(),
    )
}

/// A webhook receiver: the event ids it accepted, in arrival order.
struct Hook {
    addr: std::net::SocketAddr,
    secret: PathBuf,
    ids: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Hook {
    async fn start(dir: &Path) -> Hook {
        let secret = dir.join("hook.secret");
        std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = ids.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let seen = seen.clone();
                async move {
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    seen.lock().unwrap().push(id);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Hook { addr, secret, ids }
    }
}

/// A sensor's config: its capture folder, its own state, the shared database.
fn sensor_config(dir: &Path, sensor: &str, db: &str, nats: &str, hook: &Hook) -> PathBuf {
    let cfg = dir.join("pbxbridge.toml");
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "[pbx]\nsensor = \"{sensor}\"\n\n[database]\nurl = \"{db}\"\n\n\
             [recording]\nenabled = false\ndir = \"{rec}\"\n\n\
             [capture]\nfolder = \"{input}\"\nfolder_settle_secs = 1\n\n\
             [admin]\nenabled = false\n\n[daemon]\nstate_dir = \"{state}\"\n\n{nats}",
            rec = dir.join("rec").display(),
            input = dir.join("in").display(),
            state = dir.join("state").display(),
            nats = nats_section(nats, hook),
        ),
    )
    .unwrap();
    cfg
}

fn serve_config(dir: &Path, db: &str, nats: &str, port: u16, hook: &Hook) -> PathBuf {
    let cfg = dir.join("serve.toml");
    std::fs::write(
        &cfg,
        format!(
            "[pbx]\nsensor = \"central\"\n\n[database]\nurl = \"{db}\"\n\n\
             [admin]\nenabled = false\n\n[daemon]\nstate_dir = \"{state}\"\n\n\
             [api]\nlisten = \"127.0.0.1:{port}\"\n\n{nats}",
            state = dir.join("state").display(),
            nats = nats_section(nats, hook),
        ),
    )
    .unwrap();
    cfg
}

fn spawn(args: &[&str], cfg: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start pbxbridge")
}

fn stop(mut child: Child, what: &str, log: &Path) {
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "{what} stopped with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Drops a capture of `calls` answered calls, made now, into a sensor's
/// folder, settled already.
fn drop_capture(dir: &Path, calls: usize) {
    let spec = LoadSpec {
        start: Timestamp::now(),
        ..LoadSpec::new(calls, calls, 1)
    };
    let tmp = dir.join("capture.tmp");
    let file = std::fs::File::create(&tmp).unwrap();
    write_capture(&spec, file).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    std::fs::rename(&tmp, dir.join("in").join("calls.pcap")).unwrap();
}

/// Events read from an SSE response: (id, type, sensor, call id).
type Seen = Vec<(String, String, String, String)>;

async fn read_sse(resp: reqwest::Response, tx: tokio::sync::mpsc::UnboundedSender<Seen>) {
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    while let Some(Ok(chunk)) = body.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        let mut got = Vec::new();
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (None, None, None);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str::<serde_json::Value>(v.trim()).ok();
                }
            }
            if let (Some(id), Some(kind), Some(data)) = (id, kind, data) {
                let field = |k: &str| data[k].as_str().unwrap_or_default().to_owned();
                got.push((id, kind, field("sensor"), field("call_id")));
            }
        }
        if !got.is_empty() && tx.send(got).is_err() {
            return;
        }
    }
}

/// Reads SSE batches until `n` events of `sensor` are in `seen`.
async fn wait_events(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>,
    seen: &mut Seen,
    sensor: &str,
    n: usize,
) {
    let deadline = Instant::now() + PATIENCE;
    while seen.iter().filter(|e| e.2 == sensor).count() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(got)) => seen.extend(got),
            _ => panic!("{sensor}: {n} events not seen on SSE, only {seen:?}"),
        }
    }
}

/// Rows per sensor in `/v1/calls`.
async fn calls(http: &reqwest::Client, base: &str, token: &str) -> HashMap<String, usize> {
    let mut by_sensor = HashMap::new();
    let Ok(resp) = http
        .get(format!("{base}/v1/calls"))
        .bearer_auth(token)
        .send()
        .await
    else {
        return by_sensor;
    };
    let page: serde_json::Value = resp.json().await.unwrap_or_default();
    for c in page["data"].as_array().into_iter().flatten() {
        let sensor = c["sensor"].as_str().unwrap_or_default().to_owned();
        *by_sensor.entry(sensor).or_insert(0) += 1;
    }
    by_sensor
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sensors_one_serve_through_nats() {
    let mut nats = NatsServer::start();
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b, central) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("central"),
    );
    std::fs::create_dir_all(&central).unwrap();
    let port = free_port();
    let hook = Hook::start(dir.path()).await;
    let serve_cfg = serve_config(&central, &db.url, &nats.url(), port, &hook);
    let out = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .args([
            "keys", "create", "--name", "t", "--role", "admin", "--config",
        ])
        .arg(&serve_cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let serve_log = central.join("serve.log");
    let serve = spawn(&["serve"], &serve_cfg, &serve_log);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve does not listen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resp = http
        .get(format!("{base}/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(read_sse(resp, tx));

    let sensors = [("site-a", &a), ("site-b", &b)];
    let mut daemons = Vec::new();
    for (name, d) in sensors {
        let cfg = sensor_config(d, name, &db.url, &nats.url(), &hook);
        let log = d.join("daemon.log");
        daemons.push((spawn(&["run"], &cfg, &log), log));
    }

    let mut seen: Seen = Vec::new();
    // ringing, answered, hungup, completed.
    drop_capture(&a, 1);
    wait_events(&mut rx, &mut seen, "site-a", 4).await;

    // NATS away: site-b's call reaches the database, and its events wait.
    nats.stop();
    drop_capture(&b, 2);
    let deadline = Instant::now() + PATIENCE;
    while calls(&http, &base, &token).await.get("site-b") != Some(&2) {
        assert!(Instant::now() < deadline, "site-b's row never came");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    while let Ok(got) = rx.try_recv() {
        seen.extend(got);
    }
    assert!(
        !seen.iter().any(|e| e.2 == "site-b"),
        "site-b's events came without NATS: {seen:?}"
    );

    nats.resume();
    wait_events(&mut rx, &mut seen, "site-b", 8).await;
    // Anything repeated would show now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    while let Ok(got) = rx.try_recv() {
        seen.extend(got);
    }
    let ids: HashSet<&str> = seen.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(ids.len(), seen.len(), "an event came twice: {seen:?}");
    let mut by_call: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for e in &seen {
        by_call.entry((&e.2, &e.3)).or_default().push(&e.1);
    }
    assert_eq!(by_call.len(), 3, "{by_call:?}");
    for (call, kinds) in &by_call {
        assert_eq!(
            kinds,
            &[
                "call.ringing",
                "call.answered",
                "call.hungup",
                "call.completed"
            ],
            "{call:?}"
        );
    }
    // One webhook per event, from serve alone, for both sensors.
    let deadline = Instant::now() + PATIENCE;
    while hook.ids.lock().unwrap().len() < seen.len() {
        assert!(
            Instant::now() < deadline,
            "webhooks: {:?}",
            hook.ids.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut hooked = hook.ids.lock().unwrap().clone();
    hooked.sort();
    let mut sse: Vec<String> = seen.iter().map(|e| e.0.clone()).collect();
    sse.sort();
    assert_eq!(hooked, sse, "each event once by webhook, as on SSE");
    let rows = calls(&http, &base, &token).await;
    assert_eq!(rows.get("site-a"), Some(&1), "{rows:?}");
    assert_eq!(rows.get("site-b"), Some(&2), "{rows:?}");

    reader.abort();
    for (d, log) in daemons {
        stop(d, "daemon", &log);
    }
    stop(serve, "serve", &serve_log);
}
