//! A real API server for tests: the router on 127.0.0.1 port 0 over a
//! throwaway database (SQLite, PostgreSQL or MariaDB, see db_support), with
//! keys made through the same code as `pbxbridge keys create`.
#![allow(dead_code)] // each test module uses its own subset

use std::net::SocketAddr;
use std::sync::Arc;

use pbxbridge::api::event_source::DbResolve;
use pbxbridge::api::events::ApiEvents;
use pbxbridge::api::ApiState;
use pbxbridge::config::{ApiConfig, Config, CrmRecord};
use pbxbridge::db::{Backend, Db, DbTarget, SharedDb};
use pbxbridge::events::live::LiveCalls;
use pbxbridge::events::{Events, LogLimits};

use crate::db_support::TestDb;

pub struct TestApi {
    pub addr: SocketAddr,
    pub base: String,
    pub db: Db,
    pub cfg: Config,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The node's event log and emitter (notes and links made through the API land here).
    pub events: Events,
    _testdb: TestDb,
}

/// The config tests start from: `[api]` on defaults, a recordings folder and
/// state folder in `dir`, contacts and users as CRM records.
pub fn test_config(dir: &std::path::Path, db_url: &str) -> Config {
    let mut cfg = Config::default();
    cfg.database.url = db_url.to_owned();
    cfg.recording.dir = dir.join("recordings");
    cfg.daemon.state_dir = dir.join("state");
    cfg.pbx.default_country = "US".into();
    cfg.api = Some(ApiConfig::default());
    cfg.crm.records = vec![
        crm_record("contact", "crm_contacts"),
        crm_record("user", "crm_users"),
    ];
    cfg
}

fn crm_record(kind: &str, table: &str) -> CrmRecord {
    toml::from_str(&format!(
        "type = \"{kind}\"\ntable = \"{table}\"\nphones = [\"phone\"]\nname = \"name\""
    ))
    .expect("crm record")
}

impl TestApi {
    pub async fn start(backend: Backend) -> TestApi {
        Self::start_with(backend, |_| {}).await
    }

    /// `tune` changes the config before the server starts.
    pub async fn start_with(backend: Backend, tune: impl FnOnce(&mut Config)) -> TestApi {
        Self::start_with_state(backend, tune, |state, _, _| async move { state }).await
    }

    /// `extend` adds to the API's state (events, webhooks) before it serves;
    /// it gets the config and the database handle the server uses.
    pub async fn start_with_state<F, Fut>(
        backend: Backend,
        tune: impl FnOnce(&mut Config),
        extend: F,
    ) -> TestApi
    where
        F: FnOnce(ApiState, Config, SharedDb) -> Fut,
        Fut: std::future::Future<Output = ApiState>,
    {
        let testdb = TestDb::new(backend).await;
        let db = testdb.connect().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = test_config(dir.path(), &testdb.url);
        tune(&mut cfg);
        std::fs::create_dir_all(&cfg.recording.dir).expect("recordings dir");
        let shared = SharedDb::new(DbTarget::from_config(&cfg));
        let mut events = Events::open(
            &cfg.daemon.state_dir.join("events"),
            LogLimits::default(),
            &cfg.pbx.sensor,
        )
        .expect("event log");
        events.run(DbResolve::new(&cfg, shared.clone()));
        let live = Arc::new(LiveCalls::default());
        live.follow(events.log.clone());
        let api_events = ApiEvents::new(
            events.log.clone(),
            live,
            Some(events.emitter.clone()),
            std::time::Duration::from_secs(1),
        );
        let state = ApiState::new(&cfg, shared.clone(), &cfg.daemon.state_dir)
            .expect("api state")
            .with_events(api_events);
        let state = extend(state, cfg.clone(), shared).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            pbxbridge::api::serve(listener, state, async move {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        TestApi {
            addr,
            base: format!("http://{addr}"),
            db,
            cfg,
            http: reqwest::Client::new(),
            dir,
            stop: Some(stop),
            task: Some(task),
            events,
            _testdb: testdb,
        }
    }

    /// A new key's token.
    pub async fn key(&self, role: &str, agent_id: Option<&str>) -> String {
        let (_, token) = self
            .db
            .create_api_key(&format!("test-{role}"), role, agent_id, None)
            .await
            .expect("create key");
        token.0
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(token)
    }

    /// GET → (status, JSON body).
    pub async fn get_json(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let resp = self.get(path, token).send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, json)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// A valid 0.1 s mono 8 kHz WAV, for uploads.
pub fn tiny_wav() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut out, spec).expect("wav");
        for i in 0..800 {
            w.write_sample(((i % 40) * 500 - 10_000) as i16)
                .expect("sample");
        }
        w.finalize().expect("finalize");
    }
    out.into_inner()
}
