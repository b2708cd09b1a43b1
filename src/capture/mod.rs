//! Packet sources (drivers): they do I/O and hand `(timestamp, bytes)` to the core.
//!
//! Every source runs on its own thread and pushes [`Input`]s into one bounded
//! [`InputQueue`]. The tracker thread is the only consumer. Live sources never
//! block on a full queue: they drop the packet and count it, so a slow database
//! or disk shows up as `queue_full` drops in the metrics instead of as kernel
//! drops that nobody can attribute. File sources block instead: a file can wait.

pub mod folder;
pub mod hep;
pub mod live;
pub mod pcapfile;
pub mod thread;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::time::Timestamp;
use crate::wire::LinkType;

/// One unit of work for the tracker thread.
#[derive(Debug)]
pub enum Input {
    /// A captured link-layer frame (live interface or a capture file).
    Frame {
        ts: Timestamp,
        link: LinkType,
        data: Vec<u8>,
    },
    /// One HEP v2/v3 datagram (or one framed HEP message from a TCP stream);
    /// `ts` is when we received it, the HEP header carries the original time.
    Hep { ts: Timestamp, data: Vec<u8> },
}

/// Counters shared by every producer of one queue.
#[derive(Debug, Default)]
pub struct QueueCounters {
    pub pushed: AtomicU64,
    /// Live input dropped because the tracker thread fell behind.
    pub dropped_full: AtomicU64,
}

/// The producer side of the tracker's input queue. Cheap to clone.
#[derive(Clone)]
pub struct InputSender {
    tx: crossbeam_channel::Sender<Input>,
    counters: Arc<QueueCounters>,
}

/// The consumer side, owned by the tracker thread.
pub struct InputReceiver {
    rx: crossbeam_channel::Receiver<Input>,
    counters: Arc<QueueCounters>,
}

/// Why a send did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("input queue is full")]
    Full,
    #[error("input queue is closed (the daemon is stopping)")]
    Closed,
}

/// A bounded queue of `capacity` inputs between the sources and the tracker.
pub fn input_queue(capacity: usize) -> (InputSender, InputReceiver) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    let counters = Arc::new(QueueCounters::default());
    (
        InputSender {
            tx,
            counters: counters.clone(),
        },
        InputReceiver { rx, counters },
    )
}

impl InputSender {
    /// For live sources: never blocks; a full queue drops the input and counts it.
    pub fn try_send(&self, input: Input) -> Result<(), SendError> {
        match self.tx.try_send(input) {
            Ok(()) => {
                self.counters.pushed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(crossbeam_channel::TrySendError::Full(_)) => {
                self.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
                Err(SendError::Full)
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => Err(SendError::Closed),
        }
    }

    /// For file sources: waits for room, so nothing read from a file is dropped.
    pub fn send(&self, input: Input) -> Result<(), SendError> {
        self.tx.send(input).map_err(|_| SendError::Closed)?;
        self.counters.pushed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub fn counters(&self) -> &Arc<QueueCounters> {
        &self.counters
    }
}

impl InputReceiver {
    /// Waits up to `timeout`; `Ok(None)` on timeout, `Err` once every sender is gone.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Input>, SendError> {
        match self.rx.recv_timeout(timeout) {
            Ok(i) => Ok(Some(i)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ok(None),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(SendError::Closed),
        }
    }

    pub fn try_recv(&self) -> Option<Input> {
        self.rx.try_recv().ok()
    }

    /// Inputs waiting now.
    pub fn depth(&self) -> usize {
        self.rx.len()
    }

    pub fn capacity(&self) -> usize {
        self.rx.capacity().unwrap_or(0)
    }

    pub fn counters(&self) -> &Arc<QueueCounters> {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_drops_live_input_and_counts_it() {
        let (tx, rx) = input_queue(2);
        let frame = || Input::Hep {
            ts: Timestamp::default(),
            data: vec![1],
        };
        assert_eq!(tx.try_send(frame()), Ok(()));
        assert_eq!(tx.try_send(frame()), Ok(()));
        assert_eq!(tx.try_send(frame()), Err(SendError::Full));
        assert_eq!(rx.depth(), 2);
        assert_eq!(rx.counters().dropped_full.load(Ordering::Relaxed), 1);
        assert_eq!(rx.counters().pushed.load(Ordering::Relaxed), 2);
        assert!(rx.try_recv().is_some());
        drop(tx);
        assert!(rx.recv_timeout(Duration::from_millis(1)).is_ok());
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)).err(),
            Some(SendError::Closed)
        );
    }
}
