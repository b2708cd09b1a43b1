//! The call tracker: a pure state machine in the manner of quinn-proto and str0m.
//!
//! Inputs are `handle_*(now, …)`, outputs are `poll_*()`. Time is only ever the
//! capture timestamp of the packet being handled, so a pcap replay is deterministic.

mod config;
mod dialog;
mod media;
mod record;
mod stats;
mod tracker;

pub use config::TrackerConfig;
pub use record::{parse_name, CallRecord, Direction, EndReason, LegQuality, Outcome, UnknownName};
pub use stats::Stats;
pub use tracker::Tracker;

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
    Hold { by: Side },
    Resume { by: Side },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    CallStarted {
        call: CallHandle,
        call_id: String,
        at: Timestamp,
    },
    CallRinging {
        call: CallHandle,
        at: Timestamp,
    },
    CallAnswered {
        call: CallHandle,
        at: Timestamp,
    },
    /// Decoded audio that `leg` sent, placed at `offset` samples (8 kHz) after the answer.
    Media {
        call: CallHandle,
        leg: Side,
        offset: u64,
        sample_rate: u32,
        samples: Vec<i16>,
    },
    CallUpdated {
        call: CallHandle,
        at: Timestamp,
        update: Update,
    },
    CallEnded {
        call: CallHandle,
        record: Box<CallRecord>,
    },
}
