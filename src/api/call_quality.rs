//! A call's quality as the API shows it: the worse direction's MOS, R and
//! loss (the `mos`, `r_factor`, `loss_pct` columns) and each direction's
//! figures, read from the `quality` JSON column.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Lost-packet runs by length.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct LossRuns {
    pub len_1: u64,
    pub len_2: u64,
    pub len_3_5: u64,
    pub len_6_plus: u64,
}

/// What one side sent, after the answer, as received at the capture point.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct DirectionQuality {
    /// Sequence numbers the sender used (received in order + lost).
    pub expected: u64,
    /// Packets that arrived, duplicates and late ones included.
    pub received: u64,
    /// Never played: lost, or arrived beyond the reorder window.
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Arrived after their place was given up.
    pub late: u64,
    pub loss_pct: f64,
    /// RFC 3550 interarrival jitter at the end, milliseconds.
    pub jitter_ms: f64,
    pub max_jitter_ms: f64,
    /// Longest time between two packets, milliseconds.
    pub max_gap_ms: f64,
    /// Longest run of consecutive lost packets.
    pub max_burst: u64,
    pub loss_runs: LossRuns,
    /// G.107 BurstR (1: random loss).
    pub burst_ratio: f64,
    /// G.107 E-model R-factor.
    pub r_factor: Option<f64>,
    /// MOS-CQ from the R-factor.
    pub mos: Option<f64>,
    /// The receiver's RTCP reports about this direction (SR/RR report
    /// blocks, round trip, RTCP-XR VoIP metrics), when it sent any.
    #[schema(value_type = Option<Object>)]
    pub rtcp: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Stored {
    caller: Option<DirectionQuality>,
    callee: Option<DirectionQuality>,
}

/// Call quality (null when no RTP flowed after the answer).
#[derive(Debug, Serialize, ToSchema)]
pub struct CallQuality {
    /// The worse direction's MOS-CQ (ITU-T G.107 E-model, 1 to 4.5).
    pub mos: Option<f64>,
    pub r_factor: Option<f64>,
    /// The worse direction's packet loss, percent.
    pub loss_pct: Option<f64>,
    /// What the caller sent.
    pub caller: Option<DirectionQuality>,
    /// What the callee sent.
    pub callee: Option<DirectionQuality>,
}

impl CallQuality {
    /// From the row's columns; `None` when nothing was measured.
    pub fn from_columns(
        mos: Option<f64>,
        r_factor: Option<f64>,
        loss_pct: Option<f64>,
        json: Option<&str>,
    ) -> Option<CallQuality> {
        let stored: Stored = json
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        if mos.is_none() && loss_pct.is_none() && stored.caller.is_none() && stored.callee.is_none()
        {
            return None;
        }
        Some(CallQuality {
            mos,
            r_factor,
            loss_pct,
            caller: stored.caller,
            callee: stored.callee,
        })
    }
}
