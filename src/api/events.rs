//! `/v1/calls/live` and `/v1/events` (server-sent events): what is happening
//! now, read from this node's event log (DESIGN §9). A see-own key sees only
//! its agent's calls and events.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Serialize;
use utoipa::ToSchema;

use super::event_params::EventParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::problem::ApiError;
use super::recording::Who;
use super::ApiState;
use crate::events::live::{LiveCall, LiveCalls};
use crate::events::{Emitter, EventLog, EventType, Stored};
use crate::time::Timestamp;

/// Events read from the log per turn of an SSE stream.
const READ_BATCH: usize = 512;
/// Types a filter may name, at most (there are only a dozen).
const MAX_TYPES: usize = 32;

/// The event side of the API: the log, live calls and the emitter for
/// events the API itself causes (notes, links).
#[derive(Clone)]
pub struct ApiEvents {
    pub log: Arc<EventLog>,
    pub live: Arc<LiveCalls>,
    pub emitter: Option<Emitter>,
    pub heartbeat: Duration,
    /// Set when the server begins to stop: open streams end, so a graceful
    /// stop is not held up by clients that never hang up.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl ApiEvents {
    pub fn new(
        log: Arc<EventLog>,
        live: Arc<LiveCalls>,
        emitter: Option<Emitter>,
        heartbeat: Duration,
    ) -> ApiEvents {
        ApiEvents {
            log,
            live,
            emitter,
            heartbeat,
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Ends every open event stream.
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }
}

impl std::fmt::Debug for ApiEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiEvents")
            .field("last_seq", &self.log.last_seq())
            .finish()
    }
}

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(live_calls))
        .routes(routes!(events))
        .routes(routes!(super::event_link::events_link))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LiveCallList {
    pub data: Vec<LiveCall>,
}

/// Every call ringing or answered now, on every sensor, oldest first.
#[utoipa::path(get, path = "/v1/calls/live", tag = "events",
    responses((status = 200, body = LiveCallList)))]
async fn live_calls(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<Json<LiveCallList>, ApiError> {
    let ev = state.events()?;
    Ok(Json(LiveCallList {
        data: ev.live.list(caller.own_agent(), Timestamp::now()),
    }))
}

struct Filter {
    types: Option<HashSet<EventType>>,
    agent: Option<String>,
    own: Option<String>,
}

impl Filter {
    fn pass(&self, s: &Stored) -> bool {
        if self.types.as_ref().is_some_and(|t| !t.contains(&s.kind)) {
            return false;
        }
        let agent = s.agent.as_deref();
        if self.agent.as_deref().is_some_and(|a| agent != Some(a)) {
            return false;
        }
        match self.own.as_deref() {
            None => true,
            Some(own) => !own.is_empty() && agent == Some(own),
        }
    }
}

/// The event stream (`text/event-stream`): each event's `id` is its event
/// id and `event` its type; `data` is the event as webhooks carry it. On
/// reconnecting, `Last-Event-ID` resumes right after that event; an id the
/// log no longer holds resumes from the oldest event kept, after a comment
/// saying so. Comments are sent as heartbeats.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventParams),
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "Server-sent events; each `data` is an `AnyEvent` (one of the `*Event` schemas)")))]
async fn events(
    who: Who,
    State(state): State<ApiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<axum::response::Sse<impl Stream<Item = Result<Sse, Infallible>>>, ApiError> {
    let q = EventParams::parse(raw.as_deref().unwrap_or(""))?;
    let caller = match (who, q.sig.as_deref()) {
        (Who::Key(c), _) => c,
        (Who::Anonymous, Some(sig)) => {
            super::event_link::link_caller(&state, q.key.as_deref(), q.expires.as_deref(), sig)
                .await?
        }
        (Who::Anonymous, None) => return Err(ApiError::NoKey),
    };
    let ev = state.events()?.clone();
    let types = match q.types.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(list) => {
            let mut set = HashSet::new();
            for t in list.split(',').take(MAX_TYPES + 1) {
                let kind = t
                    .trim()
                    .parse::<EventType>()
                    .map_err(|e| ApiError::bad("types", e.to_string()))?;
                set.insert(kind);
            }
            Some(set)
        }
    };
    if q.agent
        .as_ref()
        .is_some_and(|a| a.is_empty() || a.len() > 191)
    {
        return Err(ApiError::bad("agent", "must be 1 to 191 characters"));
    }
    let filter = Filter {
        types,
        agent: q.agent,
        own: caller.own_agent().map(str::to_owned),
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.last_event_id)
        .filter(|id| !id.is_empty());
    if resume.as_ref().is_some_and(|id| id.len() > 64) {
        return Err(ApiError::bad("last_event_id", "not an event id"));
    }
    let mut first = None;
    // Marked seen before reading, so an event appended meanwhile wakes us.
    let mut tail = ev.log.subscribe();
    tail.borrow_and_update();
    let at = match resume {
        None => ev.log.last_seq(),
        Some(id) => {
            let (log, wanted) = (ev.log.clone(), id.clone());
            let found = tokio::task::spawn_blocking(move || log.seq_of(&wanted))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            match found {
                Some(seq) => seq,
                None => {
                    first = Some(Sse::default().comment(format!(
                        "event {id} is no longer kept; resuming from the oldest event kept"
                    )));
                    ev.log.first_seq().saturating_sub(1)
                }
            }
        }
    };
    let reader = Reader {
        closing: ev.closing.subscribe(),
        log: ev.log.clone(),
        at,
        buf: VecDeque::new(),
        tail,
        filter,
    };
    let head = stream::iter(first.map(Ok));
    let body = stream::unfold(reader, next_event).map(Ok);
    Ok(axum::response::Sse::new(head.chain(body).fuse())
        .keep_alive(KeepAlive::new().interval(ev.heartbeat).text("heartbeat")))
}

struct Reader {
    closing: tokio::sync::watch::Receiver<bool>,
    log: Arc<EventLog>,
    at: u64,
    buf: VecDeque<Arc<Stored>>,
    tail: tokio::sync::watch::Receiver<u64>,
    filter: Filter,
}

async fn next_event(mut r: Reader) -> Option<(Sse, Reader)> {
    loop {
        while let Some(s) = r.buf.pop_front() {
            r.at = s.seq;
            if r.filter.pass(&s) {
                let sse = Sse::default()
                    .id(&*s.id)
                    .event(s.kind.as_str())
                    .data(&*s.json);
                return Some((sse, r));
            }
        }
        r.tail.borrow_and_update();
        let (log, at) = (r.log.clone(), r.at);
        match tokio::task::spawn_blocking(move || log.read_after(at, READ_BATCH)).await {
            Ok(Ok(events)) if !events.is_empty() => {
                r.buf.extend(events);
                continue;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "SSE cannot read the event log"),
            _ => {}
        }
        if *r.closing.borrow() {
            return None;
        }
        tokio::select! {
            changed = r.tail.changed() => changed.ok()?,
            _ = r.closing.wait_for(|c| *c) => return None,
        }
    }
}
