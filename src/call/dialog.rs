//! One call: the INVITE dialog set of a Call-ID, forks included.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::sip::{self, Message, Method, StartLine};
use crate::time::Timestamp;

use super::end::Branches;
use super::events::Ctx;
use super::media::CallMedia;
use super::{CallHandle, Event, Side, Update};

/// Forking B2BUAs and proxies can add caller-side tags; more than this is hostile.
const MAX_CALLER_TAGS: usize = 8;
const DEDUP_RING: usize = 32;
const MAX_DTMF: usize = 64;
/// A transfer target is a number or an extension; a longer one is cut here.
const MAX_TRANSFER_TARGET: usize = 128;

/// Appends a DTMF digit, up to the cap: a stuck key must not grow the record.
pub(crate) fn push_digit(dtmf: &mut String, c: char) {
    if dtmf.len() < MAX_DTMF {
        dtmf.push(c);
    }
}

/// Fingerprints of recent messages: a retransmission, or the same message seen by a
/// mirror port on both sides of a proxy, must count once.
#[derive(Debug, Default)]
pub(crate) struct Dedup {
    ring: [u64; DEDUP_RING],
    len: usize,
    next: usize,
}

impl Dedup {
    /// True when `fp` was seen before; remembers it otherwise.
    pub fn seen(&mut self, fp: u64) -> bool {
        if self.ring.iter().take(self.len).any(|&f| f == fp) {
            return true;
        }
        if let Some(slot) = self.ring.get_mut(self.next) {
            *slot = fp;
        }
        self.next = (self.next + 1) % DEDUP_RING;
        self.len = (self.len + 1).min(DEDUP_RING);
        false
    }
}

pub(crate) struct Call {
    pub handle: CallHandle,
    pub call_id: Box<[u8]>,
    /// The Call-ID as text, shared by every event of the call.
    pub id: Arc<str>,
    pub started_at: Timestamp,
    pub last_activity: Timestamp,
    pub from_raw: Option<String>,
    pub to_raw: Option<String>,
    pub from_display: Option<String>,
    pub caller_tags: Vec<Box<[u8]>>,
    pub invite_cseq: u32,
    pub got_response: bool,
    pub ringing_at: Option<Timestamp>,
    pub answered_at: Option<Timestamp>,
    pub answer_code: u16,
    pub answer_tag: Option<Box<[u8]>>,
    pub answer_contact: Option<String>,
    pub failure: Option<(u16, Timestamp)>,
    /// CSeq of the latest final failure response to the INVITE, and whether
    /// its ACK was seen: the UAC takes the failure as final.
    pub failure_cseq: u32,
    pub failure_acked: bool,
    /// The forks that answered the current INVITE.
    pub branches: Branches,
    pub cancel_at: Option<Timestamp>,
    pub answered_elsewhere: bool,
    pub bye: Option<(Timestamp, Side)>,
    pub bye_confirmed: Option<Timestamp>,
    /// `CallHungUp` has gone out.
    pub hungup: bool,
    /// Highest REFER CSeq each side sent: a transfer is reported once.
    pub refer_cseq: [Option<u32>; 2],
    pub on_hold: [bool; 2],
    pub ever_held: bool,
    pub dtmf: String,
    pub sip_src: Option<SocketAddr>,
    pub sip_dst: Option<SocketAddr>,
    pub dedup: Dedup,
    pub media: CallMedia,
    /// The earliest timer entry queued for this call, if any.
    pub scheduled: Option<Timestamp>,
}

impl Call {
    pub fn new(handle: CallHandle, call_id: &[u8], now: Timestamp) -> Self {
        Call {
            handle,
            call_id: call_id.into(),
            id: String::from_utf8_lossy(call_id).into(),
            started_at: now,
            last_activity: now,
            from_raw: None,
            to_raw: None,
            from_display: None,
            caller_tags: Vec::new(),
            invite_cseq: 0,
            got_response: false,
            ringing_at: None,
            answered_at: None,
            answer_code: 0,
            answer_tag: None,
            answer_contact: None,
            failure: None,
            failure_cseq: 0,
            failure_acked: false,
            branches: Branches::default(),
            cancel_at: None,
            answered_elsewhere: false,
            bye: None,
            bye_confirmed: None,
            hungup: false,
            refer_cseq: [None; 2],
            on_hold: [false; 2],
            ever_held: false,
            dtmf: String::new(),
            sip_src: None,
            sip_dst: None,
            dedup: Dedup::default(),
            media: CallMedia::default(),
            scheduled: None,
        }
    }

    pub fn add_caller_tag(&mut self, tag: Option<&[u8]>) {
        let tag = tag.unwrap_or_default();
        if self.caller_tags.len() < MAX_CALLER_TAGS && !self.caller_tags.iter().any(|t| &**t == tag)
        {
            self.caller_tags.push(tag.into());
        }
    }

    /// Which side sent a request carrying this From tag. Requests from the
    /// caller side carry a tag of an initial INVITE; everything else is the callee.
    pub fn side_of_from_tag(&self, tag: Option<&[u8]>) -> Side {
        let tag = tag.unwrap_or_default();
        if self.caller_tags.is_empty() || self.caller_tags.iter().any(|t| &**t == tag) {
            Side::Caller
        } else {
            Side::Callee
        }
    }

    pub fn push_dtmf(&mut self, c: char) {
        push_digit(&mut self.dtmf, c);
    }

    /// End of the window in which audio belongs on the recording.
    pub fn media_end(&self) -> Option<Timestamp> {
        self.bye.map(|(t, _)| t)
    }
}

/// A SIP message of a known call, as the dialog handlers see it.
#[derive(Clone, Copy)]
pub(crate) struct Incoming<'m, 'a> {
    pub now: Timestamp,
    pub msg: &'m Message<'a>,
    /// The request's method, or for a response the method in its CSeq.
    pub method: Method<'a>,
    pub cseq: u32,
    pub from_tag: Option<&'a [u8]>,
    pub to_tag: Option<&'a [u8]>,
}

/// A media address a call's SDP announced: the tracker indexes it.
pub(crate) type MediaAddr = (SocketAddr, Side);

/// The dialog transitions, one SIP message at a time.
impl Call {
    /// The call as its first message (the INVITE, or a response to one we
    /// missed) shows it.
    pub fn start(
        handle: CallHandle,
        call_id: &[u8],
        now: Timestamp,
        msg: &Message<'_>,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Call {
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
        call
    }

    pub fn on_request(&mut self, m: &Incoming<'_, '_>, ctx: &mut Ctx<'_>) -> Option<MediaAddr> {
        let Incoming {
            now,
            msg,
            method,
            cseq,
            from_tag,
            to_tag,
        } = *m;
        match method {
            Method::Invite if to_tag.is_none() => {
                // Initial INVITE, or its retry after 401/407 with a higher CSeq:
                // the same call goes on.
                self.add_caller_tag(from_tag);
                if cseq > self.invite_cseq {
                    self.invite_cseq = cseq;
                    if self.answered_at.is_none() {
                        self.branches.clear();
                        self.failure_acked = false;
                        if let Some((code, _)) = self.failure {
                            if self.cancel_at.is_none() && code != 487 {
                                self.failure = None;
                            }
                        }
                    }
                }
            }
            Method::Ack
                if self.answered_at.is_none()
                    && self.failure.is_some()
                    && cseq == self.failure_cseq =>
            {
                self.failure_acked = true;
            }
            Method::Cancel if self.answered_at.is_none() && self.cancel_at.is_none() => {
                self.cancel_at = Some(now);
                self.answered_elsewhere = msg.reason_cause().is_some_and(|(proto, cause)| {
                    proto.eq_ignore_ascii_case(b"SIP") && cause == 200
                });
                self.hang_up(now, ctx);
            }
            Method::Bye if self.bye.is_none() => {
                let by = self.side_of_from_tag(from_tag);
                self.bye = Some((now, by));
                tracing::debug!(call_id = %self.id, by = ?by, "BYE");
                self.hang_up(now, ctx);
            }
            Method::Refer if to_tag.is_some() => self.on_refer(m, ctx),
            Method::Info => {
                if let Some(digit) = sip_info_digit(msg) {
                    self.push_dtmf(digit);
                }
            }
            _ => {}
        }
        let body = msg.sdp()?;
        let side = self.side_of_from_tag(from_tag);
        self.apply_sdp(now, side, body, ctx)
    }

    pub fn on_response(
        &mut self,
        m: &Incoming<'_, '_>,
        code: u16,
        ctx: &mut Ctx<'_>,
    ) -> Option<MediaAddr> {
        let Incoming {
            now,
            msg,
            method,
            from_tag,
            to_tag,
            ..
        } = *m;
        // The body of a response is the responder's: the side opposite the request's sender.
        let responder = self.side_of_from_tag(from_tag).other();
        match method {
            Method::Invite if self.answered_at.is_none() => {
                self.got_response = true;
                if let Some(tag) = to_tag {
                    self.branches.note(tag, code >= 300);
                }
                match code {
                    101..=199 if self.ringing_at.is_none() => {
                        self.ringing_at = Some(now);
                        ctx.events.push(Event::CallRinging {
                            call: self.handle,
                            call_id: Arc::clone(&self.id),
                            at: now,
                            snapshot: self.snapshot(ctx.cfg),
                        });
                    }
                    200..=299 => {
                        self.answered_at = Some(now);
                        self.answer_code = code;
                        self.answer_tag = to_tag.map(Into::into);
                        self.answer_contact = msg.contact().and_then(|c| c.uri.user.map(lossy));
                        tracing::debug!(call_id = %self.id, "answered");
                        ctx.events.push(Event::CallAnswered {
                            call: self.handle,
                            call_id: Arc::clone(&self.id),
                            at: now,
                            snapshot: self.snapshot(ctx.cfg),
                        });
                    }
                    401 | 407 => {}
                    300..=699 => {
                        // The first failure is the record's; any fork's
                        // failure may be the last one still open.
                        if self.failure.is_none() {
                            self.failure = Some((code, now));
                        }
                        self.failure_cseq = m.cseq;
                        self.failure_acked = false;
                        if self.failure_is_final() {
                            self.hang_up(now, ctx);
                        }
                    }
                    _ => {}
                }
            }
            // A re-INVITE's answer, or another fork's late 2xx: the first answer stands.
            Method::Invite if (200..300).contains(&code) => {
                let other_fork = match (&self.answer_tag, to_tag) {
                    (Some(a), Some(t)) => **a != *t,
                    _ => false,
                };
                if other_fork {
                    return None;
                }
            }
            Method::Bye if code >= 200 && self.bye.is_some() && self.bye_confirmed.is_none() => {
                self.bye_confirmed = Some(now);
            }
            _ => {}
        }
        // Only the answering branch's media counts once a fork has answered.
        let from_answer_branch = match (&self.answer_tag, to_tag) {
            (Some(a), Some(t)) => **a == *t,
            _ => true,
        };
        if from_answer_branch && (100..300).contains(&code) {
            let body = msg.sdp()?;
            return self.apply_sdp(now, responder, body, ctx);
        }
        None
    }

    /// An in-dialog REFER: the sender hands the call on to its Refer-To.
    /// A retransmission seen past the dedup ring still has an old CSeq.
    fn on_refer(&mut self, m: &Incoming<'_, '_>, ctx: &mut Ctx<'_>) {
        let by = self.side_of_from_tag(m.from_tag);
        let last = &mut self.refer_cseq[by.index()];
        if last.is_some_and(|c| m.cseq <= c) {
            return;
        }
        *last = Some(m.cseq);
        // Updates come before the hangup; a REFER after it changes nothing.
        if self.hungup {
            return;
        }
        let to = m.msg.refer_to().map(|t| transfer_target(&t.uri));
        tracing::debug!(call_id = %self.id, by = ?by, to = ?to, "REFER");
        self.updated(m.now, Update::Transfer { by, to }, ctx);
    }

    /// Hold, resume or transfer seen in the call's signalling.
    pub(super) fn updated(&self, now: Timestamp, update: Update, ctx: &mut Ctx<'_>) {
        ctx.events.push(Event::CallUpdated {
            call: self.handle,
            call_id: Arc::clone(&self.id),
            at: now,
            update,
            snapshot: self.snapshot(ctx.cfg),
        });
    }
}

pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Who a REFER sends the call to: the URI's user part (a number or an
/// extension), or the whole URI when it has none, cut to a bound.
fn transfer_target(uri: &sip::Uri<'_>) -> String {
    let mut s = lossy(uri.user.unwrap_or(uri.raw));
    if s.len() > MAX_TRANSFER_TARGET {
        let mut end = MAX_TRANSFER_TARGET;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
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
