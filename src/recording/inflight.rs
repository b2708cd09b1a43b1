//! Calls in flight, kept on disk so that `kill -9` loses none of them.
//!
//! Each open call has one small JSON file, rewritten when it starts, rings and
//! is answered. The file goes away only once the call's final record is in the
//! outbox. Whatever a crash leaves here is turned into a record with
//! `end_reason = crash_recovered` at the next start, together with the WAV the
//! spool holds (playable up to its last flush).
//!
//! Writes are rename-atomic but not fsynced: a killed process leaves the page
//! cache intact, and an fsync per call event would cost more than it saves.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::call::{CallRecord, EndReason};
use crate::phone::Normalizer;
use crate::report::{CallReport, RecordingReport, RecordingStatus};
use crate::time::Timestamp;

use super::files::{recording_path, safe_file_name};
use super::wav::recover;

/// What the journal holds for one open call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InflightEntry {
    pub report: CallReport,
    /// Microseconds since the epoch, kept raw so no date parsing is needed at recovery.
    pub started_us: i64,
    pub answered_us: Option<i64>,
    pub last_us: i64,
    /// Where the recorder spools this call's audio, when recording is on.
    pub spool: Option<PathBuf>,
    pub recordings_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct InflightJournal {
    dir: PathBuf,
}

impl InflightJournal {
    pub fn open(dir: &Path) -> std::io::Result<InflightJournal> {
        std::fs::create_dir_all(dir)?;
        Ok(InflightJournal {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, call_id: &str) -> PathBuf {
        self.dir.join(format!("{}.json", safe_file_name(call_id)))
    }

    pub fn write(
        &self,
        rec: &CallRecord,
        numbers: &Normalizer,
        spool: Option<PathBuf>,
        recordings_dir: Option<&Path>,
    ) -> std::io::Result<()> {
        let entry = InflightEntry {
            report: CallReport::new(
                rec,
                numbers,
                RecordingReport::without_file(RecordingStatus::None, None),
            ),
            started_us: rec.started_at.micros(),
            answered_us: rec.answered_at.map(Timestamp::micros),
            last_us: rec.ended_at.micros(),
            spool,
            recordings_dir: recordings_dir.map(Path::to_path_buf),
        };
        let json = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        let path = self.path(&rec.call_id);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &path)
    }

    /// The call's final record is safe in the outbox: forget the snapshot.
    pub fn remove(&self, call_id: &str) {
        match std::fs::remove_file(self.path(call_id)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(call_id, error = %e, "cannot remove in-flight snapshot"),
        }
    }

    /// Turns what a crash left into final records. Calls whose record already
    /// reached the outbox (`done`) are only cleaned up, never written twice.
    /// The caller must put the returned reports in the outbox and then call
    /// [`InflightJournal::remove`] for each.
    ///
    /// `alive` is the last moment the stopped daemon was known to be running
    /// (its heartbeat): a call still up then lasted at least until it.
    pub fn recover(
        &self,
        done: &HashSet<String>,
        alive: Option<Timestamp>,
    ) -> std::io::Result<Vec<CallReport>> {
        let mut out = Vec::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        paths.sort();
        for path in paths {
            let ext = path.extension().and_then(|e| e.to_str());
            if ext == Some("tmp") {
                // A snapshot half-written when the process died; the previous one was kept.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if ext != Some("json") {
                continue;
            }
            let entry: InflightEntry = match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(e) => e,
                Err(error) => {
                    tracing::error!(path = %path.display(), %error, "unreadable in-flight snapshot; moved aside");
                    let _ = std::fs::rename(&path, path.with_extension("bad"));
                    continue;
                }
            };
            if done.contains(&entry.report.call_id) {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let report = finish_recovered(entry, alive);
            tracing::warn!(
                call_id = %report.call_id,
                outcome = %report.outcome,
                recording = %report.recording.status,
                "call was open when the daemon stopped unexpectedly; recorded as crash_recovered"
            );
            out.push(report);
        }
        Ok(out)
    }
}

fn finish_recovered(entry: InflightEntry, alive: Option<Timestamp>) -> CallReport {
    let mut report = entry.report;
    report.end_reason = EndReason::CrashRecovered;
    let mut ended = Timestamp::from_micros(entry.last_us);
    if let (Some(answered), Some(dir)) = (entry.answered_us, entry.recordings_dir.as_deref()) {
        let answered = Timestamp::from_micros(answered);
        let dest = recording_path(
            dir,
            Timestamp::from_micros(entry.started_us),
            &report.call_id,
        );
        let spooled = entry.spool.as_deref().filter(|p| p.exists());
        // The recorder may have moved the file out of the spool just before the crash.
        let source = spooled
            .map(Path::to_path_buf)
            .or_else(|| dest.exists().then(|| dest.clone()));
        report.recording = match source {
            Some(src) => recovered_recording(&report.call_id, &src, &dest, answered, &mut ended),
            None => RecordingReport::without_file(
                RecordingStatus::NoAudio,
                Some("no audio had been spooled when the daemon stopped".into()),
            ),
        };
    }
    // Ringing or answered, a call still up when the daemon was last known
    // alive lasted at least until then, as a call up at a clean stop lasts
    // until the stop.
    ended = ended.max(alive.unwrap_or(ended));
    if let Some(answered) = entry.answered_us.map(Timestamp::from_micros) {
        report.answered_at = Some(answered);
        report.duration = ended.micros_since(answered) as f64 / 1e6;
    }
    report.ended_at = ended;
    report
}

/// Makes the spooled WAV playable up to its last flush and files it; the call
/// ends where the audio ends.
fn recovered_recording(
    call_id: &str,
    src: &Path,
    dest: &Path,
    answered: Timestamp,
    ended: &mut Timestamp,
) -> RecordingReport {
    let info = match recover(src) {
        Ok(info) => info,
        Err(e) => {
            tracing::error!(call_id, error = %e, "cannot repair the spooled recording");
            return RecordingReport::without_file(RecordingStatus::Failed, Some(e.to_string()));
        }
    };
    if src != dest {
        let moved = dest
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::rename(src, dest));
        if let Err(e) = moved {
            tracing::error!(call_id, error = %e, "cannot move the recovered recording");
            return RecordingReport::without_file(RecordingStatus::Failed, Some(e.to_string()));
        }
    }
    let rate = i64::from(info.sample_rate.max(1));
    let talk_us = i64::try_from(info.frames)
        .unwrap_or(i64::MAX / 1_000_000)
        .saturating_mul(1_000_000)
        / rate;
    *ended = answered.saturating_add_micros(talk_us);
    RecordingReport {
        status: RecordingStatus::Stored,
        path: Some(dest.display().to_string()),
        backend: None,
        key: None,
        sha256: None,
        codec: None,
        sample_rate: Some(info.sample_rate),
        channels: Some(info.channels),
        samples: Some(info.frames),
        bytes: Some(info.bytes),
        detail: Some(
            "recovered after the daemon stopped unexpectedly; audio up to the last flush".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Outcome;
    use crate::recording::tests::{numbers, record};
    use crate::recording::wav::{Channel, StereoRecorder};

    #[test]
    fn a_crash_leaves_records_with_the_audio_up_to_the_last_flush() {
        let tmp = tempfile::tempdir().unwrap();
        let rec_dir = tmp.path().join("rec");
        let spool = rec_dir.join(".spool").join("7-up@pbx.wav");
        std::fs::create_dir_all(spool.parent().unwrap()).unwrap();
        let journal = InflightJournal::open(&tmp.path().join("inflight")).unwrap();
        journal
            .write(
                &record("up@pbx", true),
                &numbers(),
                Some(spool.clone()),
                Some(&rec_dir),
            )
            .unwrap();
        journal
            .write(
                &record("ringing@pbx", false),
                &numbers(),
                None,
                Some(&rec_dir),
            )
            .unwrap();
        journal
            .write(&record("done@pbx", false), &numbers(), None, Some(&rec_dir))
            .unwrap();
        // 2.5 s of audio flushed, then the process "dies" without finishing the file.
        let mut r = StereoRecorder::create(&spool, 8000).unwrap();
        r.write(Channel::Left, 0, &[1000; 20_000]);
        r.write(Channel::Right, 0, &[-1000; 20_000]);
        r.commit(20_000).unwrap();
        std::mem::forget(r);

        let done: HashSet<String> = ["done@pbx".to_string()].into();
        let mut out = journal.recover(&done, None).unwrap();
        out.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        assert_eq!(
            out.len(),
            2,
            "the call already in the outbox is not written twice"
        );
        let (ringing, up) = (&out[0], &out[1]);
        assert_eq!(up.end_reason, EndReason::CrashRecovered);
        assert_eq!(up.outcome, Outcome::Answered);
        assert_eq!(up.from_number.as_deref(), Some("+12125550100"));
        assert_eq!(up.recording.status, RecordingStatus::Stored);
        assert!((up.duration - 2.5).abs() < 1e-6, "{}", up.duration);
        assert_eq!(up.ended_at, Timestamp::from_micros(1_800_000_006_500_000));
        let path = up.recording.path.as_deref().unwrap();
        assert_eq!(
            Path::new(path),
            recording_path(&rec_dir, Timestamp::from_secs(1_800_000_000), "up@pbx")
        );
        let wav = hound::WavReader::open(path).unwrap();
        assert_eq!(wav.duration(), 20_000);
        assert!(!spool.exists());
        assert_eq!(ringing.end_reason, EndReason::CrashRecovered);
        assert_eq!(ringing.outcome, Outcome::NoAnswer);
        assert_eq!(ringing.recording.status, RecordingStatus::None);
        assert_eq!(ringing.duration, 0.0);

        // The caller removes what it has put in the outbox; nothing is recovered twice.
        for r in &out {
            journal.remove(&r.call_id);
        }
        journal.remove("done@pbx");
        assert!(journal.recover(&HashSet::new(), None).unwrap().is_empty());
    }

    #[test]
    fn an_answered_call_lasts_until_the_daemon_was_last_alive() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = InflightJournal::open(tmp.path()).unwrap();
        journal
            .write(&record("quiet@pbx", true), &numbers(), None, None)
            .unwrap();
        let alive = Timestamp::from_secs(1_800_000_034);
        let out = journal.recover(&HashSet::new(), Some(alive)).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].duration, 30.0);
        assert_eq!(out[0].ended_at, alive);
    }

    #[test]
    fn a_ringing_call_also_ends_when_the_daemon_was_last_alive() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = InflightJournal::open(tmp.path()).unwrap();
        journal
            .write(&record("ringing@pbx", false), &numbers(), None, None)
            .unwrap();
        let alive = Timestamp::from_secs(1_800_000_034);
        let out = journal.recover(&HashSet::new(), Some(alive)).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome, Outcome::NoAnswer);
        assert_eq!(out[0].ended_at, alive);
        assert_eq!(out[0].duration, 0.0);
        // A heartbeat older than the snapshot never moves the end back.
        let journal = InflightJournal::open(&tmp.path().join("again")).unwrap();
        journal
            .write(&record("ringing@pbx", false), &numbers(), None, None)
            .unwrap();
        let stale = Timestamp::from_secs(1_800_000_001);
        let out = journal.recover(&HashSet::new(), Some(stale)).unwrap();
        assert_eq!(out[0].ended_at, Timestamp::from_secs(1_800_000_005));
    }

    #[test]
    fn a_damaged_snapshot_is_set_aside_not_fatal() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = InflightJournal::open(tmp.path()).unwrap();
        std::fs::write(tmp.path().join("x.json"), b"{not json").unwrap();
        std::fs::write(tmp.path().join("y.json.tmp"), b"half").unwrap();
        assert!(journal.recover(&HashSet::new(), None).unwrap().is_empty());
        assert!(tmp.path().join("x.bad").exists());
        assert!(!tmp.path().join("y.json.tmp").exists());
    }
}
