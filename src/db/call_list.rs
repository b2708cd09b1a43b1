//! The call log: the newest calls, narrowed by number, time, outcome,
//! direction, agent or a CRM record (`pbxbridge calls list`).

use sqlx::Row;

use super::links::{call_row, CALL_ROW_COLUMNS};
use super::{CallRow, Db, DbError, DbTime, RecordCall};
use crate::time::Timestamp;

/// Which calls to list. Empty lists and `None` do not narrow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallFilter {
    /// Any party's number (from, to or other), as stored: E.164 or an extension.
    pub number: Option<String>,
    /// `started_at >= since`.
    pub since: Option<Timestamp>,
    /// `started_at < until`.
    pub until: Option<Timestamp>,
    /// One of these outcomes.
    pub outcomes: Vec<String>,
    /// One of these directions.
    pub directions: Vec<String>,
    /// The agent's extension (`agent`) or CRM id (`agent_id`).
    pub agent: Option<String>,
    /// Calls linked (not removed) to this record: (type, id).
    pub record: Option<(String, String)>,
    /// At most this many, newest first.
    pub limit: u32,
}

enum Bind {
    Text(String),
    Time(DbTime),
}

impl CallFilter {
    /// The query, with `?` placeholders, and its values in order.
    fn sql(&self) -> (String, Vec<Bind>) {
        let mut sql = format!("SELECT {CALL_ROW_COLUMNS}");
        let mut binds = Vec::new();
        if self.record.is_some() {
            sql.push_str(", l.source, l.field, l.via_type, l.via_id");
        }
        sql.push_str(" FROM {calls} c");
        let mut cond: Vec<String> = Vec::new();
        if let Some((t, id)) = &self.record {
            sql.push_str(" JOIN {call_links} l ON c.id = l.call_row");
            cond.push("l.record_type = ? AND l.record_id = ? AND l.removed_at IS NULL".into());
            binds.push(Bind::Text(t.clone()));
            binds.push(Bind::Text(id.clone()));
        }
        if let Some(n) = &self.number {
            cond.push("(c.from_number = ? OR c.to_number = ? OR c.other_number = ?)".into());
            binds.extend((0..3).map(|_| Bind::Text(n.clone())));
        }
        if let Some(t) = self.since {
            cond.push("c.started_at >= ?".into());
            binds.push(Bind::Time(DbTime(t)));
        }
        if let Some(t) = self.until {
            cond.push("c.started_at < ?".into());
            binds.push(Bind::Time(DbTime(t)));
        }
        for (column, values) in [("outcome", &self.outcomes), ("direction", &self.directions)] {
            if !values.is_empty() {
                let marks = vec!["?"; values.len()].join(", ");
                cond.push(format!("c.{column} IN ({marks})"));
                binds.extend(values.iter().cloned().map(Bind::Text));
            }
        }
        if let Some(a) = &self.agent {
            cond.push("(c.agent = ? OR c.agent_id = ?)".into());
            binds.push(Bind::Text(a.clone()));
            binds.push(Bind::Text(a.clone()));
        }
        if !cond.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&cond.join(" AND "));
        }
        sql.push_str(" ORDER BY c.started_at DESC, c.id DESC LIMIT ?");
        (sql, binds)
    }
}

/// A listed call, and how it is linked when the filter names a record.
type Listed = (CallRow, Option<[Option<String>; 4]>);

/// The calls `filter` lets through, newest first, from every sensor.
async fn query(db: &Db, filter: &CallFilter) -> Result<Vec<Listed>, DbError> {
    let q = |source| DbError::Query {
        what: "listing calls",
        source,
    };
    let (sql, binds) = filter.sql();
    let sql = db.sql(&sql);
    let linked = filter.record.is_some();
    super::with_pool!(db.pool(), p => {
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = match b {
                Bind::Text(s) => query.bind(s.as_str()),
                Bind::Time(t) => query.bind(*t),
            };
        }
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(p)
            .await
            .map_err(q)?;
        rows.iter()
            .map(|r| -> Result<Listed, sqlx::Error> {
                let link = if linked {
                    Some([r.try_get(19)?, r.try_get(20)?, r.try_get(21)?, r.try_get(22)?])
                } else {
                    None
                };
                Ok((call_row!(r), link))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(q)
    })
}

/// The calls `filter` lets through (its `record` aside), newest first.
pub async fn list_calls(db: &Db, filter: &CallFilter) -> Result<Vec<CallRow>, DbError> {
    let filter = CallFilter {
        record: None,
        ..filter.clone()
    };
    Ok(query(db, &filter)
        .await?
        .into_iter()
        .map(|(c, _)| c)
        .collect())
}

/// A record's calls (linked, not removed) that `filter` lets through, newest
/// first, with how each came to be linked.
pub async fn record_calls(
    db: &Db,
    record_type: &str,
    record_id: &str,
    filter: &CallFilter,
) -> Result<Vec<RecordCall>, DbError> {
    let filter = CallFilter {
        record: Some((record_type.to_owned(), record_id.to_owned())),
        ..filter.clone()
    };
    let rows = query(db, &filter).await?;
    Ok(rows
        .into_iter()
        .map(|(call, link)| {
            let [source, field, via_type, via_id] = link.unwrap_or_default();
            RecordCall {
                call,
                source: source.unwrap_or_default(),
                field,
                via_type,
                via_id,
            }
        })
        .collect())
}
