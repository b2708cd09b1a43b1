//! A call's quality figures per direction: the hooks `on_rtp` and `apply_sdp`
//! call, and the figures the record takes at the end (`rtp::quality`).

use crate::rtp::codec::Codec;
use crate::rtp::quality::DirQuality;
use crate::rtp::PayloadType;
use crate::time::Timestamp;

use super::dialog::Call;
use super::media::{format_of, CallMedia};
use super::Side;

impl Call {
    /// Whether RTP arriving at `now` counts for quality: after the answer,
    /// before the end, and with neither side holding.
    pub(super) fn quality_counting(&self, now: Timestamp) -> bool {
        self.answered_at.is_some_and(|a| now >= a) && !self.on_hold.iter().any(|h| *h)
    }
}

impl CallMedia {
    /// Before `sender`'s stream takes a packet of type `pt`: the stream's
    /// jitter clock follows the payload's RTP clock (DTMF and comfort noise
    /// share the audio's timeline and leave it as it is), and a count that
    /// resumes (the answer, the end of a hold) starts a fresh transit.
    pub(super) fn before_rtp(&mut self, sender: Side, pt: PayloadType, counting: bool) {
        let (format, _) = format_of(&self.sdp, sender, pt);
        let leg = self.leg_mut(sender);
        if !matches!(format.codec, Codec::TelephoneEvent | Codec::Comfort) {
            leg.stream.set_clock_rate(format.clock_rate);
            leg.quality.codec = Some(format.codec);
        }
        if leg.quality.resumes(counting) {
            leg.stream.reset_transit();
        }
    }

    pub(super) fn after_rtp(&mut self, sender: Side, now: Timestamp, counting: bool) {
        let leg = self.leg_mut(sender);
        leg.quality.observe(leg.stream.stats(), Some(now), counting);
    }

    /// A side put the call on hold or took it off: what comes next starts afresh.
    pub(super) fn pause_quality(&mut self) {
        for leg in &mut self.legs {
            leg.quality.pause();
        }
    }

    /// What `sender`'s RTP looked like after the answer, with the other
    /// side's RTCP reports about it; `None` when there is neither (a call
    /// not answered, a side that never sent), so such records stay short.
    pub(super) fn quality(&self, sender: Side) -> Option<DirQuality> {
        let leg = self.leg(sender);
        let q = leg
            .quality
            .report(leg.stream.stats(), self.rtcp.view(sender));
        (q.received > 0 || q.expected > 0 || q.rtcp.is_some()).then_some(q)
    }
}
