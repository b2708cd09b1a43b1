//! The tracker's ingress: frames and HEP messages decoded, IP defragmented, TCP
//! reassembled, and each datagram sorted into SIP, RTP or neither before the
//! call table (`tracker.rs`) sees it.

use std::net::{IpAddr, SocketAddr};

use crate::reasm::framing::{self, Framing};
use crate::reasm::FlowKey;
use crate::rtp::packet::{self as rtp_packet, RtpError, RtpPacket, Ssrc};
use crate::sip::{self, Method, StartLine};
use crate::time::Timestamp;
use crate::wire::hep::{self, HepPacket, HepRepr, HepTransport, ProtoType};
use crate::wire::{self, LinkType, Transport};

use super::tracker::{SipHead, Tracker};
use super::{CallHandle, Side};

impl Tracker {
    /// One captured frame of the given link type. Timers due before `now`
    /// fire first, each at its own instant.
    pub fn handle_frame(&mut self, now: Timestamp, link: LinkType, frame: &[u8]) {
        self.advance(now);
        self.stats.packets += 1;
        self.stats.bytes += frame.len() as u64;
        let ip = match wire::decode_link(link, frame) {
            Ok(ip) => ip,
            Err(e) => return self.stats.drop_reason(e.reason()),
        };
        let (src, dst, proto) = (ip.src, ip.dst, ip.proto);
        match ip.frag {
            Some(frag) => {
                let whole = self.defrag.push(now, src, dst, proto, &frag, ip.payload);
                if let Some(datagram) = whole {
                    self.handle_ip_payload(now, src, dst, proto, &datagram);
                }
            }
            None => self.handle_ip_payload(now, src, dst, proto, ip.payload),
        }
    }

    /// One HEP v1/v2/v3 message from a HEP listener; `now` is when it arrived.
    ///
    /// SIP goes to the call logic with the addresses and capture time the agent saw,
    /// so signalling from HEP and RTP from a live interface make one call.
    pub fn handle_hep(&mut self, now: Timestamp, datagram: &[u8]) {
        // Time moves to the agent's capture time (`route_hep`), not to arrival:
        // only the timers due by arrival fire first.
        self.fire_due(now);
        self.route_hep(now, datagram);
    }

    /// HEP from the listener or found in a capture (`now` is then the frame's time).
    fn route_hep(&mut self, now: Timestamp, datagram: &[u8]) {
        self.stats.hep_messages += 1;
        let repr = match HepPacket::new_checked(datagram).and_then(|p| HepRepr::parse(&p)) {
            Ok(r) => r,
            Err(e) => return self.stats.drop_reason(e.reason()),
        };
        let mut scratch = Vec::new();
        let payload = match repr.payload(&mut scratch) {
            Ok(p) => p,
            Err(e) => return self.stats.drop_reason(e.reason()),
        };
        let ts = self.hep_time(now, repr.timestamp);
        self.advance(ts);
        match repr.proto_type {
            ProtoType::Sip => {
                self.stats.hep_sip += 1;
                self.handle_hep_sip(ts, &repr, payload);
            }
            ProtoType::Rtp => {
                self.stats.hep_rtp += 1;
                self.handle_hep_rtp(ts, repr.src, repr.dst, payload);
            }
            _ => self.stats.hep_other += 1,
        }
    }

    /// Agents that capture TCP segments (heplify) may put several SIP messages in
    /// one HEP payload; each goes on its own.
    fn handle_hep_sip(&mut self, ts: Timestamp, repr: &HepRepr<'_>, payload: &[u8]) {
        let mut rest = payload;
        if repr.transport == HepTransport::Tcp {
            while let Framing::Complete(n) = framing::sip_message_len(rest) {
                let Some((msg, tail)) = rest.split_at_checked(n) else {
                    break;
                };
                if tail.is_empty() || n == 0 {
                    break;
                }
                self.handle_sip(ts, repr.src, repr.dst, msg);
                rest = tail;
            }
        }
        self.handle_sip(ts, repr.src, repr.dst, rest);
    }

    /// The agent's capture time when its clock agrees with ours, else arrival time.
    fn hep_time(&mut self, now: Timestamp, captured: Option<Timestamp>) -> Timestamp {
        let limit = u64::try_from(self.cfg.hep_max_skew.as_micros()).unwrap_or(u64::MAX);
        match captured {
            Some(t) if t.micros().abs_diff(now.micros()) <= limit => t,
            Some(t) => {
                self.stats.hep_clock_skew += 1;
                tracing::trace!(
                    skew_us = t.micros().saturating_sub(now.micros()),
                    "HEP clock skew"
                );
                now
            }
            None => now,
        }
    }

    fn is_hep_datagram(&self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> bool {
        let ports = &self.cfg.hep_ports;
        (ports.contains(&src.port()) || ports.contains(&dst.port())) && hep::looks_like_hep(payload)
    }

    /// HEP-carried RTP is matched to calls by address like captured RTP, but is
    /// never taken for SIP or HEP again (a HEP payload must not recurse).
    fn handle_hep_rtp(&mut self, now: Timestamp, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        if !self.handle_media(now, src, dst, payload) {
            self.stats.rtp_unmatched += 1;
        }
    }

    fn handle_ip_payload(
        &mut self,
        now: Timestamp,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        payload: &[u8],
    ) {
        match wire::decode_transport(proto, payload) {
            Ok(Transport::Udp {
                src_port,
                dst_port,
                payload,
            }) => {
                self.stats.udp_packets += 1;
                let src = SocketAddr::new(src, src_port);
                let dst = SocketAddr::new(dst, dst_port);
                self.handle_udp(now, src, dst, payload);
            }
            Ok(Transport::Tcp {
                src_port,
                dst_port,
                seq,
                syn,
                fin,
                rst,
                payload,
            }) => {
                self.stats.tcp_segments += 1;
                let flow = FlowKey {
                    src: SocketAddr::new(src, src_port),
                    dst: SocketAddr::new(dst, dst_port),
                };
                let sip_port = self.is_sip_port(src_port) || self.is_sip_port(dst_port);
                let known = self.tcp.has_flow(&flow);
                let sniffed =
                    !payload.is_empty() && self.cfg.detect_any_port && sip::looks_like_sip(payload);
                if !(sip_port || known || sniffed) {
                    self.stats.other_packets += 1;
                    return;
                }
                let mut out = std::mem::take(&mut self.tcp_out);
                self.tcp
                    .push(now, flow, seq, syn, fin, rst, payload, &mut out);
                for msg in out.drain(..) {
                    self.handle_sip(now, flow.src, flow.dst, &msg);
                }
                self.tcp_out = out;
            }
            Err(e) => self.stats.drop_reason(e.reason()),
        }
    }

    fn is_sip_port(&self, port: u16) -> bool {
        self.cfg.sip_ports.contains(&port)
    }

    fn handle_udp(&mut self, now: Timestamp, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        if self.is_hep_datagram(src, dst, payload) {
            return self.route_hep(now, payload);
        }
        if self.is_sip_port(src.port()) || self.is_sip_port(dst.port()) {
            return self.handle_sip(now, src, dst, payload);
        }
        if self.handle_media(now, src, dst, payload) {
            return;
        }
        if self.handle_rtcp_port(now, src, dst, payload) {
            return;
        }
        if self.cfg.detect_any_port && sip::looks_like_sip(payload) {
            return self.handle_sip(now, src, dst, payload);
        }
        if rtp_packet::looks_like_rtp(payload) {
            self.stats.rtp_unmatched += 1;
        } else {
            self.stats.other_packets += 1;
        }
    }

    /// A datagram to or from an address a call's SDP announced goes to that
    /// call as media; false when no call owns either address.
    fn handle_media(
        &mut self,
        now: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> bool {
        let ssrc = payload
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map(|b| Ssrc(u32::from_be_bytes(b)));
        let Some(route) = self.route_media(src, dst, ssrc) else {
            return false;
        };
        let to_known = route.to_known_address;
        self.handle_rtp(now, route.call, route.sender, src, payload, to_known);
        true
    }

    /// One UDP datagram that belongs to a call's media; `sender` is the side that sent it.
    fn handle_rtp(
        &mut self,
        now: Timestamp,
        handle: CallHandle,
        sender: Side,
        src: SocketAddr,
        payload: &[u8],
        to_known_address: bool,
    ) {
        let packet = match RtpPacket::new_checked(payload) {
            Ok(p) => p,
            Err(RtpError::Rtcp { .. }) => {
                self.deliver_rtcp(now, handle, sender, payload);
                return;
            }
            Err(e) => {
                // ICE/STUN and DTLS share the media port (RFC 7983 demultiplexing).
                if matches!(payload.first(), Some(0..=3 | 20..=63)) {
                    self.stats.media_control_packets += 1;
                    return;
                }
                return self.stats.drop_reason(e.reason());
            }
        };
        self.stats.rtp_packets += 1;
        self.deliver_rtp(now, handle, sender, src, packet, to_known_address);
    }

    fn handle_sip(&mut self, now: Timestamp, src: SocketAddr, dst: SocketAddr, data: &[u8]) {
        // CRLF pings (RFC 5626) and the "jaK\0" of eXosip-based phones.
        if data.len() < 16 && !data.starts_with(b"SIP/") {
            self.stats.sip_keepalives += 1;
            return;
        }
        let msg = match sip::parse(data) {
            Ok(m) => m,
            Err(e) => return self.stats.drop_reason(e.reason()),
        };
        self.stats.sip_messages += 1;
        let (Some(call_id), Some(cseq)) = (msg.call_id(), msg.cseq()) else {
            return self.stats.drop_reason("sip_missing_call_id_or_cseq");
        };
        let (method, code) = match msg.start() {
            StartLine::Request { method, .. } => (*method, None),
            StartLine::Response { code, .. } => (cseq.method, Some(*code)),
        };
        if !matches!(
            method,
            Method::Invite
                | Method::Ack
                | Method::Bye
                | Method::Cancel
                | Method::Update
                | Method::Prack
                | Method::Info
                | Method::Refer
        ) {
            self.stats.sip_non_call += 1;
            return;
        }
        let head = SipHead {
            call_id,
            cseq: cseq.seq,
            method,
            code,
        };
        self.on_sip(now, src, dst, &msg, &head);
    }
}
