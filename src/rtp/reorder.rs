//! One RTP source's sequence state and the reorder ring a stream releases
//! from: the bookkeeping under `RtpStream`, kept apart so the stream reads as
//! the RFC 3550 A.1 decisions it makes.

use super::packet::{PayloadType, RtpRepr, SeqNum, Ssrc};
use super::stream::{Ordered, StreamStats};
use crate::time::Timestamp;

#[derive(Default)]
pub(super) struct Slot {
    pub(super) used: bool,
    pub(super) seq: SeqNum,
    pub(super) ts: u32,
    pub(super) ext_seq: u64,
    pub(super) ext_ts: u64,
    pub(super) pt: PayloadType,
    pub(super) marker: bool,
    pub(super) arrival: Timestamp,
    pub(super) payload: Vec<u8>,
}

impl Slot {
    pub(super) fn fill(
        &mut self,
        hdr: &RtpRepr<'_>,
        arrival: Timestamp,
        ext_seq: u64,
        ext_ts: u64,
    ) {
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
pub(super) struct Source {
    pub(super) ssrc: Ssrc,
    /// Highest extended sequence number seen.
    pub(super) max_ext: u64,
    /// Raw and extended timestamp of the packet at `max_ext`, the reference
    /// for unwrapping.
    pub(super) ts_ref: u32,
    pub(super) ts_ref_ext: u64,
    /// Extended sequence number to release next.
    pub(super) next_release: u64,
    /// Bit i set: `next_release - 1 - i` was released, to tell a duplicate of
    /// an already released packet from a late one.
    pub(super) released_mask: u64,
    pub(super) announce: bool,
    /// RFC 3550 bad_seq: the packet expected next if a jump was a restart.
    pub(super) bad_seq: Option<SeqNum>,
    pub(super) last_transit: Option<f64>,
    pub(super) last_transit_ts: u64,
}

impl Source {
    pub(super) fn new(ssrc: Ssrc, ext_seq: u64, ts: u32, ext_ts: u64) -> Self {
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

    pub(super) fn unwrap_ts(&self, ts: u32) -> u64 {
        unwrap_ts(self.ts_ref_ext, self.ts_ref, ts)
    }

    /// Records the release of `ext_seq` (>= next_release); returns how many
    /// sequence numbers were skipped.
    pub(super) fn mark_released(&mut self, ext_seq: u64) -> u64 {
        let skipped = ext_seq.saturating_sub(self.next_release);
        let shift = u32::try_from(skipped.saturating_add(1)).unwrap_or(u32::MAX);
        self.released_mask = self.released_mask.checked_shl(shift).unwrap_or(0) | 1;
        self.next_release = ext_seq.saturating_add(1);
        skipped
    }

    /// Advances past lost packets without releasing anything.
    pub(super) fn skip_to(&mut self, ext_seq: u64) -> u64 {
        let skipped = ext_seq.saturating_sub(self.next_release);
        if skipped > 0 {
            let shift = u32::try_from(skipped).unwrap_or(u32::MAX);
            self.released_mask = self.released_mask.checked_shl(shift).unwrap_or(0);
            self.next_release = ext_seq;
        }
        skipped
    }

    pub(super) fn was_released(&self, ext_seq: u64) -> bool {
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

pub(super) fn unwrap_ts(ref_ext: u64, ref_raw: u32, ts: u32) -> u64 {
    let delta = ts.wrapping_sub(ref_raw) as i32;
    if delta >= 0 {
        ref_ext.saturating_add(delta as u64)
    } else {
        ref_ext.saturating_sub(u64::from(delta.unsigned_abs()))
    }
}

/// Reorder ring indexed by `ext_seq % len`; it only ever holds packets in
/// `[next_release, next_release + len)`, so slots never collide.
pub(super) struct Ring {
    pub(super) slots: Vec<Slot>,
    pub(super) buffered: usize,
}

impl Ring {
    pub(super) fn index(&self, ext_seq: u64) -> usize {
        (ext_seq % self.slots.len() as u64) as usize
    }
}

pub(super) fn count_release(stats: &mut StreamStats, bytes: usize) {
    stats.close_loss_run();
    stats.released += 1;
    stats.released_bytes += bytes as u64;
}

pub(super) fn emit_direct(
    src: &mut Source,
    stats: &mut StreamStats,
    hdr: &RtpRepr<'_>,
    ext_seq: u64,
    ext_ts: u64,
    now: Timestamp,
    emit: &mut impl FnMut(Ordered<'_>),
) {
    let changed = std::mem::take(&mut src.announce);
    stats.add_lost(src.mark_released(ext_seq));
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

pub(super) fn emit_slot(
    src: &mut Source,
    stats: &mut StreamStats,
    slot: &mut Slot,
    emit: &mut impl FnMut(Ordered<'_>),
) {
    let changed = std::mem::take(&mut src.announce);
    stats.add_lost(src.mark_released(slot.ext_seq));
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
pub(super) fn release_consecutive(
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
pub(super) fn release_below(
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

pub(super) fn release_all(
    src: &mut Source,
    ring: &mut Ring,
    stats: &mut StreamStats,
    emit: &mut impl FnMut(Ordered<'_>),
) {
    release_below(src, ring, stats, u64::MAX, emit);
}

/// RFC 3550 A.8. Packets repeating the previous timestamp (DTMF updates,
/// split frames) are skipped: they would read as jitter that isn't there.
pub(super) fn update_jitter(
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
