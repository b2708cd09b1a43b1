//! Writing finished calls and their links: one transaction per batch, each
//! call upserted under its (sensor, Call-ID) key, so a retry, a restart or a
//! replayed capture never makes a second row.

use std::collections::HashMap;

use sqlx::Row;

use super::{Backend, DbError, DbTime, Dialect};
use crate::report::{CallReport, RecordingStatus};

/// How a link between a call and a CRM record came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkSource {
    /// Matched when the call ended.
    Auto,
    /// Linked by a person.
    Manual,
    /// Found later by `match-past-calls`.
    Backfill,
}

impl LinkSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkSource::Auto => "auto",
            LinkSource::Manual => "manual",
            LinkSource::Backfill => "backfill",
        }
    }
}

/// A link to add; an existing link (or a removed one) is left as it is.
#[derive(Clone, Debug, PartialEq)]
pub struct NewLink {
    pub record_type: String,
    pub record_id: String,
    /// The phone field that matched, or the relation that led here.
    pub field: Option<String>,
    pub source: LinkSource,
    /// The record this one was reached through, for related records.
    pub via: Option<(String, String)>,
    pub display_name: Option<String>,
}

/// A finished call with what matching found for it.
#[derive(Clone, Debug)]
pub struct CallWrite<'a> {
    pub report: &'a CallReport,
    /// The record (type, id, name) whose phone or extension is the agent's.
    pub agent: Option<(String, String, Option<String>)>,
    pub links: Vec<NewLink>,
}

impl<'a> CallWrite<'a> {
    pub fn unmatched(report: &'a CallReport) -> Self {
        CallWrite {
            report,
            agent: None,
            links: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub calls: usize,
    pub links_added: u64,
}

/// The key a Call-ID is stored under: itself, or for one longer than the
/// 255-byte column its first 180 bytes and a SHA-256 of the whole.
pub fn call_key(call_id: &str) -> std::borrow::Cow<'_, str> {
    if call_id.len() <= 255 {
        return std::borrow::Cow::Borrowed(call_id);
    }
    let mut cut = 180;
    while !call_id.is_char_boundary(cut) {
        cut -= 1;
    }
    let hex = super::sha256_hex(call_id.as_bytes());
    std::borrow::Cow::Owned(format!("{}~sha256:{hex}", &call_id[..cut]))
}

const CALL_COLUMNS: [&str; 47] = [
    "sensor",
    "call_id",
    "direction",
    "from_number",
    "to_number",
    "other_number",
    "from_raw",
    "to_raw",
    "from_display",
    "agent",
    "agent_type",
    "agent_id",
    "agent_name",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "outcome",
    "sip_code",
    "end_reason",
    "answered_elsewhere",
    "dtmf",
    "held",
    "recording_status",
    "recording_path",
    "recording_codec",
    "recording_sample_rate",
    "recording_channels",
    "recording_samples",
    "recording_bytes",
    "recording_backend",
    "recording_key",
    "recording_sha256",
    "sip_src",
    "sip_dst",
    "caller_rtp_packets",
    "caller_rtp_lost",
    "caller_rtp_jitter_ms",
    "callee_rtp_packets",
    "callee_rtp_lost",
    "callee_rtp_jitter_ms",
    "mos",
    "r_factor",
    "loss_pct",
    "quality",
    "written_at",
    "updated_at",
];

const LINK_COLUMNS: [&str; 9] = [
    "call_row",
    "record_type",
    "record_id",
    "field",
    "source",
    "via_type",
    "via_id",
    "display_name",
    "created_at",
];

fn upsert_sql(d: &Dialect, rows: usize) -> String {
    let alias = match d.backend {
        Backend::MySql => "",
        _ => " AS cur",
    };
    format!(
        "INSERT INTO {{calls}}{alias} ({}) VALUES {}{}",
        CALL_COLUMNS.join(", "),
        Dialect::value_rows(CALL_COLUMNS.len(), rows),
        upsert_clause(d)
    )
}

/// Replaces the row's columns, except that a recording the uploader has
/// stored (or retention expired) keeps its `recording_*` columns: a retry,
/// restart or replay re-upserts the call with the recorder's `pending`.
fn upsert_clause(d: &Dialect) -> String {
    let keep = format!(
        "recording_status IN ('{}', '{}')",
        RecordingStatus::Stored.as_str(),
        RecordingStatus::Expired.as_str()
    );
    let cols = CALL_COLUMNS.get(2..).unwrap_or_default();
    let (frozen, plain): (Vec<&str>, Vec<&str>) =
        cols.iter().partition(|c| c.starts_with("recording_"));
    let mut sets = Vec::with_capacity(cols.len());
    match d.backend {
        Backend::MySql => {
            // MySQL assigns left to right and later expressions see the new
            // values: the status, which the others test, goes last.
            let (status, rest): (Vec<&str>, Vec<&str>) =
                frozen.iter().partition(|c| **c == "recording_status");
            sets.extend(plain.iter().map(|c| format!("{c} = VALUES({c})")));
            sets.extend(
                rest.iter()
                    .chain(&status)
                    .map(|c| format!("{c} = IF({keep}, {c}, VALUES({c}))")),
            );
            format!(" ON DUPLICATE KEY UPDATE {}", sets.join(", "))
        }
        _ => {
            sets.extend(plain.iter().map(|c| format!("{c} = excluded.{c}")));
            sets.extend(
                frozen.iter().map(|c| {
                    format!("{c} = CASE WHEN cur.{keep} THEN cur.{c} ELSE excluded.{c} END")
                }),
            );
            format!(
                " ON CONFLICT (sensor, call_id) DO UPDATE SET {}",
                sets.join(", ")
            )
        }
    }
}

fn links_sql(d: &Dialect, rows: usize) -> String {
    format!(
        "{} {{call_links}} ({}) VALUES {}{}",
        d.insert_ignore(),
        LINK_COLUMNS.join(", "),
        Dialect::value_rows(LINK_COLUMNS.len(), rows),
        d.on_conflict_ignore()
    )
}

/// Text longer than a VARCHAR column would make the whole batch fail on
/// PostgreSQL and MySQL's strict mode; such values are cut, never refused.
fn fit(s: &Option<String>, max: usize) -> Option<String> {
    s.as_ref().map(|v| {
        if v.len() <= max {
            v.clone()
        } else {
            let mut cut = max;
            while !v.is_char_boundary(cut) {
                cut -= 1;
            }
            v[..cut].to_owned()
        }
    })
}

/// Both directions' quality figures for the `quality` column; NULL when
/// neither was measured (calls made through the API, older outbox files).
fn quality_json(rtp: &crate::report::RtpReport) -> Option<String> {
    let (caller, callee) = (&rtp.caller.quality, &rtp.callee.quality);
    if caller.is_none() && callee.is_none() {
        return None;
    }
    serde_json::to_string(&serde_json::json!({ "caller": caller, "callee": callee })).ok()
}

macro_rules! bind_call {
    ($q:expr, $sensor:expr, $w:expr, $now:expr) => {{
        let w = $w;
        let c = w.report;
        let r = &c.recording;
        let (agent_type, agent_id, agent_name) = match &w.agent {
            Some((t, i, n)) => (Some(t.clone()), Some(i.clone()), n.clone()),
            None => (None, None, None),
        };
        $q.bind($sensor)
            .bind(call_key(&c.call_id).into_owned())
            .bind(c.direction.as_str())
            .bind(fit(&c.from_number, 64))
            .bind(fit(&c.to_number, 64))
            .bind(fit(&c.other_number().map(str::to_owned), 64))
            .bind(c.from_raw.clone())
            .bind(c.to_raw.clone())
            .bind(c.from_display.clone())
            .bind(fit(&c.agent, 64))
            .bind(agent_type)
            .bind(agent_id)
            .bind(fit(&agent_name, 255))
            .bind(DbTime(c.started_at))
            .bind(c.answered_at.map(DbTime))
            .bind(DbTime(c.ended_at))
            .bind(c.duration)
            .bind(c.outcome.as_str())
            .bind(c.sip_code.map(i64::from))
            .bind(c.end_reason.as_str())
            .bind(c.answered_elsewhere)
            .bind(c.dtmf.clone())
            .bind(c.held)
            .bind(r.status.as_str())
            .bind(r.path.clone())
            .bind(r.codec.clone())
            .bind(r.sample_rate.map(i64::from))
            .bind(r.channels.map(i64::from))
            .bind(r.samples.map(|v| v as i64))
            .bind(r.bytes.map(|v| v as i64))
            .bind(fit(&r.backend, 16))
            .bind(fit(&r.key, 512))
            .bind(fit(&r.sha256, 64))
            .bind(fit(&c.sip_src, 64))
            .bind(fit(&c.sip_dst, 64))
            .bind(c.rtp.caller.packets as i64)
            .bind(c.rtp.caller.lost as i64)
            .bind(c.rtp.caller.jitter_ms)
            .bind(c.rtp.callee.packets as i64)
            .bind(c.rtp.callee.lost as i64)
            .bind(c.rtp.callee.jitter_ms)
            .bind(c.rtp.mos)
            .bind(c.rtp.r_factor)
            .bind(c.rtp.loss_pct)
            .bind(quality_json(&c.rtp))
            .bind($now)
            .bind($now)
    }};
}

impl super::Db {
    /// Writes finished calls without matching them (replay tools, tests).
    pub async fn upsert_calls(
        &self,
        sensor: &str,
        calls: &[CallReport],
    ) -> Result<WriteSummary, DbError> {
        let writes: Vec<CallWrite<'_>> = calls.iter().map(CallWrite::unmatched).collect();
        self.write_calls(sensor, &writes).await
    }

    /// Upserts the calls and adds their links, all in one transaction.
    pub async fn write_calls(
        &self,
        sensor: &str,
        calls: &[CallWrite<'_>],
    ) -> Result<WriteSummary, DbError> {
        let first = calls
            .first()
            .map(|c| c.report.call_id.clone())
            .unwrap_or_default();
        let werr = |source| DbError::Write {
            call_id: first.clone(),
            source,
        };
        let d = &self.dialect;
        let now = DbTime(crate::time::Timestamp::now());
        let per_stmt = Dialect::rows_per_statement(CALL_COLUMNS.len());
        let link_per_stmt = Dialect::rows_per_statement(LINK_COLUMNS.len());
        let mut summary = WriteSummary::default();
        with_pool!(&self.pool, p => {
            let mut tx = p.begin().await.map_err(werr)?;
            for chunk in calls.chunks(per_stmt) {
                let sql = d.render(&upsert_sql(d, chunk.len()));
                let mut q = sqlx::query(&sql);
                for w in chunk {
                    q = bind_call!(q, sensor, w, now);
                }
                q.execute(&mut *tx).await.map_err(werr)?;
                summary.calls += chunk.len();

                if chunk.iter().all(|w| w.links.is_empty()) {
                    continue;
                }
                let keys: Vec<String> =
                    chunk.iter().map(|w| call_key(&w.report.call_id).into_owned()).collect();
                let sql = d.render(&format!(
                    "SELECT id, call_id FROM {{calls}} WHERE sensor = ? AND call_id IN ({})",
                    vec!["?"; keys.len()].join(", ")
                ));
                let mut q = sqlx::query(&sql).bind(sensor);
                for k in &keys {
                    q = q.bind(k.as_str());
                }
                let mut ids: HashMap<String, i64> = HashMap::new();
                for row in q.fetch_all(&mut *tx).await.map_err(werr)? {
                    let id: i64 = row.try_get(0).map_err(werr)?;
                    let key: String = row.try_get(1).map_err(werr)?;
                    ids.insert(key, id);
                }
                let mut links: Vec<(i64, &NewLink)> = Vec::new();
                for (w, key) in chunk.iter().zip(&keys) {
                    if let Some(&id) = ids.get(key) {
                        links.extend(w.links.iter().map(|l| (id, l)));
                    }
                }
                for lchunk in links.chunks(link_per_stmt) {
                    let sql = d.render(&links_sql(d, lchunk.len()));
                    let mut q = sqlx::query(&sql);
                    for (id, l) in lchunk {
                        q = q
                            .bind(*id)
                            .bind(l.record_type.clone())
                            .bind(l.record_id.clone())
                            .bind(fit(&l.field, 128))
                            .bind(l.source.as_str())
                            .bind(l.via.as_ref().map(|v| v.0.clone()))
                            .bind(l.via.as_ref().map(|v| v.1.clone()))
                            .bind(fit(&l.display_name, 255))
                            .bind(now);
                    }
                    summary.links_added += q.execute(&mut *tx).await.map_err(werr)?.rows_affected();
                }
            }
            tx.commit().await.map_err(werr)?;
            Ok(summary)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_call_ids_get_a_stable_short_key() {
        assert_eq!(call_key("abc@host"), "abc@host");
        let long = "x".repeat(300);
        let k = call_key(&long);
        assert!(k.len() <= 255, "{}", k.len());
        assert_eq!(k, call_key(&long));
        let other = format!("{}y", "x".repeat(299));
        assert_ne!(k, call_key(&other));
    }
}
