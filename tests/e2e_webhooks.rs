//! Webhooks survive `kill -9`: `pbxbridge run` capturing on `lo` sends a
//! real call's events to a receiver that is down (503). The daemon is killed
//! with deliveries pending; the receiver comes back; after a restart every
//! event arrives, in order, accepted exactly once, and every attempt at one
//! event carries the same `webhook-id`. The receiver checks each signature
//! with its own HMAC-SHA256 code (Standard Webhooks).
//!
//! Needs root, sipp (Debian sip-tester) and python3; scripts/e2e-deps.sh installs them.

#[path = "e2e/crm.rs"]
mod crm;
#[path = "e2e/support.rs"]
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use support::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    id: String,
    kind: String,
    call_id: String,
    accepted: bool,
}

#[derive(Clone, Default)]
struct Receiver {
    up: Arc<AtomicBool>,
    hits: Arc<Mutex<Vec<Hit>>>,
    bad: Arc<Mutex<Vec<String>>>,
}

/// The Standard Webhooks signature, computed here independently of
/// pbxbridge: HMAC-SHA256 with the base64-decoded secret over
/// `id.timestamp.body`, base64, after `v1,`.
fn expected_signature(id: &str, ts: &str, body: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(SECRET.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", b64.encode(mac.finalize().into_bytes()))
}

async fn hook(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
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
    let want = expected_signature(&id, &ts, &body);
    if !sigs.split(' ').any(|s| s == want) {
        r.bad
            .lock()
            .unwrap()
            .push(format!("bad signature on {id}: {sigs}"));
    }
    let ev: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if ev["id"] != id.as_str() {
        r.bad
            .lock()
            .unwrap()
            .push(format!("webhook-id {id} but body id {}", ev["id"]));
    }
    let accepted = r.up.load(Ordering::SeqCst);
    r.hits.lock().unwrap().push(Hit {
        id,
        kind: ev["type"].as_str().unwrap_or("").to_owned(),
        call_id: ev["call_id"].as_str().unwrap_or("").to_owned(),
        accepted,
    });
    if accepted {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

#[test]
fn deliveries_survive_kill_9_with_the_same_ids() {
    require(&["sipp", "python3", "kill"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let rt = tokio::runtime::Runtime::new().unwrap();

    let receiver = Receiver::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let hook_addr: SocketAddr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(receiver.clone());
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });

    let secret = root.join("webhook.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let pair = Pair::new(root, "hook", 30000..40000);
    pair.rtp(2.0, 0x5c7e_0002);
    let env = DaemonEnv::capturing(root, &[&pair]);
    crm::with_crm(
        &env,
        &rt,
        &format!(
            "[events]\nwebhook_allow = [\"127.0.0.1\"]\nwebhook_retry_secs = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n\n\
             [[webhooks]]\nname = \"crm\"\nurl = \"http://{hook_addr}/hook\"\nsecret_file = \"{}\"\n",
            secret.display()
        ),
    );
    let mut daemon = env.start("pbxbridge");
    crm::wait_for_index(&daemon);

    let id = crm::answered_call(&pair, "killed", 2.0);
    // Every event of the call is in the log, the receiver has refused the
    // first of them at least twice: deliveries are pending.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log_events = daemon
            .metrics()
            .lines()
            .find_map(|l| {
                l.strip_prefix("pbxbridge_event_log_events ")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
        let refused = receiver.hits.lock().unwrap().len();
        if log_events >= 5 && refused >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "events not pending: log {log_events}, attempts {refused}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.proc.kill9();
    receiver.up.store(true, Ordering::SeqCst);
    let daemon = env.start("pbxbridge again");

    let wanted = [
        "call.ringing",
        "call.answered",
        "call.hungup",
        "call.completed",
        "recording.stored",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let hits = loop {
        let hits = receiver.hits.lock().unwrap().clone();
        let accepted = hits
            .iter()
            .filter(|h| h.accepted && h.call_id == id)
            .count();
        if accepted >= wanted.len() {
            // A little longer: a duplicate would show now.
            std::thread::sleep(Duration::from_secs(2));
            break receiver.hits.lock().unwrap().clone();
        }
        assert!(
            Instant::now() < deadline,
            "deliveries after restart: {hits:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let bad = receiver.bad.lock().unwrap().clone();
    assert!(bad.is_empty(), "{bad:#?}");
    let ours: Vec<&Hit> = hits.iter().filter(|h| h.call_id == id).collect();
    let accepted: Vec<&str> = ours
        .iter()
        .filter(|h| h.accepted)
        .map(|h| h.kind.as_str())
        .collect();
    assert_eq!(accepted, wanted, "in order, each once: {ours:#?}");
    // One id per event, whichever attempt and whichever run carried it.
    let mut ids: HashMap<&str, &str> = HashMap::new();
    for h in &ours {
        let first = *ids.entry(h.kind.as_str()).or_insert(h.id.as_str());
        assert_eq!(first, h.id, "{} sent with two ids: {ours:#?}", h.kind);
    }
    let refused_before_kill = ours.iter().filter(|h| !h.accepted).count();
    assert!(refused_before_kill >= 2, "{ours:#?}");
    drop(daemon);
}
