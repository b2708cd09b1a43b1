//! What the tracker knows about a call when it ends.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Incoming,
    Outgoing,
    Internal,
    Unknown,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "incoming",
            Direction::Outgoing => "outgoing",
            Direction::Internal => "internal",
            Direction::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// Per-direction RTP quality, for ops.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LegQuality {
    pub packets: u64,
    pub lost: u64,
    /// RFC 3550 interarrival jitter, milliseconds.
    pub jitter_ms: f64,
}

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
