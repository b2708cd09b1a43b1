//! Finished calls on their way to the database.
//!
//! A batch of records is written to one file, fsynced, and only then is the
//! call's in-flight snapshot dropped. The database writer deletes a file once
//! its rows are committed. So a record is always in at least one of: the
//! in-flight journal, the outbox, the database; and because rows are upserted
//! by Call-ID, being in two of them for a moment never makes two rows.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::report::CallReport;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("outbox file {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl OutboxError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        OutboxError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub struct Outbox {
    dir: PathBuf,
    next: AtomicU64,
    /// Batches waiting, kept here so gauges and loops don't list the folder.
    pending: AtomicU64,
}

/// One file of the outbox: the records of one batch.
#[derive(Debug)]
pub struct Pending {
    pub path: PathBuf,
    pub reports: Vec<CallReport>,
}

const EXT: &str = "jsonl";

impl Outbox {
    pub fn open(dir: &Path) -> Result<Outbox, OutboxError> {
        std::fs::create_dir_all(dir).map_err(|e| OutboxError::io(dir, e))?;
        let (mut max, mut pending) = (0, 0);
        for path in list(dir)? {
            if let Some(n) = seq_of(&path) {
                max = max.max(n);
                pending += 1;
            }
        }
        Ok(Outbox {
            dir: dir.to_path_buf(),
            next: AtomicU64::new(max + 1),
            pending: AtomicU64::new(pending),
        })
    }

    /// Writes `reports` durably: once this returns, a crash cannot lose them.
    pub fn append(&self, reports: &[CallReport]) -> Result<PathBuf, OutboxError> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{seq:020}.{EXT}"));
        let tmp = self.dir.join(format!(".{seq:020}.tmp"));
        let mut buf = Vec::with_capacity(reports.len() * 1024);
        for r in reports {
            serde_json::to_writer(&mut buf, r)
                .map_err(|e| OutboxError::io(&tmp, std::io::Error::other(e)))?;
            buf.push(b'\n');
        }
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            // The rename itself must survive a power cut too.
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| OutboxError::io(&path, e))?;
        self.pending.fetch_add(1, Ordering::Relaxed);
        Ok(path)
    }

    /// Every batch not yet in the database, oldest first.
    pub fn pending(&self) -> Result<Vec<PathBuf>, OutboxError> {
        let mut files: Vec<PathBuf> = list(&self.dir)?
            .into_iter()
            .filter(|p| seq_of(p).is_some())
            .collect();
        files.sort();
        Ok(files)
    }

    pub fn read(&self, path: &Path) -> Result<Pending, OutboxError> {
        let text = std::fs::read_to_string(path).map_err(|e| OutboxError::io(path, e))?;
        let mut reports = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let r = serde_json::from_str(line).map_err(|e| OutboxError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("line {}: {e}", i + 1),
            })?;
            reports.push(r);
        }
        Ok(Pending {
            path: path.to_path_buf(),
            reports,
        })
    }

    /// The batch is committed to the database.
    pub fn remove(&self, path: &Path) -> Result<(), OutboxError> {
        std::fs::remove_file(path).map_err(|e| OutboxError::io(path, e))?;
        self.pending.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    /// A file that cannot be parsed is kept for an operator, out of the way.
    pub fn quarantine(&self, path: &Path) {
        if std::fs::rename(path, path.with_extension("bad")).is_ok() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Call-IDs whose final record is waiting here.
    pub fn call_ids(&self) -> Result<HashSet<String>, OutboxError> {
        let mut ids = HashSet::new();
        for p in self.pending()? {
            match self.read(&p) {
                Ok(batch) => ids.extend(batch.reports.into_iter().map(|r| r.call_id)),
                Err(e) => tracing::error!(error = %e, "outbox file skipped"),
            }
        }
        Ok(ids)
    }

    /// Calls waiting in the outbox (one JSON line each).
    pub fn calls(&self) -> Result<u64, OutboxError> {
        let mut n = 0u64;
        for path in self.pending()? {
            let text = std::fs::read(&path).map_err(|source| OutboxError::Io {
                path: path.clone(),
                source,
            })?;
            n += text
                .split(|b| *b == b'\n')
                .filter(|l| !l.trim_ascii().is_empty())
                .count() as u64;
        }
        Ok(n)
    }

    /// Batches not yet in the database.
    pub fn len(&self) -> usize {
        self.pending.load(Ordering::Relaxed) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn list(dir: &Path) -> Result<Vec<PathBuf>, OutboxError> {
    let rd = std::fs::read_dir(dir).map_err(|e| OutboxError::io(dir, e))?;
    Ok(rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
}

fn seq_of(path: &Path) -> Option<u64> {
    if path.extension()? != EXT {
        return None;
    }
    path.file_stem()?.to_str()?.parse().ok()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::call::{Direction, EndReason, Outcome};
    use crate::report::{CallReport, RecordingReport, RecordingStatus, RtpReport};

    pub(crate) fn report(id: &str) -> CallReport {
        CallReport {
            call_id: id.into(),
            direction: Direction::Incoming,
            from_number: Some("+12125550100".into()),
            to_number: None,
            from_raw: None,
            to_raw: None,
            from_display: None,
            agent: None,
            started_at: crate::time::Timestamp::from_secs(1_767_225_600),
            answered_at: None,
            ended_at: crate::time::Timestamp::from_secs(1_767_225_601),
            duration: 0.0,
            outcome: Outcome::Busy,
            sip_code: Some(486),
            end_reason: EndReason::Rejected,
            answered_elsewhere: false,
            dtmf: String::new(),
            held: false,
            recording: RecordingReport::without_file(RecordingStatus::None, None),
            sip_src: None,
            sip_dst: None,
            rtp: RtpReport::new(Default::default(), Default::default()),
        }
    }

    #[test]
    fn batches_survive_reopen_in_order_and_leave_when_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        ob.append(&[report("a"), report("b")]).unwrap();
        ob.append(&[report("c")]).unwrap();
        drop(ob);
        let ob = Outbox::open(dir.path()).unwrap();
        let pending = ob.pending().unwrap();
        assert_eq!(pending.len(), 2);
        let first = ob.read(&pending[0]).unwrap();
        assert_eq!(first.reports, vec![report("a"), report("b")]);
        assert_eq!(
            ob.call_ids().unwrap(),
            ["a", "b", "c"].map(String::from).into()
        );
        // New batches never reuse a number still pending.
        let p3 = ob.append(&[report("d")]).unwrap();
        assert!(p3 > pending[1]);
        ob.remove(&pending[0]).unwrap();
        assert_eq!(ob.len(), 2);
    }

    #[test]
    fn a_damaged_batch_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        let p = ob.append(&[report("a")]).unwrap();
        std::fs::write(&p, "{\"call_id\":1}\n").unwrap();
        let err = ob.read(&p).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        ob.quarantine(&p);
        assert!(ob.is_empty());
    }

    /// A batch as the version that kept these fields as strings wrote it
    /// (one line per call) is read into the typed report, and written back
    /// byte for byte.
    #[test]
    fn batches_written_before_the_enums_still_read() {
        let old = concat!(
            r#"{"call_id":"old@pbx","direction":"outgoing","from_number":"2001","#,
            r#""to_number":"+12125550100","from_raw":"2001","to_raw":"12125550100","#,
            r#""from_display":null,"agent":"2001","started_at":"2026-01-01T00:00:00.000000Z","#,
            r#""answered_at":"2026-01-01T00:00:02.000000Z","ended_at":"2026-01-01T00:00:09.500000Z","#,
            r#""duration":7.5,"outcome":"answered","sip_code":200,"end_reason":"callee_bye","#,
            r#""answered_elsewhere":false,"dtmf":"","held":false,"recording":{"status":"pending","#,
            r#""path":"/var/spool/x.wav","backend":"s3","key":"rec/x.wav","codec":"PCMU","#,
            r#""sample_rate":8000,"channels":2,"samples":60000,"bytes":240044,"detail":null},"#,
            r#""sip_src":"10.0.0.2:5060","sip_dst":"10.0.0.1:5060","rtp":{"caller":{"packets":375,"#,
            r#""lost":0,"jitter_ms":0.5},"callee":{"packets":374,"lost":1,"jitter_ms":1.25}}}"#,
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("7.jsonl"), format!("{old}\n")).unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        let pending = ob.pending().unwrap();
        let batch = ob.read(&pending[0]).unwrap();
        let r = &batch.reports[0];
        assert_eq!(r.direction, Direction::Outgoing);
        assert_eq!(r.outcome, Outcome::Answered);
        assert_eq!(r.end_reason, EndReason::CalleeBye);
        assert_eq!(r.recording.status, RecordingStatus::Pending);
        assert_eq!(r.other_number(), Some("+12125550100"));
        assert_eq!(serde_json::to_string(r).unwrap(), old);

        std::fs::write(&pending[0], old.replace("callee_bye", "hung_up")).unwrap();
        let err = ob.read(&pending[0]).unwrap_err().to_string();
        assert!(err.contains("hung_up"), "{err}");
    }
}
