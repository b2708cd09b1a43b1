//! Recording on its own thread: decoded audio is interleaved and written to the
//! spool there, so slow storage (or just the page-cache copy of 32 KB/s per
//! call) never holds up the thread that reads packets.
//!
//! Commands travel in batches over a bounded channel: a full channel makes the
//! packet thread wait rather than lose audio.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;

use crate::call::{CallHandle, CallRecord, Side};
use crate::phone::Normalizer;
use crate::report::CallReport;

use super::{InflightJournal, Recordings};

/// Commands per batch: large enough to amortise the channel, small enough
/// that audio is on disk within a few milliseconds under load.
const BATCH: usize = 256;
/// Batches in flight; beyond this the packet thread waits.
const QUEUE: usize = 64;

pub(crate) enum Cmd {
    Started(CallHandle, String),
    Media {
        call: CallHandle,
        leg: Side,
        offset: u64,
        sample_rate: u32,
        samples: Vec<i16>,
    },
    Ended(CallHandle, Box<CallRecord>),
    /// Keep this open call's snapshot on disk (see `inflight`).
    Snapshot {
        journal: InflightJournal,
        record: Box<CallRecord>,
        spool: Option<std::path::PathBuf>,
    },
    /// Answered once everything sent before it is done.
    Sync(SyncSender<()>),
}

pub(crate) struct Writer {
    batch: Vec<Cmd>,
    tx: Option<SyncSender<Vec<Cmd>>>,
    reports: Receiver<CallReport>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn spawn(mut recordings: Recordings, numbers: Normalizer) -> std::io::Result<Writer> {
        let (tx, rx) = sync_channel::<Vec<Cmd>>(QUEUE);
        let (report_tx, reports) = std::sync::mpsc::channel::<CallReport>();
        let thread = std::thread::Builder::new()
            .name("pbxbridge-recorder".into())
            .spawn(move || {
                for batch in rx {
                    for cmd in batch {
                        match cmd {
                            Cmd::Started(call, call_id) => recordings.started(call, call_id),
                            Cmd::Media {
                                call,
                                leg,
                                offset,
                                sample_rate,
                                samples,
                            } => recordings.media(call, leg, offset, sample_rate, &samples),
                            Cmd::Ended(call, record) => {
                                let rec = recordings.ended(call, &record);
                                let report = CallReport::new(&record, &numbers, rec);
                                if report_tx.send(report).is_err() {
                                    return;
                                }
                            }
                            Cmd::Snapshot {
                                journal,
                                record,
                                spool,
                            } => {
                                if let Err(e) = journal.write(
                                    &record,
                                    &numbers,
                                    spool,
                                    Some(recordings.dir()),
                                ) {
                                    tracing::error!(call_id = %record.call_id, error = %e, "cannot save in-flight snapshot");
                                }
                            }
                            Cmd::Sync(done) => {
                                let _ = done.send(());
                            }
                        }
                    }
                }
            })?;
        Ok(Writer {
            batch: Vec::with_capacity(BATCH),
            tx: Some(tx),
            reports,
            thread: Some(thread),
        })
    }

    pub fn push(&mut self, cmd: Cmd) {
        // A call's end goes out at once so its record is not held back by a quiet line.
        let urgent = matches!(cmd, Cmd::Ended(..) | Cmd::Sync(_));
        self.batch.push(cmd);
        if urgent || self.batch.len() >= BATCH {
            self.flush();
        }
    }

    /// Sends what is batched.
    pub fn flush(&mut self) {
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

    /// Finished calls the recorder has dealt with so far.
    pub fn collect(&mut self, out: &mut Vec<CallReport>) {
        loop {
            match self.reports.try_recv() {
                Ok(r) => out.push(r),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    /// Waits until everything sent so far is written, then collects.
    pub fn sync(&mut self, out: &mut Vec<CallReport>) {
        let (done_tx, done_rx) = sync_channel(1);
        self.push(Cmd::Sync(done_tx));
        let _ = done_rx.recv();
        self.collect(out);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.flush();
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
