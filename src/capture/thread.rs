//! A source's thread: it stops when the shared flag (every source) or its own
//! flag (this source alone) is set, and is joined when it is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// What a source's worker looks at to know it should stop.
#[derive(Clone, Debug)]
pub struct StopFlags {
    shared: Arc<AtomicBool>,
    own: Arc<AtomicBool>,
}

impl StopFlags {
    pub fn new(shared: Arc<AtomicBool>) -> StopFlags {
        StopFlags {
            shared,
            own: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn is_set(&self) -> bool {
        self.shared.load(Ordering::SeqCst) || self.own.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
pub struct SourceThread {
    /// Names the source in a log line if its thread panics.
    what: String,
    own_stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SourceThread {
    pub fn spawn(
        name: String,
        what: String,
        stop: &StopFlags,
        run: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<SourceThread> {
        let thread = std::thread::Builder::new().name(name).spawn(run)?;
        Ok(SourceThread {
            what,
            own_stop: stop.own.clone(),
            thread: Some(thread),
        })
    }

    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops this source only and waits for its thread.
    pub fn stop(&mut self) {
        self.own_stop.store(true, Ordering::SeqCst);
        self.join();
    }

    /// Waits for the thread to end (after the shared stop flag was set).
    pub fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!(source = %self.what, "source thread panicked");
            }
        }
    }
}

impl Drop for SourceThread {
    fn drop(&mut self) {
        self.stop();
    }
}
