//! WAV files of answered calls: a spool file while the call is up, moved into
//! `{dir}/{yyyy}/{mm}/{dd}/{call id}.wav` when it ends.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::call::{CallHandle, CallRecord, Side};
use crate::report::{RecordingReport, RecordingStatus};
use crate::store::uploader::RemoteTarget;
use crate::time::Timestamp;

use super::wav::{recover, Channel, RecorderConfig, StereoRecorder};
use super::Recorder;

const SPOOL: &str = ".spool";
/// Spool files a crash left behind, made playable, wait here for an operator
/// (their call records were never written, so they have no place of their own).
const RECOVERED: &str = "recovered";

/// Thousands of calls record at once, so each recorder stays small: 1 s of
/// skew between the two legs is far more than RTP ever shows, and 16 KiB per
/// write is half a second of stereo audio.
fn recorder_config() -> RecorderConfig {
    RecorderConfig {
        max_ahead_secs: 1,
        buffer_bytes: 16 * 1024,
        ..RecorderConfig::default()
    }
}

struct Active {
    call_id: String,
    recorder: Option<StereoRecorder>,
    spool_path: PathBuf,
    sample_rate: u32,
    failed: Option<String>,
}

pub struct Recordings {
    dir: PathBuf,
    active: HashMap<CallHandle, Active>,
    /// Where finished files go next; `None`: they stay here for good.
    remote: Option<RemoteTarget>,
    /// Ogg/Opus bitrate when finished recordings are kept as Ogg/Opus.
    opus: Option<u32>,
}

impl Recordings {
    pub fn open(dir: &Path) -> std::io::Result<Recordings> {
        let spool = dir.join(SPOOL);
        std::fs::create_dir_all(&spool)?;
        let dir = std::fs::canonicalize(dir)?;
        let spool = dir.join(SPOOL);
        recover_spool(&spool, &dir.join(RECOVERED))?;
        Ok(Recordings {
            dir,
            active: HashMap::new(),
            remote: None,
            opus: None,
        })
    }

    /// Finished recordings are kept as Ogg/Opus at `bitrate` (`None`: WAV).
    pub fn set_opus(&mut self, bitrate: Option<u32>) {
        self.opus = bitrate;
    }

    /// Finished files wait in `dir` for the uploader; their reports say
    /// `pending` with the key they will have.
    pub fn set_remote(&mut self, remote: Option<RemoteTarget>) {
        self.remote = remote;
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Recorder for Recordings {
    fn recordings_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn started(&mut self, call: CallHandle, call_id: &str) {
        let spool_path = spool_path(&self.dir, call, call_id);
        self.active.insert(
            call,
            Active {
                call_id: call_id.to_owned(),
                recorder: None,
                spool_path,
                sample_rate: 8000,
                failed: None,
            },
        );
    }

    fn media(&mut self, call: CallHandle, leg: Side, offset: u64, rate: u32, samples: &[i16]) {
        let Some(a) = self.active.get_mut(&call) else {
            return;
        };
        if a.failed.is_some() {
            return;
        }
        if a.recorder.is_none() {
            match StereoRecorder::create_with(&a.spool_path, rate, recorder_config()) {
                Ok(r) => {
                    a.recorder = Some(r);
                    a.sample_rate = rate;
                }
                Err(e) => {
                    tracing::error!(call_id = %a.call_id, error = %e, "cannot create recording");
                    a.failed = Some(e.to_string());
                    return;
                }
            }
        }
        if let Some(r) = &mut a.recorder {
            let ch = match leg {
                Side::Caller => Channel::Left,
                Side::Callee => Channel::Right,
            };
            r.write(ch, offset, samples);
        }
    }

    fn ended(&mut self, call: CallHandle, rec: &CallRecord) -> RecordingReport {
        let active = self.active.remove(&call);
        let Some(answered) = rec.answered_at else {
            if let Some(Active {
                recorder: Some(r),
                spool_path,
                ..
            }) = active
            {
                drop(r);
                let _ = std::fs::remove_file(spool_path);
            }
            return RecordingReport::without_file(RecordingStatus::None, None);
        };
        let Some(a) = active else {
            return RecordingReport::without_file(RecordingStatus::None, None);
        };
        if let Some(err) = a.failed {
            return RecordingReport::without_file(RecordingStatus::Failed, Some(err));
        }
        let Some(recorder) = a.recorder else {
            if rec.encrypted_media {
                return RecordingReport::without_file(
                    RecordingStatus::Encrypted,
                    Some("the audio is SRTP-encrypted (RTP/SAVP); it is not recorded".into()),
                );
            }
            return match &rec.unsupported_codec {
                Some(codec) => RecordingReport::without_file(
                    RecordingStatus::UnsupportedCodec,
                    Some(format!(
                        "audio codec {codec} is not supported for recording"
                    )),
                ),
                None => RecordingReport::without_file(
                    RecordingStatus::NoAudio,
                    Some("no RTP audio was seen for this call".into()),
                ),
            };
        };
        let talk_us = rec.ended_at.micros_since(answered);
        let frames = (talk_us as i128 * i128::from(a.sample_rate) + 500_000) / 1_000_000;
        let frames = u64::try_from(frames).unwrap_or(0);
        let info = match recorder.finish(frames) {
            Ok(info) => info,
            Err(e) => {
                tracing::error!(call_id = %rec.call_id, error = %e, "cannot finish recording");
                return RecordingReport::without_file(RecordingStatus::Failed, Some(e.to_string()));
            }
        };
        let dest = recording_path(&self.dir, rec.started_at, &rec.call_id);
        let moved = dest
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::rename(&a.spool_path, &dest));
        if let Err(e) = moved {
            tracing::error!(call_id = %rec.call_id, error = %e, path = %dest.display(), "cannot move recording out of the spool");
            return RecordingReport::without_file(RecordingStatus::Failed, Some(e.to_string()));
        }
        let (dest, bytes) = match self.opus {
            // Any u32 names the Ogg stream; the call's handle is unique enough.
            Some(bitrate) => match super::compress::to_ogg_opus(&dest, bitrate, call.0 as u32) {
                Ok(done) => done,
                Err(e) => {
                    tracing::warn!(call_id = %rec.call_id, error = %e, "recording kept as WAV");
                    (dest, info.bytes)
                }
            },
            None => (dest, info.bytes),
        };
        let mut report = RecordingReport {
            status: RecordingStatus::Stored,
            path: Some(dest.display().to_string()),
            backend: None,
            key: None,
            sha256: None,
            codec: rec.codec.map(str::to_string),
            sample_rate: Some(info.sample_rate),
            channels: Some(info.channels),
            samples: Some(info.frames),
            bytes: Some(bytes),
            detail: rec
                .unsupported_codec
                .as_ref()
                .map(|c| format!("part of the audio used unsupported codec {c}")),
        };
        if let Some(remote) = &self.remote {
            remote.mark_pending(&mut report, &self.dir);
        }
        report
    }
}

/// Finalises what a previous run left in the spool and moves it aside, so a
/// new call can never reuse (and truncate) its name.
fn recover_spool(spool: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(spool)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "wav") {
            continue;
        }
        match recover(&path) {
            Ok(info) => tracing::warn!(
                path = %path.display(),
                frames = info.frames,
                "recording left by an earlier run was made playable and moved to {}",
                to.display()
            ),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "recording left by an earlier run could not be repaired; moved as it is")
            }
        }
        std::fs::create_dir_all(to)?;
        if let Some(name) = path.file_name() {
            std::fs::rename(&path, to.join(name))?;
        }
    }
    Ok(())
}

/// Where an open call's audio is written until it ends.
pub fn spool_path(dir: &Path, call: CallHandle, call_id: &str) -> PathBuf {
    dir.join(SPOOL)
        .join(format!("{}-{}.wav", call.0, safe_file_name(call_id)))
}

/// `{dir}/{yyyy}/{mm}/{dd}/{call id}.wav`, dated by the call's start (UTC).
pub fn recording_path(dir: &Path, started_at: Timestamp, call_id: &str) -> PathBuf {
    let date = started_at.to_rfc3339();
    let (y, m, d) = (
        date.get(0..4).unwrap_or("0000"),
        date.get(5..7).unwrap_or("00"),
        date.get(8..10).unwrap_or("00"),
    );
    dir.join(y)
        .join(m)
        .join(d)
        .join(format!("{}.wav", safe_file_name(call_id)))
}

/// Call-IDs are chosen by remote parties: keep them readable but never let one
/// escape the folder or collide with another after cleaning.
pub fn safe_file_name(call_id: &str) -> String {
    let mut out: String = call_id
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('.') || out.is_empty() {
        out.insert(0, '_');
    }
    if out != call_id {
        let mut h = DefaultHasher::new();
        call_id.hash(&mut h);
        out.push_str(&format!("-{:08x}", h.finish() as u32));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_spool_files_are_repaired_and_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join(SPOOL);
        std::fs::create_dir_all(&spool).unwrap();
        // A recorder that was never finished, as a killed process leaves it.
        let mut r = StereoRecorder::create(&spool.join("1-abc.wav"), 8000).unwrap();
        r.write(Channel::Left, 0, &[100; 8000]);
        r.write(Channel::Right, 0, &[-100; 8000]);
        r.commit(8000).unwrap();
        std::mem::forget(r);
        let rec = Recordings::open(dir.path()).unwrap();
        assert!(!spool.join("1-abc.wav").exists());
        let moved = rec.dir().join(RECOVERED).join("1-abc.wav");
        let wav = hound::WavReader::open(&moved).unwrap();
        assert_eq!(wav.duration(), 8000);
        assert_eq!(wav.spec().channels, 2);
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(safe_file_name("abc@10.0.0.1"), "abc@10.0.0.1");
        let a = safe_file_name("../../etc/passwd");
        assert!(!a.contains('/') && !a.starts_with('.'));
        assert_ne!(safe_file_name("a/b"), safe_file_name("a:b"));
        let p = recording_path(Path::new("/r"), Timestamp::from_secs(1_700_000_000), "x");
        assert_eq!(p, Path::new("/r/2023/11/14/x.wav"));
    }
}
