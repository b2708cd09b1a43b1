//! Matching finished calls to CRM records, a batch at a time: one
//! `{phone_index}` lookup for every number of the batch, then the configured
//! relations level by level (one query per relation and level, ids in IN
//! lists), then one `write_calls`.
//!
//! A lookup that fails fails the batch (it stays in the outbox and is retried);
//! a relation that the CRM's schema refuses (a bad column or filter) is logged
//! and counted, and the calls are written without what it would have added: a
//! config mistake must never hold back every call record.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Row;

use crate::config::{CrmConfig, CrmRecord, CrmRelation};
use crate::db::{
    with_pool, Backend, CallWrite, Db, DbError, Dialect, LinkSource, NewLink, WriteSummary,
};
use crate::report::CallReport;

/// Relations are followed this many hops from a matched record
/// (contact → account → deals is two).
pub const MAX_DEPTH: usize = 3;
/// Links one call may get; a relation that names more records than this (an
/// account with every deal ever made) is cut off with a warning.
pub const MAX_LINKS_PER_CALL: usize = 5_000;
/// Edges the relation lookups of one batch may collect; past this the
/// deeper levels are not followed.
pub const MAX_EDGES_PER_BATCH: usize = 200_000;
/// Ids per IN list in a CRM query.
const IDS_PER_QUERY: usize = 500;
/// Numbers per IN list in a `{phone_index}` lookup.
const NUMBERS_PER_QUERY: usize = 1_000;

/// A record whose phone value equals a number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Hit {
    record_type: String,
    record_id: String,
    field: String,
    display_name: Option<String>,
}

/// A record reached from another through a relation.
#[derive(Clone, Debug)]
struct Edge {
    to: Node,
    /// The relation's column (or foreign key) that leads there.
    field: String,
    display_name: Option<String>,
}

type Node = (String, String);

/// Matches calls with one CRM configuration; cheap to share between tasks.
#[derive(Debug)]
pub struct Linker {
    crm: CrmConfig,
    relation_errors: AtomicU64,
}

impl Linker {
    pub fn new(crm: &CrmConfig) -> Linker {
        Linker {
            crm: crm.clone(),
            relation_errors: AtomicU64::new(0),
        }
    }

    /// The configured record types by name.
    fn types(&self) -> HashMap<&str, &CrmRecord> {
        self.crm
            .records
            .iter()
            .map(|r| (r.kind.as_str(), r))
            .collect()
    }

    /// Relation queries the CRM refused since start.
    pub fn relation_errors(&self) -> u64 {
        self.relation_errors.load(Ordering::Relaxed)
    }

    /// Matches the batch and writes it, calls and links in one transaction.
    pub async fn write(
        &self,
        db: &Db,
        sensor: &str,
        reports: &[CallReport],
    ) -> Result<WriteSummary, DbError> {
        let writes = self.match_calls(db, reports).await?;
        db.write_calls(sensor, &writes).await
    }

    /// The screen-pop's lookup at ring time: the records holding `other`
    /// (type, id, display name) and the CRM id of the agent whose extension
    /// is `agent`. One indexed query, no relations.
    pub async fn ring_lookup(
        &self,
        db: &Db,
        other: Option<&str>,
        agent: Option<&str>,
    ) -> Result<(Vec<(String, String, Option<String>)>, Option<String>), DbError> {
        let types = self.types();
        let numbers: Vec<&str> = other.into_iter().chain(agent).collect();
        if types.is_empty() || numbers.is_empty() {
            return Ok((Vec::new(), None));
        }
        let hits = lookup(db, &numbers, &types).await?;
        let mut seen = HashSet::new();
        let found = other
            .and_then(|n| hits.get(n))
            .into_iter()
            .flatten()
            .filter(|h| seen.insert((h.record_type.clone(), h.record_id.clone())))
            .map(|h| {
                (
                    h.record_type.clone(),
                    h.record_id.clone(),
                    h.display_name.clone(),
                )
            })
            .collect();
        let agent_id = agent_hit(&hits, &types, agent).map(|h| h.record_id.clone());
        Ok((found, agent_id))
    }

    /// What each call links to: the records holding its other party's number,
    /// the agent's user record, and the records related to the matches.
    pub async fn match_calls<'a>(
        &self,
        db: &Db,
        reports: &'a [CallReport],
    ) -> Result<Vec<CallWrite<'a>>, DbError> {
        let types = self.types();
        if types.is_empty() {
            return Ok(reports.iter().map(CallWrite::unmatched).collect());
        }
        let mut numbers: BTreeSet<&str> = BTreeSet::new();
        for r in reports {
            numbers.extend(r.other_number());
            numbers.extend(r.agent.as_deref());
        }
        let numbers: Vec<&str> = numbers.into_iter().collect();
        let hits = lookup(db, &numbers, &types).await?;

        let mut writes: Vec<CallWrite<'a>> = Vec::with_capacity(reports.len());
        let mut direct: BTreeSet<Node> = BTreeSet::new();
        for r in reports {
            let mut w = CallWrite::unmatched(r);
            let mut seen: HashSet<Node> = HashSet::new();
            for h in r
                .other_number()
                .and_then(|n| hits.get(n))
                .into_iter()
                .flatten()
            {
                if seen.insert((h.record_type.clone(), h.record_id.clone())) {
                    direct.insert((h.record_type.clone(), h.record_id.clone()));
                    w.links.push(auto_link(h));
                }
            }
            if let Some(h) = agent_hit(&hits, &types, r.agent.as_deref()) {
                w.agent = Some((
                    h.record_type.clone(),
                    h.record_id.clone(),
                    h.display_name.clone(),
                ));
                if seen.insert((h.record_type.clone(), h.record_id.clone())) {
                    w.links.push(auto_link(h));
                }
            }
            writes.push(w);
        }
        if self.crm.relations.is_empty() || direct.is_empty() {
            return Ok(writes);
        }

        let edges = self.follow_relations(db, direct, reports).await?;
        for w in &mut writes {
            add_related(w, &edges);
        }
        Ok(writes)
    }

    /// Every edge out of the records reachable within `MAX_DEPTH` hops of
    /// `start`, level by level over the whole batch.
    async fn follow_relations(
        &self,
        db: &Db,
        start: BTreeSet<Node>,
        reports: &[CallReport],
    ) -> Result<HashMap<Node, Vec<Edge>>, DbError> {
        let mut edges: HashMap<Node, Vec<Edge>> = HashMap::new();
        let mut expanded: HashSet<Node> = HashSet::new();
        let mut failed: HashSet<usize> = HashSet::new();
        let mut frontier = start;
        let mut edge_count = 0usize;
        for _level in 0..MAX_DEPTH {
            if frontier.is_empty() {
                break;
            }
            if edge_count >= MAX_EDGES_PER_BATCH {
                tracing::warn!(
                    edges = edge_count,
                    calls = reports.len(),
                    "related records of this batch exceed the limit; deeper relations are not followed"
                );
                break;
            }
            let mut by_type: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (t, id) in &frontier {
                by_type.entry(t.as_str()).or_default().push(id.as_str());
            }
            let mut next: BTreeSet<Node> = BTreeSet::new();
            for (i, rel) in self.crm.relations.iter().enumerate() {
                let Some(ids) = by_type.get(rel.from.as_str()) else {
                    continue;
                };
                if failed.contains(&i) {
                    continue;
                }
                match self.related(db, rel, ids).await {
                    Ok(found) => {
                        edge_count += found.len();
                        for (from_id, edge) in found {
                            if !expanded.contains(&edge.to) && !frontier.contains(&edge.to) {
                                next.insert(edge.to.clone());
                            }
                            edges
                                .entry((rel.from.clone(), from_id))
                                .or_default()
                                .push(edge);
                        }
                    }
                    Err(e) if e.is_unavailable() => return Err(e),
                    Err(e) => {
                        failed.insert(i);
                        self.relation_errors.fetch_add(1, Ordering::Relaxed);
                        let call_ids: Vec<&str> = reports
                            .iter()
                            .map(|r| r.call_id.as_str())
                            .take(20)
                            .collect();
                        tracing::error!(
                            error = %e,
                            relation = %format!("crm.relations[{i}]"),
                            from = %rel.from,
                            to = %rel.to,
                            column = rel.column.as_deref().or(rel.foreign_key.as_deref()).unwrap_or("-"),
                            filter = rel.filter.as_deref().unwrap_or("-"),
                            calls = reports.len(),
                            call_ids = ?call_ids,
                            "the CRM refused a relation query; these calls are written without its related links"
                        );
                    }
                }
            }
            expanded.extend(std::mem::take(&mut frontier));
            frontier = next;
        }
        Ok(edges)
    }

    /// `(from id, edge)` for every `to` record related to one of `ids`.
    async fn related(
        &self,
        db: &Db,
        rel: &CrmRelation,
        ids: &[&str],
    ) -> Result<Vec<(String, Edge)>, DbError> {
        let (Some(from), Some(to)) = (self.record(&rel.from), self.record(&rel.to)) else {
            return Ok(Vec::new());
        };
        let d = db.dialect();
        let mut out = Vec::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let sql = relation_sql(d, rel, from, to, chunk);
            let q = |source| DbError::Query {
                what: "following a CRM relation",
                source,
            };
            let rows: Vec<(Option<String>, Option<String>, Option<String>)> = with_pool!(db.pool(), p => {
                let rows = sqlx::query(&sql).fetch_all(p).await.map_err(q)?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(q)?
            });
            let field = rel
                .column
                .clone()
                .or_else(|| rel.foreign_key.clone())
                .unwrap_or_default();
            for (from_id, to_id, name) in rows {
                if let (Some(from_id), Some(to_id)) = (from_id, to_id) {
                    out.push((
                        from_id,
                        Edge {
                            to: (rel.to.clone(), to_id),
                            field: field.clone(),
                            display_name: name,
                        },
                    ));
                }
            }
        }
        Ok(out)
    }

    fn record(&self, kind: &str) -> Option<&CrmRecord> {
        self.crm.records.iter().find(|r| r.kind == kind)
    }
}

fn auto_link(h: &Hit) -> NewLink {
    NewLink {
        record_type: h.record_type.clone(),
        record_id: h.record_id.clone(),
        field: Some(h.field.clone()),
        source: LinkSource::Auto,
        via: None,
        display_name: h.display_name.clone(),
    }
}

/// Adds the records related to this call's direct matches, breadth first, each
/// once, at most `MAX_DEPTH` hops away.
fn add_related(w: &mut CallWrite<'_>, edges: &HashMap<Node, Vec<Edge>>) {
    let mut seen: HashSet<Node> = w
        .links
        .iter()
        .map(|l| (l.record_type.clone(), l.record_id.clone()))
        .collect();
    let mut frontier: Vec<Node> = w
        .links
        .iter()
        .filter(|l| l.source == LinkSource::Auto && l.via.is_none())
        .filter(|l| {
            w.agent
                .as_ref()
                .is_none_or(|a| a.0 != l.record_type || a.1 != l.record_id)
        })
        .map(|l| (l.record_type.clone(), l.record_id.clone()))
        .collect();
    let mut cut = false;
    for _ in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for from in &frontier {
            for e in edges.get(from).into_iter().flatten() {
                if seen.contains(&e.to) {
                    continue;
                }
                if w.links.len() >= MAX_LINKS_PER_CALL {
                    cut = true;
                    break;
                }
                seen.insert(e.to.clone());
                w.links.push(NewLink {
                    record_type: e.to.0.clone(),
                    record_id: e.to.1.clone(),
                    field: Some(e.field.clone()),
                    source: LinkSource::Auto,
                    via: Some(from.clone()),
                    display_name: e.display_name.clone(),
                });
                next.push(e.to.clone());
            }
        }
        frontier = next;
    }
    if cut {
        tracing::warn!(
            call_id = %w.report.call_id,
            limit = MAX_LINKS_PER_CALL,
            "the call's related records exceed the link limit; the rest are not linked"
        );
    }
}

/// The records whose phone values are among `numbers`, by number; one query
/// per `NUMBERS_PER_QUERY` numbers. Types no longer configured are skipped.
/// The agent's own record among the hits for its extension: one of a type
/// that holds agents (users).
fn agent_hit<'h>(
    hits: &'h HashMap<String, Vec<Hit>>,
    types: &HashMap<&str, &CrmRecord>,
    agent: Option<&str>,
) -> Option<&'h Hit> {
    agent
        .and_then(|a| hits.get(a))
        .into_iter()
        .flatten()
        .find(|h| {
            types
                .get(h.record_type.as_str())
                .is_some_and(|t| t.is_agent())
        })
}

async fn lookup(
    db: &Db,
    numbers: &[&str],
    types: &HashMap<&str, &CrmRecord>,
) -> Result<HashMap<String, Vec<Hit>>, DbError> {
    let mut hits: HashMap<String, Vec<Hit>> = HashMap::new();
    let q = |source| DbError::Query {
        what: "looking numbers up in the phone index",
        source,
    };
    for chunk in numbers.chunks(NUMBERS_PER_QUERY) {
        let sql = db.sql(&format!(
            "SELECT number, record_type, record_id, field, display_name FROM {{phone_index}} \
             WHERE number IN ({})",
            vec!["?"; chunk.len()].join(", ")
        ));
        let rows: Vec<(String, Hit)> = with_pool!(db.pool(), p => {
            let mut query = sqlx::query(&sql);
            for n in chunk {
                query = query.bind(*n);
            }
            let rows = query.fetch_all(p).await.map_err(q)?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get(0)?,
                        Hit {
                            record_type: r.try_get(1)?,
                            record_id: r.try_get(2)?,
                            field: r.try_get(3)?,
                            display_name: r.try_get(4)?,
                        },
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(q)?
        });
        for (number, hit) in rows {
            if types.contains_key(hit.record_type.as_str()) {
                hits.entry(number).or_default().push(hit);
            }
        }
    }
    for v in hits.values_mut() {
        // The index's row order is arbitrary; links and the agent choice are not.
        v.sort();
    }
    Ok(hits)
}

/// One relation's lookup for a list of `from` ids. The `to` table's filter and
/// name are written against its own columns, so they go in a subquery where
/// no column of the `from` table can make them ambiguous.
fn relation_sql(
    d: &Dialect,
    rel: &CrmRelation,
    from: &CrmRecord,
    to: &CrmRecord,
    ids: &[&str],
) -> String {
    let list = ids
        .iter()
        .map(|id| literal(d.backend, id))
        .collect::<Vec<_>>()
        .join(", ");
    let name = match &to.name {
        Some(n) => d.cast_text(&format!("({n})")),
        None => d.cast_text("NULL"),
    };
    let filter = rel
        .filter
        .as_ref()
        .map(|f| format!(" WHERE ({f})"))
        .unwrap_or_default();
    match (&rel.column, &rel.foreign_key) {
        (Some(col), _) => format!(
            "SELECT {}, {}, t.pbx_name FROM {} f JOIN (SELECT {} AS pbx_id, {name} AS pbx_name FROM {}{filter}) t ON t.pbx_id = f.{} WHERE f.{} IN ({list})",
            d.cast_text(&format!("f.{}", d.quote(&from.id))),
            d.cast_text("t.pbx_id"),
            d.quote_path(&from.table),
            d.quote(&to.id),
            d.quote_path(&to.table),
            d.quote(col),
            d.quote(&from.id),
        ),
        (None, Some(fk)) => format!(
            "SELECT {}, {}, {name} FROM {} WHERE {} IN ({list}){}",
            d.cast_text(&d.quote(fk)),
            d.cast_text(&d.quote(&to.id)),
            d.quote_path(&to.table),
            d.quote(fk),
            rel.filter
                .as_ref()
                .map(|f| format!(" AND ({f})"))
                .unwrap_or_default(),
        ),
        // The config refuses a relation with neither.
        (None, None) => format!("SELECT NULL, NULL, NULL FROM {} WHERE 1 = 0", d.quote_path(&to.table)),
    }
}

/// A CRM id as an SQL string literal. Ids are not bound as parameters because
/// the CRM's key columns may be of any type: an untyped literal takes the
/// column's type on every backend, while PostgreSQL refuses to compare an
/// integer column with a text parameter. MySQL also treats `\` as an escape.
pub(crate) fn literal(backend: Backend, s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if backend == Backend::MySql => out.push_str("\\\\"),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_cannot_close_the_string() {
        assert_eq!(literal(Backend::Postgres, "a'b"), "'a''b'");
        assert_eq!(literal(Backend::MySql, "a\\'"), "'a\\\\'''");
        assert_eq!(literal(Backend::Sqlite, "a\\"), "'a\\'");
    }

    #[test]
    fn relation_queries_keep_the_to_filter_on_its_own_table() {
        let d = Dialect::new(Backend::Postgres, "", None);
        let rec = |kind: &str, table: &str, name: Option<&str>| CrmRecord {
            kind: kind.into(),
            table: table.into(),
            id: "id".into(),
            phones: vec![],
            name: name.map(str::to_owned),
            updated_at: None,
            agent: None,
            status_column: None,
            status_values: vec![],
        };
        let contact = rec("contact", "contacts", None);
        let account = rec("account", "accounts", Some("name"));
        let rel = CrmRelation {
            from: "contact".into(),
            to: "account".into(),
            column: Some("account_id".into()),
            foreign_key: None,
            filter: Some("active = 1".into()),
        };
        let sql = relation_sql(&d, &rel, &contact, &account, &["1", "2"]);
        assert_eq!(
            sql,
            "SELECT CAST(f.\"id\" AS TEXT), CAST(t.pbx_id AS TEXT), t.pbx_name FROM \"contacts\" f \
             JOIN (SELECT \"id\" AS pbx_id, CAST((name) AS TEXT) AS pbx_name FROM \"accounts\" WHERE (active = 1)) t \
             ON t.pbx_id = f.\"account_id\" WHERE f.\"id\" IN ('1', '2')"
        );
    }
}
