//! The daemon's parts wired as `src/daemon/mod.rs` wires them, minus capture
//! (the bench feeds the pipeline itself) and the admin endpoint: the event
//! log and its task, the sinks (outbox, database writer, phone index task),
//! the persist thread, the pipeline with events and in-flight snapshots,
//! live calls, and the HTTP API serving `/v1/events` on 127.0.0.1:0. Plus
//! the CRM: a `contacts` table of N phone values.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pbxbridge::api::event_source::DbResolve;
use pbxbridge::api::events::ApiEvents;
use pbxbridge::api::ApiState;
use pbxbridge::config::{ApiConfig, Config};
use pbxbridge::daemon::log_limits;
use pbxbridge::db::Db;
use pbxbridge::events::live::LiveCalls;
use pbxbridge::events::{EventLog, EventType, Events};
use pbxbridge::pipeline::Pipeline;
use pbxbridge::recording::InflightJournal;
use pbxbridge::sinks::{Role, Sinks};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::db_support::exec;

const AREAS: [&str; 5] = ["415", "650", "212", "917", "303"];
/// Contacts per INSERT.
const ROWS_PER_STMT: usize = 2_000;
/// The longest a phone index build may take before the bench gives up.
const INDEX_PATIENCE: Duration = Duration::from_secs(1_800);

/// Contact `k`'s number: (as E.164, as the CRM wrote it).
pub fn contact_number(k: usize) -> (String, String) {
    let area = AREAS[k % AREAS.len()];
    let rest = k / AREAS.len();
    let exchange = 200 + (rest / 10_000) % 800;
    let line = rest % 10_000;
    let written = match k % 3 {
        0 => format!("({area}) {exchange}-{line:04}"),
        1 => format!("+1 {area}-{exchange}-{line:04}"),
        _ => format!("{area}.{exchange}.{line:04}"),
    };
    (format!("+1{area}{exchange}{line:04}"), written)
}

/// The CRM's table in the database pbxbridge writes to, `phones` rows of one number each.
pub async fn fill_contacts(db: &Db, phones: usize) {
    exec(
        db,
        "CREATE TABLE contacts (id BIGINT PRIMARY KEY, name VARCHAR(100), phone VARCHAR(64))",
    )
    .await;
    let mut k = 0;
    while k < phones {
        let end = (k + ROWS_PER_STMT).min(phones);
        let mut sql = String::from("INSERT INTO contacts (id, name, phone) VALUES ");
        for i in k..end {
            if i > k {
                sql.push_str(", ");
            }
            sql.push_str(&format!("({i}, 'Contact {i}', '{}')", contact_number(i).1));
        }
        exec(db, &sql).await;
        k = end;
    }
}

/// Recording is on, as by default, unless PBXBRIDGE_BENCH_RECORDING=off.
pub fn recording_on() -> bool {
    std::env::var("PBXBRIDGE_BENCH_RECORDING").map_or(true, |v| v != "off")
}

pub fn config(dir: &Path, db_url: &str) -> Config {
    let mut cfg = Config::default();
    cfg.database.url = db_url.to_owned();
    cfg.daemon.state_dir = dir.join("state");
    cfg.recording.dir = dir.join("recordings");
    cfg.recording.enabled = recording_on();
    cfg.api = Some(ApiConfig::default());
    cfg.crm.records = vec![toml::from_str(
        "type = \"contact\"\ntable = \"contacts\"\nid = \"id\"\nphones = [\"phone\"]\nname = \"name\"",
    )
    .expect("crm record")];
    cfg
}

pub struct Node {
    pub events: Events,
    sinks: Sinks,
    pub pipeline: Option<Pipeline>,
    pub events_url: String,
    pub token: String,
    /// The daemon's first build of the phone index.
    pub index_secs: f64,
    pub indexed: u64,
    shutdown: oneshot::Sender<()>,
    api_stop: oneshot::Sender<()>,
    api: JoinHandle<()>,
    live: JoinHandle<()>,
    /// When each screen-pop and completion reached the log (fsynced).
    pub logged: Logged,
    watcher: JoinHandle<()>,
}

/// (call id, ringing?) → when it was in the log.
pub type Logged = Arc<Mutex<HashMap<(String, bool), Instant>>>;

/// Notes when each `call.ringing` and `call.completed` is in the log, to
/// tell the log's part of the latency from the stream's.
fn watch_log(log: Arc<EventLog>, logged: Logged) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tail = log.subscribe();
        let mut at = log.last_seq();
        loop {
            tail.borrow_and_update();
            let fresh = log.read_after(at, 4096).unwrap_or_default();
            let now = Instant::now();
            if let Some(last) = fresh.last() {
                at = last.seq;
                let mut map = logged.lock().unwrap_or_else(|e| e.into_inner());
                for s in &fresh {
                    let ringing = match s.kind {
                        EventType::CallRinging => true,
                        EventType::CallCompleted => false,
                        _ => continue,
                    };
                    let id = s.call_id.as_deref().unwrap_or_default().to_owned();
                    map.insert((id, ringing), now);
                }
                continue;
            }
            if tail.changed().await.is_err() {
                return;
            }
        }
    })
}

impl Node {
    /// Starts as `pbxbridge run` does and waits for the phone index.
    pub async fn start(cfg: &Config) -> Node {
        let state_dir = cfg.daemon.state_dir.clone();
        std::fs::create_dir_all(&cfg.recording.dir).expect("recordings dir");
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let mut events = Events::open(&state_dir.join("events"), log_limits(cfg), &cfg.pbx.sensor)
            .expect("event log");
        let began = Instant::now();
        let mut sinks = Sinks::start(
            cfg,
            &state_dir,
            Role::Daemon,
            Some(events.emitter.clone()),
            async move {
                let _ = shutdown_rx.await;
            },
        )
        .await
        .expect("sinks");
        events.run(DbResolve::new(cfg, sinks.db().clone()));
        let live = Arc::new(LiveCalls::default());
        let live_task = live.follow(events.log.clone());
        let journal = InflightJournal::open(&state_dir.join("inflight")).expect("inflight");
        let report_tx = sinks
            .persist_thread(Some(journal.clone()))
            .expect("persist thread");
        let mut pipeline = Pipeline::new(cfg, report_tx).expect("pipeline");
        pipeline.set_inflight(journal);
        pipeline.set_events(events.emitter.clone());

        let api_events = ApiEvents::new(
            events.log.clone(),
            live,
            Some(events.emitter.clone()),
            Duration::from_secs(cfg.events.sse_heartbeat_secs.max(1)),
        );
        let state = ApiState::new(cfg, sinks.db().clone(), &state_dir)
            .expect("api state")
            .with_events(api_events);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        if std::env::var_os("PBXBRIDGE_BENCH_NODELAY").is_some() {
            use std::os::fd::AsRawFd;
            let one: libc::c_int = 1;
            // Accepted sockets inherit TCP_NODELAY from the listener on Linux.
            let rc = unsafe {
                libc::setsockopt(
                    listener.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&one as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0, "TCP_NODELAY");
        }
        let (api_stop, stopped) = oneshot::channel::<()>();
        let api = tokio::spawn(async move {
            let stopped = async move {
                let _ = stopped.await;
            };
            pbxbridge::api::serve(listener, state, stopped)
                .await
                .expect("serve");
        });
        let db = sinks.db().get().await.expect("database");
        let (_, token) = db
            .create_api_key("bench", "admin", None, None)
            .await
            .expect("api key");

        // The daemon's index task builds the index at start; calls wait for it.
        let (indexed, index_secs) = loop {
            let built = sinks
                .index_metrics()
                .snapshot()
                .into_iter()
                .find(|g| g.record_type == "contact" && g.e164 > 0);
            if let Some(g) = built {
                break (g.e164, g.build_secs);
            }
            assert!(
                began.elapsed() < INDEX_PATIENCE,
                "phone index not built in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let logged = Logged::default();
        let watcher = watch_log(events.log.clone(), logged.clone());
        Node {
            logged,
            watcher,
            events,
            sinks,
            pipeline: Some(pipeline),
            events_url: format!("http://{addr}/v1/events"),
            token: token.0,
            index_secs,
            indexed,
            shutdown,
            api_stop,
            api,
            live: live_task,
        }
    }

    /// Stops in the daemon's order.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(());
        let _ = self.api_stop.send(());
        if let Some(p) = self.pipeline.take() {
            let _ = tokio::task::spawn_blocking(move || drop(p.finish())).await;
        }
        self.sinks.finish(Duration::from_secs(20)).await;
        let _ = tokio::time::timeout(Duration::from_secs(11), self.api).await;
        self.events.finish(Duration::from_secs(5)).await;
        self.live.abort();
        self.watcher.abort();
    }
}
