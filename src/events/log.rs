//! The event log: every event this node knows, in the order it learnt them,
//! fsynced before anyone is told (DESIGN §9). SSE resumes from it, webhooks
//! and the NATS publisher read it as their outbox, and live calls are rebuilt
//! from it at start.
//!
//! Segment files of `seq<TAB>json` lines; the newest events are also kept in
//! memory. Old segments go once the log is over its size or age and every
//! durable reader (a [`Pin`]) has passed them; a reader that stays away
//! until the log reaches its hard cap loses the oldest (counted).

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::model::{agent_of, Event, EventType};
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct LogLimits {
    /// Events kept once every reader has passed them.
    pub max_events: u64,
    /// ... and for how long at most.
    pub max_age: Duration,
    /// Kept even for a reader that has not passed them, up to this many.
    pub hard_max_events: u64,
    pub segment_events: u64,
    /// Newest events kept in memory (SSE, live calls, duplicate check).
    pub memory_events: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_events: 200_000,
            max_age: Duration::from_secs(7 * 86_400),
            hard_max_events: 2_000_000,
            segment_events: 10_000,
            memory_events: 20_000,
        }
    }
}

/// One event as the log holds it: its place, what readers filter on, and the
/// exact JSON every channel sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub seq: u64,
    pub id: Box<str>,
    pub kind: EventType,
    pub sensor: Box<str>,
    pub call_id: Option<Box<str>>,
    pub agent: Option<Box<str>>,
    pub occurred_at: Timestamp,
    pub json: Arc<str>,
}

impl Stored {
    fn new(seq: u64, ev: &Event, json: Arc<str>) -> Stored {
        Stored {
            seq,
            id: ev.id.as_str().into(),
            kind: ev.kind,
            sensor: ev.sensor.as_str().into(),
            call_id: ev.call_id.as_deref().map(Into::into),
            agent: agent_of(&ev.data).map(Into::into),
            occurred_at: ev.occurred_at,
            json,
        }
    }

    fn parse(line: &str) -> Result<Stored, String> {
        let (seq, json) = line.split_once('\t').ok_or("no tab")?;
        let seq: u64 = seq.parse().map_err(|_| "bad sequence number")?;
        let ev: Event = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok(Stored::new(seq, &ev, json.into()))
    }

    pub fn event(&self) -> Option<Event> {
        serde_json::from_str(&self.json).ok()
    }
}

/// A durable reader's place: segments holding events after it are kept.
#[derive(Debug, Clone)]
pub struct Pin(Arc<AtomicU64>);

impl Pin {
    /// Every event up to `seq` is done with.
    pub fn advance(&self, seq: u64) {
        self.0.fetch_max(seq, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct LogStats {
    pub appended: AtomicU64,
    /// Events already in the log, skipped (a redelivery from NATS).
    pub duplicates: AtomicU64,
    /// Events removed before every durable reader had them (hard cap).
    pub dropped_unread: AtomicU64,
}

struct Segment {
    first: u64,
    path: PathBuf,
    /// When its last event was written.
    written: SystemTime,
}

struct Inner {
    segments: VecDeque<Segment>,
    file: Option<File>,
    /// Events in the newest segment.
    in_current: u64,
    next_seq: u64,
    memory: VecDeque<Arc<Stored>>,
    ids: HashMap<Box<str>, u64>,
}

pub struct EventLog {
    dir: PathBuf,
    limits: LogLimits,
    inner: Mutex<Inner>,
    pins: Mutex<Vec<Pin>>,
    tail: watch::Sender<u64>,
    pub stats: LogStats,
}

impl EventLog {
    /// Opens (or creates) the log in `dir`, cutting a line a crash left half written.
    pub fn open(dir: &Path, limits: LogLimits) -> Result<EventLog, LogError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut firsts: Vec<(u64, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some(first) = name
                .strip_suffix(".jsonl")
                .and_then(|n| n.parse::<u64>().ok())
            {
                firsts.push((first, path));
            }
        }
        firsts.sort();
        let mut segments = VecDeque::new();
        for (first, path) in firsts {
            let written = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or_else(|_| SystemTime::now());
            segments.push_back(Segment {
                first,
                path,
                written,
            });
        }
        let mut inner = Inner {
            segments,
            file: None,
            in_current: 0,
            next_seq: 1,
            memory: VecDeque::new(),
            ids: HashMap::new(),
        };
        if let Some(last) = inner.segments.back() {
            let (events, good_len) = read_segment(&last.path, true)?;
            let file = OpenOptions::new()
                .append(true)
                .open(&last.path)
                .map_err(io(&last.path))?;
            file.set_len(good_len).map_err(io(&last.path))?;
            inner.in_current = events.len() as u64;
            inner.next_seq = events.last().map_or(last.first, |e| e.seq + 1);
            inner.file = Some(file);
        }
        let log = EventLog {
            dir: dir.to_path_buf(),
            limits,
            tail: watch::Sender::new(inner.next_seq - 1),
            inner: Mutex::new(inner),
            pins: Mutex::new(Vec::new()),
            stats: LogStats::default(),
        };
        log.load_memory()?;
        Ok(log)
    }

    /// Fills memory with the newest events on disk.
    fn load_memory(&self) -> Result<(), LogError> {
        let paths: Vec<PathBuf> = {
            let inner = self.lock();
            inner
                .segments
                .iter()
                .rev()
                .map(|s| s.path.clone())
                .collect()
        };
        let mut newest: VecDeque<Arc<Stored>> = VecDeque::new();
        for path in paths {
            if newest.len() >= self.limits.memory_events {
                break;
            }
            let (events, _) = read_segment(&path, false)?;
            for e in events.into_iter().rev() {
                if newest.len() >= self.limits.memory_events {
                    break;
                }
                newest.push_front(Arc::new(e));
            }
        }
        let mut inner = self.lock();
        for e in newest {
            inner.ids.insert(e.id.clone(), e.seq);
            inner.memory.push_back(e);
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `events` in order, skipping ids already held, and fsyncs
    /// before telling readers. Blocking: call from a blocking thread.
    pub fn append(&self, events: &[Event]) -> Result<Vec<Arc<Stored>>, LogError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut added = Vec::with_capacity(events.len());
        let mut text = String::new();
        for ev in events {
            if inner.ids.contains_key(ev.id.as_str()) {
                self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let json: Arc<str> = match serde_json::to_string(ev) {
                Ok(j) => j.into(),
                Err(_) => continue,
            };
            let seq = inner.next_seq;
            inner.next_seq += 1;
            text.push_str(&format!("{seq}\t{json}\n"));
            let stored = Arc::new(Stored::new(seq, ev, json));
            inner.ids.insert(stored.id.clone(), seq);
            added.push(stored);
        }
        if added.is_empty() {
            return Ok(added);
        }
        if inner.file.is_none() || inner.in_current >= self.limits.segment_events {
            self.rotate(inner, added[0].seq)?;
        }
        let path = inner
            .segments
            .back()
            .map(|s| s.path.clone())
            .unwrap_or_default();
        let file = inner.file.as_mut().expect("rotate opened a segment");
        let before = file.metadata().map(|m| m.len());
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_data());
        if let Err(e) = written {
            // Nothing of this batch counts: cut what reached the file and
            // forget it, so a retry writes it again.
            if let Ok(len) = before {
                let _ = file.set_len(len);
            }
            for s in &added {
                inner.ids.remove(&s.id);
            }
            inner.next_seq = added[0].seq;
            return Err(io(&path)(e));
        }
        inner.in_current += added.len() as u64;
        if let Some(s) = inner.segments.back_mut() {
            s.written = SystemTime::now();
        }
        for s in &added {
            inner.memory.push_back(s.clone());
        }
        while inner.memory.len() > self.limits.memory_events {
            if let Some(old) = inner.memory.pop_front() {
                inner.ids.remove(&old.id);
            }
        }
        let last = inner.next_seq - 1;
        drop(guard);
        self.stats
            .appended
            .fetch_add(added.len() as u64, Ordering::Relaxed);
        self.tail.send_replace(last);
        Ok(added)
    }

    fn rotate(&self, inner: &mut Inner, first: u64) -> Result<(), LogError> {
        let path = self.dir.join(format!("{first:020}.jsonl"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        inner.file = Some(file);
        inner.in_current = 0;
        inner.segments.push_back(Segment {
            first,
            path,
            written: SystemTime::now(),
        });
        self.prune(inner);
        Ok(())
    }

    /// Drops the oldest segments the limits and the readers allow.
    fn prune(&self, inner: &mut Inner) {
        let pinned = self.min_pin();
        while inner.segments.len() > 1 {
            let (oldest, next_first) = (&inner.segments[0], inner.segments[1].first);
            let held = inner.next_seq - oldest.first;
            let old = oldest
                .written
                .elapsed()
                .is_ok_and(|age| age > self.limits.max_age);
            let read = pinned.is_none_or(|p| next_first <= p + 1);
            let over = held > self.limits.max_events;
            if !(read && (over || old)) && held <= self.limits.hard_max_events {
                break;
            }
            if !read {
                let unread = next_first - 1 - pinned.unwrap_or(0).max(oldest.first - 1);
                self.stats
                    .dropped_unread
                    .fetch_add(unread, Ordering::Relaxed);
                tracing::warn!(
                    events = unread,
                    "event log full: dropping events a webhook or NATS has not taken"
                );
            }
            let gone = inner.segments.pop_front().expect("two segments");
            if let Err(e) = std::fs::remove_file(&gone.path) {
                tracing::warn!(path = %gone.path.display(), error = %e, "cannot remove an old event log segment");
            }
        }
    }

    fn min_pin(&self) -> Option<u64> {
        let mut pins = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        // A pin only the log holds belongs to a reader that has gone.
        pins.retain(|p| Arc::strong_count(&p.0) > 1);
        pins.iter().map(Pin::get).min()
    }

    /// A durable reader starting after `seq`: what it has not passed stays.
    pub fn pin(&self, seq: u64) -> Pin {
        let pin = Pin(Arc::new(AtomicU64::new(seq)));
        self.pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pin.clone());
        pin
    }

    /// The newest event's seq (0 when empty); changes as events arrive.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tail.subscribe()
    }

    pub fn last_seq(&self) -> u64 {
        *self.tail.borrow()
    }

    /// The oldest seq still kept.
    pub fn first_seq(&self) -> u64 {
        let inner = self.lock();
        inner.segments.front().map_or(inner.next_seq, |s| s.first)
    }

    /// Up to `max` events after `seq`, oldest first; from memory when they
    /// are there, else from disk (blocking).
    pub fn read_after(&self, seq: u64, max: usize) -> Result<Vec<Arc<Stored>>, LogError> {
        let paths = {
            let inner = self.lock();
            match inner.memory.front() {
                Some(f) if f.seq <= seq + 1 => {
                    let skip = (seq + 1 - f.seq) as usize;
                    return Ok(inner.memory.iter().skip(skip).take(max).cloned().collect());
                }
                None if seq + 1 >= inner.next_seq => return Ok(Vec::new()),
                _ => {}
            }
            segment_paths_from(&inner.segments, seq + 1)
        };
        let mut out = Vec::new();
        for path in paths {
            let events = match read_segment(&path, false) {
                Ok((events, _)) => events,
                // Pruned meanwhile: the next one has what is left.
                Err(LogError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            for e in events.into_iter().filter(|e| e.seq > seq) {
                out.push(Arc::new(e));
                if out.len() >= max {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// Where the event `id` is, if the log still holds it (memory, then disk).
    pub fn seq_of(&self, id: &str) -> Result<Option<u64>, LogError> {
        let paths: Vec<PathBuf> = {
            let inner = self.lock();
            if let Some(seq) = inner.ids.get(id) {
                return Ok(Some(*seq));
            }
            inner
                .segments
                .iter()
                .rev()
                .map(|s| s.path.clone())
                .collect()
        };
        for path in paths {
            match read_segment(&path, false) {
                Ok((events, _)) => {
                    if let Some(e) = events.iter().find(|e| &*e.id == id) {
                        return Ok(Some(e.seq));
                    }
                }
                Err(LogError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

/// Reads one log line as the log does after a crash (fuzz target
/// `events_input`): any text is an event or not, never a panic.
#[doc(hidden)]
pub fn parse_line(line: &str) -> bool {
    Stored::parse(line).is_ok()
}

fn segment_paths_from(segments: &VecDeque<Segment>, seq: u64) -> Vec<PathBuf> {
    let start = segments.iter().rposition(|s| s.first <= seq).unwrap_or(0);
    segments
        .iter()
        .skip(start)
        .map(|s| s.path.clone())
        .collect()
}

/// The events of one segment and the length of its whole lines. `tail`: the
/// newest segment, whose last line a crash may have cut (dropped, not an error).
fn read_segment(path: &Path, tail: bool) -> Result<(Vec<Stored>, u64), LogError> {
    let file = File::open(path).map_err(io(path))?;
    let mut reader = BufReader::new(file);
    let mut events = Vec::new();
    let mut good = 0u64;
    let mut line = String::new();
    let mut n = 0;
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(io(path))?;
        if read == 0 {
            break;
        }
        n += 1;
        let parsed = Stored::parse(line.trim_end_matches('\n'));
        match parsed {
            Ok(e) if line.ends_with('\n') => {
                events.push(e);
                good += read as u64;
            }
            // A line a crash cut short: the end of what was written.
            _ if tail => break,
            Ok(_) => break,
            Err(reason) => {
                tracing::warn!(path = %path.display(), line = n, %reason, "skipping a damaged event log line");
                good += read as u64;
            }
        }
    }
    Ok((events, good))
}

#[cfg(test)]
mod tests;
