//! The recorder thread with real files: what reaches the sinks' channel, what
//! the in-flight journal holds, and that a slow sink holds the tracker up
//! instead of losing calls.

use crate::rtp::codec::{Codec, Format, MediaTime};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::call::{CallHandle, CallRecord, Direction, EndReason, LegQuality, Outcome, Side};
use crate::phone::{parse_country, Normalizer};
use crate::report::{CallReport, RecordingStatus};
use crate::time::Timestamp;

use super::*;

/// A call of 1 s talk time (answered 4 s after it started), or one that rang.
pub(super) fn record(call_id: &str, answered: bool) -> CallRecord {
    CallRecord {
        call_id: call_id.into(),
        direction: Direction::Incoming,
        from_raw: Some("2125550100".into()),
        to_raw: Some("201".into()),
        from_display: None,
        agent: Some("201".into()),
        started_at: Timestamp::from_secs(1_800_000_000),
        answered_at: answered.then(|| Timestamp::from_secs(1_800_000_004)),
        ended_at: Timestamp::from_secs(1_800_000_005),
        outcome: if answered {
            Outcome::Answered
        } else {
            Outcome::NoAnswer
        },
        sip_code: answered.then_some(200),
        end_reason: EndReason::CrashRecovered,
        answered_elsewhere: false,
        dtmf: String::new(),
        codec: Some("PCMU"),
        unsupported_codec: None,
        encrypted_media: false,
        audio_seen: answered,
        held: false,
        sip_src: None,
        sip_dst: None,
        caller_rtp: LegQuality::default(),
        callee_rtp: LegQuality::default(),
    }
}

pub(super) fn numbers() -> Normalizer {
    Normalizer::new(
        parse_country("US").unwrap(),
        regex::Regex::new("^[0-9]{3}$").unwrap(),
    )
}

fn ended(call_id: &str, answered: bool) -> Box<CallRecord> {
    let mut r = record(call_id, answered);
    r.end_reason = EndReason::CallerBye;
    Box::new(r)
}

/// Runs one answered call with a second of audio on each leg through `thread`.
fn one_call(thread: &mut RecorderThread, call: CallHandle, call_id: &str) {
    thread.started(call, Arc::from(call_id));
    thread.snapshot(call, Box::new(record(call_id, true)));
    // One second of L16 at 8 kHz per leg: decoded as it is.
    let l16 = Format::plain(Codec::L16, 8000);
    let pcm = |v: i16| v.to_be_bytes().repeat(8000);
    thread.media(call, Side::Caller, MediaTime(0), l16, 0, 8000, pcm(1000));
    thread.media(call, Side::Callee, MediaTime(0), l16, 0, 8000, pcm(-1000));
    thread.ended(call, ended(call_id, true));
    thread.sync();
}

fn snapshot_in(journal_dir: &Path, call_id: &str) -> InflightEntry {
    let path = journal_dir.join(format!("{}.json", safe_file_name(call_id)));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_finished_call_leaves_the_recorder_with_its_recording_and_never_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let recordings = Recordings::open(&tmp.path().join("rec")).unwrap();
    let dir = recordings.dir().to_path_buf();
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut thread = RecorderThread::spawn(recordings, numbers(), tx).unwrap();
    assert_eq!(thread.recordings_dir(), Some(dir.as_path()));
    let journal_dir = tmp.path().join("inflight");
    thread.set_journal(InflightJournal::open(&journal_dir).unwrap());

    one_call(&mut thread, CallHandle(7), "up@pbx");
    // Handed on by `sync`, before the thread stops.
    let reports: Vec<CallReport> = rx.try_iter().flatten().collect();
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r.call_id, "up@pbx");
    assert_eq!(r.end_reason, EndReason::CallerBye);
    assert_eq!(r.from_number.as_deref(), Some("+12125550100"));
    assert_eq!(r.recording.status, RecordingStatus::Stored);
    assert_eq!(r.recording.samples, Some(8000));
    let path = r.recording.path.as_deref().unwrap();
    assert_eq!(
        Path::new(path),
        recording_path(&dir, Timestamp::from_secs(1_800_000_000), "up@pbx")
    );
    let wav = hound::WavReader::open(path).unwrap();
    assert_eq!((wav.duration(), wav.spec().channels), (8000, 2));
    // The snapshot says where the audio was spooled; only the sinks remove it.
    let snap = snapshot_in(&journal_dir, "up@pbx");
    assert_eq!(snap.spool, Some(spool_path(&dir, CallHandle(7), "up@pbx")));
    assert_eq!(snap.recordings_dir.as_deref(), Some(dir.as_path()));

    drop(thread);
    assert!(
        rx.recv().is_err(),
        "the channel closes once the thread ends"
    );
}

#[test]
fn recording_off_is_the_same_thread_writing_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut thread = RecorderThread::spawn(NoRecording, numbers(), tx).unwrap();
    assert_eq!(thread.recordings_dir(), None);
    let journal_dir = tmp.path().join("inflight");
    thread.set_journal(InflightJournal::open(&journal_dir).unwrap());

    one_call(&mut thread, CallHandle(1), "a@pbx");
    thread.ended(CallHandle(2), ended("b@pbx", false));
    drop(thread);
    let reports: Vec<CallReport> = rx.iter().flatten().collect();
    let ids: Vec<&str> = reports.iter().map(|r| r.call_id.as_str()).collect();
    assert_eq!(ids, ["a@pbx", "b@pbx"]);
    for r in &reports {
        assert_eq!(r.recording.status, RecordingStatus::None);
        assert_eq!(r.recording.detail.as_deref(), Some("recording is disabled"));
        assert_eq!(r.recording.path, None);
    }
    assert_eq!(reports[0].outcome, Outcome::Answered);
    let snap = snapshot_in(&journal_dir, "a@pbx");
    assert_eq!((snap.spool, snap.recordings_dir), (None, None));
    // Nothing but the journal was written.
    let files: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(files.len(), 1);
}

#[test]
fn a_slow_sink_holds_the_tracker_up_and_loses_no_call() {
    const CALLS: usize = 2000;
    let (tx, rx) = crossbeam_channel::bounded(1);
    let pusher = std::thread::spawn(move || {
        let mut thread = RecorderThread::spawn(NoRecording, numbers(), tx).unwrap();
        for i in 0..CALLS {
            thread.ended(CallHandle(i as u64), ended(&format!("{i:05}@pbx"), false));
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !pusher.is_finished(),
        "with the sink not reading, the queues fill and the sender waits"
    );
    let ids: Vec<String> = rx.iter().flatten().map(|r| r.call_id).collect();
    pusher.join().unwrap();
    let want: Vec<String> = (0..CALLS).map(|i| format!("{i:05}@pbx")).collect();
    assert_eq!(ids, want, "every call, in the order they ended");
}

#[test]
fn when_the_sinks_are_gone_the_recorder_stops_and_says_so() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut thread = RecorderThread::spawn(NoRecording, numbers(), tx).unwrap();
    drop(rx);
    assert!(!thread.is_gone());
    let mut sent = 0;
    while !thread.is_gone() {
        assert!(sent < 1000, "the recorder never noticed the sinks are gone");
        thread.ended(CallHandle(sent), ended("lost@pbx", false));
        sent += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(thread); // and stopping does not hang
}
