//! Writes a synthetic SIP + RTP capture for the replay benchmark.
//!
//! cargo run --release --example gencap -- --calls 1000 --concurrent 1000 --talk-secs 30 --out /tmp/load.pcap

// Benchmark tooling, kept out of the library; each user takes a part of it.
#[allow(dead_code)]
#[path = "../tools/loadgen/mod.rs"]
mod loadgen;

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use loadgen::{write_capture, LoadSpec};
use pbxbridge::time::Timestamp;

#[derive(Parser, Debug)]
#[command(about = "Generate a synthetic SIP/RTP pcap")]
struct Args {
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// Calls up at the same time.
    #[arg(long, default_value_t = 100)]
    concurrent: usize,
    #[arg(long, default_value_t = 30)]
    talk_secs: u32,
    #[arg(long, default_value_t = 20)]
    ptime_ms: u32,
    /// Answer with PCMA instead of PCMU.
    #[arg(long)]
    pcma: bool,
    /// Capture start, seconds since the Unix epoch (default 2026-11-21T10:00:00Z).
    #[arg(long, default_value_t = 1_795_255_200)]
    start: i64,
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let spec = LoadSpec {
        calls: args.calls,
        concurrent: args.concurrent,
        talk_secs: args.talk_secs,
        ptime_ms: args.ptime_ms,
        start: Timestamp::from_secs(args.start),
        codec_pcma: args.pcma,
        mix: Vec::new(),
    };
    let file = match File::create(&args.out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gencap: cannot create {}: {e}", args.out.display());
            return ExitCode::FAILURE;
        }
    };
    let began = Instant::now();
    match write_capture(&spec, file) {
        Ok(s) => {
            let secs = began.elapsed().as_secs_f64();
            eprintln!(
                "gencap: {} calls, {} packets ({} SIP, {} RTP), {:.1} MiB to {} in {:.2} s ({:.2} Mpkt/s, {:.0} MiB/s)",
                s.calls,
                s.packets,
                s.sip_messages,
                s.rtp_packets,
                s.bytes as f64 / (1 << 20) as f64,
                args.out.display(),
                secs,
                s.packets as f64 / secs / 1e6,
                s.bytes as f64 / (1 << 20) as f64 / secs,
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gencap: {e}");
            ExitCode::FAILURE
        }
    }
}
