//! One attempt: the signed POST and what came back.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::endpoint::Endpoint;
use super::sign::signature_header;
use super::Ctx;
use crate::time::Timestamp;

/// Longest error text kept for a failed delivery.
const MAX_ERROR: usize = 300;

/// What the event carries to every attempt.
#[derive(Debug)]
pub(super) struct Message {
    pub id: Box<str>,
    pub event_type: Box<str>,
    pub sensor: Box<str>,
    pub call_id: Option<Box<str>>,
    /// The body, byte for byte the event's JSON in the log.
    pub body: Arc<str>,
}

#[derive(Debug, Default)]
pub(super) struct Answer {
    pub status: Option<u16>,
    pub retry_after: Option<String>,
    /// Why no answer came (refused, unreachable, timed out).
    pub error: Option<String>,
}

pub(super) async fn attempt(ctx: Arc<Ctx>, ep: Arc<Endpoint>, msg: Arc<Message>) -> Answer {
    ctx.stats.attempts.fetch_add(1, Ordering::Relaxed);
    // Names are checked again by the resolver on connecting; an address
    // in the URL never meets it, so it is checked here.
    if let Err(e) = ctx.allow.check_url(&ep.url) {
        ctx.stats.refused.fetch_add(1, Ordering::Relaxed);
        return Answer {
            error: Some(e.to_string()),
            ..Answer::default()
        };
    }
    let now = Timestamp::now();
    let ts = now.micros().div_euclid(1_000_000);
    let signature = signature_header(&ep.signing(now), &msg.id, ts, msg.body.as_bytes());
    let sent = ctx
        .client
        .post(&ep.url)
        .header("webhook-id", &*msg.id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(msg.body.to_string())
        .send()
        .await;
    match sent {
        Ok(resp) => Answer {
            status: Some(resp.status().as_u16()),
            retry_after: resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            error: None,
        },
        Err(e) => Answer {
            error: Some(describe(&e)),
            ..Answer::default()
        },
    }
}

/// reqwest's error with its causes: its own text says only "error sending
/// request"; the refusal or the timeout is further down.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    if e.is_timeout() && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text.chars().take(MAX_ERROR).collect()
}
