//! Replay benchmark: a generated capture of many concurrent answered calls,
//! replayed through the whole pipeline with recording on. Prints packets/s,
//! calls/s, peak RSS and the memory one active call costs.
//!
//! `cargo bench --bench replay` runs the standard scenarios (1,000 concurrent
//! calls of 30 s, and 100 concurrent for the per-call memory figure), each in a
//! fresh child process so RSS figures don't mix. `cargo bench --bench replay --
//! --calls N --concurrent C --talk-secs S` runs one scenario. Under `cargo test`
//! it runs a tiny scenario as a smoke test. `--no-recording` measures the
//! packet path alone (tracker, RTP, G.711 decode).

// Benchmark tooling, kept out of the library; each user takes a part of it.
#[allow(dead_code)]
#[path = "../tools/loadgen/mod.rs"]
mod loadgen;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use loadgen::encoded::{encode_with_ffmpeg, FfmpegCodec};
use loadgen::{write_capture, EncodedCodec, LoadSpec};
use pbxbridge::call::EndReason;
use pbxbridge::capture::pcapfile::PcapFileReader;
use pbxbridge::config::Config;
use pbxbridge::pipeline::Pipeline;
use pbxbridge::report::CallReport;
use pbxbridge::report::RecordingStatus;
use pbxbridge::time::Timestamp;
use std::sync::Arc;

struct Scenario {
    calls: usize,
    concurrent: usize,
    talk_secs: u32,
    record: bool,
    /// Half the calls G.711, a quarter G.722, a quarter Opus (frames encoded
    /// by ffmpeg from the fixtures' speech) instead of all G.711.
    mix: bool,
}

/// User + system CPU seconds of this process so far (all its threads).
fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// 50% G.711, 25% G.722, 25% Opus.
fn codec_mix() -> Vec<Option<Arc<EncodedCodec>>> {
    let speech = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pcap-fixtures/audio/caller.pcmu"
    ));
    let enc = |c| {
        Some(Arc::new(
            encode_with_ffmpeg(c, speech).expect("ffmpeg encodes"),
        ))
    };
    vec![None, None, enc(FfmpegCodec::G722), enc(FfmpegCodec::Opus)]
}

fn arg(args: &[String], name: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn run_one(s: &Scenario, dir: &Path) {
    let pcap = dir.join("load.pcap");
    let mut spec = LoadSpec::new(s.calls, s.concurrent, s.talk_secs);
    if s.mix {
        spec.mix = codec_mix();
    }
    let t = Instant::now();
    let summary = write_capture(&spec, BufWriter::new(File::create(&pcap).unwrap())).unwrap();
    eprintln!(
        "generated {} packets ({} calls, {} MiB) in {:.1} s",
        summary.packets,
        summary.calls,
        summary.bytes >> 20,
        t.elapsed().as_secs_f64()
    );

    let mut cfg = Config::default();
    cfg.recording.dir = dir.join("rec");
    cfg.recording.enabled = s.record;
    // The sinks' side, as in the daemon: a bounded channel from the recorder
    // thread, read on a thread of its own.
    let (tx, rx) = crossbeam_channel::bounded::<Vec<CallReport>>(1024);
    let sink = std::thread::spawn(move || {
        let (mut finished, mut stored) = (0usize, 0usize);
        for batch in rx {
            finished += batch.len();
            stored += batch
                .iter()
                .filter(|c| c.recording.status == RecordingStatus::Stored)
                .count();
        }
        (finished, stored)
    });
    let mut pipeline = Pipeline::new(&cfg, tx).unwrap();
    let mut reader = PcapFileReader::open(&pcap).unwrap();
    let mut peak_active = 0usize;
    let mut rss_at_peak = 0u64;
    let mut last = Timestamp::default();
    let mut n = 0u64;
    let rss_before = rss_kib("VmRSS:");
    let cpu_before = cpu_secs();
    let t = Instant::now();
    while let Some(p) = reader.next_packet().unwrap() {
        last = p.ts;
        pipeline.handle_frame(p.ts, p.link, p.data);
        n += 1;
        if n % 20_000 == 0 {
            let active = pipeline.tracker().active_calls();
            if active >= peak_active {
                peak_active = active;
                rss_at_peak = rss_kib("VmRSS:");
            }
        }
    }
    pipeline.close_all(last, EndReason::CaptureEnd);
    let secs = t.elapsed().as_secs_f64();
    let tracker = pipeline.finish();
    let st = tracker.stats();
    let (finished, stored) = sink.join().unwrap();
    let cpu = cpu_secs() - cpu_before;
    assert_eq!(st.packets, summary.packets, "every packet was read");
    assert_eq!(finished, s.calls, "every call finished");
    if s.record {
        assert_eq!(stored, s.calls, "every call recorded");
    }
    println!(
        "RESULT record={} mix={} calls={} concurrent={} packets={} secs={:.3} cpu_secs={:.3} packets_per_cpu_sec={:.0} packets_per_sec={:.0} calls_per_sec={:.1} peak_active={} rss_before_kib={} rss_at_peak_kib={} peak_rss_kib={} dropped={}",
        s.record,
        s.mix,
        s.calls,
        s.concurrent,
        st.packets,
        secs,
        cpu,
        st.packets as f64 / cpu.max(1e-9),
        st.packets as f64 / secs,
        s.calls as f64 / secs,
        peak_active,
        rss_before,
        rss_at_peak,
        rss_kib("VmHWM:"),
        st.dropped_total()
    );
}

fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or(0.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    // tmpfs keeps the disk's write-back throttling out of a CPU benchmark;
    // PBXBRIDGE_BENCH_DIR points it at a real disk instead.
    let base = std::env::var("PBXBRIDGE_BENCH_DIR").unwrap_or_else(|_| {
        if Path::new("/dev/shm").is_dir() {
            "/dev/shm".into()
        } else {
            std::env::temp_dir().display().to_string()
        }
    });
    let dir = tempfile::tempdir_in(&base).unwrap();
    eprintln!("capture and recordings in {base}");
    if let Some(calls) = arg(&args, "--calls") {
        let s = Scenario {
            calls,
            concurrent: arg(&args, "--concurrent").unwrap_or(calls),
            talk_secs: arg(&args, "--talk-secs").unwrap_or(30) as u32,
            record: !args.iter().any(|a| a == "--no-recording"),
            mix: args.iter().any(|a| a == "--mix"),
        };
        return run_one(&s, dir.path());
    }
    if !benching {
        // `cargo test` runs bench targets once: keep it a quick smoke test.
        return run_one(
            &Scenario {
                calls: 20,
                concurrent: 10,
                talk_secs: 2,
                record: true,
                mix: false,
            },
            dir.path(),
        );
    }
    let exe = std::env::current_exe().unwrap();
    let mut results = Vec::new();
    // The third run leaves recording off: the packet path's own ceiling.
    // The fourth records the codec mix: its packets/s against the first's.
    for (calls, concurrent, record, mix) in [
        (1000, 1000, true, false),
        (100, 100, true, false),
        (1000, 1000, false, false),
        (1000, 1000, true, true),
    ] {
        let mut cmd = Command::new(&exe);
        if !record {
            cmd.arg("--no-recording");
        }
        if mix {
            cmd.arg("--mix");
        }
        let out = cmd
            .args([
                "--bench",
                "--calls",
                &calls.to_string(),
                "--concurrent",
                &concurrent.to_string(),
            ])
            .output()
            .unwrap();
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let line = text
            .lines()
            .find(|l| l.starts_with("RESULT"))
            .unwrap_or_else(|| panic!("no result: {text}"))
            .to_string();
        println!("{line}");
        results.push(line);
    }
    let per_call =
        (field(&results[0], "rss_at_peak_kib") - field(&results[1], "rss_at_peak_kib")) / 900.0;
    println!(
        "SUMMARY packets/s={:.0} (recording off: {:.0}; codec mix: {:.0}, {:.2} of all-G.711 per CPU second) calls/s={:.1} peak_rss_mib={:.1} memory_per_active_call_kib={:.1}",
        field(&results[0], "packets_per_sec"),
        field(&results[2], "packets_per_sec"),
        field(&results[3], "packets_per_sec"),
        field(&results[3], "packets_per_cpu_sec") / field(&results[0], "packets_per_cpu_sec"),
        field(&results[0], "calls_per_sec"),
        field(&results[0], "peak_rss_kib") / 1024.0,
        per_call
    );
}
