//! What one endpoint keeps in the state folder (`webhooks/<id>/`): its
//! cursor (every event up to it is done with), its failed deliveries, and
//! whether a 410 disabled it. Each write is fsynced before it counts.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::time::Timestamp;

/// Past this size the failed list is rewritten with what is still failed.
const FAILED_COMPACT_BYTES: u64 = 64 << 20;
/// ... keeping this much of the newest.
const FAILED_KEEP_BYTES: usize = 32 << 20;

#[derive(Debug, thiserror::Error)]
#[error("webhook state {}: {source}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError {
        path: path.to_path_buf(),
        source,
    }
}

/// A delivery whose schedule ran out: kept until it is redelivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FailedDelivery {
    /// The event's id, also the `webhook-id` every attempt carried.
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub sensor: String,
    pub call_id: Option<String>,
    pub attempts: u32,
    /// The last answer's HTTP status; unset when there was none.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, when there was no answer.
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub failed_at: Timestamp,
    /// The request body as sent (the event's JSON), sent again as is.
    #[serde(skip)]
    pub body: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line {
    Failed {
        #[serde(flatten)]
        delivery: FailedDelivery,
        body: String,
    },
    /// A redelivery went through: no longer failed.
    Redelivered { event_id: String, at: Timestamp },
}

/// Why an endpoint is disabled, kept across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disabled {
    pub reason: String,
    /// The URL that answered; a config that names another URL starts afresh.
    pub url: String,
    pub at: Timestamp,
}

#[derive(Debug)]
pub struct Files {
    dir: PathBuf,
    /// The dispatcher and the API both append to the failed list.
    lock: Mutex<()>,
}

impl Files {
    pub fn new(root: &Path, endpoint_id: &str) -> Files {
        Files {
            dir: root.join(endpoint_id),
            lock: Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ensure_dir(&self) -> Result<(), FileError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))
    }

    /// `None` when the endpoint has never saved one.
    pub fn read_cursor(&self) -> Result<Option<u64>, FileError> {
        let path = self.dir.join("cursor");
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(t.trim().parse().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    pub fn write_cursor(&self, seq: u64) -> Result<(), FileError> {
        self.replace("cursor", format!("{seq}\n").as_bytes())
    }

    /// Writes `name` whole or not at all: a temporary file, fsynced, renamed
    /// over it, and the folder fsynced so that the rename is kept.
    fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), FileError> {
        self.ensure_dir()?;
        let tmp = self.dir.join(format!("{name}.tmp"));
        let path = self.dir.join(name);
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))
    }

    pub fn disabled(&self) -> Option<Disabled> {
        let text = std::fs::read_to_string(self.dir.join("disabled")).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn set_disabled(&self, d: &Disabled) -> Result<(), FileError> {
        let json = serde_json::to_vec(d).unwrap_or_default();
        self.replace("disabled", &json)
    }

    pub fn clear_disabled(&self) -> Result<(), FileError> {
        let path = self.dir.join("disabled");
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Everything the endpoint kept (it was deleted).
    pub fn remove_all(&self) -> Result<(), FileError> {
        let _g = self.guard();
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&self.dir)(e)),
            _ => Ok(()),
        }
    }

    pub fn add_failed(&self, delivery: &FailedDelivery) -> Result<(), FileError> {
        self.append(&Line::Failed {
            delivery: delivery.clone(),
            body: delivery.body.clone(),
        })
    }

    pub fn mark_redelivered(&self, event_id: &str, at: Timestamp) -> Result<(), FileError> {
        self.append(&Line::Redelivered {
            event_id: event_id.to_owned(),
            at,
        })
    }

    fn append(&self, line: &Line) -> Result<(), FileError> {
        let _g = self.guard();
        self.ensure_dir()?;
        let path = self.dir.join("failed.jsonl");
        let mut text = serde_json::to_string(line).unwrap_or_default();
        text.push('\n');
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        if !ends_with_newline(&mut f).map_err(io(&path))? {
            // A crash cut the last line: end it, so this one stands alone.
            text.insert(0, '\n');
        }
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(io(&path))?;
        if f.metadata().map(|m| m.len()).unwrap_or(0) > FAILED_COMPACT_BYTES {
            let kept = self.read_failed()?;
            self.rewrite_failed(&kept)?;
        }
        Ok(())
    }

    /// Deliveries still failed, newest first, one per event (its latest).
    pub fn failed(&self) -> Result<Vec<FailedDelivery>, FileError> {
        let _g = self.guard();
        self.read_failed()
    }

    fn read_failed(&self) -> Result<Vec<FailedDelivery>, FileError> {
        let path = self.dir.join("failed.jsonl");
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut latest: Vec<FailedDelivery> = Vec::new();
        let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io(&path))?;
            // A line a crash cut short is not a delivery.
            match serde_json::from_str::<Line>(&line) {
                Ok(Line::Failed { mut delivery, body }) => {
                    delivery.body = body;
                    if let Some(i) = at.get(&delivery.event_id) {
                        latest[*i] = delivery;
                    } else {
                        at.insert(delivery.event_id.clone(), latest.len());
                        latest.push(delivery);
                    }
                }
                Ok(Line::Redelivered { event_id, at: when }) => {
                    if let Some(i) = at.get(&event_id) {
                        if latest[*i].failed_at <= when {
                            latest[*i].event_id.clear();
                        }
                    }
                }
                Err(_) => {}
            }
        }
        let mut out: Vec<FailedDelivery> = latest
            .into_iter()
            .filter(|d| !d.event_id.is_empty())
            .collect();
        out.sort_by_key(|d| std::cmp::Reverse(d.failed_at));
        Ok(out)
    }

    fn rewrite_failed(&self, newest_first: &[FailedDelivery]) -> Result<(), FileError> {
        let mut size = 0;
        let mut lines = Vec::new();
        for d in newest_first {
            let line = serde_json::to_string(&Line::Failed {
                delivery: d.clone(),
                body: d.body.clone(),
            })
            .unwrap_or_default();
            size += line.len() + 1;
            if size > FAILED_KEEP_BYTES {
                tracing::warn!(dir = %self.dir.display(), "webhook failed list full: the oldest failed deliveries are forgotten");
                break;
            }
            lines.push(line);
        }
        lines.reverse();
        let mut text = lines.join("\n");
        text.push('\n');
        self.replace("failed.jsonl", text.as_bytes())
    }
}

fn ends_with_newline(f: &mut File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(id: &str, at: i64) -> FailedDelivery {
        FailedDelivery {
            event_id: id.into(),
            event_type: "call.hungup".into(),
            sensor: "s".into(),
            call_id: Some("c".into()),
            attempts: 3,
            last_status: Some(500),
            last_error: None,
            failed_at: Timestamp::from_secs(at),
            body: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    #[test]
    fn cursor_and_disabled_survive_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let f = Files::new(dir.path(), "wh_1");
        assert_eq!(f.read_cursor().unwrap(), None);
        f.write_cursor(42).unwrap();
        f.write_cursor(43).unwrap();
        assert_eq!(
            Files::new(dir.path(), "wh_1").read_cursor().unwrap(),
            Some(43)
        );
        assert!(!dir.path().join("wh_1/cursor.tmp").exists());
        assert_eq!(f.disabled(), None);
        let d = Disabled {
            reason: "410".into(),
            url: "http://x/".into(),
            at: Timestamp::from_secs(1),
        };
        f.set_disabled(&d).unwrap();
        assert_eq!(f.disabled(), Some(d));
        f.clear_disabled().unwrap();
        f.clear_disabled().unwrap();
        assert_eq!(f.disabled(), None);
        f.remove_all().unwrap();
        assert!(!dir.path().join("wh_1").exists());
    }

    #[test]
    fn failed_list_keeps_the_latest_per_event_until_redelivered() {
        let dir = tempfile::tempdir().unwrap();
        let f = Files::new(dir.path(), "e");
        assert!(f.failed().unwrap().is_empty());
        f.add_failed(&failed("evt_a", 10)).unwrap();
        f.add_failed(&failed("evt_b", 20)).unwrap();
        let mut again = failed("evt_a", 30);
        again.attempts = 4;
        f.add_failed(&again).unwrap();
        let list = f.failed().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0], again, "newest first, with its body");
        assert_eq!(list[1].event_id, "evt_b");
        f.mark_redelivered("evt_b", Timestamp::from_secs(40))
            .unwrap();
        // A cut line at the end is skipped.
        OpenOptions::new()
            .append(true)
            .open(dir.path().join("e/failed.jsonl"))
            .unwrap()
            .write_all(b"{\"kind\":\"failed\",\"event_")
            .unwrap();
        let ids: Vec<String> = f
            .failed()
            .unwrap()
            .into_iter()
            .map(|d| d.event_id)
            .collect();
        assert_eq!(ids, ["evt_a"]);
        // Failing again after a redelivery lists it again.
        f.add_failed(&failed("evt_b", 50)).unwrap();
        assert_eq!(f.failed().unwrap().len(), 2);
        f.rewrite_failed(&f.failed().unwrap()).unwrap();
        let ids: Vec<String> = f
            .failed()
            .unwrap()
            .into_iter()
            .map(|d| d.event_id)
            .collect();
        assert_eq!(ids, ["evt_b", "evt_a"]);
    }
}
