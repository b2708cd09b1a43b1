//! Event metrics: what was emitted and dropped, how much the log holds, and
//! per channel what was delivered and what waits (webhooks, NATS).

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::{counter, gauge, Family};

/// One webhook endpoint's deliveries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookGauge {
    pub endpoint: String,
    pub delivered: u64,
    /// Attempts that failed (each retry counts).
    pub failures: u64,
    /// Deliveries given up after the last retry (kept, redeliverable).
    pub failed: u64,
    /// Events waiting for this endpoint.
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
    pub webhooks: Vec<WebhookGauge>,
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
    let rows = |get: fn(&WebhookGauge) -> u64| -> Vec<(&str, u64)> {
        e.webhooks
            .iter()
            .map(|w| (w.endpoint.as_str(), get(w)))
            .collect()
    };
    for (name, help, counter_kind, get) in [
        ("webhook_deliveries", "Webhook deliveries the receiver accepted.", true, (|w: &WebhookGauge| w.delivered) as fn(&WebhookGauge) -> u64),
        ("webhook_failures", "Webhook attempts that failed (each retry counts).", true, |w: &WebhookGauge| w.failures),
        ("webhook_failed", "Webhook deliveries given up after the last retry (kept; redeliverable through the API).", true, |w: &WebhookGauge| w.failed),
        ("webhook_backlog", "Events waiting for a webhook endpoint.", false, |w: &WebhookGauge| w.backlog),
    ] {
        let mut f = if counter_kind {
            Family::new_counter(enc, name, help, None)?
        } else {
            Family::new_gauge(enc, name, help, None)?
        };
        for (endpoint, v) in rows(get) {
            if counter_kind {
                f.counter(&[("endpoint", endpoint)], v)?;
            } else {
                f.gauge(&[("endpoint", endpoint)], v)?;
            }
        }
    }
    {
        let mut f = Family::new_gauge(
            enc,
            "webhook_oldest_pending",
            "Age of the oldest event waiting for a webhook endpoint.",
            Some(&Unit::Seconds),
        )?;
        for w in &e.webhooks {
            f.gauge(&[("endpoint", &w.endpoint)], w.oldest_secs)?;
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
