//! The three SQL dialects and where pbxbridge's tables live (schema and prefix).
//!
//! Queries are written once with `?` placeholders and `{table}` names; `render`
//! turns them into the text one backend runs.

use std::fmt::Write as _;

pub use crate::db_kind::Backend;

/// The tables pbxbridge owns, by their name without prefix.
pub const TABLES: [&str; 10] = [
    "calls",
    "call_links",
    "call_notes",
    "phone_index",
    "phone_index_state",
    "schema_migrations",
    "api_keys",
    "recording_access",
    "idempotency_keys",
    "webhooks",
];

#[derive(Clone, Debug)]
pub struct Dialect {
    pub backend: Backend,
    prefix: String,
    schema: Option<String>,
}

impl Dialect {
    /// `prefix` and `schema` must pass `is_identifier` (the config checks).
    pub fn new(backend: Backend, prefix: &str, schema: Option<&str>) -> Dialect {
        Dialect {
            backend,
            prefix: prefix.to_owned(),
            schema: schema.filter(|s| !s.is_empty()).map(str::to_owned),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// SQLite gets backticks too: it reads a double-quoted name that is no
    /// column as a string literal, so a misspelt CRM column would silently
    /// become text; a name in backticks is always an identifier there.
    pub fn quote(&self, ident: &str) -> String {
        match self.backend {
            Backend::MySql | Backend::Sqlite => format!("`{}`", ident.replace('`', "``")),
            Backend::Postgres => format!("\"{}\"", ident.replace('"', "\"\"")),
        }
    }

    /// A dotted name from the config (`contacts`, `crm.contacts`), each part quoted.
    pub fn quote_path(&self, path: &str) -> String {
        path.split('.')
            .map(|p| self.quote(p))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// One of pbxbridge's own tables, with schema and prefix, quoted.
    pub fn table(&self, name: &str) -> String {
        let t = self.quote(&format!("{}{}", self.prefix, name));
        match &self.schema {
            Some(s) => format!("{}.{}", self.quote(s), t),
            None => t,
        }
    }

    /// `CAST(expr AS text)`: CRM ids and phone columns may be of any type.
    pub fn cast_text(&self, expr: &str) -> String {
        match self.backend {
            Backend::MySql => format!("CAST({expr} AS CHAR)"),
            _ => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// `INSERT` that keeps an existing row on a unique-key conflict; pair it
    /// with `on_conflict_ignore` after the VALUES. MySQL's `INSERT IGNORE`
    /// counts only the rows it inserted, which is what callers report.
    pub fn insert_ignore(&self) -> &'static str {
        match self.backend {
            Backend::MySql => "INSERT IGNORE INTO",
            _ => "INSERT INTO",
        }
    }

    pub fn on_conflict_ignore(&self) -> &'static str {
        match self.backend {
            Backend::MySql => "",
            _ => " ON CONFLICT DO NOTHING",
        }
    }

    /// The clause that turns an INSERT into an upsert on `key`, replacing `cols`.
    pub fn upsert(&self, key: &[&str], cols: &[&str]) -> String {
        let mut out = String::new();
        match self.backend {
            Backend::MySql => {
                out.push_str(" ON DUPLICATE KEY UPDATE ");
                for (i, c) in cols.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{c} = VALUES({c})");
                }
            }
            _ => {
                let _ = write!(out, " ON CONFLICT ({}) DO UPDATE SET ", key.join(", "));
                for (i, c) in cols.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{c} = excluded.{c}");
                }
            }
        }
        out
    }

    /// `(?, ?, ?), (?, ?, ?)`: `rows` tuples of `cols` placeholders.
    pub fn value_rows(cols: usize, rows: usize) -> String {
        let one = format!("({})", vec!["?"; cols].join(", "));
        vec![one; rows].join(", ")
    }

    /// Rows per multi-row statement so that the placeholders stay under every
    /// backend's limit (SQLite 32766, PostgreSQL and MySQL 65535).
    pub fn rows_per_statement(cols: usize) -> usize {
        (30_000 / cols.max(1)).clamp(1, 1000)
    }

    /// Fills in table names, DDL tokens, and PostgreSQL's `$n` placeholders.
    /// `?` inside quoted strings and identifiers is left alone.
    pub fn render(&self, template: &str) -> String {
        let mut text = template.to_owned();
        if text.contains('{') {
            for t in TABLES {
                let token = format!("{{{t}}}");
                if text.contains(&token) {
                    text = text.replace(&token, &self.table(t));
                }
            }
            let (pk, ts, opts) = match self.backend {
                Backend::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", ""),
                Backend::Postgres => ("BIGSERIAL PRIMARY KEY", "TIMESTAMPTZ", ""),
                Backend::MySql => (
                    "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
                    "DATETIME(6)",
                    // Not utf8mb4_bin, though Call-IDs are case-sensitive: sqlx
                    // reads binary-collated VARCHARs as VARBINARY (sqlx#3387).
                    // Call-IDs that differ only in case do not occur in practice.
                    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
                ),
            };
            text = text
                .replace("{pk}", pk)
                .replace("{ts}", ts)
                .replace("{opts}", opts)
                .replace("{p}", &self.prefix);
        }
        if self.backend == Backend::Postgres {
            text = numbered_placeholders(&text);
        }
        text
    }
}

fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (None, '?') => {
                n += 1;
                let _ = write!(out, "${n}");
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_gets_numbered_placeholders_outside_quotes() {
        let d = Dialect::new(Backend::Postgres, "pbx_", Some("crm"));
        assert_eq!(
            d.render("SELECT '?' FROM {calls} WHERE a = ? AND \"b?\" = ?"),
            "SELECT '?' FROM \"crm\".\"pbx_calls\" WHERE a = $1 AND \"b?\" = $2"
        );
        let m = Dialect::new(Backend::MySql, "", None);
        assert_eq!(m.render("SELECT ? FROM {calls}"), "SELECT ? FROM `calls`");
    }

    #[test]
    fn upsert_clauses() {
        let p = Dialect::new(Backend::Sqlite, "", None);
        assert_eq!(
            p.upsert(&["a", "b"], &["c"]),
            " ON CONFLICT (a, b) DO UPDATE SET c = excluded.c"
        );
        let m = Dialect::new(Backend::MySql, "", None);
        assert_eq!(
            m.upsert(&["a"], &["c", "d"]),
            " ON DUPLICATE KEY UPDATE c = VALUES(c), d = VALUES(d)"
        );
        assert_eq!(Dialect::value_rows(2, 2), "(?, ?), (?, ?)");
    }
}
