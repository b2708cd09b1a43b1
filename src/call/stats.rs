//! Counters an operator reads to trust the tracker: what came in, what was dropped and why.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    pub udp_packets: u64,
    pub tcp_segments: u64,
    pub sip_messages: u64,
    /// SIP messages of methods that don't make calls (REGISTER, OPTIONS, …).
    pub sip_non_call: u64,
    /// The same message seen again (retransmission or a second capture point).
    pub sip_duplicates: u64,
    /// In-dialog messages whose call we never saw start.
    pub sip_orphans: u64,
    /// Stray messages for a call that already ended.
    pub sip_after_end: u64,
    pub sip_keepalives: u64,
    pub rtp_packets: u64,
    pub rtp_unmatched: u64,
    pub rtp_after_end: u64,
    pub rtp_ignored_source: u64,
    /// RTCP, STUN and DTLS on media ports: expected traffic, not audio.
    pub media_control_packets: u64,
    /// RTCP packets (of compound datagrams) matched to a call and read.
    pub rtcp_packets: u64,
    pub calls_started: u64,
    pub calls_ended: u64,
    pub other_packets: u64,
    /// HEP messages received (listener or found in a capture), valid or not.
    pub hep_messages: u64,
    pub hep_sip: u64,
    pub hep_rtp: u64,
    /// Valid HEP of other payload types (RTCP reports, logs, …): counted, not used.
    pub hep_other: u64,
    /// HEP capture times too far from the receive time, replaced by the latter.
    pub hep_clock_skew: u64,
    /// Malformed or dropped input by reason.
    pub dropped: BTreeMap<&'static str, u64>,
}

impl Stats {
    pub(crate) fn drop_reason(&mut self, reason: &'static str) {
        *self.dropped.entry(reason).or_insert(0) += 1;
        tracing::trace!(reason, "dropped input");
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}
