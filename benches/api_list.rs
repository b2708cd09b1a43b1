//! Call-log API benchmark: fills a throwaway PostgreSQL database
//! (PBXBRIDGE_TEST_POSTGRES, dropped at the end) with N calls, a third of
//! them linked to a contact and a seventh with a note, then measures over
//! real HTTP the p50/p99 latency of list pages with each filter alone and
//! combined, a deep cursor, `q`, the timeline, and the CSV export's rows/s
//! and peak RSS.
//!
//! `cargo bench --bench api_list` fills 10,000,000 calls;
//! `PBXBRIDGE_BENCH_CALLS=1000000` fewer. `PBXBRIDGE_BENCH_REPEAT` requests
//! per case (default 200); `PBXBRIDGE_BENCH_INDEXES=1` adds the indexes
//! proposed for the sorts and call_id first. Targets (issue 12): list and
//! timeline p99 ≤ 25 ms, CSV ≥ 100,000 rows/s with memory that does not
//! grow with the rows.
//! Under `cargo test` it does nothing.

#[path = "../tests/api_support/mod.rs"]
mod api_support;
#[path = "../tests/db_support/mod.rs"]
mod db_support;

use std::time::{Duration, Instant};

use api_support::TestApi;
use futures_util::StreamExt as _;
use pbxbridge::db::Backend;

/// Calls per INSERT … SELECT generate_series statement.
const CHUNK: u64 = 1_000_000;
/// Indexes not (yet) in the migrations, added with PBXBRIDGE_BENCH_INDEXES=1
/// to see what they change.
const SUGGESTED_INDEXES: [&str; 3] = [
    "CREATE INDEX calls_call_id ON {calls} (call_id)",
    "CREATE INDEX calls_direction_id ON {calls} (direction, id)",
    "CREATE INDEX calls_agent_sort ON {calls} ((COALESCE(agent, '')), id)",
];
/// Time spent on one case at most (after the first few requests).
const BUDGET: Duration = Duration::from_secs(15);
/// Distinct contacts the linked calls spread over.
const CONTACTS: u64 = 50_000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory of this process (server and client), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Starts the peak over (Linux: writing 5 to clear_refs resets VmHWM).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn fill(api: &TestApi, n: u64) {
    let db = &api.db;
    let t = Instant::now();
    let mut done = 0;
    while done < n {
        let upto = (done + CHUNK).min(n);
        // Three calls a minute from 2020 on: ties on started_at; durations
        // in 5 values; agents 2001-2005 and none.
        let sql = db.sql(&format!(
            "INSERT INTO {{calls}} (sensor, call_id, direction, from_number, to_number, other_number, \
               from_raw, to_raw, agent, agent_type, agent_id, agent_name, started_at, answered_at, ended_at, \
               duration, outcome, sip_code, end_reason, dtmf, recording_status, recording_path, \
               recording_sample_rate, recording_samples, written_at, updated_at, note_count) \
             SELECT 'bench', 'b' || g || '@pbx', \
               (ARRAY['incoming','outgoing','internal','unknown'])[g % 4 + 1], \
               '+1415555' || lpad((g % 10000)::text, 4, '0'), '200' || (g % 6), \
               '+1415555' || lpad((g % 10000)::text, 4, '0'), \
               '+1415555' || lpad((g % 10000)::text, 4, '0'), '200' || (g % 6), \
               CASE WHEN g % 6 = 0 THEN NULL ELSE '200' || (g % 6) END, \
               CASE WHEN g % 6 = 0 THEN NULL ELSE 'user' END, \
               CASE WHEN g % 6 = 0 THEN NULL ELSE 'u' || (g % 6) END, \
               CASE WHEN g % 6 = 0 THEN NULL ELSE 'Agent ' || (g % 6) END, \
               t, t + interval '2 seconds', t + interval '2 minutes', \
               ((g / 7) % 5) * 30.0, \
               (ARRAY['answered','answered','answered','busy','no_answer','cancelled'])[(g / 3) % 6 + 1], \
               200, 'caller_bye', '', \
               (ARRAY['stored','pending','none','failed'])[(g / 5) % 4 + 1], \
               '/rec/b' || g || '.wav', 8000, 8000 * 30, t, t, \
               CASE WHEN g % 7 = 0 THEN 1 ELSE 0 END \
             FROM generate_series({}, {}) AS g, \
               LATERAL (SELECT timestamptz '2020-01-01 00:00:00+00' + (g / 3) * interval '1 minute' AS t) s",
            done + 1,
            upto
        ));
        db_support::exec(db, &sql).await;
        done = upto;
        eprintln!("  {done} calls ({:.0} s)", t.elapsed().as_secs_f64());
    }
    let links = db.sql(&format!(
        "INSERT INTO {{call_links}} (call_row, record_type, record_id, field, source, display_name, created_at) \
         SELECT id, 'contact', (id % {CONTACTS})::text, 'phone', 'auto', 'Contact ' || (id % {CONTACTS}), started_at \
         FROM {{calls}} WHERE id % 3 = 0"
    ));
    db_support::exec(db, &links).await;
    let notes = db.sql(
        "INSERT INTO {call_notes} (call_row, author, body, created_at, updated_at) \
         SELECT id, 'bench', 'Called back, left a message', started_at, started_at \
         FROM {calls} WHERE note_count > 0",
    );
    db_support::exec(db, &notes).await;
    db_support::exec(db, "VACUUM ANALYZE").await;
    eprintln!(
        "  links, notes, analyze: done ({:.0} s)",
        t.elapsed().as_secs_f64()
    );
}

struct Stats {
    n: usize,
    p50: Duration,
    p99: Duration,
    rows: usize,
}

async fn measure(api: &TestApi, token: &str, path: &str, repeat: usize) -> Stats {
    let mut times = Vec::with_capacity(repeat);
    let mut rows = 0;
    let began = Instant::now();
    for i in 0..repeat + 3 {
        // Slow cases stop after a while: their p99 is then the worst seen.
        if i > 8 && began.elapsed() > BUDGET {
            break;
        }
        let t = Instant::now();
        let resp = api.get(path, token).send().await.expect("request");
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.expect("json");
        let took = t.elapsed();
        assert_eq!(status, 200, "{path}: {body}");
        rows = body["data"].as_array().map_or(0, Vec::len);
        // The first few warm the caches and the pool.
        if i >= 3 {
            times.push(took);
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    Stats {
        n: times.len(),
        p50: at(0.50),
        p99: at(0.99),
        rows,
    }
}

/// The cursor `pages` pages of `limit` deep, walked page by page.
async fn deep_cursor(api: &TestApi, token: &str, pages: usize, limit: usize) -> String {
    let mut cursor = String::new();
    for _ in 0..pages {
        let path = if cursor.is_empty() {
            format!("/v1/calls?limit={limit}")
        } else {
            format!("/v1/calls?limit={limit}&cursor={cursor}")
        };
        let (s, body) = api.get_json(&path, token).await;
        assert_eq!(s, 200, "{body}");
        cursor = body["next_cursor"]
            .as_str()
            .expect("next_cursor")
            .to_owned();
    }
    cursor
}

async fn csv_export(api: &TestApi, token: &str, query: &str) -> (u64, f64, f64) {
    reset_peak_rss();
    let t = Instant::now();
    let resp = api
        .get(&format!("/v1/calls.csv?{query}"), token)
        .send()
        .await
        .expect("csv");
    assert_eq!(resp.status(), 200);
    let mut lines = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("csv chunk");
        // No field in the bench data holds a line break: lines are rows.
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    let rows = lines.saturating_sub(1);
    (rows, rows as f64 / secs, peak_rss_mib())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run() {
    let n = env_u64("PBXBRIDGE_BENCH_CALLS", 10_000_000);
    let repeat = env_u64("PBXBRIDGE_BENCH_REPEAT", 200) as usize;
    eprintln!("api_list: filling PostgreSQL with {n} calls");
    let api = TestApi::start(Backend::Postgres).await;
    fill(&api, n).await;
    if std::env::var_os("PBXBRIDGE_BENCH_INDEXES").is_some() {
        // The indexes the report proposes for migrations/0003.
        for sql in SUGGESTED_INDEXES {
            db_support::exec(&api.db, &api.db.sql(sql)).await;
        }
        db_support::exec(&api.db, "ANALYZE").await;
        eprintln!("  with the suggested indexes");
    }
    let token = api.key("supervisor", None).await;
    // A day in the middle of the data: 4,320 calls a day.
    let day = {
        let mid = n / 2 / 3 / 1440;
        let d = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(mid);
        d.format("%Y-%m-%d").to_string()
    };
    let last_week = {
        let end = n / 3 / 1440;
        let d = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()
            + chrono::Days::new(end.saturating_sub(7));
        d.format("%Y-%m-%d").to_string()
    };
    let contact = format!("contact:{}", (n / 2) / 3 * 3 % CONTACTS);
    let cases: Vec<(&str, String)> = vec![
        ("no filter, newest first", "/v1/calls".into()),
        ("direction=incoming", "/v1/calls?direction=incoming".into()),
        (
            "direction=internal,unknown",
            "/v1/calls?direction=internal,unknown".into(),
        ),
        ("outcome=busy", "/v1/calls?outcome=busy".into()),
        ("from/to one day", format!("/v1/calls?from={day}&to={day}")),
        ("min_duration=120", "/v1/calls?min_duration=120".into()),
        ("max_duration=0", "/v1/calls?max_duration=0".into()),
        ("recorded=true", "/v1/calls?recorded=true".into()),
        ("has_note=true", "/v1/calls?has_note=true".into()),
        ("agent=2003", "/v1/calls?agent=2003".into()),
        ("agent=u4 (CRM id)", "/v1/calls?agent=u4".into()),
        ("number", "/v1/calls?number=%2B14155551234".into()),
        ("record", format!("/v1/calls?record={contact}")),
        ("sensor=bench", "/v1/calls?sensor=bench".into()),
        ("call_id", "/v1/calls?call_id=b777%40pbx".into()),
        (
            "updated_since last week",
            format!("/v1/calls?updated_since={last_week}"),
        ),
        (
            "q=Contact 12345 (rare)",
            "/v1/calls?q=Contact%2012345".into(),
        ),
        ("q=agent 3 (common)", "/v1/calls?q=agent%203".into()),
        (
            "combined: incoming+answered+agent+recorded",
            "/v1/calls?direction=incoming&outcome=answered&agent=2002&recorded=true".into(),
        ),
        (
            "combined: day+has_note+min_duration",
            format!("/v1/calls?from={day}&to={day}&has_note=true&min_duration=30"),
        ),
        ("sort=duration", "/v1/calls?sort=duration".into()),
        ("sort=-agent", "/v1/calls?sort=-agent".into()),
        ("sort=direction", "/v1/calls?sort=direction".into()),
        (
            "include_total, one day",
            format!("/v1/calls?from={day}&to={day}&include_total=true"),
        ),
        (
            "timeline",
            format!("/v1/records/{}/calls", contact.replace(':', "/")),
        ),
        (
            "timeline, answered",
            format!(
                "/v1/records/{}/calls?outcome=answered",
                contact.replace(':', "/")
            ),
        ),
        ("page=400 (offset 10,000)", "/v1/calls?page=400".into()),
    ];
    println!("\n{n} calls; {repeat} requests per case, limit 25\n");
    println!(
        "{:<46} {:>9} {:>9} {:>5} {:>5}",
        "case", "p50 ms", "p99 ms", "rows", "reqs"
    );
    for (name, path) in &cases {
        let s = measure(&api, &token, path, repeat).await;
        let flag = if ms(s.p99) > 25.0 { "  > 25 ms" } else { "" };
        println!(
            "{name:<46} {:>9.2} {:>9.2} {:>5} {:>5}{flag}",
            ms(s.p50),
            ms(s.p99),
            s.rows,
            s.n
        );
    }
    // Page 10,000 of 25 (or as deep as the data goes), walked 100 at a time.
    let walk = (n as usize / 100).saturating_sub(1).min(2_500);
    let pages = walk * 4;
    let t = Instant::now();
    let cursor = deep_cursor(&api, &token, walk, 100).await;
    let walked = t.elapsed();
    let s = measure(&api, &token, &format!("/v1/calls?cursor={cursor}"), repeat).await;
    println!(
        "{:<46} {:>9.2} {:>9.2} {:>5} {:>5}   (walked there in {:.1} s)",
        format!("cursor at page {pages}"),
        ms(s.p50),
        ms(s.p99),
        s.rows,
        s.n,
        walked.as_secs_f64()
    );
    let before = peak_rss_mib();
    let (rows, rate, peak) = csv_export(&api, &token, "outcome=busy").await;
    println!(
        "\nCSV outcome=busy: {rows} rows, {rate:.0} rows/s, peak RSS {peak:.0} MiB (before: {before:.0} MiB)"
    );
    let (rows, rate, peak) = csv_export(&api, &token, "").await;
    println!("CSV everything:   {rows} rows, {rate:.0} rows/s, peak RSS {peak:.0} MiB");
    api.stop().await;
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: nothing to fill.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}
