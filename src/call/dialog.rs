//! One call: the INVITE dialog set of a Call-ID, forks included.

use std::net::SocketAddr;

use super::media::CallMedia;
use super::record::{CallRecord, Direction, EndReason, LegQuality, Outcome};
use super::{CallHandle, Side, TrackerConfig};
use crate::time::Timestamp;

/// Forking B2BUAs and proxies can add caller-side tags; more than this is hostile.
const MAX_CALLER_TAGS: usize = 8;
const DEDUP_RING: usize = 32;
const MAX_DTMF: usize = 64;

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

/// When and why a call will be closed if nothing else happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closing {
    pub at: Timestamp,
    pub reason: EndReason,
    pub ended_at: Timestamp,
    /// Closed by a timer rather than by signalling (BYE, CANCEL, final response).
    pub by_timer: bool,
}

/// A call closed from outside: the daemon stopped, the capture ended, or a
/// crash snapshot, with the instant its record says it ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forced {
    pub reason: EndReason,
    pub at: Timestamp,
}

impl Forced {
    /// When a call still up ends for `reason`, the tracker's clock being `now`.
    ///
    /// - `Shutdown`: the daemon watched the line until it stopped and saw no
    ///   hangup, so the call was up until then (issue 10: it used to end at the
    ///   ACK, a talk time of 0 s for a call with no RTP).
    /// - `CaptureEnd`: a replay knows only the call's own packets. Where the
    ///   capture stops depends on unrelated traffic (other calls, where a file
    ///   was cut), so the call ends at its own last packet: the same call gives
    ///   the same record whatever else the capture holds.
    /// - `CrashRecovered` (the in-flight snapshot): the call's last packet so
    ///   far; recovery moves it on to the daemon's last heartbeat
    ///   (`pipeline::inflight`), the last moment the line was known watched.
    pub fn new(reason: EndReason, now: Timestamp, call: &Call) -> Forced {
        let at = match reason {
            EndReason::Shutdown => now,
            _ => call.last_activity,
        };
        Forced { reason, at }
    }
}

pub(crate) struct Call {
    pub handle: CallHandle,
    pub call_id: Box<[u8]>,
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
    pub cancel_at: Option<Timestamp>,
    pub answered_elsewhere: bool,
    pub bye: Option<(Timestamp, Side)>,
    pub bye_confirmed: Option<Timestamp>,
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
            cancel_at: None,
            answered_elsewhere: false,
            bye: None,
            bye_confirmed: None,
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

    pub fn closing(&self, cfg: &TrackerConfig) -> Closing {
        let natural = |at: Timestamp, reason, ended_at| Closing {
            at,
            reason,
            ended_at,
            by_timer: false,
        };
        let timer = |at: Timestamp, reason, ended_at| Closing {
            at,
            reason,
            ended_at,
            by_timer: true,
        };
        if let Some((bye_at, by)) = self.bye {
            let reason = match by {
                Side::Caller => EndReason::CallerBye,
                Side::Callee => EndReason::CalleeBye,
            };
            let at = match self.bye_confirmed {
                Some(t) => t.saturating_add_micros(cfg.linger_us),
                None => bye_at.saturating_add_micros(cfg.bye_timeout_us),
            };
            return natural(at, reason, bye_at);
        }
        if let Some(answered) = self.answered_at {
            let max = answered.saturating_add_micros(cfg.max_duration_us);
            if let Some(last) = self.media.last_rtp {
                let silent = last.saturating_add_micros(cfg.rtp_timeout_us);
                if silent < max {
                    return timer(silent, EndReason::RtpTimeout, last);
                }
            }
            return timer(max, EndReason::MaxDuration, max);
        }
        if let Some((487, t)) = self.failure.filter(|_| self.cancel_at.is_none()) {
            // 487 answers a CANCEL (or an early BYE) that the capture missed.
            return natural(t.saturating_add_micros(cfg.linger_us), EndReason::Cancel, t);
        }
        if let Some(cancel_at) = self.cancel_at {
            let at = match self.failure {
                Some((_, t)) => t.saturating_add_micros(cfg.linger_us),
                None => cancel_at.saturating_add_micros(cfg.bye_timeout_us),
            };
            return natural(at, EndReason::Cancel, cancel_at);
        }
        if let Some((_, t)) = self.failure {
            return natural(
                t.saturating_add_micros(cfg.linger_us),
                EndReason::Rejected,
                t,
            );
        }
        if self.got_response {
            let at = self.started_at.saturating_add_micros(cfg.ring_timeout_us);
            return timer(at, EndReason::RingTimeout, at);
        }
        let at = self.started_at.saturating_add_micros(cfg.no_response_us);
        timer(at, EndReason::NoResponse, at)
    }

    /// The record for a call closed now. `forced` is set when the capture or
    /// the daemon stops with the call still up: a call that signalling already
    /// ended keeps its own reason and time, any other ends as `forced` says.
    pub fn finish(&self, cfg: &TrackerConfig, forced: Option<Forced>) -> CallRecord {
        let closing = self.closing(cfg);
        let (reason, ended_at) = match forced {
            Some(f) if closing.by_timer => (f.reason, f.at),
            _ => (closing.reason, closing.ended_at),
        };
        let ended_at = ended_at.max(self.started_at);
        let outcome = if self.answered_at.is_some() {
            Outcome::Answered
        } else if self.cancel_at.is_some() || matches!(self.failure, Some((487, _))) {
            Outcome::Cancelled
        } else if let Some((code, _)) = self.failure {
            Outcome::for_failure(code)
        } else if self.ringing_at.is_some() {
            Outcome::NoAnswer
        } else {
            Outcome::Failed
        };
        let sip_code = if self.answered_at.is_some() {
            Some(self.answer_code)
        } else {
            self.failure.map(|(code, _)| code)
        };
        let direction = self.direction(cfg);
        let agent = self.agent(cfg, direction);
        let quality = |side: Side| {
            let leg = self.media.leg(side);
            LegQuality {
                packets: leg.packets,
                lost: leg.stream.stats().lost,
                jitter_ms: leg.jitter_ms(),
            }
        };
        CallRecord {
            call_id: String::from_utf8_lossy(&self.call_id).into_owned(),
            direction,
            from_raw: self.from_raw.clone(),
            to_raw: self.to_raw.clone(),
            from_display: self.from_display.clone(),
            agent,
            started_at: self.started_at,
            answered_at: self.answered_at.map(|a| a.min(ended_at)),
            ended_at,
            outcome,
            sip_code,
            end_reason: reason,
            answered_elsewhere: self.answered_elsewhere,
            dtmf: self.dtmf.clone(),
            codec: self.media.codec,
            unsupported_codec: self.media.unsupported.clone(),
            encrypted_media: self.media.encrypted,
            audio_seen: self.media.audio_seen,
            held: self.ever_held,
            sip_src: self.sip_src.map(|a| a.to_string()),
            sip_dst: self.sip_dst.map(|a| a.to_string()),
            caller_rtp: quality(Side::Caller),
            callee_rtp: quality(Side::Callee),
        }
    }

    fn direction(&self, cfg: &TrackerConfig) -> Direction {
        let is_ext = |u: &Option<String>| u.as_deref().is_some_and(|u| cfg.is_extension(u));
        match (is_ext(&self.from_raw), is_ext(&self.to_raw)) {
            (true, true) => Direction::Internal,
            (true, false) => Direction::Outgoing,
            (false, true) => Direction::Incoming,
            (false, false) => {
                let internal = |a: Option<SocketAddr>| a.map(|a| cfg.is_internal_ip(a.ip()));
                match (internal(self.sip_src), internal(self.sip_dst)) {
                    (Some(true), Some(true)) => Direction::Internal,
                    (Some(true), Some(false)) => Direction::Outgoing,
                    (Some(false), Some(true)) => Direction::Incoming,
                    _ => Direction::Unknown,
                }
            }
        }
    }

    /// The internal user who took part: for forks, the branch that answered.
    fn agent(&self, cfg: &TrackerConfig, direction: Direction) -> Option<String> {
        let ext = |u: &Option<String>| u.clone().filter(|u| cfg.is_extension(u));
        match direction {
            Direction::Outgoing => ext(&self.from_raw),
            Direction::Incoming | Direction::Internal => {
                ext(&self.answer_contact).or_else(|| ext(&self.to_raw))
            }
            Direction::Unknown => None,
        }
    }
}
