//! A folder of rotating capture files (`tcpdump -G 60 -w 'sip-%Y%m%d-%H%M%S.pcap'`),
//! each read once it is complete, oldest first.
//!
//! A file is complete when a newer file exists in the folder (tcpdump opened the
//! next one) or when its size and mtime have not changed for `settle` (the last
//! file after tcpdump stopped). Files are ordered by (mtime, name); tcpdump's
//! time-based names make the name a good tie-breaker.
//!
//! Settling is only as good as the writer's flushing: `tcpdump` without `-U`
//! holds up to a buffer of packets in memory, so a quiet link can leave a file
//! unchanged for a while before more arrives. Use `-U`, or a `settle` longer
//! than the quietest gap; a file whose tail was cut off is read up to the cut.
//!
//! Every file fully read is appended to the done file (and fsynced) so that a
//! restart does not feed the same packets to the tracker twice. A damaged file is
//! logged, counted in `files_failed` and also marked done: reading it again would
//! fail again. A file being read when the watcher is stopped is not marked done
//! and is read again from the start after a restart, since duplicated packets are
//! better than lost ones.
//!
//! Packets are sent with the blocking [`InputSender::send`]: a file can wait for
//! the tracker, so nothing read from a file is dropped.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::capture::pcapfile::PcapFileReader;
use crate::capture::thread::{SourceThread, StopFlags};
use crate::capture::{Input, InputSender};

/// Polling, not inotify: inotify sees nothing on NFS/SMB mounts, where capture
/// folders are often shared from the PBX, and a rotation done by rename (or by
/// `tcpdump -z gzip` replacing a file) needs a rescan anyway. Twice a second is
/// cheap for a folder of a few thousand files.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Granularity of the stop check while waiting.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("capture.folder: {} is not a readable directory: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("capture.folder: cannot read the done file {}: {source}", path.display())]
    DoneFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("capture.folder: cannot start the folder thread: {source}")]
    Thread {
        #[source]
        source: std::io::Error,
    },
}

impl FolderError {
    /// Stable snake_case key for stats and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            FolderError::Dir { .. } => "folder_unreadable",
            FolderError::DoneFile { .. } => "done_file_unreadable",
            FolderError::Thread { .. } => "thread_spawn_failed",
        }
    }
}

/// Counters of the folder watcher.
#[derive(Debug, Default)]
pub struct FolderStats {
    /// Files read to the end and marked done.
    pub files_done: AtomicU64,
    /// Files that could not be read (not pcap, corrupt); marked done too.
    pub files_failed: AtomicU64,
    /// Packets sent to the tracker.
    pub packets: AtomicU64,
    /// Files seen in the last scan that are not done yet (the newest one
    /// waiting for `settle` included). 0 after a scan means idle.
    pub pending: AtomicU64,
    /// Folder scans finished; a test or the daemon waits for this to advance
    /// to know that everything complete at that time has been read.
    pub scans: AtomicU64,
    /// Folder scans that failed (the mount went away, ...).
    pub scan_errors: AtomicU64,
    /// Appends to the done file that failed (disk full, ...). The file is then
    /// read again after a restart.
    pub done_write_errors: AtomicU64,
    /// Entries ignored: names that are not UTF-8 or contain a newline.
    pub skipped_names: AtomicU64,
}

/// A plain copy of [`FolderStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderStatsSnapshot {
    pub files_done: u64,
    pub files_failed: u64,
    pub packets: u64,
    pub pending: u64,
    pub scans: u64,
    pub scan_errors: u64,
    pub done_write_errors: u64,
    pub skipped_names: u64,
}

impl FolderStats {
    pub fn snapshot(&self) -> FolderStatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FolderStatsSnapshot {
            files_done: l(&self.files_done),
            files_failed: l(&self.files_failed),
            packets: l(&self.packets),
            pending: l(&self.pending),
            scans: l(&self.scans),
            scan_errors: l(&self.scan_errors),
            done_write_errors: l(&self.done_write_errors),
            skipped_names: l(&self.skipped_names),
        }
    }
}

/// The running watcher thread.
#[derive(Debug)]
pub struct FolderWatcher {
    dir: PathBuf,
    stats: Arc<FolderStats>,
    thread: SourceThread,
}

impl FolderWatcher {
    /// Checks the folder and the done file now, then starts the thread
    /// `capture-folder`. It ends when `stop` is set, [`FolderWatcher::stop`] is
    /// called, or the queue is closed.
    pub fn start(
        dir: PathBuf,
        settle: Duration,
        done_file: PathBuf,
        tx: InputSender,
        stop: Arc<AtomicBool>,
    ) -> Result<FolderWatcher, FolderError> {
        std::fs::read_dir(&dir).map_err(|source| FolderError::Dir {
            dir: dir.clone(),
            source,
        })?;
        let done = load_done(&done_file).map_err(|source| FolderError::DoneFile {
            path: done_file.clone(),
            source,
        })?;
        let done_lines = done.len();
        // The done file may live inside the watched folder: never read it as a capture.
        let done_name = match (done_file.parent(), done_file.file_name()) {
            (Some(parent), Some(name)) if same_dir(parent, &dir) => Some(name.to_owned()),
            _ => None,
        };
        let stats = Arc::new(FolderStats::default());
        let stop = StopFlags::new(stop);
        let worker = Worker {
            dir: dir.clone(),
            settle,
            done_file,
            done_name,
            done,
            done_lines,
            tx,
            stats: stats.clone(),
            stop: stop.clone(),
            settling: None,
        };
        let thread = SourceThread::spawn(
            "capture-folder".into(),
            format!("folder watcher for {}", dir.display()),
            &stop,
            move || worker.run(),
        )
        .map_err(|source| FolderError::Thread { source })?;
        tracing::info!(dir = %dir.display(), settle_secs = settle.as_secs_f64(), "watching capture folder");
        Ok(FolderWatcher { dir, stats, thread })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stats(&self) -> &Arc<FolderStats> {
        &self.stats
    }

    pub fn is_running(&self) -> bool {
        self.thread.is_running()
    }

    /// Stops this watcher and waits for its thread. A file being read is left
    /// unfinished and not marked done. If the thread is blocked on a full queue,
    /// this waits until the tracker takes an input or drops the receiver.
    pub fn stop(mut self) {
        self.thread.stop();
    }

    /// Waits for the thread to end after the shared stop flag was set.
    pub fn join(mut self) {
        self.thread.join();
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let a = if a.as_os_str().is_empty() {
        Path::new(".")
    } else {
        a
    };
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn load_done(path: &Path) -> std::io::Result<HashSet<String>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(e),
    };
    let mut done = HashSet::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        if !line.is_empty() {
            done.insert(line);
        }
    }
    Ok(done)
}

/// One candidate file of a scan.
#[derive(Debug)]
struct Entry {
    name: String,
    path: PathBuf,
    mtime: SystemTime,
    len: u64,
}

/// The newest file, watched until it has not changed for `settle`.
#[derive(Debug)]
struct Settling {
    name: String,
    len: u64,
    mtime: SystemTime,
    since: Instant,
}

enum FileEnd {
    Done,
    Failed,
    /// Stopped or the queue closed: leave the file for the next run.
    Interrupted,
}

struct Worker {
    dir: PathBuf,
    settle: Duration,
    done_file: PathBuf,
    done_name: Option<OsString>,
    done: HashSet<String>,
    /// Lines in the done file, to know when to compact it.
    done_lines: usize,
    tx: InputSender,
    stats: Arc<FolderStats>,
    stop: StopFlags,
    settling: Option<Settling>,
}

impl Worker {
    fn stopping(&self) -> bool {
        self.stop.is_set()
    }

    fn run(mut self) {
        while !self.stopping() {
            if !self.scan_and_read() {
                break;
            }
            let wake = Instant::now() + POLL_INTERVAL;
            while !self.stopping() {
                let left = wake.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(STOP_CHECK));
            }
        }
        tracing::info!(dir = %self.dir.display(), "folder watcher stopped");
    }

    /// One pass: read every complete file not done yet. `false` when the thread must end.
    fn scan_and_read(&mut self) -> bool {
        let entries = match self.scan() {
            Ok(e) => e,
            Err(e) => {
                self.stats.scan_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot scan capture folder");
                return true;
            }
        };
        self.forget_missing(&entries);
        let todo: Vec<&Entry> = entries
            .iter()
            .filter(|e| !self.done.contains(&e.name))
            .collect();
        self.stats
            .pending
            .store(todo.len() as u64, Ordering::Relaxed);
        let newest_name = entries.last().map(|e| e.name.as_str());
        for entry in todo {
            let newest = newest_name == Some(entry.name.as_str());
            if newest && !self.settled(entry) {
                break;
            }
            if self.stopping() {
                return false;
            }
            match self.read_file(entry) {
                FileEnd::Done => {
                    self.stats.files_done.fetch_add(1, Ordering::Relaxed);
                    self.mark_done(&entry.name);
                }
                FileEnd::Failed => {
                    self.stats.files_failed.fetch_add(1, Ordering::Relaxed);
                    self.mark_done(&entry.name);
                }
                FileEnd::Interrupted => return false,
            }
            self.stats.pending.fetch_sub(1, Ordering::Relaxed);
        }
        self.stats.scans.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Capture files in the folder, oldest first.
    fn scan(&self) -> std::io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for item in std::fs::read_dir(&self.dir)? {
            let item = item?;
            let os_name = item.file_name();
            if self.done_name.as_deref() == Some(os_name.as_os_str()) {
                continue;
            }
            let Some(name) = os_name.to_str() else {
                self.stats.skipped_names.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            // Dotfiles: editors' and rsync's temporaries, our own done-file rewrite.
            if name.starts_with('.') {
                continue;
            }
            if name.contains('\n') {
                // It would break the line-based done file.
                self.stats.skipped_names.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let path = item.path();
            // Follows symlinks, so a link to a capture counts as a file.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // removed between read_dir and now
            };
            if !meta.is_file() {
                continue;
            }
            entries.push(Entry {
                name: name.to_owned(),
                path,
                mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                len: meta.len(),
            });
        }
        entries.sort_by(|a, b| (a.mtime, &a.name).cmp(&(b.mtime, &b.name)));
        Ok(entries)
    }

    /// Whether the newest file has kept its size and mtime for `settle`.
    fn settled(&mut self, entry: &Entry) -> bool {
        match &self.settling {
            Some(s) if s.name == entry.name && s.len == entry.len && s.mtime == entry.mtime => {
                // tcpdump creates the next file before writing to it: an empty newest
                // file is one being started, complete only once a newer file exists.
                entry.len > 0 && s.since.elapsed() >= self.settle
            }
            _ => {
                self.settling = Some(Settling {
                    name: entry.name.clone(),
                    len: entry.len,
                    mtime: entry.mtime,
                    since: Instant::now(),
                });
                self.settle.is_zero() && entry.len > 0
            }
        }
    }

    /// Keeps only done names still in the folder, so memory follows the folder's
    /// size, and rewrites the done file when most of its lines are stale.
    fn forget_missing(&mut self, entries: &[Entry]) {
        // An empty listing is more likely an unmounted share than a folder
        // emptied on purpose: forgetting then would re-read everything later.
        if entries.is_empty() {
            return;
        }
        let present: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        self.done.retain(|n| present.contains(n.as_str()));
        if self.done_lines > 2 * self.done.len() + 64 {
            match self.rewrite_done() {
                Ok(()) => self.done_lines = self.done.len(),
                Err(e) => tracing::warn!(
                    path = %self.done_file.display(),
                    error = %e,
                    "cannot compact the done file"
                ),
            }
        }
    }

    fn rewrite_done(&self) -> std::io::Result<()> {
        let name = self
            .done_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = self.done_file.with_file_name(format!(".{name}.tmp"));
        let mut names: Vec<&String> = self.done.iter().collect();
        names.sort();
        {
            let mut f = File::create(&tmp)?;
            for n in names {
                writeln!(f, "{n}")?;
            }
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.done_file)?;
        if let Some(parent) = self.done_file.parent() {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            // Makes the rename durable; not every filesystem allows it, so best effort.
            if let Ok(d) = File::open(parent) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn mark_done(&mut self, name: &str) {
        self.done.insert(name.to_owned());
        self.done_lines += 1;
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.done_file)
            .and_then(|mut f| {
                f.write_all(format!("{name}\n").as_bytes())?;
                f.sync_data()
            });
        if let Err(e) = written {
            self.stats.done_write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                path = %self.done_file.display(),
                file = name,
                error = %e,
                "cannot record a capture file as done; it will be read again after a restart"
            );
        }
    }

    fn read_file(&self, entry: &Entry) -> FileEnd {
        let path = &entry.path;
        let mut reader = match PcapFileReader::open(path) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(path = %path.display(), reason = e.reason(), error = %e, "capture file skipped");
                return FileEnd::Failed;
            }
        };
        tracing::debug!(path = %path.display(), "reading capture file");
        loop {
            if self.stopping() {
                return FileEnd::Interrupted;
            }
            match reader.next_packet() {
                Ok(Some(p)) => {
                    let input = Input::Frame {
                        ts: p.ts,
                        link: p.link,
                        data: p.data.to_vec(),
                    };
                    if self.tx.send(input).is_err() {
                        tracing::info!("input queue closed; folder watcher ends");
                        return FileEnd::Interrupted;
                    }
                    self.stats.packets.fetch_add(1, Ordering::Relaxed);
                }
                Ok(None) => {
                    tracing::info!(
                        path = %path.display(),
                        packets = reader.stats().packets,
                        truncated = reader.stats().truncated_tail,
                        "capture file done"
                    );
                    return FileEnd::Done;
                }
                Err(e) => {
                    tracing::warn!(
                        path = %path.display(),
                        reason = e.reason(),
                        error = %e,
                        packets_read = reader.stats().packets,
                        "capture file damaged; the packets before the damage were read"
                    );
                    return FileEnd::Failed;
                }
            }
        }
    }
}
