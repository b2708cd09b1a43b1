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
