//! Sensors publish their event logs to a real NATS JetStream (a private
//! nats-server per test); one consumer copies the stream into a third log.
//! The server is stopped and started again in the middle: nothing is lost,
//! nothing arrives twice, and each call's events keep their order.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pbxbridge::config::NatsConfig;
use pbxbridge::events::nats::{Consumer, Publisher, CURSOR_FILE};
use pbxbridge::events::{Event, EventLog, EventType, IdMaker};
use pbxbridge::time::Timestamp;

use crate::nats_support::NatsServer;

const STEPS: [EventType; 5] = [
    EventType::CallRinging,
    EventType::CallAnswered,
    EventType::CallHeld,
    EventType::CallResumed,
    EventType::CallHungup,
];

fn config(url: &str) -> NatsConfig {
    NatsConfig {
        url: url.into(),
        stream: "PBXBRIDGE_TEST".into(),
        consumer: "central".into(),
        ..NatsConfig::default()
    }
}

fn open_log(dir: &Path) -> Arc<EventLog> {
    Arc::new(EventLog::open(dir, Default::default()).unwrap())
}

/// Calls `first..first+calls` of `sensor`, their steps interleaved as on a
/// busy PBX; appended to `log` a few at a time.
fn emit(log: &EventLog, sensor: &str, first: usize, calls: usize) -> Vec<Event> {
    let mut all = Vec::new();
    for (step, kind) in STEPS.into_iter().enumerate() {
        for c in first..first + calls {
            let at = Timestamp::from_secs(1_800_000_000 + (c * 10 + step) as i64);
            let call_id = format!("call-{c}@pbx");
            all.push(Event {
                id: IdMaker::for_call(sensor, &call_id, kind, at),
                kind,
                occurred_at: at,
                sensor: sensor.to_owned(),
                call_id: Some(call_id),
                data: serde_json::json!({ "step": step }),
            });
        }
    }
    for chunk in all.chunks(7) {
        log.append(chunk).unwrap();
    }
    all
}

async fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every event of the log, oldest first.
fn all_events(log: &EventLog) -> Vec<Event> {
    log.read_after(0, 100_000)
        .unwrap()
        .iter()
        .map(|s| s.event().unwrap())
        .collect()
}

/// Each event exactly once, and the events of each (sensor, call) in the
/// order they were emitted.
fn assert_once_in_order(got: &[Event], sent: &[Event]) {
    let ids: HashSet<&str> = got.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "an event arrived twice");
    let want: HashSet<&str> = sent.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, want, "events lost or foreign");
    let by_call = |evs: &[Event]| {
        let mut m: HashMap<(String, String), Vec<String>> = HashMap::new();
        for e in evs {
            m.entry((e.sensor.clone(), e.call_id.clone().unwrap()))
                .or_default()
                .push(e.id.clone());
        }
        m
    };
    assert_eq!(by_call(got), by_call(sent), "a call's events out of order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sensors_one_consumer_through_a_nats_restart() {
    let mut nats = NatsServer::start();
    let cfg = config(&nats.url());
    let dir = tempfile::tempdir().unwrap();
    // The second name needs escaping in a subject token.
    let sensors = ["site-a", "site.b *"];
    let logs: Vec<Arc<EventLog>> = sensors
        .iter()
        .enumerate()
        .map(|(i, _)| open_log(&dir.path().join(format!("sensor{i}"))))
        .collect();
    let central = open_log(&dir.path().join("central"));
    let cursor = |i: usize| dir.path().join(format!("sensor{i}")).join(CURSOR_FILE);
    let pubs: Vec<Publisher> = (0..2)
        .map(|i| Publisher::start(cfg.clone(), sensors[i], logs[i].clone(), cursor(i)))
        .collect();
    let consumer = Consumer::start(cfg.clone(), central.clone());

    let mut sent = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        sent.extend(emit(log, sensors[i], 0, 10));
    }
    let long = Duration::from_secs(60);
    wait_until("the first 100 events", long, || central.last_seq() == 100).await;

    nats.stop();
    let errors: Vec<u64> = pubs
        .iter()
        .map(|p| p.stats.publish_errors.load(Ordering::Relaxed))
        .collect();
    for (i, log) in logs.iter().enumerate() {
        sent.extend(emit(log, sensors[i], 10, 10));
    }
    wait_until("publish errors while NATS is away", long, || {
        pubs.iter().zip(&errors).all(|(p, before)| {
            p.stats.publish_errors.load(Ordering::Relaxed) > *before
                && p.stats.backlog.load(Ordering::Relaxed) == 50
        })
    })
    .await;
    for p in &pubs {
        assert_eq!(p.cursor(), 50);
    }
    assert_eq!(central.last_seq(), 100, "nothing can arrive meanwhile");

    nats.resume();
    for (i, log) in logs.iter().enumerate() {
        sent.extend(emit(log, sensors[i], 20, 10));
    }
    wait_until("all 300 events", long, || central.last_seq() >= 300).await;
    // Anything late or repeated would show now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_once_in_order(&all_events(&central), &sent);
    assert_eq!(
        consumer.stats.malformed.load(Ordering::Relaxed),
        0,
        "{}",
        nats.log()
    );

    for (i, p) in pubs.into_iter().enumerate() {
        assert_eq!(p.stats.backlog.load(Ordering::Relaxed), 0);
        p.stop(Duration::from_secs(5)).await;
        let saved = std::fs::read_to_string(cursor(i)).unwrap();
        assert_eq!(saved.trim(), "150", "cursor of {}", sensors[i]);
    }
    consumer.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_are_stored_once() {
    let nats = NatsServer::start();
    let cfg = config(&nats.url());
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(&dir.path().join("sensor"));
    let central = open_log(&dir.path().join("central"));
    let cursor = dir.path().join("sensor").join(CURSOR_FILE);
    let consumer = Consumer::start(cfg.clone(), central.clone());
    let sent = emit(&log, "s1", 0, 4);
    let p = Publisher::start(cfg.clone(), "s1", log.clone(), cursor.clone());
    let long = Duration::from_secs(60);
    wait_until("20 events", long, || central.last_seq() == 20).await;
    p.stop(Duration::from_secs(5)).await;
    assert_eq!(std::fs::read_to_string(&cursor).unwrap().trim(), "20");

    // The cursor lost: everything is published again, and the stream
    // knows every Nats-Msg-Id.
    std::fs::write(&cursor, "0\n").unwrap();
    let p = Publisher::start(cfg.clone(), "s1", log.clone(), cursor.clone());
    wait_until("the re-publish", long, || p.cursor() == 20).await;
    assert_eq!(p.stats.published.load(Ordering::Relaxed), 20);
    assert_eq!(p.stats.duplicates.load(Ordering::Relaxed), 20);
    p.stop(Duration::from_secs(5)).await;

    // Past the stream's check (another message id), the consumer's log
    // still knows the events; what is not an event is dropped, counted.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    for (i, e) in sent.iter().take(5).enumerate() {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", format!("other-{i}").as_str());
        let body = serde_json::to_string(e).unwrap();
        js.publish_with_headers("pbxbridge.s1.call.ringing", h, body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    js.publish("pbxbridge.s1.junk", "not an event".into())
        .await
        .unwrap()
        .await
        .unwrap();
    wait_until("the repeats and the junk", long, || {
        consumer.stats.consumed.load(Ordering::Relaxed) >= 25
            && consumer.stats.malformed.load(Ordering::Relaxed) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(central.last_seq(), 20);
    assert_eq!(central.stats.duplicates.load(Ordering::Relaxed), 5);
    assert_once_in_order(&all_events(&central), &sent);

    // And it goes on after the junk.
    let more = emit(&log, "s1", 4, 1);
    let p = Publisher::start(cfg.clone(), "s1", log.clone(), cursor.clone());
    wait_until("the next call", long, || central.last_seq() == 25).await;
    p.stop(Duration::from_secs(5)).await;
    consumer.stop(Duration::from_secs(5)).await;
    let mut all = sent;
    all.extend(more);
    assert_once_in_order(&all_events(&central), &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_in_the_middle_of_a_burst() {
    let mut nats = NatsServer::start();
    let cfg = config(&nats.url());
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(&dir.path().join("sensor"));
    let central = open_log(&dir.path().join("central"));
    let cursor = dir.path().join("sensor").join(CURSOR_FILE);
    let consumer = Consumer::start(cfg.clone(), central.clone());
    let p = Publisher::start(cfg.clone(), "s1", log.clone(), cursor.clone());
    let sent = {
        let log = log.clone();
        tokio::task::spawn_blocking(move || emit(&log, "s1", 0, 1000))
    };
    let long = Duration::from_secs(60);
    wait_until("the burst under way", long, || p.cursor() > 0).await;
    nats.stop();
    let at_stop = p.cursor();
    let sent = sent.await.unwrap();
    assert!(at_stop < 5000, "the burst was published before the stop");
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.resume();
    wait_until("all 5000 events", long, || central.last_seq() >= 5000).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_once_in_order(&all_events(&central), &sent);
    p.stop(Duration::from_secs(5)).await;
    consumer.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_password_file() {
    let nats = NatsServer::start_with(&["--user", "pbx", "--pass", "s3cret-pw"]);
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (dir.path().join("good"), dir.path().join("bad"));
    std::fs::write(&good, "s3cret-pw\n").unwrap();
    std::fs::write(&bad, "wrong\n").unwrap();
    let with = |file: &Path| NatsConfig {
        user: Some("pbx".into()),
        password_file: Some(file.to_path_buf()),
        ..config(&nats.url())
    };
    let log = open_log(&dir.path().join("sensor"));
    let central = open_log(&dir.path().join("central"));
    let refused = open_log(&dir.path().join("refused"));
    let sent = emit(&log, "s1", 0, 2);
    let p = Publisher::start(with(&good), "s1", log.clone(), dir.path().join("cursor"));
    let consumer = Consumer::start(with(&good), central.clone());
    let intruder = Consumer::start(
        NatsConfig {
            consumer: "intruder".into(),
            ..with(&bad)
        },
        refused.clone(),
    );
    let long = Duration::from_secs(60);
    wait_until("10 events", long, || central.last_seq() == 10).await;
    assert_once_in_order(&all_events(&central), &sent);
    wait_until("the wrong password refused", long, || {
        intruder.stats.consume_errors.load(Ordering::Relaxed) > 0
    })
    .await;
    assert_eq!(refused.last_seq(), 0);
    p.stop(Duration::from_secs(5)).await;
    consumer.stop(Duration::from_secs(5)).await;
    intruder.stop(Duration::from_secs(5)).await;
}
