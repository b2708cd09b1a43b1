//! Bounded reassembly: IP fragments back into datagrams, TCP byte streams back into
//! SIP messages.
//!
//! Sans-IO: time is the capture timestamp handed in. Every table and buffer has a cap
//! from `ReasmLimits`; hitting one drops data and counts it in `ReasmStats`.
//!
//! Stats: `Defragmenter` and `TcpReassembler` each own a `ReasmStats` and only touch
//! their own counters (`frag_*`/`fragments`/`reassembled` vs `tcp_*`); a caller that
//! wants one view sums them with `ReasmStats::merge`.

mod defrag;
pub mod framing;
mod tcp;

use std::net::SocketAddr;
use std::time::Duration;

pub use defrag::Defragmenter;
pub use tcp::{TcpReassembler, MAX_OOO_SEGMENTS, TCP_GAP_WAIT_US};

/// Caps and timeouts for reassembly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasmLimits {
    /// Datagrams being reassembled at once.
    pub max_frag_sets: usize,
    /// Largest reassembled datagram payload.
    pub max_frag_bytes: usize,
    /// A datagram whose first piece is older than this is abandoned.
    pub frag_timeout: Duration,
    /// TCP directions tracked at once.
    pub max_tcp_streams: usize,
    /// Bytes buffered per direction (unframed in-order bytes plus out-of-order segments).
    pub max_tcp_stream_bytes: usize,
    /// A direction with no segment for this long is forgotten.
    pub tcp_idle_timeout: Duration,
}

impl Default for ReasmLimits {
    fn default() -> Self {
        ReasmLimits {
            max_frag_sets: 1024,
            max_frag_bytes: 64 * 1024,
            frag_timeout: Duration::from_secs(30),
            max_tcp_streams: 10_000,
            max_tcp_stream_bytes: 256 * 1024,
            tcp_idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Reassembly counters (monotonic).
#[derive(Default, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReasmStats {
    /// IP fragments pushed.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Incomplete datagrams abandoned by timeout.
    pub frag_timeouts: u64,
    /// Incomplete datagrams evicted (or fragments refused) because `max_frag_sets` was reached.
    pub frag_cap_drops: u64,
    /// Fragments reaching past `max_frag_bytes` (their datagram is dropped).
    pub frag_oversize: u64,
    /// Fragments overlapping earlier ones with different bytes (datagram dropped).
    pub frag_overlaps: u64,
    /// Fragments repeating bytes already held (ignored).
    pub frag_duplicates: u64,
    /// Fragments with inconsistent lengths or too many pieces (datagram dropped).
    pub frag_bad: u64,

    /// TCP segments pushed.
    pub tcp_segments: u64,
    /// Segments (or parts) carrying bytes already consumed: dropped.
    pub tcp_retransmissions: u64,
    /// Segments that arrived ahead of a hole and were buffered.
    pub tcp_out_of_order: u64,
    /// Holes that never filled and were skipped.
    pub tcp_gaps: u64,
    /// Bytes lost to skipped holes (missing bytes plus the broken message before them).
    pub tcp_gap_bytes: u64,
    /// New directions refused because `max_tcp_streams` was reached.
    pub tcp_stream_cap_drops: u64,
    /// Times a direction's unframed bytes exceeded `max_tcp_stream_bytes` and were dropped.
    pub tcp_buffer_cap_drops: u64,
    /// Bytes skipped while looking for a SIP start line.
    pub tcp_garbage_bytes: u64,
    /// CRLF keep-alive bytes skipped.
    pub tcp_keepalive_bytes: u64,
    /// Start lines whose message could not be framed (bad Content-Length, huge headers).
    pub tcp_invalid_messages: u64,
    /// Complete SIP messages emitted.
    pub tcp_messages: u64,
    /// Directions forgotten after `tcp_idle_timeout`.
    pub tcp_streams_expired: u64,
    /// Directions closed by FIN or RST.
    pub tcp_streams_closed: u64,
}

impl ReasmStats {
    /// Adds `other`'s counters into `self`.
    pub fn merge(&mut self, other: &ReasmStats) {
        let ReasmStats {
            fragments,
            reassembled,
            frag_timeouts,
            frag_cap_drops,
            frag_oversize,
            frag_overlaps,
            frag_duplicates,
            frag_bad,
            tcp_segments,
            tcp_retransmissions,
            tcp_out_of_order,
            tcp_gaps,
            tcp_gap_bytes,
            tcp_stream_cap_drops,
            tcp_buffer_cap_drops,
            tcp_garbage_bytes,
            tcp_keepalive_bytes,
            tcp_invalid_messages,
            tcp_messages,
            tcp_streams_expired,
            tcp_streams_closed,
        } = other;
        self.fragments += fragments;
        self.reassembled += reassembled;
        self.frag_timeouts += frag_timeouts;
        self.frag_cap_drops += frag_cap_drops;
        self.frag_oversize += frag_oversize;
        self.frag_overlaps += frag_overlaps;
        self.frag_duplicates += frag_duplicates;
        self.frag_bad += frag_bad;
        self.tcp_segments += tcp_segments;
        self.tcp_retransmissions += tcp_retransmissions;
        self.tcp_out_of_order += tcp_out_of_order;
        self.tcp_gaps += tcp_gaps;
        self.tcp_gap_bytes += tcp_gap_bytes;
        self.tcp_stream_cap_drops += tcp_stream_cap_drops;
        self.tcp_buffer_cap_drops += tcp_buffer_cap_drops;
        self.tcp_garbage_bytes += tcp_garbage_bytes;
        self.tcp_keepalive_bytes += tcp_keepalive_bytes;
        self.tcp_invalid_messages += tcp_invalid_messages;
        self.tcp_messages += tcp_messages;
        self.tcp_streams_expired += tcp_streams_expired;
        self.tcp_streams_closed += tcp_streams_closed;
    }
}

/// One direction of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

impl FlowKey {
    pub fn reversed(self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
        }
    }
}
