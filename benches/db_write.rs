//! Database write benchmark: call records per second through
//! `Db::upsert_calls`, in batches as the outbox writer sends them, to SQLite
//! and to throwaway databases on the PostgreSQL and MariaDB test servers
//! (127.0.0.1:5432 / 3306, or PBXBRIDGE_TEST_POSTGRES / PBXBRIDGE_TEST_MYSQL);
//! each database is dropped at the end.
//!
//! `cargo bench --bench db_write` writes 20,000 new records in batches of 256,
//! then the same 20,000 again (the upsert of calls already there, as after a
//! restart or a second replay). `-- --records N --batch B` changes the sizes.
//! Under `cargo test` it writes two small batches per backend as a smoke test.

#[path = "../tests/db_support/mod.rs"]
mod db_support;

// Benchmark tooling, kept out of the library; each user takes a part of it.
#[allow(dead_code)]
#[path = "../tools/loadgen/mod.rs"]
mod loadgen;

use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

use db_support::TestDb;
use loadgen::{write_capture, LoadSpec};
use pbxbridge::call::EndReason;
use pbxbridge::capture::pcapfile::PcapFileReader;
use pbxbridge::config::Config;
use pbxbridge::db::Backend;
use pbxbridge::pipeline::Pipeline;
use pbxbridge::report::CallReport;
use pbxbridge::time::Timestamp;

fn arg(args: &[String], name: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

/// Real records: a generated capture replayed through the pipeline, then
/// copied under new Call-IDs and numbers up to `n`.
fn records(n: usize) -> Vec<CallReport> {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("load.pcap");
    let distinct = n.min(256);
    write_capture(
        &LoadSpec::new(distinct, 64, 1),
        BufWriter::new(File::create(&pcap).unwrap()),
    )
    .unwrap();
    let mut cfg = Config::default();
    cfg.recording.enabled = false;
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut pipeline = Pipeline::new(&cfg, tx).unwrap();
    let mut reader = PcapFileReader::open(&pcap).unwrap();
    let mut last = Timestamp::default();
    while let Some(p) = reader.next_packet().unwrap() {
        last = p.ts;
        pipeline.handle_frame(p.ts, p.link, p.data);
    }
    pipeline.close_all(last, EndReason::CaptureEnd);
    pipeline.finish();
    let base: Vec<CallReport> = rx.into_iter().flatten().collect();
    assert_eq!(base.len(), distinct, "every generated call finished");
    (0..n)
        .map(|i| {
            let mut r = base[i % base.len()].clone();
            r.call_id = format!("bench-{i:08}@loadgen.invalid");
            r.from_number = Some(format!("+1415{:07}", i % 10_000_000));
            r
        })
        .collect()
}

/// Records per second for one pass over `recs`.
async fn pass(db: &pbxbridge::db::Db, recs: &[CallReport], batch: usize) -> f64 {
    let t = Instant::now();
    for chunk in recs.chunks(batch) {
        db.upsert_calls("default", chunk).await.unwrap();
    }
    recs.len() as f64 / t.elapsed().as_secs_f64()
}

async fn run(backend: Backend, recs: &[CallReport], batch: usize) -> (f64, f64) {
    let tdb = TestDb::new(backend).await;
    let db = tdb.connect().await;
    let insert = pass(&db, recs, batch).await;
    let again = pass(&db, recs, batch).await;
    let rows = db_support::count(&db, "SELECT count(*) FROM {calls}").await;
    assert_eq!(rows, recs.len() as i64, "{backend:?}: one row per call");
    db.close().await;
    (insert, again)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    // `cargo test` runs bench targets once: keep it a quick smoke test.
    let (n, batch) = if benching {
        (
            arg(&args, "--records").unwrap_or(20_000),
            arg(&args, "--batch").unwrap_or(256),
        )
    } else {
        (512, 256)
    };
    let recs = records(n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
        let (insert, again) = rt.block_on(run(backend, &recs, batch));
        println!(
            "RESULT backend={backend:?} records={n} batch={batch} insert_per_sec={insert:.0} upsert_existing_per_sec={again:.0}"
        );
    }
}
