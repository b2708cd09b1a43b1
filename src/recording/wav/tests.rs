use std::path::Path;

use super::*;

const RATE: u32 = 8000;

fn read_all(path: &Path) -> (hound::WavSpec, Vec<(i16, i16)>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let s: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
    assert_eq!(s.len() % 2, 0);
    (spec, s.chunks(2).map(|f| (f[0], f[1])).collect())
}

/// A recognisable, never-zero sample for channel `ch` at frame `i`.
fn tone(ch: i16, i: u64) -> i16 {
    ch * 1000 + (i % 500) as i16 + 1
}

fn packet(ch: i16, offset: u64) -> Vec<i16> {
    (offset..offset + 160).map(|i| tone(ch, i)).collect()
}

#[test]
fn interleaves_channels_at_offsets_with_silent_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.wav");
    let mut rec = StereoRecorder::create(&path, RATE).unwrap();
    // Right arrives first and out of step; left has a gap at 320..480.
    rec.write(Channel::Right, 160, &packet(2, 160));
    rec.write(Channel::Left, 0, &packet(1, 0));
    rec.write(Channel::Left, 160, &packet(1, 160));
    rec.write(Channel::Left, 480, &packet(1, 480));
    rec.write(Channel::Right, 0, &packet(2, 0));
    rec.commit(400).unwrap();
    rec.write(Channel::Right, 320, &packet(2, 320));
    let info = rec.finish(1000).unwrap();
    assert_eq!(info.frames, 1000);
    assert_eq!(info.channels, 2);
    assert_eq!(info.sample_rate, RATE);
    assert_eq!(info.bytes, 44 + 4000);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), info.bytes);

    let (spec, frames) = read_all(&path);
    assert_eq!(spec.channels, 2);
    assert_eq!(spec.bits_per_sample, 16);
    assert_eq!(frames.len(), 1000);
    for (i, &(l, r)) in frames.iter().enumerate() {
        let i = i as u64;
        let want_l = if i < 320 || (480..640).contains(&i) {
            tone(1, i)
        } else {
            0
        };
        // 320..400 was committed before the right channel's third packet came:
        // those samples were late, the rest of it lands.
        let want_r = if i < 320 || (400..480).contains(&i) {
            tone(2, i)
        } else {
            0
        };
        assert_eq!((l, r), (want_l, want_r), "frame {i}");
    }
}

#[test]
fn late_samples_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.wav");
    let mut rec = StereoRecorder::create(&path, RATE).unwrap();
    rec.write(Channel::Left, 0, &packet(1, 0));
    rec.commit(160).unwrap();
    rec.write(Channel::Left, 100, &packet(1, 100));
    assert_eq!(rec.stats().late_samples, 60);
    let info = rec.finish(260).unwrap();
    assert_eq!(info.frames, 260);
    let (_, frames) = read_all(&path);
    assert!(frames
        .iter()
        .enumerate()
        .all(|(i, f)| f.0 == tone(1, i as u64)));
}

#[test]
fn one_way_audio_stays_bounded_and_right_is_silent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oneway.wav");
    let mut rec = StereoRecorder::create(&path, RATE).unwrap();
    let secs = 30u64;
    let mut peak = 0;
    for p in 0..(secs * u64::from(RATE) / 160) {
        rec.write(Channel::Left, p * 160, &packet(1, p * 160));
        peak = peak.max(rec.pending_samples());
    }
    // Never more than the 2 s ahead limit in memory, without the caller committing.
    assert!(peak <= 2 * RATE as usize, "peak pending {peak}");
    assert!(rec.committed() >= (secs - 2) * u64::from(RATE));
    assert!(rec.stats().auto_commits > 0);
    let info = rec.finish(secs * u64::from(RATE)).unwrap();
    let (_, frames) = read_all(&path);
    assert_eq!(frames.len() as u64, info.frames);
    for (i, &(l, r)) in frames.iter().enumerate() {
        assert_eq!((l, r), (tone(1, i as u64), 0), "frame {i}");
    }
}

#[test]
fn huge_offsets_and_writes_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jump.wav");
    let cfg = RecorderConfig {
        max_frames: 10 * u64::from(RATE),
        ..RecorderConfig::default()
    };
    let mut rec = StereoRecorder::create_with(&path, RATE, cfg).unwrap();
    // One 5 s slab in a single call.
    let slab: Vec<i16> = (0..5 * u64::from(RATE)).map(|i| tone(1, i)).collect();
    rec.write(Channel::Left, 0, &slab);
    assert!(rec.pending_samples() <= 2 * RATE as usize);
    // Far beyond the length cap: dropped, counted, no memory used.
    rec.write(Channel::Right, u64::MAX - 10, &[1; 100]);
    rec.write(Channel::Right, 1 << 40, &packet(2, 0));
    assert_eq!(rec.stats().overflow_samples, 100 + 160);
    assert!(rec.pending_samples() <= 2 * RATE as usize);
    let info = rec.finish(u64::MAX).unwrap();
    assert_eq!(info.frames, 10 * u64::from(RATE));
    let (_, frames) = read_all(&path);
    assert_eq!(frames.len(), 80_000);
    assert!(frames[..40_000]
        .iter()
        .enumerate()
        .all(|(i, f)| *f == (tone(1, i as u64), 0)));
    assert!(frames[40_000..].iter().all(|f| *f == (0, 0)));
}

#[test]
fn finish_truncates_to_total() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trunc.wav");
    let mut rec = StereoRecorder::create(&path, RATE).unwrap();
    for p in 0..10 {
        rec.write(Channel::Left, p * 160, &packet(1, p * 160));
        rec.write(Channel::Right, p * 160, &packet(2, p * 160));
    }
    rec.commit(1600).unwrap();
    let info = rec.finish(1000).unwrap();
    assert_eq!(info.frames, 1000);
    assert_eq!(info.bytes, 44 + 4000);
    let (_, frames) = read_all(&path);
    assert_eq!(frames.len(), 1000);
    assert_eq!(frames[999], (tone(1, 999), tone(2, 999)));
}

#[test]
fn header_valid_mid_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.wav");
    let mut rec = StereoRecorder::create(&path, RATE).unwrap();
    // Readable before any audio.
    let (_, frames) = read_all(&path);
    assert!(frames.is_empty());
    for p in 0..75u64 {
        rec.write(Channel::Left, p * 160, &packet(1, p * 160));
        rec.write(Channel::Right, p * 160, &packet(2, p * 160));
        rec.commit(p * 160 + 160).unwrap();
    }
    // 1.5 s committed: the header was rewritten at the 1 s mark.
    assert_eq!(rec.stats().header_flushes, 1);
    let (spec, frames) = read_all(&path);
    assert_eq!((spec.channels, spec.sample_rate), (2, RATE));
    assert!(
        frames.len() >= RATE as usize,
        "{} frames readable",
        frames.len()
    );
    for (i, &f) in frames.iter().enumerate() {
        assert_eq!(f, (tone(1, i as u64), tone(2, i as u64)), "frame {i}");
    }
    let info = rec.finish(75 * 160).unwrap();
    assert_eq!(info.frames, 12_000);
}

/// A recorder that writes straight through (tiny buffer) but seldom rewrites
/// the header: after a crash the file has more audio than its header says.
fn crashy(path: &Path) -> StereoRecorder {
    let cfg = RecorderConfig {
        flush_every_frames: 8000,
        buffer_bytes: 4096,
        ..RecorderConfig::default()
    };
    let mut rec = StereoRecorder::create_with(path, RATE, cfg).unwrap();
    for p in 0..90u64 {
        rec.write(Channel::Left, p * 160, &packet(1, p * 160));
        rec.write(Channel::Right, p * 160, &packet(2, p * 160));
        rec.commit(p * 160 + 160).unwrap();
    }
    rec
}

fn check_recovered(path: &Path, info: &RecordingInfo) {
    assert!(info.frames > 8000, "recovered only {} frames", info.frames);
    assert_eq!(info.bytes, 44 + info.frames * 4);
    assert_eq!(std::fs::metadata(path).unwrap().len(), info.bytes);
    let (_, frames) = read_all(path);
    assert_eq!(frames.len() as u64, info.frames);
    for (i, &f) in frames.iter().enumerate() {
        assert_eq!(f, (tone(1, i as u64), tone(2, i as u64)), "frame {i}");
    }
}

#[test]
fn recover_copy_taken_mid_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.wav");
    let rec = crashy(&path);
    let copy = dir.path().join("copy.wav");
    std::fs::copy(&path, &copy).unwrap();
    // Header still says 1 s; more is on disk.
    assert_eq!(hound::WavReader::open(&copy).unwrap().duration(), 8000);
    assert!(std::fs::metadata(&copy).unwrap().len() > 44 + 8000 * 4);
    let info = recover(&copy).unwrap();
    check_recovered(&copy, &info);
    assert_eq!(info.channels, 2);
    assert_eq!(info.sample_rate, RATE);
    // Idempotent.
    assert_eq!(recover(&copy).unwrap(), info);
    drop(rec);
}

#[test]
fn recover_after_crash_without_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.wav");
    let rec = crashy(&path);
    // A crash runs no destructors: whatever sat in the write buffer is lost.
    std::mem::forget(rec);
    let info = recover(&path).unwrap();
    check_recovered(&path, &info);
}

#[test]
fn recover_torn_file_with_zero_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torn.wav");
    {
        let mut rec = StereoRecorder::create(&path, RATE).unwrap();
        rec.write(Channel::Left, 0, &packet(1, 0));
        rec.write(Channel::Right, 0, &packet(2, 0));
        rec.finish(160).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4..8].copy_from_slice(&[0; 4]);
    bytes[40..44].copy_from_slice(&[0; 4]);
    bytes.extend_from_slice(&[7, 7, 7]); // a torn last frame
    std::fs::write(&path, &bytes).unwrap();
    let info = recover(&path).unwrap();
    assert_eq!(info.frames, 160);
    let (_, frames) = read_all(&path);
    assert_eq!(frames[159], (tone(1, 159), tone(2, 159)));

    let junk = dir.path().join("junk.wav");
    std::fs::write(&junk, b"not a wave file at all").unwrap();
    assert_eq!(recover(&junk).unwrap_err().reason(), "record_not_wav");
    let missing = dir.path().join("missing.wav");
    assert_eq!(recover(&missing).unwrap_err().reason(), "record_write");
}

#[test]
fn create_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/x.wav");
    let e = StereoRecorder::create(&path, RATE).err().unwrap();
    assert_eq!(e.reason(), "record_create");
    assert!(e.to_string().contains("no/such/dir/x.wav"));
}

#[test]
fn dropped_recorder_leaves_committed_audio_with_valid_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropped.wav");
    {
        let mut rec = StereoRecorder::create(&path, RATE).unwrap();
        rec.write(Channel::Left, 0, &packet(1, 0));
        rec.write(Channel::Right, 0, &packet(2, 0));
        rec.commit(160).unwrap();
        // Not committed: stays out of the file.
        rec.write(Channel::Left, 160, &packet(1, 160));
    }
    let (_, frames) = read_all(&path);
    assert_eq!(frames.len(), 160);
    assert_eq!(frames[10], (tone(1, 10), tone(2, 10)));
}
