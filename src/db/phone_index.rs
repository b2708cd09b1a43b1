//! The phone index's rows and state, and reading the CRM's own tables for it.
//! What goes in is decided by `matching::index`; this module only moves rows.

use std::time::Instant;

use sqlx::Row;
use tokio::sync::mpsc;

use super::{DbError, DbTime, Dialect};
use crate::time::Timestamp;

mod copy;
use copy::copy_rows;

const COLUMNS: [&str; 7] = [
    "record_type",
    "record_id",
    "field",
    "raw",
    "number",
    "extension",
    "display_name",
];

/// The longest raw value kept; the rest of a pasted essay is of no use.
const MAX_RAW: usize = 1000;

/// One phone value of one CRM record.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexRow {
    pub record_id: String,
    /// The column it came from.
    pub field: String,
    pub raw: String,
    /// `None` for a value that is not a valid number.
    pub number: Option<String>,
    pub extension: Option<String>,
    pub display_name: Option<String>,
}

/// What the writer receives: batches of rows, then `End` once everything was
/// read. A channel closed without `End` means the read failed: nothing is kept.
#[derive(Debug)]
pub enum IndexMsg {
    /// `record_ids`: the records these rows replace (an incremental refresh
    /// deletes their old rows first; a full build ignores it).
    Batch {
        record_ids: Vec<String>,
        rows: Vec<IndexRow>,
    },
    End {
        /// CRM rows read.
        records: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Replace every row of the type.
    Full,
    /// Replace the rows of the records in each batch.
    Changed,
}

/// Counts of one type's index after a write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexCounts {
    pub records: u64,
    pub values: u64,
    pub valid: u64,
    pub invalid: u64,
    /// Valid values that are internal extensions rather than E.164 numbers.
    pub extensions: u64,
}

impl IndexCounts {
    fn add(&mut self, row: &IndexRow) {
        self.values += 1;
        match &row.number {
            Some(n) if n.starts_with('+') => self.valid += 1,
            Some(_) => {
                self.valid += 1;
                self.extensions += 1;
            }
            None => self.invalid += 1,
        }
    }
}

/// One type's line of `{phone_index_state}`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IndexState {
    pub record_type: String,
    pub built_at: Option<Timestamp>,
    pub refreshed_at: Option<Timestamp>,
    pub build_secs: f64,
    pub watermark: Option<String>,
    #[serde(flatten)]
    pub counts: IndexCounts,
}

/// A value that could not be made a number, as the CRM holds it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InvalidValue {
    pub record_type: String,
    pub record_id: String,
    pub field: String,
    pub raw: String,
}

/// Cells of CRM rows, row after row, `columns` to a row.
#[derive(Debug, Default)]
pub struct CrmChunk {
    pub columns: usize,
    pub cells: Vec<Option<String>>,
}

impl CrmChunk {
    pub fn rows(&self) -> impl Iterator<Item = &[Option<String>]> {
        self.cells.chunks(self.columns.max(1))
    }

    pub fn len(&self) -> usize {
        self.cells.len() / self.columns.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

/// How a read of the CRM ended.
#[derive(Debug)]
pub enum ReadEnd {
    Done {
        rows: u64,
    },
    /// The receiver went away (the writer failed); its error is the one to report.
    Abandoned,
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

fn insert_sql(d: &Dialect, rows: usize) -> String {
    d.render(&format!(
        "INSERT INTO {{phone_index}} ({}) VALUES {}",
        COLUMNS.join(", "),
        Dialect::value_rows(COLUMNS.len(), rows)
    ))
}

fn state_sql(d: &Dialect, built: bool) -> String {
    let cols: &[&str] = if built {
        &[
            "record_type",
            "built_at",
            "refreshed_at",
            "build_secs",
            "watermark",
            "records",
            "phone_values",
            "valid_values",
            "invalid_values",
            "extension_values",
        ]
    } else {
        &[
            "record_type",
            "refreshed_at",
            "watermark",
            "phone_values",
            "valid_values",
            "invalid_values",
            "extension_values",
        ]
    };
    d.render(&format!(
        "INSERT INTO {{phone_index_state}} ({}) VALUES {}{}",
        cols.join(", "),
        Dialect::value_rows(cols.len(), 1),
        d.upsert(&["record_type"], cols.get(1..).unwrap_or(&[]))
    ))
}

/// Values, valid ones, extensions: `counts_of` reads a row of these.
const COUNTS: &str = "COUNT(*), COUNT(number), COUNT(CASE WHEN number NOT LIKE '+%' THEN 1 END)";

fn counts_of<R: Row>(row: &R) -> Result<IndexCounts, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let n = |i: usize| -> Result<u64, sqlx::Error> { Ok(row.try_get::<i64, _>(i)?.max(0) as u64) };
    let (values, valid, extensions) = (n(0)?, n(1)?, n(2)?);
    Ok(IndexCounts {
        records: 0,
        values,
        valid,
        invalid: values.saturating_sub(valid),
        extensions,
    })
}

macro_rules! bind_row {
    ($q:expr, $kind:expr, $r:expr) => {{
        let r = $r;
        $q.bind($kind)
            .bind(cut(&r.record_id, 191))
            .bind(cut(&r.field, 64))
            .bind(cut(&r.raw, MAX_RAW))
            .bind(r.number.as_deref())
            .bind(r.extension.as_deref())
            .bind(r.display_name.as_deref().map(|n| cut(n, 255)))
    }};
}

impl super::Db {
    /// Streams the rows of a CRM query (every column read as text) to `out` in
    /// chunks of `chunk_rows`, so memory stays bounded whatever the table's size.
    pub async fn read_crm(
        &self,
        sql: &str,
        columns: usize,
        chunk_rows: usize,
        out: mpsc::Sender<CrmChunk>,
    ) -> Result<ReadEnd, sqlx::Error> {
        use futures_util::TryStreamExt;
        let chunk_rows = chunk_rows.max(1);
        let fresh = || CrmChunk {
            columns,
            cells: Vec::with_capacity(columns * chunk_rows),
        };
        let mut rows = 0u64;
        with_pool!(&self.pool, p => {
            let mut stream = sqlx::query(sql).fetch(p);
            let mut chunk = fresh();
            while let Some(row) = stream.try_next().await? {
                for i in 0..columns {
                    chunk.cells.push(row.try_get::<Option<String>, _>(i)?);
                }
                rows += 1;
                if chunk.len() >= chunk_rows {
                    let full = std::mem::replace(&mut chunk, fresh());
                    if out.send(full).await.is_err() {
                        return Ok(ReadEnd::Abandoned);
                    }
                }
            }
            if !chunk.is_empty() && out.send(chunk).await.is_err() {
                return Ok(ReadEnd::Abandoned);
            }
            Ok(ReadEnd::Done { rows })
        })
    }

    /// The first column of the first row as text (`NULL` and no row: `None`).
    pub async fn crm_text(&self, sql: &str) -> Result<Option<String>, sqlx::Error> {
        with_pool!(&self.pool, p => {
            let row = sqlx::query(sql).fetch_optional(p).await?;
            match row {
                Some(r) => r.try_get::<Option<String>, _>(0),
                None => Ok(None),
            }
        })
    }

    /// Runs a CRM query only to see whether the database accepts it.
    pub async fn crm_probe(&self, sql: &str) -> Result<(), sqlx::Error> {
        with_pool!(&self.pool, p => sqlx::query(sql).fetch_optional(p).await.map(|_| ()))
    }

    /// Writes one type's index from `rx` in one transaction: readers see the
    /// old rows until it commits. `None` when `rx` closed without `End` (the
    /// read failed; nothing was changed).
    pub async fn write_phone_index(
        &self,
        record_type: &str,
        mode: WriteMode,
        watermark: Option<&str>,
        started: Instant,
        mut rx: mpsc::Receiver<IndexMsg>,
    ) -> Result<Option<IndexCounts>, DbError> {
        let q = |what: &'static str| move |source| DbError::Query { what, source };
        let d = &self.dialect;
        let per_stmt = Dialect::rows_per_statement(COLUMNS.len());
        let full_sql = insert_sql(d, per_stmt);
        let delete_type = d.render("DELETE FROM {phone_index} WHERE record_type = ?");
        let mut counts = IndexCounts::default();
        let mut pending: Vec<IndexRow> = Vec::with_capacity(per_stmt);
        let mut removed = IndexCounts::default();
        // PostgreSQL's COPY is faster than multi-row INSERTs (see the
        // phone_index bench); the others have nothing like it through sqlx.
        let copy = self.backend() == super::Backend::Postgres;
        let copy_sql = d.render(&format!(
            "COPY {{phone_index}} ({}) FROM STDIN",
            COLUMNS.join(", ")
        ));
        with_pool!(&self.pool, p => {
            let mut tx = p.begin().await.map_err(q("starting the phone index write"))?;
            if mode == WriteMode::Full {
                sqlx::query(&delete_type)
                    .bind(record_type)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("clearing the phone index"))?;
            }
            let records = loop {
                let Some(msg) = rx.recv().await else {
                    return Ok(None);
                };
                let (ids, rows) = match msg {
                    IndexMsg::End { records } => break records,
                    IndexMsg::Batch { record_ids, rows } => (record_ids, rows),
                };
                if mode == WriteMode::Changed {
                    for ids in ids.chunks(per_stmt) {
                        // What goes is subtracted from the type's counts, so a
                        // refresh never has to count the whole index.
                        let sql = d.render(&format!(
                            "SELECT {COUNTS} FROM {{phone_index}} WHERE record_type = ? AND record_id IN ({})",
                            vec!["?"; ids.len()].join(", ")
                        ));
                        let mut sel = sqlx::query(&sql).persistent(false).bind(record_type);
                        for id in ids {
                            sel = sel.bind(cut(id, 191));
                        }
                        let row = sel.fetch_one(&mut *tx).await.map_err(q("counting changed records in the phone index"))?;
                        let gone = counts_of(&row).map_err(q("counting changed records in the phone index"))?;
                        removed.values += gone.values;
                        removed.valid += gone.valid;
                        removed.invalid += gone.invalid;
                        removed.extensions += gone.extensions;
                        let sql = d.render(&format!(
                            "DELETE FROM {{phone_index}} WHERE record_type = ? AND record_id IN ({})",
                            vec!["?"; ids.len()].join(", ")
                        ));
                        let mut del = sqlx::query(&sql).persistent(false).bind(record_type);
                        for id in ids {
                            del = del.bind(cut(id, 191));
                        }
                        del.execute(&mut *tx).await.map_err(q("replacing changed records in the phone index"))?;
                    }
                }
                if copy {
                    let conn: &mut dyn std::any::Any = &mut *tx;
                    if let Some(pg) = conn.downcast_mut::<sqlx::PgConnection>() {
                        for r in &rows {
                            counts.add(r);
                        }
                        copy_rows(pg, &copy_sql, record_type, &rows)
                            .await
                            .map_err(q("copying into the phone index"))?;
                        continue;
                    }
                }
                // Only full statements are prepared and cached: a cached
                // statement of every tail size costs megabytes each.
                pending.extend(rows);
                let full = pending.len() - pending.len() % per_stmt;
                for chunk in pending.get(..full).unwrap_or(&[]).chunks(per_stmt) {
                    let mut ins = sqlx::query(&full_sql);
                    for r in chunk {
                        ins = bind_row!(ins, record_type, r);
                        counts.add(r);
                    }
                    ins.execute(&mut *tx).await.map_err(q("inserting into the phone index"))?;
                }
                pending.drain(..full);
                // A refresh's batch replaces its records now, whole.
                if mode == WriteMode::Changed && !pending.is_empty() {
                    let sql = insert_sql(d, pending.len());
                    let mut ins = sqlx::query(&sql).persistent(false);
                    for r in &pending {
                        counts.add(r);
                        ins = bind_row!(ins, record_type, r);
                    }
                    ins.execute(&mut *tx).await.map_err(q("inserting into the phone index"))?;
                    pending.clear();
                }
            };
            if !pending.is_empty() {
                let sql = insert_sql(d, pending.len());
                let mut ins = sqlx::query(&sql).persistent(false);
                for r in &pending {
                    counts.add(r);
                    ins = bind_row!(ins, record_type, r);
                }
                ins.execute(&mut *tx).await.map_err(q("inserting into the phone index"))?;
            }
            let now = DbTime(Timestamp::now());
            match mode {
                WriteMode::Full => {
                    counts.records = records;
                    sqlx::query(&state_sql(d, true))
                        .bind(record_type)
                        .bind(now)
                        .bind(now)
                        .bind(started.elapsed().as_secs_f64())
                        .bind(watermark)
                        .bind(counts.records as i64)
                        .bind(counts.values as i64)
                        .bind(counts.valid as i64)
                        .bind(counts.invalid as i64)
                        .bind(counts.extensions as i64)
                        .execute(&mut *tx)
                        .await
                        .map_err(q("recording the phone index build"))?;
                }
                WriteMode::Changed => {
                    let sql = d.render(
                        "SELECT phone_values, valid_values, invalid_values, extension_values \
                         FROM {phone_index_state} WHERE record_type = ?",
                    );
                    let before = sqlx::query(&sql)
                        .bind(record_type)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(q("reading the phone index state"))?;
                    let n = |r: &_, i: usize| -> Result<u64, DbError> {
                        let v: i64 = Row::try_get(r, i).map_err(q("reading the phone index state"))?;
                        Ok(v.max(0) as u64)
                    };
                    let (values, valid, invalid, extensions) = match &before {
                        Some(r) => (n(r, 0)?, n(r, 1)?, n(r, 2)?, n(r, 3)?),
                        None => (0, 0, 0, 0),
                    };
                    let after = |old: u64, gone: u64, new: u64| (old.saturating_sub(gone)) + new;
                    counts = IndexCounts {
                        records,
                        values: after(values, removed.values, counts.values),
                        valid: after(valid, removed.valid, counts.valid),
                        invalid: after(invalid, removed.invalid, counts.invalid),
                        extensions: after(extensions, removed.extensions, counts.extensions),
                    };
                    let (values, valid, extensions) = (counts.values, counts.valid, counts.extensions);
                    sqlx::query(&state_sql(d, false))
                        .bind(record_type)
                        .bind(now)
                        .bind(watermark)
                        .bind(values as i64)
                        .bind(valid as i64)
                        .bind(counts.invalid as i64)
                        .bind(extensions as i64)
                        .execute(&mut *tx)
                        .await
                        .map_err(q("recording the phone index refresh"))?;
                }
            }
            tx.commit().await.map_err(q("committing the phone index"))?;
            Ok(Some(counts))
        })
    }

    /// Every type's index state, by type.
    pub async fn phone_index_state(&self) -> Result<Vec<IndexState>, DbError> {
        let q = |source| DbError::Query {
            what: "reading the phone index state",
            source,
        };
        let sql = self.sql(
            "SELECT record_type, built_at, refreshed_at, build_secs, watermark, records, \
             phone_values, valid_values, invalid_values, extension_values \
             FROM {phone_index_state} ORDER BY record_type",
        );
        with_pool!(&self.pool, p => {
            let rows = sqlx::query(&sql).fetch_all(p).await.map_err(q)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let n = |i: usize| -> Result<u64, sqlx::Error> {
                    Ok(r.try_get::<i64, _>(i)?.max(0) as u64)
                };
                out.push(IndexState {
                    record_type: r.try_get(0).map_err(q)?,
                    built_at: r.try_get::<Option<DbTime>, _>(1).map_err(q)?.map(|t| t.0),
                    refreshed_at: r.try_get::<Option<DbTime>, _>(2).map_err(q)?.map(|t| t.0),
                    build_secs: r.try_get(3).map_err(q)?,
                    watermark: r.try_get(4).map_err(q)?,
                    counts: IndexCounts {
                        records: n(5).map_err(q)?,
                        values: n(6).map_err(q)?,
                        valid: n(7).map_err(q)?,
                        invalid: n(8).map_err(q)?,
                        extensions: n(9).map_err(q)?,
                    },
                });
            }
            Ok(out)
        })
    }

    /// Up to `limit` values that are not valid numbers, by type and record.
    pub async fn phone_index_invalid(&self, limit: u32) -> Result<Vec<InvalidValue>, DbError> {
        let q = |source| DbError::Query {
            what: "listing invalid phone values",
            source,
        };
        let sql = self.sql(&format!(
            "SELECT record_type, record_id, field, raw FROM {{phone_index}} \
             WHERE number IS NULL ORDER BY record_type, record_id, field LIMIT {limit}"
        ));
        with_pool!(&self.pool, p => {
            let rows = sqlx::query(&sql).fetch_all(p).await.map_err(q)?;
            rows.iter()
                .map(|r| {
                    Ok(InvalidValue {
                        record_type: r.try_get(0)?,
                        record_id: r.try_get(1)?,
                        field: r.try_get(2)?,
                        raw: r.try_get(3)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(q)
        })
    }

    /// Drops the index rows and state of every type not in `keep` (a type
    /// taken out of the config must not be matched any more).
    pub async fn phone_index_retain(&self, keep: &[&str]) -> Result<u64, DbError> {
        let q = |source| DbError::Query {
            what: "dropping unconfigured types from the phone index",
            source,
        };
        let cond = if keep.is_empty() {
            String::new()
        } else {
            format!(
                " WHERE record_type NOT IN ({})",
                vec!["?"; keep.len()].join(", ")
            )
        };
        let rows_sql = self.sql(&format!("DELETE FROM {{phone_index}}{cond}"));
        let state_sql = self.sql(&format!("DELETE FROM {{phone_index_state}}{cond}"));
        with_pool!(&self.pool, p => {
            let mut tx = p.begin().await.map_err(q)?;
            let mut del = sqlx::query(&rows_sql);
            for k in keep {
                del = del.bind(*k);
            }
            let gone = del.execute(&mut *tx).await.map_err(q)?.rows_affected();
            let mut del = sqlx::query(&state_sql);
            for k in keep {
                del = del.bind(*k);
            }
            del.execute(&mut *tx).await.map_err(q)?;
            tx.commit().await.map_err(q)?;
            Ok(gone)
        })
    }
}
