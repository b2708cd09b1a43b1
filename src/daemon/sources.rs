//! Starting and stopping the packet sources.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::capture::folder::{FolderError, FolderStats, FolderWatcher};
use crate::capture::hep::{HepListenError, HepListener, HepListenerStats};
use crate::capture::live::{CaptureStats, LiveCapture, LiveError};
use crate::capture::InputSender;
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(transparent)]
    Hep(#[from] HepListenError),
    #[error("nothing to capture from: set capture.interfaces, capture.folder or hep.enabled in the config")]
    Nothing,
}

pub struct Sources {
    live: Vec<LiveCapture>,
    folder: Option<FolderWatcher>,
    hep: Option<HepListener>,
}

/// Shared counters of every source, for metrics.
#[derive(Clone, Default)]
pub struct SourceStats {
    pub interfaces: Vec<(String, Arc<CaptureStats>)>,
    pub folder: Option<Arc<FolderStats>>,
    pub hep: Option<Arc<HepListenerStats>>,
}

impl std::fmt::Debug for SourceStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.interfaces.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("SourceStats")
            .field("interfaces", &names)
            .field("folder", &self.folder.is_some())
            .field("hep", &self.hep.is_some())
            .finish()
    }
}

pub fn start(
    cfg: &Config,
    tx: &InputSender,
    state_dir: &Path,
    stop: Arc<AtomicBool>,
) -> Result<Sources, SourceError> {
    let mut sources = Sources {
        live: Vec::new(),
        folder: None,
        hep: None,
    };
    // HEP first: a live capture started before it could see the HEP packets
    // themselves and must not mistake them for anything.
    if cfg.hep.enabled {
        sources.hep = Some(HepListener::spawn(
            cfg.hep.listen,
            cfg.hep.max_connections,
            tx.clone(),
            stop.clone(),
        )?);
    }
    if let Some(dir) = &cfg.capture.folder {
        let started = FolderWatcher::start(
            dir.clone(),
            Duration::from_secs(cfg.capture.folder_settle_secs),
            state_dir.join("folder-done.txt"),
            tx.clone(),
            stop.clone(),
        );
        match started {
            Ok(w) => sources.folder = Some(w),
            Err(e) => {
                sources.stop_and_join();
                return Err(e.into());
            }
        }
    }
    match LiveCapture::start_all(&cfg.capture, tx, &stop) {
        Ok(live) => sources.live = live,
        Err(e) => {
            sources.stop_and_join();
            return Err(e.into());
        }
    }
    Ok(sources)
}

impl Sources {
    pub fn stats(&self) -> SourceStats {
        SourceStats {
            interfaces: self
                .live
                .iter()
                .map(|c| (c.interface().to_owned(), c.stats().clone()))
                .collect(),
            folder: self.folder.as_ref().map(|f| f.stats().clone()),
            hep: self.hep.as_ref().map(|h| h.stats()),
        }
    }

    /// Stops every source and waits for its thread; their input senders go with them.
    pub fn stop_and_join(self) -> SourceStats {
        let stats = self.stats();
        for c in self.live {
            c.stop();
        }
        if let Some(f) = self.folder {
            f.stop();
        }
        if let Some(h) = self.hep {
            drop(h);
        }
        stats
    }
}
