//! The calls ringing or answered now, on every sensor whose events reach
//! this node's log: built from `call.ringing`/`answered`/`held`/`resumed`,
//! forgotten at `call.hungup` (or `call.completed`, when the hangup was
//! missed). Rebuilt from the log at start, so a restart forgets nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::log::{EventLog, Stored};
use super::model::{CallParties, EventType, MatchedRecord};
use crate::time::Timestamp;

/// More live calls than any PBX carries; beyond it the oldest go.
const MAX_LIVE: usize = 100_000;
/// A call whose sensor went quiet mid-call (killed, cut off) is forgotten
/// after this long without news: longer than the tracker's own maximum.
const FORGET_AFTER: Duration = Duration::from_secs(5 * 3600);

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveCall {
    pub sensor: String,
    pub call_id: String,
    /// `ringing` or `answered`.
    pub state: String,
    pub held: bool,
    #[serde(flatten)]
    pub parties: CallParties,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ringing_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answered_at: Option<Timestamp>,
    /// The CRM records matched at ring time.
    pub matches: Vec<MatchedRecord>,
    #[serde(skip)]
    touched: Timestamp,
}

type Key = (Box<str>, Box<str>);

#[derive(Default)]
pub struct LiveCalls {
    calls: Mutex<HashMap<Key, LiveCall>>,
}

impl LiveCalls {
    /// Follows `log` from what it holds in memory on: the task ends when
    /// the log's sender is gone.
    pub fn follow(self: &Arc<Self>, log: Arc<EventLog>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tail = log.subscribe();
            let mut at = log.first_seq().saturating_sub(1);
            loop {
                let (l, from) = (log.clone(), at);
                let got = tokio::task::spawn_blocking(move || l.read_after(from, 4096)).await;
                match got {
                    Ok(Ok(events)) if !events.is_empty() => {
                        for e in &events {
                            me.apply(e);
                        }
                        at = events.last().map_or(at, |e| e.seq);
                        continue;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "live calls cannot read the event log")
                    }
                    _ => {}
                }
                if tail.changed().await.is_err() {
                    return;
                }
            }
        })
    }

    pub fn apply(&self, s: &Stored) {
        let kind = s.kind;
        if !matches!(
            kind,
            EventType::CallRinging
                | EventType::CallAnswered
                | EventType::CallHeld
                | EventType::CallResumed
                | EventType::CallHungup
                | EventType::CallCompleted
        ) {
            return;
        }
        let Some(call_id) = s.call_id.clone() else {
            return;
        };
        let key: Key = (s.sensor.clone(), call_id);
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(kind, EventType::CallHungup | EventType::CallCompleted) {
            calls.remove(&key);
            return;
        }
        let Some(ev) = s.event() else { return };
        let parties: Option<CallParties> = serde_json::from_value(ev.data.clone()).ok();
        let entry = match calls.get_mut(&key) {
            Some(c) => c,
            None => {
                // Only ringing and answered start an entry: a hold of a call
                // we never saw start has too little to show.
                let Some(parties) = parties
                    .clone()
                    .filter(|_| matches!(kind, EventType::CallRinging | EventType::CallAnswered))
                else {
                    return;
                };
                if calls.len() >= MAX_LIVE {
                    evict_oldest(&mut calls);
                }
                calls.entry(key).or_insert(LiveCall {
                    sensor: s.sensor.to_string(),
                    call_id: key_call_id(s),
                    state: "ringing".into(),
                    held: false,
                    parties,
                    ringing_at: None,
                    answered_at: None,
                    matches: Vec::new(),
                    touched: s.occurred_at,
                })
            }
        };
        entry.touched = s.occurred_at;
        if let Some(p) = parties {
            entry.parties = p;
        }
        match kind {
            EventType::CallRinging => {
                entry.ringing_at = Some(s.occurred_at);
                if let Some(m) = ev.data.get("matches") {
                    entry.matches = serde_json::from_value(m.clone()).unwrap_or_default();
                }
            }
            EventType::CallAnswered => {
                entry.state = "answered".into();
                entry.answered_at = Some(s.occurred_at);
            }
            EventType::CallHeld => entry.held = true,
            EventType::CallResumed => entry.held = false,
            _ => {}
        }
    }

    /// Every live call (only `agent`'s when given), oldest first; calls
    /// not heard of for hours are forgotten on the way.
    pub fn list(&self, agent: Option<&str>, now: Timestamp) -> Vec<LiveCall> {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.retain(|_, c| now.duration_since(c.touched) < FORGET_AFTER);
        let mut out: Vec<LiveCall> = calls
            .values()
            .filter(|c| agent.is_none() || c.parties.agent.as_deref() == agent)
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            (a.parties.started_at, &a.sensor, &a.call_id).cmp(&(
                b.parties.started_at,
                &b.sensor,
                &b.call_id,
            ))
        });
        out
    }
}

fn key_call_id(s: &Stored) -> String {
    s.call_id.as_deref().unwrap_or_default().to_owned()
}

fn evict_oldest(calls: &mut HashMap<Key, LiveCall>) {
    if let Some(k) = calls
        .iter()
        .min_by_key(|(_, c)| c.touched)
        .map(|(k, _)| k.clone())
    {
        calls.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Direction;
    use crate::events::model::{Event, IdMaker};

    fn stored(seq: u64, kind: EventType, call: &str, at: i64, data: serde_json::Value) -> Stored {
        let ev = Event {
            id: IdMaker::default().next(),
            kind,
            occurred_at: Timestamp::from_secs(at),
            sensor: "s1".into(),
            call_id: Some(call.into()),
            data,
        };
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), Default::default()).unwrap();
        let mut s = log.append(&[ev]).unwrap().remove(0).as_ref().clone();
        s.seq = seq;
        s
    }

    fn parties(agent: &str) -> serde_json::Value {
        serde_json::to_value(CallParties {
            direction: Direction::Incoming,
            from_number: Some("+14155550100".into()),
            to_number: Some("201".into()),
            from_raw: None,
            to_raw: None,
            from_display: None,
            agent: Some(agent.into()),
            started_at: Timestamp::from_secs(1_800_000_000),
        })
        .unwrap()
    }

    #[test]
    fn a_call_is_live_from_ringing_until_hangup() {
        let live = LiveCalls::default();
        let now = Timestamp::from_secs(1_800_000_010);
        let mut ring = parties("201");
        ring["matches"] =
            serde_json::json!([{ "type": "contact", "id": "7", "display_name": "Ada" }]);
        live.apply(&stored(1, EventType::CallRinging, "a", 1_800_000_001, ring));
        live.apply(&stored(
            2,
            EventType::CallRinging,
            "b",
            1_800_000_002,
            parties("202"),
        ));
        let all = live.list(None, now);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].state, "ringing");
        assert_eq!(all[0].matches[0].display_name.as_deref(), Some("Ada"));
        live.apply(&stored(
            3,
            EventType::CallAnswered,
            "a",
            1_800_000_003,
            parties("201"),
        ));
        live.apply(&stored(
            4,
            EventType::CallHeld,
            "a",
            1_800_000_004,
            parties("201"),
        ));
        let own = live.list(Some("201"), now);
        assert_eq!(own.len(), 1);
        assert_eq!((own[0].state.as_str(), own[0].held), ("answered", true));
        assert_eq!(own[0].matches.len(), 1, "matches stay after the answer");
        live.apply(&stored(
            5,
            EventType::CallHungup,
            "a",
            1_800_000_005,
            parties("201"),
        ));
        assert_eq!(live.list(None, now).len(), 1);
        // A sensor that died mid-call: forgotten after hours of silence.
        let later = Timestamp::from_secs(1_800_000_002 + 6 * 3600);
        assert!(live.list(None, later).is_empty());
    }
}
