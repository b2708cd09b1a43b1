//! The CRM's side: one SSE client on `/v1/events`, on its own thread and
//! runtime as a separate process would be, noting when each event arrives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt as _;

/// One event as the client saw it.
pub struct Seen {
    pub call_id: String,
    pub kind: String,
    /// When the chunk holding it arrived.
    pub at: Instant,
    /// `data.matches` of a `call.ringing`.
    pub matches: usize,
}

/// Connects, says so on `ready` once the stream is open, then sends every
/// event to `tx` until the server ends the stream. `cpu_us` holds the
/// thread's CPU time, so the bench can leave it out of the daemon's.
pub fn spawn(
    url: String,
    token: String,
    tx: Sender<Seen>,
    ready: Sender<()>,
    cpu_us: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        rt.block_on(read(url, token, tx, ready, cpu_us));
    })
}

async fn read(
    url: String,
    token: String,
    tx: Sender<Seen>,
    ready: Sender<()>,
    cpu_us: Arc<AtomicU64>,
) {
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("SSE request");
    assert_eq!(resp.status(), 200, "GET /v1/events");
    let _ = ready.send(());
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut data = String::new();
    while let Some(Ok(chunk)) = body.next().await {
        let at = Instant::now();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find('\n') {
            let line: String = buf.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
                continue;
            }
            if !line.is_empty() || data.is_empty() {
                continue;
            }
            let ev: serde_json::Value = serde_json::from_str(&data).expect("event data is JSON");
            data.clear();
            let seen = Seen {
                call_id: ev["call_id"].as_str().unwrap_or_default().to_owned(),
                kind: ev["type"].as_str().unwrap_or_default().to_owned(),
                at,
                matches: ev["data"]["matches"].as_array().map_or(0, Vec::len),
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
        cpu_us.store(crate::cpu::thread_cpu_us(), Ordering::Relaxed);
    }
}
