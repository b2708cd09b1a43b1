//! One RTP stream from one source address: RFC 3550 A.1 source validation,
//! sequence and timestamp unwrapping, a bounded reorder window, loss,
//! duplicate and jitter statistics.
//!
//! In-order packets go straight from the caller's buffer to `emit`; only
//! packets that must wait (out of order, or a new source still on probation)
//! are copied, into slots allocated once and reused.

use std::time::Duration;

use serde::Serialize;

use super::packet::{PayloadType, RtpRepr, SeqNum, Ssrc};
use super::reorder::{
    count_release, emit_direct, release_all, release_below, release_consecutive, update_jitter,
    Ring, Slot, Source,
};
use crate::time::{duration_micros, Timestamp};

/// RFC 3550 A.1: a forward jump of at least this many is not a loss but a
/// (possible) restart of the sender.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: packets this far behind the highest seen are reordered/late;
/// further back (and short of MAX_DROPOUT ahead) is a jump.
const MAX_MISORDER: u16 = 100;
const MAX_WINDOW: usize = 1024;
const MAX_PROBATION: u32 = 16;

#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// Packets held for reordering (clamped to 1..=1024).
    pub reorder_window: usize,
    /// How long a packet may wait for an earlier gap to fill.
    pub max_reorder_delay: Duration,
    /// RFC 3550 MIN_SEQUENTIAL: consecutive packets before a new SSRC counts
    /// (clamped to 1..=16; 0 behaves as 1).
    pub probation: u32,
    /// RTP clock of the media, for jitter in timestamp units.
    pub clock_rate: u32,
    /// Largest payload copied into the reorder/probation buffers; bigger
    /// packets that would need buffering are dropped (counted).
    pub max_payload: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            reorder_window: 16,
            max_reorder_delay: Duration::from_millis(100),
            probation: 2,
            clock_rate: 8000,
            max_payload: 2048,
        }
    }
}

/// A packet released in sequence order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ordered<'a> {
    pub ssrc: Ssrc,
    pub pt: PayloadType,
    pub marker: bool,
    /// Sequence number extended with its wrap count. Consecutive released
    /// packets differ by one unless packets were lost.
    pub ext_seq: u64,
    /// RTP timestamp unwrapped to 64 bits, continuous within one source.
    pub ext_ts: u64,
    pub arrival: Timestamp,
    pub payload: &'a [u8],
    /// First packet of a new timeline: the stream's first source, an SSRC
    /// change, or a sender restart (sequence jump). `ext_seq`/`ext_ts` are not
    /// comparable across it, so the caller re-anchors.
    pub ssrc_changed: bool,
}

#[derive(Default, Clone, Debug, Serialize)]
pub struct StreamStats {
    /// Packets pushed.
    pub received: u64,
    pub released: u64,
    pub released_bytes: u64,
    /// Sequence numbers skipped when releasing (never released; a packet that
    /// turns up after its slot was skipped is also counted in `late_dropped`).
    pub lost: u64,
    pub duplicates: u64,
    /// Packets that arrived after a higher sequence number and were still released.
    pub reordered: u64,
    /// Packets older than the last released one that were not duplicates.
    pub late_dropped: u64,
    /// Packets of a source that never completed probation.
    pub probation_dropped: u64,
    /// Lone packets after a large sequence jump that was not confirmed.
    pub jump_dropped: u64,
    /// Payload larger than `max_payload` that would have needed buffering.
    pub oversize_dropped: u64,
    /// Switches from one valid SSRC to another.
    pub ssrc_changes: u64,
    /// Same SSRC restarting its sequence numbers (RFC 3550 A.1 bad_seq).
    pub restarts: u64,
    /// RFC 3550 A.8 interarrival jitter, in timestamp units of `clock_rate`,
    /// from capture times.
    pub jitter: f64,
    /// The RTP clock `jitter` is counted in (the payload's, see
    /// `RtpStream::set_clock_rate`).
    pub clock_rate: u32,
    /// Runs of consecutive lost packets (burst loss).
    pub loss_runs: LossRuns,
}

impl StreamStats {
    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        if self.clock_rate == 0 {
            return 0.0;
        }
        self.jitter / f64::from(self.clock_rate) * 1000.0
    }

    /// `n` sequence numbers skipped: they extend the open loss run, which a
    /// released packet closes (`close_loss_run`). Skips counted in two steps
    /// (a window overrun, then the release after it) make one run.
    pub(super) fn add_lost(&mut self, n: u64) {
        self.lost += n;
        self.loss_runs.open += n;
    }

    pub(super) fn close_loss_run(&mut self) {
        let run = std::mem::take(&mut self.loss_runs.open);
        if run == 0 {
            return;
        }
        let r = &mut self.loss_runs;
        r.closed += 1;
        r.last = run;
        r.longest = r.longest.max(run);
        let bucket = match run {
            1 => 0,
            2 => 1,
            3..=5 => 2,
            _ => 3,
        };
        if let Some(b) = r.by_length.get_mut(bucket) {
            *b += 1;
        }
    }
}

/// Burst loss: how the lost packets were grouped. A run is closed by the
/// next released packet; loss at the very end of a stream is never seen.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LossRuns {
    /// Lost packets of the run still open (no packet released after it yet).
    pub open: u64,
    /// Runs closed so far.
    pub closed: u64,
    /// Length of the run closed last.
    pub last: u64,
    pub longest: u64,
    /// Closed runs of length 1, 2, 3-5 and 6 or more.
    pub by_length: [u64; 4],
}

/// A new SSRC on probation, its packets held until it is validated.
struct Candidate {
    ssrc: Ssrc,
    last_seq: SeqNum,
    /// Consecutive packets still needed.
    needed: u32,
    held: usize,
}

pub struct RtpStream {
    cfg: StreamConfig,
    window: usize,
    stats: StreamStats,
    cur: Option<Source>,
    ring: Ring,
    cand: Option<Candidate>,
    /// Probation packets, in order; `cand.held` are in use.
    cand_slots: Vec<Slot>,
    /// The packet after a large jump, kept until the next one confirms a restart.
    stash: Slot,
}

impl RtpStream {
    pub fn new(cfg: StreamConfig) -> Self {
        let window = cfg.reorder_window.clamp(1, MAX_WINDOW);
        let probation = cfg.probation.clamp(1, MAX_PROBATION);
        RtpStream {
            ring: Ring {
                slots: (0..window).map(|_| Slot::default()).collect(),
                buffered: 0,
            },
            cand_slots: (0..probation).map(|_| Slot::default()).collect(),
            stats: StreamStats {
                clock_rate: cfg.clock_rate,
                ..StreamStats::default()
            },
            cfg: StreamConfig { probation, ..cfg },
            window,
            cur: None,
            cand: None,
            stash: Slot::default(),
        }
    }

    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }

    /// The RTP clock of the payload being received: jitter is counted in its
    /// units (8 kHz for G.711 and G.722, 48 kHz for Opus). A change (a
    /// re-INVITE to another codec) rescales the running jitter and restarts
    /// the transit reference, which was in the old units.
    pub fn set_clock_rate(&mut self, rate: u32) {
        if rate == 0 || rate == self.cfg.clock_rate {
            return;
        }
        let old = self.cfg.clock_rate.max(1);
        self.stats.jitter *= f64::from(rate) / f64::from(old);
        self.cfg.clock_rate = rate;
        self.stats.clock_rate = rate;
        self.reset_transit();
    }

    /// Forgets the last transit time, so the next packet starts the jitter
    /// estimate afresh instead of counting a pause (hold) as jitter.
    pub fn reset_transit(&mut self) {
        if let Some(src) = self.cur.as_mut() {
            src.last_transit = None;
        }
    }

    /// The SSRC currently released, once one passed probation.
    pub fn ssrc(&self) -> Option<Ssrc> {
        self.cur.as_ref().map(|s| s.ssrc)
    }

    /// Packets waiting in the reorder window.
    pub fn buffered(&self) -> usize {
        self.ring.buffered
    }

    /// Feeds one packet captured at `now`. In-order packets are released
    /// through `emit` at once; out-of-order ones wait in the reorder window
    /// until the gap fills, the window is full, or `max_reorder_delay` passes.
    pub fn push(&mut self, now: Timestamp, hdr: &RtpRepr<'_>, emit: &mut impl FnMut(Ordered<'_>)) {
        self.stats.received += 1;
        if self.ring.buffered > 0 {
            self.release_due(now, emit);
        }
        match &self.cur {
            Some(src) if src.ssrc == hdr.ssrc => self.push_current(now, hdr, emit),
            _ => self.push_candidate(now, hdr, emit),
        }
    }

    /// Releases what has waited long enough, or everything buffered if
    /// `force` (end of call). A source still on probation is dropped on force.
    pub fn flush(&mut self, now: Timestamp, force: bool, emit: &mut impl FnMut(Ordered<'_>)) {
        if !force {
            self.release_due(now, emit);
            return;
        }
        if let Some(src) = self.cur.as_mut() {
            release_all(src, &mut self.ring, &mut self.stats, emit);
        }
        if let Some(c) = self.cand.take() {
            self.stats.probation_dropped += c.held as u64;
        }
        if self.stash.used {
            self.stash.used = false;
            self.stats.jump_dropped += 1;
        }
        if let Some(src) = self.cur.as_mut() {
            src.bad_seq = None;
        }
    }

    fn push_current(
        &mut self,
        now: Timestamp,
        hdr: &RtpRepr<'_>,
        emit: &mut impl FnMut(Ordered<'_>),
    ) {
        let Some(src) = self.cur.as_mut() else {
            return;
        };
        let udelta = hdr.seq.wrapping_sub(SeqNum(src.max_ext as u16));
        let (ext_seq, ext_ts) = if udelta == 0 {
            // The highest packet seen is always buffered or released already.
            self.stats.duplicates += 1;
            return;
        } else if udelta < MAX_DROPOUT {
            let ext_seq = src.max_ext + u64::from(udelta);
            let ext_ts = src.unwrap_ts(hdr.ts);
            src.max_ext = ext_seq;
            src.ts_ref = hdr.ts;
            src.ts_ref_ext = ext_ts;
            if src.bad_seq.take().is_some() && self.stash.used {
                self.stash.used = false;
                self.stats.jump_dropped += 1;
            }
            (ext_seq, ext_ts)
        } else if udelta > u16::MAX - MAX_MISORDER {
            let back = u64::from(udelta.wrapping_neg());
            let Some(ext_seq) = src.max_ext.checked_sub(back) else {
                self.stats.late_dropped += 1;
                return;
            };
            (ext_seq, src.unwrap_ts(hdr.ts))
        } else {
            self.on_jump(now, hdr, emit);
            return;
        };

        if ext_seq < src.next_release {
            if src.was_released(ext_seq) {
                self.stats.duplicates += 1;
            } else {
                self.stats.late_dropped += 1;
            }
            return;
        }
        update_jitter(src, &mut self.stats, self.cfg.clock_rate, now, ext_ts);
        if ext_seq < src.max_ext {
            self.stats.reordered += 1;
        }

        // Fast path: the next expected packet, nothing waiting.
        if ext_seq == src.next_release && self.ring.buffered == 0 {
            emit_direct(src, &mut self.stats, hdr, ext_seq, ext_ts, now, emit);
            return;
        }

        let window = self.window as u64;
        if ext_seq >= src.next_release.saturating_add(window) {
            // Window overrun: whatever is older than the new window is released or lost.
            let floor = ext_seq + 1 - window;
            release_below(src, &mut self.ring, &mut self.stats, floor, emit);
            self.stats.add_lost(src.skip_to(floor));
        }
        if ext_seq == src.next_release {
            emit_direct(src, &mut self.stats, hdr, ext_seq, ext_ts, now, emit);
        } else {
            let idx = self.ring.index(ext_seq);
            let Some(slot) = self.ring.slots.get_mut(idx) else {
                return;
            };
            if slot.used {
                self.stats.duplicates += 1;
                return;
            }
            if hdr.payload.len() > self.cfg.max_payload {
                self.stats.oversize_dropped += 1;
                return;
            }
            slot.fill(hdr, now, ext_seq, ext_ts);
            self.ring.buffered += 1;
        }
        release_consecutive(src, &mut self.ring, &mut self.stats, emit);
    }

    /// RFC 3550 A.1: a big jump is a restart only if the next packet follows it.
    fn on_jump(&mut self, now: Timestamp, hdr: &RtpRepr<'_>, emit: &mut impl FnMut(Ordered<'_>)) {
        let Some(src) = self.cur.as_mut() else {
            return;
        };
        let confirmed = src.bad_seq == Some(hdr.seq) && self.stash.used;
        if !confirmed {
            if self.stash.used {
                self.stats.jump_dropped += 1;
            }
            if hdr.payload.len() > self.cfg.max_payload {
                self.stash.used = false;
                self.stats.oversize_dropped += 1;
            } else {
                self.stash.fill(hdr, now, 0, 0);
            }
            src.bad_seq = Some(hdr.seq.wrapping_add(1));
            return;
        }
        release_all(src, &mut self.ring, &mut self.stats, emit);
        self.stats.restarts += 1;
        // Keep ext_seq increasing across the restart; ext_ts stays on the old
        // reference (continuous if only the sequence jumped), and the caller
        // re-anchors anyway on `ssrc_changed`.
        let stash_ext = ((src.max_ext >> 16) + 1) << 16 | u64::from(self.stash.seq.0);
        let stash_ts = src.unwrap_ts(self.stash.ts);
        let mut fresh = Source::new(src.ssrc, stash_ext, self.stash.ts, stash_ts);
        self.stash.used = false;
        let stash = &self.stash;
        let changed = std::mem::take(&mut fresh.announce);
        fresh.mark_released(stash_ext);
        count_release(&mut self.stats, stash.payload.len());
        emit(Ordered {
            ssrc: fresh.ssrc,
            pt: stash.pt,
            marker: stash.marker,
            ext_seq: stash_ext,
            ext_ts: stash_ts,
            arrival: stash.arrival,
            payload: &stash.payload,
            ssrc_changed: changed,
        });
        self.cur = Some(fresh);
        self.push_current(now, hdr, emit);
    }

    fn push_candidate(
        &mut self,
        now: Timestamp,
        hdr: &RtpRepr<'_>,
        emit: &mut impl FnMut(Ordered<'_>),
    ) {
        let probation = self.cfg.probation;
        match self.cand.as_mut() {
            Some(c) if c.ssrc == hdr.ssrc => {
                if hdr.seq == c.last_seq.wrapping_add(1) {
                    c.needed = c.needed.saturating_sub(1);
                    c.last_seq = hdr.seq;
                } else if hdr.seq == c.last_seq {
                    self.stats.duplicates += 1;
                    return;
                } else {
                    // RFC 3550 A.1: out of sequence on probation starts it over.
                    self.stats.probation_dropped += c.held as u64;
                    *c = Candidate {
                        ssrc: hdr.ssrc,
                        last_seq: hdr.seq,
                        needed: probation - 1,
                        held: 0,
                    };
                }
            }
            other => {
                if let Some(old) = other {
                    self.stats.probation_dropped += old.held as u64;
                }
                self.cand = Some(Candidate {
                    ssrc: hdr.ssrc,
                    last_seq: hdr.seq,
                    needed: probation - 1,
                    held: 0,
                });
            }
        }
        let Some(c) = self.cand.as_mut() else {
            return;
        };
        if hdr.payload.len() > self.cfg.max_payload {
            self.stats.oversize_dropped += 1;
        } else if let Some(slot) = self.cand_slots.get_mut(c.held) {
            slot.fill(hdr, now, 0, 0);
            c.held += 1;
        } else {
            self.stats.probation_dropped += 1;
        }
        if c.needed == 0 {
            self.validate(emit);
        }
    }

    /// The candidate becomes the current source: what the old one still holds
    /// goes first, then the probation packets, the first flagged `ssrc_changed`.
    fn validate(&mut self, emit: &mut impl FnMut(Ordered<'_>)) {
        let Some(cand) = self.cand.take() else {
            return;
        };
        if let Some(old) = self.cur.as_mut() {
            release_all(old, &mut self.ring, &mut self.stats, emit);
            self.stats.ssrc_changes += 1;
        }
        if self.stash.used {
            self.stash.used = false;
            self.stats.jump_dropped += 1;
        }
        let held = self.cand_slots.get(..cand.held).unwrap_or_default();
        // Held packets are consecutive (probation restarts on any gap), except
        // where an oversize one was not held: the unwrap below counts that as lost.
        let (first_seq, first_ts) = match held.first() {
            Some(s) => (s.seq, s.ts),
            None => (cand.last_seq, 0),
        };
        let mut src = Source::new(
            cand.ssrc,
            u64::from(first_seq.0),
            first_ts,
            u64::from(first_ts),
        );
        for slot in held {
            let ext_seq =
                src.max_ext + u64::from(slot.seq.wrapping_sub(SeqNum(src.max_ext as u16)));
            let ext_ts = src.unwrap_ts(slot.ts);
            src.max_ext = ext_seq;
            src.ts_ref = slot.ts;
            src.ts_ref_ext = ext_ts;
            let changed = std::mem::take(&mut src.announce);
            let skipped = src.mark_released(ext_seq);
            self.stats.add_lost(skipped);
            count_release(&mut self.stats, slot.payload.len());
            emit(Ordered {
                ssrc: src.ssrc,
                pt: slot.pt,
                marker: slot.marker,
                ext_seq,
                ext_ts,
                arrival: slot.arrival,
                payload: &slot.payload,
                ssrc_changed: changed,
            });
        }
        if held.is_empty() {
            // Every probation packet was oversize: start after the last one seen.
            let last = u64::from(cand.last_seq.0);
            src.max_ext = last;
            src.next_release = last + 1;
        }
        self.cur = Some(src);
    }

    fn release_due(&mut self, now: Timestamp, emit: &mut impl FnMut(Ordered<'_>)) {
        let Some(src) = self.cur.as_mut() else {
            return;
        };
        if self.ring.buffered == 0 {
            return;
        }
        let delay = duration_micros(self.cfg.max_reorder_delay);
        let due = self
            .ring
            .slots
            .iter()
            .filter(|s| s.used && now.micros_since(s.arrival) >= delay)
            .map(|s| s.ext_seq)
            .max();
        if let Some(due) = due {
            release_below(src, &mut self.ring, &mut self.stats, due + 1, emit);
            release_consecutive(src, &mut self.ring, &mut self.stats, emit);
        }
    }
}

#[cfg(test)]
#[path = "tests/stream.rs"]
mod tests;
