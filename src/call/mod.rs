//! The call tracker: a pure state machine in the manner of quinn-proto and str0m.
//!
//! Inputs are `handle_*(now, …)`, outputs are `poll_*()`. Time is only ever the
//! capture timestamp of the packet being handled, so a pcap replay is deterministic.
//!
//! Split as quinn-proto splits `Endpoint` from `Connection`:
//! - `tracker` and `ingress`: the [`Tracker`], which owns every call. It decodes
//!   frames and HEP, defragments, reassembles TCP, sorts SIP from RTP, finds the
//!   call a packet belongs to (Call-ID, media-address index) and runs the timers.
//! - `dialog`, `media`, `audio`: one call's own logic, as methods of `Call`: SIP
//!   transitions, what its SDP says, its RTP legs turned into placed audio.
//! - `end`: when a call's end is seen, when it is certain, and why it ended.
//! - `record`: the finished call as the drivers see it.

mod audio;
mod config;
mod dialog;
mod end;
mod events;
mod ingress;
mod media;
mod media_index;
mod quality;
mod record;
mod rtcp;
mod srtp;
mod stats;
mod tracker;

pub use config::TrackerConfig;
pub use record::{
    other_party, parse_name, CallRecord, Direction, EndReason, LegQuality, Outcome, UnknownName,
};
pub use stats::Stats;
pub use tracker::Tracker;

use std::sync::Arc;

use crate::rtp::codec::{Format, MediaTime};
use crate::time::Timestamp;

/// The tracker's own name for a call; cheaper to pass around than the Call-ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// Where an open call is in its life, for the `calls_active{state}` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    Trying,
    Ringing,
    Answered,
}

impl CallState {
    pub const ALL: [CallState; 3] = [CallState::Trying, CallState::Ringing, CallState::Answered];

    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Trying => "trying",
            CallState::Ringing => "ringing",
            CallState::Answered => "answered",
        }
    }
}

/// One party of the call. The recording puts the caller left and the callee right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Caller,
    Callee,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Caller => Side::Callee,
            Side::Callee => Side::Caller,
        }
    }
    pub(crate) fn index(self) -> usize {
        match self {
            Side::Caller => 0,
            Side::Callee => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    Hold {
        by: Side,
    },
    Resume {
        by: Side,
    },
    /// `by` sent an in-dialog REFER (once per REFER, retransmissions aside).
    /// `to` is the user part of its Refer-To URI (a number or an extension),
    /// the whole URI when it has no user part, at most 128 bytes; `None`
    /// when the REFER has no Refer-To we can read.
    Transfer {
        by: Side,
        to: Option<String>,
    },
}

/// What the tracker tells its driver. Every event names its call both ways
/// (the handle, cheap to key on, and the Call-ID for logs and files) and carries
/// what a driver needs, so no driver has to ask the tracker back.
///
/// `snapshot` is the call as its record would read if the daemon died at that
/// moment (`end_reason = crash_recovered`); the daemon keeps it on disk so a
/// crash loses no call.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    CallStarted {
        call: CallHandle,
        call_id: Arc<str>,
        at: Timestamp,
        snapshot: Box<CallRecord>,
    },
    CallRinging {
        call: CallHandle,
        call_id: Arc<str>,
        at: Timestamp,
        snapshot: Box<CallRecord>,
    },
    CallAnswered {
        call: CallHandle,
        call_id: Arc<str>,
        at: Timestamp,
        snapshot: Box<CallRecord>,
    },
    /// Audio that `leg` sent after the answer, as the RTP payload it came in:
    /// the recorder decodes it, so the tracker's thread stays cheap whatever
    /// the codec.
    Media {
        call: CallHandle,
        call_id: Arc<str>,
        leg: Side,
        /// Where the payload's first sample belongs on the recording timeline.
        at: MediaTime,
        format: Format,
        /// Packets of this stream missing just before this one (a sequence
        /// gap), which the decoder may conceal; 0 after a DTX pause.
        lost: u16,
        /// The rate the call is best recorded at, from both sides' SDP.
        rate: u32,
        payload: Vec<u8>,
    },
    CallUpdated {
        call: CallHandle,
        call_id: Arc<str>,
        at: Timestamp,
        update: Update,
        snapshot: Box<CallRecord>,
    },
    /// The end of the call was seen, once per call, before `CallEnded`: at the
    /// first BYE (either side), the CANCEL, or the final failure response to
    /// the INVITE (a failure another fork may still beat, or one a UAC often
    /// retries, waits until the call closes). A call closed by a timer or by
    /// `close_all` has it just before its `CallEnded`, `at` its `ended_at`.
    ///
    /// Unlike the other snapshots, this one is the record as it would read
    /// were the call closed now: its own `end_reason`, `ended_at` and talk time.
    CallHungUp {
        call: CallHandle,
        call_id: Arc<str>,
        at: Timestamp,
        snapshot: Box<CallRecord>,
    },
    CallEnded {
        call: CallHandle,
        call_id: Arc<str>,
        record: Box<CallRecord>,
    },
}

impl Event {
    pub fn call(&self) -> CallHandle {
        match self {
            Event::CallStarted { call, .. }
            | Event::CallRinging { call, .. }
            | Event::CallAnswered { call, .. }
            | Event::Media { call, .. }
            | Event::CallUpdated { call, .. }
            | Event::CallHungUp { call, .. }
            | Event::CallEnded { call, .. } => *call,
        }
    }

    pub fn call_id(&self) -> &str {
        match self {
            Event::CallStarted { call_id, .. }
            | Event::CallRinging { call_id, .. }
            | Event::CallAnswered { call_id, .. }
            | Event::Media { call_id, .. }
            | Event::CallUpdated { call_id, .. }
            | Event::CallHungUp { call_id, .. }
            | Event::CallEnded { call_id, .. } => call_id,
        }
    }
}
