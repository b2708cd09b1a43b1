//! What the daemon counts, as one plain snapshot, and its OpenMetrics rendering.
//!
//! The tracker thread owns its counters and publishes a copy about once a second;
//! a scrape renders whatever copy is current. Nothing here is updated per packet,
//! so the hot path never touches a lock or an atomic for metrics.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::OpsState;
use crate::call::Stats;

mod events;
mod families;
mod mos;
pub use events::{EventGauges, NatsGauge, WebhookGauge, WebhookTotals};
use families::{encode_hep, encode_interfaces, encode_phone_index, encode_queues};
pub use mos::MosHistogram;

/// Every metric family name starts with this (`pbxbridge_…`).
pub const PREFIX: &str = "pbxbridge";

/// The OpenMetrics text content type a scrape answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Packet counters of one live capture interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceCounters {
    pub name: String,
    pub received: u64,
    pub bytes: u64,
    /// Dropped by the kernel because the capture buffer was full (pcap `ps_drop`).
    pub kernel_dropped: u64,
    /// Dropped by the interface or its driver (pcap `ps_ifdrop`).
    pub if_dropped: u64,
    /// Captured but thrown away because the tracker's input queue was full.
    pub queue_full: u64,
}

/// Counters of the HEP listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HepCounters {
    pub datagrams: u64,
    pub tcp_messages: u64,
    pub tcp_connections: u64,
    /// TCP connections turned away because the connection cap was reached.
    pub tcp_refused: u64,
    pub bad_frames: u64,
}

/// Fill level of one bounded queue between threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueGauge {
    pub name: &'static str,
    pub depth: u64,
    pub capacity: u64,
    /// Items refused because the queue was full.
    pub dropped: u64,
}

/// Everything `/metrics` shows, as the tracker thread last published it.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    pub tracker: Stats,
    pub calls_active_by_state: Vec<(&'static str, u64)>,
    pub calls_ended_by_outcome: BTreeMap<String, u64>,
    pub interfaces: Vec<InterfaceCounters>,
    pub hep: HepCounters,
    pub queues: Vec<QueueGauge>,
    /// WAV bytes written since start.
    pub recorded_bytes: u64,
    /// Recordings waiting in the local spool for upload.
    pub spool_bytes: u64,
    pub spool_files: u64,
    /// Outbox rows (webhooks, CRM writes) not yet delivered.
    pub outbox_pending: u64,
    pub db_write_errors: u64,
    pub crm_relation_errors: u64,
    /// Capture-folder files fully processed / given up on.
    pub files_done: u64,
    pub files_failed: u64,
    pub uptime_secs: u64,
    /// The phone index, by CRM record type.
    pub phone_index: Vec<IndexGauge>,
    /// Uploads to remote storage (all zero with the local backend).
    pub uploads: UploadGauges,
    pub events: EventGauges,
    /// MOS-CQ of finished answered calls with RTP.
    pub mos: MosHistogram,
}

/// The uploader's view: what waits for storage and what went up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UploadGauges {
    pub pending_files: u64,
    /// Finished recordings waiting plus the open calls' spool.
    pub pending_bytes: u64,
    /// The pending bytes are above `storage.spool_alarm_mib`.
    pub over_alarm: bool,
    pub uploaded: u64,
    pub uploaded_bytes: u64,
    pub errors: u64,
}

/// One CRM record type's share of the phone index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexGauge {
    pub record_type: String,
    /// Values indexed as E.164 numbers.
    pub e164: u64,
    /// Agents' values indexed as internal extensions.
    pub extensions: u64,
    /// Values that are not numbers (kept for `pbxbridge index stats`).
    pub invalid: u64,
    /// How long the last full build of the type took.
    pub build_secs: f64,
}

/// Reads the current snapshot of an [`OpsState`] at every scrape.
#[derive(Debug)]
pub struct SnapshotCollector {
    state: Arc<OpsState>,
}

impl SnapshotCollector {
    pub fn new(state: Arc<OpsState>) -> Self {
        SnapshotCollector { state }
    }
}

/// A registry (prefix `pbxbridge`) holding the snapshot collector. Callers may
/// register more metrics on it before handing it to the admin router.
pub fn registry(state: Arc<OpsState>) -> Registry {
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(SnapshotCollector::new(state)));
    registry
}

/// The whole OpenMetrics text exposition of `registry`, `# EOF` included.
pub fn render(registry: &Registry) -> Result<String, fmt::Error> {
    let mut out = String::with_capacity(8 * 1024);
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        // A copy, so the tracker's next publish never waits on a slow scrape.
        let snap = self.state.snapshot();
        encode_snapshot(&mut encoder, &snap)?;

        {
            let mut family = Family::new_gauge(
                &mut encoder,
                "component_ready",
                "1 when the component reports ready, 0 otherwise (see /readyz).",
                None,
            )?;
            for (component, ready) in self.state.components() {
                family.gauge(&[("component", component)], u64::from(ready))?;
            }
        }

        let age = self.state.heartbeat_age().as_secs_f64();
        let gauge = ConstGauge::new(age);
        gauge.encode(encoder.encode_descriptor(
            "tracker_heartbeat_age",
            "Time since the tracker thread last published its counters.",
            Some(&Unit::Seconds),
            gauge.metric_type(),
        )?)?;
        Ok(())
    }
}

/// One metric family whose samples differ only by their labels.
struct Family<'a> {
    encoder: prometheus_client::encoding::MetricEncoder<'a>,
    kind: MetricType,
}

impl<'a> Family<'a> {
    fn new_counter(
        encoder: &'a mut DescriptorEncoder<'_>,
        name: &'a str,
        help: &str,
        unit: Option<&'a Unit>,
    ) -> Result<Self, fmt::Error> {
        Self::new(encoder, name, help, unit, MetricType::Counter)
    }

    fn new_gauge(
        encoder: &'a mut DescriptorEncoder<'_>,
        name: &'a str,
        help: &str,
        unit: Option<&'a Unit>,
    ) -> Result<Self, fmt::Error> {
        Self::new(encoder, name, help, unit, MetricType::Gauge)
    }

    fn new(
        encoder: &'a mut DescriptorEncoder<'_>,
        name: &'a str,
        help: &str,
        unit: Option<&'a Unit>,
        kind: MetricType,
    ) -> Result<Self, fmt::Error> {
        let encoder = encoder.encode_descriptor(name, help, unit, kind)?;
        Ok(Family { encoder, kind })
    }

    fn counter(&mut self, labels: &[(&str, &str)], value: u64) -> Result<(), fmt::Error> {
        debug_assert!(matches!(self.kind, MetricType::Counter));
        ConstCounter::new(value).encode(self.encoder.encode_family(&labels)?)
    }

    fn gauge(&mut self, labels: &[(&str, &str)], value: u64) -> Result<(), fmt::Error> {
        debug_assert!(matches!(self.kind, MetricType::Gauge));
        ConstGauge::new(value).encode(self.encoder.encode_family(&labels)?)
    }
}

/// A counter family with one label, from a fixed list of (label value, count).
fn encode_uploads(enc: &mut DescriptorEncoder<'_>, u: &UploadGauges) -> Result<(), fmt::Error> {
    gauge(
        enc,
        "upload_pending_files",
        "Finished recordings waiting in the local spool for remote storage.",
        None,
        u.pending_files,
    )?;
    gauge(
        enc,
        "upload_pending",
        "Bytes waiting in the local spool for remote storage (with open calls' audio).",
        Some(&Unit::Bytes),
        u.pending_bytes,
    )?;
    gauge(
        enc,
        "spool_over_alarm",
        "1 while the spool holds more than storage.spool_alarm_mib.",
        None,
        u64::from(u.over_alarm),
    )?;
    counter(
        enc,
        "uploads",
        "Recordings uploaded to remote storage.",
        None,
        u.uploaded,
    )?;
    counter(
        enc,
        "uploaded",
        "Recording bytes uploaded to remote storage.",
        Some(&Unit::Bytes),
        u.uploaded_bytes,
    )?;
    counter(
        enc,
        "upload_errors",
        "Failed upload attempts (retried).",
        None,
        u.errors,
    )
}

fn counters_by(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), fmt::Error> {
    let mut f = Family::new_counter(enc, name, help, None)?;
    for (v, n) in values {
        f.counter(&[(label, v)], *n)?;
    }
    Ok(())
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: u64,
) -> Result<(), fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: u64,
) -> Result<(), fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

fn encode_snapshot(
    enc: &mut DescriptorEncoder<'_>,
    snap: &MetricsSnapshot,
) -> Result<(), fmt::Error> {
    let t = &snap.tracker;
    // Counter names go in without `_total`: the encoder appends it.
    counter(
        enc,
        "input_frames",
        "Frames handed to the tracker, from every source.",
        None,
        t.packets,
    )?;
    counter(
        enc,
        "input",
        "Bytes of the frames handed to the tracker.",
        Some(&Unit::Bytes),
        t.bytes,
    )?;

    counters_by(
        enc,
        "packets",
        "Input by what it turned out to be; kind=sip counts SIP messages (one TCP segment may hold several).",
        "kind",
        &[
            ("sip", t.sip_messages),
            ("sip_keepalive", t.sip_keepalives),
            ("rtp", t.rtp_packets),
            ("media_control", t.media_control_packets),
            ("other", t.other_packets),
        ],
    )?;

    counters_by(
        enc,
        "transport_packets",
        "Frames by transport protocol.",
        "transport",
        &[("udp", t.udp_packets), ("tcp", t.tcp_segments)],
    )?;

    counters_by(
        enc,
        "sip_untracked",
        "Well-formed SIP messages that changed no call, by reason.",
        "reason",
        &[
            ("non_call", t.sip_non_call),
            ("duplicate", t.sip_duplicates),
            ("orphan", t.sip_orphans),
            ("after_end", t.sip_after_end),
        ],
    )?;

    counters_by(
        enc,
        "rtp_untracked",
        "RTP packets not recorded, by reason.",
        "reason",
        &[
            ("unmatched", t.rtp_unmatched),
            ("after_end", t.rtp_after_end),
            ("ignored_source", t.rtp_ignored_source),
        ],
    )?;

    {
        let mut f = Family::new_counter(
            enc,
            "malformed",
            "Malformed or dropped input, by reason.",
            None,
        )?;
        for (reason, n) in &t.dropped {
            f.counter(&[("reason", reason)], *n)?;
        }
    }

    counter(
        enc,
        "calls_started",
        "Calls seen starting (first INVITE).",
        None,
        t.calls_started,
    )?;

    {
        let mut f = Family::new_counter(enc, "calls_ended", "Finished calls, by outcome.", None)?;
        for (outcome, n) in &snap.calls_ended_by_outcome {
            f.counter(&[("outcome", outcome)], *n)?;
        }
    }

    {
        let mut f = Family::new_gauge(enc, "calls_active", "Calls in progress, by state.", None)?;
        for (state, n) in &snap.calls_active_by_state {
            f.gauge(&[("state", state)], *n)?;
        }
    }

    mos::encode_mos(enc, &snap.mos)?;
    encode_interfaces(enc, &snap.interfaces)?;
    encode_hep(enc, &snap.hep)?;
    encode_queues(enc, &snap.queues)?;

    counter(
        enc,
        "recorded",
        "WAV bytes written.",
        Some(&Unit::Bytes),
        snap.recorded_bytes,
    )?;
    gauge(
        enc,
        "spool",
        "Recording bytes waiting in the local spool.",
        Some(&Unit::Bytes),
        snap.spool_bytes,
    )?;
    gauge(
        enc,
        "spool_files",
        "Recordings waiting in the local spool.",
        None,
        snap.spool_files,
    )?;
    gauge(
        enc,
        "outbox_pending",
        "Outbox rows not yet delivered.",
        None,
        snap.outbox_pending,
    )?;
    counter(
        enc,
        "db_write_errors",
        "Failed database writes (retried).",
        None,
        snap.db_write_errors,
    )?;
    counter(
        enc,
        "crm_relation_errors",
        "CRM relation lookups the database refused (calls written without those links).",
        None,
        snap.crm_relation_errors,
    )?;

    encode_uploads(enc, &snap.uploads)?;

    counters_by(
        enc,
        "capture_files",
        "Capture-folder files, by result.",
        "result",
        &[("done", snap.files_done), ("failed", snap.files_failed)],
    )?;

    encode_phone_index(enc, &snap.phone_index)?;
    events::encode_events(enc, &snap.events)?;

    gauge(
        enc,
        "uptime",
        "Time since the daemon started.",
        Some(&Unit::Seconds),
        snap.uptime_secs,
    )
}
