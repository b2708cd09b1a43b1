//! Migrations compiled into the binary, one template per step for all three
//! backends (see `migrations/`). sqlx's own migrator cannot be used: the table
//! names depend on the configured schema and prefix.
//!
//! Applied steps are kept in `{schema_migrations}` with a checksum of their
//! template, so an edited migration or a database from a newer pbxbridge is
//! refused rather than half-understood.

use std::time::Duration;

use sqlx::{Connection, Row};

use super::dialect::{Backend, Dialect};
use super::{DbError, Pool};
use crate::backoff::Backoff;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub template: &'static str,
}

pub static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "schema",
        template: include_str!("../../migrations/0001_schema.sql"),
    },
    Migration {
        version: 2,
        name: "recording_storage",
        template: include_str!("../../migrations/0002_recording_storage.sql"),
    },
    Migration {
        version: 3,
        name: "http_api",
        template: include_str!("../../migrations/0003_http_api.sql"),
    },
    Migration {
        version: 4,
        name: "events",
        template: include_str!("../../migrations/0004_events.sql"),
    },
    Migration {
        version: 5,
        name: "call_quality",
        template: include_str!("../../migrations/0005_call_quality.sql"),
    },
];

fn checksum(template: &str) -> String {
    super::sha256_hex(template.as_bytes())
}

/// The statements of a template, comments dropped. Templates never put `;`
/// inside a string or a comment.
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// MySQL DDL is not transactional: a step cut off halfway is run again, and
/// the indexes and columns it already made must not stop it (1061: duplicate
/// key name, 1060: duplicate column name).
fn already_done(backend: Backend, e: &sqlx::Error) -> bool {
    let text = e.to_string();
    backend == Backend::MySql
        && e.as_database_error().is_some()
        && (text.contains("Duplicate key name") || text.contains("Duplicate column name"))
}

macro_rules! run_migrations {
    ($conn:expr, $d:expr, $url:expr) => {{
        let conn = $conn;
        let d: &Dialect = $d;
        let err = |version: i64, source: sqlx::Error| DbError::Migrate {
            url: $url.to_owned(),
            version,
            source,
        };
        let create = d.render(
            "CREATE TABLE IF NOT EXISTS {schema_migrations} (
                version BIGINT NOT NULL PRIMARY KEY,
                name VARCHAR(64) NOT NULL,
                checksum VARCHAR(64) NOT NULL,
                applied_at {ts} NOT NULL
            ){opts}",
        );
        sqlx::query(&create)
            .execute(&mut *conn)
            .await
            .map_err(|e| err(0, e))?;
        let rows = sqlx::query(&d.render("SELECT version, checksum FROM {schema_migrations}"))
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| err(0, e))?;
        let mut applied = std::collections::BTreeMap::new();
        for r in rows {
            let v: i64 = r.try_get(0).map_err(|e| err(0, e))?;
            let c: String = r.try_get(1).map_err(|e| err(0, e))?;
            applied.insert(v, c);
        }
        let newest_known = MIGRATIONS.last().map_or(0, |m| m.version);
        if let Some((&v, _)) = applied.iter().next_back() {
            if v > newest_known {
                return Err(DbError::SchemaTooNew {
                    url: $url.to_owned(),
                    found: v,
                    known: newest_known,
                });
            }
        }
        for m in MIGRATIONS {
            let sum = checksum(m.template);
            if let Some(have) = applied.get(&m.version) {
                if *have != sum {
                    return Err(DbError::MigrationChanged {
                        url: $url.to_owned(),
                        version: m.version,
                    });
                }
                continue;
            }
            let record = d.render(
                "INSERT INTO {schema_migrations} (version, name, checksum, applied_at)
                 VALUES (?, ?, ?, ?)",
            );
            if d.backend == Backend::MySql {
                for s in statements(&d.render(m.template)) {
                    if let Err(e) = sqlx::query(&s).execute(&mut *conn).await {
                        if !already_done(d.backend, &e) {
                            return Err(err(m.version, e));
                        }
                    }
                }
                sqlx::query(&record)
                    .bind(m.version)
                    .bind(m.name)
                    .bind(&sum)
                    .bind(super::DbTime(crate::time::Timestamp::now()))
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| err(m.version, e))?;
            } else {
                let mut tx = conn.begin().await.map_err(|e| err(m.version, e))?;
                for s in statements(&d.render(m.template)) {
                    sqlx::query(&s)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| err(m.version, e))?;
                }
                sqlx::query(&record)
                    .bind(m.version)
                    .bind(m.name)
                    .bind(&sum)
                    .bind(super::DbTime(crate::time::Timestamp::now()))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err(m.version, e))?;
                tx.commit().await.map_err(|e| err(m.version, e))?;
            }
            tracing::info!(version = m.version, name = m.name, "database migrated");
        }
        Ok::<(), DbError>(())
    }};
}

/// Creates the schema if one is configured and brings the tables up to date.
/// Two daemons starting at once take turns (an advisory lock on PostgreSQL and
/// MySQL; SQLite serialises writers itself).
pub async fn migrate(pool: &Pool, d: &Dialect, url: &str) -> Result<(), DbError> {
    let err0 = |source: sqlx::Error| DbError::Migrate {
        url: url.to_owned(),
        version: 0,
        source,
    };
    let lock_name = format!(
        "pbxbridge-migrate-{}-{}",
        d.schema().unwrap_or(""),
        d.prefix()
    );
    match pool {
        Pool::Sqlite(p) => {
            // Two processes opening a new SQLite file at once (the daemon and
            // a CLI command) both see nothing applied; the loser's write fails
            // (busy snapshot, or an index the winner made). Trying again, it
            // finds the steps applied.
            let mut attempt = 0;
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
            loop {
                let mut conn = p.acquire().await.map_err(err0)?;
                let out = async { run_migrations!(&mut *conn, d, url) }.await;
                match out {
                    Err(DbError::Migrate { .. }) if attempt < 5 => {
                        attempt += 1;
                        drop(conn);
                        tokio::time::sleep(backoff.next_wait()).await;
                    }
                    other => return other,
                }
            }
        }
        Pool::Postgres(p) => {
            let mut conn = p.acquire().await.map_err(err0)?;
            if let Some(s) = d.schema() {
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", d.quote(s)))
                    .execute(&mut *conn)
                    .await
                    .map_err(err0)?;
            }
            sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
                .bind(&lock_name)
                .execute(&mut *conn)
                .await
                .map_err(err0)?;
            let out = async { run_migrations!(&mut *conn, d, url) }.await;
            let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
                .bind(&lock_name)
                .execute(&mut *conn)
                .await;
            out
        }
        Pool::MySql(p) => {
            let mut conn = p.acquire().await.map_err(err0)?;
            if let Some(s) = d.schema() {
                sqlx::query(&format!(
                    "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4",
                    d.quote(s)
                ))
                .execute(&mut *conn)
                .await
                .map_err(err0)?;
            }
            // MySQL lock names are at most 64 characters.
            let name: String = lock_name.chars().take(64).collect();
            sqlx::query("SELECT GET_LOCK(?, 60)")
                .bind(&name)
                .execute(&mut *conn)
                .await
                .map_err(err0)?;
            let out = async { run_migrations!(&mut *conn, d, url) }.await;
            let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
                .bind(&name)
                .execute(&mut *conn)
                .await;
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_to_statements_on_every_backend() {
        for m in MIGRATIONS {
            for b in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
                let d = Dialect::new(b, "pbx_", None);
                let sql = d.render(m.template);
                assert!(!sql.contains('{'), "{b:?}: token left in {sql}");
                let st = statements(&sql);
                assert!(!st.is_empty());
                assert!(st.iter().all(|s| !s.contains("--")));
            }
        }
    }
}
