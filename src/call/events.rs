//! The tracker's outbox of events, and the context a call's methods act through.

use std::collections::VecDeque;

use super::{Event, Stats, TrackerConfig};

/// A driver that stops draining must not make us grow without bound; audio is
/// what we shed first, call lifecycle events are never dropped.
const MAX_QUEUED_MEDIA: usize = 100_000;

#[derive(Default)]
pub(crate) struct EventQueue {
    queue: VecDeque<Event>,
    queued_media: usize,
}

impl EventQueue {
    /// A lifecycle event: always kept.
    pub fn push(&mut self, ev: Event) {
        self.queue.push_back(ev);
    }

    /// Room for one more `Media` event? Checked before the audio is decoded.
    pub fn media_room(&self) -> bool {
        self.queued_media < MAX_QUEUED_MEDIA
    }

    pub fn push_media(&mut self, ev: Event) {
        self.queued_media += 1;
        self.queue.push_back(ev);
    }

    pub fn pop(&mut self) -> Option<Event> {
        let ev = self.queue.pop_front();
        if let Some(Event::Media { .. }) = ev {
            self.queued_media = self.queued_media.saturating_sub(1);
        }
        ev
    }
}

/// What a call's methods may touch of the tracker: its settings, where events
/// go, and the counters. Borrowed apart from the call table, so a call can act
/// while the tracker holds it.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a TrackerConfig,
    pub events: &'a mut EventQueue,
    pub stats: &'a mut Stats,
}
