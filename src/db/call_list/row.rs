//! A call as the API lists it: every column of the call record, and its
//! links, read for a whole page in one query.

use std::collections::HashMap;

use sqlx::Row;

use crate::call::{Direction, EndReason, Outcome};
use crate::db::links::Link;
use crate::db::{Db, DbError, DbTime};
use crate::report::RecordingStatus;
use crate::time::Timestamp;

/// RTP counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RtpLeg {
    pub packets: i64,
    pub lost: i64,
    pub jitter_ms: f64,
}

/// Every column of a call record the API shows.
#[derive(Clone, Debug, PartialEq)]
pub struct CallRecord {
    pub id: i64,
    pub sensor: String,
    pub call_id: String,
    pub direction: Direction,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub other_number: Option<String>,
    pub from_raw: Option<String>,
    pub to_raw: Option<String>,
    pub from_display: Option<String>,
    pub agent: Option<String>,
    pub agent_type: Option<String>,
    pub agent_id: Option<String>,
    pub agent_name: Option<String>,
    pub started_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub ended_at: Timestamp,
    pub duration: f64,
    pub outcome: Outcome,
    pub sip_code: Option<i64>,
    pub end_reason: EndReason,
    pub answered_elsewhere: bool,
    pub dtmf: String,
    pub held: bool,
    pub recording_status: RecordingStatus,
    pub recording_path: Option<String>,
    pub recording_codec: Option<String>,
    pub recording_sample_rate: Option<i64>,
    pub recording_samples: Option<i64>,
    pub recording_key: Option<String>,
    pub caller_rtp: RtpLeg,
    pub callee_rtp: RtpLeg,
    /// The worse direction's MOS-CQ, R-factor and loss percent.
    pub mos: Option<f64>,
    pub r_factor: Option<f64>,
    pub loss_pct: Option<f64>,
    /// Both directions' quality as JSON text (`migrations/0005_call_quality.sql`).
    pub quality: Option<String>,
    /// `captured` or `api`.
    pub origin: String,
    pub updated_at: Timestamp,
    pub note_count: i64,
}

pub(super) const COLUMNS: &str = "c.id, c.sensor, c.call_id, c.direction, c.from_number, \
    c.to_number, c.other_number, c.from_raw, c.to_raw, c.from_display, c.agent, c.agent_type, \
    c.agent_id, c.agent_name, c.started_at, c.answered_at, c.ended_at, c.duration, c.outcome, \
    c.sip_code, c.end_reason, c.answered_elsewhere, c.dtmf, c.held, c.recording_status, \
    c.recording_path, c.recording_codec, c.recording_sample_rate, c.recording_samples, \
    c.recording_key, c.caller_rtp_packets, c.caller_rtp_lost, c.caller_rtp_jitter_ms, \
    c.callee_rtp_packets, c.callee_rtp_lost, c.callee_rtp_jitter_ms, c.origin, \
    COALESCE(c.updated_at, c.written_at), c.note_count, c.mos, c.r_factor, c.loss_pct, \
    c.quality";

/// A row of `COLUMNS` → `CallRecord` (a macro: each backend's row type).
macro_rules! call_record {
    ($r:expr) => {{
        let r = $r;
        let started: DbTime = r.try_get(14)?;
        let answered: Option<DbTime> = r.try_get(15)?;
        let ended: DbTime = r.try_get(16)?;
        let updated: DbTime = r.try_get(37)?;
        CallRecord {
            id: r.try_get(0)?,
            sensor: r.try_get(1)?,
            call_id: r.try_get(2)?,
            direction: crate::db::names::decode("direction", r.try_get(3)?)?,
            from_number: r.try_get(4)?,
            to_number: r.try_get(5)?,
            other_number: r.try_get(6)?,
            from_raw: r.try_get(7)?,
            to_raw: r.try_get(8)?,
            from_display: r.try_get(9)?,
            agent: r.try_get(10)?,
            agent_type: r.try_get(11)?,
            agent_id: r.try_get(12)?,
            agent_name: r.try_get(13)?,
            started_at: started.0,
            answered_at: answered.map(|t| t.0),
            ended_at: ended.0,
            duration: r.try_get(17)?,
            outcome: crate::db::names::decode("outcome", r.try_get(18)?)?,
            sip_code: r.try_get(19)?,
            end_reason: crate::db::names::decode("end_reason", r.try_get(20)?)?,
            answered_elsewhere: r.try_get(21)?,
            dtmf: r.try_get(22)?,
            held: r.try_get(23)?,
            recording_status: crate::db::names::decode("recording_status", r.try_get(24)?)?,
            recording_path: r.try_get(25)?,
            recording_codec: r.try_get(26)?,
            recording_sample_rate: r.try_get(27)?,
            recording_samples: r.try_get(28)?,
            recording_key: r.try_get(29)?,
            caller_rtp: RtpLeg {
                packets: r.try_get(30)?,
                lost: r.try_get(31)?,
                jitter_ms: r.try_get(32)?,
            },
            callee_rtp: RtpLeg {
                packets: r.try_get(33)?,
                lost: r.try_get(34)?,
                jitter_ms: r.try_get(35)?,
            },
            origin: r.try_get(36)?,
            updated_at: updated.0,
            note_count: r.try_get(38)?,
            mos: r.try_get(39)?,
            r_factor: r.try_get(40)?,
            loss_pct: r.try_get(41)?,
            quality: r.try_get(42)?,
        }
    }};
}
pub(super) use call_record;

/// Links read with one page, at most (a page is at most 100 calls; a call
/// with more links than this shows the first ones).
const MAX_PAGE_LINKS: i64 = 10_000;

/// The links of `calls`, oldest first per call; removed ones only when
/// `removed` is set.
pub async fn links_of(
    db: &Db,
    calls: &[i64],
    removed: bool,
) -> Result<HashMap<i64, Vec<Link>>, DbError> {
    let mut out: HashMap<i64, Vec<Link>> = HashMap::new();
    if calls.is_empty() {
        return Ok(out);
    }
    let q = |source| DbError::Query {
        what: "reading the links of calls",
        source,
    };
    let sql = db.sql(&format!(
        "SELECT call_row, record_type, record_id, field, source, via_type, via_id, display_name, \
         created_at, removed_at FROM {{call_links}} WHERE call_row IN ({}){} \
         ORDER BY call_row, id LIMIT ?",
        vec!["?"; calls.len()].join(", "),
        if removed {
            ""
        } else {
            " AND removed_at IS NULL"
        }
    ));
    let rows: Vec<(i64, Link)> = crate::db::with_pool!(db.pool(), p => {
        let mut query = sqlx::query(&sql);
        for id in calls {
            query = query.bind(*id);
        }
        let rows = query.bind(MAX_PAGE_LINKS).fetch_all(p).await.map_err(q)?;
        rows.iter()
            .map(|r| -> Result<(i64, Link), sqlx::Error> {
                let created: DbTime = r.try_get(8)?;
                let removed: Option<DbTime> = r.try_get(9)?;
                Ok((
                    r.try_get(0)?,
                    Link {
                        record_type: r.try_get(1)?,
                        record_id: r.try_get(2)?,
                        field: r.try_get(3)?,
                        source: r.try_get(4)?,
                        via_type: r.try_get(5)?,
                        via_id: r.try_get(6)?,
                        display_name: r.try_get(7)?,
                        created_at: created.0,
                        removed_at: removed.map(|t| t.0),
                    },
                ))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(q)?
    });
    for (call, link) in rows {
        out.entry(call).or_default().push(link);
    }
    Ok(out)
}
