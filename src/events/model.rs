//! The one event envelope every channel carries (SSE, webhooks, NATS), and
//! the data each type holds. Built once, serialised once: every channel
//! sends the same bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::call::{CallRecord, Direction, EndReason, Outcome, Side};
use crate::time::Timestamp;

/// Every kind of event, as `type` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    CallRinging,
    CallAnswered,
    CallHeld,
    CallResumed,
    CallTransferred,
    CallHungup,
    CallCompleted,
    RecordingStored,
    RecordingFailed,
    CallLinked,
    CallUnlinked,
    NoteAdded,
}

impl EventType {
    pub const ALL: [EventType; 12] = [
        EventType::CallRinging,
        EventType::CallAnswered,
        EventType::CallHeld,
        EventType::CallResumed,
        EventType::CallTransferred,
        EventType::CallHungup,
        EventType::CallCompleted,
        EventType::RecordingStored,
        EventType::RecordingFailed,
        EventType::CallLinked,
        EventType::CallUnlinked,
        EventType::NoteAdded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CallRinging => "call.ringing",
            EventType::CallAnswered => "call.answered",
            EventType::CallHeld => "call.held",
            EventType::CallResumed => "call.resumed",
            EventType::CallTransferred => "call.transferred",
            EventType::CallHungup => "call.hungup",
            EventType::CallCompleted => "call.completed",
            EventType::RecordingStored => "recording.stored",
            EventType::RecordingFailed => "recording.failed",
            EventType::CallLinked => "call.linked",
            EventType::CallUnlinked => "call.unlinked",
            EventType::NoteAdded => "note.added",
        }
    }

    /// The name of its schema in the OpenAPI document.
    pub fn schema_name(self) -> &'static str {
        match self {
            EventType::CallRinging => "CallRingingEvent",
            EventType::CallAnswered => "CallAnsweredEvent",
            EventType::CallHeld => "CallHeldEvent",
            EventType::CallResumed => "CallResumedEvent",
            EventType::CallTransferred => "CallTransferredEvent",
            EventType::CallHungup => "CallHungupEvent",
            EventType::CallCompleted => "CallCompletedEvent",
            EventType::RecordingStored => "RecordingStoredEvent",
            EventType::RecordingFailed => "RecordingFailedEvent",
            EventType::CallLinked => "CallLinkedEvent",
            EventType::CallUnlinked => "CallUnlinkedEvent",
            EventType::NoteAdded => "NoteAddedEvent",
        }
    }

    /// The last segment of the NATS subject (`pbxbridge.<sensor>.<this>`).
    pub fn subject_token(self) -> &'static str {
        self.as_str()
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {value:?}")]
pub struct UnknownEventType {
    pub value: String,
}

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType {
                value: s.chars().take(64).collect(),
            })
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The envelope. `id` is unique and sorts by creation time (a ULID with an
/// `evt_` prefix); it is also the webhook-id, the SSE id and the NATS
/// message id, so a redelivery is recognisable on every channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: EventType,
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: Timestamp,
    /// The capture point (`pbx.sensor`) the event comes from.
    pub sensor: String,
    /// The SIP Call-ID of the call the event is about.
    pub call_id: Option<String>,
    pub data: serde_json::Value,
}

/// Makes event ids: monotonic within the process, sortable by time.
pub struct IdMaker {
    gen: std::sync::Mutex<ulid::Generator>,
}

impl Default for IdMaker {
    fn default() -> Self {
        IdMaker {
            gen: std::sync::Mutex::new(ulid::Generator::new()),
        }
    }
}

impl IdMaker {
    /// The id of an event the capture caused: the same call, type and
    /// moment give the same id, so an event made again (a batch written
    /// again after a crash, a capture replayed) is recognised as the same
    /// by the log, NATS and webhook receivers. It sorts by `at`.
    pub fn for_call(sensor: &str, call_id: &str, kind: EventType, at: Timestamp) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            sensor.as_bytes(),
            call_id.as_bytes(),
            kind.as_str().as_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(at.micros().to_le_bytes());
        let digest = h.finalize();
        let mut random = [0u8; 16];
        random[6..].copy_from_slice(&digest[..10]);
        let ms = u64::try_from(at.micros().div_euclid(1000)).unwrap_or(0);
        format!(
            "evt_{}",
            ulid::Ulid::from_parts(ms, u128::from_be_bytes(random))
        )
    }

    pub fn next(&self) -> String {
        let mut g = self.gen.lock().unwrap_or_else(|e| e.into_inner());
        // Overflow needs 2^80 ids in one millisecond; a fresh one is as good.
        let id = g.generate().unwrap_or_else(|_| ulid::Ulid::new());
        format!("evt_{id}")
    }
}

/// A CRM record whose phone value holds the other party's number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MatchedRecord {
    #[serde(rename = "type")]
    pub record_type: String,
    pub id: String,
    pub display_name: Option<String>,
}

/// Who is on a call: the part of every call event that says which call it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallParties {
    #[schema(value_type = String, example = "incoming")]
    pub direction: Direction,
    /// E.164 when it could be normalised, else the extension or `null`.
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub from_raw: Option<String>,
    pub to_raw: Option<String>,
    pub from_display: Option<String>,
    /// The agent's extension.
    pub agent: Option<String>,
    /// The agent's CRM user id (what see-own keys are matched on), looked
    /// up from the extension.
    pub agent_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
}

/// `call.ringing`: the screen-pop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RingingData {
    #[serde(flatten)]
    pub call: CallParties,
    /// The other party's number, the one matched against the CRM.
    pub other_number: Option<String>,
    /// The CRM records holding that number, looked up at ring time.
    pub matches: Vec<MatchedRecord>,
    /// `false` when the lookup could not be made (database away): `matches`
    /// is then empty for that reason, not because nobody matched.
    pub matched: bool,
}

/// `call.answered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnsweredData {
    #[serde(flatten)]
    pub call: CallParties,
    #[schema(value_type = String, format = DateTime)]
    pub answered_at: Timestamp,
}

/// `call.held` and `call.resumed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HoldData {
    #[serde(flatten)]
    pub call: CallParties,
    /// `caller` or `callee`: who put the call on hold or took it off.
    pub by: String,
}

/// `call.transferred`: a REFER was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TransferData {
    #[serde(flatten)]
    pub call: CallParties,
    /// `caller` or `callee`: who sent the REFER.
    pub by: String,
    /// The number (or URI) in Refer-To.
    pub to: Option<String>,
}

/// `call.hungup`: the BYE, CANCEL or final response was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HungupData {
    #[serde(flatten)]
    pub call: CallParties,
    #[schema(value_type = String, example = "answered")]
    pub outcome: Outcome,
    #[schema(value_type = String, example = "caller_bye")]
    pub end_reason: EndReason,
    pub sip_code: Option<u16>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answered_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub ended_at: Timestamp,
    /// Talk time in seconds.
    pub duration: f64,
}

/// `recording.stored` and `recording.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecordingData {
    /// The call's row id (`/v1/calls/{id}`).
    pub call: i64,
    /// The call's agent (CRM user id).
    pub agent_id: Option<String>,
    /// `stored` or `failed`.
    pub status: String,
    pub key: Option<String>,
    pub bytes: Option<u64>,
    /// Why it failed.
    pub detail: Option<String>,
}

/// `call.linked` and `call.unlinked`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LinkData {
    pub call: i64,
    /// The call's agent (CRM user id).
    pub agent_id: Option<String>,
    pub record_type: String,
    pub record_id: String,
    /// `auto`, `manual` or `related`.
    pub source: String,
}

/// `note.added`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoteData {
    pub call: i64,
    /// The call's agent (CRM user id).
    pub agent_id: Option<String>,
    pub note: i64,
    pub author: Option<String>,
    pub text: String,
    pub status: Option<String>,
}

/// `caller` or `callee`, as the events spell a side.
pub fn side_name(side: Side) -> &'static str {
    match side {
        Side::Caller => "caller",
        Side::Callee => "callee",
    }
}

impl CallParties {
    /// The parties as the record names them, numbers normalised by `norm`.
    pub fn of(rec: &CallRecord, norm: impl Fn(&str) -> Option<String>) -> CallParties {
        CallParties {
            direction: rec.direction,
            from_number: rec.from_raw.as_deref().and_then(&norm),
            to_number: rec.to_raw.as_deref().and_then(&norm),
            from_raw: rec.from_raw.clone(),
            to_raw: rec.to_raw.clone(),
            from_display: rec.from_display.clone(),
            agent: rec.agent.clone(),
            agent_id: None,
            started_at: rec.started_at,
        }
    }

    /// The party outside the PBX (as `CallReport::other_number`).
    pub fn other_number(&self) -> Option<&str> {
        crate::call::other_party(
            self.direction,
            self.from_number.as_deref(),
            self.to_number.as_deref(),
        )
    }
}

/// The agent (CRM user id) an event's data names, for see-own filtering:
/// `agent_id`, or in a finished call `agent.id`.
pub fn agent_of(data: &serde_json::Value) -> Option<&str> {
    data.get("agent_id")
        .and_then(|a| a.as_str())
        .or_else(|| data.get("agent")?.get("id")?.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip() {
        for t in EventType::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), t);
        }
        assert!("call.exploded".parse::<EventType>().is_err());
    }

    #[test]
    fn ids_sort_by_creation() {
        let ids = IdMaker::default();
        let a = ids.next();
        let b = ids.next();
        assert!(a.starts_with("evt_") && a.len() == 30, "{a}");
        assert!(a < b, "{a} {b}");
        let at = Timestamp::from_secs(1_800_000_000);
        let c = IdMaker::for_call("s1", "abc@pbx", EventType::CallRinging, at);
        assert_eq!(
            c,
            IdMaker::for_call("s1", "abc@pbx", EventType::CallRinging, at)
        );
        assert_ne!(
            c,
            IdMaker::for_call("s2", "abc@pbx", EventType::CallRinging, at)
        );
        assert_ne!(
            c,
            IdMaker::for_call("s1", "abc@pbx", EventType::CallAnswered, at)
        );
        let later = IdMaker::for_call(
            "s1",
            "abc@pbx",
            EventType::CallAnswered,
            at.saturating_add_secs(1),
        );
        assert!(c < later && c.len() == 30, "{c} {later}");
    }
}
