//! Upload benchmark: recordings from a spool folder to a real local Garage,
//! one after another as the uploader sends them. Prints files/s, MB/s and the
//! CPU time this process spends per recording (hashing, reading, HTTP and
//! signing), plus what that costs as a share of one core at a call rate.
//!
//! `cargo bench --bench upload` uploads 200 three-minute recordings (stereo
//! 16-bit 8 kHz, about 5.8 MB each) twice: once with the default 16 MiB
//! multipart threshold (one PUT each) and once forcing multipart.
//! `-- --files N --minutes M` changes the workload. Under `cargo test` it
//! uploads a handful of short files as a smoke test.
//!
//! The per-file path copies the uploader's private `upload` step (PUT below
//! the threshold, `WriteMultipart` with 8 MiB parts and 4 in flight above
//! it) and surrounds it with the same `hash_file` and HEAD size check. The
//! database update is left out: `db_write` measures that.

#[path = "../tests/store_support/mod.rs"]
mod store_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use object_store::path::Path as Key;
use pbxbridge::store::uploader::hash_file;
use pbxbridge::store::Storage;

use store_support::Garage;

const MIB: u64 = 1024 * 1024;
/// Stereo, 16-bit, 8 kHz.
const BYTES_PER_SEC: usize = 2 * 2 * 8000;

fn arg(args: &[String], name: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

/// User plus system CPU time of this whole process (all threads).
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The Garage server's pid, found by its config path on the command line.
fn garage_pid(g: &Garage) -> Option<u32> {
    let needle = g.dir().join("garage.toml").display().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd);
        (cmd.contains(&needle) && cmd.contains("server")).then_some(pid)
    })
}

/// utime + stime of another process, from /proc/PID/stat.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// A WAV recording of `secs` seconds: header plus a tone under noise, so it
/// compresses about as badly as speech does.
fn base_recording(secs: usize) -> Vec<u8> {
    let data_len = secs * BYTES_PER_SEC;
    let mut v = Vec::with_capacity(44 + data_len);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&((36 + data_len) as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // PCM
    v.extend_from_slice(&2u16.to_le_bytes()); // stereo
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&(BYTES_PER_SEC as u32).to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data_len as u32).to_le_bytes());
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for i in 0..data_len / 2 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let tone = ((i as f64) * 0.07).sin() * 6000.0;
        let noise = ((rng >> 40) as i64 % 2000) as f64;
        v.extend_from_slice(&((tone + noise) as i16).to_le_bytes());
    }
    v
}

/// Writes `n` recordings under `{yyyy}/{mm}/{dd}/{call}.wav`. Each one gets
/// its number stamped every 4 KiB: Garage stores blocks by content hash, and
/// identical files would be deduplicated instead of written.
fn write_spool(dir: &Path, n: usize, base: &[u8]) -> Vec<(PathBuf, PathBuf)> {
    let mut files = Vec::with_capacity(n);
    let mut buf = base.to_vec();
    for i in 0..n {
        let stamp = (i as u64).to_le_bytes();
        for off in (44..buf.len().saturating_sub(8)).step_by(4096) {
            buf[off..off + 8].copy_from_slice(&stamp);
        }
        let relative = PathBuf::from(format!("2024/05/{:02}/bench-{i:05}.wav", 1 + i % 28));
        let path = dir.join(&relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &buf).unwrap();
        files.push((path, relative));
    }
    files
}

/// The uploader's own upload step.
async fn upload(storage: &Storage, key: &Key, path: &Path, size: u64, threshold: u64) {
    pbxbridge::store::uploader::upload(storage, key, path, size, threshold)
        .await
        .expect("upload");
}

#[derive(Default)]
struct Run {
    files: usize,
    bytes: u64,
    wall: Duration,
    cpu_hash: Duration,
    cpu_upload: Duration,
    cpu_garage: Duration,
}

impl Run {
    fn cpu_ms_per_call(&self) -> f64 {
        (self.cpu_hash + self.cpu_upload).as_secs_f64() * 1000.0 / self.files as f64
    }

    fn print(&self, label: &str, minutes: usize) {
        let secs = self.wall.as_secs_f64();
        let per = |d: Duration| d.as_secs_f64() * 1000.0 / self.files as f64;
        let ms = self.cpu_ms_per_call();
        // One core-second is 1,000 ms; an hour has 3,600 of them.
        let at_1000_per_hour = ms * 1000.0 / 3_600_000.0 * 100.0;
        let calls_per_hour_per_channel = 60.0 / minutes as f64;
        let per_100_channels = ms * 100.0 * calls_per_hour_per_channel / 3_600_000.0 * 100.0;
        println!(
            "RESULT {label} files={} mb={:.1} wall_s={secs:.2} files_per_sec={:.1} mb_per_sec={:.1} \
             cpu_ms_per_call={ms:.2} (hash={:.2} upload={:.2}) core_pct_at_1000_calls_per_hour={at_1000_per_hour:.3} \
             core_pct_per_100_concurrent_{minutes}min_calls={per_100_channels:.3} garage_cpu_ms_per_call={:.2}",
            self.files,
            self.bytes as f64 / 1e6,
            self.files as f64 / secs,
            self.bytes as f64 / 1e6 / secs,
            per(self.cpu_hash),
            per(self.cpu_upload),
            per(self.cpu_garage),
        );
    }
}

async fn run(
    storage: &Storage,
    garage: Option<u32>,
    files: &[(PathBuf, PathBuf)],
    threshold: u64,
) -> Run {
    let mut r = Run::default();
    let garage_cpu = || garage.map(process_cpu).unwrap_or_default();
    let g0 = garage_cpu();
    let t = Instant::now();
    for (path, relative) in files {
        let key = storage.key_for(relative);
        let c0 = cpu_time();
        let p = path.clone();
        let (size, _sha) = tokio::task::spawn_blocking(move || hash_file(&p))
            .await
            .unwrap()
            .unwrap();
        let c1 = cpu_time();
        upload(storage, &key, path, size, threshold).await;
        let found = storage.object_store().head(&key).await.unwrap().size;
        assert_eq!(found, size, "{key}: storage reports another size");
        let c2 = cpu_time();
        r.cpu_hash += c1 - c0;
        r.cpu_upload += c2 - c1;
        r.files += 1;
        r.bytes += size;
    }
    r.wall = t.elapsed();
    r.cpu_garage = garage_cpu().saturating_sub(g0);
    r
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    // `cargo test` runs bench targets once: keep that a quick smoke test.
    let (n, minutes) = if benching {
        (
            arg(&args, "--files").unwrap_or(200),
            arg(&args, "--minutes").unwrap_or(3),
        )
    } else {
        (4, 1)
    };
    // The spool on tmpfs keeps the local disk out of the figures;
    // PBXBRIDGE_BENCH_DIR points it at a real disk instead.
    let base = std::env::var("PBXBRIDGE_BENCH_DIR").unwrap_or_else(|_| {
        if Path::new("/dev/shm").is_dir() {
            "/dev/shm".into()
        } else {
            std::env::temp_dir().display().to_string()
        }
    });
    let spool = tempfile::tempdir_in(&base).unwrap();
    let t = Instant::now();
    let files = write_spool(spool.path(), n, &base_recording(minutes * 60));
    eprintln!(
        "spool in {base}: {n} recordings of {minutes} min ({:.1} MB each) written in {:.1} s",
        (minutes * 60 * BYTES_PER_SEC + 44) as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let garage = Garage::start().await;
        let pid = garage_pid(&garage);
        if pid.is_none() {
            eprintln!("garage's pid not found: its CPU is not reported");
        }
        let threshold = 16 * MIB;
        let mut results = Vec::new();
        for (label, prefix, threshold) in [
            ("put_16mib_threshold", "bench/put", threshold),
            ("forced_multipart", "bench/multipart", 0),
        ] {
            let storage = Storage::from_config(&garage.storage_config(prefix))
                .unwrap()
                .unwrap();
            // One warm-up file so connection setup is not in the figures.
            run(&storage, None, &files[..1], threshold).await;
            let r = run(&storage, pid, &files, threshold).await;
            r.print(label, minutes);
            results.push((label, r));
        }
        let (put, mp) = (&results[0].1, &results[1].1);
        println!(
            "SUMMARY {n} recordings of {minutes} min: PUT {:.1} MB/s {:.1} files/s {:.2} CPU ms/call; \
             multipart {:.1} MB/s {:.1} files/s {:.2} CPU ms/call; \
             at 1,000 calls/hour storage costs {:.3}% of one core (PUT)",
            put.bytes as f64 / 1e6 / put.wall.as_secs_f64(),
            put.files as f64 / put.wall.as_secs_f64(),
            put.cpu_ms_per_call(),
            mp.bytes as f64 / 1e6 / mp.wall.as_secs_f64(),
            mp.files as f64 / mp.wall.as_secs_f64(),
            mp.cpu_ms_per_call(),
            put.cpu_ms_per_call() * 1000.0 / 3_600_000.0 * 100.0,
        );
    });
}
