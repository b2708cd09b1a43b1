//! One database handle for every task of a run (the call writer, the phone
//! index, the uploader, retention): one pool, the migrations checked once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Mutex;

use super::{Db, DbError, DbTarget};

/// An index build reads the CRM on one connection while it writes the index
/// on another; the call writer and the uploader hold one each.
const MIN_CONNECTIONS: u32 = 4;

/// Cheap to clone. Opened on first use; a task that finds the database gone
/// calls `reset`, and the next `get` opens it again, so a failed attempt names
/// its cause (refused, unknown host…) instead of the pool's "timed out".
#[derive(Clone, Debug)]
pub struct SharedDb {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    target: DbTarget,
    /// Held across an attempt, so tasks that ask together open it once.
    db: Mutex<Option<Db>>,
    migrated: AtomicBool,
}

impl SharedDb {
    /// The pool gets at least `MIN_CONNECTIONS`, so that the tasks do not
    /// starve each other (a starved task would take the wait for an outage).
    pub fn new(mut target: DbTarget) -> SharedDb {
        target.opts.max_connections = target.opts.max_connections.max(MIN_CONNECTIONS);
        SharedDb {
            inner: Arc::new(Inner {
                target,
                db: Mutex::new(None),
                migrated: AtomicBool::new(false),
            }),
        }
    }

    pub fn target(&self) -> &DbTarget {
        &self.inner.target
    }

    /// The open handle, or one attempt to open it.
    pub async fn get(&self) -> Result<Db, DbError> {
        let mut slot = self.inner.db.lock().await;
        if let Some(db) = &*slot {
            return Ok(db.clone());
        }
        let t = &self.inner.target;
        let db = Db::open(&t.url, &t.opts).await?;
        if !self.inner.migrated.load(Ordering::Acquire) {
            db.migrate().await?;
            self.inner.migrated.store(true, Ordering::Release);
        }
        *slot = Some(db.clone());
        Ok(db)
    }

    /// The database went away under a task: forget the pool (tasks still
    /// using a clone finish with it) so that the next `get` opens anew.
    pub async fn reset(&self) {
        self.inner.db.lock().await.take();
    }

    /// Closes the pool for every holder.
    pub async fn close(&self) {
        if let Some(db) = self.inner.db.lock().await.take() {
            db.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_share_one_pool_and_reopen_after_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedDb::new(DbTarget {
            url: format!("sqlite://{}", dir.path().join("s.db").display()),
            opts: Default::default(),
            sensor: "default".into(),
        });
        let other = shared.clone();
        let (a, b) = tokio::join!(shared.get(), other.get());
        let (a, b) = (a.unwrap(), b.unwrap());
        let (crate::db::Pool::Sqlite(pa), crate::db::Pool::Sqlite(pb)) = (a.pool(), b.pool())
        else {
            panic!("sqlite expected")
        };
        // One pool: a connection taken through one handle is missing from the other.
        let held = pa.acquire().await.unwrap();
        assert_eq!(pb.size(), pa.size());
        assert_eq!(pb.num_idle() + 1, pa.size() as usize);
        drop(held);
        assert!(shared.inner.migrated.load(Ordering::Acquire));
        shared.reset().await;
        let c = shared.get().await.unwrap();
        c.ping().await.unwrap();
        // The old handle still works for whoever holds it.
        a.ping().await.unwrap();
    }
}
