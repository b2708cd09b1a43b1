//! The folder watcher on real files in a temporary directory.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pbxbridge::capture::folder::{FolderStats, FolderStatsSnapshot, FolderWatcher};
use pbxbridge::capture::{input_queue, Input, InputReceiver, InputSender};
use pbxbridge::wire::LinkType;
use pcap_file::pcap::{PcapPacket, PcapWriter};

/// Base of the packet timestamps: 2026-01-01T00:00:00Z.
const BASE_SECS: u64 = 1_767_225_600;

/// Writes `count` packets whose bytes are `"{tag}-{i}"`, and sets the file's mtime
/// to `age` before now (tcpdump -G files are written one after another).
fn write_pcap(path: &Path, tag: &str, count: usize, age: Duration) {
    let mut w = PcapWriter::new(File::create(path).unwrap()).unwrap();
    for i in 0..count {
        let data = format!("{tag}-{i}").into_bytes();
        let ts = Duration::from_secs(BASE_SECS) + Duration::from_millis(i as u64);
        w.write_packet(&PcapPacket::new(ts, data.len() as u32, &data))
            .unwrap();
    }
    let f = w.into_writer();
    f.set_modified(SystemTime::now() - age).unwrap();
}

fn set_mtime(path: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn set_age(path: &Path, age: Duration) {
    set_mtime(path, SystemTime::now() - age);
}

fn start(
    dir: &Path,
    settle: Duration,
    done: &Path,
    tx: InputSender,
) -> (FolderWatcher, Arc<AtomicBool>) {
    let stop = Arc::new(AtomicBool::new(false));
    let w = FolderWatcher::start(
        dir.to_path_buf(),
        settle,
        done.to_path_buf(),
        tx,
        stop.clone(),
    )
    .unwrap();
    (w, stop)
}

fn wait_for(
    stats: &FolderStats,
    what: &str,
    limit: Duration,
    ok: impl Fn(&FolderStatsSnapshot) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        let s = stats.snapshot();
        if ok(&s) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until two more scans finished, so everything complete has been read.
fn wait_idle(stats: &FolderStats) {
    let scans = stats.snapshot().scans;
    wait_for(stats, "two more scans", Duration::from_secs(5), |s| {
        s.scans >= scans + 2
    });
}

fn drain(rx: &InputReceiver) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(input) = rx.try_recv() {
        match input {
            Input::Frame { ts, link, data } => {
                assert_eq!(link, LinkType::Ethernet);
                assert!(ts.micros() >= (BASE_SECS * 1_000_000) as i64, "{ts:?}");
                out.push(String::from_utf8(data).unwrap());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

fn tags(tag: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{tag}-{i}")).collect()
}

fn done_lines(done: &Path) -> Vec<String> {
    std::fs::read_to_string(done)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

struct Dirs {
    _tmp: tempfile::TempDir,
    captures: PathBuf,
    done: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let captures = tmp.path().join("captures");
    std::fs::create_dir(&captures).unwrap();
    let done = tmp.path().join("state").join("folder.done");
    std::fs::create_dir(done.parent().unwrap()).unwrap();
    Dirs {
        _tmp: tmp,
        captures,
        done,
    }
}

#[test]
fn reads_complete_files_in_mtime_order_and_the_newest_after_settle() {
    let d = dirs();
    // Names deliberately not in mtime order: mtime decides, the name breaks ties.
    write_pcap(
        &d.captures.join("b.pcap"),
        "first",
        3,
        Duration::from_secs(300),
    );
    write_pcap(
        &d.captures.join("a.pcap"),
        "second",
        2,
        Duration::from_secs(200),
    );
    write_pcap(
        &d.captures.join("d.pcap"),
        "third",
        4,
        Duration::from_secs(100),
    );
    write_pcap(
        &d.captures.join("c.pcap"),
        "third-tie",
        1,
        Duration::from_secs(100),
    );
    let same = SystemTime::now() - Duration::from_secs(100);
    set_mtime(&d.captures.join("c.pcap"), same);
    set_mtime(&d.captures.join("d.pcap"), same);
    // Newest: still being written by tcpdump as far as anyone can tell.
    write_pcap(&d.captures.join("e.pcap"), "newest", 2, Duration::ZERO);
    std::fs::write(d.captures.join(".e.pcap.swp"), b"not a capture").unwrap();

    let settle = Duration::from_millis(1500);
    let (tx, rx) = input_queue(1024);
    let started = Instant::now();
    let (w, _stop) = start(&d.captures, settle, &d.done, tx);
    let stats = w.stats().clone();
    wait_for(&stats, "four older files", Duration::from_secs(5), |s| {
        s.files_done == 4
    });
    wait_idle(&stats);
    assert!(
        started.elapsed() < settle,
        "test too slow to check settling"
    );
    let s = stats.snapshot();
    assert_eq!(
        (s.files_done, s.files_failed, s.pending),
        (4, 0, 1),
        "{s:?}"
    );
    let mut want = tags("first", 3);
    want.extend(tags("second", 2));
    want.extend(tags("third-tie", 1));
    want.extend(tags("third", 4));
    assert_eq!(drain(&rx), want);
    assert_eq!(
        done_lines(&d.done),
        vec!["b.pcap", "a.pcap", "c.pcap", "d.pcap"]
    );

    // Unchanged for `settle`: the newest is complete too. `pending` is
    // recounted at the scan after a file is done, so wait for both.
    wait_for(&stats, "the newest file", Duration::from_secs(5), |s| {
        s.files_done == 5 && s.pending == 0
    });
    assert!(started.elapsed() >= settle);
    assert_eq!(drain(&rx), tags("newest", 2));
    assert_eq!(stats.snapshot().pending, 0);
    assert_eq!(stats.snapshot().packets, 3 + 2 + 4 + 1 + 2);
    assert!(!done_lines(&d.done).contains(&".e.pcap.swp".to_owned()));
    w.stop();
}

#[test]
fn a_newer_file_completes_the_previous_one() {
    let d = dirs();
    write_pcap(
        &d.captures.join("sip-0001.pcap"),
        "one",
        2,
        Duration::from_secs(60),
    );
    let (tx, rx) = input_queue(1024);
    // A settle far beyond the test: only a newer file can complete sip-0001.
    let (w, _stop) = start(&d.captures, Duration::from_secs(3600), &d.done, tx);
    let stats = w.stats().clone();
    wait_idle(&stats);
    assert_eq!(stats.snapshot().files_done, 0);
    assert_eq!(stats.snapshot().pending, 1);
    assert!(drain(&rx).is_empty());

    // tcpdump rotates: an empty new file (header not flushed yet) appears.
    File::create(d.captures.join("sip-0002.pcap")).unwrap();
    wait_for(&stats, "sip-0001", Duration::from_secs(5), |s| {
        s.files_done == 1
    });
    assert_eq!(drain(&rx), tags("one", 2));
    wait_idle(&stats);
    assert_eq!(
        stats.snapshot().files_failed,
        0,
        "an empty newest file waits"
    );
    assert_eq!(done_lines(&d.done), vec!["sip-0001.pcap".to_owned()]);
    w.stop();
}

#[test]
fn the_done_file_prevents_reading_again_after_a_restart() {
    let d = dirs();
    write_pcap(
        &d.captures.join("x1.pcap"),
        "x1",
        3,
        Duration::from_secs(30),
    );
    write_pcap(
        &d.captures.join("x2.pcap"),
        "x2",
        3,
        Duration::from_secs(20),
    );
    let (tx, rx) = input_queue(1024);
    let (w, stop) = start(&d.captures, Duration::ZERO, &d.done, tx);
    let stats = w.stats().clone();
    wait_for(&stats, "both files", Duration::from_secs(5), |s| {
        s.files_done == 2
    });
    stop.store(true, Ordering::Relaxed);
    w.join();
    assert_eq!(drain(&rx).len(), 6);
    assert_eq!(done_lines(&d.done), vec!["x1.pcap", "x2.pcap"]);

    // Restart with the same done file: nothing is read again, a new file is.
    write_pcap(
        &d.captures.join("x3.pcap"),
        "x3",
        1,
        Duration::from_secs(10),
    );
    let (tx, rx) = input_queue(1024);
    let (w, _stop) = start(&d.captures, Duration::ZERO, &d.done, tx);
    let stats = w.stats().clone();
    wait_for(&stats, "x3", Duration::from_secs(5), |s| s.files_done == 1);
    wait_idle(&stats);
    assert_eq!(drain(&rx), tags("x3", 1));
    let s = stats.snapshot();
    assert_eq!(
        (s.files_done, s.files_failed, s.packets),
        (1, 0, 1),
        "{s:?}"
    );
    assert_eq!(done_lines(&d.done), vec!["x1.pcap", "x2.pcap", "x3.pcap"]);
    w.stop();
}

#[test]
fn a_damaged_file_is_counted_marked_done_and_the_rest_is_read() {
    let d = dirs();
    // The done file inside the watched folder must not be read as a capture.
    let done = d.captures.join("processed.txt");
    write_pcap(
        &d.captures.join("g1.pcap"),
        "g1",
        2,
        Duration::from_secs(30),
    );
    let mut garbage = File::create(d.captures.join("g2.pcap")).unwrap();
    garbage
        .write_all(b"this is not a capture file at all, just text\n")
        .unwrap();
    drop(garbage);
    set_age(&d.captures.join("g2.pcap"), Duration::from_secs(20));
    // A real fixture cut in the middle of a record: read up to the cut.
    let fixture = std::fs::read("pcap-fixtures/answered_caller_bye.pcap").unwrap();
    let cut = fixture.get(..fixture.len() - 10).unwrap();
    std::fs::write(d.captures.join("g3.pcap"), cut).unwrap();
    set_age(&d.captures.join("g3.pcap"), Duration::from_secs(15));
    write_pcap(
        &d.captures.join("g4.pcap"),
        "g4",
        1,
        Duration::from_secs(10),
    );

    let (tx, rx) = input_queue(1024);
    let (w, _stop) = start(&d.captures, Duration::ZERO, &done, tx);
    let stats = w.stats().clone();
    wait_for(&stats, "all four files", Duration::from_secs(5), |s| {
        s.files_done + s.files_failed == 4
    });
    wait_idle(&stats);
    let s = stats.snapshot();
    assert_eq!(
        (s.files_done, s.files_failed, s.pending),
        (3, 1, 0),
        "{s:?}"
    );
    let mut frames = Vec::new();
    while let Some(Input::Frame { data, .. }) = rx.try_recv() {
        frames.push(data);
    }
    assert_eq!(frames.first().map(Vec::as_slice), Some(&b"g1-0"[..]));
    assert_eq!(frames.get(1).map(Vec::as_slice), Some(&b"g1-1"[..]));
    assert_eq!(frames.last().map(Vec::as_slice), Some(&b"g4-0"[..]));
    let fixture_packets = frames.len() - 3;
    assert!(fixture_packets > 0, "packets before the cut are read");
    assert_eq!(s.packets, frames.len() as u64);
    assert_eq!(
        done_lines(&done),
        vec!["g1.pcap", "g2.pcap", "g3.pcap", "g4.pcap"]
    );
    w.stop();

    // Not counted again after a restart.
    let (tx, rx) = input_queue(1024);
    let (w, _stop) = start(&d.captures, Duration::ZERO, &done, tx);
    wait_idle(w.stats());
    let s = w.stats().snapshot();
    assert_eq!(
        (s.files_done, s.files_failed, s.packets),
        (0, 0, 0),
        "{s:?}"
    );
    assert!(rx.try_recv().is_none());
    w.stop();
}

#[test]
fn a_full_queue_makes_the_reader_wait_instead_of_dropping() {
    let d = dirs();
    write_pcap(
        &d.captures.join("big.pcap"),
        "big",
        500,
        Duration::from_secs(10),
    );
    let (tx, rx) = input_queue(4);
    let (w, _stop) = start(&d.captures, Duration::ZERO, &d.done, tx);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 500 && Instant::now() < deadline {
        if let Some(Input::Frame { data, .. }) =
            rx.recv_timeout(Duration::from_millis(100)).unwrap()
        {
            got.push(String::from_utf8(data).unwrap());
            // A slow tracker.
            if got.len() % 100 == 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    assert_eq!(got, tags("big", 500));
    assert_eq!(rx.counters().dropped_full.load(Ordering::Relaxed), 0);
    wait_for(w.stats(), "big.pcap done", Duration::from_secs(5), |s| {
        s.files_done == 1
    });
    w.stop();
}

#[test]
fn an_unreadable_folder_is_an_error_at_start() {
    let d = dirs();
    let (tx, _rx) = input_queue(4);
    let missing = d.captures.join("nope");
    let err = FolderWatcher::start(
        missing.clone(),
        Duration::ZERO,
        d.done.clone(),
        tx,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap_err();
    assert_eq!(err.reason(), "folder_unreadable");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}
