use super::*;
use crate::events::model::IdMaker;

fn event(ids: &IdMaker, call: &str, agent: &str) -> Event {
    Event {
        id: ids.next(),
        kind: EventType::CallRinging,
        occurred_at: Timestamp::from_secs(1_800_000_000),
        sensor: "s1".into(),
        call_id: Some(call.into()),
        data: serde_json::json!({ "agent_id": agent }),
    }
}

fn small() -> LogLimits {
    LogLimits {
        max_events: 10,
        max_age: Duration::from_secs(3600),
        hard_max_events: 40,
        segment_events: 5,
        memory_events: 4,
    }
}

#[test]
fn appends_survive_a_restart_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdMaker::default();
    let evs: Vec<Event> = (0..12)
        .map(|i| event(&ids, &format!("c{i}"), "201"))
        .collect();
    {
        let log = EventLog::open(dir.path(), small()).unwrap();
        for chunk in evs.chunks(3) {
            log.append(chunk).unwrap();
        }
        assert_eq!(log.last_seq(), 12);
    }
    let log = EventLog::open(dir.path(), small()).unwrap();
    assert_eq!(log.last_seq(), 12);
    // From disk (memory holds only the last 4), then from memory.
    let all = log.read_after(0, 100).unwrap();
    let got: Vec<&str> = all.iter().map(|s| &*s.id).collect();
    let want: Vec<&str> = evs.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(got, want);
    assert_eq!(all[3].agent.as_deref(), Some("201"));
    assert_eq!(log.read_after(10, 100).unwrap().len(), 2);
    assert_eq!(log.seq_of(&evs[1].id).unwrap(), Some(2));
    assert_eq!(log.seq_of(&evs[11].id).unwrap(), Some(12));
    assert_eq!(log.seq_of("evt_nope").unwrap(), None);
    let more = log.append(&[event(&ids, "x", "202")]).unwrap();
    assert_eq!(more[0].seq, 13);
    // What every channel sends is the event as it was made.
    assert_eq!(all[0].event().unwrap(), evs[0]);
}

#[test]
fn a_line_cut_by_a_crash_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdMaker::default();
    {
        let log = EventLog::open(dir.path(), small()).unwrap();
        log.append(&[event(&ids, "a", "1"), event(&ids, "b", "1")])
            .unwrap();
    }
    let seg = dir.path().join(format!("{:020}.jsonl", 1));
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(b"3\t{\"id\":\"evt_half").unwrap();
    drop(f);
    let log = EventLog::open(dir.path(), small()).unwrap();
    assert_eq!(log.last_seq(), 2);
    let next = log.append(&[event(&ids, "c", "1")]).unwrap();
    assert_eq!(next[0].seq, 3);
    drop(log);
    let log = EventLog::open(dir.path(), small()).unwrap();
    let all = log.read_after(0, 10).unwrap();
    assert_eq!(all.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[test]
fn the_same_id_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdMaker::default();
    let log = EventLog::open(dir.path(), small()).unwrap();
    let e = event(&ids, "a", "1");
    assert_eq!(log.append(std::slice::from_ref(&e)).unwrap().len(), 1);
    assert_eq!(log.append(&[e.clone(), e]).unwrap().len(), 0);
    assert_eq!(log.stats.duplicates.load(Ordering::Relaxed), 2);
    assert_eq!(log.last_seq(), 1);
}

#[test]
fn old_segments_go_only_once_every_reader_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdMaker::default();
    let log = EventLog::open(dir.path(), small()).unwrap();
    let pin = log.pin(0);
    for i in 0..30 {
        log.append(&[event(&ids, &format!("c{i}"), "1")]).unwrap();
    }
    // Over max_events (10) but the reader has none of them: all kept.
    assert_eq!(log.first_seq(), 1);
    pin.advance(20);
    log.append(&[event(&ids, "more", "1")]).unwrap();
    for i in 0..5 {
        log.append(&[event(&ids, &format!("d{i}"), "1")]).unwrap();
    }
    assert!(
        log.first_seq() > 1 && log.first_seq() <= 21,
        "{}",
        log.first_seq()
    );
    assert_eq!(log.stats.dropped_unread.load(Ordering::Relaxed), 0);
    // A reader that never comes back: the hard cap (40) still holds.
    for i in 0..60 {
        log.append(&[event(&ids, &format!("e{i}"), "1")]).unwrap();
    }
    assert!(log.last_seq() - log.first_seq() < 45);
    assert!(log.stats.dropped_unread.load(Ordering::Relaxed) > 0);
    let left = log.read_after(0, 1000).unwrap();
    assert_eq!(left.first().unwrap().seq, log.first_seq());
    assert_eq!(left.last().unwrap().seq, log.last_seq());
}

#[test]
fn a_dropped_pin_holds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdMaker::default();
    let log = EventLog::open(dir.path(), small()).unwrap();
    let pin = log.pin(0);
    for i in 0..20 {
        log.append(&[event(&ids, &format!("c{i}"), "1")]).unwrap();
    }
    assert_eq!(log.first_seq(), 1, "the reader has none of them");
    drop(pin);
    for i in 0..6 {
        log.append(&[event(&ids, &format!("d{i}"), "1")]).unwrap();
    }
    assert!(
        log.first_seq() > 1,
        "its reader is gone: pruned to the limits"
    );
    assert_eq!(log.stats.dropped_unread.load(Ordering::Relaxed), 0);
}
