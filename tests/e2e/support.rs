//! Shared by the end-to-end tests (`tests/e2e_*.rs`): they run the real
//! `pbxbridge run` daemon against real SIP peers (SIPp, Kamailio) on loopback.
//!
//! Every child process lives in a guard that kills it on drop, so a failed
//! assertion never leaves a SIPp, Kamailio or daemon behind. Each test gets its
//! own temp dir and random free ports, so the tests of one binary can run in
//! parallel. Missing root or tools is a failure with a message, never a skip.
#![allow(dead_code)] // each test crate uses its own subset

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn scenario(name: &str) -> PathBuf {
    repo().join("pcap-fixtures/scenarios").join(name)
}

// ------------------------------------------------------------------ preconditions

/// Fails the test (never skips) when not root or a tool is missing.
pub fn require(tools: &[&str]) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("?");
    assert_eq!(
        euid, "0",
        "end-to-end tests need root (live capture on lo, SIPp play_pcap_audio raw sockets); \
         run them as root, as scripts/test.sh does in CI"
    );
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "end-to-end tests need these tools, which are missing: {missing:?}; \
         install them with scripts/e2e-deps.sh (Debian: sip-tester kamailio tcpdump ...)"
    );
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file());
    found
}

// ------------------------------------------------------------------ ports

static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// An even port in `range` whose `span` consecutive UDP ports (and the first as
/// TCP) are free now and not handed out before in this process.
pub fn free_ports(range: std::ops::Range<u16>, span: u16) -> u16 {
    for _ in 0..2000 {
        let width = u64::from(range.end - range.start - span);
        let p = (range.start + (random_u64() % width) as u16) & !1;
        if p < range.start {
            continue;
        }
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        let taken = taken.get_or_insert_with(HashSet::new);
        if (p..p + span).any(|q| taken.contains(&q)) {
            continue;
        }
        let free = (p..p + span).all(|q| UdpSocket::bind(("127.0.0.1", q)).is_ok())
            && TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free {
            taken.extend(p..p + span);
            return p;
        }
    }
    panic!("no free ports in {range:?}");
}

/// A free port for a SIP endpoint, HEP or admin listener (outside the RTP range
/// the HEP test captures, 16000-16999).
pub fn free_port() -> u16 {
    free_ports(20000..40000, 2)
}

// ------------------------------------------------------------------ processes

/// A child process that is killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    pub name: String,
    pub child: Option<Child>,
    pub log: PathBuf,
    /// The child leads its own process group and the whole group is killed
    /// (Kamailio forks workers that would outlive their parent).
    pub group: bool,
}

impl Proc {
    /// Runs `cmd` in `dir`, stdout and stderr into `dir/<name>.log`.
    pub fn spawn(name: &str, dir: &Path, cmd: &mut Command) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let child = cmd
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Proc {
            name: name.to_owned(),
            child: Some(child),
            log,
            group: false,
        }
    }

    /// Like `spawn`, with the child in a process group of its own.
    pub fn spawn_group(name: &str, dir: &Path, cmd: &mut Command) -> Proc {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let mut p = Proc::spawn(name, dir, cmd);
        p.group = true;
        p
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for a clean exit; panics with the log otherwise.
    pub fn expect_success(&mut self, limit: Duration) {
        match self.wait_timeout(limit) {
            Some(s) if s.success() => {}
            Some(s) => panic!(
                "{} exited with {s}; log {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            ),
            None => panic!(
                "{} still running after {limit:?}; log {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            ),
        }
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.group {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", c.id())])
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ------------------------------------------------------------------ SIPp

/// One SIPp caller/callee pair on 127.0.0.1 with its own SIP and media ports
/// and its own directory holding the RTP streams it plays.
pub struct Pair {
    pub dir: PathBuf,
    pub uac_port: u16,
    pub uas_port: u16,
    pub uac_media: u16,
    pub uas_media: u16,
}

impl Pair {
    /// Media ports from `media_range` (SIPp binds the port and the next ones).
    pub fn new(root: &Path, name: &str, media_range: std::ops::Range<u16>) -> Pair {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("pair dir");
        Pair {
            dir,
            uac_port: free_port(),
            uas_port: free_port(),
            uac_media: free_ports(media_range.clone(), 4),
            uas_media: free_ports(media_range, 4),
        }
    }

    pub fn ports(&self) -> [u16; 4] {
        [self.uac_port, self.uas_port, self.uac_media, self.uas_media]
    }

    /// Writes caller.rtp.pcap / callee.rtp.pcap (PCMU, the fixtures' audio) for
    /// the scenarios' `play_pcap_audio`, `secs` long each.
    pub fn rtp(&self, secs: f64, ssrc_seed: u32) {
        for (side, ssrc) in [("caller", ssrc_seed), ("callee", ssrc_seed ^ 0x5555_0000)] {
            let fx = repo().join("pcap-fixtures");
            let out = self.dir.join(format!("{side}.rtp.pcap"));
            let status = Command::new("python3")
                .arg(fx.join("rtp-pcap.py"))
                .arg("--audio")
                .arg(fx.join(format!("audio/{side}.pcmu")))
                .args(["--pt", "0", "--duration", &secs.to_string()])
                .args(["--ssrc", &format!("{ssrc:#x}")])
                .arg("--out")
                .arg(&out)
                .status()
                .expect("run python3 pcap-fixtures/rtp-pcap.py");
            assert!(status.success(), "rtp-pcap.py failed for {}", out.display());
        }
    }

    fn common(port: u16, media: u16) -> Vec<String> {
        let mut v: Vec<String> = [
            "-i",
            "127.0.0.1",
            "-m",
            "1",
            "-nostdin",
            "-t",
            "u1",
            "-key",
            "pt",
            "0",
            "-key",
            "codec",
            "PCMU",
            "-timeout",
            "90s",
            "-timeout_error",
            "-trace_err",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend([
            "-p".into(),
            port.to_string(),
            "-mp".into(),
            media.to_string(),
        ]);
        v
    }

    /// Starts the callee side: `scenario` file name and extra SIPp arguments.
    pub fn uas(&self, scen: &str, extra: &[&str]) -> Proc {
        let mut cmd = Command::new("sipp");
        cmd.args(Self::common(self.uas_port, self.uas_media))
            .arg("-sf")
            .arg(scenario(scen))
            .args(extra);
        let p = Proc::spawn("uas", &self.dir, &mut cmd);
        // SIPp binds its socket within a few ms; give it time before the INVITE.
        std::thread::sleep(Duration::from_millis(300));
        p
    }

    /// Starts the caller side towards `target` (the callee or a proxy).
    /// `call_id` is the exact Call-ID SIPp uses (its -cid_str, with no `%`).
    pub fn uac(&self, scen: &str, target: SocketAddr, call_id: &str, extra: &[&str]) -> Proc {
        let mut cmd = Command::new("sipp");
        cmd.args(Self::common(self.uac_port, self.uac_media))
            .arg("-sf")
            .arg(scenario(scen))
            .args(["-cid_str", call_id])
            .args(extra)
            .arg(target.to_string());
        Proc::spawn("uac", &self.dir, &mut cmd)
    }

    pub fn uas_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.uas_port))
    }
}

/// A Call-ID unique to this run, so rows of an earlier run can never match.
pub fn call_id(label: &str) -> String {
    format!(
        "e2e-{label}-{:012x}@127.0.0.1",
        random_u64() & 0xffff_ffff_ffff
    )
}

// ------------------------------------------------------------------ the daemon

pub struct DaemonSpec {
    pub sip_ports: Vec<u16>,
    pub detect_any_port: bool,
    pub interface: String,
    pub filter: String,
    pub hep: Option<SocketAddr>,
    /// Extra TOML appended verbatim (e.g. a [tracker] table).
    pub extra: String,
}

/// Paths and ports of one daemon instance; restarting reuses them.
pub struct DaemonEnv {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub db: PathBuf,
    pub recordings: PathBuf,
    pub admin: SocketAddr,
}

impl DaemonEnv {
    pub fn new(dir: &Path, spec: &DaemonSpec) -> DaemonEnv {
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let db = dir.join("calls.db");
        let recordings = dir.join("recordings");
        let state = dir.join("state");
        let mut toml = String::new();
        let ports: Vec<String> = spec.sip_ports.iter().map(|p| p.to_string()).collect();
        let _ = write!(
            toml,
            "[pbx]\ndefault_country = \"US\"\nextension_pattern = \"^[0-9]{{3,5}}$\"\n\n\
             [sip]\nports = [{}]\ndetect_any_port = {}\n\n\
             [capture]\ninterfaces = [\"{}\"]\nfilter = \"{}\"\npromiscuous = false\n\n\
             [admin]\nenabled = true\nlisten = \"{admin}\"\n\n\
             [recording]\nenabled = true\ndir = \"{}\"\n\n\
             [database]\nurl = \"sqlite://{}\"\n\n\
             [daemon]\nstate_dir = \"{}\"\n\n\
             [log]\nlevel = \"info\"\n\n",
            ports.join(", "),
            spec.detect_any_port,
            spec.interface,
            spec.filter,
            recordings.display(),
            db.display(),
            state.display(),
        );
        match spec.hep {
            Some(addr) => {
                let _ = write!(toml, "[hep]\nenabled = true\nlisten = \"{addr}\"\n\n");
            }
            None => toml.push_str("[hep]\nenabled = false\n\n"),
        }
        toml.push_str(&spec.extra);
        let config = dir.join("pbxbridge.toml");
        std::fs::write(&config, toml).expect("write daemon config");
        DaemonEnv {
            dir: dir.to_owned(),
            config,
            db,
            recordings,
            admin,
        }
    }

    /// A daemon capturing live on `lo` exactly the SIP and RTP ports of `pairs`.
    pub fn capturing(dir: &Path, pairs: &[&Pair]) -> DaemonEnv {
        DaemonEnv::capturing_media_of(dir, pairs, pairs.len())
    }

    /// Like [`DaemonEnv::capturing`], but only the first `with_media` pairs'
    /// RTP ports are captured: the calls of the others have no RTP for it.
    pub fn capturing_media_of(dir: &Path, pairs: &[&Pair], with_media: usize) -> DaemonEnv {
        let sip_ports: Vec<u16> = pairs
            .iter()
            .flat_map(|p| [p.uac_port, p.uas_port])
            .collect();
        let filter = pairs
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                let n = if i < with_media { 4 } else { 2 };
                p.ports().into_iter().take(n)
            })
            .map(|p| format!("udp port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        DaemonEnv::new(
            dir,
            &DaemonSpec {
                sip_ports,
                detect_any_port: false,
                interface: "lo".into(),
                filter,
                hep: None,
                extra: String::new(),
            },
        )
    }

    /// Starts `pbxbridge run` and waits until /readyz says 200.
    pub fn start(&self, name: &str) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pbxbridge"));
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .args(["--log-format", "json"]);
        let mut d = Daemon {
            proc: Proc::spawn(name, &self.dir, &mut cmd),
            admin: self.admin,
        };
        d.wait_ready(Duration::from_secs(30));
        d
    }
}

pub struct Daemon {
    pub proc: Proc,
    pub admin: SocketAddr,
}

impl Daemon {
    pub fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.proc.try_status() {
                panic!(
                    "pbxbridge run exited ({s}) before it was ready; log:\n{}",
                    self.proc.log_tail()
                );
            }
            if let Some((200, _)) = http_get(self.admin, "/readyz") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pbxbridge run not ready (GET /readyz != 200) after {limit:?}; log:\n{}",
                self.proc.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The JSON log lines (stderr and stdout share the log file).
    pub fn log_json(&self) -> Vec<Value> {
        self.proc
            .log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    /// Log lines whose message is `message`, as (call_id, line).
    pub fn events(&self, message: &str) -> Vec<(String, Value)> {
        self.log_json()
            .into_iter()
            .filter(|v| v["fields"]["message"] == message || v["message"] == message)
            .map(|v| {
                let id = v["fields"]["call_id"]
                    .as_str()
                    .or_else(|| v["call_id"].as_str())
                    .unwrap_or("")
                    .to_owned();
                (id, v)
            })
            .collect()
    }

    pub fn has_event(&self, message: &str, call_id: &str) -> bool {
        self.events(message).iter().any(|(id, _)| id == call_id)
    }

    /// Waits until a log line `message` names every one of `call_ids`.
    pub fn wait_events(&mut self, message: &str, call_ids: &[&str], limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let seen = self.events(message);
            let missing: Vec<&&str> = call_ids
                .iter()
                .filter(|c| !seen.iter().any(|(id, _)| id == **c))
                .collect();
            if missing.is_empty() {
                return;
            }
            if let Some(s) = self.proc.try_status() {
                panic!(
                    "pbxbridge exited ({s}) while waiting for {message:?} of {missing:?}; log:\n{}",
                    self.proc.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {message:?} log line with call_id for {missing:?} after {limit:?}; log:\n{}",
                self.proc.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then the exit status (panics if it takes longer than `limit`).
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        self.proc.signal("TERM");
        self.proc.wait_timeout(limit).unwrap_or_else(|| {
            panic!(
                "pbxbridge still running {limit:?} after SIGTERM; log:\n{}",
                self.proc.log_tail()
            )
        })
    }

    pub fn metrics(&self) -> String {
        match http_get(self.admin, "/metrics") {
            Some((200, body)) => body,
            other => panic!("GET /metrics: {other:?}"),
        }
    }
}

/// Minimal HTTP/1.0 GET: (status, body), None when nothing answers.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

// ------------------------------------------------------------------ results

#[derive(Debug, Clone)]
pub struct Row {
    pub call_id: String,
    pub direction: String,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub answered_at: Option<String>,
    pub ended_at: String,
    pub duration: f64,
    pub outcome: String,
    pub sip_code: Option<i64>,
    pub end_reason: String,
    pub recording_status: String,
    pub recording_path: Option<String>,
}

pub fn calls(db: &Path) -> Vec<Row> {
    assert!(db.exists(), "database {} was not created", db.display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        use sqlx::{ConnectOptions, Row as _};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .read_only(true)
            .connect()
            .await
            .expect("open calls database");
        let rows = sqlx::query(
            "SELECT call_id, direction, from_number, to_number, answered_at, ended_at, \
             duration, outcome, sip_code, end_reason, recording_status, recording_path \
             FROM calls ORDER BY id",
        )
        .fetch_all(&mut conn)
        .await
        .expect("select from calls");
        rows.iter()
            .map(|r| Row {
                call_id: r.get("call_id"),
                direction: r.get("direction"),
                from_number: r.get("from_number"),
                to_number: r.get("to_number"),
                answered_at: r.get("answered_at"),
                ended_at: r.get("ended_at"),
                duration: r.get("duration"),
                outcome: r.get("outcome"),
                sip_code: r.get("sip_code"),
                end_reason: r.get("end_reason"),
                recording_status: r.get("recording_status"),
                recording_path: r.get("recording_path"),
            })
            .collect()
    })
}

pub fn row<'a>(rows: &'a [Row], call_id: &str) -> &'a Row {
    let found: Vec<&Row> = rows.iter().filter(|r| r.call_id == call_id).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one row for {call_id}, rows: {rows:#?}"
    );
    found[0]
}

pub fn epoch_secs(rfc3339: &str) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("bad timestamp {rfc3339:?}: {e}"));
    t.timestamp_micros() as f64 / 1e6
}

pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[derive(Debug)]
pub struct Wav {
    pub channels: u16,
    pub rate: u32,
    pub frames: usize,
    /// Fraction of 200 ms windows whose RMS shows speech or noise, per channel.
    pub left_active: f64,
    pub right_active: f64,
}

impl Wav {
    pub fn secs(&self) -> f64 {
        self.frames as f64 / f64::from(self.rate)
    }
}

/// Opens a recording as any player would and measures each channel.
pub fn read_wav(path: &Path) -> Wav {
    let mut r = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{} is not a playable WAV: {e}", path.display()));
    let spec = r.spec();
    assert_eq!(spec.bits_per_sample, 16, "{}: 16-bit PCM", path.display());
    let samples: Vec<i16> = r
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: truncated samples: {e}", path.display()));
    let ch = usize::from(spec.channels.max(1));
    let frames = samples.len() / ch;
    let window = (spec.sample_rate as usize / 5).max(1);
    let active = |c: usize| -> f64 {
        if ch <= c || frames < window {
            return 0.0;
        }
        let windows = frames / window;
        let loud = (0..windows)
            .filter(|w| {
                let sum: f64 = (w * window..(w + 1) * window)
                    .map(|i| f64::from(samples[i * ch + c]).powi(2))
                    .sum();
                (sum / window as f64).sqrt() > 30.0
            })
            .count();
        loud as f64 / windows as f64
    };
    Wav {
        channels: spec.channels,
        rate: spec.sample_rate,
        frames,
        left_active: active(0),
        right_active: active(1),
    }
}

/// The recording of an answered call: path from the row, under the configured
/// folder as yyyy/mm/dd/<call id>.wav, stereo 8 kHz with audio on both sides.
pub fn check_recording(recordings: &Path, r: &Row) -> Wav {
    let path = PathBuf::from(
        r.recording_path
            .as_deref()
            .unwrap_or_else(|| panic!("no recording_path for {r:#?}")),
    );
    assert!(
        path.starts_with(recordings),
        "recording {} not under {}",
        path.display(),
        recordings.display()
    );
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some(format!("{}.wav", r.call_id).as_str()),
        "recording file name"
    );
    let depth = path
        .strip_prefix(recordings)
        .map(|p| p.components().count())
        .unwrap_or(0);
    assert_eq!(
        depth,
        4,
        "recordings/yyyy/mm/dd/<call id>.wav: {}",
        path.display()
    );
    let wav = read_wav(&path);
    assert_eq!(wav.channels, 2, "stereo: left caller, right callee");
    assert_eq!(wav.rate, 8000);
    wav
}

/// The checks every answered test call shares: one incoming call from
/// +14155550101 to 2001, answered with `end_reason`, talk time close to the
/// scenario's pause, and a stored WAV as long as the talk time with audio on
/// both channels most of the call.
pub fn assert_answered_with_audio(
    env: &DaemonEnv,
    rows: &[Row],
    call_id: &str,
    talk_secs: f64,
    end_reason: &str,
) {
    let r = row(rows, call_id);
    assert_eq!(r.outcome, "answered", "{r:#?}");
    assert_eq!(r.sip_code, Some(200), "{r:#?}");
    assert_eq!(r.end_reason, end_reason, "{r:#?}");
    assert_eq!(r.direction, "incoming", "{r:#?}");
    assert_eq!(r.from_number.as_deref(), Some("+14155550101"), "{r:#?}");
    assert_eq!(r.to_number.as_deref(), Some("2001"), "{r:#?}");
    assert!(
        (r.duration - talk_secs).abs() < 0.5,
        "talk time {} s, scenario pauses {talk_secs} s before BYE",
        r.duration
    );
    assert_eq!(r.recording_status, "stored", "{r:#?}");
    let wav = check_recording(&env.recordings, r);
    eprintln!("{}: {wav:?}", r.call_id);
    assert!(
        (wav.secs() - r.duration).abs() < 0.25,
        "WAV lasts {} s, talk time {} s",
        wav.secs(),
        r.duration
    );
    assert!(
        wav.left_active > 0.8 && wav.right_active > 0.8,
        "both channels carry audio most of the call: {wav:?}"
    );
}
