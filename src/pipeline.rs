//! What drives the tracker, shared by replay and the live daemon: frames in,
//! the tracker's events out to the recorder thread, which builds the finished
//! calls' reports and hands them on to the sinks. Nothing comes back here.

use std::path::PathBuf;
use std::time::Duration;

use crate::call::{CallRecord, EndReason, Event, Stats, Tracker, TrackerConfig, Update};
use crate::config::Config;
use crate::events::model::{
    side_name, AnsweredData, CallParties, HoldData, HungupData, TransferData,
};
use crate::events::{Emitter, EventType};
use crate::phone::{parse_country, Normalizer};
use crate::recording::{InflightJournal, NoRecording, RecorderThread, Recordings};
use crate::report::CallReport;
use crate::time::Timestamp;
use crate::wire::LinkType;

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
    /// Writes nothing when recording is off, but still builds the reports.
    recorder: RecorderThread,
    /// Whether open calls are kept on disk (the daemon, not replay).
    inflight: bool,
    /// Where live events go (the daemon), with the numbers they carry.
    events: Option<(Emitter, Normalizer)>,
    numbers: Normalizer,
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
    /// Every finished call's report leaves through `reports`, sent from the
    /// recorder thread once its recording is finished or known absent; when
    /// that channel is full the recorder, and then this thread, wait.
    pub fn new(
        cfg: &Config,
        reports: crossbeam_channel::Sender<Vec<CallReport>>,
    ) -> Result<Pipeline, PipelineError> {
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
        let numbers_kept = numbers.clone();
        let err = |source| PipelineError::Recordings {
            path: cfg.recording.dir.clone(),
            source,
        };
        let recorder = if cfg.recording.enabled {
            let mut recordings = Recordings::open(&cfg.recording.dir).map_err(err)?;
            recordings.set_remote(crate::store::uploader::RemoteTarget::from_config(
                &cfg.storage,
            ));
            if cfg.recording.format == crate::config::RecordingFormat::Opus {
                recordings.set_opus(Some(cfg.recording.opus_bitrate));
            }
            RecorderThread::spawn(recordings, numbers, reports)
        } else {
            RecorderThread::spawn(NoRecording, numbers, reports)
        }
        .map_err(err)?;
        Ok(Pipeline {
            tracker,
            recorder,
            inflight: false,
            events: None,
            numbers: numbers_kept,
        })
    }

    /// Keeps a snapshot of every open call on disk (the daemon, not replay).
    pub fn set_inflight(&mut self, journal: InflightJournal) {
        self.recorder.set_journal(journal);
        self.inflight = true;
    }

    /// Reports each call's ringing, answer, holds and hangup as events.
    pub fn set_events(&mut self, emitter: Emitter) {
        self.events = Some((emitter, self.numbers.clone()));
    }

    pub fn tracker_mut(&mut self) -> &mut Tracker {
        &mut self.tracker
    }

    /// Runs the timers due by `now` when no packet has come to run them
    /// (a quiet line must still end calls whose RTP stopped).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.tracker.handle_timeout(now);
        self.drain();
    }

    pub fn stats(&self) -> &Stats {
        self.tracker.stats()
    }

    /// Where finished recordings are filed (absolute); `None` when recording is off.
    pub fn recordings_dir(&self) -> Option<&std::path::Path> {
        self.recorder.recordings_dir()
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// The recorder thread has stopped because the sinks are gone: calls
    /// that end now are lost, so a driver should stop feeding.
    pub fn is_stalled(&self) -> bool {
        self.recorder.is_gone()
    }

    /// Feeds one frame.
    pub fn handle_frame(&mut self, ts: Timestamp, link: LinkType, frame: &[u8]) {
        self.tracker.handle_frame(ts, link, frame);
        self.drain();
    }

    /// Feeds one HEP datagram (SIP or RTP mirrored by the PBX or a proxy).
    pub fn handle_hep(&mut self, ts: Timestamp, datagram: &[u8]) {
        self.tracker.handle_hep(ts, datagram);
        self.drain();
    }

    /// Ends every open call (capture over, or shutdown) and waits until every
    /// recording is finished and every report handed on.
    pub fn close_all(&mut self, now: Timestamp, reason: EndReason) {
        self.tracker.close_all(now, reason);
        self.drain();
        self.recorder.sync();
    }

    /// Stops the recorder thread once it has finished every recording and
    /// handed every report on (so the sinks see their channel close), and
    /// gives back the tracker for its counters.
    pub fn finish(self) -> Tracker {
        let Pipeline {
            tracker, recorder, ..
        } = self;
        drop(recorder);
        tracker
    }

    /// Turns the tracker's events into recorder commands; everything they
    /// need travels in the event.
    fn drain(&mut self) {
        while let Some(ev) = self.tracker.poll_event() {
            match ev {
                Event::CallStarted {
                    call,
                    call_id,
                    snapshot,
                    ..
                } => {
                    tracing::debug!(call_id = %call_id, "call started");
                    self.recorder.started(call, call_id);
                    if self.inflight {
                        self.recorder.snapshot(call, snapshot);
                    }
                }
                Event::Media {
                    call,
                    leg,
                    at,
                    format,
                    lost,
                    rate,
                    payload,
                    ..
                } => self
                    .recorder
                    .media(call, leg, at, format, lost, rate, payload),
                Event::CallEnded { call, record, .. } => {
                    // The INFO line comes with the final record, once the recording is done.
                    tracing::debug!(
                        call_id = %record.call_id,
                        outcome = record.outcome.as_str(),
                        end_reason = record.end_reason.as_str(),
                        "call over; finishing its recording"
                    );
                    self.recorder.ended(call, record);
                }
                // The tracker reports each of these once per call.
                Event::CallRinging {
                    call_id,
                    at,
                    snapshot,
                    ..
                } => {
                    tracing::info!(call_id = %call_id, "call ringing");
                    if let Some((emitter, numbers)) = &self.events {
                        emitter.ringing(&call_id, at, parties(&snapshot, numbers));
                    }
                }
                Event::CallAnswered {
                    call,
                    call_id,
                    at,
                    snapshot,
                } => {
                    tracing::info!(call_id = %call_id, "call answered");
                    if let Some((emitter, numbers)) = &self.events {
                        let data = AnsweredData {
                            call: parties(&snapshot, numbers),
                            answered_at: at,
                        };
                        emitter.live(EventType::CallAnswered, &call_id, at, &data);
                    }
                    if self.inflight {
                        self.recorder.snapshot(call, snapshot);
                    }
                }
                Event::CallUpdated {
                    call_id,
                    at,
                    update,
                    snapshot,
                    ..
                } => {
                    match &update {
                        Update::Transfer { by, to } => {
                            tracing::info!(call_id = %call_id, ?by, to = to.as_deref(), "call transferred");
                        }
                        update => tracing::debug!(call_id = %call_id, ?update, "call updated"),
                    }
                    if let Some((emitter, numbers)) = &self.events {
                        let call = parties(&snapshot, numbers);
                        match update {
                            Update::Hold { by } | Update::Resume { by } => {
                                let kind = if matches!(update, Update::Hold { .. }) {
                                    EventType::CallHeld
                                } else {
                                    EventType::CallResumed
                                };
                                let data = HoldData {
                                    call,
                                    by: side_name(by).into(),
                                };
                                emitter.live(kind, &call_id, at, &data);
                            }
                            Update::Transfer { by, to } => {
                                let data = TransferData {
                                    call,
                                    by: side_name(by).into(),
                                    to,
                                };
                                emitter.live(EventType::CallTransferred, &call_id, at, &data);
                            }
                        }
                    }
                }
                Event::CallHungUp {
                    call_id,
                    at,
                    snapshot,
                    ..
                } => {
                    tracing::info!(
                        call_id = %call_id,
                        end_reason = snapshot.end_reason.as_str(),
                        "call hung up"
                    );
                    if let Some((emitter, numbers)) = &self.events {
                        let data = HungupData {
                            call: parties(&snapshot, numbers),
                            outcome: snapshot.outcome,
                            end_reason: snapshot.end_reason,
                            sip_code: snapshot.sip_code,
                            answered_at: snapshot.answered_at,
                            ended_at: snapshot.ended_at,
                            duration: snapshot.talk_micros() as f64 / 1e6,
                        };
                        emitter.live(EventType::CallHungup, &call_id, at, &data);
                    }
                }
            }
        }
    }
}

/// Who is on the call, numbers as the records store them.
fn parties(rec: &CallRecord, numbers: &Normalizer) -> CallParties {
    CallParties::of(rec, |raw| numbers.normalize(raw))
}
