//! Call quality of one direction of a call, from the RTP it carried after the
//! answer: what `RtpStream` counts (`StreamStats`), taken by difference only
//! while the call is up and not on hold, plus what only arrival times tell
//! (the longest gap, the highest jitter), the far end's RTCP reports and the
//! E-model score.
//!
//! The stream's counters cover its whole life (early media, hold, the source
//! switches that replace the stream); the accumulator follows them after
//! every packet and keeps only the increments it should.

use serde::{Deserialize, Serialize};

use super::codec::Codec;
use super::emodel::{self, EModelInput};
use super::rtcp::{ReportBlock, VoipMetrics};
use super::stream::StreamStats;
use crate::time::Timestamp;

/// Assumed mouth-to-ear delay besides the network: 20 ms packetisation and
/// a 40 ms jitter buffer. Below G.107's 100 ms knee it costs nothing; a
/// measured round trip (RTCP) adds half of itself.
const BASE_DELAY_MS: f64 = 60.0;

/// The `StreamStats` counters followed by difference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    received: u64,
    released: u64,
    lost: u64,
    duplicates: u64,
    reordered: u64,
    late: u64,
    runs: u64,
    by_length: [u64; 4],
}

impl Counters {
    fn of(s: &StreamStats) -> Self {
        Counters {
            received: s.received,
            released: s.released,
            lost: s.lost,
            duplicates: s.duplicates,
            reordered: s.reordered,
            late: s.late_dropped,
            runs: s.loss_runs.closed,
            by_length: s.loss_runs.by_length,
        }
    }

    fn minus(&self, o: &Counters) -> Counters {
        let mut by_length = [0; 4];
        for (d, (a, b)) in by_length
            .iter_mut()
            .zip(self.by_length.iter().zip(o.by_length.iter()))
        {
            *d = a.saturating_sub(*b);
        }
        Counters {
            received: self.received.saturating_sub(o.received),
            released: self.released.saturating_sub(o.released),
            lost: self.lost.saturating_sub(o.lost),
            duplicates: self.duplicates.saturating_sub(o.duplicates),
            reordered: self.reordered.saturating_sub(o.reordered),
            late: self.late.saturating_sub(o.late),
            runs: self.runs.saturating_sub(o.runs),
            by_length,
        }
    }

    fn add(&mut self, d: &Counters) {
        self.received += d.received;
        self.released += d.released;
        self.lost += d.lost;
        self.duplicates += d.duplicates;
        self.reordered += d.reordered;
        self.late += d.late;
        self.runs += d.runs;
        for (a, b) in self.by_length.iter_mut().zip(d.by_length.iter()) {
            *a += b;
        }
    }
}

/// The far end's view of this direction from RTCP: the report blocks its
/// receiver sent about it (SR/RR) and the RTCP-XR VoIP metrics block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RtcpView {
    /// Report blocks seen about this direction.
    pub reports: u64,
    /// The last block's fraction lost, in percent.
    pub fraction_lost_pct: f64,
    /// The last block's cumulative number of packets lost.
    pub cumulative_lost: i64,
    /// The last block's interarrival jitter, in milliseconds.
    pub jitter_ms: f64,
    /// Round trip from LSR/DLSR (RFC 3550 §6.4.1), milliseconds: see
    /// `call::rtcp` for how it is measured from the capture point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xr: Option<VoipMetrics>,
}

impl RtcpView {
    pub fn add_block(&mut self, b: &ReportBlock, clock_rate: u32) {
        self.reports += 1;
        self.fraction_lost_pct = f64::from(b.fraction_lost) * 100.0 / 256.0;
        self.cumulative_lost = i64::from(b.cumulative_lost);
        self.jitter_ms = f64::from(b.jitter) * 1000.0 / f64::from(clock_rate.max(1));
    }
}

/// Lost-packet runs by length.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossRunCounts {
    pub len_1: u64,
    pub len_2: u64,
    pub len_3_5: u64,
    pub len_6_plus: u64,
}

/// One direction's quality as recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirQuality {
    /// Sequence numbers the sender used after the answer (received in order + lost).
    pub expected: u64,
    /// Packets that arrived, duplicates and late ones included.
    pub received: u64,
    /// Sequence numbers never played: lost, or arrived beyond the reorder window.
    pub lost: u64,
    pub duplicated: u64,
    /// Arrived after a later packet, still in time to be played.
    pub out_of_order: u64,
    /// Arrived after their place was given up (beyond the reorder window).
    pub late: u64,
    /// `lost` / `expected`, in percent.
    pub loss_pct: f64,
    /// RFC 3550 interarrival jitter at the end of the call, milliseconds.
    pub jitter_ms: f64,
    pub max_jitter_ms: f64,
    /// Longest time between two packets by arrival, milliseconds.
    pub max_gap_ms: f64,
    /// Longest run of consecutive lost packets.
    pub max_burst: u64,
    pub loss_runs: LossRunCounts,
    /// G.107 BurstR estimated from the runs (1 = random loss).
    pub burst_ratio: f64,
    /// E-model R-factor and MOS-CQ (G.107), when packets were expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mos: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtcp: Option<RtcpView>,
}

/// Follows one leg's stream; see the module comment.
#[derive(Debug, Clone, Default)]
pub struct QualityAcc {
    prev: Counters,
    sum: Counters,
    longest: u64,
    jitter_ms: f64,
    max_jitter_ms: f64,
    max_gap_us: i64,
    last_arrival: Option<Timestamp>,
    counting: bool,
    /// Audio codec last seen, for the E-model.
    pub codec: Option<Codec>,
}

impl QualityAcc {
    /// Whether counting starts again with the next packet (the answer, the end
    /// of a hold): the caller then restarts the stream's transit reference,
    /// so the pause is not taken for jitter.
    pub fn resumes(&self, counting: bool) -> bool {
        counting && !self.counting
    }

    /// After the stream took a packet that arrived at `arrival` (or released
    /// some on a flush: `None`). `counting`: the call is answered and not on hold.
    pub fn observe(&mut self, stats: &StreamStats, arrival: Option<Timestamp>, counting: bool) {
        let now = Counters::of(stats);
        // A new source replaced the stream: its counters start from zero.
        if now.received < self.prev.received || now.released < self.prev.released {
            self.prev = Counters::default();
        }
        let delta = now.minus(&self.prev);
        self.prev = now;
        self.counting = counting;
        if !counting {
            self.last_arrival = None;
            return;
        }
        self.sum.add(&delta);
        if delta.runs > 0 {
            // Several runs closed at once (a flush): the last one's length is
            // known, the others' only by their bucket's lower bound.
            let floor = match delta.by_length {
                [_, _, _, n] if n > 0 => 6,
                [_, _, n, _] if n > 0 => 3,
                [_, n, _, _] if n > 0 => 2,
                _ => 1,
            };
            self.longest = self.longest.max(stats.loss_runs.last.max(floor));
        }
        if let Some(t) = arrival {
            if let Some(last) = self.last_arrival {
                self.max_gap_us = self.max_gap_us.max(t.micros_since(last));
            }
            self.last_arrival = Some(self.last_arrival.map_or(t, |l| l.max(t)));
        }
        self.jitter_ms = stats.jitter_ms();
        self.max_jitter_ms = self.max_jitter_ms.max(self.jitter_ms);
    }

    /// The call went on hold: nothing counts until the next packet, which
    /// then starts afresh (no gap, no jitter across the hold).
    pub fn pause(&mut self) {
        self.counting = false;
        self.last_arrival = None;
    }

    /// The direction's figures, with what the stream counted since the last
    /// packet (the final flush) folded in.
    pub fn report(&self, stats: &StreamStats, rtcp: Option<RtcpView>) -> DirQuality {
        let mut acc = self.clone();
        acc.observe(stats, None, self.counting);
        let c = &acc.sum;
        let expected = c.released + c.lost;
        let loss_pct = if expected == 0 {
            0.0
        } else {
            c.lost as f64 * 100.0 / expected as f64
        };
        let burst_ratio = emodel::burst_ratio(c.lost, c.runs, c.released);
        let score = (expected > 0).then(|| {
            let rtt = rtcp.as_ref().and_then(|r| r.rtt_ms).unwrap_or(0.0);
            emodel::score(&EModelInput {
                impairment: emodel::impairment(acc.codec.unwrap_or(Codec::Pcmu)),
                ppl: loss_pct,
                burst_r: burst_ratio,
                delay_ms: BASE_DELAY_MS + rtt / 2.0,
            })
        });
        let [len_1, len_2, len_3_5, len_6_plus] = c.by_length;
        DirQuality {
            expected,
            received: c.received,
            lost: c.lost,
            duplicated: c.duplicates,
            out_of_order: c.reordered,
            late: c.late,
            loss_pct: round3(loss_pct),
            jitter_ms: round3(acc.jitter_ms),
            max_jitter_ms: round3(acc.max_jitter_ms),
            max_gap_ms: round3(acc.max_gap_us as f64 / 1000.0),
            max_burst: acc.longest,
            loss_runs: LossRunCounts {
                len_1,
                len_2,
                len_3_5,
                len_6_plus,
            },
            burst_ratio: round3(burst_ratio),
            r_factor: score.map(|s| round3(s.r)),
            mos: score.map(|s| round3(s.mos)),
            rtcp,
        }
    }
}

/// Three decimals: the record is read by people and compared by tests.
fn round3(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

#[cfg(test)]
#[path = "tests/quality.rs"]
mod tests;
