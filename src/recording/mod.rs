//! The recorder: what happens to a call between the tracker and the sinks.
//!
//! The tracker thread hands the recorder its events as commands, in batches,
//! over a bounded queue ([`RecorderThread`]). On its own thread the recorder
//! writes the audio of answered calls to the spool ([`Recordings`]), keeps a
//! snapshot of every open call on disk ([`InflightJournal`]) and, once a call's
//! recording is finished or known absent, builds the call's one final
//! [`CallReport`](crate::report::CallReport) and hands it on to the sinks.
//! Nothing goes back to the tracker thread. With recording off the same thread
//! runs [`NoRecording`], which writes no audio.
//!
//! - `decode`: each leg's RTP payloads decoded (with `crate::codec`), losses
//!   concealed, brought to the call's rate (`resample`) and placed.
//! - `wav`: crash-safe stereo WAV files, the spool's format.
//! - `files`: where recordings live: the spool, the dated folders, and what a
//!   crash left in the spool.
//! - `inflight`: open calls on disk, and what a crash left turned into records.
//! - `thread`: the recorder thread, its queue and the one place a finished
//!   call's report is built.
//!
//! This is driver-side code: it does blocking file I/O, never inside the core.

mod compress;
mod decode;
mod files;
mod inflight;
mod resample;
mod thread;
pub mod wav;

#[cfg(test)]
mod tests;

use std::path::Path;

use crate::call::{CallHandle, CallRecord, Side};
use crate::report::{RecordingReport, RecordingStatus};

pub use files::{recording_path, safe_file_name, spool_path, Recordings};
pub use inflight::{InflightEntry, InflightJournal};
pub use thread::RecorderThread;

/// What the recorder thread does with a call's audio. It runs on that thread
/// only, so it may block on the disk.
pub trait Recorder: Send + 'static {
    /// Where finished recordings are filed (absolute); `None` when nothing
    /// is recorded, and then no audio is sent to the thread at all.
    fn recordings_dir(&self) -> Option<&Path>;
    fn started(&mut self, call: CallHandle, call_id: &str);
    /// Decoded audio that `leg` sent, placed `offset` samples after the answer.
    fn media(&mut self, call: CallHandle, leg: Side, offset: u64, rate: u32, samples: &[i16]);
    /// The call is over: finish its recording and say what became of it.
    fn ended(&mut self, call: CallHandle, rec: &CallRecord) -> RecordingReport;
}

/// Recording off: the same recorder thread, writing nothing.
#[derive(Debug, Default)]
pub struct NoRecording;

impl Recorder for NoRecording {
    fn recordings_dir(&self) -> Option<&Path> {
        None
    }

    fn started(&mut self, _: CallHandle, _: &str) {}

    fn media(&mut self, _: CallHandle, _: Side, _: u64, _: u32, _: &[i16]) {}

    fn ended(&mut self, _: CallHandle, _: &CallRecord) -> RecordingReport {
        RecordingReport::without_file(RecordingStatus::None, Some("recording is disabled".into()))
    }
}
