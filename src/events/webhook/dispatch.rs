//! One endpoint's dispatcher: reads the event log from its durable cursor,
//! sends each event it wants, one at a time per call and several calls at
//! once, and moves the cursor past what is done (delivered, or kept as
//! failed). What is pending lives in memory only: after a crash it is read
//! again from the cursor, so an event is sent once more at most, under the
//! same `webhook-id`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::endpoint::Endpoint;
use super::files::{Disabled, FailedDelivery, Files};
use super::schedule::{dice, verdict, Verdict};
use super::send::{attempt, Answer, Message};
use super::{Ctx, Gone};
use crate::events::{Pin, Stored};
use crate::time::Timestamp;

/// Events read but not done, at most: one call stuck in its retries holds
/// the cursor, and the others may run ahead of it by this much.
const WINDOW: usize = 10_000;
/// Events read from the log per turn.
const READ_BATCH: usize = 512;
/// The cursor is saved at most this often (and at stop).
const SAVE_EVERY: Duration = Duration::from_millis(200);
/// Redeliveries asked for through the API and not yet done, at most.
const MAX_REDELIVERIES: usize = 1000;
/// At stop, attempts under way get this long to bring their answer.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Commands from the API.
pub(super) enum Cmd {
    Redeliver(FailedDelivery),
}

/// What the API and the metrics read of a running dispatcher.
#[derive(Debug, Default)]
pub struct EndpointGauges {
    /// Events after the cursor: waiting, under way, or not yet read.
    pub backlog: AtomicU64,
    /// When the oldest pending event happened (µs since the epoch; 0: none).
    pub oldest_pending_us: AtomicI64,
}

impl EndpointGauges {
    pub fn oldest_pending_age(&self, now: Timestamp) -> Option<Duration> {
        match self.oldest_pending_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(now.duration_since(Timestamp::from_micros(us))),
        }
    }
}

pub(super) struct Handle {
    pub serial: u64,
    pub spec: watch::Sender<Arc<Endpoint>>,
    pub cmd: mpsc::Sender<Cmd>,
    pub gauges: Arc<EndpointGauges>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Handle {
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Stops it and waits until its cursor is saved, `deadline` at most.
    pub async fn join(self, deadline: Duration) {
        self.stop();
        let mut task = self.task;
        if tokio::time::timeout(deadline, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Starts sending after `cursor` (every event up to it is done with).
pub(super) fn spawn(ctx: Arc<Ctx>, files: Arc<Files>, ep: Arc<Endpoint>, cursor: u64) -> Handle {
    let (spec_tx, spec) = watch::channel(ep);
    let (cmd_tx, cmds) = mpsc::channel(64);
    let (stop_tx, stop) = watch::channel(false);
    let gauges = Arc::new(EndpointGauges::default());
    let serial = ctx.serials.fetch_add(1, Ordering::Relaxed);
    let d = Dispatcher {
        serial,
        pin: ctx.log.pin(cursor),
        ctx,
        files,
        spec,
        cmds,
        stop,
        gauges: gauges.clone(),
        saved: cursor,
        last_save: Instant::now(),
        read_pos: cursor,
        more: true,
        outstanding: BTreeMap::new(),
        calls: HashMap::new(),
        ready: BinaryHeap::new(),
        inflight: JoinSet::new(),
        inflight_keys: HashMap::new(),
        redeliveries: 0,
        next_redo: 0,
    };
    Handle {
        serial,
        spec: spec_tx,
        cmd: cmd_tx,
        gauges,
        stop: stop_tx,
        task: tokio::spawn(d.run()),
    }
}

/// Whose events go one after another: a call's, or an event alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Call(Arc<str>),
    Lone(u64),
    Redo(u64),
}

struct Job {
    /// Its place in the log; `None` for a redelivery, which the cursor
    /// has passed long ago.
    seq: Option<u64>,
    order: u64,
    msg: Arc<Message>,
    attempts: u32,
    answer: Answer,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    busy: bool,
}

struct Dispatcher {
    serial: u64,
    ctx: Arc<Ctx>,
    files: Arc<Files>,
    spec: watch::Receiver<Arc<Endpoint>>,
    cmds: mpsc::Receiver<Cmd>,
    stop: watch::Receiver<bool>,
    gauges: Arc<EndpointGauges>,
    pin: Pin,
    saved: u64,
    last_save: Instant,
    /// The newest event read from the log.
    read_pos: u64,
    /// The log may hold more than has been read.
    more: bool,
    /// Events read and wanted but not done, with when they happened.
    outstanding: BTreeMap<u64, Timestamp>,
    calls: HashMap<Key, Queue>,
    /// Calls not under way whose next event is due, by when and log order.
    ready: BinaryHeap<Reverse<(Instant, u64, Key)>>,
    inflight: JoinSet<(Key, Answer)>,
    inflight_keys: HashMap<tokio::task::Id, Key>,
    redeliveries: usize,
    next_redo: u64,
}

enum Flow {
    Go,
    Gone(String),
}

impl Dispatcher {
    fn id(&self) -> String {
        self.spec.borrow().id.clone()
    }

    /// Every event up to here is done with.
    fn cursor(&self) -> u64 {
        self.outstanding
            .first_key_value()
            .map_or(self.read_pos, |(s, _)| s - 1)
    }

    async fn run(mut self) {
        let mut tail = self.ctx.log.subscribe();
        let mut tail_open = true;
        loop {
            if *self.stop.borrow() {
                break;
            }
            self.fill().await;
            let now = Instant::now();
            self.start_ready(now);
            self.save(false).await;
            self.update_gauges();
            let wake = self.next_wake(now);
            tokio::select! {
                Some(done) = self.inflight.join_next_with_id(), if !self.inflight.is_empty() => {
                    if let Flow::Gone(reason) = self.finished(done).await {
                        self.gone(reason).await;
                        return;
                    }
                }
                changed = tail.changed(), if tail_open => {
                    tail_open = changed.is_ok();
                    self.more = true;
                }
                Some(cmd) = self.cmds.recv() => self.command(cmd),
                stopping = self.stop.changed() => {
                    if stopping.is_err() {
                        break;
                    }
                }
                changed = self.spec.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                _ = tokio::time::sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
            }
        }
        self.shutdown().await;
    }

    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        if self.more && self.outstanding.len() < WINDOW {
            at(now);
        }
        if self.inflight.len() < self.ctx.concurrency {
            if let Some(Reverse((due, _, _))) = self.ready.peek() {
                at(*due);
            }
        }
        if self.cursor() != self.saved {
            at(self.last_save + SAVE_EVERY);
        }
        wake
    }

    /// Reads what the log has, until the window is full or a few batches
    /// are in (the rest next turn, so answers are not kept waiting).
    async fn fill(&mut self) {
        for _ in 0..8 {
            let room = WINDOW.saturating_sub(self.outstanding.len());
            let last = self.ctx.log.last_seq();
            if room == 0 || self.read_pos >= last {
                self.more = self.read_pos < last;
                return;
            }
            let (log, pos) = (self.ctx.log.clone(), self.read_pos);
            let n = room.min(READ_BATCH);
            let batch = match tokio::task::spawn_blocking(move || log.read_after(pos, n)).await {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    tracing::warn!(webhook = %self.id(), error = %e, "cannot read the event log; trying again");
                    return;
                }
                Err(_) => return,
            };
            let Some(newest) = batch.last().map(|e| e.seq) else {
                // What lay between was dropped from the log (its hard cap).
                self.read_pos = last;
                continue;
            };
            let ep = self.spec.borrow().clone();
            for e in batch {
                if ep.wants(e.kind) {
                    self.take(&e);
                }
            }
            self.read_pos = newest;
        }
        self.more = true;
    }

    fn take(&mut self, e: &Stored) {
        self.outstanding.insert(e.seq, e.occurred_at);
        let key = match &e.call_id {
            Some(c) => Key::Call(format!("{}\u{0}{c}", e.sensor).into()),
            None => Key::Lone(e.seq),
        };
        let msg = Message {
            id: e.id.clone(),
            event_type: e.kind.as_str().into(),
            sensor: e.sensor.clone(),
            call_id: e.call_id.clone(),
            body: e.json.clone(),
        };
        self.enqueue(key, Some(e.seq), e.seq, msg);
    }

    fn enqueue(&mut self, key: Key, seq: Option<u64>, order: u64, msg: Message) {
        let q = self.calls.entry(key.clone()).or_default();
        q.jobs.push_back(Job {
            seq,
            order,
            msg: Arc::new(msg),
            attempts: 0,
            answer: Answer::default(),
        });
        if !q.busy && q.jobs.len() == 1 {
            self.ready.push(Reverse((Instant::now(), order, key)));
        }
    }

    fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Redeliver(d) => {
                if self.redeliveries >= MAX_REDELIVERIES {
                    tracing::warn!(webhook = %self.id(), event = %d.event_id, "too many redeliveries waiting; this one stays failed");
                    return;
                }
                self.redeliveries += 1;
                self.next_redo += 1;
                let msg = Message {
                    id: d.event_id.into(),
                    event_type: d.event_type.into(),
                    sensor: d.sensor.into(),
                    call_id: d.call_id.map(Into::into),
                    body: d.body.into(),
                };
                self.enqueue(Key::Redo(self.next_redo), None, 0, msg);
            }
        }
    }

    fn start_ready(&mut self, now: Instant) {
        while self.inflight.len() < self.ctx.concurrency {
            match self.ready.peek() {
                Some(Reverse((due, _, _))) if *due <= now => {}
                _ => break,
            }
            let Some(Reverse((_, _, key))) = self.ready.pop() else {
                break;
            };
            let Some(q) = self.calls.get_mut(&key) else {
                continue;
            };
            let Some(job) = q.jobs.front() else {
                continue;
            };
            q.busy = true;
            let send = attempt(
                self.ctx.clone(),
                self.spec.borrow().clone(),
                job.msg.clone(),
            );
            let k = key.clone();
            let handle = self.inflight.spawn(async move { (k, send.await) });
            self.inflight_keys.insert(handle.id(), key);
        }
    }

    async fn finished(
        &mut self,
        done: Result<(tokio::task::Id, (Key, Answer)), tokio::task::JoinError>,
    ) -> Flow {
        let (key, answer) = match done {
            Ok((id, (key, answer))) => {
                self.inflight_keys.remove(&id);
                (key, answer)
            }
            Err(e) => match self.inflight_keys.remove(&e.id()) {
                Some(key) => (
                    key,
                    Answer {
                        error: Some("the attempt was cut short".into()),
                        ..Answer::default()
                    },
                ),
                None => return Flow::Go,
            },
        };
        let now = Instant::now();
        let now_secs = Timestamp::now().micros().div_euclid(1_000_000);
        let schedule = &self.ctx.schedule;
        let Some(q) = self.calls.get_mut(&key) else {
            return Flow::Go;
        };
        q.busy = false;
        let Some(job) = q.jobs.front_mut() else {
            return Flow::Go;
        };
        job.attempts += 1;
        let v = match answer.status {
            Some(s) => verdict(s, answer.retry_after.as_deref(), now_secs),
            None => Verdict::Retry { after: None },
        };
        job.answer = answer;
        match v {
            Verdict::Delivered => {
                self.ctx.stats.delivered.fetch_add(1, Ordering::Relaxed);
                if job.seq.is_none() {
                    let (files, id) = (self.files.clone(), job.msg.id.to_string());
                    let at = Timestamp::now();
                    let marked =
                        tokio::task::spawn_blocking(move || files.mark_redelivered(&id, at)).await;
                    if !matches!(marked, Ok(Ok(()))) {
                        tracing::warn!(webhook = %self.id(), "a redelivery went through but stays listed as failed");
                    }
                }
                self.pop(&key, now);
            }
            Verdict::Gone => {
                return Flow::Gone(format!("the receiver answered 410 Gone to {}", job.msg.id))
            }
            Verdict::Retry { after } => {
                self.ctx
                    .stats
                    .attempt_failures
                    .fetch_add(1, Ordering::Relaxed);
                match schedule.wait(job.attempts, after, dice()) {
                    Some(wait) => self.ready.push(Reverse((now + wait, job.order, key))),
                    None => self.give_up(key, now).await,
                }
            }
        }
        Flow::Go
    }

    /// The schedule ran out: kept as failed, and the call's next event goes.
    async fn give_up(&mut self, key: Key, now: Instant) {
        let Some(job) = self.calls.get(&key).and_then(|q| q.jobs.front()) else {
            return;
        };
        let d = FailedDelivery {
            event_id: job.msg.id.to_string(),
            event_type: job.msg.event_type.to_string(),
            sensor: job.msg.sensor.to_string(),
            call_id: job.msg.call_id.as_deref().map(str::to_owned),
            attempts: job.attempts,
            last_status: job.answer.status,
            last_error: job.answer.error.clone(),
            failed_at: Timestamp::now(),
            body: job.msg.body.to_string(),
        };
        let order = job.order;
        let files = self.files.clone();
        let event = d.event_id.clone();
        match tokio::task::spawn_blocking(move || files.add_failed(&d)).await {
            Ok(Ok(())) => {
                self.ctx.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(webhook = %self.id(), %event, "webhook delivery failed after every retry; kept for redelivery");
                self.pop(&key, now);
            }
            other => {
                if let Ok(Err(e)) = other {
                    tracing::error!(webhook = %self.id(), %event, error = %e, "cannot keep a failed delivery; trying to deliver it again");
                }
                let wait = self.ctx.schedule.max_wait().max(Duration::from_secs(1));
                self.ready.push(Reverse((now + wait, order, key)));
            }
        }
    }

    /// The call's first event is done with: its next one is due now.
    fn pop(&mut self, key: &Key, now: Instant) {
        let Some(q) = self.calls.get_mut(key) else {
            return;
        };
        if let Some(job) = q.jobs.pop_front() {
            match job.seq {
                Some(seq) => {
                    self.outstanding.remove(&seq);
                }
                None => self.redeliveries = self.redeliveries.saturating_sub(1),
            }
        }
        match q.jobs.front() {
            Some(next) => self.ready.push(Reverse((now, next.order, key.clone()))),
            None => {
                self.calls.remove(key);
            }
        }
    }

    async fn save(&mut self, now: bool) {
        let cursor = self.cursor();
        if cursor == self.saved || (!now && self.last_save.elapsed() < SAVE_EVERY) {
            return;
        }
        self.last_save = Instant::now();
        let files = self.files.clone();
        match tokio::task::spawn_blocking(move || files.write_cursor(cursor)).await {
            Ok(Ok(())) => {
                self.saved = cursor;
                // Only what the saved cursor has passed may leave the log.
                self.pin.advance(cursor);
            }
            Ok(Err(e)) => {
                tracing::warn!(webhook = %self.id(), error = %e, "cannot save the webhook cursor");
            }
            Err(_) => {}
        }
    }

    fn update_gauges(&self) {
        let unread = self.ctx.log.last_seq().saturating_sub(self.read_pos);
        let backlog = self.outstanding.len() as u64 + unread;
        self.gauges.backlog.store(backlog, Ordering::Relaxed);
        let oldest = self
            .outstanding
            .first_key_value()
            .map_or(0, |(_, t)| t.micros().max(1));
        self.gauges
            .oldest_pending_us
            .store(oldest, Ordering::Relaxed);
    }

    /// A 410: the endpoint is disabled, here and after a restart.
    async fn gone(mut self, reason: String) {
        let ep = self.spec.borrow().clone();
        self.ctx.stats.disabled.fetch_add(1, Ordering::Relaxed);
        tracing::error!(webhook = %ep.id, url = %ep.url, %reason, "webhook endpoint disabled");
        let marker = Disabled {
            reason: reason.clone(),
            url: ep.url.clone(),
            at: Timestamp::now(),
        };
        let files = self.files.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || files.set_disabled(&marker)).await {
            tracing::error!(webhook = %ep.id, error = %e, "cannot keep the endpoint's disabling");
        }
        self.inflight.abort_all();
        self.save(true).await;
        self.gauges.backlog.store(0, Ordering::Relaxed);
        self.gauges.oldest_pending_us.store(0, Ordering::Relaxed);
        let _ = self
            .ctx
            .gone
            .send(Gone {
                id: ep.id.clone(),
                serial: self.serial,
                reason,
            })
            .await;
    }

    /// Answers under way get a moment (an answer that came need not be
    /// sent again), then the cursor is saved.
    async fn shutdown(mut self) {
        let grace = tokio::time::sleep(STOP_GRACE);
        tokio::pin!(grace);
        while !self.inflight.is_empty() {
            tokio::select! {
                Some(done) = self.inflight.join_next_with_id() => {
                    if let Flow::Gone(reason) = self.finished(done).await {
                        return self.gone(reason).await;
                    }
                }
                _ = &mut grace => break,
            }
        }
        self.inflight.abort_all();
        self.save(true).await;
    }
}
