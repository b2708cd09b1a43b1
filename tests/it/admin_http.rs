//! The admin endpoint as an operator and Prometheus see it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use pbxbridge::call::Stats;
use pbxbridge::ops::admin;
use pbxbridge::ops::metrics::{EventGauges, MosHistogram, NatsGauge, WebhookGauge, WebhookTotals};
use pbxbridge::ops::{
    HepCounters, IndexGauge, InterfaceCounters, MetricsSnapshot, OpsState, QueueGauge,
    DEFAULT_STALE_AFTER,
};
use tower::ServiceExt;

fn known_snapshot() -> MetricsSnapshot {
    let mut dropped = BTreeMap::new();
    dropped.insert("sip_bad_start_line", 7);
    dropped.insert("udp_truncated", 3);
    let tracker = Stats {
        packets: 1000,
        bytes: 123_456,
        udp_packets: 990,
        tcp_segments: 10,
        sip_messages: 42,
        sip_non_call: 5,
        sip_duplicates: 4,
        rtp_packets: 900,
        rtp_unmatched: 11,
        other_packets: 13,
        calls_started: 9,
        dropped,
        ..Stats::default()
    };
    let mut ended = BTreeMap::new();
    ended.insert("answered".to_owned(), 6);
    ended.insert("busy".to_owned(), 2);
    MetricsSnapshot {
        tracker,
        calls_active_by_state: vec![("ringing", 1), ("answered", 2)],
        calls_ended_by_outcome: ended,
        interfaces: vec![InterfaceCounters {
            name: "eth0".to_owned(),
            received: 1010,
            bytes: 130_000,
            kernel_dropped: 17,
            if_dropped: 2,
            queue_full: 5,
        }],
        hep: HepCounters {
            datagrams: 20,
            tcp_messages: 30,
            tcp_connections: 3,
            tcp_refused: 1,
            bad_frames: 4,
        },
        queues: vec![QueueGauge {
            name: "input",
            depth: 12,
            capacity: 4096,
            dropped: 8,
        }],
        recorded_bytes: 64_000,
        spool_bytes: 32_000,
        spool_files: 2,
        outbox_pending: 3,
        db_write_errors: 1,
        crm_relation_errors: 2,
        files_done: 4,
        files_failed: 1,
        uptime_secs: 77,
        uploads: Default::default(),
        events: EventGauges {
            emitted: 40,
            dropped_queue: 1,
            dropped_unread: 0,
            log_events: 39,
            duplicates: 2,
            webhooks: WebhookTotals {
                attempts: 35,
                delivered: 30,
                failures: 4,
                failed: 1,
                disabled: 0,
            },
            webhook_endpoints: vec![WebhookGauge {
                endpoint: "cfg-crm".into(),
                backlog: 8,
                oldest_secs: 12,
            }],
            nats: Some(NatsGauge {
                published: 39,
                backlog: 0,
                ..Default::default()
            }),
        },
        phone_index: vec![IndexGauge {
            record_type: "contact".to_owned(),
            e164: 200,
            extensions: 0,
            invalid: 3,
            build_secs: 1.5,
        }],
        mos: {
            let mut h = MosHistogram::default();
            for m in [3.5, 4.3, 4.41] {
                h.observe(m);
            }
            h
        },
    }
}

async fn get(state: &Arc<OpsState>, path: &str) -> (StatusCode, Option<String>, String) {
    let response = admin::router(Arc::clone(state))
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("router is infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().expect("ascii content type").to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = String::from_utf8(body.to_vec()).expect("utf-8 body");
    (status, content_type, body)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
async fn metrics_show_the_published_snapshot() {
    let state = Arc::new(OpsState::new(DEFAULT_STALE_AFTER, &["capture", "database"]));
    state.publish(known_snapshot());
    state.set_ready("capture", true);

    let (status, content_type, body) = get(&state, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        content_type.as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let lines: Vec<&str> = body.lines().collect();
    let expected = [
        "# TYPE pbxbridge_packets counter",
        "pbxbridge_input_frames_total 1000",
        "pbxbridge_events_emitted_total 40",
        "pbxbridge_events_dropped_total{reason=\"queue_full\"} 1",
        "pbxbridge_event_log_events 39",
        "pbxbridge_webhook_deliveries_total 30",
        "pbxbridge_webhook_failures_total 4",
        "pbxbridge_webhook_failed_total 1",
        "pbxbridge_webhook_backlog{endpoint=\"cfg-crm\"} 8",
        "pbxbridge_webhook_oldest_pending_seconds{endpoint=\"cfg-crm\"} 12",
        "pbxbridge_nats_published_total 39",
        "pbxbridge_nats_backlog 0",
        "pbxbridge_input_bytes_total 123456",
        "pbxbridge_packets_total{kind=\"sip\"} 42",
        "pbxbridge_packets_total{kind=\"rtp\"} 900",
        "pbxbridge_packets_total{kind=\"other\"} 13",
        "pbxbridge_transport_packets_total{transport=\"udp\"} 990",
        "pbxbridge_transport_packets_total{transport=\"tcp\"} 10",
        "pbxbridge_sip_untracked_total{reason=\"non_call\"} 5",
        "pbxbridge_sip_untracked_total{reason=\"duplicate\"} 4",
        "pbxbridge_rtp_untracked_total{reason=\"unmatched\"} 11",
        "pbxbridge_malformed_total{reason=\"sip_bad_start_line\"} 7",
        "pbxbridge_malformed_total{reason=\"udp_truncated\"} 3",
        "pbxbridge_calls_started_total 9",
        "pbxbridge_calls_ended_total{outcome=\"answered\"} 6",
        "pbxbridge_calls_ended_total{outcome=\"busy\"} 2",
        "# TYPE pbxbridge_calls_active gauge",
        "pbxbridge_calls_active{state=\"ringing\"} 1",
        "pbxbridge_calls_active{state=\"answered\"} 2",
        "# TYPE pbxbridge_call_mos histogram",
        "pbxbridge_call_mos_count 3",
        "pbxbridge_call_mos_bucket{le=\"3.1\"} 0",
        "pbxbridge_call_mos_bucket{le=\"3.6\"} 1",
        "pbxbridge_call_mos_bucket{le=\"4.2\"} 1",
        "pbxbridge_call_mos_bucket{le=\"4.3\"} 2",
        "pbxbridge_call_mos_bucket{le=\"4.4\"} 2",
        "pbxbridge_call_mos_bucket{le=\"+Inf\"} 3",
        "pbxbridge_capture_packets_total{interface=\"eth0\"} 1010",
        "pbxbridge_capture_bytes_total{interface=\"eth0\"} 130000",
        "pbxbridge_kernel_drops_total{interface=\"eth0\",kind=\"kernel\"} 17",
        "pbxbridge_kernel_drops_total{interface=\"eth0\",kind=\"interface\"} 2",
        "pbxbridge_capture_queue_full_total{interface=\"eth0\"} 5",
        "pbxbridge_hep_messages_total{transport=\"udp\"} 20",
        "pbxbridge_hep_messages_total{transport=\"tcp\"} 30",
        "pbxbridge_hep_tcp_connections_total 3",
        "pbxbridge_hep_tcp_refused_total 1",
        "pbxbridge_hep_bad_frames_total 4",
        "pbxbridge_queue_depth{queue=\"input\"} 12",
        "pbxbridge_queue_capacity{queue=\"input\"} 4096",
        "pbxbridge_queue_dropped_total{queue=\"input\"} 8",
        "# UNIT pbxbridge_recorded_bytes bytes",
        "pbxbridge_recorded_bytes_total 64000",
        "pbxbridge_spool_bytes 32000",
        "pbxbridge_spool_files 2",
        "pbxbridge_outbox_pending 3",
        "pbxbridge_db_write_errors_total 1",
        "pbxbridge_crm_relation_errors_total 2",
        "pbxbridge_capture_files_total{result=\"done\"} 4",
        "pbxbridge_capture_files_total{result=\"failed\"} 1",
        "pbxbridge_phone_index_values{type=\"contact\",status=\"e164\"} 200",
        "pbxbridge_phone_index_values{type=\"contact\",status=\"invalid\"} 3",
        "pbxbridge_phone_index_build_seconds{type=\"contact\"} 1.5",
        "pbxbridge_uptime_seconds 77",
        "pbxbridge_component_ready{component=\"capture\"} 1",
        "pbxbridge_component_ready{component=\"database\"} 0",
    ];
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|want| !lines.contains(want))
        .collect();
    assert!(missing.is_empty(), "missing lines {missing:#?} in\n{body}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("pbxbridge_tracker_heartbeat_age_seconds ")),
        "{body}"
    );
    assert_eq!(
        lines.last(),
        Some(&"# EOF"),
        "OpenMetrics must end with # EOF"
    );
    // Every sample belongs to our namespace; nothing leaks in unprefixed.
    for line in lines.iter().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("pbxbridge_"), "unprefixed sample: {line}");
    }
}

#[tokio::test]
async fn metrics_follow_the_latest_publish() {
    let state = Arc::new(OpsState::new(DEFAULT_STALE_AFTER, &[]));
    state.publish(known_snapshot());
    let (_, _, before) = get(&state, "/metrics").await;
    assert!(before.contains("pbxbridge_uptime_seconds 77\n"), "{before}");

    let mut later = known_snapshot();
    later.uptime_secs = 78;
    later.tracker.packets = 2000;
    later.calls_active_by_state = vec![("closing", 4)];
    state.publish(later);
    let (_, _, after) = get(&state, "/metrics").await;
    assert!(after.contains("pbxbridge_uptime_seconds 78\n"), "{after}");
    assert!(
        after.contains("pbxbridge_input_frames_total 2000\n"),
        "{after}"
    );
    assert!(after.contains("pbxbridge_calls_active{state=\"closing\"} 4\n"));
    assert!(
        !after.contains("state=\"ringing\""),
        "old states must go: {after}"
    );
}

#[tokio::test]
async fn readiness_waits_for_every_component() {
    let state = Arc::new(OpsState::new(DEFAULT_STALE_AFTER, &["capture", "database"]));

    let (status, _, body) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let v = json(&body);
    assert_eq!(v["status"], "not_ready");
    assert_eq!(v["not_ready"], serde_json::json!(["capture", "database"]));

    state.set_ready("database", true);
    let (status, _, body) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&body)["not_ready"], serde_json::json!(["capture"]));

    state.set_ready("capture", true);
    let (status, content_type, body) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let v = json(&body);
    assert_eq!(v["status"], "ready");
    assert_eq!(v["components"]["capture"], true);
    assert_eq!(v["components"]["database"], true);

    // A component losing its footing (database gone) makes the daemon unready again.
    state.set_ready("database", false);
    let (status, _, body) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&body)["not_ready"], serde_json::json!(["database"]));

    // A component registered late by its first report also counts.
    state.set_ready("database", true);
    state.set_ready("storage", false);
    let (status, _, body) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&body)["not_ready"], serde_json::json!(["storage"]));
}

#[tokio::test]
async fn healthz_fails_when_the_tracker_stops_publishing() {
    let state = Arc::new(OpsState::new(Duration::from_millis(100), &[]));
    state.publish(MetricsSnapshot::default());
    let (status, _, body) = get(&state, "/healthz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["status"], "ok");

    tokio::time::sleep(Duration::from_millis(250)).await;
    let (status, content_type, body) = get(&state, "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let v = json(&body);
    assert_eq!(v["status"], "stale");
    assert_eq!(v["stale"], serde_json::json!(["tracker"]));
    assert!(v["tracker_heartbeat_age_secs"].as_f64().expect("age") >= 0.25);
    assert_eq!(v["stale_after_secs"].as_f64(), Some(0.1));

    // A bare heartbeat (tracker alive, nothing new) revives it too.
    state.set_live_heartbeat(std::time::Instant::now());
    let (status, _, body) = get(&state, "/healthz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn unknown_paths_get_a_json_404() {
    let state = Arc::new(OpsState::new(DEFAULT_STALE_AFTER, &[]));
    let (status, content_type, body) = get(&state, "/metrics/extra").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let v = json(&body);
    assert_eq!(v["error"], "not found");
    assert_eq!(v["path"], "/metrics/extra");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_real_http_and_shuts_down() {
    let state = Arc::new(OpsState::new(DEFAULT_STALE_AFTER, &["capture"]));
    state.publish(known_snapshot());
    state.set_ready("capture", true);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(admin::serve(listener, Arc::clone(&state), async move {
        let _ = stop_rx.await;
    }));

    // A plain blocking client, as curl or Prometheus would speak it: no shared code
    // with the server side.
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
    })
    .await
    .expect("client thread");

    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    assert!(
        body.contains("pbxbridge_queue_capacity{queue=\"input\"} 4096\n"),
        "{body}"
    );
    assert!(body.contains("# EOF"), "{body}");

    stop_tx.send(()).expect("server still running");
    let result = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops after shutdown")
        .expect("server task");
    result.expect("serve returns Ok");
}
