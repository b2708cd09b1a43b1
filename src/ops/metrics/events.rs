//! Event metrics: what was emitted and dropped, how much the log holds, and
//! per channel what was delivered and what waits (webhooks, NATS).

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::{counter, gauge, Family};

/// Webhook deliveries over every endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookTotals {
    /// Requests sent (first attempts and retries).
    pub attempts: u64,
    pub delivered: u64,
    /// Attempts that failed (an error status, no answer, refused).
    pub failures: u64,
    /// Deliveries given up after the last retry (kept, redeliverable).
    pub failed: u64,
    /// Endpoints disabled by a 410.
    pub disabled: u64,
}

/// What waits for one endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookGauge {
    pub endpoint: String,
    pub backlog: u64,
    /// Age of the oldest event waiting, in seconds (0 when none waits).
    pub oldest_secs: u64,
}

/// NATS JetStream, as a sensor publishes and `serve` consumes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NatsGauge {
    pub published: u64,
    pub publish_errors: u64,
    /// Events in the log not yet acknowledged by JetStream.
    pub backlog: u64,
    pub consumed: u64,
    pub malformed: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventGauges {
    pub emitted: u64,
    /// Dropped because the queue to the log was full.
    pub dropped_queue: u64,
    /// Dropped from the log before a webhook or NATS had them (hard cap).
    pub dropped_unread: u64,
    /// Events in the log.
    pub log_events: u64,
    /// Events received twice (a redelivery), kept once.
    pub duplicates: u64,
    pub webhooks: WebhookTotals,
    pub webhook_endpoints: Vec<WebhookGauge>,
    pub nats: Option<NatsGauge>,
}

pub(super) fn encode_events(
    enc: &mut DescriptorEncoder<'_>,
    e: &EventGauges,
) -> Result<(), fmt::Error> {
    counter(
        enc,
        "events_emitted",
        "Events made on this node.",
        None,
        e.emitted,
    )?;
    {
        let mut f = Family::new_counter(
            enc,
            "events_dropped",
            "Events lost, by reason: queue_full (the log could not keep up), log_full (the log's hard cap dropped events a webhook or NATS had not taken).",
            None,
        )?;
        f.counter(&[("reason", "queue_full")], e.dropped_queue)?;
        f.counter(&[("reason", "log_full")], e.dropped_unread)?;
    }
    gauge(
        enc,
        "event_log_events",
        "Events held in the event log.",
        None,
        e.log_events,
    )?;
    counter(
        enc,
        "events_duplicate",
        "Events received again (a redelivery) and kept once.",
        None,
        e.duplicates,
    )?;
    let w = &e.webhooks;
    counter(
        enc,
        "webhook_attempts",
        "Webhook requests sent (first attempts and retries).",
        None,
        w.attempts,
    )?;
    counter(
        enc,
        "webhook_deliveries",
        "Webhook deliveries a receiver accepted.",
        None,
        w.delivered,
    )?;
    counter(
        enc,
        "webhook_failures",
        "Webhook attempts that failed (each retry counts).",
        None,
        w.failures,
    )?;
    counter(
        enc,
        "webhook_failed",
        "Webhook deliveries given up after the last retry (kept; redeliverable through the API).",
        None,
        w.failed,
    )?;
    counter(
        enc,
        "webhook_disabled",
        "Webhook endpoints disabled by a 410.",
        None,
        w.disabled,
    )?;
    {
        let mut f = Family::new_gauge(
            enc,
            "webhook_backlog",
            "Events waiting for a webhook endpoint.",
            None,
        )?;
        for g in &e.webhook_endpoints {
            f.gauge(&[("endpoint", &g.endpoint)], g.backlog)?;
        }
    }
    {
        let mut f = Family::new_gauge(
            enc,
            "webhook_oldest_pending",
            "Age of the oldest event waiting for a webhook endpoint.",
            Some(&Unit::Seconds),
        )?;
        for g in &e.webhook_endpoints {
            f.gauge(&[("endpoint", &g.endpoint)], g.oldest_secs)?;
        }
    }
    if let Some(n) = &e.nats {
        counter(
            enc,
            "nats_published",
            "Events JetStream acknowledged.",
            None,
            n.published,
        )?;
        counter(
            enc,
            "nats_publish_errors",
            "Failed publishes (retried).",
            None,
            n.publish_errors,
        )?;
        gauge(
            enc,
            "nats_backlog",
            "Events in the log not yet acknowledged by JetStream.",
            None,
            n.backlog,
        )?;
        counter(
            enc,
            "nats_consumed",
            "Events taken from JetStream into the log.",
            None,
            n.consumed,
        )?;
        counter(
            enc,
            "nats_malformed",
            "JetStream messages that were not events (dropped).",
            None,
            n.malformed,
        )?;
    }
    Ok(())
}
