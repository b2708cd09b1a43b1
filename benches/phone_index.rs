//! Phone index build benchmark: a contacts table with N phone values in messy
//! formats (two per row, ~1% text), on a throwaway database of each backend;
//! times a first build, a rebuild (which also deletes the old rows) and a
//! refresh that finds nothing new. Prints values/s and seconds per backend.
//!
//! `cargo bench --bench phone_index` runs 1,000,000 values on SQLite,
//! PostgreSQL and MariaDB; `-- --values N --backend sqlite|postgres|mysql`
//! narrows it. Under `cargo test` it runs 2,000 values as a smoke test. The
//! databases are the tests' throwaway ones (`tests/db_support`: the servers of
//! PBXBRIDGE_TEST_POSTGRES and PBXBRIDGE_TEST_MYSQL; SQLite in $TMPDIR).

#[path = "../tests/db_support/mod.rs"]
mod db_support;

use std::path::Path;
use std::time::Instant;

use db_support::{exec, TestDb};
use pbxbridge::config::Config;
use pbxbridge::db::{Backend, Db, DbOptions};
use pbxbridge::matching::index;

const AREAS: [&str; 5] = ["415", "650", "212", "917", "303"];

fn arg(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

/// The i-th phone value: unique numbers, written the ways people write them.
fn value(i: usize) -> String {
    if i % 97 == 0 {
        return "n/a".into();
    }
    let area = AREAS[i % AREAS.len()];
    let rest = i / AREAS.len();
    let exchange = 200 + (rest / 10_000) % 800;
    let line = rest % 10_000;
    match i % 4 {
        0 => format!("({area}) {exchange}-{line:04}"),
        1 => format!("+1 {area}-{exchange}-{line:04}"),
        2 => format!("{area}.{exchange}.{line:04}"),
        _ => format!("+1 {area} {exchange} {line:04} ext. 12"),
    }
}

/// The process's peak RSS since the last reset.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn fill(db: &Db, values: usize) {
    let ts = match db.backend() {
        Backend::Postgres => "TIMESTAMP",
        Backend::MySql => "DATETIME(6)",
        Backend::Sqlite => "TEXT",
    };
    exec(db, &format!("CREATE TABLE contacts (id BIGINT PRIMARY KEY, first_name VARCHAR(100), last_name VARCHAR(100), phone_work VARCHAR(64), phone_mobile VARCHAR(64), updated_at {ts})")).await;
    let rows = values.div_ceil(2);
    let per_stmt = 2000;
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap();
    let mut id = 0;
    while id < rows {
        let end = (id + per_stmt).min(rows);
        let mut sql = String::from("INSERT INTO contacts VALUES ");
        for r in id..end {
            if r > id {
                sql.push_str(", ");
            }
            let mobile = if 2 * r + 1 < values {
                format!("'{}'", value(2 * r + 1))
            } else {
                "NULL".into()
            };
            // Rows changed over time, as in a real CRM: a refresh reads few.
            let changed = start + chrono::Duration::seconds(r as i64);
            sql.push_str(&format!(
                "({r}, 'First{r}', 'Last', '{}', {mobile}, '{}')",
                value(2 * r),
                changed.format("%Y-%m-%d %H:%M:%S")
            ));
        }
        exec(db, &sql).await;
        id = end;
    }
}

const CRM: &str = r#"
[[crm.records]]
type = "contact"
table = "contacts"
phones = ["phone_work", "phone_mobile"]
name = "first_name"
updated_at = "updated_at"
"#;

async fn run_one(backend: Backend, values: usize) {
    let t = TestDb::new(backend).await;
    let url = t.url.clone();
    let cfg = Config::parse(
        &format!("[database]\nurl = \"{url}\"\n{CRM}"),
        Path::new("bench.toml"),
    )
    .unwrap();
    let db = Db::connect(
        &url,
        &DbOptions {
            max_connections: 4,
            ..DbOptions::default()
        },
    )
    .await
    .unwrap();
    let t = Instant::now();
    fill(&db, values).await;
    eprintln!(
        "{}: filled {values} values in {:.1} s",
        backend.name(),
        t.elapsed().as_secs_f64()
    );

    // Peak RSS from here on is the index build's (Linux: "5" resets VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let mut line = format!("RESULT backend={} values={values}", backend.name());
    for phase in ["build", "rebuild"] {
        let t = Instant::now();
        let r = index::build_all(&db, &cfg).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        let c = r[0].counts;
        assert_eq!(c.values as usize, values, "every value indexed");
        assert!(c.invalid > 0 && c.valid > c.invalid);
        line.push_str(&format!(
            " {phase}_secs={secs:.2} {phase}_values_per_sec={:.0}",
            values as f64 / secs
        ));
        if phase == "build" {
            line.push_str(&format!(" valid={} invalid={}", c.valid, c.invalid));
        }
    }
    let t = Instant::now();
    index::refresh(&db, &cfg).await.unwrap();
    line.push_str(&format!(
        " refresh_secs={:.2} peak_rss_mib={:.0}",
        t.elapsed().as_secs_f64(),
        peak_rss_kib() as f64 / 1024.0
    ));
    println!("{line}");
    db.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    let values = arg(&args, "--values")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 1_000_000 } else { 2_000 });
    let backends: Vec<Backend> = match arg(&args, "--backend") {
        Some(b) => vec![Backend::from_url(&format!("{b}:")).expect("sqlite, postgres or mysql")],
        None => vec![Backend::Sqlite, Backend::Postgres, Backend::MySql],
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for b in backends {
        rt.block_on(run_one(b, values));
    }
}
