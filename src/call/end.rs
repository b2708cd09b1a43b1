//! How a call ends: what its record says ended it, when the tracker may close
//! it, and the one `CallHungUp` event that says the end was seen.
//!
//! The record's end (`end_reason`, `ended_at`) is the message that ended the
//! call (BYE, CANCEL, final failure) or the timer that gave up on it. Closing
//! it, which writes the record, waits only until nothing can change that
//! record any more: the BYE's final response, the ACK of a final failure, the
//! 487 after a CANCEL. `linger` is the fallback when the capture misses that
//! confirmation, or when another fork or a retried INVITE may still take the
//! call on. Retransmissions after the close fall on the tracker's memory of
//! ended Call-IDs and are counted, not taken for a new call.

use std::sync::Arc;

use crate::time::Timestamp;

use super::dialog::Call;
use super::events::Ctx;
use super::record::EndReason;
use super::{Event, Side, TrackerConfig};

/// Forking proxies ring a handful of phones; more early dialogs than this is hostile.
const MAX_BRANCHES: usize = 8;

/// When and why a call will be closed if nothing else happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closing {
    /// When to close the call; an instant already past means at once.
    pub at: Timestamp,
    pub reason: EndReason,
    pub ended_at: Timestamp,
    /// Closed by a timer rather than by signalling (BYE, CANCEL, final response).
    pub by_timer: bool,
}

/// A call closed from outside: the daemon stopped, the capture ended, or a
/// crash snapshot, with the instant its record says it ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forced {
    pub reason: EndReason,
    pub at: Timestamp,
}

impl Forced {
    /// When a call still up ends for `reason`, the tracker's clock being `now`.
    ///
    /// - `Shutdown`: the daemon watched the line until it stopped and saw no
    ///   hangup, so the call was up until then (issue 10: it used to end at the
    ///   ACK, a talk time of 0 s for a call with no RTP).
    /// - `CaptureEnd`: a replay knows only the call's own packets. Where the
    ///   capture stops depends on unrelated traffic (other calls, where a file
    ///   was cut), so the call ends at its own last packet: the same call gives
    ///   the same record whatever else the capture holds.
    /// - `CrashRecovered` (the in-flight snapshot): the call's last packet so
    ///   far; recovery moves it on to the daemon's last heartbeat
    ///   (`recording::inflight`), the last moment the line was known watched.
    pub fn new(reason: EndReason, now: Timestamp, call: &Call) -> Forced {
        let at = match reason {
            EndReason::Shutdown => now,
            _ => call.last_activity,
        };
        Forced { reason, at }
    }
}

/// The early dialogs (To tags) that answered the current INVITE, and whether
/// each has sent its final response. While one is still open it may answer,
/// so another fork's failure is not the end of the call.
#[derive(Debug, Default)]
pub(crate) struct Branches {
    tags: Vec<(Box<[u8]>, bool)>,
    /// More branches than we keep: one of those may still answer.
    overflow: bool,
}

impl Branches {
    /// A response from the branch `tag`; `done` when it is final.
    pub fn note(&mut self, tag: &[u8], done: bool) {
        if let Some((_, d)) = self.tags.iter_mut().find(|(t, _)| **t == *tag) {
            *d |= done;
        } else if self.tags.len() < MAX_BRANCHES {
            self.tags.push((tag.into(), done));
        } else {
            self.overflow = true;
        }
    }

    pub fn any_open(&self) -> bool {
        self.overflow || self.tags.iter().any(|(_, done)| !done)
    }

    /// A new INVITE transaction (the retry after 401/407 or a redirect) forks anew.
    pub fn clear(&mut self) {
        self.tags.clear();
        self.overflow = false;
    }
}

/// Failures after which a UAC commonly sends the INVITE again on the same
/// Call-ID with a higher CSeq: a redirect, a session interval, an extension or
/// another offer the UAS asks for. 401/407 are never failures (`on_response`).
fn may_be_retried(code: u16) -> bool {
    matches!(code, 300..=399 | 415 | 420 | 421 | 422 | 488 | 494)
}

impl Call {
    /// Whether the failure response to the INVITE ends the call for certain:
    /// no retry is to be expected and no other fork may still answer.
    pub fn failure_is_final(&self) -> bool {
        self.failure
            .is_some_and(|(code, _)| !may_be_retried(code) && !self.branches.any_open())
    }

    /// The end of the call seen: the first BYE, the CANCEL, a final failure.
    /// The event goes out once per call; the snapshot is the record as it
    /// would read if the call were closed now.
    pub fn hang_up(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        if self.hungup {
            return;
        }
        self.hungup = true;
        let snapshot = Box::new(self.finish(ctx.cfg, None));
        tracing::debug!(
            call_id = %self.id,
            end_reason = snapshot.end_reason.as_str(),
            "hung up"
        );
        ctx.events.push(Event::CallHungUp {
            call: self.handle,
            call_id: Arc::clone(&self.id),
            at: now,
            snapshot,
        });
    }

    pub fn closing(&self, cfg: &TrackerConfig) -> Closing {
        let natural = |at: Timestamp, reason, ended_at| Closing {
            at,
            reason,
            ended_at,
            by_timer: false,
        };
        let timer = |at: Timestamp, reason, ended_at| Closing {
            at,
            reason,
            ended_at,
            by_timer: true,
        };
        if let Some((bye_at, by)) = self.bye {
            let reason = match by {
                Side::Caller => EndReason::CallerBye,
                Side::Callee => EndReason::CalleeBye,
            };
            let at = match self.bye_confirmed {
                // Its final response closes the BYE's transaction: nothing is left to wait for.
                Some(t) => t,
                None => bye_at.saturating_add(cfg.bye_timeout),
            };
            return natural(at, reason, bye_at);
        }
        if let Some(answered) = self.answered_at {
            let max = answered.saturating_add(cfg.max_duration);
            if let Some(last) = self.media.last_rtp {
                let silent = last.saturating_add(cfg.rtp_timeout);
                if silent < max {
                    return timer(silent, EndReason::RtpTimeout, last);
                }
            }
            return timer(max, EndReason::MaxDuration, max);
        }
        if let Some((code, t)) = self.failure {
            let (reason, ended_at) = match self.cancel_at {
                Some(cancel_at) => (EndReason::Cancel, cancel_at),
                // 487 answers a CANCEL (or an early BYE) that the capture missed.
                None if code == 487 => (EndReason::Cancel, t),
                None => (EndReason::Rejected, t),
            };
            // Nothing is retried after a CANCEL: its 487 is the end once no
            // fork may still answer. Without one, the UAC's ACK says it takes
            // the failure as final.
            let certain = match self.cancel_at {
                Some(_) => !self.branches.any_open(),
                None => self.failure_acked && self.failure_is_final(),
            };
            let at = if certain {
                t
            } else {
                t.saturating_add(cfg.linger)
            };
            return natural(at, reason, ended_at);
        }
        if let Some(cancel_at) = self.cancel_at {
            let at = cancel_at.saturating_add(cfg.bye_timeout);
            return natural(at, EndReason::Cancel, cancel_at);
        }
        if self.got_response {
            let at = self.started_at.saturating_add(cfg.ring_timeout);
            return timer(at, EndReason::RingTimeout, at);
        }
        let at = self.started_at.saturating_add(cfg.no_response);
        timer(at, EndReason::NoResponse, at)
    }
}
