//! The WHERE clause of a call-log query: every filter becomes a condition
//! with `?` placeholders and its values in order. User text is only ever
//! bound, never written into the SQL.

use super::{Bind, CallQuery};
use crate::db::DbTime;
use crate::report::RecordingStatus;

/// "A recording exists or is on its way": stored in its final place, or
/// finished and waiting in the spool for remote storage.
pub const RECORDED: [RecordingStatus; 2] = [RecordingStatus::Stored, RecordingStatus::Pending];

/// The escape character of `q`'s LIKE patterns. Not a backslash: MySQL
/// reads backslashes in string literals, so `ESCAPE '\'` is spelt
/// differently on each backend; `!` is the same everywhere.
const LIKE_ESCAPE: char = '!';

/// `text` as a LIKE pattern matching it anywhere, lower-cased, with `%`,
/// `_` and the escape character taken literally.
pub fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_') || c == LIKE_ESCAPE {
            out.push(LIKE_ESCAPE);
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Conditions joined by AND, and their values.
#[derive(Default)]
pub(super) struct Where {
    pub cond: Vec<String>,
    pub binds: Vec<Bind>,
}

impl Where {
    fn text(&mut self, cond: &str, value: &str, times: usize) {
        self.cond.push(cond.to_owned());
        self.binds
            .extend((0..times).map(|_| Bind::Text(value.to_owned())));
    }

    fn time(&mut self, cond: &str, t: crate::time::Timestamp) {
        self.cond.push(cond.to_owned());
        self.binds.push(Bind::Time(DbTime(t)));
    }

    fn any_of(&mut self, column: &str, values: Vec<&'static str>) {
        if values.is_empty() {
            return;
        }
        let marks = vec!["?"; values.len()].join(", ");
        self.cond.push(format!("{column} IN ({marks})"));
        self.binds
            .extend(values.into_iter().map(|v| Bind::Text(v.to_owned())));
    }

    /// ` WHERE a AND b`, or nothing.
    pub fn clause(&self) -> String {
        if self.cond.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.cond.join(" AND "))
        }
    }
}

/// The conditions of every filter `q` sets (its sort and cursor aside).
pub(super) fn conditions(q: &CallQuery) -> Where {
    let mut w = Where::default();
    if let Some(own) = &q.own_agent {
        if own.is_empty() {
            // A see-own key without an agent id sees nothing, not the calls
            // whose agent id happens to be empty.
            w.cond.push("1 = 0".into());
        } else {
            w.text("c.agent_id = ?", own, 1);
        }
    }
    if let Some(row) = q.row {
        w.cond.push("c.id = ?".into());
        w.binds.push(Bind::Int(row));
    }
    w.any_of(
        "c.direction",
        q.directions.iter().map(|d| d.as_str()).collect(),
    );
    w.any_of("c.outcome", q.outcomes.iter().map(|o| o.as_str()).collect());
    if let Some(t) = q.from {
        w.time("c.started_at >= ?", t);
    }
    if let Some(t) = q.to {
        w.time("c.started_at < ?", t);
    }
    if let Some(d) = q.min_duration {
        w.cond.push("c.duration >= ?".into());
        w.binds.push(Bind::Float(d));
    }
    if let Some(d) = q.max_duration {
        w.cond.push("c.duration <= ?".into());
        w.binds.push(Bind::Float(d));
    }
    if let Some(m) = q.min_mos {
        w.cond.push("c.mos >= ?".into());
        w.binds.push(Bind::Float(m));
    }
    if let Some(l) = q.max_loss {
        w.cond.push("c.loss_pct <= ?".into());
        w.binds.push(Bind::Float(l));
    }
    if let Some(rec) = q.recorded {
        let statuses = RECORDED.iter().map(|s| s.as_str()).collect();
        if rec {
            w.any_of("c.recording_status", statuses);
        } else {
            w.any_of("c.recording_status NOT", statuses);
        }
    }
    match q.has_note {
        Some(true) => w.cond.push("c.note_count > 0".into()),
        Some(false) => w.cond.push("c.note_count = 0".into()),
        None => {}
    }
    if let Some(a) = &q.agent {
        w.text("(c.agent = ? OR c.agent_id = ?)", a, 2);
    }
    if let Some(n) = &q.number {
        w.text(
            "(c.from_number = ? OR c.to_number = ? OR c.other_number = ?)",
            n,
            3,
        );
    }
    if let Some((t, id)) = &q.record {
        w.cond.push(
            "EXISTS (SELECT 1 FROM {call_links} l WHERE l.call_row = c.id \
             AND l.record_type = ? AND l.record_id = ? AND l.removed_at IS NULL)"
                .into(),
        );
        w.binds.push(Bind::Text(t.clone()));
        w.binds.push(Bind::Text(id.clone()));
    }
    if let Some(s) = &q.sensor {
        w.text("c.sensor = ?", s, 1);
    }
    if let Some(id) = &q.call_id {
        w.text("c.call_id = ?", &crate::db::call_key(id), 1);
    }
    if let Some(text) = &q.q {
        let pat = contains_pattern(text);
        let like = |col: &str| format!("LOWER({col}) LIKE ? ESCAPE '{LIKE_ESCAPE}'");
        let cols = [
            "c.from_number",
            "c.to_number",
            "c.other_number",
            "c.agent",
            "c.agent_name",
        ];
        let mut parts: Vec<String> = cols.iter().map(|c| like(c)).collect();
        parts.push(format!(
            "EXISTS (SELECT 1 FROM {{call_links}} ql WHERE ql.call_row = c.id \
             AND ql.removed_at IS NULL AND {})",
            like("ql.display_name")
        ));
        w.text(&format!("({})", parts.join(" OR ")), &pat, parts.len());
    }
    if let Some(t) = q.updated_since {
        w.time("c.updated_at >= ?", t);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_metacharacters_are_literal() {
        assert_eq!(contains_pattern("50%_A!b"), "%50!%!_a!!b%");
        assert_eq!(contains_pattern("' OR 1=1 --"), "%' or 1=1 --%");
        assert_eq!(contains_pattern("a\\b"), "%a\\b%");
    }

    #[test]
    fn an_empty_own_agent_matches_nothing() {
        let q = CallQuery {
            own_agent: Some(String::new()),
            ..CallQuery::default()
        };
        let w = conditions(&q);
        assert_eq!(w.cond, vec!["1 = 0".to_owned()]);
        assert!(w.binds.is_empty());
    }
}
