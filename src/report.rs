//! The finished call as the outside world sees it: the `--json` line and the `calls` row.

use serde::{Deserialize, Serialize};

use std::fmt;
use std::str::FromStr;

use crate::call::{parse_name, CallRecord, Direction, EndReason, LegQuality, Outcome, UnknownName};
use crate::phone::Normalizer;
use crate::time::Timestamp;

/// Where a call's recording stands: the `recording.status` of the JSON and
/// the `recording_status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStatus {
    /// Not recorded: not answered, or recording is disabled.
    None,
    /// Finished, waiting in the local spool for remote storage.
    Pending,
    /// In its final place (`recording.dir`, or remote storage).
    Stored,
    /// Writing the file failed.
    Failed,
    /// Deleted by retention.
    Expired,
    /// Answered audio used a codec we cannot decode.
    UnsupportedCodec,
    /// Answered audio was SRTP, which we do not decrypt.
    Encrypted,
    /// Answered, but no RTP was seen.
    NoAudio,
}

impl RecordingStatus {
    pub const ALL: [RecordingStatus; 8] = [
        RecordingStatus::None,
        RecordingStatus::Pending,
        RecordingStatus::Stored,
        RecordingStatus::Failed,
        RecordingStatus::Expired,
        RecordingStatus::UnsupportedCodec,
        RecordingStatus::Encrypted,
        RecordingStatus::NoAudio,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordingStatus::None => "none",
            RecordingStatus::Pending => "pending",
            RecordingStatus::Stored => "stored",
            RecordingStatus::Failed => "failed",
            RecordingStatus::Expired => "expired",
            RecordingStatus::UnsupportedCodec => "unsupported_codec",
            RecordingStatus::Encrypted => "encrypted",
            RecordingStatus::NoAudio => "no_audio",
        }
    }
}

impl FromStr for RecordingStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        parse_name("recording_status", &Self::ALL, Self::as_str, s)
    }
}

impl fmt::Display for RecordingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingReport {
    pub status: RecordingStatus,
    /// The local file (`recording.dir`); with remote storage, where it waits.
    pub path: Option<String>,
    /// `share` or `s3` when the recording goes to remote storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The object key in remote storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// SHA-256 of the file, once the uploader has read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub codec: Option<String>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u16>,
    pub samples: Option<u64>,
    pub bytes: Option<u64>,
    /// Why a recording is missing, in words, when it is.
    pub detail: Option<String>,
}

impl RecordingReport {
    pub fn without_file(status: RecordingStatus, detail: Option<String>) -> Self {
        RecordingReport {
            status,
            path: None,
            backend: None,
            key: None,
            sha256: None,
            codec: None,
            sample_rate: None,
            channels: None,
            samples: None,
            bytes: None,
            detail,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtpReport {
    /// What the caller sent (caller → callee).
    pub caller: LegQuality,
    /// What the callee sent (callee → caller).
    pub callee: LegQuality,
    /// The worse direction's E-model MOS-CQ, R-factor and loss (percent),
    /// over the directions that carried RTP after the answer: the figures a
    /// CRM filters on (`min_mos`, `max_loss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mos: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f64>,
}

impl RtpReport {
    pub fn new(caller: LegQuality, callee: LegQuality) -> Self {
        let dirs = || {
            [&caller, &callee]
                .into_iter()
                .filter_map(|l| l.quality.as_ref())
                .filter(|q| q.expected > 0)
        };
        let min = |it: &mut dyn Iterator<Item = f64>| it.reduce(f64::min);
        let mos = min(&mut dirs().filter_map(|q| q.mos));
        let r_factor = min(&mut dirs().filter_map(|q| q.r_factor));
        let loss_pct = dirs().map(|q| q.loss_pct).reduce(f64::max);
        RtpReport {
            caller,
            callee,
            mos,
            r_factor,
            loss_pct,
        }
    }
}

/// A finished call as it leaves pbxbridge: the core's `CallRecord` with its
/// numbers normalised and its recording's fate added. This is what the
/// outbox holds, `--json` prints and the `calls` table stores. (Not a CRM
/// record, which is a row of the CRM's own tables: `config::CrmRecord`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    pub call_id: String,
    pub direction: Direction,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub from_raw: Option<String>,
    pub to_raw: Option<String>,
    pub from_display: Option<String>,
    pub agent: Option<String>,
    pub started_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub ended_at: Timestamp,
    /// Talk time in seconds.
    pub duration: f64,
    pub outcome: Outcome,
    pub sip_code: Option<u16>,
    pub end_reason: EndReason,
    pub answered_elsewhere: bool,
    pub dtmf: String,
    pub held: bool,
    pub recording: RecordingReport,
    pub sip_src: Option<String>,
    pub sip_dst: Option<String>,
    pub rtp: RtpReport,
}

impl CallReport {
    pub fn new(rec: &CallRecord, numbers: &Normalizer, recording: RecordingReport) -> Self {
        let norm = |raw: &Option<String>| raw.as_deref().and_then(|r| numbers.normalize(r));
        CallReport {
            call_id: rec.call_id.clone(),
            direction: rec.direction,
            from_number: norm(&rec.from_raw),
            to_number: norm(&rec.to_raw),
            from_raw: rec.from_raw.clone(),
            to_raw: rec.to_raw.clone(),
            from_display: rec.from_display.clone(),
            agent: rec.agent.clone(),
            started_at: rec.started_at,
            answered_at: rec.answered_at,
            ended_at: rec.ended_at,
            duration: rec.talk_micros() as f64 / 1e6,
            outcome: rec.outcome,
            sip_code: rec.sip_code,
            end_reason: rec.end_reason,
            answered_elsewhere: rec.answered_elsewhere,
            dtmf: rec.dtmf.clone(),
            held: rec.held,
            recording,
            sip_src: rec.sip_src.clone(),
            sip_dst: rec.sip_dst.clone(),
            rtp: RtpReport::new(rec.caller_rtp.clone(), rec.callee_rtp.clone()),
        }
    }
}

impl CallReport {
    /// The party outside the PBX, whose number is matched against the CRM:
    /// the caller of an incoming call, the callee of an outgoing one. Internal
    /// calls have none; for a call of unknown direction the caller is assumed.
    pub fn other_number(&self) -> Option<&str> {
        crate::call::other_party(
            self.direction,
            self.from_number.as_deref(),
            self.to_number.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name a column or JSON field can hold: `as_str`, serde and
    /// `FromStr` agree, so the database and the JSON spell them alike.
    fn names_agree<T>(all: &[T], as_str: fn(T) -> &'static str)
    where
        T: Copy + fmt::Debug + PartialEq + Serialize + serde::de::DeserializeOwned,
        T: FromStr<Err = UnknownName>,
    {
        for v in all.iter().copied() {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", as_str(v)));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
            assert_eq!(as_str(v).parse::<T>().unwrap(), v);
        }
        let err = "Stored ".parse::<T>().unwrap_err();
        assert_eq!(err.value, "Stored ");
        assert!(err.known.contains(as_str(all[0])), "{err}");
    }

    #[test]
    fn enum_names_are_the_column_values() {
        names_agree(&Direction::ALL, Direction::as_str);
        names_agree(&Outcome::ALL, Outcome::as_str);
        names_agree(&EndReason::ALL, EndReason::as_str);
        names_agree(&RecordingStatus::ALL, RecordingStatus::as_str);
        assert_eq!(
            RecordingStatus::UnsupportedCodec.to_string(),
            "unsupported_codec"
        );
    }
}
