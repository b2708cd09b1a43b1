//! What the tracker knows about a call when it ends.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

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

/// Per-direction RTP quality, for ops.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LegQuality {
    pub packets: u64,
    pub lost: u64,
    /// RFC 3550 interarrival jitter, milliseconds.
    pub jitter_ms: f64,
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
