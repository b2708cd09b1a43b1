//! RFC 4733 telephone-event payloads and digit de-duplication.
//!
//! One key press is many packets: updates every 50 ms or so with the same RTP
//! timestamp (the event start) and growing duration, then the end packet sent
//! three times. Any of them may be lost or reordered, so a digit is reported on
//! the first packet seen for its timestamp, whichever that is.

/// One event block (RFC 4733 §2.3), the first in the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToneEvent {
    pub event: u8,
    pub end: bool,
    /// Power level in -dBm0 (0..=63).
    pub volume: u8,
    /// In RTP timestamp units since the event start.
    pub duration: u16,
}

pub fn parse_event(payload: &[u8]) -> Option<ToneEvent> {
    match payload {
        [event, flags, d0, d1, ..] => Some(ToneEvent {
            event: *event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([*d0, *d1]),
        }),
        _ => None,
    }
}

/// DTMF events 0..=15 (RFC 4733 §3.2) as the characters a keypad shows.
pub fn event_char(event: u8) -> Option<char> {
    match event {
        0..=9 => char::from_digit(u32::from(event), 10),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + (event - 12))),
        _ => None,
    }
}

/// A key press, reported once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfDigit {
    pub digit: char,
    pub event: u8,
    /// RTP timestamp of the event start (the de-duplication key).
    pub ts: u64,
    /// Sequence number of the packet that revealed it.
    pub seq: u64,
    pub volume: u8,
}

/// Events remembered for de-duplication. Presses come seconds apart while a
/// stale retransmission trails its event by well under one, so a few suffice.
const HISTORY: usize = 16;

#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    ts: u64,
    event: u8,
    ended: bool,
    duration: u16,
}

#[derive(Debug, Default)]
pub struct DtmfDetector {
    /// Ring of recent events, newest at `next - 1`.
    seen: [Option<Seen>; HISTORY],
    next: usize,
    pub digits: u64,
    pub non_dtmf_events: u64,
    pub duplicates: u64,
}

impl DtmfDetector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one telephone-event packet (`ts` may be the extended timestamp
    /// from the stream or the raw 32-bit one). Returns the digit the first
    /// time its event is seen.
    pub fn push(&mut self, ts: u64, seq: u64, ev: &ToneEvent) -> Option<DtmfDigit> {
        if let Some(s) = self.seen.iter_mut().flatten().find(|s| s.ts == ts) {
            s.ended |= ev.end;
            s.duration = s.duration.max(ev.duration);
            self.duplicates += 1;
            return None;
        }
        let continued = self.is_long_event_segment(ts, ev);
        if let Some(slot) = self.seen.get_mut(self.next) {
            *slot = Some(Seen {
                ts,
                event: ev.event,
                ended: ev.end,
                duration: ev.duration,
            });
        }
        self.next = (self.next + 1) % HISTORY;
        if continued {
            self.duplicates += 1;
            return None;
        }
        let Some(digit) = event_char(ev.event) else {
            self.non_dtmf_events += 1;
            return None;
        };
        self.digits += 1;
        Some(DtmfDigit {
            digit,
            event: ev.event,
            ts,
            seq,
            volume: ev.volume,
        })
    }

    /// RFC 4733 §2.5.2.1: an event longer than the 16-bit duration is sent as
    /// segments, each with a new timestamp 0xFFFF after the last. Those are the
    /// same key press.
    fn is_long_event_segment(&self, ts: u64, ev: &ToneEvent) -> bool {
        let newest = (self.next + HISTORY - 1) % HISTORY;
        match self.seen.get(newest).copied().flatten() {
            Some(prev) => {
                prev.event == ev.event
                    && !prev.ended
                    && prev.duration >= 0xff00
                    && matches!(ts.checked_sub(prev.ts), Some(0xfff0..=0x1_0000))
            }
            None => false,
        }
    }
}

#[cfg(test)]
#[path = "tests/dtmf.rs"]
mod tests;
