//! Finding one call by its row id or its (sensor, Call-ID) key, as the API's
//! `/v1/calls/{id}` names it.

use sqlx::Row;

use super::{call_key, Db, DbError};

/// Which call a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallSelector {
    Row(i64),
    Key { sensor: String, call_id: String },
}

/// The few columns that say whose a call is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallIdentity {
    pub row: i64,
    pub sensor: String,
    pub call_id: String,
    pub agent_id: Option<String>,
}

impl Db {
    /// The call `which` names; `None` when there is none.
    pub async fn find_call(&self, which: &CallSelector) -> Result<Option<CallIdentity>, DbError> {
        let q = |source| DbError::Query {
            what: "finding a call",
            source,
        };
        let cols = "SELECT id, sensor, call_id, agent_id FROM {calls}";
        let (sql, row, key) = match which {
            CallSelector::Row(id) => (format!("{cols} WHERE id = ?"), Some(*id), None),
            CallSelector::Key { sensor, call_id } => (
                format!("{cols} WHERE sensor = ? AND call_id = ?"),
                None,
                Some((sensor.as_str(), call_key(call_id).into_owned())),
            ),
        };
        let sql = self.sql(&sql);
        with_pool!(self.pool(), p => {
            let mut query = sqlx::query(&sql);
            if let Some(id) = row {
                query = query.bind(id);
            }
            if let Some((sensor, key)) = &key {
                query = query.bind(*sensor).bind(key.as_str());
            }
            let found = query.fetch_optional(p).await.map_err(&q)?;
            match found {
                Some(r) => Ok(Some(CallIdentity {
                    row: r.try_get(0).map_err(&q)?,
                    sensor: r.try_get(1).map_err(&q)?,
                    call_id: r.try_get(2).map_err(&q)?,
                    agent_id: r.try_get(3).map_err(&q)?,
                })),
                None => Ok(None),
            }
        })
    }
}
