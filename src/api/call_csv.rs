//! The call log as RFC 4180 CSV (`GET /v1/calls.csv`, or `GET /v1/calls`
//! with `Accept: text/csv`): every matching call, in the list's sort, read
//! in keyset batches and streamed, so memory stays the same whatever the
//! number of rows.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::{stream, StreamExt};
use tokio::sync::mpsc;

use super::call_item::CallItem;
use super::problem::ApiError;
use crate::db::call_list::{links_of, CallQuery, Start};
use crate::db::Db;
use crate::time::Timestamp;

/// Calls read per query.
const BATCH: u32 = 2000;
/// Chunks written ahead of the client, at most: memory is about
/// (AHEAD + 2) batches whatever the number of rows.
const AHEAD: usize = 2;

/// The columns, in order (the README documents them). Lists (linked
/// records) are joined with `; `.
pub const COLUMNS: [&str; 36] = [
    "id",
    "sensor",
    "call_id",
    "direction",
    "from_number",
    "from_raw",
    "from_display",
    "to_number",
    "to_raw",
    "other_number",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "outcome",
    "sip_code",
    "end_reason",
    "agent_extension",
    "agent_type",
    "agent_id",
    "agent_name",
    "dtmf",
    "held",
    "answered_elsewhere",
    "origin",
    "updated_at",
    "has_notes",
    "recording_status",
    "recording_duration",
    "recording_format",
    "recording_url",
    "caller_rtp_packets",
    "caller_rtp_lost",
    "callee_rtp_packets",
    "callee_rtp_lost",
    "records",
];

/// Cells written straight from borrowed text; numbers and times go through
/// one reused buffer. (A `Vec<String>` per row and chrono's formatter were
/// most of the export's CPU time.)
struct Cells<'a> {
    out: &'a mut csv::Writer<Vec<u8>>,
    buf: String,
}

impl Cells<'_> {
    fn text(&mut self, v: &str) -> Result<(), csv::Error> {
        self.out.write_field(v)
    }

    fn opt(&mut self, v: Option<&str>) -> Result<(), csv::Error> {
        self.out.write_field(v.unwrap_or(""))
    }

    fn show(&mut self, v: impl std::fmt::Display) -> Result<(), csv::Error> {
        use std::fmt::Write as _;
        self.buf.clear();
        let _ = write!(self.buf, "{v}");
        self.out.write_field(&self.buf)
    }

    fn time(&mut self, t: Option<Timestamp>) -> Result<(), csv::Error> {
        self.buf.clear();
        if let Some(t) = t {
            rfc3339(t, &mut self.buf);
        }
        self.out.write_field(&self.buf)
    }
}

/// `Timestamp::to_rfc3339` (`2026-11-21T10:00:00.123456Z`) without the
/// format-string parser.
fn rfc3339(t: Timestamp, out: &mut String) {
    use chrono::{Datelike as _, Timelike as _};
    use std::fmt::Write as _;
    let us = t.micros();
    let Some(dt) = chrono::DateTime::from_timestamp(us.div_euclid(1_000_000), 0) else {
        out.push_str(&t.to_rfc3339());
        return;
    };
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        us.rem_euclid(1_000_000)
    );
}

/// One call's cells, in `COLUMNS` order. Linked records are
/// `type:id (display name)`, joined with `; `.
fn write_row(out: &mut csv::Writer<Vec<u8>>, c: &CallItem) -> Result<(), csv::Error> {
    let mut w = Cells {
        out,
        buf: String::new(),
    };
    let agent = c.agent.as_ref();
    w.show(c.id)?;
    w.text(&c.sensor)?;
    w.text(&c.call_id)?;
    w.text(c.direction.as_str())?;
    w.opt(c.from.number.as_deref())?;
    w.opt(c.from.raw.as_deref())?;
    w.opt(c.from.display.as_deref())?;
    w.opt(c.to.number.as_deref())?;
    w.opt(c.to.raw.as_deref())?;
    w.opt(c.other_number.as_deref())?;
    w.time(Some(c.started_at))?;
    w.time(c.answered_at)?;
    w.time(Some(c.ended_at))?;
    w.show(c.duration)?;
    w.text(c.outcome.as_str())?;
    match c.sip_code {
        Some(code) => w.show(code)?,
        None => w.text("")?,
    }
    w.text(c.end_reason.as_str())?;
    w.opt(agent.and_then(|a| a.extension.as_deref()))?;
    w.opt(agent.and_then(|a| a.kind.as_deref()))?;
    w.opt(agent.and_then(|a| a.id.as_deref()))?;
    w.opt(agent.and_then(|a| a.name.as_deref()))?;
    w.text(&c.dtmf)?;
    w.show(c.held)?;
    w.show(c.answered_elsewhere)?;
    w.text(&c.origin)?;
    w.time(Some(c.updated_at))?;
    w.show(c.has_notes)?;
    w.text(c.recording.status.as_str())?;
    match c.recording.duration {
        Some(d) => w.show(d)?,
        None => w.text("")?,
    }
    w.opt(c.recording.format.as_deref())?;
    w.opt(c.recording.url.as_deref())?;
    w.show(c.rtp.caller.packets)?;
    w.show(c.rtp.caller.lost)?;
    w.show(c.rtp.callee.packets)?;
    w.show(c.rtp.callee.lost)?;
    w.buf.clear();
    for (i, r) in c.records.iter().enumerate() {
        use std::fmt::Write as _;
        if i > 0 {
            w.buf.push_str("; ");
        }
        let _ = write!(w.buf, "{}:{}", r.kind, r.id);
        if let Some(n) = &r.display_name {
            let _ = write!(w.buf, " ({n})");
        }
    }
    w.out.write_field(&w.buf)?;
    w.out.write_record(None::<&[u8]>)
}

/// Where the export is.
struct Export {
    db: Db,
    query: CallQuery,
    start: Option<Start>,
    header: bool,
}

/// One batch as CSV text (with the header first), moving `e.start` on.
async fn batch(e: &mut Export, start: &Start) -> Result<Vec<u8>, ApiError> {
    // RFC 4180: CRLF between records, quotes only where needed.
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(256 * BATCH as usize));
    if e.header {
        out.write_record(COLUMNS).map_err(csv_err)?;
        e.header = false;
    }
    let calls = e.query.fetch(&e.db, start, BATCH).await?;
    let ids: Vec<i64> = calls.iter().map(|c| c.id).collect();
    let links = links_of(&e.db, &ids, false).await?;
    if calls.len() == BATCH as usize {
        e.start = calls
            .last()
            .map(|c| Start::After(Some(e.query.cursor_after(c))));
    }
    for item in CallItem::page(calls, links) {
        write_row(&mut out, &item).map_err(csv_err)?;
    }
    out.into_inner()
        .map_err(|err| csv_err(err.into_error().into()))
}

/// Reads and writes the batches in a task of its own, a couple of chunks
/// ahead of the client: the next query runs while the last chunk is on the
/// wire. A client that goes away closes the channel, which ends the task.
async fn produce(mut e: Export, tx: mpsc::Sender<Result<Bytes, ApiError>>) {
    while let Some(start) = e.start.take() {
        match batch(&mut e, &start).await {
            Ok(bytes) => {
                if tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                    return;
                }
            }
            Err(err) => {
                // The status line is gone: cutting the body short is all
                // that is left to tell the client.
                tracing::error!(error = %err, "CSV export failed part way");
                let _ = tx.send(Err(err)).await;
                return;
            }
        }
    }
}

fn csv_err(e: csv::Error) -> ApiError {
    tracing::error!(error = %e, "writing CSV");
    ApiError::Internal
}

/// The streamed answer. The first batch is read before the status line is
/// sent, so a query that fails at once is a problem answer, not a cut body.
pub async fn response(db: Db, query: CallQuery) -> Result<Response, ApiError> {
    let mut export = Export {
        db,
        query,
        start: None,
        header: true,
    };
    let first = batch(&mut export, &Start::After(None)).await?;
    let (tx, rx) = mpsc::channel(AHEAD);
    tokio::spawn(produce(export, tx));
    let rest = stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    // Fused: the compression layer polls once more after the end, which a
    // bare `unfold` answers with a panic.
    let body = stream::once(async move { Ok::<_, ApiError>(Bytes::from(first)) })
        .chain(rest)
        .fuse();
    let mut resp = Body::from_stream(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"calls.csv\""),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_the_json_has_them() {
        for us in [
            0,
            1,
            999_999,
            1_800_043_200_123_456,
            -1,
            -86_400_000_001,
            253_402_300_799_999_999,
        ] {
            let t = Timestamp::from_micros(us);
            let mut s = String::new();
            rfc3339(t, &mut s);
            assert_eq!(s, t.to_rfc3339(), "{us}");
        }
    }
}
