//! The body of `POST /v1/calls`, checked field by field, and the call
//! report it becomes (numbers normalised as a captured call's are).
//!
//! Decisions a client may rely on:
//! - `from`/`to` are kept as written (`from_raw`/`to_raw`); the E.164 (or
//!   extension) form is `null` when a value is no valid number, as for a
//!   captured call from "anonymous". Such a call is simply not matched.
//! - Exactly one of `ended_at` and `duration`. `duration` is talk time: an
//!   answered call is taken as talking from `started_at` to its end; for the
//!   other outcomes it is 0, and `ended_at` (or `started_at + duration`)
//!   still says when the call ended.
//! - `end_reason` is derived from the outcome: pbxbridge did not see the
//!   call's signalling.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::fields::{text, Fields};
use super::notes::MAX_BODY_CHARS;
use super::problem::ApiError;
use crate::call::{Direction, EndReason, LegQuality, Outcome};
use crate::phone::Normalizer;
use crate::report::{CallReport, RecordingReport, RecordingStatus, RtpReport};
use crate::time::Timestamp;

/// A created call lasts at most this long.
pub const MAX_CALL_SECS: i64 = 7 * 86_400;
/// `started_at` may lie this far ahead of the server's clock (skew).
const MAX_AHEAD_SECS: i64 = 86_400;
/// A number as written, at most (characters).
const MAX_NUMBER_CHARS: usize = 64;
/// An agent's extension or id, at most (`agent_id` is VARCHAR(191)).
const MAX_AGENT_CHARS: usize = 191;

const FIELDS: [&str; 9] = [
    "direction",
    "from",
    "to",
    "started_at",
    "ended_at",
    "duration",
    "outcome",
    "agent",
    "note",
];

/// The directions a created call may have (documentation of `direction`).
#[derive(Debug, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // only its schema is used
pub enum NewCallDirection {
    Incoming,
    Outgoing,
    Internal,
}

/// The outcomes of a call (documentation of `outcome`).
#[derive(Debug, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // only its schema is used
pub enum CallOutcome {
    Answered,
    Busy,
    Declined,
    NoAnswer,
    Cancelled,
    Failed,
}

/// A call pbxbridge did not capture (a mobile phone, another PBX).
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCallBody {
    #[schema(value_type = NewCallDirection)]
    pub direction: String,
    /// The calling number as dialled or shown; normalised to E.164 with
    /// `pbx.default_country`, or kept as an extension.
    #[schema(min_length = 1, max_length = 64, example = "2001")]
    pub from: String,
    #[schema(min_length = 1, max_length = 64, example = "(415) 555-1212")]
    pub to: String,
    /// RFC 3339.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: String,
    /// RFC 3339; give this or `duration`.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<String>,
    /// Seconds from start to end; give this or `ended_at`.
    #[schema(minimum = 0, maximum = 604800)]
    pub duration: Option<f64>,
    #[schema(value_type = CallOutcome)]
    pub outcome: String,
    /// The agent: an extension (matched to its user record through the
    /// phone index), or the id of an agent record (type user) in the index.
    /// Unset: the extension on the PBX side of `from`/`to`, if there is one.
    #[schema(min_length = 1, max_length = 191)]
    pub agent: Option<String>,
    /// A first note, written with the call.
    #[schema(min_length = 1, max_length = 10000)]
    pub note: Option<String>,
}

/// A body checked: the values the call is made of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewCall {
    pub direction: Direction,
    pub from: String,
    pub to: String,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    pub outcome: Outcome,
    pub agent: Option<String>,
    pub note: Option<String>,
}

fn time(name: &str, value: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(value).ok_or_else(|| {
        ApiError::bad(
            name,
            "must be an RFC 3339 time such as 2026-11-21T10:00:00Z",
        )
    })
}

impl NewCall {
    /// Checks every field; errors name the one that is wrong.
    pub fn parse(body: Value, now: Timestamp) -> Result<NewCall, ApiError> {
        let mut f = Fields::new(body, &FIELDS)?;
        let b = NewCallBody {
            direction: f.need("direction")?,
            from: f.need("from")?,
            to: f.need("to")?,
            started_at: f.need("started_at")?,
            ended_at: f.take("ended_at")?,
            duration: f.take("duration")?,
            outcome: f.need("outcome")?,
            agent: f.take("agent")?,
            note: f.take("note")?,
        };
        let direction = match b.direction.as_str() {
            "incoming" => Direction::Incoming,
            "outgoing" => Direction::Outgoing,
            "internal" => Direction::Internal,
            _ => {
                return Err(ApiError::bad(
                    "direction",
                    "must be incoming, outgoing or internal",
                ))
            }
        };
        let outcome: Outcome = b.outcome.parse().map_err(|_| {
            let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
            ApiError::bad("outcome", format!("must be one of {}", names.join(", ")))
        })?;
        text("from", &b.from, MAX_NUMBER_CHARS, false)?;
        text("to", &b.to, MAX_NUMBER_CHARS, false)?;
        if let Some(a) = &b.agent {
            text("agent", a, MAX_AGENT_CHARS, false)?;
        }
        if let Some(n) = &b.note {
            text("note", n, MAX_BODY_CHARS, true)?;
        }
        let started_at = time("started_at", &b.started_at)?;
        if started_at.micros() < 0 {
            return Err(ApiError::bad("started_at", "must be after 1970"));
        }
        if started_at > now.saturating_add_micros(MAX_AHEAD_SECS * 1_000_000) {
            return Err(ApiError::bad(
                "started_at",
                "is more than a day in the future",
            ));
        }
        let ended_at = match (&b.ended_at, b.duration) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad(
                    "duration",
                    "give ended_at or duration, not both",
                ))
            }
            (None, None) => return Err(ApiError::bad("ended_at", "give ended_at or duration")),
            (Some(e), None) => {
                let e = time("ended_at", e)?;
                if e < started_at {
                    return Err(ApiError::bad("ended_at", "is before started_at"));
                }
                if e.micros_since(started_at) > MAX_CALL_SECS * 1_000_000 {
                    return Err(ApiError::bad(
                        "ended_at",
                        "is more than 7 days after started_at",
                    ));
                }
                e
            }
            (None, Some(d)) => {
                if !d.is_finite() || !(0.0..=MAX_CALL_SECS as f64).contains(&d) {
                    return Err(ApiError::bad(
                        "duration",
                        format!("must be 0 to {MAX_CALL_SECS} seconds"),
                    ));
                }
                started_at.saturating_add_micros((d * 1e6).round() as i64)
            }
        };
        Ok(NewCall {
            direction,
            from: b.from,
            to: b.to,
            started_at,
            ended_at,
            outcome,
            agent: b.agent,
            note: b.note,
        })
    }

    /// SHA-256 of the call as checked: the same call sent with other
    /// spacing, key order or time zone hashes alike (for Idempotency-Key).
    pub fn request_hash(&self) -> String {
        let text = serde_json::to_vec(self).unwrap_or_default();
        crate::db::sha256_hex(&text)
    }

    /// The call report stored for it; `agent` is the extension column.
    pub fn report(
        &self,
        call_id: String,
        numbers: &Normalizer,
        agent: Option<String>,
    ) -> CallReport {
        let answered = self.outcome == Outcome::Answered;
        let talk = if answered {
            self.ended_at.micros_since(self.started_at) as f64 / 1e6
        } else {
            0.0
        };
        CallReport {
            call_id,
            direction: self.direction,
            from_number: numbers.normalize(&self.from),
            to_number: numbers.normalize(&self.to),
            from_raw: Some(self.from.clone()),
            to_raw: Some(self.to.clone()),
            from_display: None,
            agent,
            started_at: self.started_at,
            answered_at: answered.then_some(self.started_at),
            ended_at: self.ended_at,
            duration: talk,
            outcome: self.outcome,
            sip_code: None,
            end_reason: end_reason(self.outcome),
            answered_elsewhere: false,
            dtmf: String::new(),
            held: false,
            recording: RecordingReport::without_file(RecordingStatus::None, None),
            sip_src: None,
            sip_dst: None,
            rtp: RtpReport::new(LegQuality::default(), LegQuality::default()),
        }
    }

    /// The extension on the PBX side when the body names no agent: the
    /// caller of an outgoing call, the callee of the others (as the tracker
    /// picks a captured call's agent).
    pub fn pbx_side_extension(&self, numbers: &Normalizer) -> Option<String> {
        let side = match self.direction {
            Direction::Outgoing => &self.from,
            _ => &self.to,
        };
        numbers.normalize(side).filter(|n| !n.starts_with('+'))
    }
}

/// What ended a call pbxbridge did not see, by its outcome.
fn end_reason(outcome: Outcome) -> EndReason {
    match outcome {
        Outcome::Answered => EndReason::CallerBye,
        Outcome::NoAnswer => EndReason::RingTimeout,
        Outcome::Cancelled => EndReason::Cancel,
        Outcome::Busy | Outcome::Declined | Outcome::Failed => EndReason::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-21T12:00:00Z").unwrap()
    }

    fn base() -> Value {
        json!({"direction": "outgoing", "from": "2001", "to": "(415) 555-1212",
               "started_at": "2026-11-21T10:00:00Z", "duration": 60, "outcome": "answered"})
    }

    fn param(v: Value) -> String {
        NewCall::parse(v, now())
            .unwrap_err()
            .problem()
            .param
            .unwrap_or_default()
    }

    fn with(k: &str, v: Value) -> Value {
        let mut b = base();
        b[k] = v;
        b
    }

    #[test]
    fn a_call_is_checked_field_by_field() {
        let c = NewCall::parse(base(), now()).unwrap();
        assert_eq!(c.ended_at.micros() - c.started_at.micros(), 60_000_000);
        assert_eq!(param(with("direction", json!("sideways"))), "direction");
        assert_eq!(param(with("outcome", json!("missed"))), "outcome");
        assert_eq!(param(with("duration", json!("60"))), "duration");
        assert_eq!(param(with("duration", json!(-1))), "duration");
        assert_eq!(param(with("duration", json!(700_000))), "duration");
        assert_eq!(
            param(with("ended_at", json!("2026-11-21T10:01:00Z"))),
            "duration"
        );
        assert_eq!(param(with("started_at", json!("yesterday"))), "started_at");
        assert_eq!(
            param(with("started_at", json!("2026-11-23T10:00:00Z"))),
            "started_at"
        );
        assert_eq!(param(with("from", json!(""))), "from");
        assert_eq!(param(with("to", json!(5))), "to");
        assert_eq!(param(with("colour", json!(5))), "colour");
        let mut b = base();
        b.as_object_mut().unwrap().remove("duration");
        assert_eq!(param(b.clone()), "ended_at");
        b["ended_at"] = json!("2026-11-21T09:00:00Z");
        assert_eq!(param(b.clone()), "ended_at");
        b["ended_at"] = json!("2026-12-21T09:00:00Z");
        assert_eq!(param(b), "ended_at");
    }

    #[test]
    fn the_documented_names_are_the_accepted_ones() {
        let doc = |s: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>| {
            serde_json::to_value(s).unwrap()["enum"].clone()
        };
        let outcomes: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            doc(<CallOutcome as utoipa::PartialSchema>::schema()),
            json!(outcomes)
        );
        let directions = json!(["incoming", "outgoing", "internal"]);
        assert_eq!(
            doc(<NewCallDirection as utoipa::PartialSchema>::schema()),
            directions
        );
        for d in directions.as_array().unwrap() {
            assert!(NewCall::parse(with("direction", d.clone()), now()).is_ok());
        }
    }

    #[test]
    fn the_same_call_hashes_alike() {
        let a = NewCall::parse(base(), now()).unwrap();
        let mut other = base();
        other["started_at"] = json!("2026-11-21T11:00:00+01:00");
        other["duration"] = json!(60.0);
        let b = NewCall::parse(other, now()).unwrap();
        assert_eq!(a.request_hash(), b.request_hash());
        let c = NewCall::parse(with("to", json!("+14155551213")), now()).unwrap();
        assert_ne!(a.request_hash(), c.request_hash());
    }

    #[test]
    fn talk_time_is_zero_unless_answered() {
        let n = Normalizer::new(
            crate::phone::parse_country("US").unwrap(),
            regex::Regex::new(r"^\d{2,6}$").unwrap(),
        );
        let c = NewCall::parse(base(), now()).unwrap();
        let r = c.report("api-x".into(), &n, None);
        assert_eq!(r.duration, 60.0);
        assert_eq!(r.to_number.as_deref(), Some("+14155551212"));
        assert_eq!(r.other_number(), Some("+14155551212"));
        assert_eq!(c.pbx_side_extension(&n).as_deref(), Some("2001"));
        let missed = NewCall::parse(with("outcome", json!("no_answer")), now()).unwrap();
        let r = missed.report("api-y".into(), &n, None);
        assert_eq!((r.duration, r.answered_at), (0.0, None));
        assert_eq!(r.ended_at, missed.ended_at);
        let odd = NewCall::parse(with("to", json!("anonymous")), now()).unwrap();
        let r = odd.report("api-z".into(), &n, None);
        assert_eq!(
            (r.to_number, r.to_raw.as_deref()),
            (None, Some("anonymous"))
        );
    }
}
