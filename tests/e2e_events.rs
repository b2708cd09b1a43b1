//! Live events end to end: `pbxbridge run` capturing on `lo` with `[api]`,
//! a CRM contact holding the caller's number, and SIPp placing a real call.
//! An SSE client sees the screen-pop (`call.ringing` naming the contact)
//! before the 200 OK is on the wire, then answered, hung up and completed in
//! order; `/v1/calls/live` shows the call while it is up; a client that
//! resumes with `Last-Event-ID` gets exactly what followed, no gap, no repeat.
//!
//! Needs root, sipp (Debian sip-tester) and python3; scripts/e2e-deps.sh installs them.

#[path = "e2e/crm.rs"]
mod crm;
#[path = "e2e/support.rs"]
mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use support::*;

const TALK_SECS: f64 = 3.0;

/// One server-sent event as a client sees it, with when it arrived.
#[derive(Debug, Clone)]
struct Seen {
    id: String,
    kind: String,
    data: Value,
    at: chrono::DateTime<chrono::Utc>,
}

/// Reads `/v1/events` until `stop` says enough; every event goes to `tx`.
async fn sse(url: String, token: String, last: Option<String>, tx: std::sync::mpsc::Sender<Seen>) {
    let http = reqwest::Client::new();
    let mut req = http.get(url).bearer_auth(token);
    if let Some(id) = last {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.send().await.expect("SSE request");
    assert_eq!(resp.status(), 200, "GET /v1/events");
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { return };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find('\n') {
            let line: String = buf.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !data.is_empty() {
                    let seen = Seen {
                        id: std::mem::take(&mut id),
                        kind: std::mem::take(&mut kind),
                        data: serde_json::from_str(&data).expect("event data is JSON"),
                        at: chrono::Utc::now(),
                    };
                    data.clear();
                    if tx.send(seen).is_err() {
                        return;
                    }
                }
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim_start().to_owned();
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = v.trim_start().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
    }
}

/// Collects events from `rx` until `done` holds or `limit` passes.
fn collect(
    rx: &std::sync::mpsc::Receiver<Seen>,
    limit: Duration,
    done: impl Fn(&[Seen]) -> bool,
) -> Vec<Seen> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while !done(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(s) => got.push(s),
            Err(_) => panic!(
                "events not complete within {limit:?}; got {:?}",
                got.iter().map(|s| &s.kind).collect::<Vec<_>>()
            ),
        }
    }
    got
}

#[test]
fn screen_pop_live_calls_and_sse_resume() {
    require(&["sipp", "python3", "kill"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let rt = tokio::runtime::Runtime::new().unwrap();

    let pair = Pair::new(root, "pop", 30000..40000);
    pair.rtp(TALK_SECS, 0x5c7e_0001);
    let env = DaemonEnv::capturing(root, &[&pair]);
    let api = crm::with_crm(&env, &rt, "[events]\nsse_heartbeat_secs = 1");
    let token = crm::create_key(&env.config);
    let mut daemon = env.start("pbxbridge");
    crm::wait_for_index(&daemon);

    let events_url = format!("http://{api}/v1/events");
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(sse(events_url.clone(), token.clone(), None, tx));
    std::thread::sleep(Duration::from_millis(500));

    let id = call_id("screenpop");
    let talk_ms = format!("{}", (TALK_SECS * 1000.0) as u64);
    let mut uas = pair.uas("uas_answer.xml", &["-key", "contact", "2001"]);
    let mut uac = pair.uac(
        "uac_caller_bye.xml",
        pair.uas_addr(),
        &id,
        &[
            "-key",
            "caller",
            "+14155550101",
            "-s",
            "2001",
            "-d",
            &talk_ms,
        ],
    );
    // While the call is up, it is live.
    let first = collect(&rx, Duration::from_secs(20), |got| {
        got.iter().any(|s| s.kind == "call.answered")
    });
    let http = reqwest::Client::new();
    let live: Value = get_json(&rt, &http, format!("http://{api}/v1/calls/live"), &token);
    let calls = live["data"].as_array().unwrap();
    let this: Vec<&Value> = calls
        .iter()
        .filter(|c| c["call_id"] == id.as_str())
        .collect();
    assert_eq!(this.len(), 1, "{live}");
    assert_eq!(this[0]["state"], "answered", "{live}");
    assert_eq!(
        this[0]["matches"][0]["display_name"], "Ada Lovelace",
        "{live}"
    );
    assert_eq!(this[0]["from_number"], "+14155550101", "{live}");

    uac.expect_success(Duration::from_secs(30));
    uas.expect_success(Duration::from_secs(10));
    let rest = collect(&rx, Duration::from_secs(20), |got| {
        got.iter().any(|s| s.kind == "recording.stored")
    });
    let all: Vec<Seen> = first.into_iter().chain(rest).collect();
    let ours: Vec<&Seen> = all.iter().filter(|s| envelope_call(s) == id).collect();
    let kinds: Vec<&str> = ours.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "call.ringing",
            "call.answered",
            "call.hungup",
            "call.completed",
            "recording.stored"
        ],
        "{all:#?}"
    );

    // The screen-pop names the contact, and reached us before the 200 OK
    // was captured (the answer's time is the 200's capture time).
    let ring = ours[0];
    assert_eq!(ring.data["sensor"], "default");
    assert_eq!(ring.data["data"]["matched"], true);
    let matches = ring.data["data"]["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "{}", ring.data);
    assert_eq!(matches[0]["type"], "contact");
    assert_eq!(matches[0]["id"], "7");
    assert_eq!(matches[0]["display_name"], "Ada Lovelace");
    assert_eq!(ring.data["data"]["other_number"], "+14155550101");
    let answered_at = occurred_at(ours[1]);
    assert!(
        ring.at < answered_at,
        "call.ringing arrived at {} but the 200 OK was captured at {answered_at}",
        ring.at
    );
    // Hung up with the talk time; completed is the record the API shows.
    let hungup = &ours[2].data["data"];
    assert_eq!(hungup["outcome"], "answered");
    assert_eq!(hungup["end_reason"], "caller_bye");
    let talk = hungup["duration"].as_f64().unwrap();
    assert!((talk - TALK_SECS).abs() < 1.0, "{talk}");
    let completed = &ours[3].data["data"];
    let row = completed["id"]
        .as_i64()
        .expect("completed carries the row id");
    let shown: Value = get_json(&rt, &http, format!("http://{api}/v1/calls/{row}"), &token);
    assert_eq!(shown["call_id"], completed["call_id"]);
    assert_eq!(shown["links"], completed["links"], "{shown}");
    assert_eq!(completed["links"][0]["id"], "7", "{completed}");
    assert_eq!(completed["recording"]["status"], "stored", "{completed}");
    let stored = &ours[4].data["data"];
    assert_eq!(stored["call"], row, "{stored}");
    assert!(stored["bytes"].as_u64().unwrap() > 44, "{stored}");

    // Nothing is live any more.
    let live: Value = get_json(&rt, &http, format!("http://{api}/v1/calls/live"), &token);
    assert!(
        live["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["call_id"] != id.as_str()),
        "{live}"
    );

    // A client that lost the stream after call.ringing resumes with
    // Last-Event-ID: it gets exactly what followed, in order.
    let (tx2, rx2) = std::sync::mpsc::channel();
    rt.spawn(sse(
        events_url.clone(),
        token.clone(),
        Some(ring.id.clone()),
        tx2,
    ));
    let after_ring: Vec<&Seen> = all.iter().skip_while(|s| s.id != ring.id).skip(1).collect();
    let n = after_ring.len();
    let resumed = collect(&rx2, Duration::from_secs(10), |got| got.len() >= n);
    let want: Vec<&str> = after_ring.iter().map(|s| s.id.as_str()).collect();
    let got: Vec<&str> = resumed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        got, want,
        "resumed stream differs from the original after {}",
        ring.id
    );
    // ... and nothing more arrives (no duplicate).
    assert!(rx2.recv_timeout(Duration::from_millis(1500)).is_err());

    // A type filter gives only those types.
    let (tx3, rx3) = std::sync::mpsc::channel();
    let filtered = format!(
        "{events_url}?types=call.completed&last_event_id={}",
        ring.id
    );
    rt.spawn(sse(filtered, token.clone(), None, tx3));
    let only = collect(&rx3, Duration::from_secs(10), |got| !got.is_empty());
    assert_eq!(only[0].kind, "call.completed");
    assert_eq!(only[0].id, ours[3].id);

    // The metrics count what went through the log.
    let metrics = daemon.metrics();
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    assert!(value("pbxbridge_events_emitted_total ") >= 5);
    assert!(value("pbxbridge_event_log_events ") >= 5);
    assert_eq!(
        value("pbxbridge_events_dropped_total{reason=\"queue_full\"} "),
        0
    );

    // A stop is not held up by the open event streams.
    let t = Instant::now();
    daemon.terminate(Duration::from_secs(30));
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "stop took {:?}",
        t.elapsed()
    );
}

fn get_json(
    rt: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    url: String,
    token: &str,
) -> Value {
    rt.block_on(async {
        let resp = http.get(url).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    })
}

fn envelope_call(s: &Seen) -> String {
    // SSE data is the whole envelope; its call_id names the SIP call.
    s.data["call_id"].as_str().unwrap_or_default().to_owned()
}

fn occurred_at(s: &Seen) -> chrono::DateTime<chrono::Utc> {
    s.data["occurred_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .expect("occurred_at")
        .with_timezone(&chrono::Utc)
}
