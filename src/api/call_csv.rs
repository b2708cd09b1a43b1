//! The call log as RFC 4180 CSV (`GET /v1/calls.csv`, or `GET /v1/calls`
//! with `Accept: text/csv`): every matching call, in the list's sort, read
//! in keyset batches and streamed, so memory stays the same whatever the
//! number of rows.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::mpsc;

use super::call_item::CallItem;
use super::problem::ApiError;
use crate::db::call_list::{links_of, CallQuery, Start};
use crate::db::Db;

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
    "source",
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

/// `records`: `type:id (display name)`, joined with `; `.
fn records(c: &CallItem) -> String {
    c.records
        .iter()
        .map(|r| match &r.display_name {
            Some(n) => format!("{}:{} ({n})", r.kind, r.id),
            None => format!("{}:{}", r.kind, r.id),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

/// One call's cells, in `COLUMNS` order.
pub fn row(c: &CallItem) -> Vec<String> {
    let agent = c.agent.as_ref();
    let a = |f: fn(&super::call_item::CallAgent) -> &Option<String>| {
        agent.and_then(|a| f(a).clone()).unwrap_or_default()
    };
    vec![
        c.id.to_string(),
        c.sensor.clone(),
        c.call_id.clone(),
        c.direction.as_str().to_owned(),
        opt(&c.from.number),
        opt(&c.from.raw),
        opt(&c.from.display),
        opt(&c.to.number),
        opt(&c.to.raw),
        opt(&c.other_number),
        c.started_at.to_rfc3339(),
        opt(&c.answered_at.map(|t| t.to_rfc3339())),
        c.ended_at.to_rfc3339(),
        c.duration.to_string(),
        c.outcome.as_str().to_owned(),
        opt(&c.sip_code),
        c.end_reason.as_str().to_owned(),
        a(|a| &a.extension),
        a(|a| &a.kind),
        a(|a| &a.id),
        a(|a| &a.name),
        c.dtmf.clone(),
        c.held.to_string(),
        c.answered_elsewhere.to_string(),
        c.source.clone(),
        c.updated_at.to_rfc3339(),
        c.has_notes.to_string(),
        c.recording.status.as_str().to_owned(),
        opt(&c.recording.duration),
        opt(&c.recording.format),
        opt(&c.recording.url),
        c.rtp.caller.packets.to_string(),
        c.rtp.caller.lost.to_string(),
        c.rtp.callee.packets.to_string(),
        c.rtp.callee.lost.to_string(),
        records(c),
    ]
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
        out.write_record(row(&item)).map_err(csv_err)?;
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

/// The streamed answer.
pub fn response(db: Db, query: CallQuery) -> Response {
    let export = Export {
        db,
        query,
        start: Some(Start::After(None)),
        header: true,
    };
    let (tx, rx) = mpsc::channel(AHEAD);
    tokio::spawn(produce(export, tx));
    let body = Body::from_stream(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"calls.csv\""),
    );
    resp
}
