//! Calls created and deleted over the API (`POST`/`DELETE /v1/calls`).
//!
//! A created call is inserted with `origin = 'api'`, with its links (matched
//! as a captured call's are), its first note and its `Idempotency-Key` row,
//! all in one transaction: a retry with the same key finds the key's row and
//! answers with the call it names, and two retries racing each other meet at
//! the key's unique index, where the loser rolls back and answers with the
//! winner's call.

use sqlx::Row;

use super::note_writes::{insert_id, NewNote};
use super::{call_key, Backend, CallWrite, Db, DbError, DbTime, NewLink};
use crate::report::RecordingStatus;
use crate::time::Timestamp;

/// The `Idempotency-Key` of a create, scoped to the API key sending it.
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a> {
    pub key_id: i64,
    pub key: &'a str,
    /// SHA-256 (hex) of the request's canonical form.
    pub request_hash: &'a str,
}

/// What a create did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// A new call, with its row id.
    New(i64),
    /// The key was used before with the same request: that call's row id.
    Replayed(i64),
    /// The key was used before with another request.
    KeyReused,
}

const INSERT_CALL: &str = "INSERT INTO {calls} (sensor, call_id, direction, from_number, to_number, \
    other_number, from_raw, to_raw, agent, agent_type, agent_id, agent_name, started_at, answered_at, \
    ended_at, duration, outcome, end_reason, answered_elsewhere, dtmf, held, recording_status, \
    written_at, updated_at, origin, note_count) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

const INSERT_LINK: &str =
    "INSERT INTO {call_links} (call_row, record_type, record_id, field, source, \
    via_type, via_id, display_name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

const INSERT_NOTE: &str = "INSERT INTO {call_notes} (call_row, author, body, status, key_id, \
    created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)";

const INSERT_KEY: &str =
    "INSERT INTO {idempotency_keys} (key_id, idem_key, request_hash, call_row, \
    created_at) VALUES (?, ?, ?, ?, ?)";

const FIND_KEY: &str =
    "SELECT request_hash, call_row FROM {idempotency_keys} WHERE key_id = ? AND idem_key = ?";

/// Text cut to a VARCHAR's length (the API checks lengths first; this
/// keeps a statement from failing on what a CRM record holds).
fn fit(s: Option<&str>, max: usize) -> Option<String> {
    s.map(|v| {
        let mut cut = v.len().min(max);
        while !v.is_char_boundary(cut) {
            cut -= 1;
        }
        v[..cut].to_owned()
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

impl Db {
    /// The call an idempotency key made, and whether `request_hash` is the
    /// request that made it.
    async fn idempotent_call(&self, idem: &Idempotency<'_>) -> Result<Option<Created>, DbError> {
        let q = |source| DbError::Query {
            what: "reading an idempotency key",
            source,
        };
        let sql = self.sql(FIND_KEY);
        with_pool!(self.pool(), p => {
            let row = sqlx::query(&sql)
                .bind(idem.key_id)
                .bind(idem.key)
                .fetch_optional(p)
                .await
                .map_err(&q)?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let hash: String = r.try_get(0).map_err(&q)?;
                    let call_row: i64 = r.try_get(1).map_err(&q)?;
                    Ok(Some(if hash == idem.request_hash {
                        Created::Replayed(call_row)
                    } else {
                        Created::KeyReused
                    }))
                }
            }
        })
    }

    /// Inserts an API-created call with its links, its note and its
    /// idempotency key, or answers with the call the key made before.
    pub async fn create_call(
        &self,
        sensor: &str,
        w: &CallWrite<'_>,
        note: Option<&NewNote<'_>>,
        idem: Option<&Idempotency<'_>>,
    ) -> Result<Created, DbError> {
        if let Some(idem) = idem {
            if let Some(done) = self.idempotent_call(idem).await? {
                return Ok(done);
            }
        }
        let c = w.report;
        let werr = |source| DbError::Write {
            call_id: c.call_id.clone(),
            source,
        };
        let now = DbTime(Timestamp::now());
        let (agent_type, agent_id, agent_name) = match &w.agent {
            Some((t, i, n)) => (Some(t.as_str()), Some(i.as_str()), n.as_deref()),
            None => (None, None, None),
        };
        let backend = self.backend();
        let insert_call = self.sql(INSERT_CALL);
        let find_row = self.sql("SELECT id FROM {calls} WHERE sensor = ? AND call_id = ?");
        let insert_link = self.sql(INSERT_LINK);
        let insert_note = self.sql(INSERT_NOTE);
        let insert_key = self.sql(INSERT_KEY);
        let key = call_key(&c.call_id).into_owned();
        let outcome = with_pool!(self.pool(), p => {
            let run = async {
                let mut tx = p.begin().await?;
                sqlx::query(&insert_call)
                    .bind(sensor)
                    .bind(key.as_str())
                    .bind(c.direction.as_str())
                    .bind(fit(c.from_number.as_deref(), 64))
                    .bind(fit(c.to_number.as_deref(), 64))
                    .bind(fit(c.other_number(), 64))
                    .bind(c.from_raw.as_deref())
                    .bind(c.to_raw.as_deref())
                    .bind(fit(c.agent.as_deref(), 64))
                    .bind(fit(agent_type, 64))
                    .bind(fit(agent_id, 191))
                    .bind(fit(agent_name, 255))
                    .bind(DbTime(c.started_at))
                    .bind(c.answered_at.map(DbTime))
                    .bind(DbTime(c.ended_at))
                    .bind(c.duration)
                    .bind(c.outcome.as_str())
                    .bind(c.end_reason.as_str())
                    .bind(false)
                    .bind("")
                    .bind(false)
                    .bind(RecordingStatus::None.as_str())
                    .bind(now)
                    .bind(now)
                    .bind("api")
                    .bind(i64::from(note.is_some()))
                    .execute(&mut *tx)
                    .await?;
                let row: i64 = sqlx::query(&find_row)
                    .bind(sensor)
                    .bind(key.as_str())
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get(0)?;
                for l in &w.links {
                    let NewLink { record_type, record_id, field, source, via, display_name } = l;
                    sqlx::query(&insert_link)
                        .bind(row)
                        .bind(record_type.as_str())
                        .bind(record_id.as_str())
                        .bind(fit(field.as_deref(), 128))
                        .bind(source.as_str())
                        .bind(via.as_ref().map(|v| v.0.as_str()))
                        .bind(via.as_ref().map(|v| v.1.as_str()))
                        .bind(fit(display_name.as_deref(), 255))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(n) = note {
                    let _note_id = insert_id!(backend, tx, &insert_note, |q| q
                        .bind(row)
                        .bind(fit(n.author, 191))
                        .bind(n.body)
                        .bind(n.status)
                        .bind(n.key_id)
                        .bind(now)
                        .bind(now));
                }
                if let Some(idem) = idem {
                    let claimed = sqlx::query(&insert_key)
                        .bind(idem.key_id)
                        .bind(idem.key)
                        .bind(idem.request_hash)
                        .bind(row)
                        .bind(now)
                        .execute(&mut *tx)
                        .await;
                    match claimed {
                        Ok(_) => {}
                        // Another request with this key committed first:
                        // this one's call is rolled back.
                        Err(e) if is_unique_violation(&e) => {
                            tx.rollback().await?;
                            return Ok(None);
                        }
                        Err(e) => return Err(e),
                    }
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Some(row))
            };
            run.await.map_err(werr)?
        });
        match (outcome, idem) {
            (Some(row), _) => Ok(Created::New(row)),
            (None, Some(idem)) => match self.idempotent_call(idem).await? {
                Some(done) => Ok(done),
                // The winner's call was deleted in between: rare enough to
                // ask the client to try again.
                None => Err(DbError::Write {
                    call_id: c.call_id.clone(),
                    source: sqlx::Error::RowNotFound,
                }),
            },
            (None, None) => Err(DbError::Write {
                call_id: c.call_id.clone(),
                source: sqlx::Error::RowNotFound,
            }),
        }
    }

    /// The agent record (of one of `types`) whose id is `id`, from the phone
    /// index: its type, its name, and its extension when it has one.
    pub async fn agent_record(
        &self,
        types: &[&str],
        id: &str,
    ) -> Result<Option<(String, Option<String>, Option<String>)>, DbError> {
        if types.is_empty() {
            return Ok(None);
        }
        let q = |source| DbError::Query {
            what: "looking an agent up in the phone index",
            source,
        };
        let sql = self.sql(&format!(
            "SELECT record_type, display_name, number FROM {{phone_index}} \
             WHERE record_id = ? AND record_type IN ({}) ORDER BY record_type, field LIMIT 50",
            vec!["?"; types.len()].join(", ")
        ));
        let rows: Vec<(String, Option<String>, Option<String>)> = with_pool!(self.pool(), p => {
            let mut query = sqlx::query(&sql).bind(id);
            for t in types {
                query = query.bind(*t);
            }
            let rows = query.fetch_all(p).await.map_err(&q)?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(&q)?
        });
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        // An extension is a number without the E.164 '+'.
        let ext = rows
            .iter()
            .filter(|r| r.0 == first.0)
            .find_map(|r| r.2.clone().filter(|n| !n.starts_with('+')));
        Ok(Some((first.0.clone(), first.1.clone(), ext)))
    }

    /// Marks a call's recording `expired` before its file or object is
    /// deleted: from here on nothing serves it and the uploader leaves it
    /// alone, while the row still says where it was, so a delete that fails
    /// half-way can be retried.
    pub async fn mark_recording_deleting(&self, call_row: i64) -> Result<(), DbError> {
        let q = |source| DbError::Query {
            what: "marking a recording deleted",
            source,
        };
        let sql = self.sql(
            "UPDATE {calls} SET recording_status = ?, updated_at = ? \
             WHERE id = ? AND recording_status IN (?, ?)",
        );
        with_pool!(self.pool(), p => sqlx::query(&sql)
            .bind(RecordingStatus::Expired.as_str())
            .bind(DbTime(Timestamp::now()))
            .bind(call_row)
            .bind(RecordingStatus::Pending.as_str())
            .bind(RecordingStatus::Stored.as_str())
            .execute(p)
            .await
            .map(|_| ())
            .map_err(q))
    }

    /// Deletes a call with its notes, links and idempotency keys (the
    /// foreign keys would cascade the first two; done here explicitly so no
    /// backend setting matters). False when there was no such call.
    pub async fn delete_call(&self, call_row: i64) -> Result<bool, DbError> {
        let q = |source| DbError::Query {
            what: "deleting a call",
            source,
        };
        let children = [
            self.sql("DELETE FROM {call_notes} WHERE call_row = ?"),
            self.sql("DELETE FROM {call_links} WHERE call_row = ?"),
            self.sql("DELETE FROM {idempotency_keys} WHERE call_row = ?"),
        ];
        let call = self.sql("DELETE FROM {calls} WHERE id = ?");
        with_pool!(self.pool(), p => {
            let run = async {
                let mut tx = p.begin().await?;
                for sql in &children {
                    sqlx::query(sql).bind(call_row).execute(&mut *tx).await?;
                }
                let done = sqlx::query(&call).bind(call_row).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(done.rows_affected() == 1)
            };
            run.await.map_err(q)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_at_a_char_boundary() {
        assert_eq!(fit(Some("abc"), 2).as_deref(), Some("ab"));
        assert_eq!(fit(Some("aé"), 2).as_deref(), Some("a"));
        assert_eq!(fit(None, 2), None);
        assert_eq!(crate::db::sha256_hex(b"").len(), 64);
    }
}
