//! The event metrics (log, webhooks, NATS) as a snapshot source, read at
//! each metrics publish by the daemon and by `serve`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::metrics::{EventGauges, NatsGauge, WebhookGauge, WebhookTotals};
use crate::events::nats::NatsStats;
use crate::events::webhook::Webhooks;
use crate::events::Events;

/// Reads the event metrics when a snapshot is published.
pub type EventSource = Arc<dyn Fn() -> EventGauges + Send + Sync>;

fn l(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

pub fn source(
    events: &Events,
    hooks: Option<Webhooks>,
    nats: Option<Arc<NatsStats>>,
) -> EventSource {
    let (log, emit) = (events.log.clone(), events.emitter.stats.clone());
    Arc::new(move || {
        let (webhooks, webhook_endpoints) = hooks.as_ref().map(webhooks).unwrap_or_default();
        EventGauges {
            emitted: l(&emit.emitted),
            dropped_queue: l(&emit.dropped),
            dropped_unread: l(&log.stats.dropped_unread),
            log_events: (log.last_seq() + 1).saturating_sub(log.first_seq()),
            duplicates: l(&log.stats.duplicates),
            webhooks,
            webhook_endpoints,
            nats: nats.as_deref().map(|n| NatsGauge {
                published: l(&n.published),
                publish_errors: l(&n.publish_errors),
                backlog: l(&n.backlog),
                consumed: l(&n.consumed),
                malformed: l(&n.malformed),
            }),
        }
    })
}

fn webhooks(hooks: &Webhooks) -> (WebhookTotals, Vec<WebhookGauge>) {
    let st = hooks.stats();
    let totals = WebhookTotals {
        attempts: l(&st.attempts),
        delivered: l(&st.delivered),
        failures: l(&st.attempt_failures),
        failed: l(&st.failed),
        disabled: l(&st.disabled),
    };
    let endpoints = hooks
        .gauges()
        .into_iter()
        .map(|g| WebhookGauge {
            endpoint: g.id,
            backlog: g.backlog,
            oldest_secs: g.oldest_pending_age.map_or(0, |a| a.as_secs()),
        })
        .collect();
    (totals, endpoints)
}
