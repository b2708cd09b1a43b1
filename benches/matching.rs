//! Call-end benchmark: a phone index of 1,000,000 values, then the path a
//! finished call takes (phone index lookup, agent lookup, `write_calls`).
//! Prints the match latency (p50/p99) of one call, the whole call-end path of
//! one call, and records/s for batches, per backend.
//!
//! `cargo bench --bench matching` runs SQLite, PostgreSQL and MariaDB on the
//! test servers (127.0.0.1, see `tests/db_support`), each in a throwaway
//! database dropped at the end. `-- --values N --backends sqlite,postgres`
//! narrows it. Under `cargo test` it runs a tiny SQLite scenario as a smoke test.

#[path = "../tests/db_support/mod.rs"]
mod db_support;

use std::time::{Duration, Instant};

use db_support::TestDb;
use pbxbridge::config::Config;
use pbxbridge::db::{Backend, Db};
use pbxbridge::matching::linker::Linker;
use pbxbridge::report::CallReport;

struct Plan {
    values: u64,
    single_calls: usize,
    batches: usize,
    batch_size: usize,
    backends: Vec<Backend>,
}

const CRM: &str = r#"
[[crm.records]]
type = "contact"
table = "contacts"
phones = ["phone_work"]

[[crm.records]]
type = "user"
table = "users"
phones = ["extension"]
"#;

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).map(String::as_str)
}

fn plan() -> Plan {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let backends = match arg(&args, "--backends") {
        Some(list) => list
            .split(',')
            .filter_map(|b| Backend::from_url(&format!("{b}:")))
            .collect(),
        None if full => db_support::ALL.to_vec(),
        None => vec![Backend::Sqlite],
    };
    let values = arg(&args, "--values")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 2_000 });
    Plan {
        values,
        single_calls: if full { 2_000 } else { 20 },
        batches: if full { 20 } else { 2 },
        batch_size: if full { 500 } else { 20 },
        backends,
    }
}

/// 0..10^6 from a cross join of digits: the same SQL on all three backends.
fn fill_sql(db: &Db, values: u64) -> String {
    let d = db.dialect();
    let digits = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
         UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
         UNION ALL SELECT 8 UNION ALL SELECT 9)";
    let n = d.cast_text("s.n");
    let num = d.cast_text("(2000000 + s.n)");
    db.sql(&format!(
        "INSERT INTO {{phone_index}} (record_type, record_id, field, raw, number, extension, display_name) \
         SELECT 'contact', {n}, 'phone_work', CONCAT('(415) ', {num}), CONCAT('+1415', {num}), NULL, CONCAT('Contact ', {n}) \
         FROM (SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d AS n \
               FROM {digits} a, {digits} b, {digits} c, {digits} e, {digits} f, {digits} g) s \
         WHERE s.n < {values}"
    ))
}

/// Calls from numbers spread over the index, one in five from an unknown number.
struct Calls {
    seq: u64,
    values: u64,
}

impl Calls {
    fn next(&mut self) -> CallReport {
        self.seq += 1;
        let x = self
            .seq
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            >> 20;
        let other = if self.seq % 5 == 0 {
            format!("+1212{}", 5_000_000 + x % 1_000_000)
        } else {
            format!("+1415{}", 2_000_000 + x % self.values)
        };
        let agent = format!("{}", 2000 + x % 100);
        db_support::answered_call(
            &format!("bench-{}@pbx", self.seq),
            pbxbridge::call::Direction::Incoming,
            &other,
            Some(&agent),
            1_800_000_000 + self.seq as i64,
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn run_backend(backend: Backend, plan: &Plan, cfg: &Config) {
    let t = TestDb::new(backend).await;
    let db = t.connect().await;
    let start = Instant::now();
    db_support::exec(&db, &fill_sql(&db, plan.values)).await;
    let users: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "('user', '{i}', 'extension', '{0}', '{0}', '{0}', 'Agent {i}')",
                2000 + i
            )
        })
        .collect();
    db_support::exec(
        &db,
        &db.sql(&format!(
            "INSERT INTO {{phone_index}} (record_type, record_id, field, raw, number, extension, display_name) VALUES {}",
            users.join(", ")
        )),
    )
    .await;
    let analyze = match backend {
        Backend::MySql => db.sql("ANALYZE TABLE {phone_index}"),
        _ => db.sql("ANALYZE {phone_index}"),
    };
    match db.pool() {
        pbxbridge::db::Pool::MySql(p) => {
            // ANALYZE TABLE returns a result set.
            sqlx::query(&analyze).fetch_all(p).await.expect("analyze");
        }
        _ => db_support::exec(&db, &analyze).await,
    }
    let indexed = db_support::count(&db, "SELECT count(*) FROM {phone_index}").await;
    eprintln!(
        "{}: indexed {indexed} values in {:.1} s",
        backend.name(),
        start.elapsed().as_secs_f64()
    );

    let linker = Linker::new(&cfg.crm);
    let mut calls = Calls {
        seq: 0,
        values: plan.values.max(1),
    };
    // Warm the pool and the caches.
    for _ in 0..10 {
        let c = [calls.next()];
        linker.write(&db, "bench", &c).await.expect("write");
    }

    // The lookup alone, call after call, as when calls end one by one.
    let mut lookup_only = Vec::with_capacity(plan.single_calls);
    for _ in 0..plan.single_calls {
        let c = [calls.next()];
        let t0 = Instant::now();
        linker.match_calls(&db, &c).await.expect("match");
        lookup_only.push(t0.elapsed());
    }
    lookup_only.sort();

    let mut matched = Vec::with_capacity(plan.single_calls);
    let mut whole = Vec::with_capacity(plan.single_calls);
    let mut links = 0usize;
    for _ in 0..plan.single_calls {
        let c = [calls.next()];
        let t0 = Instant::now();
        let writes = linker.match_calls(&db, &c).await.expect("match");
        matched.push(t0.elapsed());
        links += writes.iter().map(|w| w.links.len()).sum::<usize>();
        let t0 = Instant::now();
        linker.write(&db, "bench", &c).await.expect("write");
        whole.push(t0.elapsed());
    }
    matched.sort();
    whole.sort();

    let mut total = 0usize;
    let t0 = Instant::now();
    for _ in 0..plan.batches {
        let batch: Vec<CallReport> = (0..plan.batch_size).map(|_| calls.next()).collect();
        total += linker
            .write(&db, "bench", &batch)
            .await
            .expect("batch")
            .calls;
    }
    let secs = t0.elapsed().as_secs_f64();
    let rows = db_support::count(&db, "SELECT count(*) FROM {calls}").await;
    assert!(rows as usize >= total, "{rows} rows for {total} calls");
    println!(
        "{:<8} index {:>9} values | match only: p50 {:.2} ms p99 {:.2} ms | match between writes: p50 {:.2} ms p99 {:.2} ms | match+write 1 call: p50 {:.2} ms p99 {:.2} ms | batches of {}: {:.0} records/s | {:.2} links/call",
        backend.name(),
        indexed,
        ms(percentile(&lookup_only, 0.5)),
        ms(percentile(&lookup_only, 0.99)),
        ms(percentile(&matched, 0.5)),
        ms(percentile(&matched, 0.99)),
        ms(percentile(&whole, 0.5)),
        ms(percentile(&whole, 0.99)),
        plan.batch_size,
        total as f64 / secs,
        links as f64 / plan.single_calls.max(1) as f64,
    );
    db.close().await;
}

fn main() {
    let plan = plan();
    let cfg = Config::parse(CRM, std::path::Path::new("bench.toml")).expect("bench config");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!("load average at start: {}", load.trim());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for &backend in &plan.backends {
        rt.block_on(run_backend(backend, &plan, &cfg));
    }
}
