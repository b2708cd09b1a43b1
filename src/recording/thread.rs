//! The recorder thread: decoded audio is interleaved and written to the spool
//! here, so slow storage (or just the page-cache copy of 32 KB/s per call)
//! never holds up the thread that reads packets; and here, once a call's
//! recording is finished or known absent, its final report is built and
//! handed on to the sinks.
//!
//! Commands travel in batches over a bounded queue, and finished calls leave
//! over the sinks' bounded channel: when either is full the thread before it
//! waits rather than lose audio or a call.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::call::{CallHandle, CallRecord, Side};
use crate::phone::Normalizer;
use crate::report::CallReport;

use super::decode::{Decoding, Payload};
use super::{spool_path, InflightJournal, Recorder};
use crate::rtp::codec::{Format, MediaTime};

/// Commands per batch: large enough to amortise the channel, small enough
/// that audio is on disk within a few milliseconds under load.
const BATCH: usize = 256;
/// Batches in flight; beyond this the packet thread waits.
const QUEUE: usize = 64;
/// Finished calls handed on together at most, when a backlog lets them wait.
const HAND_ON: usize = 256;

enum Cmd {
    Started(CallHandle, Arc<str>),
    Media {
        call: CallHandle,
        leg: Side,
        at: MediaTime,
        format: Format,
        lost: u16,
        rate: u32,
        payload: Vec<u8>,
    },
    Ended(CallHandle, Box<CallRecord>),
    /// Keep this open call's snapshot on disk (see `inflight`).
    Snapshot(CallHandle, Box<CallRecord>),
    /// From now on, snapshots go to this journal.
    Journal(InflightJournal),
    /// Answered once everything sent before it is done and handed on.
    Sync(SyncSender<()>),
}

/// The tracker thread's handle on the recorder thread.
pub struct RecorderThread {
    batch: Vec<Cmd>,
    tx: Option<SyncSender<Vec<Cmd>>>,
    thread: Option<JoinHandle<()>>,
    /// Where the recorder files recordings; `None`: it writes no audio, so
    /// none is sent.
    dir: Option<PathBuf>,
}

impl RecorderThread {
    /// Starts `recorder` on its own thread; every finished call's report
    /// leaves through `reports`, in the order the calls ended.
    pub fn spawn<R: Recorder>(
        recorder: R,
        numbers: Normalizer,
        reports: crossbeam_channel::Sender<Vec<CallReport>>,
    ) -> std::io::Result<RecorderThread> {
        let dir = recorder.recordings_dir().map(Path::to_path_buf);
        let (tx, rx) = sync_channel::<Vec<Cmd>>(QUEUE);
        let worker = Worker {
            recorder,
            numbers,
            journal: None,
            reports,
            done: Vec::new(),
            decoding: Decoding::default(),
        };
        let thread = std::thread::Builder::new()
            .name("pbxbridge-recorder".into())
            .spawn(move || worker.run(rx))?;
        Ok(RecorderThread {
            batch: Vec::with_capacity(BATCH),
            tx: Some(tx),
            thread: Some(thread),
            dir,
        })
    }

    /// Where finished recordings are filed (absolute); `None` when recording is off.
    pub fn recordings_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The thread has stopped (the sinks are gone): what is sent now is lost.
    pub fn is_gone(&self) -> bool {
        self.tx.is_none()
    }

    pub fn started(&mut self, call: CallHandle, call_id: Arc<str>) {
        self.push(Cmd::Started(call, call_id));
    }

    /// One RTP payload `leg` sent, for the recorder to decode and place.
    #[allow(clippy::too_many_arguments)]
    pub fn media(
        &mut self,
        call: CallHandle,
        leg: Side,
        at: MediaTime,
        format: Format,
        lost: u16,
        rate: u32,
        payload: Vec<u8>,
    ) {
        if self.dir.is_some() {
            self.push(Cmd::Media {
                call,
                leg,
                at,
                format,
                lost,
                rate,
                payload,
            });
        }
    }

    pub fn ended(&mut self, call: CallHandle, record: Box<CallRecord>) {
        self.push(Cmd::Ended(call, record));
    }

    /// The file write happens on the recorder thread: a burst of new calls
    /// must not hold up the thread that reads packets.
    pub fn snapshot(&mut self, call: CallHandle, record: Box<CallRecord>) {
        self.push(Cmd::Snapshot(call, record));
    }

    pub fn set_journal(&mut self, journal: InflightJournal) {
        self.push(Cmd::Journal(journal));
    }

    /// Waits until everything sent so far is written and every finished
    /// call is handed on.
    pub fn sync(&mut self) {
        let (done_tx, done_rx) = sync_channel(1);
        self.push(Cmd::Sync(done_tx));
        let _ = done_rx.recv();
    }

    fn push(&mut self, cmd: Cmd) {
        // A call's end goes out at once so its record is not held back by a quiet line.
        let urgent = matches!(cmd, Cmd::Ended(..) | Cmd::Sync(_));
        self.batch.push(cmd);
        if urgent || self.batch.len() >= BATCH {
            self.flush();
        }
    }

    /// Sends what is batched.
    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        if let Some(tx) = &self.tx {
            if tx.send(batch).is_err() {
                tracing::error!("recorder thread is gone; recordings of open calls are lost");
                self.tx = None;
            }
        }
    }
}

impl Drop for RecorderThread {
    /// Waits until every recording is finished and every report handed on.
    fn drop(&mut self) {
        self.flush();
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The recorder thread's own state.
struct Worker<R> {
    recorder: R,
    numbers: Normalizer,
    journal: Option<InflightJournal>,
    reports: crossbeam_channel::Sender<Vec<CallReport>>,
    /// Finished calls of the batch at hand.
    done: Vec<CallReport>,
    decoding: Decoding,
}

impl<R: Recorder> Worker<R> {
    /// Until the tracker thread lets go, or the sinks do.
    fn run(mut self, rx: Receiver<Vec<Cmd>>) {
        while let Ok(batch) = rx.recv() {
            self.handle_batch(batch);
            // Batches already waiting are done first: their calls share the
            // hand-off (and the outbox's fsync behind it). Bounded, so a queue
            // that never empties does not hold a finished call back.
            for _ in 0..QUEUE {
                if self.done.len() >= HAND_ON {
                    break;
                }
                match rx.try_recv() {
                    Ok(batch) => self.handle_batch(batch),
                    Err(_) => break,
                }
            }
            if !self.hand_on() {
                return;
            }
        }
    }

    fn handle_batch(&mut self, batch: Vec<Cmd>) {
        for cmd in batch {
            self.handle(cmd);
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Started(call, call_id) => self.recorder.started(call, &call_id),
            Cmd::Media {
                call,
                leg,
                at,
                format,
                lost,
                rate,
                payload,
            } => {
                let recorder = &mut self.recorder;
                let p = Payload {
                    at,
                    format,
                    lost,
                    rate,
                    bytes: &payload,
                };
                self.decoding
                    .payload(call, leg, p, &mut |offset, rate, samples| {
                        recorder.media(call, leg, offset, rate, samples)
                    });
            }
            Cmd::Ended(call, mut record) => {
                let recorder = &mut self.recorder;
                let summary = self
                    .decoding
                    .ended(call, &mut |leg, offset, rate, samples| {
                        recorder.media(call, leg, offset, rate, samples)
                    });
                if record.unsupported_codec.is_none() {
                    record.unsupported_codec = summary.unsupported;
                }
                if let Some(first) = &summary.first_error {
                    tracing::warn!(
                        call_id = %record.call_id,
                        payloads = summary.errors,
                        first = %first,
                        "audio payloads could not be decoded; recorded as silence"
                    );
                }
                // The one place a finished call's report is built.
                let recording = self.recorder.ended(call, &record);
                self.done
                    .push(CallReport::new(&record, &self.numbers, recording));
            }
            Cmd::Snapshot(call, record) => self.save_snapshot(call, &record),
            Cmd::Journal(journal) => self.journal = Some(journal),
            Cmd::Sync(answer) => {
                self.hand_on();
                let _ = answer.send(());
            }
        }
    }

    /// Blocking is right here: a finished call must not be dropped, and the
    /// sinks only wait on their own disk. False once the sinks are gone.
    fn hand_on(&mut self) -> bool {
        if self.done.is_empty() {
            return true;
        }
        if self.reports.send(std::mem::take(&mut self.done)).is_err() {
            tracing::error!("the sinks are gone; finished calls can no longer be handed on");
            return false;
        }
        true
    }

    fn save_snapshot(&self, call: CallHandle, rec: &CallRecord) {
        let Some(journal) = &self.journal else {
            return;
        };
        let dir = self.recorder.recordings_dir();
        let spool = dir.map(|d| spool_path(d, call, &rec.call_id));
        if let Err(e) = journal.write(rec, &self.numbers, spool, dir) {
            tracing::error!(call_id = %rec.call_id, error = %e, "cannot save in-flight snapshot");
        }
    }
}
