//! RTCP matched to calls: muxed on the RTP address (RFC 5761) or on its own
//! port (the SDP's `a=rtcp:` port, else the RTP port + 1, RFC 3550 §11), and
//! what a call keeps of it per direction.
//!
//! Round trip. RFC 3550 §6.4.1 has the SR's sender compute RTT = A - LSR -
//! DLSR with A its own receive time; a passive observer has no such clock.
//! Seen from the capture point, an SR from side X captured at t1, echoed in
//! side Y's report captured at t2 with DLSR, gives the loop capture → Y →
//! capture: t2 - t1 - DLSR. The call's round trip is the sum of the two
//! loops when both sides report; with only one, that loop alone (a lower
//! bound: the capture point is then taken to sit beside the other side).

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::rtp::quality::RtcpView;
use crate::rtp::rtcp::{self, VoipMetrics, PT_SR, PT_XR, XR_VOIP_METRICS};
use crate::time::Timestamp;

use super::dialog::Call;
use super::tracker::Tracker;
use super::{CallHandle, Side, Stats};

/// Addresses in the RTCP index, all calls together; stale ones (of calls
/// that ended) are swept when it is full.
const MAX_RTCP_INDEX: usize = 200_000;

/// What one call kept of the RTCP it saw.
#[derive(Debug, Default)]
pub(crate) struct CallRtcp {
    /// Per direction, by the side that sends the RTP the reports are about.
    views: [Option<RtcpView>; 2],
    /// The last SR of each side: its NTP middle 32 bits and when it was captured.
    last_sr: [Option<(u32, Timestamp)>; 2],
    /// The loop capture point → side → capture point, milliseconds.
    loop_ms: [Option<f64>; 2],
}

impl CallRtcp {
    /// The reports about the RTP `sender` sent, with the call's round trip.
    pub fn view(&self, sender: Side) -> Option<RtcpView> {
        let mut v = self.views[sender.index()].clone()?;
        v.rtt_ms = match self.loop_ms {
            [Some(a), Some(b)] => Some(a + b),
            [Some(a), None] | [None, Some(a)] => Some(a),
            [None, None] => None,
        }
        .map(|ms| (ms * 1000.0).round() / 1000.0);
        Some(v)
    }

    fn view_mut(&mut self, about: Side) -> &mut RtcpView {
        self.views[about.index()].get_or_insert_with(RtcpView::default)
    }
}

impl Call {
    /// One RTCP datagram `sender` sent. Report blocks are taken only about
    /// the other side's current SSRC (or any, before its RTP is seen).
    pub(super) fn on_rtcp(&mut self, now: Timestamp, sender: Side, data: &[u8], stats: &mut Stats) {
        let about = sender.other();
        let (about_ssrc, clock_rate) = {
            let s = &self.media.leg(about).stream;
            (s.ssrc().map(|s| s.0), s.stats().clock_rate)
        };
        let rtcp = &mut self.media.rtcp;
        for packet in rtcp::compound(data) {
            let p = match packet {
                Ok(p) => p,
                Err(e) => return stats.drop_reason(e.reason()),
            };
            stats.rtcp_packets += 1;
            if let Some(info) = p.sender_info().filter(|_| p.packet_type() == PT_SR) {
                rtcp.last_sr[sender.index()] = Some((info.ntp_middle(), now));
            }
            for b in p.report_blocks() {
                if about_ssrc.is_some_and(|s| s != b.ssrc) {
                    continue;
                }
                rtcp.view_mut(about).add_block(&b, clock_rate);
                // The SR this block echoes, captured on its way to `sender`.
                if let Some((lsr, t_sr)) = rtcp.last_sr[about.index()] {
                    if b.lsr != 0 && b.lsr == lsr {
                        let dlsr_us = i64::from(b.dlsr) * 1_000_000 / 65_536;
                        let loop_us = now.micros_since(t_sr) - dlsr_us;
                        if loop_us >= 0 {
                            rtcp.loop_ms[sender.index()] = Some(loop_us as f64 / 1000.0);
                        }
                    }
                }
            }
            if p.packet_type() == PT_XR {
                for b in p.xr_blocks() {
                    if b.block_type != XR_VOIP_METRICS {
                        continue;
                    }
                    if let Some(m) = VoipMetrics::parse(b.content) {
                        if about_ssrc.is_none_or(|s| s == m.ssrc) {
                            rtcp.view_mut(about).xr = Some(m);
                        }
                    }
                }
            }
        }
    }
}

impl Tracker {
    /// RTCP ports of a media address the SDP gave: `a=rtcp:` or port + 1.
    pub(super) fn register_rtcp(&mut self, handle: CallHandle, addr: SocketAddr, side: Side) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let sdp = &call.media.sdp[side.index()];
        let port = match sdp.rtcp_port {
            Some(p) => p,
            None => match addr.port().checked_add(1) {
                Some(p) => p,
                None => return,
            },
        };
        if self.rtcp_index.len() >= MAX_RTCP_INDEX {
            let calls = &self.calls;
            self.rtcp_index.retain(|_, (h, _)| calls.contains_key(h));
            if self.rtcp_index.len() >= MAX_RTCP_INDEX {
                return self.stats.drop_reason("rtcp_address_cap");
            }
        }
        self.rtcp_index
            .insert(SocketAddr::new(addr.ip(), port), (handle, side));
    }

    /// RTCP on its own port, to or from an address a call's SDP implies;
    /// false when no open call owns either.
    pub(super) fn handle_rtcp_port(
        &mut self,
        now: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> bool {
        if !rtcp::looks_like_rtcp(payload) {
            return false;
        }
        let found = match self.rtcp_index.get(&dst) {
            Some(&(h, receiver)) => Some((h, receiver.other())),
            None => self.rtcp_index.get(&src).copied(),
        };
        let Some((handle, sender)) = found else {
            return false;
        };
        self.deliver_rtcp(now, handle, sender, payload)
    }

    /// Muxed or not, one RTCP datagram for `handle`; false if the call is gone.
    pub(super) fn deliver_rtcp(
        &mut self,
        now: Timestamp,
        handle: CallHandle,
        sender: Side,
        payload: &[u8],
    ) -> bool {
        self.stats.media_control_packets += 1;
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        call.on_rtcp(now, sender, payload, &mut self.stats);
        true
    }
}

/// Kept in the tracker beside `media_index`.
pub(super) type RtcpIndex = HashMap<SocketAddr, (CallHandle, Side)>;
