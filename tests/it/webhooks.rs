//! Webhooks end to end: a receiver on 127.0.0.1 that checks every request's
//! signature with its own HMAC (written from the Standard Webhooks
//! specification, not pbxbridge's code) and answers as each test scripts it.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use pbxbridge::config::{Config, WebhookConfig};
use pbxbridge::db::webhooks::WebhookRow;
use pbxbridge::db::{Backend, DbTarget, SharedDb};
use pbxbridge::events::webhook::{EndpointChange, NewEndpoint, WebhookError, Webhooks};
use pbxbridge::events::{Event, EventLog, EventType, IdMaker, LogLimits};
use pbxbridge::time::Timestamp;

use crate::api_support::TestApi;
use crate::db_support::{TestDb, ALL};

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// How many of the header's signatures `secret` made.
fn signed_by(secret: &str, id: &str, ts: &str, body: &[u8], header: &str) -> usize {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_"))
        .expect("base64");
    let mut msg = format!("{id}.{ts}.").into_bytes();
    msg.extend_from_slice(body);
    let want = format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &msg)));
    header.split(' ').filter(|s| *s == want).count()
}

#[test]
fn the_receivers_own_hmac_matches_the_specifications_example() {
    assert_eq!(
        signed_by(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#,
            "v1,bm9ldHZhbGlk v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ),
        1
    );
}

#[derive(Debug, Clone)]
struct Req {
    path: String,
    id: String,
    sigs: String,
    body: String,
    status: u16,
    /// Signatures made by each trusted secret, in trust order.
    signed: Vec<usize>,
    at: Instant,
}

/// path, webhook-id, body, attempt (1-based) → status and Retry-After.
type Rule = Box<dyn Fn(&str, &str, &str, usize) -> (u16, Option<&'static str>) + Send + Sync>;

struct Recv {
    reqs: Mutex<Vec<Req>>,
    secrets: Mutex<Vec<String>>,
    rule: Mutex<Rule>,
}

struct Receiver {
    base: String,
    st: Arc<Recv>,
}

async fn receive(
    State(st): State<Arc<Recv>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (id, ts, sigs) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (t - Timestamp::now().micros() / 1_000_000).abs() < 60);
    let signed: Vec<usize> = st
        .secrets
        .lock()
        .unwrap()
        .iter()
        .map(|s| signed_by(s, &id, &ts, &body, &sigs))
        .collect();
    let valid = fresh
        && signed.iter().any(|n| *n > 0)
        && h("content-type") == "application/json"
        && id.starts_with("evt_");
    let text = String::from_utf8_lossy(&body).into_owned();
    let mut reqs = st.reqs.lock().unwrap();
    let attempt = 1 + reqs.iter().filter(|r| r.path == path && r.id == id).count();
    let (status, retry_after) = if valid {
        (st.rule.lock().unwrap())(&path, &id, &text, attempt)
    } else {
        (401, None)
    };
    reqs.push(Req {
        path,
        id,
        sigs,
        body: text,
        status,
        signed,
        at: Instant::now(),
    });
    let mut resp = StatusCode::from_u16(status).unwrap().into_response();
    if let Some(ra) = retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    resp
}

impl Receiver {
    async fn start(rule: Rule) -> Receiver {
        let st = Arc::new(Recv {
            reqs: Mutex::default(),
            secrets: Mutex::default(),
            rule: Mutex::new(rule),
        });
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(receive))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base, st }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn trust(&self, secret: &str) {
        self.st.secrets.lock().unwrap().push(secret.to_owned());
    }

    fn rule(&self, rule: Rule) {
        *self.st.rule.lock().unwrap() = rule;
    }

    fn reqs(&self, path: &str) -> Vec<Req> {
        let all = self.st.reqs.lock().unwrap();
        all.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// webhook-id → 2xx answers, on `path`.
    fn acked(&self, path: &str) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for r in self.reqs(path).iter().filter(|r| r.status < 300) {
            *out.entry(r.id.clone()).or_insert(0) += 1;
        }
        out
    }
}

fn config(dir: &Path, db_url: &str) -> Config {
    let mut cfg = Config::default();
    cfg.database.url = db_url.to_owned();
    cfg.daemon.state_dir = dir.join("state");
    cfg.events.webhook_allow = vec!["127.0.0.1".into()];
    cfg.events.webhook_retry_secs = vec![1, 1, 2];
    cfg.events.webhook_timeout_secs = 5;
    cfg.events.webhook_concurrency = 4;
    cfg
}

fn open_log(cfg: &Config) -> Arc<EventLog> {
    Arc::new(EventLog::open(&cfg.daemon.state_dir.join("events"), LogLimits::default()).unwrap())
}

async fn start(cfg: &Config, log: &Arc<EventLog>) -> Webhooks {
    let db = SharedDb::new(DbTarget::from_config(cfg));
    let hooks = Webhooks::start(cfg, &cfg.daemon.state_dir, log.clone(), db)
        .await
        .expect("webhooks start");
    until("endpoints loaded", 10, || hooks.loaded()).await;
    hooks
}

fn event(ids: &IdMaker, kind: EventType, call: Option<&str>, tag: &str) -> Event {
    Event {
        id: ids.next(),
        kind,
        occurred_at: Timestamp::now(),
        sensor: "s1".into(),
        call_id: call.map(str::to_owned),
        data: serde_json::json!({ "tag": tag }),
    }
}

async fn until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn until_async<F, Fut>(what: &str, secs: u64, mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + Duration::from_secs(secs);
    while !ok().await {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every request carries a valid signature, and the attempts of one event
/// all carry the same body.
fn assert_signed_and_stable(reqs: &[Req], ids: &HashSet<String>) {
    let mut bodies: HashMap<&str, &str> = HashMap::new();
    for r in reqs {
        assert_ne!(r.status, 401, "bad signature or headers: {r:?}");
        assert!(ids.contains(&r.id), "an id that is no event's: {}", r.id);
        let first = bodies.entry(&r.id).or_insert(&r.body);
        assert_eq!(*first, r.body, "{}: a retry with another body", r.id);
        let ev: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(ev["id"], r.id.as_str(), "webhook-id is the event's id");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_retried_in_order_per_call_and_kept_when_they_fail() {
    let t = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &t.url);
    let log = open_log(&cfg);
    let recv = Receiver::start(Box::new(|_, _, body, n| {
        if body.contains("doomed") {
            (500, None)
        } else if body.contains("flaky") {
            match n {
                1 => (500, None),
                2 => (429, Some("2")),
                _ => (200, None),
            }
        } else {
            (204, None)
        }
    }))
    .await;
    let hooks = start(&cfg, &log).await;
    let (all, secret) = hooks
        .create(NewEndpoint {
            url: recv.url("a"),
            events: vec![],
            enabled: true,
        })
        .await
        .unwrap();
    recv.trust(secret.expose());
    let (hungup, secret_b) = hooks
        .create(NewEndpoint {
            url: recv.url("b"),
            events: vec!["call.hungup".into()],
            enabled: true,
        })
        .await
        .unwrap();
    recv.trust(secret_b.expose());

    let ids = IdMaker::default();
    use EventType::*;
    let script = [
        (CallRinging, Some("A"), "flaky"),
        (CallRinging, Some("B"), ""),
        (CallRinging, Some("C"), "doomed"),
        (CallAnswered, Some("A"), ""),
        (NoteAdded, None, "flaky"),
        (CallAnswered, Some("B"), "flaky"),
        (CallHungup, Some("A"), ""),
        (CallHungup, Some("C"), ""),
        (CallHungup, Some("B"), ""),
        (CallCompleted, Some("A"), ""),
    ];
    let events: Vec<Event> = script
        .iter()
        .map(|(k, c, tag)| event(&ids, *k, *c, tag))
        .collect();
    for e in &events {
        log.append(std::slice::from_ref(e)).unwrap();
    }
    let all_ids: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
    let doomed = events[2].id.clone();

    until("every event but the doomed one", 30, || {
        let acked = recv.acked("a");
        all_ids
            .iter()
            .all(|id| *id == doomed || acked.contains_key(id))
    })
    .await;
    until_async("the doomed one kept as failed", 30, || async {
        hooks.failed(&all.id).await.unwrap().len() == 1
    })
    .await;

    let reqs = recv.reqs("a");
    assert_signed_and_stable(&reqs, &all_ids);
    assert!(reqs.iter().all(|r| r.sigs.split(' ').count() == 1));
    // Each once, the doomed one never.
    let acked = recv.acked("a");
    assert!(acked.values().all(|n| *n == 1), "{acked:?}");
    assert!(!acked.contains_key(&doomed));
    // Retries carry the same id: 500, then 429 (Retry-After: 2, heeded
    // although the schedule says 1 s), then 2xx.
    let flaky: Vec<&Req> = reqs.iter().filter(|r| r.id == events[0].id).collect();
    let statuses: Vec<u16> = flaky.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 429, 200]);
    let waited = flaky[2].at - flaky[1].at;
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
    let first_wait = flaky[1].at - flaky[0].at;
    assert!(
        first_wait >= Duration::from_millis(750) && first_wait < Duration::from_millis(1900),
        "{first_wait:?}"
    );
    // Per call, strictly in order: an event is not tried before the one
    // before it is done (delivered, or failed for good).
    for call in ["A", "B", "C"] {
        let want: Vec<&str> = events
            .iter()
            .filter(|e| e.call_id.as_deref() == Some(call))
            .map(|e| e.id.as_str())
            .collect();
        let mut seen: Vec<&str> = reqs
            .iter()
            .filter(|r| want.contains(&r.id.as_str()))
            .map(|r| r.id.as_str())
            .collect();
        seen.dedup();
        assert_eq!(seen, want, "call {call}");
    }
    // The doomed one: every attempt, then its call went on.
    let doomed_reqs = reqs.iter().filter(|r| r.id == doomed).count();
    assert_eq!(doomed_reqs, 4);
    let failed = hooks.failed(&all.id).await.unwrap();
    assert_eq!(failed[0].event_id, doomed);
    assert_eq!(failed[0].attempts, 4);
    assert_eq!(failed[0].last_status, Some(500));
    assert_eq!(
        failed[0].body,
        reqs.iter().find(|r| r.id == doomed).unwrap().body
    );
    // Only the hangups went to the filtered endpoint.
    let hangups: HashSet<String> = events
        .iter()
        .filter(|e| e.kind == CallHungup)
        .map(|e| e.id.clone())
        .collect();
    until("the hangups", 10, || recv.acked("b").len() == hangups.len()).await;
    let b: HashSet<String> = recv.acked("b").into_keys().collect();
    assert_eq!(b, hangups);
    assert!(hooks.failed(&hungup.id).await.unwrap().is_empty());
    // The answers counted (the receiver has them a moment before).
    let stats = hooks.stats();
    let delivered = (all_ids.len() - 1 + hangups.len()) as u64;
    until("the count of deliveries", 5, || {
        stats.delivered.load(std::sync::atomic::Ordering::Relaxed) == delivered
    })
    .await;
    assert_eq!(stats.failed.load(std::sync::atomic::Ordering::Relaxed), 1);
    until("no backlog", 5, || {
        hooks.gauges().iter().all(|g| g.backlog == 0)
    })
    .await;

    // Redelivered through the API: the same id, and it leaves the list.
    assert!(matches!(
        hooks.redeliver(&all.id, "evt_nothing").await,
        Err(WebhookError::NoDelivery { .. })
    ));
    recv.rule(Box::new(|_, _, _, _| (200, None)));
    hooks.redeliver(&all.id, &doomed).await.unwrap();
    until("the redelivery", 10, || {
        recv.acked("a").contains_key(&doomed)
    })
    .await;
    let again: Vec<Req> = recv
        .reqs("a")
        .into_iter()
        .filter(|r| r.id == doomed)
        .collect();
    assert_eq!(again.len(), 5);
    assert_eq!(again[4].body, again[0].body);
    until_async("the failed list emptied", 5, || async {
        hooks.failed(&all.id).await.unwrap().is_empty()
    })
    .await;
    hooks.finish(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_disables_the_endpoint_until_it_is_enabled_again() {
    let t = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &t.url);
    let log = open_log(&cfg);
    let recv = Receiver::start(Box::new(|_, _, _, _| (410, None))).await;
    let hooks = start(&cfg, &log).await;
    let (ep, secret) = hooks
        .create(NewEndpoint {
            url: recv.url("gone"),
            events: vec![],
            enabled: true,
        })
        .await
        .unwrap();
    recv.trust(secret.expose());
    let ids = IdMaker::default();
    let x1 = event(&ids, EventType::CallRinging, Some("X"), "");
    let x2 = event(&ids, EventType::CallHungup, Some("X"), "");
    log.append(&[x1.clone(), x2.clone()]).unwrap();
    until("disabled", 10, || !hooks.get(&ep.id).unwrap().enabled).await;
    let info = hooks.get(&ep.id).unwrap();
    assert!(
        info.disabled_reason
            .as_deref()
            .unwrap_or("")
            .contains("410"),
        "{info:?}"
    );
    assert_eq!(
        hooks
            .stats()
            .disabled
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    log.append(&[event(&ids, EventType::CallRinging, Some("Z"), "")])
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reqs = recv.reqs("gone");
    assert_eq!(reqs.len(), 1, "nothing after the 410: {reqs:?}");
    assert_eq!(reqs[0].id, x1.id);
    assert!(matches!(
        hooks.redeliver(&ep.id, &x1.id).await,
        Err(WebhookError::NoDelivery { .. })
    ));
    hooks.finish(Duration::from_secs(5)).await;

    // Still disabled after a restart.
    let hooks = start(&cfg, &log).await;
    let info = hooks.get(&ep.id).unwrap();
    assert!(!info.enabled);
    assert!(info.disabled_reason.unwrap().contains("410"));
    // Enabled again: the events from then on.
    recv.rule(Box::new(|_, _, _, _| (200, None)));
    let info = hooks
        .update(
            &ep.id,
            EndpointChange {
                enabled: Some(true),
                ..EndpointChange::default()
            },
        )
        .await
        .unwrap();
    assert!(info.enabled && info.disabled_reason.is_none());
    let y = event(&ids, EventType::CallRinging, Some("Y"), "");
    log.append(std::slice::from_ref(&y)).unwrap();
    until("the new event", 10, || {
        recv.acked("gone").contains_key(&y.id)
    })
    .await;
    assert!(!recv.acked("gone").contains_key(&x2.id));
    hooks.finish(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_deliveries_pending_sends_each_once_more_at_most_with_the_same_ids() {
    let t = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let recv = Receiver::start(Box::new(|_, _, body, _| {
        if body.contains("down") {
            (503, None)
        } else {
            (200, None)
        }
    }))
    .await;
    let secret = format!("whsec_{}", STANDARD.encode([7u8; 32]));
    recv.trust(&secret);
    let secret_file = dir.path().join("crm.secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let mut cfg = config(dir.path(), &t.url);
    // Long waits: the pending ones are still waiting at the stop.
    cfg.events.webhook_retry_secs = vec![60, 60];
    cfg.webhooks = vec![WebhookConfig {
        name: "crm".into(),
        url: recv.url("c"),
        events: vec![],
        secret_file,
        enabled: true,
    }];
    let log = open_log(&cfg);
    let hooks = start(&cfg, &log).await;
    assert_eq!(hooks.list()[0].id, "cfg-crm");

    let ids = IdMaker::default();
    let events: Vec<Event> = [
        ("down", "down"),
        ("up", "up"),
        ("down", "down"),
        ("up", "up"),
        ("up", "up"),
    ]
    .iter()
    .map(|(call, tag)| event(&ids, EventType::CallRinging, Some(call), tag))
    .collect();
    log.append(&events).unwrap();
    let all_ids: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
    let ups: Vec<&str> = [1, 3, 4].iter().map(|i| events[*i].id.as_str()).collect();
    until("the up ones", 10, || {
        let acked = recv.acked("c");
        ups.iter().all(|id| acked.contains_key(*id))
    })
    .await;
    until("a first try of the down one", 10, || {
        recv.reqs("c").iter().any(|r| r.id == events[0].id)
    })
    .await;
    hooks.finish(Duration::from_secs(5)).await;
    let before = recv.reqs("c").len();
    assert!(dir.path().join("state/webhooks/cfg-crm/cursor").exists());

    // A new process: the log reopened, the receiver well again.
    drop(log);
    let log = open_log(&cfg);
    recv.rule(Box::new(|_, _, _, _| (200, None)));
    let hooks = start(&cfg, &log).await;
    until("everything", 10, || {
        let acked = recv.acked("c");
        all_ids.iter().all(|id| acked.contains_key(id))
    })
    .await;
    // A moment for anything sent twice to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reqs = recv.reqs("c");
    assert!(reqs.len() > before);
    assert_signed_and_stable(&reqs, &all_ids);
    let acked = recv.acked("c");
    for (i, e) in events.iter().enumerate() {
        let n = acked[&e.id];
        if e.call_id.as_deref() == Some("down") {
            assert_eq!(n, 1, "event {i}: never taken before the stop");
        } else {
            assert!((1..=2).contains(&n), "event {i}: taken {n} times");
        }
    }
    // The down call kept its order across the restart.
    let mut down: Vec<&str> = reqs
        .iter()
        .filter(|r| r.body.contains("down"))
        .map(|r| r.id.as_str())
        .collect();
    down.dedup();
    assert_eq!(down, [events[0].id.as_str(), events[2].id.as_str()]);
    hooks.finish(Duration::from_secs(5)).await;
}

/// The allow-list lists the name, but it resolves to a loopback address:
/// the resolver refuses at connect time, and nothing reaches the receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_name_that_resolves_inside_is_refused_at_connect() {
    let t = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let recv = Receiver::start(Box::new(|_, _, _, _| (200, None))).await;
    let secret_file = dir.path().join("s");
    std::fs::write(
        &secret_file,
        format!("whsec_{}", STANDARD.encode([3u8; 32])),
    )
    .unwrap();
    let mut cfg = config(dir.path(), &t.url);
    cfg.events.webhook_allow = vec!["localhost".into()];
    cfg.events.webhook_retry_secs = vec![1];
    cfg.webhooks = vec![WebhookConfig {
        name: "inside".into(),
        url: recv.url("x").replace("127.0.0.1", "localhost"),
        events: vec![],
        secret_file,
        enabled: true,
    }];
    let log = open_log(&cfg);
    let hooks = start(&cfg, &log).await;
    let ids = IdMaker::default();
    let e = event(&ids, EventType::NoteAdded, None, "");
    log.append(std::slice::from_ref(&e)).unwrap();
    until_async("the delivery given up", 15, || async {
        !hooks.failed("cfg-inside").await.unwrap().is_empty()
    })
    .await;
    let failed = hooks.failed("cfg-inside").await.unwrap();
    assert_eq!(failed[0].event_id, e.id);
    assert_eq!((failed[0].attempts, failed[0].last_status), (2, None));
    let why = failed[0].last_error.clone().unwrap_or_default();
    assert!(
        why.contains("which events.webhook_allow does not list"),
        "{why}"
    );
    assert!(recv.reqs("x").is_empty());
    // An address in the URL is checked before any connection.
    assert!(matches!(
        hooks
            .create(NewEndpoint {
                url: recv.url("y"),
                events: vec![],
                enabled: true,
            })
            .await,
        Err(WebhookError::Url(_))
    ));
    hooks.finish(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_manages_endpoints_for_admins_only() {
    let recv = Receiver::start(Box::new(|_, _, _, _| (200, None))).await;
    let keep = tempfile::tempdir().unwrap();
    let cfg_secret = format!("whsec_{}", STANDARD.encode([9u8; 32]));
    let secret_file = keep.path().join("s");
    std::fs::write(&secret_file, &cfg_secret).unwrap();
    recv.trust(&cfg_secret);
    let cfg_url = recv.url("cfg");
    type Started = Option<(Arc<EventLog>, Webhooks)>;
    let shared: Arc<Mutex<Started>> = Arc::default();
    let out = shared.clone();
    let api = TestApi::start_with_state(
        Backend::Sqlite,
        |cfg| {
            cfg.events.webhook_allow = vec!["127.0.0.1".into()];
            cfg.events.webhook_retry_secs = vec![1];
            cfg.webhooks = vec![WebhookConfig {
                name: "crm".into(),
                url: cfg_url,
                events: vec![],
                secret_file,
                enabled: true,
            }];
        },
        |state, cfg, db| async move {
            let log = open_log(&cfg);
            let hooks = Webhooks::start(&cfg, &cfg.daemon.state_dir, log.clone(), db)
                .await
                .unwrap();
            *out.lock().unwrap() = Some((log, hooks.clone()));
            state.with_webhooks(hooks)
        },
    )
    .await;
    let (log, hooks) = shared.lock().unwrap().clone().unwrap();
    until("endpoints loaded", 10, || hooks.loaded()).await;
    let admin = api.key("admin", None).await;
    let agent = api.key("agent", Some("a1")).await;
    let post = |path: &str, token: &str, body: serde_json::Value| {
        api.http
            .post(api.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let json = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        (
            status,
            r.json::<serde_json::Value>().await.unwrap_or_default(),
        )
    };

    let (status, _) = api.get_json("/v1/webhooks", &agent).await;
    assert_eq!(status, 403);
    let (status, list) = api.get_json("/v1/webhooks", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"][0]["id"], "cfg-crm");
    assert_eq!(list["data"][0]["source"], "config");

    let (status, body) = json(
        post(
            "/v1/webhooks",
            &agent,
            serde_json::json!({"url": recv.url("h")}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    for (url, events) in [
        ("http://10.9.9.9/x".to_owned(), vec![]),
        ("ftp://127.0.0.1/x".to_owned(), vec![]),
        (recv.url("h"), vec!["call.nope"]),
    ] {
        let (status, body) = json(
            post(
                "/v1/webhooks",
                &admin,
                serde_json::json!({"url": url, "events": events}),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{url}: {body}");
        let param = if events.is_empty() { "url" } else { "events" };
        assert_eq!(body["param"], param, "{url}: {body}");
    }
    let (status, made) = json(
        post(
            "/v1/webhooks",
            &admin,
            serde_json::json!({"url": recv.url("h")}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let id = made["webhook"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("wh_"), "{id}");
    recv.trust(&secret);
    let path = format!("/v1/webhooks/{id}");
    let text = api
        .get(&path, &admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(&id) && !text.contains("whsec_"), "{text}");
    let (_, list) = api.get_json("/v1/webhooks", &admin).await;
    assert!(!list.to_string().contains("whsec_"));

    // The config's endpoint is changed in the config only.
    for r in [
        api.http
            .patch(api.url("/v1/webhooks/cfg-crm"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"enabled": false})),
        api.http
            .delete(api.url("/v1/webhooks/cfg-crm"))
            .bearer_auth(&admin),
        api.http
            .post(api.url("/v1/webhooks/cfg-crm/rotate-secret"))
            .bearer_auth(&admin),
    ] {
        assert_eq!(r.send().await.unwrap().status().as_u16(), 409);
    }

    // A rotation: two signatures, one by each secret, for a day.
    let (status, rotated) = json(
        post(
            &format!("{path}/rotate-secret"),
            &admin,
            serde_json::json!({}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let until_at =
        Timestamp::parse_rfc3339(rotated["previous_secret_until"].as_str().unwrap()).unwrap();
    let day = until_at.micros() - Timestamp::now().micros();
    assert!((86_000_000_000..=86_400_000_000).contains(&day), "{day}");
    recv.trust(&new_secret);
    let ids = IdMaker::default();
    let e = event(&ids, EventType::CallHungup, Some("R"), "");
    log.append(std::slice::from_ref(&e)).unwrap();
    until("the rotated delivery", 10, || {
        recv.acked("h").contains_key(&e.id)
    })
    .await;
    let r = recv.reqs("h").into_iter().find(|r| r.id == e.id).unwrap();
    assert_eq!(r.sigs.split(' ').count(), 2, "{}", r.sigs);
    // Trusted: the config's, the first, the new one.
    assert_eq!(r.signed, [0, 1, 1]);
    // The config's endpoint got it too, signed by its file's secret.
    until("the config endpoint", 10, || {
        recv.acked("cfg").contains_key(&e.id)
    })
    .await;
    assert_eq!(recv.reqs("cfg")[0].signed, [1, 0, 0]);

    let patch = |body: serde_json::Value| {
        api.http
            .patch(api.url(&path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let (status, changed) = json(
        patch(serde_json::json!({"events": ["call.hungup"], "enabled": false}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["events"], serde_json::json!(["call.hungup"]));
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["disabled_reason"], "disabled through the API");
    let (status, body) = json(
        patch(serde_json::json!({"url": "http://10.0.0.1/"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["param"].as_str()), (400, Some("url")));
    let (status, body) = json(patch(serde_json::json!({"colour": "red"})).await.unwrap()).await;
    assert_eq!(status, 400, "{body}");

    let (status, list) = api.get_json(&format!("{path}/deliveries"), &admin).await;
    assert_eq!(
        (status, list["data"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let r = post(
        &format!("{path}/deliveries/evt_none/redeliver"),
        &admin,
        serde_json::json!({}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    let (_, doc) = api.get_json("/v1/openapi.json", &admin).await;
    for p in [
        "/v1/webhooks",
        "/v1/webhooks/{webhook_id}",
        "/v1/webhooks/{webhook_id}/deliveries",
        "/v1/webhooks/{webhook_id}/deliveries/{event_id}/redeliver",
        "/v1/webhooks/{webhook_id}/rotate-secret",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} not documented");
    }

    let state_dir = api.cfg.daemon.state_dir.join("webhooks").join(&id);
    assert!(state_dir.exists());
    let r = api
        .http
        .delete(api.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(api.get_json(&path, &admin).await.0, 404);
    assert!(!state_dir.exists());
    hooks.finish(Duration::from_secs(5)).await;
    api.stop().await;
}

#[tokio::test]
async fn webhook_rows_round_trip_on_every_backend() {
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = t.connect().await;
        let mut row = WebhookRow {
            id: "wh_01J0000000000000000000000".into(),
            url: format!("https://crm.example.com/{}", "p".repeat(1500)),
            events: vec!["call.ringing".into(), "note.added".into()],
            secret: format!("whsec_{}", STANDARD.encode([1u8; 64])),
            previous_secret: None,
            previous_until: None,
            enabled: true,
            disabled_reason: None,
            created_at: Timestamp::from_micros(1_800_000_000_123_456),
            updated_at: Timestamp::from_micros(1_800_000_000_123_456),
        };
        db.insert_webhook(&row).await.unwrap();
        assert_eq!(db.webhooks().await.unwrap(), [row.clone()], "{backend:?}");
        row.enabled = false;
        row.disabled_reason = Some("the receiver answered 410 Gone".into());
        row.previous_secret = Some(row.secret.clone());
        row.previous_until = Some(Timestamp::from_micros(1_800_086_400_000_001));
        row.events.clear();
        assert!(db.update_webhook(&row).await.unwrap());
        assert_eq!(db.webhooks().await.unwrap(), [row.clone()], "{backend:?}");
        assert!(db.delete_webhook(&row.id).await.unwrap());
        assert!(db.webhooks().await.unwrap().is_empty());
        db.close().await;
    }
}
