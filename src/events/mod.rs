//! Events (DESIGN §9): one envelope, written to this node's event log before
//! any channel sees it. Producers (the tracker's driver, the database
//! writer, the uploader, the API) hand events to an [`Emitter`], which never
//! blocks them; one task completes what needs the database (the screen-pop's
//! CRM matches, the finished call as the API shows it), appends in the order
//! they were emitted, and wakes the readers: live calls, SSE, webhooks, NATS.

pub mod live;
pub mod log;
pub mod model;
pub mod nats;
pub mod webhook;

use std::future::Future;
use std::path::Path;
use std::pin::Pin as StdPin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use log::{EventLog, LogError, LogLimits, Pin, Stored};
pub use model::{Event, EventType, IdMaker, MatchedRecord};

use crate::time::Timestamp;

/// Events waiting for the log; a producer that finds it full drops (counted)
/// rather than stall capture.
const QUEUE: usize = 65_536;
/// Events appended with one fsync at most.
const BATCH: usize = 512;
/// How long a screen-pop waits for its CRM lookup before it goes without.
const LOOKUP_WAIT: Duration = Duration::from_secs(2);
/// Events of a batch completed at once, in order: a screen-pop's lookup
/// does not queue behind every finished call's before it, and the pool
/// keeps connections for the call writer and the API.
const COMPLETING: usize = 3;

pub type RingLookup = (Vec<MatchedRecord>, Option<String>);

pub type BoxFuture<'a, T> = StdPin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What only the database knows, asked by the event task. Implemented above
/// this layer (the API's view of a call), handed in at start.
pub trait Resolve: Send + Sync + 'static {
    /// CRM records holding the `other` party's number, and the CRM id of
    /// the agent whose extension is `agent`; `None` when the lookup failed.
    fn ring<'a>(
        &'a self,
        other: Option<&'a str>,
        agent: Option<&'a str>,
    ) -> BoxFuture<'a, Option<RingLookup>>;
    /// The call `(sensor, call_id)` as `GET /v1/calls/{id}` shows it.
    fn call_detail<'a>(
        &'a self,
        sensor: &'a str,
        call_id: &'a str,
    ) -> BoxFuture<'a, Option<serde_json::Value>>;
    /// The call's row id and agent.
    fn call_row<'a>(
        &'a self,
        sensor: &'a str,
        call_id: &'a str,
    ) -> BoxFuture<'a, Option<(i64, Option<String>)>>;
}

/// What the event task must add before an event is complete.
enum Need {
    Nothing,
    /// `data.matches` from the other party's number, and `data.agent_id`.
    Ringing {
        other: Option<String>,
        agent: Option<String>,
    },
    /// `data.agent_id` from the agent's extension.
    Agent(Option<String>),
    /// `data` is the call as the API shows it.
    Detail,
    /// `data.call` and `data.agent` from the call's row.
    Row,
}

struct Pending {
    event: Event,
    need: Need,
}

#[derive(Debug, Default)]
pub struct EmitStats {
    pub emitted: AtomicU64,
    /// Dropped because the queue to the log was full.
    pub dropped: AtomicU64,
    /// `call.completed` not sent: the call's row was not found.
    pub unresolved: AtomicU64,
    pub append_errors: AtomicU64,
}

/// A cheap handle for producers.
#[derive(Clone)]
pub struct Emitter {
    sensor: Arc<str>,
    ids: Arc<IdMaker>,
    tx: mpsc::Sender<Pending>,
    pub stats: Arc<EmitStats>,
}

impl Emitter {
    fn send(
        &self,
        kind: EventType,
        call_id: Option<&str>,
        at: Timestamp,
        data: serde_json::Value,
        need: Need,
    ) {
        self.send_as(&self.sensor, kind, call_id, at, data, need)
    }

    fn send_as(
        &self,
        sensor: &str,
        kind: EventType,
        call_id: Option<&str>,
        at: Timestamp,
        data: serde_json::Value,
        need: Need,
    ) {
        let id = match (call_id, kind) {
            // Made by the API: a new event each time.
            (None, _)
            | (_, EventType::CallLinked | EventType::CallUnlinked | EventType::NoteAdded) => {
                self.ids.next()
            }
            (Some(c), _) => IdMaker::for_call(sensor, c, kind, at),
        };
        let event = Event {
            id,
            kind,
            occurred_at: at,
            sensor: sensor.to_owned(),
            call_id: call_id.map(str::to_owned),
            data,
        };
        match self.tx.try_send(Pending { event, need }) {
            Ok(()) => {
                self.stats.emitted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                let ev = match &e {
                    mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p) => {
                        &p.event
                    }
                };
                tracing::warn!(call_id = ev.call_id.as_deref().unwrap_or(""), kind = %ev.kind, "event queue full; event dropped");
            }
        }
    }

    /// An event whose data is complete.
    pub fn emit<D: Serialize>(
        &self,
        kind: EventType,
        call_id: Option<&str>,
        at: Timestamp,
        data: &D,
    ) {
        let data = serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
        self.send(kind, call_id, at, data, Need::Nothing);
    }

    /// An event the API caused about a stored call of `sensor` (a note, a
    /// link), dated now.
    pub fn about_call<D: Serialize>(&self, kind: EventType, sensor: &str, call_id: &str, data: &D) {
        let data = serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
        self.send_as(
            sensor,
            kind,
            Some(call_id),
            Timestamp::now(),
            data,
            Need::Nothing,
        );
    }

    /// A live call's event (answered, held, resumed, transferred, hung up):
    /// `data.agent_id` is filled in on the way from `data.agent`.
    pub fn live<D: Serialize>(&self, kind: EventType, call_id: &str, at: Timestamp, data: &D) {
        let data = serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
        let agent = data
            .get("agent")
            .and_then(|a| a.as_str())
            .map(str::to_owned);
        self.send(kind, Some(call_id), at, data, Need::Agent(agent));
    }

    /// `call.ringing`; its CRM matches are looked up on the way.
    pub fn ringing(&self, call_id: &str, at: Timestamp, parties: model::CallParties) {
        let other = parties.other_number().map(str::to_owned);
        let agent = parties.agent.clone();
        let data = model::RingingData {
            call: parties,
            other_number: other.clone(),
            matches: Vec::new(),
            matched: false,
        };
        let data = serde_json::to_value(&data).unwrap_or(serde_json::Value::Null);
        self.send(
            EventType::CallRinging,
            Some(call_id),
            at,
            data,
            Need::Ringing { other, agent },
        );
    }

    /// `call.completed` once the call's row is committed.
    pub fn completed(&self, call_id: &str, at: Timestamp) {
        self.send(
            EventType::CallCompleted,
            Some(call_id),
            at,
            serde_json::Value::Null,
            Need::Detail,
        );
    }

    /// An event about a stored call (`recording.*`) whose row id and agent
    /// are filled in on the way.
    pub fn about_row<D: Serialize>(&self, kind: EventType, call_id: &str, at: Timestamp, data: &D) {
        let data = serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
        self.send(kind, Some(call_id), at, data, Need::Row);
    }

    pub fn sensor(&self) -> &str {
        &self.sensor
    }
}

/// The event system of one node: its log and the task that fills it.
pub struct Events {
    pub log: Arc<EventLog>,
    pub emitter: Emitter,
    rx: Option<mpsc::Receiver<Pending>>,
    task: Option<JoinHandle<()>>,
}

impl Events {
    /// Opens the log in `dir`; what is emitted waits until `run` starts
    /// the task that completes and appends it.
    pub fn open(dir: &Path, limits: LogLimits, sensor: &str) -> Result<Events, LogError> {
        let log = Arc::new(EventLog::open(dir, limits)?);
        let (tx, rx) = mpsc::channel(QUEUE);
        let emitter = Emitter {
            sensor: sensor.into(),
            ids: Arc::default(),
            tx,
            stats: Arc::default(),
        };
        Ok(Events {
            log,
            emitter,
            rx: Some(rx),
            task: None,
        })
    }

    /// Starts appending, asking `resolve` what only the database knows.
    pub fn run(&mut self, resolve: Arc<dyn Resolve>) {
        if let Some(rx) = self.rx.take() {
            let stats = self.emitter.stats.clone();
            self.task = Some(tokio::spawn(run(rx, self.log.clone(), resolve, stats)));
        }
    }

    /// Waits until every event emitted so far is in the log (every other
    /// emitter must be dropped first, or it waits `deadline`).
    pub async fn finish(self, deadline: Duration) {
        let Events { emitter, task, .. } = self;
        drop(emitter);
        if let Some(task) = task {
            if tokio::time::timeout(deadline, task).await.is_err() {
                tracing::warn!("events still waiting for the log at stop; they are lost");
            }
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<Pending>,
    log: Arc<EventLog>,
    resolve: Arc<dyn Resolve>,
    stats: Arc<EmitStats>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
    let agents = Mutex::new(AgentCache::default());
    // The previous batch's append: the next batch is completed while it
    // fsyncs, and appended only after it, so the order holds.
    let mut writing: Option<JoinHandle<()>> = None;
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let ready: Vec<Event> = stream::iter(batch.drain(..))
            .map(|p| complete(p, resolve.as_ref(), &stats, &agents))
            .buffered(COMPLETING)
            .filter_map(std::future::ready)
            .collect()
            .await;
        if let Some(w) = writing.take() {
            let _ = w.await;
        }
        writing = Some(tokio::spawn(append(log.clone(), ready, stats.clone())));
    }
    if let Some(w) = writing {
        let _ = w.await;
    }
}

/// Agent ids found at ring time, so the rest of the call's events need no
/// lookup. Bounded; a call's entry goes at its hangup. Events completed at
/// once may miss an entry their ringing is still looking up: they look the
/// agent up themselves, to the same answer.
#[derive(Default)]
struct AgentCache {
    ids: std::collections::HashMap<String, Option<String>>,
}

const MAX_CACHED_AGENTS: usize = 100_000;

impl AgentCache {
    fn put(&mut self, call_id: &str, agent_id: Option<String>) {
        if self.ids.len() >= MAX_CACHED_AGENTS {
            self.ids.clear();
        }
        self.ids.insert(call_id.to_owned(), agent_id);
    }
}

fn set(event: &mut Event, key: &str, value: serde_json::Value) {
    if let Some(obj) = event.data.as_object_mut() {
        obj.insert(key.into(), value);
    }
}

/// Appends, retrying until the disk takes it: an event is not lost to a
/// full disk that an admin then frees.
async fn append(log: Arc<EventLog>, events: Vec<Event>, stats: Arc<EmitStats>) {
    let events = Arc::new(events);
    let mut wait = Duration::from_millis(100);
    loop {
        let (l, e) = (log.clone(), events.clone());
        match tokio::task::spawn_blocking(move || l.append(&e)).await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => {
                stats.append_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, events = events.len(), "cannot write events to the log; retrying");
            }
            Err(_) => return,
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}

async fn complete(
    p: Pending,
    resolve: &dyn Resolve,
    stats: &EmitStats,
    agents: &Mutex<AgentCache>,
) -> Option<Event> {
    let cache = || agents.lock().unwrap_or_else(|e| e.into_inner());
    let Pending { mut event, need } = p;
    let call_id = event.call_id.clone().unwrap_or_default();
    match need {
        Need::Nothing => {}
        Need::Ringing { other, agent } => {
            let found = tokio::time::timeout(
                LOOKUP_WAIT,
                resolve.ring(other.as_deref(), agent.as_deref()),
            )
            .await
            .ok()
            .flatten();
            if let Some((matches, agent_id)) = found {
                set(&mut event, "matched", true.into());
                set(
                    &mut event,
                    "matches",
                    serde_json::to_value(matches).unwrap_or_default(),
                );
                set(&mut event, "agent_id", agent_id.clone().into());
                cache().put(&call_id, agent_id);
            }
        }
        Need::Agent(agent) => {
            let cached = cache().ids.get(&call_id).cloned();
            let agent_id = match cached {
                Some(id) => id,
                None if agent.is_none() => None,
                None => {
                    let found =
                        tokio::time::timeout(LOOKUP_WAIT, resolve.ring(None, agent.as_deref()))
                            .await
                            .ok()
                            .flatten();
                    let id = found.and_then(|(_, id)| id);
                    cache().put(&call_id, id.clone());
                    id
                }
            };
            set(&mut event, "agent_id", agent_id.into());
            if event.kind == EventType::CallHungup {
                cache().ids.remove(&call_id);
            }
        }
        Need::Detail => match resolve.call_detail(&event.sensor, &call_id).await {
            Some(detail) => event.data = detail,
            None => {
                stats.unresolved.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(call_id = %call_id, "call.completed not sent: the call's row is not there");
                return None;
            }
        },
        Need::Row => {
            let row = tokio::time::timeout(LOOKUP_WAIT, resolve.call_row(&event.sensor, &call_id))
                .await
                .ok()
                .flatten();
            if let Some((row, agent_id)) = row {
                set(&mut event, "call", row.into());
                set(&mut event, "agent_id", agent_id.into());
            }
        }
    }
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Direction;

    /// The earlier a call, the slower its lookup.
    struct Slow;

    impl Resolve for Slow {
        fn ring<'a>(
            &'a self,
            other: Option<&'a str>,
            _agent: Option<&'a str>,
        ) -> BoxFuture<'a, Option<RingLookup>> {
            Box::pin(async move {
                let n: u64 = other.and_then(|o| o.parse().ok()).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(50 - 10 * n)).await;
                let found = MatchedRecord {
                    record_type: "contact".into(),
                    id: n.to_string(),
                    display_name: None,
                };
                Some((vec![found], None))
            })
        }

        fn call_detail<'a>(
            &'a self,
            _sensor: &'a str,
            _call_id: &'a str,
        ) -> BoxFuture<'a, Option<serde_json::Value>> {
            Box::pin(async { None })
        }

        fn call_row<'a>(
            &'a self,
            _sensor: &'a str,
            _call_id: &'a str,
        ) -> BoxFuture<'a, Option<(i64, Option<String>)>> {
            Box::pin(async { None })
        }
    }

    #[tokio::test]
    async fn events_completed_at_once_are_appended_in_emitted_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut events = Events::open(dir.path(), LogLimits::default(), "s1").unwrap();
        let at = Timestamp::from_secs(1_800_000_000);
        // Emitted before the task starts: they make one batch.
        for n in 0..4u64 {
            let parties = model::CallParties {
                direction: Direction::Incoming,
                from_number: Some(n.to_string()),
                to_number: None,
                from_raw: None,
                to_raw: None,
                from_display: None,
                agent: None,
                agent_id: None,
                started_at: at,
            };
            events.emitter.ringing(&format!("c{n}"), at, parties);
        }
        let log = events.log.clone();
        events.run(Arc::new(Slow));
        events.finish(Duration::from_secs(10)).await;
        let got: Vec<(String, String)> = log
            .read_after(0, 16)
            .unwrap()
            .iter()
            .map(|s| {
                let ev = s.event().unwrap();
                let id = ev.data["matches"][0]["id"].as_str().unwrap().to_owned();
                (ev.call_id.unwrap(), id)
            })
            .collect();
        let want: Vec<(String, String)> =
            (0..4).map(|n| (format!("c{n}"), n.to_string())).collect();
        assert_eq!(got, want);
    }
}
