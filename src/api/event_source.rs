//! What the event task asks the database: the screen-pop's CRM matches, a
//! finished call as `GET /v1/calls/{id}` shows it, a call's row. Here, above
//! the events layer, because the finished call is the API's own view.

use std::sync::Arc;

use crate::config::Config;
use crate::db::call_lookup::{CallIdentity, CallSelector};
use crate::db::{Db, SharedDb};
use crate::events::{BoxFuture, MatchedRecord, Resolve, RingLookup};
use crate::matching::linker::Linker;

pub struct DbResolve {
    db: SharedDb,
    linker: Arc<Linker>,
}

impl DbResolve {
    pub fn new(cfg: &Config, db: SharedDb) -> Arc<DbResolve> {
        Arc::new(DbResolve {
            db,
            linker: Arc::new(Linker::new(&cfg.crm)),
        })
    }

    async fn db(&self) -> Option<Db> {
        match self.db.get().await {
            Ok(db) => Some(db),
            Err(e) => {
                tracing::debug!(error = %e, "events: database not reachable");
                None
            }
        }
    }

    async fn row(&self, sensor: &str, call_id: &str) -> Option<CallIdentity> {
        let which = CallSelector::Key {
            sensor: sensor.to_owned(),
            call_id: call_id.to_owned(),
        };
        match self.db().await?.find_call(&which).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(call_id, error = %e, "events: cannot read the call's row");
                None
            }
        }
    }
}

impl Resolve for DbResolve {
    fn ring<'a>(
        &'a self,
        other: Option<&'a str>,
        agent: Option<&'a str>,
    ) -> BoxFuture<'a, Option<RingLookup>> {
        Box::pin(async move {
            let db = self.db().await?;
            match self.linker.ring_lookup(&db, other, agent).await {
                Ok((found, agent_id)) => Some((
                    found
                        .into_iter()
                        .map(|(record_type, id, display_name)| MatchedRecord {
                            record_type,
                            id,
                            display_name,
                        })
                        .collect(),
                    agent_id,
                )),
                Err(e) => {
                    tracing::warn!(error = %e, "screen-pop lookup failed");
                    None
                }
            }
        })
    }

    fn call_detail<'a>(
        &'a self,
        sensor: &'a str,
        call_id: &'a str,
    ) -> BoxFuture<'a, Option<serde_json::Value>> {
        Box::pin(async move {
            let row = self.row(sensor, call_id).await?.row;
            let db = self.db().await?;
            match super::calls::call_detail(&db, row, None).await {
                Ok(Some(detail)) => serde_json::to_value(detail).ok(),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(call_id, error = ?e, "events: cannot read the finished call");
                    None
                }
            }
        })
    }

    fn call_row<'a>(
        &'a self,
        sensor: &'a str,
        call_id: &'a str,
    ) -> BoxFuture<'a, Option<(i64, Option<String>)>> {
        Box::pin(async move {
            let c = self.row(sensor, call_id).await?;
            Some((c.row, c.agent_id))
        })
    }
}
