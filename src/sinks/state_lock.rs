//! One process per state folder.
//!
//! The daemon and `pbxbridge replay` both append to and drain the outbox in
//! `{state_dir}/outbox`. Two drainers would write the same batch twice at once
//! and delete each other's files, so each holds an exclusive `flock` on
//! `{state_dir}/lock` for as long as it uses the folder. The kernel drops the
//! lock when the process dies, so a crash never leaves the folder locked. The
//! file's text names the holder, for the error the next process prints.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "lock";

/// Who holds the lock, as the holder wrote it.
const DAEMON: &str = "daemon";

#[derive(Debug, thiserror::Error)]
pub enum StateLockError {
    #[error("state folder lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state folder {dir} is in use by {holder}: only one pbxbridge at a time may use its outbox; stop that one or give this one another state folder (replay --state-dir, [daemon] state_dir)")]
    Busy { dir: PathBuf, holder: String },
}

/// Held until dropped (or the process ends).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// What the current holder of a busy lock is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Daemon(String),
    /// A replay, or a holder that has not written its name yet.
    Other(String),
}

impl StateLock {
    /// Takes the lock at once or says who has it. `role` is "daemon" or
    /// "replay" and goes into the file with the process id.
    pub fn try_acquire(
        state_dir: &Path,
        role: &str,
    ) -> Result<StateLock, (Holder, StateLockError)> {
        let path = state_dir.join(LOCK_FILE);
        let io = |source| {
            let e = StateLockError::Io {
                path: path.clone(),
                source,
            };
            (Holder::Other(String::new()), e)
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        // SAFETY: flock on a descriptor we own and keep open; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::WouldBlock {
                return Err(io(err));
            }
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let text = text.trim().to_string();
            let shown = if text.is_empty() {
                "another pbxbridge process".to_string()
            } else {
                text.clone()
            };
            let holder = if text.starts_with(DAEMON) {
                Holder::Daemon(shown.clone())
            } else {
                Holder::Other(shown.clone())
            };
            return Err((
                holder,
                StateLockError::Busy {
                    dir: state_dir.to_path_buf(),
                    holder: shown,
                },
            ));
        }
        let stamp = format!("{role} (pid {})\n", std::process::id());
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            f.write_all(stamp.as_bytes())?;
            f.flush()
        };
        write(&mut file).map_err(io)?;
        Ok(StateLock { _file: file })
    }

    /// For the daemon: the lock or an error, no waiting.
    pub fn acquire_daemon(state_dir: &Path) -> Result<StateLock, StateLockError> {
        StateLock::try_acquire(state_dir, DAEMON).map_err(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire_daemon(dir.path()).unwrap();
        let (holder, err) = StateLock::try_acquire(dir.path(), "replay").unwrap_err();
        let pid = std::process::id();
        assert_eq!(holder, Holder::Daemon(format!("daemon (pid {pid})")));
        assert!(err.to_string().contains("in use by daemon"), "{err}");
        drop(first);
        let again = StateLock::try_acquire(dir.path(), "replay").unwrap();
        let (holder, _) = StateLock::try_acquire(dir.path(), "replay").unwrap_err();
        assert_eq!(holder, Holder::Other(format!("replay (pid {pid})")));
        drop(again);
    }
}
