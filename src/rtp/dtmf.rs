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
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> ToneEvent {
        ToneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
    }

    #[test]
    fn parses_event_payload() {
        let e = parse_event(&[5, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(e, ev(5, true, 800));
        assert_eq!(parse_event(&[5, 0x0a, 0x00]), None);
        assert_eq!(event_char(0), Some('0'));
        assert_eq!(event_char(9), Some('9'));
        assert_eq!(event_char(10), Some('*'));
        assert_eq!(event_char(11), Some('#'));
        assert_eq!(event_char(12), Some('A'));
        assert_eq!(event_char(15), Some('D'));
        assert_eq!(event_char(16), None);
    }

    #[test]
    fn one_digit_per_event_with_triple_end() {
        let mut d = DtmfDetector::new();
        let mut got = Vec::new();
        let mut seq = 100;
        for (ts, event) in [(8000u64, 1u8), (16000, 11), (24000, 1)] {
            for i in 1..=4u16 {
                seq += 1;
                got.extend(d.push(ts, seq, &ev(event, false, i * 160)));
            }
            for _ in 0..3 {
                seq += 1;
                got.extend(d.push(ts, seq, &ev(event, true, 800)));
            }
        }
        let s: String = got.iter().map(|g| g.digit).collect();
        assert_eq!(s, "1#1");
        assert_eq!(got[0].ts, 8000);
        assert_eq!(got[0].seq, 101);
        assert_eq!(d.digits, 3);
        assert_eq!(d.duplicates, 18);
    }

    #[test]
    fn lost_start_and_reordering() {
        let mut d = DtmfDetector::new();
        // Start and first updates lost: the end packets alone still give the digit.
        assert_eq!(
            d.push(1000, 5, &ev(7, true, 640)).map(|g| g.digit),
            Some('7')
        );
        assert_eq!(d.push(1000, 6, &ev(7, true, 640)), None);
        // Next press, its start reordered after an update.
        assert_eq!(
            d.push(9000, 9, &ev(0, false, 320)).map(|g| g.digit),
            Some('0')
        );
        assert_eq!(d.push(9000, 8, &ev(0, false, 160)), None);
        // A straggler from the first event after the second started.
        assert_eq!(d.push(1000, 7, &ev(7, true, 640)), None);
        assert_eq!(d.digits, 2);
    }

    #[test]
    fn long_event_segments_are_one_press() {
        let mut d = DtmfDetector::new();
        assert!(d.push(0, 1, &ev(5, false, 0xffff)).is_some());
        assert!(d.push(0xffff, 2, &ev(5, false, 400)).is_none());
        assert!(d.push(0xffff, 3, &ev(5, true, 800)).is_none());
        // Same key again later is a new press.
        assert!(d.push(200_000, 4, &ev(5, true, 800)).is_some());
    }

    #[test]
    fn history_is_bounded_and_non_dtmf_counted() {
        let mut d = DtmfDetector::new();
        for i in 0..1000u64 {
            assert!(d
                .push(i * 8000, i, &ev((i % 10) as u8, true, 800))
                .is_some());
        }
        assert_eq!(d.seen.len(), HISTORY);
        assert!(d.push(10_000_000, 2000, &ev(16, true, 800)).is_none());
        assert_eq!(d.non_dtmf_events, 1);
    }
}
