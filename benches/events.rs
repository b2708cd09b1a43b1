//! Live event latency benchmark (issue 13): the daemon's parts wired as
//! `pbxbridge run` wires them (event log and task, sinks, persist thread,
//! pipeline with events and in-flight snapshots, the HTTP API's
//! `/v1/events`), a CRM `contacts` table of N phone values indexed by the
//! daemon's own index task, and synthetic incoming calls from those numbers
//! fed to the pipeline from one thread, paced, stamped with the wall clock
//! as live capture would. An SSE client measures:
//!
//! - ring → screen-pop: feeding the 180 → `call.ringing` (with its CRM
//!   matches) on the stream;
//! - hangup → completed: feeding the BYE (and its 200) → `call.completed`
//!   (after the row is committed) on the stream;
//!
//! and, for each, when it was in the event log (fsynced), to tell the log's
//! part from the stream's. Also events/s delivered and CPU per 1,000 events
//! (getrusage; "daemon" leaves out the feeding and client threads; the
//! PostgreSQL server's CPU is not in it), at a low rate and under load.
//!
//! `cargo bench --bench events` runs SQLite and, when PBXBRIDGE_TEST_POSTGRES
//! is set, PostgreSQL (a throwaway database), with PBXBRIDGE_BENCH_PHONES
//! phone values (default 1,000,000). `-- --backend sqlite|postgres` narrows
//! it; `-- --calls N --rate R` runs one case of N calls at R a second. The
//! state folder (outbox, event log, in-flight snapshots, recordings) and the
//! SQLite file are in $TMPDIR, on disk; PBXBRIDGE_BENCH_DIR moves the state
//! folder. Recording is on, as by default (PBXBRIDGE_BENCH_RECORDING=off
//! turns it off). PBXBRIDGE_BENCH_NODELAY=1 sets TCP_NODELAY on the API's
//! listening socket (accepted sockets inherit it), which the API does not do
//! itself. Targets: ring → `call.ringing` p99 ≤ 50 ms, hangup →
//! `call.completed` p99 ≤ 100 ms.
//!
//! Under `cargo test` it runs 5 calls on SQLite with 1,000 phone values and
//! checks each got its screen-pop with a match, its `call.completed` and
//! every other event.

#[path = "events/cpu.rs"]
mod cpu;
#[path = "../tests/db_support/mod.rs"]
mod db_support;
#[path = "events/frames.rs"]
mod frames;
#[path = "events/node.rs"]
mod node;
#[path = "events/report.rs"]
mod report;
#[path = "events/sse.rs"]
mod sse;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpu::{process_cpu_us, thread_cpu_us, threads_cpu_us};
use db_support::TestDb;
use frames::{CallSpec, Step, Timing};
use node::Node;
use pbxbridge::db::Backend;
use pbxbridge::pipeline::Pipeline;
use pbxbridge::time::Timestamp;
use pbxbridge::wire::LinkType;
use report::{latency_row, load_row, Lat, Outcome, LATENCY_HEAD, LOAD_HEAD};

/// The daemon's threads whose CPU is shown apart.
const RECORDER: &str = "pbxbridge-recor";
const PERSIST: &str = "pbxbridge-persi";
/// Events each call makes: ringing, answered, hungup, completed and, with
/// recording on, recording.stored.
fn events_per_call() -> usize {
    if node::recording_on() {
        5
    } else {
        4
    }
}
/// How long the last events may trail the last frame before the case fails.
const DRAIN_PATIENCE: Duration = Duration::from_secs(120);
const TIMING: Timing = Timing {
    ring_us: 150_000,
    rtp: 5,
};

#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    calls: usize,
    /// Calls started, and so ended, per second.
    rate: f64,
}

const CASES: [Case; 3] = [
    Case {
        name: "20 calls/s, 1,000 calls",
        calls: 1_000,
        rate: 20.0,
    },
    Case {
        name: "500 call ends/s for 10 s",
        calls: 5_000,
        rate: 500.0,
    },
    Case {
        name: "2,000 call ends/s for 5 s",
        calls: 10_000,
        rate: 2_000.0,
    },
];

/// What the feeder noted: when each call's 180 and BYE went in.
struct Fed {
    ring: Vec<Option<Instant>>,
    bye: Vec<Option<Instant>>,
    began: Instant,
    lag: Duration,
    cpu_us: u64,
}

/// Feeds every call's frames at their time, from this one thread.
fn feed(pipeline: &mut Pipeline, calls: &[CallSpec], rate: f64) -> Fed {
    let cpu0 = thread_cpu_us();
    let began = Instant::now() + Duration::from_millis(20);
    let start_us = |i: usize| (i as f64 * 1e6 / rate) as u64;
    let mut due: BinaryHeap<Reverse<(u64, usize, Step)>> = (0..calls.len())
        .map(|i| Reverse((start_us(i), i, Step::Invite)))
        .collect();
    let mut fed = Fed {
        ring: vec![None; calls.len()],
        bye: vec![None; calls.len()],
        began,
        lag: Duration::ZERO,
        cpu_us: 0,
    };
    let mut frame = Vec::with_capacity(2048);
    let mut ip_id = 0u16;
    let mut tick = Instant::now();
    while let Some(Reverse((at_us, i, step))) = due.pop() {
        let at = began + Duration::from_micros(at_us);
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        fed.lag = fed.lag.max(Instant::now().saturating_duration_since(at));
        ip_id = ip_id.wrapping_add(1);
        calls[i].frame(step, ip_id, &mut frame);
        let t = Instant::now();
        match step {
            Step::Ringing => fed.ring[i] = Some(t),
            Step::Bye => fed.bye[i] = Some(t),
            _ => {}
        }
        pipeline.handle_frame(Timestamp::now(), LinkType::Ethernet, &frame);
        if let Some(next) = TIMING.next(step) {
            let t0 = start_us(i);
            due.push(Reverse((t0 + TIMING.offset_us(next), i, next)));
        }
        // As the tracker thread does on a quiet line.
        if tick.elapsed() >= Duration::from_millis(250) {
            tick = Instant::now();
            pipeline.handle_timeout(Timestamp::now().saturating_add_micros(-500_000));
        }
    }
    fed.cpu_us = thread_cpu_us() - cpu0;
    fed
}

/// The calls of one case: callers are contacts spread over the whole table.
fn calls_for(tag: &str, first: usize, n: usize, phones: usize) -> Vec<CallSpec> {
    (0..n)
        .map(|j| {
            let idx = first + j;
            let contact = (idx * 7_919 + 13) % phones;
            CallSpec {
                idx,
                call_id: format!("{tag}-{j}@bench.invalid"),
                from: node::contact_number(contact).0,
                ext: format!("{}", 2000 + idx % 50),
            }
        })
        .collect()
}

struct Client {
    rx: Receiver<sse::Seen>,
    cpu_us: Arc<AtomicU64>,
}

/// Runs one case on a started node and waits for its events.
async fn run_case(
    node: &mut Node,
    client: &mut Client,
    backend: &'static str,
    case: Case,
    tag: &str,
    first: usize,
    phones: usize,
) -> Outcome {
    let calls = calls_for(tag, first, case.calls, phones);
    let calls_ids: Vec<String> = calls.iter().map(|c| c.call_id.clone()).collect();
    let mut pipeline = node.pipeline.take().expect("pipeline");
    let appended0 = node.events.log.stats.appended.load(Ordering::Relaxed);
    let dropped0 = node.events.emitter.stats.dropped.load(Ordering::Relaxed);
    let (proc0, client0) = (process_cpu_us(), client.cpu_us.load(Ordering::Relaxed));
    let (rec0, persist0) = (threads_cpu_us(RECORDER), threads_cpu_us(PERSIST));
    node.logged
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    let rx = std::mem::replace(&mut client.rx, channel().1);
    let prefix = format!("{tag}-");
    let (pipeline, fed, rx, seen) = tokio::task::spawn_blocking(move || {
        let feeder = std::thread::Builder::new()
            .name("bench-feeder".into())
            .spawn(move || {
                let fed = feed(&mut pipeline, &calls, case.rate);
                (pipeline, fed)
            })
            .expect("feeder thread");
        let seen = collect(&rx, &prefix, case.calls, &feeder);
        let (pipeline, fed) = feeder.join().expect("feeder");
        (pipeline, fed, rx, seen)
    })
    .await
    .expect("case");
    client.rx = rx;
    node.pipeline = Some(pipeline);
    let proc_us = process_cpu_us() - proc0;
    let client_us = client.cpu_us.load(Ordering::Relaxed) - client0;
    let recorder_us = threads_cpu_us(RECORDER).saturating_sub(rec0);
    let persist_us = threads_cpu_us(PERSIST).saturating_sub(persist0);
    let appended = node.events.log.stats.appended.load(Ordering::Relaxed) - appended0;

    let mut out = Outcome {
        backend,
        case: case.name,
        calls: case.calls,
        ring: Lat::default(),
        done: Lat::default(),
        ring_log: Lat::default(),
        done_log: Lat::default(),
        matched: 0,
        events: seen.count,
        events_per_sec: 0.0,
        offered_per_sec: case.rate * events_per_call() as f64,
        cpu_process_ms: 0.0,
        cpu_daemon_ms: 0.0,
        cpu_recorder_ms: 0.0,
        cpu_persist_ms: 0.0,
        feed_lag: fed.lag,
        dropped: node.events.emitter.stats.dropped.load(Ordering::Relaxed) - dropped0,
    };
    let logged = std::mem::take(&mut *node.logged.lock().unwrap_or_else(|e| e.into_inner()));
    for (i, got) in seen.calls.iter().enumerate() {
        let id = &calls_ids[i];
        if let (Some(fed), Some(at)) = (fed.ring[i], logged.get(&(id.clone(), true))) {
            out.ring_log.0.push(at.saturating_duration_since(fed));
        }
        if let (Some(fed), Some(at)) = (fed.bye[i], logged.get(&(id.clone(), false))) {
            out.done_log.0.push(at.saturating_duration_since(fed));
        }
        if let (Some(fed), Some((at, matches))) = (fed.ring[i], got.ringing) {
            out.ring.0.push(at.saturating_duration_since(fed));
            out.matched += usize::from(matches > 0);
        }
        if let (Some(fed), Some(at)) = (fed.bye[i], got.completed) {
            out.done.0.push(at.saturating_duration_since(fed));
        }
    }
    for l in [
        &mut out.ring,
        &mut out.done,
        &mut out.ring_log,
        &mut out.done_log,
    ] {
        l.0.sort();
    }
    if let Some(last) = seen.last {
        out.events_per_sec = seen.count as f64 / last.duration_since(fed.began).as_secs_f64();
    }
    let per_k = |us: u64| us as f64 / 1e3 / (appended.max(1) as f64 / 1e3);
    out.cpu_process_ms = per_k(proc_us);
    out.cpu_daemon_ms = per_k(proc_us.saturating_sub(fed.cpu_us + client_us));
    out.cpu_recorder_ms = per_k(recorder_us);
    out.cpu_persist_ms = per_k(persist_us);
    out
}

#[derive(Default, Clone, Copy)]
struct CallSeen {
    ringing: Option<(Instant, usize)>,
    completed: Option<Instant>,
}

struct Collected {
    calls: Vec<CallSeen>,
    count: usize,
    last: Option<Instant>,
}

/// Takes the case's events off the stream until every call has its
/// screen-pop and completion and the rest of their events have had a moment.
fn collect<T>(
    rx: &Receiver<sse::Seen>,
    prefix: &str,
    n: usize,
    feeder: &std::thread::JoinHandle<T>,
) -> Collected {
    let mut c = Collected {
        calls: vec![CallSeen::default(); n],
        count: 0,
        last: None,
    };
    let (mut rings, mut dones) = (0, 0);
    let mut fed_at: Option<Instant> = None;
    let mut settled: Option<Instant> = None;
    loop {
        if fed_at.is_none() && feeder.is_finished() {
            fed_at = Some(Instant::now());
        }
        if rings == n && dones == n && settled.is_none() {
            settled = Some(Instant::now());
        }
        let whole = c.count >= n * events_per_call();
        if settled.is_some_and(|t| whole || t.elapsed() > Duration::from_millis(500)) {
            return c;
        }
        if fed_at.is_some_and(|t| t.elapsed() > DRAIN_PATIENCE) {
            eprintln!("  events missing: {rings} of {n} screen-pops, {dones} completions");
            return c;
        }
        let s = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(s) => s,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => panic!("the SSE stream ended"),
        };
        let Some(i) = s
            .call_id
            .strip_prefix(prefix)
            .and_then(|r| r.split('@').next())
            .and_then(|j| j.parse::<usize>().ok())
            .filter(|&j| j < n)
        else {
            continue;
        };
        c.count += 1;
        c.last = Some(s.at);
        let call = &mut c.calls[i];
        match s.kind.as_str() {
            "call.ringing" if call.ringing.is_none() => {
                call.ringing = Some((s.at, s.matches));
                rings += 1;
            }
            "call.completed" if call.completed.is_none() => {
                call.completed = Some(s.at);
                dones += 1;
            }
            _ => {}
        }
    }
}

/// One backend: fill the CRM, start the node, run the cases, stop.
async fn run_backend(backend: Backend, phones: usize, cases: &[Case]) -> Vec<Outcome> {
    let name = backend.name();
    let testdb = TestDb::new(backend).await;
    let db = testdb.connect().await;
    let t = Instant::now();
    node::fill_contacts(&db, phones).await;
    db.close().await;
    eprintln!(
        "{name}: {phones} contacts filled in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let base = std::env::var("PBXBRIDGE_BENCH_DIR")
        .unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    let dir = tempfile::tempdir_in(&base).expect("bench dir");
    let cfg = node::config(dir.path(), &testdb.url);
    let mut node = Node::start(&cfg).await;
    eprintln!(
        "{name}: phone index built by the daemon's index task: {} values in {:.1} s",
        node.indexed, node.index_secs
    );
    let (tx, rx) = channel();
    let (ready_tx, ready_rx) = channel();
    let cpu = Arc::new(AtomicU64::new(0));
    let reader = sse::spawn(
        node.events_url.clone(),
        node.token.clone(),
        tx,
        ready_tx,
        cpu.clone(),
    );
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("SSE stream open");
    let mut client = Client { rx, cpu_us: cpu };
    let mut out = Vec::new();
    // The first calls open the pool's connections and warm the caches.
    let warm = Case {
        name: "warm-up",
        calls: 20,
        rate: 20.0,
    };
    let mut first = 0;
    let run = |i: usize| format!("{name}{i}");
    let o = run_case(&mut node, &mut client, name, warm, &run(0), first, phones).await;
    first += warm.calls;
    assert_eq!(
        o.done.0.len(),
        warm.calls,
        "{name}: warm-up calls not completed"
    );
    for (i, case) in cases.iter().enumerate() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let o = run_case(
            &mut node,
            &mut client,
            name,
            *case,
            &run(i + 1),
            first,
            phones,
        )
        .await;
        first += case.calls;
        eprintln!("{}\n{}", latency_row(&o), load_row(&o));
        out.push(o);
    }
    if let Some(p) = node.pipeline.as_mut() {
        p.close_all(Timestamp::now(), pbxbridge::call::EndReason::Shutdown);
    }
    node.stop().await;
    let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    drop(testdb);
    out
}

fn arg(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    // As the daemon's runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if !benching {
        // `cargo test` runs bench targets once: a quick smoke test.
        let smoke = Case {
            name: "smoke",
            calls: 5,
            rate: 20.0,
        };
        let out = rt.block_on(run_backend(Backend::Sqlite, 1_000, &[smoke]));
        let o = &out[0];
        assert_eq!(o.ring.0.len(), 5, "every call's screen-pop arrived");
        assert_eq!(o.matched, 5, "every screen-pop named the caller's contact");
        assert_eq!(o.done.0.len(), 5, "every call's completion arrived");
        assert_eq!(
            o.events,
            5 * events_per_call(),
            "every event of every call arrived"
        );
        return;
    }
    let phones = std::env::var("PBXBRIDGE_BENCH_PHONES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let backends: Vec<Backend> = match arg(&args, "--backend") {
        Some(b) => vec![Backend::from_url(&format!("{b}:")).expect("sqlite or postgres")],
        None if std::env::var_os(db_support::POSTGRES_ENV).is_some() => {
            vec![Backend::Sqlite, Backend::Postgres]
        }
        None => vec![Backend::Sqlite],
    };
    let state = std::env::var("PBXBRIDGE_BENCH_DIR")
        .unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    eprintln!(
        "{phones} phone values; state folder in {}",
        Path::new(&state).display()
    );
    // `--calls N --rate R`: one case of your own instead of the standard ones.
    let custom = arg(&args, "--rate")
        .and_then(|r| r.parse().ok())
        .map(|rate| Case {
            name: "custom",
            calls: arg(&args, "--calls")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1_000),
            rate,
        });
    let cases = custom.map_or(CASES.to_vec(), |c| vec![c]);
    let mut all = Vec::new();
    for b in backends {
        all.extend(rt.block_on(run_backend(b, phones, &cases)));
    }
    println!("\nphone values: {phones}; latencies in ms, p50 / p99 / max");
    println!("{LATENCY_HEAD}");
    for o in &all {
        println!("{}", latency_row(o));
    }
    println!("\n{LOAD_HEAD}");
    for o in &all {
        println!("{}", load_row(o));
    }
}
