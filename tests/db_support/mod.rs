//! Real databases for tests: a throwaway database per test on the PostgreSQL and
//! MariaDB servers of `PBXBRIDGE_TEST_POSTGRES`/`PBXBRIDGE_TEST_MYSQL`, or a
//! SQLite file in a temporary folder. `scripts/test.sh` sets both: the servers
//! on 5432/3306 when they let the tests in, else throwaways on free ports. A
//! server that cannot be reached fails the test: nothing here skips.
#![allow(dead_code)] // each test crate uses its own subset

pub mod crm;
pub mod servers;

use std::sync::atomic::{AtomicU32, Ordering};

use pbxbridge::call::{Direction, EndReason, Outcome};
use pbxbridge::db::{Backend, Db, DbOptions, Pool};
use pbxbridge::report::{CallReport, RecordingReport, RecordingStatus, RtpReport};
use pbxbridge::time::Timestamp;

/// Admin URLs of the servers. Unset, the standard ports on 127.0.0.1 (a
/// developer's own servers, with trust / no-password logins).
pub const POSTGRES_ENV: &str = "PBXBRIDGE_TEST_POSTGRES";
pub const MYSQL_ENV: &str = "PBXBRIDGE_TEST_MYSQL";

pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_ENV)
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn mysql_admin_url() -> String {
    std::env::var(MYSQL_ENV).unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".into())
}

pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::MySql];

/// One empty database, dropped when the value is.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    name: String,
    admin: String,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "pbxt_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// `scheme://user@host:port/db` → the same server, database `name`.
pub fn with_database(admin: &str, name: &str) -> String {
    match admin.rfind('/') {
        Some(i) if i > admin.find("://").map_or(0, |s| s + 2) => {
            let (base, rest) = admin.split_at(i);
            let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
            format!("{base}/{name}{query}")
        }
        _ => format!("{admin}/{name}"),
    }
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let name = unique_name();
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}",
                    dir.path().join(format!("{name}.db")).display()
                );
                TestDb {
                    backend,
                    url,
                    name,
                    admin: String::new(),
                    _dir: Some(dir),
                }
            }
            Backend::Postgres | Backend::MySql => {
                let admin = if backend == Backend::Postgres {
                    postgres_admin_url()
                } else {
                    mysql_admin_url()
                };
                run_admin(&admin, &format!("CREATE DATABASE {name}")).await;
                TestDb {
                    backend,
                    url: with_database(&admin, &name),
                    name,
                    admin,
                    _dir: None,
                }
            }
        }
    }

    /// pbxbridge's tables, migrated, with the default options.
    pub async fn connect(&self) -> Db {
        self.connect_with(&DbOptions::default()).await
    }

    pub async fn connect_with(&self, opts: &DbOptions) -> Db {
        Db::connect(&self.url, opts)
            .await
            .unwrap_or_else(|e| panic!("{:?}: connect and migrate: {e}", self.backend))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.backend == Backend::Sqlite {
            return;
        }
        let (admin, sql) = (
            self.admin.clone(),
            match self.backend {
                Backend::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                _ => format!("DROP DATABASE IF EXISTS {}", self.name),
            },
        );
        // Drop may run inside a runtime; a thread with its own one is always allowed.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let _ = try_admin(&admin, &sql).await;
                });
            }
        })
        .join();
    }
}

async fn try_admin(admin: &str, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    if admin.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(admin).await?;
        sqlx::query(sql).execute(&mut c).await?;
    } else {
        let mut c = sqlx::MySqlConnection::connect(admin).await?;
        sqlx::query(sql).execute(&mut c).await?;
    }
    Ok(())
}

async fn run_admin(admin: &str, sql: &str) {
    if let Err(e) = try_admin(admin, sql).await {
        panic!(
            "cannot run {sql:?} on the test server {}: {e}\n\
             The database tests need PostgreSQL and MariaDB: scripts/test.sh starts them, \
             or point {POSTGRES_ENV} / {MYSQL_ENV} at servers you have.",
            pbxbridge::config::redact_url(admin)
        );
    }
}

/// Runs one statement (no result rows) on whichever backend `db` is. Not
/// kept prepared: fixtures and bench fills run each statement once.
pub async fn exec(db: &Db, sql: &str) {
    let out = match db.pool() {
        Pool::Sqlite(p) => sqlx::query(sql)
            .persistent(false)
            .execute(p)
            .await
            .map(|_| ()),
        Pool::Postgres(p) => sqlx::query(sql)
            .persistent(false)
            .execute(p)
            .await
            .map(|_| ()),
        Pool::MySql(p) => sqlx::query(sql)
            .persistent(false)
            .execute(p)
            .await
            .map(|_| ()),
    };
    if let Err(e) = out {
        panic!("{:?}: {}: {e}", db.backend(), &sql[..sql.len().min(200)]);
    }
}

/// The first column of every row, as text (numbers are cast by the query).
pub async fn strings(db: &Db, sql: &str) -> Vec<String> {
    use sqlx::Row;
    let sql = db.sql(sql);
    let rows: Result<Vec<String>, sqlx::Error> = match db.pool() {
        Pool::Sqlite(p) => sqlx::query(&sql)
            .fetch_all(p)
            .await
            .and_then(|r| r.iter().map(|r| r.try_get::<String, _>(0)).collect()),
        Pool::Postgres(p) => sqlx::query(&sql)
            .fetch_all(p)
            .await
            .and_then(|r| r.iter().map(|r| r.try_get::<String, _>(0)).collect()),
        Pool::MySql(p) => sqlx::query(&sql)
            .fetch_all(p)
            .await
            .and_then(|r| r.iter().map(|r| r.try_get::<String, _>(0)).collect()),
    };
    rows.unwrap_or_else(|e| panic!("{:?}: {sql}: {e}", db.backend()))
}

/// `SELECT count(*) …` as a number.
pub async fn count(db: &Db, sql: &str) -> i64 {
    use sqlx::Row;
    let sql = db.sql(sql);
    let n: Result<i64, sqlx::Error> = match db.pool() {
        Pool::Sqlite(p) => sqlx::query(&sql)
            .fetch_one(p)
            .await
            .and_then(|r| r.try_get(0)),
        Pool::Postgres(p) => sqlx::query(&sql)
            .fetch_one(p)
            .await
            .and_then(|r| r.try_get(0)),
        Pool::MySql(p) => sqlx::query(&sql)
            .fetch_one(p)
            .await
            .and_then(|r| r.try_get(0)),
    };
    n.unwrap_or_else(|e| panic!("{:?}: {sql}: {e}", db.backend()))
}

/// An answered call between `other` (outside the PBX) and an agent
/// extension (2001 unless given), started at `secs`, 58 s of talk.
pub fn answered_call(
    call_id: &str,
    direction: Direction,
    other: &str,
    agent: Option<&str>,
    secs: i64,
) -> CallReport {
    let leg = || {
        serde_json::from_value(serde_json::json!({"packets": 0, "lost": 0, "jitter_ms": 0.0}))
            .expect("leg")
    };
    let (from, to) = match direction {
        Direction::Outgoing => (agent.unwrap_or("2001"), other),
        _ => (other, agent.unwrap_or("2001")),
    };
    CallReport {
        call_id: call_id.into(),
        direction,
        from_number: Some(from.into()),
        to_number: Some(to.into()),
        from_raw: Some(from.into()),
        to_raw: Some(to.into()),
        from_display: None,
        agent: agent.map(str::to_owned),
        started_at: Timestamp::from_secs(secs),
        answered_at: Some(Timestamp::from_secs(secs + 2)),
        ended_at: Timestamp::from_secs(secs + 60),
        duration: 58.0,
        outcome: Outcome::Answered,
        sip_code: Some(200),
        end_reason: EndReason::CallerBye,
        answered_elsewhere: false,
        dtmf: String::new(),
        held: false,
        recording: RecordingReport::without_file(RecordingStatus::None, None),
        sip_src: None,
        sip_dst: None,
        rtp: RtpReport::new(leg(), leg()),
    }
}
