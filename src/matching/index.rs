//! The phone index: every phone value of the configured CRM records,
//! normalised once, so matching a call is one indexed lookup.
//!
//! A build streams a type's CRM rows (reader), normalises them on every core
//! (normaliser thread), and writes them in one transaction (writer); the three
//! run at once, linked by small bounded channels, so memory stays at a few
//! chunks whatever the table's size.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::phone::{parse_crm_phone, PhoneRules, PhoneValue};
use crate::config::{Config, CrmRecord};
use crate::db::{
    CrmChunk, Db, DbError, IndexCounts, IndexMsg, IndexRow, IndexState, InvalidValue, ReadEnd,
    WriteMode,
};

/// CRM rows per chunk handed between reader, normaliser and writer.
mod normalise;
mod render;
use normalise::Normalise;
pub use render::{render_report, render_stats};

const CHUNK_ROWS: usize = 8192;
/// Chunks waiting in each channel: with the ones being worked on, the peak is
/// about 3 raw chunks and 3 normalised ones.
const CHANNEL_CHUNKS: usize = 2;
/// Normaliser threads at most, however many cores there are.
const MAX_THREADS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("crm.records[{index}] (type {kind:?}): cannot read table {table:?}: {source}")]
    Table {
        index: usize,
        kind: String,
        table: String,
        #[source]
        source: Box<sqlx::Error>,
    },
    #[error("crm.records[{index}] (type {kind:?}, table {table:?}): {key} = {column:?} cannot be read: {source}")]
    Column {
        index: usize,
        kind: String,
        table: String,
        /// The config key, e.g. `phones[1]`.
        key: String,
        column: String,
        #[source]
        source: Box<sqlx::Error>,
    },
    #[error(
        "crm.records[{index}] (type {kind:?}, table {table:?}): reading its rows failed: {source}"
    )]
    Read {
        index: usize,
        kind: String,
        table: String,
        #[source]
        source: Box<sqlx::Error>,
    },
    #[error("phone index of type {kind:?}: {source}")]
    Write {
        kind: String,
        #[source]
        source: DbError,
    },
    #[error("no [[crm.records]] entry has type {kind:?}")]
    UnknownType { kind: String },
    #[error("record id {id:?} cannot be looked up (quotes and backslashes are not allowed)")]
    UnsafeId { id: String },
    #[error("pbx.default_country or pbx.extension_pattern is not usable")]
    Rules,
    #[error("the phone normaliser thread stopped unexpectedly")]
    Normaliser,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl IndexError {
    /// The database was away rather than the config wrong: try again later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            IndexError::Db(e) | IndexError::Write { source: e, .. } => e.is_unavailable(),
            IndexError::Read { source, .. } => unavailable(source),
            _ => false,
        }
    }
}

fn unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildMode {
    /// Every row of the type was read again.
    Full,
    /// Only rows changed since the last look were read.
    Refresh,
    /// Nothing to do (no `updated_at` column; waits for the next rebuild).
    Skipped,
}

/// What one build or refresh of one type did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TypeReport {
    pub record_type: String,
    pub mode: BuildMode,
    /// For a refresh, `records` counts the changed records read and the rest
    /// the whole type's index afterwards.
    pub counts: IndexCounts,
    pub secs: f64,
}

/// What `pbxbridge index stats` shows.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IndexStats {
    pub types: Vec<IndexState>,
    /// Up to the limit asked for.
    pub invalid: Vec<InvalidValue>,
}

/// One configured type, ready to read.
struct Plan<'a> {
    index: usize,
    rec: &'a CrmRecord,
    rules: &'a PhoneRules,
}

fn rules(cfg: &Config) -> Result<PhoneRules, IndexError> {
    PhoneRules::from_config(&cfg.pbx).ok_or(IndexError::Rules)
}

fn find<'a>(cfg: &'a Config, kind: &str) -> Result<(usize, &'a CrmRecord), IndexError> {
    cfg.crm
        .records
        .iter()
        .enumerate()
        .find(|(_, r)| r.kind == kind)
        .ok_or_else(|| IndexError::UnknownType { kind: kind.into() })
}

/// Opens the database for index work: a build reads the CRM on one
/// connection while it writes the index on another, so at least two.
pub async fn connect(cfg: &Config) -> Result<Db, DbError> {
    let mut target = crate::db::DbTarget::from_config(cfg);
    target.opts.max_connections = target.opts.max_connections.max(2);
    target.connect().await
}

/// Builds every configured type in full and drops types no longer configured.
/// Every type is attempted; the first error is returned after the others ran.
pub async fn build_all(db: &Db, cfg: &Config) -> Result<Vec<TypeReport>, IndexError> {
    first_error(build_each(db, cfg).await)
}

/// Like [`build_all`], with each type's own result (the daemon keeps going
/// with the types that work).
pub async fn build_each(db: &Db, cfg: &Config) -> Vec<Result<TypeReport, IndexError>> {
    let keep: Vec<&str> = cfg.crm.records.iter().map(|r| r.kind.as_str()).collect();
    if let Err(e) = db.phone_index_retain(&keep).await {
        return vec![Err(e.into())];
    }
    let rules = match rules(cfg) {
        Ok(r) => r,
        Err(e) => return vec![Err(e)],
    };
    let mut out = Vec::with_capacity(cfg.crm.records.len());
    for (index, rec) in cfg.crm.records.iter().enumerate() {
        let plan = Plan {
            index,
            rec,
            rules: &rules,
        };
        out.push(build(db, &plan).await);
    }
    out
}

/// Builds one type (`crm.records[].type`) in full.
pub async fn build_type(db: &Db, cfg: &Config, kind: &str) -> Result<TypeReport, IndexError> {
    let (index, rec) = find(cfg, kind)?;
    let rules = rules(cfg)?;
    build(
        db,
        &Plan {
            index,
            rec,
            rules: &rules,
        },
    )
    .await
}

/// Reads one record's phone values fresh from the CRM and replaces its index
/// rows, so `match-past-calls` on a record just created or edited does not
/// wait for the next refresh. The type's watermark and build time stay.
pub async fn reindex_record(
    db: &Db,
    cfg: &Config,
    kind: &str,
    id: &str,
) -> Result<TypeReport, IndexError> {
    let started = Instant::now();
    let (index, rec) = find(cfg, kind)?;
    let rules = rules(cfg)?;
    let plan = Plan {
        index,
        rec,
        rules: &rules,
    };
    // Index rows are written only for types built before: a first build
    // reads the whole table anyway.
    let state = db
        .phone_index_state()
        .await?
        .into_iter()
        .find(|s| s.record_type == kind);
    let Some(state) = state.filter(|s| s.built_at.is_some()) else {
        return build(db, &plan).await;
    };
    if !safe_literal(id) {
        return Err(IndexError::UnsafeId { id: id.into() });
    }
    // A literal, not a bound text parameter: it takes the id column's own type.
    let cond = format!("{} = '{id}'", db.dialect().quote(&rec.id));
    run(
        db,
        &plan,
        Some(&cond),
        WriteMode::Changed,
        state.watermark.as_deref(),
        started,
    )
    .await
}

/// Reads what changed since the last look, for every type with `updated_at`
/// (a type never built is built in full).
pub async fn refresh(db: &Db, cfg: &Config) -> Result<Vec<TypeReport>, IndexError> {
    first_error(refresh_each(db, cfg).await)
}

pub async fn refresh_each(db: &Db, cfg: &Config) -> Vec<Result<TypeReport, IndexError>> {
    fresh_each(db, cfg, None).await
}

/// Whatever makes the index current: a full build of a type never built or
/// built longer than `crm.rebuild_secs` ago, else an incremental refresh.
pub async fn ensure_fresh(db: &Db, cfg: &Config) -> Result<Vec<TypeReport>, IndexError> {
    first_error(ensure_fresh_each(db, cfg).await)
}

pub async fn ensure_fresh_each(db: &Db, cfg: &Config) -> Vec<Result<TypeReport, IndexError>> {
    fresh_each(db, cfg, Some(Duration::from_secs(cfg.crm.rebuild_secs))).await
}

/// The state of every type and up to `limit` invalid values.
pub async fn stats(db: &Db, limit: u32) -> Result<IndexStats, IndexError> {
    Ok(IndexStats {
        types: db.phone_index_state().await?,
        invalid: db.phone_index_invalid(limit).await?,
    })
}

fn first_error(
    results: Vec<Result<TypeReport, IndexError>>,
) -> Result<Vec<TypeReport>, IndexError> {
    let mut reports = Vec::with_capacity(results.len());
    let mut first = None;
    for r in results {
        match r {
            Ok(r) => reports.push(r),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(reports),
    }
}

async fn fresh_each(
    db: &Db,
    cfg: &Config,
    rebuild_after: Option<Duration>,
) -> Vec<Result<TypeReport, IndexError>> {
    let rules = match rules(cfg) {
        Ok(r) => r,
        Err(e) => return vec![Err(e)],
    };
    let states: HashMap<String, IndexState> = match db.phone_index_state().await {
        Ok(s) => s.into_iter().map(|s| (s.record_type.clone(), s)).collect(),
        Err(e) => return vec![Err(e.into())],
    };
    let now = crate::time::Timestamp::now();
    let mut out = Vec::with_capacity(cfg.crm.records.len());
    for (index, rec) in cfg.crm.records.iter().enumerate() {
        let plan = Plan {
            index,
            rec,
            rules: &rules,
        };
        let state = states.get(&rec.kind);
        let built_at = state.and_then(|s| s.built_at);
        let stale = match (built_at, rebuild_after) {
            (None, _) => true,
            (Some(t), Some(after)) => {
                now.micros_since(t) >= i64::try_from(after.as_micros()).unwrap_or(i64::MAX)
            }
            (Some(_), None) => false,
        };
        let result = if stale {
            build(db, &plan).await
        } else {
            match (&rec.updated_at, state) {
                (Some(col), Some(s)) => refresh_type(db, &plan, col, s.watermark.as_deref()).await,
                _ => Ok(TypeReport {
                    record_type: rec.kind.clone(),
                    mode: BuildMode::Skipped,
                    counts: state.map(|s| s.counts).unwrap_or_default(),
                    secs: 0.0,
                }),
            }
        };
        out.push(result);
    }
    out
}

/// The columns every read selects: id, each phone, the name, all as text.
fn select_list(db: &Db, rec: &CrmRecord) -> (String, usize) {
    let d = db.dialect();
    let mut cols = vec![d.cast_text(&d.quote(&rec.id))];
    cols.extend(rec.phones.iter().map(|p| d.cast_text(&d.quote(p))));
    cols.push(match &rec.name {
        Some(expr) => d.cast_text(&format!("({expr})")),
        None => "NULL".into(),
    });
    let n = cols.len();
    (cols.join(", "), n)
}

/// A watermark is put into SQL as a string literal; one that could end the
/// literal is not used (the caller builds in full instead).
fn safe_literal(w: &str) -> bool {
    !w.contains('\'') && !w.contains('\\') && w.len() <= 64
}

/// The newest `column` value as text, to be the next watermark; `None` when
/// the table is empty or the value could not be used as a literal.
async fn newest(db: &Db, plan: &Plan<'_>, column: &str) -> Result<Option<String>, IndexError> {
    let d = db.dialect();
    let sql = format!(
        "SELECT {} FROM {}",
        d.cast_text(&format!("MAX({})", d.quote(column))),
        d.quote_path(&plan.rec.table)
    );
    match db.crm_text(&sql).await {
        Ok(w) => Ok(w.filter(|w| safe_literal(w))),
        Err(e) => Err(diagnose(db, plan, e).await),
    }
}

async fn build(db: &Db, plan: &Plan<'_>) -> Result<TypeReport, IndexError> {
    let started = Instant::now();
    let watermark = match &plan.rec.updated_at {
        Some(col) => newest(db, plan, col).await?,
        None => None,
    };
    run(
        db,
        plan,
        None,
        WriteMode::Full,
        watermark.as_deref(),
        started,
    )
    .await
}

async fn refresh_type(
    db: &Db,
    plan: &Plan<'_>,
    column: &str,
    watermark: Option<&str>,
) -> Result<TypeReport, IndexError> {
    if watermark.is_some_and(|w| !safe_literal(w)) {
        return build(db, plan).await;
    }
    let started = Instant::now();
    let next = newest(db, plan, column).await?;
    let col = db.dialect().quote(column);
    // The literal lets the database read the text as the column's own type
    // (a bound text parameter would not compare with a PostgreSQL timestamp).
    let cond = match watermark {
        Some(w) => format!("{col} >= '{w}'"),
        None => format!("{col} IS NOT NULL"),
    };
    let keep = next.as_deref().or(watermark);
    run(db, plan, Some(&cond), WriteMode::Changed, keep, started).await
}

/// Reader, normaliser and writer of one type, all at once: the rows of its
/// table that meet `cond` (all of them when `None`).
async fn run(
    db: &Db,
    plan: &Plan<'_>,
    cond: Option<&str>,
    mode: WriteMode,
    watermark: Option<&str>,
    started: Instant,
) -> Result<TypeReport, IndexError> {
    let (list, columns) = select_list(db, plan.rec);
    let table = db.dialect().quote_path(&plan.rec.table);
    let sql = match cond {
        Some(cond) => format!("SELECT {list} FROM {table} WHERE {cond}"),
        None => format!("SELECT {list} FROM {table}"),
    };
    let sql = sql.as_str();
    let (raw_tx, raw_rx) = mpsc::channel::<CrmChunk>(CHANNEL_CHUNKS);
    let (out_tx, out_rx) = mpsc::channel::<IndexMsg>(CHANNEL_CHUNKS);
    let (end_tx, end_rx) = oneshot::channel::<u64>();
    let job = Normalise {
        fields: plan.rec.phones.clone(),
        rules: plan.rules.clone(),
        agent: plan.rec.is_agent(),
    };
    let normaliser = tokio::task::spawn_blocking(move || job.run(raw_rx, end_rx, out_tx));
    let reader = async {
        let end = db.read_crm(sql, columns, CHUNK_ROWS, raw_tx).await;
        if let Ok(ReadEnd::Done { rows }) = &end {
            let _ = end_tx.send(*rows);
        }
        end
    };
    let writer = db.write_phone_index(&plan.rec.kind, mode, watermark, started, out_rx);
    let (read, written) = tokio::join!(reader, writer);
    let normalised = normaliser.await;
    if let Err(e) = read {
        return Err(diagnose(db, plan, e).await);
    }
    let written = written.map_err(|source| IndexError::Write {
        kind: plan.rec.kind.clone(),
        source,
    })?;
    match (written, normalised) {
        (Some(counts), Ok(())) => Ok(TypeReport {
            record_type: plan.rec.kind.clone(),
            mode: match mode {
                WriteMode::Full => BuildMode::Full,
                WriteMode::Changed => BuildMode::Refresh,
            },
            counts,
            secs: started.elapsed().as_secs_f64(),
        }),
        _ => Err(IndexError::Normaliser),
    }
}

/// Names the table or column the database refused, by probing each in turn.
async fn diagnose(db: &Db, plan: &Plan<'_>, source: sqlx::Error) -> IndexError {
    let (index, rec) = (plan.index, plan.rec);
    let kind = rec.kind.clone();
    let table = rec.table.clone();
    if unavailable(&source) {
        return IndexError::Db(DbError::Query {
            what: "reading the CRM",
            source,
        });
    }
    let d = db.dialect();
    let from = d.quote_path(&rec.table);
    if let Err(e) = db
        .crm_probe(&format!("SELECT 1 FROM {from} WHERE 1 = 0"))
        .await
    {
        return IndexError::Table {
            index,
            kind,
            table,
            source: Box::new(e),
        };
    }
    let mut columns: Vec<(String, String, String)> =
        vec![("id".into(), rec.id.clone(), d.quote(&rec.id))];
    for (j, p) in rec.phones.iter().enumerate() {
        columns.push((format!("phones[{j}]"), p.clone(), d.quote(p)));
    }
    if let Some(u) = &rec.updated_at {
        columns.push(("updated_at".into(), u.clone(), d.quote(u)));
    }
    if let Some(n) = &rec.name {
        columns.push(("name".into(), n.clone(), d.cast_text(&format!("({n})"))));
    }
    for (key, column, expr) in columns {
        if let Err(e) = db
            .crm_probe(&format!("SELECT {expr} FROM {from} WHERE 1 = 0"))
            .await
        {
            return IndexError::Column {
                index,
                kind,
                table,
                key,
                column,
                source: Box::new(e),
            };
        }
    }
    IndexError::Read {
        index,
        kind,
        table,
        source: Box::new(source),
    }
}
