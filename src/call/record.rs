//! What the tracker knows about a call when it ends.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use std::net::SocketAddr;

use crate::time::Timestamp;

use super::dialog::Call;
use super::end::Forced;
use super::{Side, TrackerConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Incoming,
    Outgoing,
    Internal,
    Unknown,
}

impl Direction {
    pub const ALL: [Direction; 4] = [
        Direction::Incoming,
        Direction::Outgoing,
        Direction::Internal,
        Direction::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "incoming",
            Direction::Outgoing => "outgoing",
            Direction::Internal => "internal",
            Direction::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Answered,
    Busy,
    Declined,
    NoAnswer,
    Cancelled,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Answered,
        Outcome::Busy,
        Outcome::Declined,
        Outcome::NoAnswer,
        Outcome::Cancelled,
        Outcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Busy => "busy",
            Outcome::Declined => "declined",
            Outcome::NoAnswer => "no_answer",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
        }
    }

    /// DESIGN §4: the outcome a final failure response stands for.
    pub fn for_failure(code: u16) -> Outcome {
        match code {
            486 | 600 => Outcome::Busy,
            603 => Outcome::Declined,
            480 | 408 => Outcome::NoAnswer,
            _ => Outcome::Failed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    CallerBye,
    CalleeBye,
    Cancel,
    Rejected,
    RtpTimeout,
    RingTimeout,
    NoResponse,
    MaxDuration,
    /// A replayed capture ended while the call was still up.
    CaptureEnd,
    /// The daemon stopped while the call was still up.
    Shutdown,
    /// The daemon was killed while the call was up; the next start wrote it
    /// from what the crash left (its last snapshot and the spooled audio).
    CrashRecovered,
}

impl EndReason {
    pub const ALL: [EndReason; 11] = [
        EndReason::CallerBye,
        EndReason::CalleeBye,
        EndReason::Cancel,
        EndReason::Rejected,
        EndReason::RtpTimeout,
        EndReason::RingTimeout,
        EndReason::NoResponse,
        EndReason::MaxDuration,
        EndReason::CaptureEnd,
        EndReason::Shutdown,
        EndReason::CrashRecovered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerBye => "caller_bye",
            EndReason::CalleeBye => "callee_bye",
            EndReason::Cancel => "cancel",
            EndReason::Rejected => "rejected",
            EndReason::RtpTimeout => "rtp_timeout",
            EndReason::RingTimeout => "ring_timeout",
            EndReason::NoResponse => "no_response",
            EndReason::MaxDuration => "max_duration",
            EndReason::CaptureEnd => "capture_end",
            EndReason::Shutdown => "shutdown",
            EndReason::CrashRecovered => "crash_recovered",
        }
    }
}

/// A name that is none of an enum's `as_str` values (read from a database
/// row, a command line or a file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a known {kind} (known: {known})")]
pub struct UnknownName {
    /// What was being read, e.g. `outcome`.
    pub kind: &'static str,
    pub value: String,
    /// The names that are known, comma-separated.
    pub known: String,
}

/// The variant of `all` whose `as_str` is `text`.
pub fn parse_name<T: Copy>(
    kind: &'static str,
    all: &[T],
    as_str: impl Fn(T) -> &'static str,
    text: &str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|v| as_str(*v) == text)
        .ok_or_else(|| UnknownName {
            kind,
            value: text.to_owned(),
            known: all
                .iter()
                .map(|v| as_str(*v))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl FromStr for Direction {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        parse_name("direction", &Self::ALL, Self::as_str, s)
    }
}

impl FromStr for Outcome {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        parse_name("outcome", &Self::ALL, Self::as_str, s)
    }
}

impl FromStr for EndReason {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        parse_name("end_reason", &Self::ALL, Self::as_str, s)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The party outside the PBX, whose number is matched against the CRM: the
/// caller of an incoming call, the callee of an outgoing one. Internal calls
/// have none; for a call of unknown direction the caller is assumed.
pub fn other_party<'a>(
    direction: Direction,
    from: Option<&'a str>,
    to: Option<&'a str>,
) -> Option<&'a str> {
    match direction {
        Direction::Incoming => from,
        Direction::Outgoing => to,
        Direction::Internal => None,
        Direction::Unknown => from.or(to),
    }
}

/// Per-direction RTP quality, for ops.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LegQuality {
    pub packets: u64,
    pub lost: u64,
    /// RFC 3550 interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Quality after the answer (loss pattern, jitter, RTCP, MOS); absent
    /// in records written before pbxbridge measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<crate::rtp::quality::DirQuality>,
}

/// The core's snapshot of one call when it ends (or, for a crash-safe
/// spool, while it is up): SIP facts only, numbers as written. Drivers turn
/// it into a `report::CallReport` (normalised numbers, recording status),
/// which is what is stored. Not the WAV recording (`crate::record`) and not a
/// CRM record (`config::CrmRecord`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub call_id: String,
    pub direction: Direction,
    /// User part of the From URI, as written.
    pub from_raw: Option<String>,
    /// User part of the first INVITE's Request-URI (To as a fallback).
    pub to_raw: Option<String>,
    pub from_display: Option<String>,
    pub agent: Option<String>,
    pub started_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub ended_at: Timestamp,
    pub outcome: Outcome,
    pub sip_code: Option<u16>,
    pub end_reason: EndReason,
    pub answered_elsewhere: bool,
    pub dtmf: String,
    /// Codec of the recorded audio, when it is one we decode.
    pub codec: Option<&'static str>,
    /// Set when answered audio used a codec we cannot decode.
    pub unsupported_codec: Option<String>,
    /// Answered audio was SRTP, which we do not decrypt.
    pub encrypted_media: bool,
    /// Whether any audio was placed on the recording timeline.
    pub audio_seen: bool,
    pub held: bool,
    /// Source and destination of the first INVITE, `ip:port`.
    pub sip_src: Option<String>,
    pub sip_dst: Option<String>,
    pub caller_rtp: LegQuality,
    pub callee_rtp: LegQuality,
}

impl CallRecord {
    /// Talk time in microseconds.
    pub fn talk_micros(&self) -> i64 {
        self.answered_at
            .map(|a| self.ended_at.micros_since(a))
            .unwrap_or(0)
    }
}

/// Building the record from a call's state.
impl Call {
    /// What is known of an open call now, as its record would read if the
    /// daemon died here: the snapshot the lifecycle events carry.
    pub fn snapshot(&self, cfg: &TrackerConfig) -> Box<CallRecord> {
        let forced = Forced::new(EndReason::CrashRecovered, self.last_activity, self);
        let mut rec = self.finish(cfg, Some(forced));
        rec.end_reason = EndReason::CrashRecovered;
        Box::new(rec)
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
                quality: self.media.quality(side),
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
            encrypted_media: self.media.encrypted || self.media.srtp.undecryptable(),
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
