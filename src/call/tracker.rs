//! The tracker: packets in, call events out. Pure: no I/O, no clock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

use crate::reasm::framing::{self, Framing};
use crate::reasm::{Defragmenter, FlowKey, TcpReassembler};
use crate::rtp::codec::{decode_g711, Codec};
use crate::rtp::dtmf::{parse_event, DtmfDetector};
use crate::rtp::packet::{self as rtp_packet, RtpError};
use crate::rtp::stream::{Ordered, RtpStream};
use crate::sip::sdp::{self, Direction as SdpDirection};
use crate::sip::{self, Message, Method, StartLine};
use crate::time::Timestamp;
use crate::wire::hep::{self, HepPacket, HepRepr, HepTransport, ProtoType};
use crate::wire::{self, LinkType, Transport};

use super::dialog::{push_digit, Call, Forced};
use super::media::{codec_of, Anchor, CallMedia, Leg, SideSdp, REANCHOR_SAMPLES, SAMPLE_RATE};
use super::record::{CallRecord, EndReason};
use super::{CallHandle, CallState, Event, Side, Stats, TrackerConfig, Update};

const HOUSEKEEPING_US: i64 = 1_000_000;
/// A driver that stops draining must not make us grow without bound; audio is
/// what we shed first, call lifecycle events are never dropped.
const MAX_QUEUED_MEDIA: usize = 100_000;
const MAX_MEDIA_INDEX: usize = 400_000;

pub struct Tracker {
    cfg: TrackerConfig,
    calls: HashMap<CallHandle, Call>,
    by_call_id: HashMap<Box<[u8]>, CallHandle>,
    /// Address where a side receives audio → (call, that side).
    media_index: HashMap<SocketAddr, (CallHandle, Side)>,
    timers: BinaryHeap<Reverse<(Timestamp, CallHandle)>>,
    ended: HashMap<Box<[u8]>, Timestamp>,
    ended_order: VecDeque<(Timestamp, Box<[u8]>)>,
    events: VecDeque<Event>,
    queued_media: usize,
    defrag: Defragmenter,
    tcp: TcpReassembler,
    tcp_out: Vec<Vec<u8>>,
    next_handle: u64,
    now: Timestamp,
    next_housekeeping: Option<Timestamp>,
    stats: Stats,
}

impl Tracker {
    pub fn new(cfg: TrackerConfig) -> Self {
        Tracker {
            defrag: Defragmenter::new(&cfg.reasm),
            tcp: TcpReassembler::new(&cfg.reasm),
            cfg,
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            media_index: HashMap::new(),
            timers: BinaryHeap::new(),
            ended: HashMap::new(),
            ended_order: VecDeque::new(),
            events: VecDeque::new(),
            queued_media: 0,
            tcp_out: Vec::new(),
            next_handle: 1,
            now: Timestamp::default(),
            next_housekeeping: None,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn reasm_stats(&self) -> (&crate::reasm::ReasmStats, &crate::reasm::ReasmStats) {
        (self.defrag.stats(), self.tcp.stats())
    }

    /// What is known of an open call now, as its record would read if it
    /// ended here; the daemon keeps this on disk so a crash loses no call.
    pub fn snapshot(&self, call: CallHandle) -> Option<CallRecord> {
        let c = self.calls.get(&call)?;
        let forced = Forced::new(EndReason::CrashRecovered, self.now, c);
        let mut rec = c.finish(&self.cfg, Some(forced));
        rec.end_reason = EndReason::CrashRecovered;
        Some(rec)
    }

    /// Timer settings may change while calls are open (a config reload); every
    /// call's next deadline is worked out from them when its timer fires.
    pub fn set_timers(&mut self, timers: &TrackerConfig) {
        self.cfg.no_response_us = timers.no_response_us;
        self.cfg.ring_timeout_us = timers.ring_timeout_us;
        self.cfg.rtp_timeout_us = timers.rtp_timeout_us;
        self.cfg.max_duration_us = timers.max_duration_us;
        self.cfg.bye_timeout_us = timers.bye_timeout_us;
    }

    /// The Call-ID of an open call, for logs about it.
    pub fn call_id(&self, call: CallHandle) -> Option<String> {
        let c = self.calls.get(&call)?;
        Some(String::from_utf8_lossy(&c.call_id).into_owned())
    }

    /// Open calls counted by state.
    pub fn calls_by_state(&self) -> [(CallState, u64); 3] {
        let mut out = CallState::ALL.map(|st| (st, 0u64));
        for c in self.calls.values() {
            let st = if c.answered_at.is_some() {
                CallState::Answered
            } else if c.ringing_at.is_some() {
                CallState::Ringing
            } else {
                CallState::Trying
            };
            for (s, n) in out.iter_mut() {
                if *s == st {
                    *n += 1;
                }
            }
        }
        out
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front();
        if let Some(Event::Media { .. }) = ev {
            self.queued_media = self.queued_media.saturating_sub(1);
        }
        ev
    }

    /// The next instant `handle_timeout` has work to do. Housekeeping (expiring
    /// reassembly state, flushing reorder buffers) is not a timer: it runs whenever
    /// time passes its mark, so a capture with a gap of years costs one step.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
    }

    /// One captured frame of the given link type.
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
        match captured {
            Some(t)
                if t.micros().abs_diff(now.micros()) <= self.cfg.hep_max_skew_us.unsigned_abs() =>
            {
                t
            }
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
        if let Some(&(call, receiver)) = self.media_index.get(&dst) {
            return self.handle_rtp(now, call, receiver.other(), src, payload, true);
        }
        if let Some(&(call, side)) = self.media_index.get(&src) {
            return self.handle_rtp(now, call, side, src, payload, false);
        }
        self.stats.rtp_unmatched += 1;
    }

    /// Closes every call still open, e.g. at the end of a replayed capture
    /// (`CaptureEnd`, ending each call at its last packet) or when the daemon
    /// stops (`Shutdown`, ending each at `now`: see `Forced::new`). Calls that
    /// already ended by signalling keep their own reason and end time.
    pub fn close_all(&mut self, now: Timestamp, reason: EndReason) {
        self.advance(now);
        let mut handles: Vec<CallHandle> = self.calls.keys().copied().collect();
        handles.sort();
        for h in handles {
            self.end_call(h, Some(reason));
        }
        self.timers.clear();
        self.next_housekeeping = None;
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
        if let Some(&(call, receiver)) = self.media_index.get(&dst) {
            return self.handle_rtp(now, call, receiver.other(), src, payload, true);
        }
        if let Some(&(call, side)) = self.media_index.get(&src) {
            return self.handle_rtp(now, call, side, src, payload, false);
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
        ) {
            self.stats.sip_non_call += 1;
            return;
        }
        let from = msg.from();
        let to = msg.to();
        let from_tag = from.as_ref().and_then(|f| f.tag);
        let to_tag = to.as_ref().and_then(|t| t.tag);

        let handle = match self.by_call_id.get(call_id) {
            Some(&h) => h,
            None => {
                if self.ended.contains_key(call_id) {
                    self.stats.sip_after_end += 1;
                    return;
                }
                // A response to an INVITE we did not see still tells us a call happened.
                let starts = method == Method::Invite && (code.is_some() || to_tag.is_none());
                if !starts {
                    self.stats.sip_orphans += 1;
                    return;
                }
                if self.calls.len() >= self.cfg.max_calls {
                    return self.stats.drop_reason("call_table_full");
                }
                self.start_call(now, call_id, &msg, src, dst)
            }
        };

        let fp = fingerprint(cseq.seq, method, code, from_tag, to_tag);
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.dedup.seen(fp) {
            self.stats.sip_duplicates += 1;
            return;
        }
        call.last_activity = call.last_activity.max(now);
        let _span =
            tracing::trace_span!("sip", call_id = %String::from_utf8_lossy(call_id)).entered();

        let m = Incoming {
            now,
            handle,
            msg: &msg,
            method,
            from_tag,
            to_tag,
        };
        match code {
            None => self.on_request(&m, cseq.seq),
            Some(code) => self.on_response(&m, code),
        }
        self.schedule(handle);
    }

    fn start_call(
        &mut self,
        now: Timestamp,
        call_id: &[u8],
        msg: &Message<'_>,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> CallHandle {
        let handle = CallHandle(self.next_handle);
        self.next_handle += 1;
        let mut call = Call::new(handle, call_id, now);
        let is_request = matches!(msg.start(), StartLine::Request { .. });
        // A response travels callee → caller.
        let (caller_addr, callee_addr) = if is_request { (src, dst) } else { (dst, src) };
        call.sip_src = Some(caller_addr);
        call.sip_dst = Some(callee_addr);
        if let Some(from) = msg.from() {
            call.from_raw = from.uri.user.map(lossy);
            call.from_display = from.display.map(|d| lossy(d).trim_matches('"').to_string());
            call.add_caller_tag(from.tag);
        }
        let ruri_user = match msg.start() {
            StartLine::Request { uri, .. } => {
                sip::Uri::parse(uri).ok().and_then(|u| u.user.map(lossy))
            }
            StartLine::Response { .. } => None,
        };
        call.to_raw = ruri_user.or_else(|| msg.to().and_then(|t| t.uri.user.map(lossy)));
        self.calls.insert(handle, call);
        self.by_call_id.insert(call_id.into(), handle);
        self.stats.calls_started += 1;
        tracing::debug!(call_id = %String::from_utf8_lossy(call_id), "call started");
        self.events.push_back(Event::CallStarted {
            call: handle,
            call_id: String::from_utf8_lossy(call_id).into_owned(),
            at: now,
        });
        handle
    }

    fn on_request(&mut self, m: &Incoming<'_, '_>, cseq: u32) {
        let Incoming {
            now,
            handle,
            msg,
            method,
            from_tag,
            to_tag,
        } = *m;
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        match method {
            Method::Invite if to_tag.is_none() => {
                // Initial INVITE, or its retry after 401/407 with a higher CSeq:
                // the same call goes on.
                call.add_caller_tag(from_tag);
                if cseq > call.invite_cseq {
                    call.invite_cseq = cseq;
                    if call.answered_at.is_none() {
                        if let Some((code, _)) = call.failure {
                            if call.cancel_at.is_none() && code != 487 {
                                call.failure = None;
                            }
                        }
                    }
                }
            }
            Method::Cancel if call.answered_at.is_none() && call.cancel_at.is_none() => {
                call.cancel_at = Some(now);
                call.answered_elsewhere = msg.reason_cause().is_some_and(|(proto, cause)| {
                    proto.eq_ignore_ascii_case(b"SIP") && cause == 200
                });
            }
            Method::Bye if call.bye.is_none() => {
                let by = call.side_of_from_tag(from_tag);
                call.bye = Some((now, by));
                tracing::debug!(call_id = %String::from_utf8_lossy(&call.call_id), by = ?by, "BYE");
            }
            Method::Info => {
                if let Some(digit) = sip_info_digit(msg) {
                    call.push_dtmf(digit);
                }
            }
            _ => {}
        }
        if let Some(body) = msg.sdp() {
            let side = call.side_of_from_tag(from_tag);
            self.apply_sdp(now, handle, side, body);
        }
    }

    fn on_response(&mut self, m: &Incoming<'_, '_>, code: u16) {
        let Incoming {
            now,
            handle,
            msg,
            method,
            from_tag,
            to_tag,
        } = *m;
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        // The body of a response is the responder's: the side opposite the request's sender.
        let responder = call.side_of_from_tag(from_tag).other();
        match method {
            Method::Invite if call.answered_at.is_none() => {
                call.got_response = true;
                match code {
                    101..=199
                        if call.ringing_at.is_none() => {
                            call.ringing_at = Some(now);
                            self.events.push_back(Event::CallRinging {
                                call: handle,
                                at: now,
                            });
                        }
                    200..=299 => {
                        call.answered_at = Some(now);
                        call.answer_code = code;
                        call.answer_tag = to_tag.map(Into::into);
                        call.answer_contact = msg.contact().and_then(|c| c.uri.user.map(lossy));
                        tracing::debug!(call_id = %String::from_utf8_lossy(&call.call_id), "answered");
                        self.events.push_back(Event::CallAnswered {
                            call: handle,
                            at: now,
                        });
                    }
                    401 | 407 => {}
                    300..=699
                        if call.failure.is_none() => {
                            call.failure = Some((code, now));
                        }
                    _ => {}
                }
            }
            Method::Invite
                // A re-INVITE's answer, or another fork's late 2xx: the first answer stands.
                if (200..300).contains(&code) => {
                    let other_fork = match (&call.answer_tag, to_tag) {
                        (Some(a), Some(t)) => **a != *t,
                        _ => false,
                    };
                    if other_fork {
                        return;
                    }
                }
            Method::Bye
                if (200..300).contains(&code) && call.bye.is_some() && call.bye_confirmed.is_none()
                => {
                    call.bye_confirmed = Some(now);
                }
            _ => {}
        }
        // Only the answering branch's media counts once a fork has answered.
        let from_answer_branch = match (&call.answer_tag, to_tag) {
            (Some(a), Some(t)) => **a == *t,
            _ => true,
        };
        if from_answer_branch && (100..300).contains(&code) {
            if let Some(body) = msg.sdp() {
                self.apply_sdp(now, handle, responder, body);
            }
        }
    }

    fn apply_sdp(&mut self, now: Timestamp, handle: CallHandle, side: Side, body: &[u8]) {
        let parsed = match sdp::parse(body) {
            Ok(s) => s,
            Err(e) => return self.stats.drop_reason(e.reason()),
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        call.media.sdp[side.index()].update(&parsed);
        let Some(audio) = parsed.audio() else { return };
        let addr = audio.effective_connection(&parsed);
        let dir = audio.effective_direction(&parsed);
        let held = matches!(addr, Some(a) if a.is_unspecified())
            || matches!(dir, SdpDirection::SendOnly | SdpDirection::Inactive);
        if call.answered_at.is_some() && held != call.on_hold[side.index()] {
            call.on_hold[side.index()] = held;
            call.ever_held |= held;
            let update = if held {
                Update::Hold { by: side }
            } else {
                Update::Resume { by: side }
            };
            self.events.push_back(Event::CallUpdated {
                call: handle,
                at: now,
                update,
            });
        }
        if let Some(ip) = addr.filter(|a| !a.is_unspecified()) {
            if audio.port != 0 {
                self.register_media(handle, SocketAddr::new(ip, audio.port), side);
            }
        }
    }

    fn register_media(&mut self, handle: CallHandle, addr: SocketAddr, side: Side) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.media.addrs.contains(&(addr, side)) {
            return;
        }
        if call.media.addrs.len() >= self.cfg.max_media_addrs_per_call
            || self.media_index.len() >= MAX_MEDIA_INDEX
        {
            return self.stats.drop_reason("media_address_cap");
        }
        call.media.addrs.push((addr, side));
        // A newer call owns a reused port; the old call just stops matching it.
        if let Some((old, _)) = self.media_index.insert(addr, (handle, side)) {
            if old != handle {
                if let Some(c) = self.calls.get_mut(&old) {
                    c.media.addrs.retain(|(a, _)| *a != addr);
                }
            }
        }
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
        let hdr = match rtp_packet::parse(payload) {
            Ok(h) => h,
            Err(RtpError::Rtcp { .. }) => {
                self.stats.media_control_packets += 1;
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
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.media_end().is_some_and(|end| now >= end) {
            self.stats.rtp_after_end += 1;
            return;
        }
        let leg_index = sender.index();
        let Some(leg) = call.media.legs.get_mut(leg_index) else {
            return;
        };
        let new_source = leg.src != Some(src);
        if !leg.accepts(src, now) {
            self.stats.rtp_ignored_source += 1;
            return;
        }
        // Symmetric RTP: the sender receives where it sends from, even behind NAT.
        // Only a leg's first packet from a source can teach us that address.
        if new_source && to_known_address && !self.media_index.contains_key(&src) {
            self.register_media(handle, src, sender);
        }
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let Some(leg) = call.media.legs.get_mut(leg_index) else {
            return;
        };
        leg.last_seen = Some(now);
        leg.packets += 1;
        call.last_activity = call.last_activity.max(now);
        if call.answered_at.is_some_and(|a| now >= a) {
            call.media.last_rtp = Some(now);
        }
        let parts = (&mut self.events, &mut self.queued_media, &mut self.stats);
        with_leg(parts, call, sender, |stream, sink| {
            stream.push(now, &hdr, &mut |o| sink.deliver(&o));
        });
    }

    fn schedule(&mut self, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let at = call.closing(&self.cfg).at;
        if call.scheduled.is_none_or(|s| at < s) {
            call.scheduled = Some(at);
            self.timers.push(Reverse((at, handle)));
        }
    }

    /// Moves time forward to `now`: fires due timers and housekeeping.
    fn advance(&mut self, now: Timestamp) {
        // Captures from several files or interfaces can step back a little; time never does.
        let now = now.max(self.now);
        self.now = now;
        if self.next_housekeeping.is_none() {
            self.next_housekeeping = Some(now.saturating_add_micros(HOUSEKEEPING_US));
        }
        while let Some(&Reverse((at, handle))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(call) = self.calls.get_mut(&handle) else {
                continue;
            };
            if call.scheduled != Some(at) {
                continue;
            }
            call.scheduled = None;
            let closing = call.closing(&self.cfg);
            if closing.at <= now {
                self.end_call(handle, None);
            } else {
                call.scheduled = Some(closing.at);
                self.timers.push(Reverse((closing.at, handle)));
            }
        }
        if self.next_housekeeping.is_some_and(|t| t <= now) {
            self.housekeeping(now);
            self.next_housekeeping = Some(now.saturating_add_micros(HOUSEKEEPING_US));
        }
    }

    fn housekeeping(&mut self, now: Timestamp) {
        self.defrag.expire(now);
        self.tcp.expire(now);
        while let Some((t, _)) = self.ended_order.front() {
            let expired = now.micros_since(*t) > self.cfg.ended_memory_us
                || self.ended_order.len() > self.cfg.max_ended_memory;
            if !expired {
                break;
            }
            if let Some((t, id)) = self.ended_order.pop_front() {
                if self.ended.get(&id) == Some(&t) {
                    self.ended.remove(&id);
                }
            }
        }
        let handles: Vec<CallHandle> = self.calls.keys().copied().collect();
        for handle in handles {
            self.flush_media(handle, now, false);
        }
    }

    /// Releases audio the reorder buffers held back.
    fn flush_media(&mut self, handle: CallHandle, now: Timestamp, force: bool) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        for sender in [Side::Caller, Side::Callee] {
            let parts = (&mut self.events, &mut self.queued_media, &mut self.stats);
            with_leg(parts, call, sender, |stream, sink| {
                stream.flush(now, force, &mut |o| sink.deliver(&o));
            });
        }
    }

    fn end_call(&mut self, handle: CallHandle, forced: Option<EndReason>) {
        let now = self.now;
        self.flush_media(handle, now, true);
        let Some(call) = self.calls.remove(&handle) else {
            return;
        };
        self.by_call_id.remove(&call.call_id);
        for (addr, _) in &call.media.addrs {
            if self
                .media_index
                .get(addr)
                .is_some_and(|(h, _)| *h == handle)
            {
                self.media_index.remove(addr);
            }
        }
        self.ended.insert(call.call_id.clone(), now);
        self.ended_order.push_back((now, call.call_id.clone()));
        let forced = forced.map(|reason| Forced::new(reason, now, &call));
        let record = call.finish(&self.cfg, forced);
        self.stats.calls_ended += 1;
        tracing::debug!(
            call_id = %record.call_id,
            outcome = record.outcome.as_str(),
            end_reason = record.end_reason.as_str(),
            "call ended"
        );
        self.events.push_back(Event::CallEnded {
            call: handle,
            record: Box::new(record),
        });
    }
}

/// A SIP message of a known call, as the dialog handlers see it.
#[derive(Clone, Copy)]
struct Incoming<'m, 'a> {
    now: Timestamp,
    handle: CallHandle,
    msg: &'m Message<'a>,
    /// The request's method, or for a response the method in its CSeq.
    method: Method<'a>,
    from_tag: Option<&'a [u8]>,
    to_tag: Option<&'a [u8]>,
}

/// Everything an ordered RTP packet may touch, borrowed apart from the tracker
/// and the leg's stream so the stream can hand packets out without copying.
struct MediaSink<'a> {
    handle: CallHandle,
    sender: Side,
    answered_at: Option<Timestamp>,
    media_end: Option<Timestamp>,
    events: &'a mut VecDeque<Event>,
    queued_media: &'a mut usize,
    stats: &'a mut Stats,
    dtmf: &'a mut String,
    sdp: &'a [SideSdp; 2],
    anchor: &'a mut Option<Anchor>,
    detector: &'a mut DtmfDetector,
    codec: &'a mut Option<&'static str>,
    unsupported: &'a mut Option<String>,
    encrypted: &'a mut bool,
    audio_seen: &'a mut bool,
}

/// Runs `f` with the sender's stream and a sink for what it releases.
fn with_leg<R>(
    t: (&mut VecDeque<Event>, &mut usize, &mut Stats),
    call: &mut Call,
    sender: Side,
    f: impl FnOnce(&mut RtpStream, &mut MediaSink<'_>) -> R,
) -> R {
    let (events, queued_media, stats) = t;
    let answered_at = call.answered_at;
    let media_end = call.media_end();
    let CallMedia {
        sdp,
        legs,
        codec,
        unsupported,
        encrypted,
        audio_seen,
        ..
    } = &mut call.media;
    let [caller, callee] = legs;
    let leg = match sender {
        Side::Caller => caller,
        Side::Callee => callee,
    };
    let Leg {
        stream,
        anchor,
        dtmf: detector,
        ..
    } = leg;
    let mut sink = MediaSink {
        handle: call.handle,
        sender,
        answered_at,
        media_end,
        events,
        queued_media,
        stats,
        dtmf: &mut call.dtmf,
        sdp,
        anchor,
        detector,
        codec,
        unsupported,
        encrypted,
        audio_seen,
    };
    f(stream, &mut sink)
}

impl MediaSink<'_> {
    fn deliver(&mut self, o: &Ordered<'_>) {
        let (codec, name) = codec_of(self.sdp, self.sender, o.pt);
        match codec {
            Codec::TelephoneEvent => {
                let Some(ev) = parse_event(o.payload) else {
                    return self.stats.drop_reason("rtp_bad_telephone_event");
                };
                if let Some(d) = self.detector.push(o.ext_ts, o.ext_seq, &ev) {
                    push_digit(self.dtmf, d.digit);
                }
                return;
            }
            Codec::Comfort => return,
            _ => {}
        }
        let Some(answered) = self.answered_at else {
            return; // early media is not recorded
        };
        if o.arrival < answered || self.media_end.is_some_and(|e| o.arrival >= e) {
            return;
        }
        // Decoding ciphertext as G.711 would record noise: say so instead.
        if self.sdp.iter().any(|s| s.encrypted) {
            *self.encrypted = true;
            return;
        }
        let mut samples = Vec::with_capacity(o.payload.len());
        if !decode_g711(codec, o.payload, &mut samples) {
            if self.unsupported.is_none() {
                *self.unsupported = Some(name.to_string());
            }
            return;
        }
        if self.codec.is_none() {
            *self.codec = Some(codec.name());
        }
        let by_arrival = o.arrival.micros_since(answered) * i64::from(SAMPLE_RATE) / 1_000_000;
        let placed = self
            .anchor
            .filter(|_| !o.ssrc_changed)
            .map(|a| a.offset + (o.ext_ts as i64).wrapping_sub(a.ext_ts as i64));
        let offset = match placed {
            Some(p) if (p - by_arrival).abs() <= REANCHOR_SAMPLES => p,
            _ => {
                *self.anchor = Some(Anchor {
                    ext_ts: o.ext_ts,
                    offset: by_arrival,
                });
                by_arrival
            }
        };
        let Ok(offset) = u64::try_from(offset) else {
            return;
        };
        *self.audio_seen = true;
        if *self.queued_media >= MAX_QUEUED_MEDIA {
            return self.stats.drop_reason("media_queue_full");
        }
        *self.queued_media += 1;
        self.events.push_back(Event::Media {
            call: self.handle,
            leg: self.sender,
            offset,
            sample_rate: SAMPLE_RATE,
            samples,
        });
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Identity of a message across retransmissions and capture points: the top Via
/// is left out because a proxy adds its own.
fn fingerprint(
    cseq: u32,
    method: Method<'_>,
    code: Option<u16>,
    from_tag: Option<&[u8]>,
    to_tag: Option<&[u8]>,
) -> u64 {
    let mut h = DefaultHasher::new();
    cseq.hash(&mut h);
    method.hash(&mut h);
    code.hash(&mut h);
    from_tag.hash(&mut h);
    to_tag.hash(&mut h);
    h.finish()
}

/// `application/dtmf-relay` INFO bodies: `Signal=5`.
fn sip_info_digit(msg: &Message<'_>) -> Option<char> {
    let ct = msg.content_type()?;
    if !ct.to_ascii_lowercase().starts_with(b"application/dtmf") {
        return None;
    }
    let body = std::str::from_utf8(msg.body()).ok()?;
    body.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("signal") {
            return None;
        }
        let c = v.trim().chars().next()?;
        (c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')).then_some(c)
    })
}
