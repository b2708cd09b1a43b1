//! The finished call as the outside world sees it: the `--json` line and the `calls` row.

use serde::{Deserialize, Serialize};

use crate::call::{CallRecord, LegQuality};
use crate::matching::number::Normalizer;
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingReport {
    /// `stored`, `pending` (finished, waiting in the local spool for remote
    /// storage), `none` (not answered), `no_audio` (answered, no RTP seen),
    /// `unsupported_codec`, `encrypted` (SRTP), or `failed`.
    pub status: String,
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
    pub fn without_file(status: &str, detail: Option<String>) -> Self {
        RecordingReport {
            status: status.into(),
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
    pub caller: LegQuality,
    pub callee: LegQuality,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    pub call_id: String,
    pub direction: String,
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
    pub outcome: String,
    pub sip_code: Option<u16>,
    pub end_reason: String,
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
            direction: rec.direction.as_str().into(),
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
            outcome: rec.outcome.as_str().into(),
            sip_code: rec.sip_code,
            end_reason: rec.end_reason.as_str().into(),
            answered_elsewhere: rec.answered_elsewhere,
            dtmf: rec.dtmf.clone(),
            held: rec.held,
            recording,
            sip_src: rec.sip_src.clone(),
            sip_dst: rec.sip_dst.clone(),
            rtp: RtpReport {
                caller: rec.caller_rtp.clone(),
                callee: rec.callee_rtp.clone(),
            },
        }
    }
}

impl CallReport {
    /// The party outside the PBX, whose number is matched against the CRM:
    /// the caller of an incoming call, the callee of an outgoing one. Internal
    /// calls have none; for a call of unknown direction the caller is assumed.
    pub fn other_number(&self) -> Option<&str> {
        match self.direction.as_str() {
            "incoming" => self.from_number.as_deref(),
            "outgoing" => self.to_number.as_deref(),
            "internal" => None,
            _ => self.from_number.as_deref().or(self.to_number.as_deref()),
        }
    }
}
