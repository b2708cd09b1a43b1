//! Per-direction TCP byte streams cut into SIP messages.
//!
//! A tap sees what the wire saw: retransmissions, reordering, segments the capture
//! dropped, connections joined mid-stream. Each direction keeps the next expected
//! sequence number (wrapping arithmetic throughout); bytes before it are
//! retransmissions, segments after it wait (bounded) for the hole to fill, and a hole
//! that does not fill is skipped, after which framing resyncs on the next start line.

use std::collections::HashMap;

use memchr::memchr;

use crate::time::{duration_micros, Timestamp};

use super::framing::{resync, Framing, MessageScanner};
use super::{FlowKey, ReasmLimits, ReasmStats};

/// How long a hole may stay open (capture time) before the bytes after it are used.
pub const TCP_GAP_WAIT_US: i64 = 2_000_000;
/// Most out-of-order segments held per direction before the hole is skipped.
pub const MAX_OOO_SEGMENTS: usize = 64;
/// A full stream table is swept for idle streams at most this often.
const SWEEP_INTERVAL_US: i64 = 1_000_000;

#[derive(Debug)]
struct Stream {
    next_seq: u32,
    /// In-order bytes not yet framed (an incomplete message, or a partial start line).
    buf: Vec<u8>,
    /// Segments beyond a hole, sorted by distance from `next_seq`.
    ooo: Vec<(u32, Vec<u8>)>,
    ooo_bytes: usize,
    gap_since: Option<Timestamp>,
    last_seen: Timestamp,
    /// Framing progress of the message at the start of `buf`.
    scanner: MessageScanner,
}

/// Signed distance from `base` to `seq` (RFC 793 modular comparison).
#[inline]
fn seq_diff(seq: u32, base: u32) -> i64 {
    i64::from(seq.wrapping_sub(base) as i32)
}

impl Stream {
    fn new(next_seq: u32, now: Timestamp) -> Self {
        Stream {
            next_seq,
            buf: Vec::new(),
            ooo: Vec::new(),
            ooo_bytes: 0,
            gap_since: None,
            last_seen: now,
            scanner: MessageScanner::new(),
        }
    }

    fn buffered(&self) -> usize {
        self.buf.len() + self.ooo_bytes
    }

    /// Appends in-order bytes and frames complete messages out of the stream.
    fn accept(&mut self, data: &[u8], out: &mut Vec<Vec<u8>>, stats: &mut ReasmStats) {
        self.next_seq = self.next_seq.wrapping_add(data.len() as u32);
        if self.buf.is_empty() {
            // Common case: frame straight from the segment, keep only the tail.
            self.scanner.reset();
            let used = frame(data, &mut self.scanner, out, stats);
            self.buf
                .extend_from_slice(data.get(used..).unwrap_or_default());
        } else {
            self.buf.extend_from_slice(data);
            let used = frame(&self.buf, &mut self.scanner, out, stats);
            self.buf.drain(..used.min(self.buf.len()));
        }
    }

    /// Feeds a segment's data starting at `seq`.
    fn segment(
        &mut self,
        now: Timestamp,
        seq: u32,
        data: &[u8],
        out: &mut Vec<Vec<u8>>,
        stats: &mut ReasmStats,
    ) {
        if data.is_empty() {
            return;
        }
        let d = seq_diff(seq, self.next_seq);
        if d <= 0 {
            let skip = usize::try_from(-d).unwrap_or(usize::MAX);
            if skip >= data.len() {
                stats.tcp_retransmissions += 1;
                return;
            }
            if skip > 0 {
                stats.tcp_retransmissions += 1;
            }
            self.accept(data.get(skip..).unwrap_or_default(), out, stats);
            self.drain_ooo(out, stats);
            return;
        }
        let base = self.next_seq;
        let rel = |s: u32| s.wrapping_sub(base);
        let at = self.ooo.partition_point(|(s, _)| rel(*s) < rel(seq));
        if let Some((s, held)) = self.ooo.get(at) {
            if *s == seq && held.len() >= data.len() {
                stats.tcp_retransmissions += 1;
                return;
            }
        }
        stats.tcp_out_of_order += 1;
        self.ooo.insert(at, (seq, data.to_vec()));
        self.ooo_bytes += data.len();
        if self.gap_since.is_none() {
            self.gap_since = Some(now);
        }
    }

    /// Moves every out-of-order segment that now touches `next_seq` into the stream.
    fn drain_ooo(&mut self, out: &mut Vec<Vec<u8>>, stats: &mut ReasmStats) {
        while let Some((seq, _)) = self.ooo.first() {
            let d = seq_diff(*seq, self.next_seq);
            if d > 0 {
                break;
            }
            let (_, data) = self.ooo.remove(0);
            self.ooo_bytes = self.ooo_bytes.saturating_sub(data.len());
            let skip = usize::try_from(-d).unwrap_or(usize::MAX);
            match data.get(skip..) {
                Some(rest) if !rest.is_empty() => self.accept(rest, out, stats),
                _ => stats.tcp_retransmissions += 1,
            }
        }
        if self.ooo.is_empty() {
            self.gap_since = None;
        }
    }

    /// Gives up on the first hole: the message it cut is lost, framing resyncs after it.
    fn skip_gap(&mut self, now: Timestamp, out: &mut Vec<Vec<u8>>, stats: &mut ReasmStats) {
        let Some((seq, _)) = self.ooo.first() else {
            return;
        };
        let missing = seq.wrapping_sub(self.next_seq);
        stats.tcp_gaps += 1;
        stats.tcp_gap_bytes += u64::from(missing) + self.buf.len() as u64;
        self.buf.clear();
        self.scanner.reset();
        self.next_seq = *seq;
        self.drain_ooo(out, stats);
        if !self.ooo.is_empty() {
            self.gap_since = Some(now);
        }
    }

    fn enforce_limits(
        &mut self,
        now: Timestamp,
        max_bytes: usize,
        out: &mut Vec<Vec<u8>>,
        stats: &mut ReasmStats,
    ) {
        let stale = self
            .gap_since
            .is_some_and(|t| now.micros_since(t) > TCP_GAP_WAIT_US);
        if stale || self.ooo.len() > MAX_OOO_SEGMENTS {
            self.skip_gap(now, out, stats);
        }
        while self.buffered() > max_bytes && !self.ooo.is_empty() {
            self.skip_gap(now, out, stats);
        }
        if self.buf.len() > max_bytes {
            // A message larger than the cap (or endless junk that looked like one).
            stats.tcp_buffer_cap_drops += 1;
            self.buf.clear();
            self.scanner.reset();
        }
    }

    /// Stream is ending: use whatever was buffered beyond holes.
    fn flush(&mut self, now: Timestamp, out: &mut Vec<Vec<u8>>, stats: &mut ReasmStats) {
        while !self.ooo.is_empty() {
            self.skip_gap(now, out, stats);
        }
    }
}

/// Cuts complete SIP messages from the front of `data`; returns the bytes consumed.
/// `scanner` carries framing progress for the message at `data`'s start across calls.
fn frame(
    data: &[u8],
    scanner: &mut MessageScanner,
    out: &mut Vec<Vec<u8>>,
    stats: &mut ReasmStats,
) -> usize {
    let mut used = 0;
    loop {
        let mut rest = data.get(used..).unwrap_or_default();
        if rest.is_empty() {
            return used;
        }
        if !scanner.in_progress() {
            let r = resync(rest);
            stats.tcp_keepalive_bytes += r.keepalive as u64;
            stats.tcp_garbage_bytes += r.garbage as u64;
            if r.total() > 0 {
                scanner.reset();
                used += r.total();
                rest = data.get(used..).unwrap_or_default();
            }
            if !r.found {
                return used;
            }
        }
        match scanner.scan(rest) {
            Framing::Complete(n) => {
                out.push(rest.get(..n).unwrap_or_default().to_vec());
                stats.tcp_messages += 1;
                used += n;
                scanner.reset();
            }
            Framing::Incomplete => return used,
            Framing::Invalid => {
                // Drop the start line; resync finds the next one.
                let line = memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
                stats.tcp_invalid_messages += 1;
                stats.tcp_garbage_bytes += line as u64;
                used += line;
                scanner.reset();
            }
        }
    }
}

/// Reassembles TCP directions into SIP messages.
#[derive(Debug)]
pub struct TcpReassembler {
    limits: ReasmLimits,
    streams: HashMap<FlowKey, Stream>,
    last_sweep: Option<Timestamp>,
    stats: ReasmStats,
}

impl TcpReassembler {
    pub fn new(limits: &ReasmLimits) -> Self {
        TcpReassembler {
            limits: limits.clone(),
            streams: HashMap::new(),
            last_sweep: None,
            stats: ReasmStats::default(),
        }
    }

    /// Counters (only `tcp_*` are used here).
    /// Whether this direction is already being reassembled: its later segments
    /// are SIP even when they don't start with a SIP line.
    pub fn has_flow(&self, flow: &FlowKey) -> bool {
        self.streams.contains_key(flow)
    }

    pub fn stats(&self) -> &ReasmStats {
        &self.stats
    }

    /// Directions currently tracked.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Feeds one segment; pushes every complete SIP message found in the byte stream
    /// into `out`.
    ///
    /// A direction starts at its SYN, or at the first segment with data when the SYN
    /// was not captured. FIN/RST end it after its data was used.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        now: Timestamp,
        flow: FlowKey,
        seq: u32,
        syn: bool,
        fin: bool,
        rst: bool,
        payload: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) {
        self.stats.tcp_segments += 1;
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        if !self.streams.contains_key(&flow) {
            if rst || (payload.is_empty() && !syn) {
                return;
            }
            if !self.make_room(now) {
                self.stats.tcp_stream_cap_drops += 1;
                return;
            }
            self.streams.insert(flow, Stream::new(data_seq, now));
        }
        let Some(stream) = self.streams.get_mut(&flow) else {
            return;
        };
        if syn && data_seq != stream.next_seq {
            // A new connection on the same 4-tuple (not a retransmitted SYN).
            *stream = Stream::new(data_seq, now);
        }
        stream.last_seen = now;
        stream.segment(now, data_seq, payload, out, &mut self.stats);
        stream.enforce_limits(now, self.limits.max_tcp_stream_bytes, out, &mut self.stats);
        if fin || rst {
            stream.flush(now, out, &mut self.stats);
            self.streams.remove(&flow);
            self.stats.tcp_streams_closed += 1;
        }
    }

    /// Forgets directions idle for longer than `tcp_idle_timeout`. Their unframed
    /// bytes are counted as gap bytes.
    pub fn expire(&mut self, now: Timestamp) {
        let idle = duration_micros(self.limits.tcp_idle_timeout);
        let stats = &mut self.stats;
        self.streams.retain(|_, s| {
            let keep = now.micros_since(s.last_seen) <= idle;
            if !keep {
                stats.tcp_streams_expired += 1;
                stats.tcp_gap_bytes += s.buffered() as u64;
            }
            keep
        });
        self.last_sweep = Some(now);
    }

    fn make_room(&mut self, now: Timestamp) -> bool {
        if self.streams.len() < self.limits.max_tcp_streams {
            return true;
        }
        // Sweeping 10k streams per new flow under a flood would be the real DoS.
        let due = self
            .last_sweep
            .is_none_or(|t| now.micros_since(t) >= SWEEP_INTERVAL_US);
        if due {
            self.expire(now);
        }
        self.streams.len() < self.limits.max_tcp_streams
    }
}

#[cfg(test)]
mod tests;
