//! One RTP stream from one source address: RFC 3550 A.1 source validation,
//! sequence and timestamp unwrapping, a bounded reorder window, loss,
//! duplicate and jitter statistics.
//!
//! In-order packets go straight from the caller's buffer to `emit`; only
//! packets that must wait (out of order, or a new source still on probation)
//! are copied, into slots allocated once and reused.

use serde::Serialize;

use super::packet::RtpHeader;
use crate::time::Timestamp;

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
    pub max_reorder_delay_us: i64,
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
            max_reorder_delay_us: 100_000,
            probation: 2,
            clock_rate: 8000,
            max_payload: 2048,
        }
    }
}

/// A packet released in sequence order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ordered<'a> {
    pub ssrc: u32,
    pub pt: u8,
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
    /// RFC 3550 A.8 interarrival jitter, in timestamp units, from capture times.
    pub jitter: f64,
}

#[derive(Default)]
struct Slot {
    used: bool,
    seq: u16,
    ts: u32,
    ext_seq: u64,
    ext_ts: u64,
    pt: u8,
    marker: bool,
    arrival: Timestamp,
    payload: Vec<u8>,
}

impl Slot {
    fn fill(&mut self, hdr: &RtpHeader<'_>, arrival: Timestamp, ext_seq: u64, ext_ts: u64) {
        self.used = true;
        self.seq = hdr.seq;
        self.ts = hdr.ts;
        self.ext_seq = ext_seq;
        self.ext_ts = ext_ts;
        self.pt = hdr.pt;
        self.marker = hdr.marker;
        self.arrival = arrival;
        self.payload.clear();
        self.payload.extend_from_slice(hdr.payload);
    }
}

/// The source whose packets are being released.
struct Source {
    ssrc: u32,
    /// Highest extended sequence number seen.
    max_ext: u64,
    /// Raw and extended timestamp of the packet at `max_ext`, the reference
    /// for unwrapping.
    ts_ref: u32,
    ts_ref_ext: u64,
    /// Extended sequence number to release next.
    next_release: u64,
    /// Bit i set: `next_release - 1 - i` was released, to tell a duplicate of
    /// an already released packet from a late one.
    released_mask: u64,
    announce: bool,
    /// RFC 3550 bad_seq: the packet expected next if a jump was a restart.
    bad_seq: Option<u16>,
    last_transit: Option<f64>,
    last_transit_ts: u64,
}

impl Source {
    fn new(ssrc: u32, ext_seq: u64, ts: u32, ext_ts: u64) -> Self {
        Source {
            ssrc,
            max_ext: ext_seq,
            ts_ref: ts,
            ts_ref_ext: ext_ts,
            next_release: ext_seq,
            released_mask: 0,
            announce: true,
            bad_seq: None,
            last_transit: None,
            last_transit_ts: 0,
        }
    }

    fn unwrap_ts(&self, ts: u32) -> u64 {
        unwrap_ts(self.ts_ref_ext, self.ts_ref, ts)
    }

    /// Records the release of `ext_seq` (>= next_release); returns how many
    /// sequence numbers were skipped.
    fn mark_released(&mut self, ext_seq: u64) -> u64 {
        let skipped = ext_seq.saturating_sub(self.next_release);
        let shift = u32::try_from(skipped.saturating_add(1)).unwrap_or(u32::MAX);
        self.released_mask = self.released_mask.checked_shl(shift).unwrap_or(0) | 1;
        self.next_release = ext_seq.saturating_add(1);
        skipped
    }

    /// Advances past lost packets without releasing anything.
    fn skip_to(&mut self, ext_seq: u64) -> u64 {
        let skipped = ext_seq.saturating_sub(self.next_release);
        if skipped > 0 {
            let shift = u32::try_from(skipped).unwrap_or(u32::MAX);
            self.released_mask = self.released_mask.checked_shl(shift).unwrap_or(0);
            self.next_release = ext_seq;
        }
        skipped
    }

    fn was_released(&self, ext_seq: u64) -> bool {
        match self
            .next_release
            .checked_sub(1)
            .and_then(|last| last.checked_sub(ext_seq))
        {
            Some(back) if back < 64 => self.released_mask & (1 << back) != 0,
            _ => false,
        }
    }
}

fn unwrap_ts(ref_ext: u64, ref_raw: u32, ts: u32) -> u64 {
    let delta = ts.wrapping_sub(ref_raw) as i32;
    if delta >= 0 {
        ref_ext.saturating_add(delta as u64)
    } else {
        ref_ext.saturating_sub(u64::from(delta.unsigned_abs()))
    }
}

/// A new SSRC on probation, its packets held until it is validated.
struct Candidate {
    ssrc: u32,
    last_seq: u16,
    /// Consecutive packets still needed.
    needed: u32,
    held: usize,
}

/// Reorder ring indexed by `ext_seq % len`; it only ever holds packets in
/// `[next_release, next_release + len)`, so slots never collide.
struct Ring {
    slots: Vec<Slot>,
    buffered: usize,
}

impl Ring {
    fn index(&self, ext_seq: u64) -> usize {
        (ext_seq % self.slots.len() as u64) as usize
    }
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
            cfg: StreamConfig { probation, ..cfg },
            window,
            stats: StreamStats::default(),
            cur: None,
            cand: None,
            stash: Slot::default(),
        }
    }

    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }

    /// The SSRC currently released, once one passed probation.
    pub fn ssrc(&self) -> Option<u32> {
        self.cur.as_ref().map(|s| s.ssrc)
    }

    /// Packets waiting in the reorder window.
    pub fn buffered(&self) -> usize {
        self.ring.buffered
    }

    /// Feeds one packet captured at `now`. In-order packets are released
    /// through `emit` at once; out-of-order ones wait in the reorder window
    /// until the gap fills, the window is full, or `max_reorder_delay_us` passes.
    pub fn push(
        &mut self,
        now: Timestamp,
        hdr: &RtpHeader<'_>,
        emit: &mut impl FnMut(Ordered<'_>),
    ) {
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
        hdr: &RtpHeader<'_>,
        emit: &mut impl FnMut(Ordered<'_>),
    ) {
        let Some(src) = self.cur.as_mut() else {
            return;
        };
        let udelta = hdr.seq.wrapping_sub(src.max_ext as u16);
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
            self.stats.lost += src.skip_to(floor);
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
    fn on_jump(&mut self, now: Timestamp, hdr: &RtpHeader<'_>, emit: &mut impl FnMut(Ordered<'_>)) {
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
        let stash_ext = ((src.max_ext >> 16) + 1) << 16 | u64::from(self.stash.seq);
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
        hdr: &RtpHeader<'_>,
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
            u64::from(first_seq),
            first_ts,
            u64::from(first_ts),
        );
        for slot in held {
            let ext_seq = src.max_ext + u64::from(slot.seq.wrapping_sub(src.max_ext as u16));
            let ext_ts = src.unwrap_ts(slot.ts);
            src.max_ext = ext_seq;
            src.ts_ref = slot.ts;
            src.ts_ref_ext = ext_ts;
            let changed = std::mem::take(&mut src.announce);
            self.stats.lost += src.mark_released(ext_seq);
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
            let last = u64::from(cand.last_seq);
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
        let delay = self.cfg.max_reorder_delay_us;
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

fn count_release(stats: &mut StreamStats, bytes: usize) {
    stats.released += 1;
    stats.released_bytes += bytes as u64;
}

fn emit_direct(
    src: &mut Source,
    stats: &mut StreamStats,
    hdr: &RtpHeader<'_>,
    ext_seq: u64,
    ext_ts: u64,
    now: Timestamp,
    emit: &mut impl FnMut(Ordered<'_>),
) {
    let changed = std::mem::take(&mut src.announce);
    stats.lost += src.mark_released(ext_seq);
    count_release(stats, hdr.payload.len());
    emit(Ordered {
        ssrc: hdr.ssrc,
        pt: hdr.pt,
        marker: hdr.marker,
        ext_seq,
        ext_ts,
        arrival: now,
        payload: hdr.payload,
        ssrc_changed: changed,
    });
}

fn emit_slot(
    src: &mut Source,
    stats: &mut StreamStats,
    slot: &mut Slot,
    emit: &mut impl FnMut(Ordered<'_>),
) {
    let changed = std::mem::take(&mut src.announce);
    stats.lost += src.mark_released(slot.ext_seq);
    count_release(stats, slot.payload.len());
    slot.used = false;
    emit(Ordered {
        ssrc: src.ssrc,
        pt: slot.pt,
        marker: slot.marker,
        ext_seq: slot.ext_seq,
        ext_ts: slot.ext_ts,
        arrival: slot.arrival,
        payload: &slot.payload,
        ssrc_changed: changed,
    });
}

/// Releases buffered packets from `next_release` on while there is no gap.
fn release_consecutive(
    src: &mut Source,
    ring: &mut Ring,
    stats: &mut StreamStats,
    emit: &mut impl FnMut(Ordered<'_>),
) {
    while ring.buffered > 0 {
        let idx = ring.index(src.next_release);
        let Some(slot) = ring.slots.get_mut(idx) else {
            return;
        };
        if !slot.used || slot.ext_seq != src.next_release {
            return;
        }
        ring.buffered -= 1;
        emit_slot(src, stats, slot, emit);
    }
}

/// Releases, in order, every buffered packet below `floor`, counting the gaps
/// between them as lost (the gap up to `floor` itself is the caller's call).
fn release_below(
    src: &mut Source,
    ring: &mut Ring,
    stats: &mut StreamStats,
    floor: u64,
    emit: &mut impl FnMut(Ordered<'_>),
) {
    let len = ring.slots.len() as u64;
    let start = src.next_release;
    let end = floor.min(start.saturating_add(len));
    let mut e = start;
    while e < end && ring.buffered > 0 {
        let idx = ring.index(e);
        if let Some(slot) = ring.slots.get_mut(idx) {
            if slot.used && slot.ext_seq == e {
                ring.buffered -= 1;
                emit_slot(src, stats, slot, emit);
            }
        }
        e += 1;
    }
}

fn release_all(
    src: &mut Source,
    ring: &mut Ring,
    stats: &mut StreamStats,
    emit: &mut impl FnMut(Ordered<'_>),
) {
    release_below(src, ring, stats, u64::MAX, emit);
}

/// RFC 3550 A.8. Packets repeating the previous timestamp (DTMF updates,
/// split frames) are skipped: they would read as jitter that isn't there.
fn update_jitter(
    src: &mut Source,
    stats: &mut StreamStats,
    clock_rate: u32,
    now: Timestamp,
    ext_ts: u64,
) {
    if src.last_transit.is_some() && ext_ts == src.last_transit_ts {
        return;
    }
    let arrival = now.micros() as f64 * f64::from(clock_rate) / 1e6;
    let transit = arrival - ext_ts as f64;
    if let Some(prev) = src.last_transit {
        let d = (transit - prev).abs();
        stats.jitter += (d - stats.jitter) / 16.0;
    }
    src.last_transit = Some(transit);
    src.last_transit_ts = ext_ts;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Out {
        ssrc: u32,
        ext_seq: u64,
        ext_ts: u64,
        changed: bool,
        payload: Vec<u8>,
    }

    struct Harness {
        s: RtpStream,
        out: Vec<Out>,
        now: i64,
    }

    impl Harness {
        fn new(cfg: StreamConfig) -> Self {
            Harness {
                s: RtpStream::new(cfg),
                out: Vec::new(),
                now: 1_700_000_000_000_000,
            }
        }
        fn push(&mut self, ssrc: u32, seq: u16, ts: u32) {
            self.push_at(ssrc, seq, ts, 0);
        }
        /// `dt_us` advances capture time before the packet.
        fn push_at(&mut self, ssrc: u32, seq: u16, ts: u32, dt_us: i64) {
            self.now += dt_us;
            let payload = seq.to_be_bytes();
            let hdr = RtpHeader {
                pt: 0,
                marker: false,
                seq,
                ts,
                ssrc,
                payload: &payload,
            };
            let out = &mut self.out;
            self.s
                .push(Timestamp(self.now), &hdr, &mut |o| out.push(own(o)));
        }
        fn flush(&mut self, dt_us: i64, force: bool) {
            self.now += dt_us;
            let out = &mut self.out;
            self.s
                .flush(Timestamp(self.now), force, &mut |o| out.push(own(o)));
        }
        fn seqs(&self) -> Vec<u64> {
            self.out.iter().map(|o| o.ext_seq).collect()
        }
    }

    fn own(o: Ordered<'_>) -> Out {
        Out {
            ssrc: o.ssrc,
            ext_seq: o.ext_seq,
            ext_ts: o.ext_ts,
            changed: o.ssrc_changed,
            payload: o.payload.to_vec(),
        }
    }

    fn ts(seq: u16) -> u32 {
        u32::from(seq) * 160
    }

    #[test]
    fn in_order_after_probation() {
        let mut h = Harness::new(StreamConfig::default());
        h.push(7, 10, ts(10));
        assert!(h.out.is_empty(), "first packet waits for probation");
        for seq in 11..20 {
            h.push_at(7, seq, ts(seq), 20_000);
        }
        assert_eq!(h.seqs(), (10..20).collect::<Vec<_>>());
        assert!(h.out[0].changed);
        assert!(h.out[1..].iter().all(|o| !o.changed));
        assert_eq!(h.out[3].ext_ts, 13 * 160);
        assert_eq!(h.out[3].payload, 13u16.to_be_bytes());
        let st = h.s.stats();
        assert_eq!((st.received, st.released, st.lost), (10, 10, 0));
        assert_eq!(st.ssrc_changes, 0);
        assert!(st.jitter < 1.0, "steady 20 ms pacing: jitter {}", st.jitter);
    }

    #[test]
    fn reorder_within_window() {
        let mut h = Harness::new(StreamConfig::default());
        for seq in [1, 2, 3, 5, 6, 4, 7, 9, 8, 10] {
            h.push_at(1, seq, ts(seq), 20_000);
        }
        assert_eq!(h.seqs(), (1..=10).collect::<Vec<_>>());
        let st = h.s.stats();
        assert_eq!(st.reordered, 2);
        assert_eq!(st.lost, 0);
        assert_eq!(h.s.buffered(), 0);
    }

    #[test]
    fn loss_leaves_gap_after_delay() {
        let mut h = Harness::new(StreamConfig::default());
        for seq in [1, 2, 3, 6, 7] {
            h.push_at(1, seq, ts(seq), 20_000);
        }
        assert_eq!(h.seqs(), vec![1, 2, 3]);
        // Still inside the 100 ms reorder delay.
        h.flush(50_000, false);
        assert_eq!(h.seqs(), vec![1, 2, 3]);
        h.flush(60_000, false);
        assert_eq!(h.seqs(), vec![1, 2, 3, 6, 7]);
        assert_eq!(h.out[3].ext_ts, 6 * 160, "the gap shows in ext_ts");
        assert_eq!(h.s.stats().lost, 2);
        // The lost packet arriving now is late.
        h.push_at(1, 4, ts(4), 1000);
        assert_eq!(h.s.stats().late_dropped, 1);
        h.push_at(1, 8, ts(8), 1000);
        assert_eq!(h.seqs(), vec![1, 2, 3, 6, 7, 8]);
    }

    #[test]
    fn window_overrun_releases_oldest() {
        let cfg = StreamConfig {
            reorder_window: 4,
            max_reorder_delay_us: 10_000_000,
            ..StreamConfig::default()
        };
        let mut h = Harness::new(cfg);
        for seq in [1, 2, 4, 5, 6] {
            h.push(1, seq, ts(seq));
        }
        assert_eq!(h.seqs(), vec![1, 2]);
        h.push(1, 7, ts(7));
        assert_eq!(h.seqs(), vec![1, 2, 4, 5, 6, 7]);
        assert_eq!(h.s.stats().lost, 1);
        // A far jump (< MAX_DROPOUT) flushes everything before it.
        h.push(1, 9, ts(9));
        h.push(1, 100, ts(100));
        assert_eq!(h.seqs(), vec![1, 2, 4, 5, 6, 7, 9]);
        h.flush(0, true);
        assert_eq!(h.seqs(), vec![1, 2, 4, 5, 6, 7, 9, 100]);
        assert_eq!(h.s.stats().lost, 1 + 1 + 90);
    }

    #[test]
    fn duplicates_dropped() {
        let mut h = Harness::new(StreamConfig::default());
        for seq in [1, 2, 2, 3, 5, 5, 3, 1, 4, 4] {
            h.push(1, seq, ts(seq));
        }
        assert_eq!(h.seqs(), vec![1, 2, 3, 4, 5]);
        let st = h.s.stats();
        assert_eq!(st.duplicates, 5);
        assert_eq!(st.late_dropped, 0);
    }

    #[test]
    fn sequence_wrap() {
        let mut h = Harness::new(StreamConfig::default());
        let seqs = [65533u16, 65534, 65535, 1, 0, 2, 3];
        for s in seqs {
            h.push(1, s, u32::from(s.wrapping_sub(65533)) * 160);
        }
        assert_eq!(h.seqs(), (65533..65540).collect::<Vec<_>>());
        assert_eq!(h.out[6].ext_ts, 6 * 160);
        assert_eq!(h.s.stats().reordered, 1);
    }

    #[test]
    fn timestamp_wrap() {
        let mut h = Harness::new(StreamConfig::default());
        let base = u32::MAX - 320 + 1;
        for i in 0..6u16 {
            h.push(1, 100 + i, base.wrapping_add(u32::from(i) * 160));
        }
        let ts: Vec<u64> = h.out.iter().map(|o| o.ext_ts).collect();
        let b = u64::from(base);
        assert_eq!(ts, (0..6).map(|i| b + i * 160).collect::<Vec<_>>());
        assert!(ts[5] > u64::from(u32::MAX));
    }

    #[test]
    fn ssrc_change_goes_through_probation() {
        let mut h = Harness::new(StreamConfig::default());
        for seq in 1..=5 {
            h.push(0xA, seq, ts(seq));
        }
        // Reordered tail of A still in the window when B appears.
        h.push(0xA, 7, ts(7));
        h.push(0xB, 5000, 90_000);
        assert_eq!(h.out.len(), 5);
        h.push(0xB, 5001, 90_160);
        h.push(0xB, 5002, 90_320);
        let got: Vec<(u32, u64, bool)> = h
            .out
            .iter()
            .map(|o| (o.ssrc, o.ext_seq, o.changed))
            .collect();
        assert_eq!(
            got,
            vec![
                (0xA, 1, true),
                (0xA, 2, false),
                (0xA, 3, false),
                (0xA, 4, false),
                (0xA, 5, false),
                (0xA, 7, false),
                (0xB, 5000, true),
                (0xB, 5001, false),
                (0xB, 5002, false),
            ]
        );
        assert_eq!(h.out[6].ext_ts, 90_000);
        assert_eq!(h.s.ssrc(), Some(0xB));
        let st = h.s.stats();
        assert_eq!(st.ssrc_changes, 1);
        assert_eq!(st.probation_dropped, 0);
        // A's stragglers now look like a new candidate; lone ones never validate.
        h.push(0xA, 8, ts(8));
        h.push(0xB, 5003, 90_480);
        h.flush(0, true);
        assert_eq!(h.s.ssrc(), Some(0xB));
        assert_eq!(h.s.stats().probation_dropped, 1);
    }

    #[test]
    fn probation_resets_on_gap_and_lone_packets_never_validate() {
        let cfg = StreamConfig {
            probation: 3,
            ..StreamConfig::default()
        };
        let mut h = Harness::new(cfg);
        h.push(9, 10, 0);
        h.push(9, 12, 320);
        h.push(9, 13, 480);
        assert!(h.out.is_empty());
        h.push(9, 14, 640);
        assert_eq!(h.seqs(), vec![12, 13, 14]);
        assert_eq!(h.s.stats().probation_dropped, 1);

        let mut lone = Harness::new(StreamConfig::default());
        lone.push(3, 1, 0);
        lone.push(4, 1, 0);
        lone.push(5, 1, 0);
        lone.flush(0, true);
        assert!(lone.out.is_empty());
        assert_eq!(lone.s.stats().probation_dropped, 3);

        let mut quick = Harness::new(StreamConfig {
            probation: 0,
            ..StreamConfig::default()
        });
        quick.push(3, 1, 0);
        assert_eq!(quick.seqs(), vec![1]);
    }

    #[test]
    fn sequence_jump_is_restart_when_confirmed() {
        let mut h = Harness::new(StreamConfig::default());
        for seq in 1..=3 {
            h.push(1, seq, ts(seq));
        }
        // A lone stray far away is dropped.
        h.push(1, 30_000, 1);
        h.push(1, 4, ts(4));
        assert_eq!(h.seqs(), vec![1, 2, 3, 4]);
        assert_eq!(h.s.stats().jump_dropped, 1);
        // Two in a row far away: the sender restarted; nothing of it is lost.
        h.push(1, 40_000, 8000);
        h.push(1, 40_001, 8160);
        h.push(1, 40_002, 8320);
        let tail: Vec<(u64, bool)> = h.out[4..]
            .iter()
            .map(|o| (o.ext_seq & 0xffff, o.changed))
            .collect();
        assert_eq!(tail, vec![(40_000, true), (40_001, false), (40_002, false)]);
        assert!(h.out[4].ext_seq > h.out[3].ext_seq);
        assert_eq!(h.s.stats().restarts, 1);
        assert_eq!(h.s.stats().lost, 0);
    }

    #[test]
    fn bounded_under_garbage() {
        let cfg = StreamConfig {
            reorder_window: 8,
            ..StreamConfig::default()
        };
        let mut h = Harness::new(cfg);
        let mut x: u32 = 0xdead_beef;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for i in 0..20_000u32 {
            let r = rnd();
            let ssrc = if r % 50 == 0 { r } else { 1 };
            let seq = if r % 7 == 0 {
                (r >> 8) as u16
            } else {
                (i + (r % 5)) as u16
            };
            h.push_at(ssrc, seq, rnd(), i64::from(r % 40_000));
            assert!(h.s.buffered() <= 8);
        }
        h.flush(0, true);
        assert_eq!(h.s.buffered(), 0);
        let st = h.s.stats();
        assert!(st.released > 0 && st.released <= st.received);
        // Within one SSRC run, output is strictly increasing.
        for w in h.out.windows(2) {
            if !w[1].changed {
                assert!(w[1].ext_seq > w[0].ext_seq, "{:?}", w);
            }
        }
    }
}
