//! Sorts and keyset positions. Every sort ends with the row id in the same
//! direction, so the order is total and "the rows after this one" is exact
//! across ties. The position's text form is the API's business (it signs
//! it); here it is a small JSON value.

use serde::{Deserialize, Serialize};

use super::Bind;
use crate::db::{Backend, DbTime};
use crate::time::Timestamp;

/// What a call log can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    StartedAt,
    Duration,
    Direction,
    /// The agent's extension; calls without one sort as the empty string.
    Agent,
}

impl SortKey {
    pub const ALL: [SortKey; 4] = [
        SortKey::StartedAt,
        SortKey::Duration,
        SortKey::Direction,
        SortKey::Agent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::StartedAt => "started_at",
            SortKey::Duration => "duration",
            SortKey::Direction => "direction",
            SortKey::Agent => "agent",
        }
    }

    /// The SQL expression sorted on. NULL agents become '' so that all
    /// three backends place them alike (they disagree on where NULLs go)
    /// and the keyset comparison never meets a NULL.
    pub(super) fn expr(self) -> &'static str {
        match self {
            SortKey::StartedAt => "c.started_at",
            SortKey::Duration => "c.duration",
            SortKey::Direction => "c.direction",
            SortKey::Agent => "COALESCE(c.agent, '')",
        }
    }
}

/// A sort: `started_at`, or `-started_at` for descending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for Sort {
    /// Newest first.
    fn default() -> Self {
        Sort {
            key: SortKey::StartedAt,
            descending: true,
        }
    }
}

impl Sort {
    /// `started_at`, `-duration`, …; `None` for anything else.
    pub fn parse(text: &str) -> Option<Sort> {
        let (descending, name) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let key = SortKey::ALL.into_iter().find(|k| k.as_str() == name)?;
        Some(Sort { key, descending })
    }

    pub fn as_string(self) -> String {
        format!(
            "{}{}",
            if self.descending { "-" } else { "" },
            self.key.as_str()
        )
    }

    /// ` ORDER BY key DIR, c.id DIR`.
    pub(super) fn order_by(self) -> String {
        let dir = if self.descending { "DESC" } else { "ASC" };
        format!(" ORDER BY {} {dir}, c.id {dir}", self.key.expr())
    }
}

/// A row's value of the sort key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyValue {
    /// Microseconds since the epoch (started_at).
    Time(i64),
    /// duration; JSON keeps an f64 exactly.
    Float(f64),
    /// direction, agent ('' for none).
    Text(String),
}

/// The last row of a page: the next page starts after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort the position belongs to; a cursor is refused under another.
    #[serde(rename = "s")]
    pub sort: Sort,
    #[serde(rename = "v")]
    pub value: KeyValue,
    #[serde(rename = "i")]
    pub id: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CursorError {
    #[error("the cursor was made for sort {made_for}, not {asked}")]
    OtherSort { made_for: String, asked: String },
    #[error("the cursor's position does not fit its sort")]
    WrongValue,
}

impl Cursor {
    /// The cursor as `sort` may use it: made for the same sort, with a value
    /// of the key's type.
    pub fn check(&self, sort: Sort) -> Result<(), CursorError> {
        if self.sort != sort {
            return Err(CursorError::OtherSort {
                made_for: self.sort.as_string(),
                asked: sort.as_string(),
            });
        }
        let fits = matches!(
            (self.sort.key, &self.value),
            (SortKey::StartedAt, KeyValue::Time(_))
                | (SortKey::Duration, KeyValue::Float(_))
                | (SortKey::Direction | SortKey::Agent, KeyValue::Text(_))
        );
        if fits {
            Ok(())
        } else {
            Err(CursorError::WrongValue)
        }
    }

    /// The condition "after this row" in `sort`'s order, and its values.
    /// PostgreSQL and SQLite get a row comparison, `(k, id) < (v, i)`,
    /// which their planners turn into one index range even inside a long
    /// run of ties. MySQL/MariaDB do not bound an index scan with a row
    /// comparison, so there it is `k <= v AND (k < v OR id < i)`, whose
    /// first part bounds the scan on the key.
    pub(super) fn after(&self, backend: Backend) -> (String, Vec<Bind>) {
        let k = self.sort.key.expr();
        let (le, lt) = if self.sort.descending {
            ("<=", "<")
        } else {
            (">=", ">")
        };
        let v = match &self.value {
            KeyValue::Time(us) => Bind::Time(DbTime(Timestamp::from_micros(*us))),
            KeyValue::Float(f) => Bind::Float(*f),
            KeyValue::Text(s) => Bind::Text(s.clone()),
        };
        match backend {
            Backend::Postgres | Backend::Sqlite => (
                format!("({k}, c.id) {lt} (?, ?)"),
                vec![v, Bind::Int(self.id)],
            ),
            Backend::MySql => (
                format!("{k} {le} ? AND ({k} {lt} ? OR c.id {lt} ?)"),
                vec![v.clone(), v, Bind::Int(self.id)],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_parse_and_print() {
        for text in [
            "started_at",
            "-started_at",
            "duration",
            "-agent",
            "direction",
        ] {
            assert_eq!(Sort::parse(text).unwrap().as_string(), text);
        }
        for bad in ["", "-", "--duration", "id", "started_at ", "STARTED_AT"] {
            assert!(Sort::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            Sort::parse("-duration").unwrap().order_by(),
            " ORDER BY c.duration DESC, c.id DESC"
        );
    }

    #[test]
    fn cursors_belong_to_their_sort() {
        let sort = Sort::default();
        let c = Cursor {
            sort,
            value: KeyValue::Time(5),
            id: 9,
        };
        assert!(c.check(sort).is_ok());
        assert!(matches!(
            c.check(Sort::parse("started_at").unwrap()),
            Err(CursorError::OtherSort { .. })
        ));
        let wrong = Cursor {
            value: KeyValue::Text("x".into()),
            ..c.clone()
        };
        assert_eq!(wrong.check(sort), Err(CursorError::WrongValue));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), c);
        let d = Cursor {
            sort: Sort::parse("duration").unwrap(),
            value: KeyValue::Float(12.5),
            id: 3,
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), d);
    }
}
