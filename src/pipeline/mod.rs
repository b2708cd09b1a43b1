//! The synchronous half of every driver: frames into the tracker, events out to
//! the recorder, finished calls out as reports. Replay and the live daemon share it.

mod recordings;
mod writer;

use std::path::PathBuf;

use crate::call::{EndReason, Event, Stats, Tracker, TrackerConfig};
use crate::config::Config;
use crate::matching::number::{parse_country, Normalizer};
use crate::report::{CallReport, RecordingReport};
use crate::time::Timestamp;
use crate::wire::LinkType;

pub use recordings::{recording_path, safe_file_name, Recordings};
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
}

/// Builds the core's settings from the admin's config.
pub fn tracker_config(cfg: &Config, ext: regex::Regex) -> TrackerConfig {
    let t = &cfg.tracker;
    let secs = |s: u64| i64::try_from(s.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
    TrackerConfig {
        sip_ports: cfg.sip.ports.clone(),
        detect_any_port: cfg.sip.detect_any_port,
        extension_pattern: Some(ext),
        internal_networks: cfg.pbx.internal_networks.clone(),
        max_calls: t.max_calls,
        no_response_us: secs(t.no_response_secs),
        ring_timeout_us: secs(t.ring_timeout_secs),
        rtp_timeout_us: secs(t.rtp_timeout_secs),
        max_duration_us: secs(t.max_duration_secs),
        bye_timeout_us: secs(t.bye_timeout_secs),
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
            let recordings = Recordings::open(&cfg.recording.dir).map_err(err)?;
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
        })
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
        // Timers fire at their own instant, before the packet that comes after them.
        while let Some(t) = self.tracker.poll_timeout() {
            if t > ts {
                break;
            }
            self.tracker.handle_timeout(t);
            self.drain(out);
        }
        self.tracker.handle_frame(ts, link, frame);
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

    fn drain(&mut self, out: &mut Vec<CallReport>) {
        while let Some(ev) = self.tracker.poll_event() {
            let cmd = match ev {
                Event::CallStarted { call, call_id, .. } => Cmd::Started(call, call_id),
                Event::Media {
                    call,
                    leg,
                    offset,
                    sample_rate,
                    samples,
                } => Cmd::Media {
                    call,
                    leg,
                    offset,
                    sample_rate,
                    samples,
                },
                Event::CallEnded { call, record } => {
                    tracing::info!(
                        call_id = %record.call_id,
                        outcome = record.outcome.as_str(),
                        end_reason = record.end_reason.as_str(),
                        talk_secs = record.talk_micros() as f64 / 1e6,
                        "call finished"
                    );
                    if self.writer.is_none() {
                        let none = RecordingReport::without_file(
                            "none",
                            Some("recording is disabled".into()),
                        );
                        out.push(CallReport::new(&record, &self.numbers, none));
                        continue;
                    }
                    Cmd::Ended(call, record)
                }
                Event::CallRinging { .. }
                | Event::CallAnswered { .. }
                | Event::CallUpdated { .. } => continue,
            };
            if let Some(w) = &mut self.writer {
                w.push(cmd);
            }
        }
        if let Some(w) = &mut self.writer {
            w.collect(out);
        }
    }
}
