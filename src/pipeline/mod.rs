//! The synchronous half of every driver: frames into the tracker, events out to
//! the recorder, finished calls out as reports. Replay and the live daemon share it.

mod inflight;
mod recordings;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

use crate::call::{CallHandle, CallRecord, EndReason, Event, Stats, Tracker, TrackerConfig};
use crate::config::Config;
use crate::phone::{parse_country, Normalizer};
use crate::report::{CallReport, RecordingReport, RecordingStatus};
use crate::time::Timestamp;
use crate::wire::LinkType;

pub use inflight::{InflightEntry, InflightJournal};
pub use recordings::{recording_path, safe_file_name, spool_path, Recordings};
use writer::{Cmd, Writer};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("config: {0}")]
    Config(String),
    #[error("cannot use recordings folder {path}: {source}")]
    Recordings {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub struct Pipeline {
    tracker: Tracker,
    /// The recorder thread; `None` when recording is off.
    writer: Option<Writer>,
    /// Where finished recordings go (absolute), when recording is on.
    recordings_dir: Option<PathBuf>,
    numbers: Normalizer,
    inflight: Option<InflightJournal>,
}

/// Builds the core's settings from the admin's config.
pub fn tracker_config(cfg: &Config, ext: regex::Regex) -> TrackerConfig {
    let t = &cfg.tracker;
    TrackerConfig {
        sip_ports: cfg.sip.ports.clone(),
        detect_any_port: cfg.sip.detect_any_port,
        extension_pattern: Some(ext),
        internal_networks: cfg.pbx.internal_networks.clone(),
        max_calls: t.max_calls,
        no_response: Duration::from_secs(t.no_response_secs),
        ring_timeout: Duration::from_secs(t.ring_timeout_secs),
        rtp_timeout: Duration::from_secs(t.rtp_timeout_secs),
        max_duration: Duration::from_secs(t.max_duration_secs),
        bye_timeout: Duration::from_secs(t.bye_timeout_secs),
        // HEP captured in a pcap arrives on the port our own listener would use.
        hep_ports: vec![cfg.hep.listen.port()],
        ..TrackerConfig::default()
    }
}

impl Pipeline {
    pub fn new(cfg: &Config) -> Result<Pipeline, PipelineError> {
        let ext = regex::Regex::new(&cfg.pbx.extension_pattern)
            .map_err(|e| PipelineError::Config(format!("pbx.extension_pattern: {e}")))?;
        let tracker = Tracker::new(tracker_config(cfg, ext.clone()));
        let country = parse_country(&cfg.pbx.default_country).ok_or_else(|| {
            PipelineError::Config(format!(
                "pbx.default_country: {:?} is not a country code",
                cfg.pbx.default_country
            ))
        })?;
        let numbers = Normalizer::new(country, ext);
        let (writer, recordings_dir) = if cfg.recording.enabled {
            let err = |source| PipelineError::Recordings {
                path: cfg.recording.dir.clone(),
                source,
            };
            let mut recordings = Recordings::open(&cfg.recording.dir).map_err(err)?;
            recordings.set_remote(crate::store::uploader::RemoteTarget::from_config(
                &cfg.storage,
            ));
            let dir = recordings.dir().to_path_buf();
            (
                Some(Writer::spawn(recordings, numbers.clone()).map_err(err)?),
                Some(dir),
            )
        } else {
            (None, None)
        };
        Ok(Pipeline {
            tracker,
            writer,
            recordings_dir,
            numbers,
            inflight: None,
        })
    }

    /// Keeps a snapshot of every open call on disk (the daemon, not replay).
    pub fn set_inflight(&mut self, journal: InflightJournal) {
        self.inflight = Some(journal);
    }

    pub fn tracker_mut(&mut self) -> &mut Tracker {
        &mut self.tracker
    }

    /// Runs the timers due by `now` when no packet has come to run them
    /// (a quiet line must still end calls whose RTP stopped).
    pub fn handle_timeout(&mut self, now: Timestamp, out: &mut Vec<CallReport>) {
        self.tracker.handle_timeout(now);
        self.drain(out);
    }

    pub fn stats(&self) -> &Stats {
        self.tracker.stats()
    }

    pub fn recordings_dir(&self) -> Option<&std::path::Path> {
        self.recordings_dir.as_deref()
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Feeds one frame; finished calls are appended to `out`.
    pub fn handle_frame(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        frame: &[u8],
        out: &mut Vec<CallReport>,
    ) {
        self.tracker.handle_frame(ts, link, frame);
        self.drain(out);
    }

    /// Feeds one HEP datagram (SIP or RTP mirrored by the PBX or a proxy).
    pub fn handle_hep(&mut self, ts: Timestamp, datagram: &[u8], out: &mut Vec<CallReport>) {
        self.tracker.handle_hep(ts, datagram);
        self.drain(out);
    }

    /// Ends every open call (capture over, or shutdown) and waits until every
    /// recording is finished and every report is in `out`.
    pub fn close_all(&mut self, now: Timestamp, reason: EndReason, out: &mut Vec<CallReport>) {
        self.tracker.close_all(now, reason);
        self.drain(out);
        if let Some(w) = &mut self.writer {
            w.sync(out);
        }
    }

    /// Turns the tracker's events into recorder commands and reports; it only
    /// consumes them; everything it needs travels in the event.
    fn drain(&mut self, out: &mut Vec<CallReport>) {
        while let Some(ev) = self.tracker.poll_event() {
            let cmd = match ev {
                Event::CallStarted {
                    call,
                    call_id,
                    snapshot,
                    ..
                } => {
                    tracing::debug!(call_id = %call_id, "call started");
                    self.save_snapshot(call, snapshot);
                    Cmd::Started(call, call_id.to_string())
                }
                Event::Media {
                    call,
                    leg,
                    offset,
                    sample_rate,
                    samples,
                    ..
                } => Cmd::Media {
                    call,
                    leg,
                    offset,
                    sample_rate,
                    samples,
                },
                Event::CallEnded { call, record, .. } => {
                    // The INFO line comes with the final record, once the recording is done.
                    tracing::debug!(
                        call_id = %record.call_id,
                        outcome = record.outcome.as_str(),
                        end_reason = record.end_reason.as_str(),
                        "call over; finishing its recording"
                    );
                    if self.writer.is_none() {
                        let none = RecordingReport::without_file(
                            RecordingStatus::None,
                            Some("recording is disabled".into()),
                        );
                        out.push(CallReport::new(&record, &self.numbers, none));
                        continue;
                    }
                    Cmd::Ended(call, record)
                }
                // The tracker reports each of these once per call.
                Event::CallRinging { call_id, .. } => {
                    tracing::info!(call_id = %call_id, "call ringing");
                    continue;
                }
                Event::CallAnswered {
                    call,
                    call_id,
                    snapshot,
                    ..
                } => {
                    tracing::info!(call_id = %call_id, "call answered");
                    self.save_snapshot(call, snapshot);
                    continue;
                }
                Event::CallUpdated {
                    call_id, update, ..
                } => {
                    tracing::debug!(call_id = %call_id, ?update, "call updated");
                    continue;
                }
            };
            if let Some(w) = &mut self.writer {
                w.push(cmd);
            }
        }
        if let Some(w) = &mut self.writer {
            w.collect(out);
        }
    }

    /// The file write happens on the recorder thread when there is one: a burst
    /// of new calls must not hold up the thread that reads packets.
    fn save_snapshot(&mut self, call: CallHandle, rec: Box<CallRecord>) {
        let Some(journal) = &self.inflight else {
            return;
        };
        let spool = self
            .recordings_dir
            .as_deref()
            .map(|d| spool_path(d, call, &rec.call_id));
        match &mut self.writer {
            Some(w) => w.push(Cmd::Snapshot {
                journal: journal.clone(),
                record: rec,
                spool,
            }),
            None => {
                if let Err(e) = journal.write(&rec, &self.numbers, spool, None) {
                    tracing::error!(call_id = %rec.call_id, error = %e, "cannot save in-flight snapshot");
                }
            }
        }
    }
}
