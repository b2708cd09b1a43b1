//! IPv4 / IPv6 fragment reassembly (RFC 791, RFC 8200 §4.5), bounded.
//!
//! Overlaps that repeat the same bytes are accepted (duplicated captures do that);
//! overlaps that change bytes drop the whole datagram (RFC 5722's rule, applied to
//! IPv4 too, since a tap cannot know which copy the host kept).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use crate::time::{duration_micros, Timestamp};
use crate::wire::Fragment;

use super::{ReasmLimits, ReasmStats};

/// A datagram cut into more pieces than this is not real traffic.
const MAX_PIECES: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

#[derive(Debug)]
struct FragSet {
    created: Timestamp,
    generation: u64,
    data: Vec<u8>,
    /// Received byte ranges, sorted and merged.
    ranges: Vec<(usize, usize)>,
    /// Datagram payload length, known once the last piece arrived.
    total: Option<usize>,
}

enum Added {
    Stored,
    Duplicate,
    Overlap,
    Inconsistent,
}

impl FragSet {
    fn add(&mut self, start: usize, payload: &[u8], last: bool) -> Added {
        let end = start + payload.len();
        if last {
            if self.total.is_some_and(|t| t != end) || self.ranges.iter().any(|&(_, e)| e > end) {
                return Added::Inconsistent;
            }
        } else if self.total.is_some_and(|t| end > t) {
            return Added::Inconsistent;
        }
        let mut covered = 0;
        for &(s, e) in &self.ranges {
            let (os, oe) = (s.max(start), e.min(end));
            if os >= oe {
                continue;
            }
            let held = self.data.get(os..oe);
            let new = payload.get(os - start..oe - start);
            if held != new {
                return Added::Overlap;
            }
            covered += oe - os;
        }
        if last {
            self.total = Some(end);
        }
        if covered == payload.len() && !payload.is_empty() {
            return Added::Duplicate;
        }
        if self.ranges.len() >= MAX_PIECES {
            return Added::Inconsistent;
        }
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        if let Some(dst) = self.data.get_mut(start..end) {
            dst.copy_from_slice(payload);
        }
        self.insert_range(start, end);
        Added::Stored
    }

    fn insert_range(&mut self, start: usize, end: usize) {
        if start == end {
            return;
        }
        let at = self.ranges.partition_point(|&(s, _)| s < start);
        self.ranges.insert(at, (start, end));
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.ranges.len());
        for &(s, e) in &self.ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.ranges = merged;
    }

    fn is_complete(&self) -> bool {
        match self.total {
            Some(t) => self.ranges.as_slice() == [(0, t)] || (t == 0 && self.ranges.is_empty()),
            None => false,
        }
    }
}

/// Reassembles fragmented IP datagrams.
#[derive(Debug)]
pub struct Defragmenter {
    limits: ReasmLimits,
    sets: HashMap<FragKey, FragSet>,
    /// Creation order for eviction; entries whose set is gone are skipped lazily.
    order: VecDeque<(FragKey, u64)>,
    next_generation: u64,
    stats: ReasmStats,
}

impl Defragmenter {
    pub fn new(limits: &ReasmLimits) -> Self {
        Defragmenter {
            limits: limits.clone(),
            sets: HashMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
            stats: ReasmStats::default(),
        }
    }

    /// Counters (only `fragments`, `reassembled` and `frag_*` are used here).
    pub fn stats(&self) -> &ReasmStats {
        &self.stats
    }

    /// Datagrams currently being reassembled.
    pub fn pending(&self) -> usize {
        self.sets.len()
    }

    /// Feeds one fragment. Returns the reassembled IP payload (transport header + data)
    /// when the datagram is complete.
    pub fn push(
        &mut self,
        now: Timestamp,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        frag: &Fragment,
        payload: &[u8],
    ) -> Option<Vec<u8>> {
        self.stats.fragments += 1;
        if frag.offset == 0 && !frag.more {
            // Not actually fragmented (an atomic fragment): nothing to wait for.
            self.stats.reassembled += 1;
            return Some(payload.to_vec());
        }
        let key = FragKey {
            src,
            dst,
            proto,
            id: frag.id,
        };
        let start = frag.offset as usize;
        let end = start.saturating_add(payload.len());
        if end > self.limits.max_frag_bytes {
            self.stats.frag_oversize += 1;
            self.sets.remove(&key);
            return None;
        }
        if let Some(set) = self.sets.get(&key) {
            if now.duration_since(set.created) > self.limits.frag_timeout {
                self.stats.frag_timeouts += 1;
                self.sets.remove(&key);
            }
        }
        if !self.sets.contains_key(&key) && !self.make_room(now) {
            self.stats.frag_cap_drops += 1;
            return None;
        }
        let generation = self.next_generation;
        let set = self.sets.entry(key).or_insert_with(|| FragSet {
            created: now,
            generation,
            data: Vec::new(),
            ranges: Vec::new(),
            total: None,
        });
        if set.generation == generation {
            self.next_generation += 1;
            self.order.push_back((key, generation));
        }
        match set.add(start, payload, !frag.more) {
            Added::Stored => {}
            // A repeat can still be the piece that tells the total length.
            Added::Duplicate => self.stats.frag_duplicates += 1,
            Added::Overlap => {
                self.stats.frag_overlaps += 1;
                self.sets.remove(&key);
                return None;
            }
            Added::Inconsistent => {
                self.stats.frag_bad += 1;
                self.sets.remove(&key);
                return None;
            }
        }
        if !set.is_complete() {
            return None;
        }
        let mut set = self.sets.remove(&key)?;
        set.data.truncate(set.total.unwrap_or(0));
        self.stats.reassembled += 1;
        self.compact_order();
        Some(set.data)
    }

    /// Abandons datagrams whose first piece is older than `frag_timeout`.
    pub fn expire(&mut self, now: Timestamp) {
        let timeout = duration_micros(self.limits.frag_timeout);
        let before = self.sets.len();
        self.sets
            .retain(|_, s| now.micros_since(s.created) <= timeout);
        self.stats.frag_timeouts += (before - self.sets.len()) as u64;
        let sets = &self.sets;
        self.order
            .retain(|(k, g)| sets.get(k).is_some_and(|s| s.generation == *g));
    }

    /// Ensures one more set fits: expired sets go first, then the oldest.
    fn make_room(&mut self, now: Timestamp) -> bool {
        if self.sets.len() < self.limits.max_frag_sets {
            return true;
        }
        self.expire(now);
        while self.sets.len() >= self.limits.max_frag_sets {
            let Some((k, g)) = self.order.pop_front() else {
                return false;
            };
            if self.sets.get(&k).is_some_and(|s| s.generation == g) {
                self.sets.remove(&k);
                self.stats.frag_cap_drops += 1;
            }
        }
        true
    }

    /// Keeps the eviction queue from filling with entries of completed sets.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.limits.max_frag_sets + 64 {
            let sets = &self.sets;
            self.order
                .retain(|(k, g)| sets.get(k).is_some_and(|s| s.generation == *g));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn ips() -> (IpAddr, IpAddr) {
        (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        )
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn piece(d: &[u8], id: u32, start: usize, end: usize) -> (Fragment, &[u8]) {
        (
            Fragment {
                id,
                offset: start as u32,
                more: end < d.len(),
            },
            &d[start..end],
        )
    }

    #[test]
    fn in_order_and_out_of_order() {
        let (s, d) = ips();
        let dg = data(3000);
        let cuts = [(0, 1480), (1480, 2960), (2960, 3000)];
        for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let mut df = Defragmenter::new(&ReasmLimits::default());
            let mut got = None;
            for (n, &i) in order.iter().enumerate() {
                let (f, p) = piece(&dg, 7, cuts[i].0, cuts[i].1);
                let r = df.push(Timestamp(n as i64), s, d, 17, &f, p);
                if n < 2 {
                    assert!(r.is_none());
                } else {
                    got = r;
                }
            }
            assert_eq!(got.as_deref(), Some(&dg[..]));
            assert_eq!(df.stats().reassembled, 1);
            assert_eq!(df.pending(), 0);
        }
    }

    #[test]
    fn duplicates_ignored_conflicting_overlap_drops() {
        let (s, d) = ips();
        let dg = data(2000);
        let mut df = Defragmenter::new(&ReasmLimits::default());
        let (f0, p0) = piece(&dg, 1, 0, 1000);
        let (f1, p1) = piece(&dg, 1, 1000, 2000);
        assert!(df.push(Timestamp(0), s, d, 17, &f0, p0).is_none());
        assert!(df.push(Timestamp(0), s, d, 17, &f0, p0).is_none());
        assert_eq!(df.stats().frag_duplicates, 1);
        // same-bytes partial overlap is fine
        let (fo, po) = piece(&dg, 1, 504, 1200);
        assert!(df.push(Timestamp(0), s, d, 17, &fo, po).is_none());
        assert_eq!(
            df.push(Timestamp(0), s, d, 17, &f1, p1).as_deref(),
            Some(&dg[..])
        );

        // conflicting overlap
        let (f0, p0) = piece(&dg, 2, 0, 1000);
        assert!(df.push(Timestamp(0), s, d, 17, &f0, p0).is_none());
        let evil = vec![0xffu8; 200];
        let fe = Fragment {
            id: 2,
            offset: 896,
            more: true,
        };
        assert!(df.push(Timestamp(0), s, d, 17, &fe, &evil).is_none());
        assert_eq!(df.stats().frag_overlaps, 1);
        assert_eq!(df.pending(), 0);
    }

    #[test]
    fn inconsistent_last_fragment() {
        let (s, d) = ips();
        let dg = data(2000);
        let mut df = Defragmenter::new(&ReasmLimits::default());
        let (f1, p1) = piece(&dg, 3, 1000, 2000);
        assert!(df.push(Timestamp(0), s, d, 17, &f1, p1).is_none());
        let bad_last = Fragment {
            id: 3,
            offset: 0,
            more: false,
        };
        // offset 0 + more=false is a whole datagram, not part of the set
        assert!(df
            .push(Timestamp(0), s, d, 17, &bad_last, &dg[..8])
            .is_some());
        let short_last = Fragment {
            id: 3,
            offset: 8,
            more: false,
        };
        assert!(df
            .push(Timestamp(0), s, d, 17, &short_last, &dg[8..16])
            .is_none());
        assert_eq!(df.stats().frag_bad, 1);
    }

    #[test]
    fn timeout_and_caps() {
        let (s, d) = ips();
        let dg = data(2000);
        let limits = ReasmLimits {
            max_frag_sets: 2,
            max_frag_bytes: 1500,
            frag_timeout: Duration::from_millis(1),
            ..ReasmLimits::default()
        };
        let mut df = Defragmenter::new(&limits);
        // timeout via expire
        let (f0, p0) = piece(&dg[..1200], 1, 0, 600);
        assert!(df.push(Timestamp(0), s, d, 17, &f0, p0).is_none());
        df.expire(Timestamp(5_000));
        assert_eq!(df.stats().frag_timeouts, 1);
        assert_eq!(df.pending(), 0);

        // stale set replaced when its next piece arrives late
        assert!(df.push(Timestamp(10_000), s, d, 17, &f0, p0).is_none());
        let (f1, p1) = piece(&dg[..1200], 1, 600, 1200);
        assert!(df.push(Timestamp(20_000), s, d, 17, &f1, p1).is_none());
        assert_eq!(df.stats().frag_timeouts, 2);

        // set cap evicts the oldest
        for id in 10..13 {
            let f = Fragment {
                id,
                offset: 0,
                more: true,
            };
            assert!(df.push(Timestamp(20_000), s, d, 17, &f, &dg[..8]).is_none());
        }
        assert_eq!(df.pending(), 2);
        assert_eq!(df.stats().frag_cap_drops, 2);

        // byte cap
        let big = Fragment {
            id: 99,
            offset: 1400,
            more: false,
        };
        assert!(df
            .push(Timestamp(20_000), s, d, 17, &big, &dg[..200])
            .is_none());
        assert_eq!(df.stats().frag_oversize, 1);
    }

    #[test]
    fn zero_set_cap_refuses() {
        let (s, d) = ips();
        let mut df = Defragmenter::new(&ReasmLimits {
            max_frag_sets: 0,
            ..ReasmLimits::default()
        });
        let f = Fragment {
            id: 1,
            offset: 0,
            more: true,
        };
        assert!(df.push(Timestamp(0), s, d, 17, &f, b"12345678").is_none());
        assert_eq!(df.stats().frag_cap_drops, 1);
        assert_eq!(df.pending(), 0);
    }
}
