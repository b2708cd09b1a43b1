//! The tracker: packets in, call events out. Pure: no I/O, no clock.
//!
//! This file is the call table: which call a message or a media address belongs
//! to, the timers, and the end of calls. Decoding and sorting packets is
//! `ingress.rs`; what a call does with its messages is `Call`'s own.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::reasm::{Defragmenter, TcpReassembler};
use crate::rtp::{RtpPacket, RtpRepr, Ssrc};
use crate::sip::{Message, Method};
use crate::time::Timestamp;

use super::audio::RtpRefused;
use super::dialog::{Call, Incoming, MediaAddr};
use super::end::Forced;
use super::events::{Ctx, EventQueue};
use super::media_index::{Fit, MediaIndex, Route};
use super::record::EndReason;
use super::{CallHandle, CallState, Event, Side, Stats, TrackerConfig};

const HOUSEKEEPING: Duration = Duration::from_secs(1);
const MAX_MEDIA_INDEX: usize = 400_000;

pub struct Tracker {
    pub(super) cfg: TrackerConfig,
    pub(super) calls: HashMap<CallHandle, Call>,
    by_call_id: HashMap<Box<[u8]>, CallHandle>,
    /// Address where a side receives audio → the calls (and sides) receiving there.
    pub(super) media_index: MediaIndex,
    /// RTCP ports of those addresses (`call::rtcp`).
    pub(super) rtcp_index: super::rtcp::RtcpIndex,
    timers: BinaryHeap<Reverse<(Timestamp, CallHandle)>>,
    ended: HashMap<Box<[u8]>, Timestamp>,
    ended_order: VecDeque<(Timestamp, Box<[u8]>)>,
    /// Media addresses of calls closed less than `linger` ago, still in
    /// `media_index`: the RTP in flight at the hangup counts as after the
    /// end, not as unmatched.
    ended_media: VecDeque<(Timestamp, SocketAddr, CallHandle)>,
    events: EventQueue,
    pub(super) defrag: Defragmenter,
    pub(super) tcp: TcpReassembler,
    pub(super) tcp_out: Vec<Vec<u8>>,
    next_handle: u64,
    now: Timestamp,
    next_housekeeping: Option<Timestamp>,
    pub(super) stats: Stats,
}

/// What ingress learned of a SIP message before the call table looks at it.
pub(super) struct SipHead<'a> {
    pub call_id: &'a [u8],
    pub cseq: u32,
    /// The request's method, or for a response the method in its CSeq.
    pub method: Method<'a>,
    /// `None` for a request.
    pub code: Option<u16>,
}

impl Tracker {
    pub fn new(cfg: TrackerConfig) -> Self {
        Tracker {
            defrag: Defragmenter::new(&cfg.reasm),
            tcp: TcpReassembler::new(&cfg.reasm),
            cfg,
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            media_index: MediaIndex::default(),
            rtcp_index: HashMap::new(),
            timers: BinaryHeap::new(),
            ended: HashMap::new(),
            ended_order: VecDeque::new(),
            ended_media: VecDeque::new(),
            events: EventQueue::default(),
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

    /// Timer settings may change while calls are open (a config reload); every
    /// call's next deadline is worked out from them when its timer fires.
    pub fn set_timers(&mut self, timers: &TrackerConfig) {
        self.cfg.no_response = timers.no_response;
        self.cfg.ring_timeout = timers.ring_timeout;
        self.cfg.rtp_timeout = timers.rtp_timeout;
        self.cfg.max_duration = timers.max_duration;
        self.cfg.bye_timeout = timers.bye_timeout;
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

    /// The next event; drain until `None` after every `handle_*`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// The next instant `handle_timeout` has work to do. Housekeeping (expiring
    /// reassembly state, flushing reorder buffers) is not a timer: it runs whenever
    /// time passes its mark, so a capture with a gap of years costs one step.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Time has passed with no packet (a quiet line): fires what is due by `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
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

    /// The call table and what a call's methods may touch, borrowed apart.
    fn calls_and_ctx(&mut self) -> (&mut HashMap<CallHandle, Call>, Ctx<'_>) {
        let ctx = Ctx {
            cfg: &self.cfg,
            events: &mut self.events,
            stats: &mut self.stats,
        };
        (&mut self.calls, ctx)
    }

    /// One SIP message of a call-making method, sorted by ingress.
    pub(super) fn on_sip(
        &mut self,
        now: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        msg: &Message<'_>,
        head: &SipHead<'_>,
    ) {
        let SipHead {
            call_id,
            cseq,
            method,
            code,
        } = *head;
        let from_tag = msg.from().and_then(|f| f.tag);
        let to_tag = msg.to().and_then(|t| t.tag);

        let handle = match self.by_call_id.get(call_id) {
            Some(&h) => h,
            None => {
                if method == Method::Refer {
                    // Only an open call's transfer matters; any other REFER
                    // (click-to-call, a conference) is no call's.
                    self.stats.sip_non_call += 1;
                    return;
                }
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
                self.start_call(now, call_id, msg, src, dst)
            }
        };

        let fp = fingerprint(cseq, method, code, from_tag, to_tag);
        let (calls, mut ctx) = self.calls_and_ctx();
        let Some(call) = calls.get_mut(&handle) else {
            return;
        };
        if call.dedup.seen(fp) {
            ctx.stats.sip_duplicates += 1;
            return;
        }
        call.last_activity = call.last_activity.max(now);
        let _span = tracing::trace_span!("sip", call_id = %call.id).entered();

        let m = Incoming {
            now,
            msg,
            method,
            cseq,
            from_tag,
            to_tag,
        };
        let media = match code {
            None => call.on_request(&m, &mut ctx),
            Some(code) => call.on_response(&m, code, &mut ctx),
        };
        if let Some(addr) = media {
            self.register_media(handle, addr);
        }
        self.settle(handle);
    }

    /// After a message: closes the call at once when its end became certain,
    /// else keeps its timer.
    fn settle(&mut self, handle: CallHandle) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        if call.closing(&self.cfg).at <= self.now {
            self.end_call(handle, None);
        } else {
            self.schedule(handle);
        }
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
        let call = Call::start(handle, call_id, now, msg, src, dst);
        self.stats.calls_started += 1;
        tracing::debug!(call_id = %call.id, "call started");
        self.events.push(Event::CallStarted {
            call: handle,
            call_id: Arc::clone(&call.id),
            at: now,
            snapshot: call.snapshot(&self.cfg),
        });
        self.calls.insert(handle, call);
        self.by_call_id.insert(call_id.into(), handle);
        handle
    }

    fn register_media(&mut self, handle: CallHandle, (addr, side): MediaAddr) {
        // Closed calls' addresses give way to open ones.
        while self.media_index.len() >= MAX_MEDIA_INDEX && !self.ended_media.is_empty() {
            self.forget_ended_media();
        }
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
        self.register_rtcp(handle, addr, side);
        // Calls share an address (a B2BUA's two legs, a reused port); past the
        // cap the oldest call just stops matching it.
        if let Some(old) = self.media_index.insert(addr, handle, side) {
            if let Some(c) = self.calls.get_mut(&old) {
                c.media.addrs.retain(|(a, _)| *a != addr);
            }
        }
    }

    /// The call and sender of a media packet from `src` to `dst`: among the
    /// calls receiving at either address, the one whose SDP names the other
    /// end too, else whose leg carries `ssrc`, else the newest.
    pub(super) fn route_media(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        ssrc: Option<Ssrc>,
    ) -> Option<Route> {
        self.media_index
            .route(src, dst, |h, sender, other_end| match self.calls.get(&h) {
                Some(c) => Fit {
                    both_ends: c.media.addrs.iter().any(|(a, _)| *a == other_end),
                    same_ssrc: ssrc.is_some() && c.media.leg(sender).stream.ssrc() == ssrc,
                    open: true,
                },
                None => Fit {
                    both_ends: false,
                    same_ssrc: false,
                    open: false,
                },
            })
    }

    /// An RTP packet ingress matched to `handle` by address.
    pub(super) fn deliver_rtp(
        &mut self,
        now: Timestamp,
        handle: CallHandle,
        sender: Side,
        src: SocketAddr,
        packet: RtpPacket<&[u8]>,
        to_known_address: bool,
    ) {
        let repr = RtpRepr::parse(&packet);
        let (calls, mut ctx) = self.calls_and_ctx();
        let Some(call) = calls.get_mut(&handle) else {
            // An address of a call closed moments ago (`ended_media`).
            self.stats.rtp_after_end += 1;
            return;
        };
        match call.on_rtp(now, sender, src, packet.into_inner(), &repr, &mut ctx) {
            Err(RtpRefused::AfterEnd) => self.stats.rtp_after_end += 1,
            // Counted by its drop reason.
            Err(RtpRefused::Srtp) => {}
            Err(RtpRefused::IgnoredSource) => self.stats.rtp_ignored_source += 1,
            // Symmetric RTP: the sender receives where it sends from, even behind NAT.
            // Only a leg's first packet from a source can teach us that address.
            Ok(new_source) => {
                let owned = self
                    .media_index
                    .calls_at(&src)
                    .any(|h| self.calls.contains_key(&h));
                if new_source && to_known_address && !owned {
                    self.register_media(handle, (src, sender));
                }
            }
        }
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

    /// Moves time forward to `now`. Timers due before it fire first, each at
    /// its own instant, so a call ends when its timer says, not when the next
    /// packet happens to come.
    pub(super) fn advance(&mut self, now: Timestamp) {
        self.fire_due(now);
        self.step(now);
    }

    /// Fires the timers due by `now`, each at its own instant, without moving
    /// time to `now` itself.
    pub(super) fn fire_due(&mut self, now: Timestamp) {
        while let Some(at) = self.poll_timeout() {
            if at > now {
                break;
            }
            self.step(at);
        }
    }

    /// Fires the timers due by `now` and housekeeping.
    fn step(&mut self, now: Timestamp) {
        // Captures from several files or interfaces can step back a little; time never does.
        let now = now.max(self.now);
        self.now = now;
        if self.next_housekeeping.is_none() {
            self.next_housekeeping = Some(now.saturating_add(HOUSEKEEPING));
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
            self.next_housekeeping = Some(now.saturating_add(HOUSEKEEPING));
        }
    }

    fn housekeeping(&mut self, now: Timestamp) {
        self.defrag.expire(now);
        self.tcp.expire(now);
        while let Some((t, _)) = self.ended_order.front() {
            let expired = now.duration_since(*t) > self.cfg.ended_memory
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
        while let Some(&(t, ..)) = self.ended_media.front() {
            if now.duration_since(t) <= self.cfg.linger {
                break;
            }
            self.forget_ended_media();
        }
        let (calls, mut ctx) = self.calls_and_ctx();
        for call in calls.values_mut() {
            call.flush_media(now, false, &mut ctx);
        }
    }

    /// Drops the oldest address of a closed call from the media index.
    fn forget_ended_media(&mut self) {
        if let Some((_, addr, handle)) = self.ended_media.pop_front() {
            self.media_index.remove(&addr, handle);
        }
    }

    fn end_call(&mut self, handle: CallHandle, forced: Option<EndReason>) {
        let now = self.now;
        let Some(mut call) = self.calls.remove(&handle) else {
            return;
        };
        call.flush_media(now, true, &mut self.calls_and_ctx().1);
        self.by_call_id.remove(&call.call_id);
        for (addr, _) in &call.media.addrs {
            if self.media_index.contains(addr, handle) {
                if self.ended_media.len() >= MAX_MEDIA_INDEX {
                    self.forget_ended_media();
                }
                self.ended_media.push_back((now, *addr, handle));
            }
        }
        self.ended.insert(call.call_id.clone(), now);
        self.ended_order.push_back((now, call.call_id.clone()));
        let forced = forced.map(|reason| Forced::new(reason, now, &call));
        let record = call.finish(&self.cfg, forced);
        if !call.hungup {
            // Closed with no hangup seen (a timer, the capture's end, a
            // shutdown): the end is the record's.
            self.events.push(Event::CallHungUp {
                call: handle,
                call_id: Arc::clone(&call.id),
                at: record.ended_at,
                snapshot: Box::new(record.clone()),
            });
        }
        self.stats.calls_ended += 1;
        tracing::debug!(
            call_id = %record.call_id,
            outcome = record.outcome.as_str(),
            end_reason = record.end_reason.as_str(),
            "call ended"
        );
        self.events.push(Event::CallEnded {
            call: handle,
            call_id: call.id,
            record: Box::new(record),
        });
    }
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
