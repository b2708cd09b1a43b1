//! A call as the API shows it in lists, timelines and the detail route: the
//! call record, its linked records, whether it has notes, and its recording.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::call::{Direction, EndReason, Outcome};
use crate::db::call_list::{CallRecord, RtpLeg, RECORDED};
use crate::db::links::Link;
use crate::db::notes::NoteRow;
use crate::report::RecordingStatus;
use crate::time::Timestamp;

/// The caller's side.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallFrom {
    /// E.164, or an internal extension.
    pub number: Option<String>,
    /// As the SIP message had it.
    pub raw: Option<String>,
    /// The display name the caller sent.
    pub display: Option<String>,
}

/// The called side.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallTo {
    /// E.164, or an internal extension.
    pub number: Option<String>,
    /// As the SIP message had it.
    pub raw: Option<String>,
}

/// The PBX user on the call, and the CRM record their extension matched.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallAgent {
    pub extension: Option<String>,
    /// The CRM record type of the agent (e.g. `user`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The agent's CRM record id: what see-own keys are matched on.
    pub id: Option<String>,
    pub name: Option<String>,
}

/// RTP counters of one direction.
#[derive(Debug, Serialize, ToSchema)]
pub struct RtpStats {
    pub packets: i64,
    pub lost: i64,
    pub jitter_ms: f64,
}

impl From<RtpLeg> for RtpStats {
    fn from(l: RtpLeg) -> Self {
        RtpStats {
            packets: l.packets,
            lost: l.lost,
            jitter_ms: l.jitter_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallRtp {
    /// Media the caller sent.
    pub caller: RtpStats,
    /// Media the callee sent.
    pub callee: RtpStats,
}

/// A CRM record the call is linked to.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedRecord {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub display_name: Option<String>,
    /// The phone field that matched, or the relation that led here.
    pub field: Option<String>,
    /// auto (matched at call end), manual (linked by a person) or backfill
    /// (match-past-calls).
    #[schema(value_type = LinkSourceName)]
    pub source: String,
}

/// How a link came about.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkSourceName {
    Auto,
    Manual,
    Backfill,
}

impl From<&Link> for LinkedRecord {
    fn from(l: &Link) -> Self {
        LinkedRecord {
            kind: l.record_type.clone(),
            id: l.record_id.clone(),
            display_name: l.display_name.clone(),
            field: l.field.clone(),
            source: l.source.clone(),
        }
    }
}

/// A call's recording.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallRecording {
    /// stored and pending recordings can be played (pending ones are still
    /// in the local spool); the other statuses say why there is none.
    #[schema(value_type = RecordingStatusName)]
    pub status: RecordingStatus,
    /// Seconds of audio (samples / rate, else the talk time); null when
    /// there is no recording.
    pub duration: Option<f64>,
    /// The file's type, from its name: wav for captured calls.
    pub format: Option<String>,
    /// Where to play it (`GET`, with Range); null when there is none.
    pub url: Option<String>,
}

/// A call record with its links, notes flag and recording.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallItem {
    /// The row id: `/v1/calls/{id}`.
    pub id: i64,
    /// The sensor (pbx.sensor) that saw the call.
    pub sensor: String,
    /// The SIP Call-ID (hashed past 255 bytes).
    pub call_id: String,
    #[schema(value_type = DirectionName)]
    pub direction: Direction,
    pub from: CallFrom,
    pub to: CallTo,
    /// The party outside the PBX (E.164), for incoming and outgoing calls.
    pub other_number: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answered_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub ended_at: Timestamp,
    /// Talk time in seconds (0 when not answered).
    pub duration: f64,
    #[schema(value_type = OutcomeName)]
    pub outcome: Outcome,
    /// The final SIP response code.
    pub sip_code: Option<i64>,
    #[schema(value_type = EndReasonName)]
    pub end_reason: EndReason,
    /// Null when no PBX user was on the call.
    pub agent: Option<CallAgent>,
    /// Digits sent during the call.
    pub dtmf: String,
    pub held: bool,
    /// Another device of the called party took the call.
    pub answered_elsewhere: bool,
    /// captured (seen on the wire) or api (created by POST /v1/calls).
    #[schema(value_type = CallOriginName)]
    pub origin: String,
    /// When the call, its links, notes or recording last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub rtp: CallRtp,
    /// Per-direction quality after the answer and the E-model MOS; null
    /// when no RTP flowed after the answer.
    pub quality: Option<super::call_quality::CallQuality>,
    /// Linked CRM records (removed links left out).
    pub records: Vec<LinkedRecord>,
    pub has_notes: bool,
    pub recording: CallRecording,
}

/// `direction`'s values.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DirectionName {
    Incoming,
    Outgoing,
    Internal,
    Unknown,
}

/// `outcome`'s values.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeName {
    Answered,
    Busy,
    Declined,
    NoAnswer,
    Cancelled,
    Failed,
}

/// `end_reason`'s values.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReasonName {
    CallerBye,
    CalleeBye,
    Cancel,
    Rejected,
    RtpTimeout,
    RingTimeout,
    NoResponse,
    MaxDuration,
    CaptureEnd,
    Shutdown,
    CrashRecovered,
}

/// `recording.status`'s values.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStatusName {
    None,
    Pending,
    Stored,
    Failed,
    Expired,
    UnsupportedCodec,
    Encrypted,
    NoAudio,
}

/// `source`'s values.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallOriginName {
    Captured,
    Api,
}

/// The recording's file type, from the extension of its storage key or
/// file name (`….wav` → `wav`).
fn format_of(c: &CallRecord) -> Option<String> {
    let name = c.recording_key.as_deref().or(c.recording_path.as_deref())?;
    let file = name.rsplit(['/', '\\']).next()?;
    let (_, ext) = file.rsplit_once('.')?;
    let ok = !ext.is_empty() && ext.len() <= 8 && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| ext.to_ascii_lowercase())
}

fn recording(c: &CallRecord) -> CallRecording {
    if !RECORDED.contains(&c.recording_status) {
        return CallRecording {
            status: c.recording_status,
            duration: None,
            format: None,
            url: None,
        };
    }
    let duration = match (c.recording_samples, c.recording_sample_rate) {
        (Some(n), Some(rate)) if rate > 0 => Some(n as f64 / rate as f64),
        _ => Some(c.duration),
    };
    CallRecording {
        status: c.recording_status,
        duration,
        format: format_of(c).or_else(|| c.recording_codec.as_ref().map(|_| "wav".to_owned())),
        url: Some(format!("/v1/calls/{}/recording", c.id)),
    }
}

impl CallItem {
    /// `links` are the call's links; removed ones are left out here.
    pub fn new(c: CallRecord, links: &[Link]) -> CallItem {
        let agent = (c.agent.is_some() || c.agent_id.is_some()).then(|| CallAgent {
            extension: c.agent.clone(),
            kind: c.agent_type.clone(),
            id: c.agent_id.clone(),
            name: c.agent_name.clone(),
        });
        let recording = recording(&c);
        CallItem {
            id: c.id,
            sensor: c.sensor,
            call_id: c.call_id,
            direction: c.direction,
            from: CallFrom {
                number: c.from_number,
                raw: c.from_raw,
                display: c.from_display,
            },
            to: CallTo {
                number: c.to_number,
                raw: c.to_raw,
            },
            other_number: c.other_number,
            started_at: c.started_at,
            answered_at: c.answered_at,
            ended_at: c.ended_at,
            duration: c.duration,
            outcome: c.outcome,
            sip_code: c.sip_code,
            end_reason: c.end_reason,
            agent,
            dtmf: c.dtmf,
            held: c.held,
            answered_elsewhere: c.answered_elsewhere,
            origin: c.origin,
            updated_at: c.updated_at,
            quality: super::call_quality::CallQuality::from_columns(
                c.mos,
                c.r_factor,
                c.loss_pct,
                c.quality.as_deref(),
            ),
            rtp: CallRtp {
                caller: c.caller_rtp.into(),
                callee: c.callee_rtp.into(),
            },
            records: links
                .iter()
                .filter(|l| l.removed_at.is_none())
                .map(LinkedRecord::from)
                .collect(),
            has_notes: c.note_count > 0,
            recording,
        }
    }

    /// A page of calls with the links `links_of` read for them.
    pub fn page(calls: Vec<CallRecord>, mut links: HashMap<i64, Vec<Link>>) -> Vec<CallItem> {
        calls
            .into_iter()
            .map(|c| {
                let l = links.remove(&c.id).unwrap_or_default();
                CallItem::new(c, &l)
            })
            .collect()
    }
}

/// A link with its history: removed links stay, with when.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkHistory {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub display_name: Option<String>,
    pub field: Option<String>,
    #[schema(value_type = LinkSourceName)]
    pub source: String,
    /// The record this one was reached through (a related record).
    pub via_type: Option<String>,
    pub via_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Set when a person unlinked it; matching will not link it again.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub removed_at: Option<Timestamp>,
}

impl From<Link> for LinkHistory {
    fn from(l: Link) -> Self {
        LinkHistory {
            kind: l.record_type,
            id: l.record_id,
            display_name: l.display_name,
            field: l.field,
            source: l.source,
            via_type: l.via_type,
            via_id: l.via_id,
            created_at: l.created_at,
            removed_at: l.removed_at,
        }
    }
}

/// A note on a call.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallNoteItem {
    pub id: i64,
    pub author: Option<String>,
    pub body: String,
    /// The CRM record status this note set, if any.
    pub status: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<NoteRow> for CallNoteItem {
    fn from(n: NoteRow) -> Self {
        CallNoteItem {
            id: n.id,
            author: n.author,
            body: n.body,
            status: n.status,
            created_at: n.created_at,
            updated_at: n.updated_at,
        }
    }
}

/// One call: the list item, its notes, and every link with its history.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallDetail {
    #[serde(flatten)]
    pub call: CallItem,
    /// Oldest first.
    pub notes: Vec<CallNoteItem>,
    /// Every link, removed ones included (with removed_at).
    pub links: Vec<LinkHistory>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema-only enums list exactly the names the database holds.
    #[test]
    fn schema_names_match_the_enums() {
        fn names<T: Serialize>(v: &[T]) -> Vec<String> {
            v.iter()
                .map(|x| {
                    serde_json::to_value(x)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        }
        use DirectionName as D;
        assert_eq!(
            names(&[D::Incoming, D::Outgoing, D::Internal, D::Unknown]),
            Direction::ALL.map(|d| d.as_str().to_owned())
        );
        use OutcomeName as O;
        assert_eq!(
            names(&[
                O::Answered,
                O::Busy,
                O::Declined,
                O::NoAnswer,
                O::Cancelled,
                O::Failed
            ]),
            Outcome::ALL.map(|d| d.as_str().to_owned())
        );
        use EndReasonName as E;
        assert_eq!(
            names(&[
                E::CallerBye,
                E::CalleeBye,
                E::Cancel,
                E::Rejected,
                E::RtpTimeout,
                E::RingTimeout,
                E::NoResponse,
                E::MaxDuration,
                E::CaptureEnd,
                E::Shutdown,
                E::CrashRecovered
            ]),
            EndReason::ALL.map(|d| d.as_str().to_owned())
        );
        use RecordingStatusName as R;
        assert_eq!(
            names(&[
                R::None,
                R::Pending,
                R::Stored,
                R::Failed,
                R::Expired,
                R::UnsupportedCodec,
                R::Encrypted,
                R::NoAudio
            ]),
            RecordingStatus::ALL.map(|d| d.as_str().to_owned())
        );
    }
}
