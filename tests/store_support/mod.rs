//! A real S3 server for tests: a single-node Garage in a temporary folder, on
//! free ports, with one bucket and one key that may read and write it.
//! `scripts/test.sh` builds the `garage` binary once (scripts/garage.sh) and
//! passes its path in `PBXBRIDGE_GARAGE`. A missing binary or a server
//! that does not come up fails the test: nothing here skips. Dropping the
//! value kills the server and removes its folder.
#![allow(dead_code)] // each test crate uses its own subset

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pbxbridge::config::{S3Config, StorageBackend, StorageConfig};

/// Starting, stopping or answering takes longer than this only when broken.
const PATIENCE: Duration = Duration::from_secs(60);
pub const REGION: &str = "garage";
pub const BUCKET: &str = "recordings";
const KEY_NAME: &str = "pbxbridge-test";

pub struct Garage {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub s3_port: u16,
    pub admin_port: u16,
    pub rpc_port: u16,
    pub key_id: String,
    pub secret: String,
    child: Option<Child>,
}

/// `PBXBRIDGE_GARAGE` (set by `scripts/test.sh` to the binary
/// `scripts/garage.sh` built), else `garage` on PATH, else where
/// `cargo install` puts it.
fn garage_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PBXBRIDGE_GARAGE") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "PBXBRIDGE_GARAGE={} is not a file: run scripts/garage.sh for the path",
            p.display()
        );
        return p;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("garage"))
            .find(|p| p.is_file())
    });
    if let Some(p) = on_path {
        return p;
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let p = home.map(|h| h.join("bin").join("garage"));
    match p {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "the garage binary is missing (PBXBRIDGE_GARAGE unset, not on PATH nor in \
             ~/.cargo/bin): run scripts/test.sh, or export PBXBRIDGE_GARAGE=$(scripts/garage.sh)"
        ),
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Label:   value` from Garage's CLI output.
fn field(text: &str, label: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(label)
            .and_then(|rest| rest.trim_start().strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    })
}

impl Garage {
    /// A fresh single-node cluster with the layout applied, bucket
    /// [`BUCKET`] and a key allowed to read, write and own it, answering.
    pub async fn start() -> Garage {
        let bin = garage_bin();
        let dir = tempfile::Builder::new()
            .prefix("pbxbridge-garage")
            .tempdir()
            .expect("temp dir for garage");
        let mut g = Garage {
            dir,
            bin,
            s3_port: free_port(),
            admin_port: free_port(),
            rpc_port: free_port(),
            key_id: String::new(),
            secret: String::new(),
            child: None,
        };
        g.write_config();
        g.spawn();
        // The RPC answers before the cluster has a layout; /health only after.
        let id = g.wait_for_cli(&["node", "id", "-q"]);
        let id = id
            .lines()
            .next()
            .and_then(|l| l.split('@').next())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| panic!("garage node id: no id in {id:?}"))
            .to_owned();
        // `node id` reads the key from disk and can answer before the RPC
        // listens; `layout assign` needs the RPC, so it waits for it too.
        g.wait_for_cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.cli(&["bucket", "create", BUCKET]);
        let out = g.cli(&["key", "create", KEY_NAME]);
        g.key_id = field(&out, "Key ID")
            .unwrap_or_else(|| panic!("garage key create: no `Key ID` in:\n{out}"));
        g.secret = field(&out, "Secret key")
            .unwrap_or_else(|| panic!("garage key create: no `Secret key` in:\n{out}"));
        g.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", KEY_NAME,
        ]);
        g.wait_healthy().await;
        g
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn region(&self) -> &str {
        REGION
    }

    pub fn bucket(&self) -> &str {
        BUCKET
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `[storage]` for this server: backend s3, path-style, plain HTTP.
    pub fn storage_config(&self, prefix: &str) -> StorageConfig {
        StorageConfig {
            backend: StorageBackend::S3,
            prefix: prefix.to_owned(),
            s3: S3Config {
                endpoint: self.endpoint(),
                region: REGION.into(),
                bucket: BUCKET.into(),
                virtual_hosted_style: false,
                allow_http: true,
                access_key_id: self.key_id.clone(),
                secret_access_key: self.secret.clone(),
                ..S3Config::default()
            },
            ..StorageConfig::default()
        }
    }

    /// Kills the server (an outage, as a crash or a cut network looks to a
    /// client) and waits until its ports are closed. Data stays.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let status =
            tokio::time::timeout(PATIENCE, tokio::task::spawn_blocking(move || child.wait()))
                .await
                .unwrap_or_else(|_| panic!("garage did not stop within {PATIENCE:?}"));
        status.expect("wait task").expect("wait for garage");
        let until = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.s3_port)).is_ok() {
            assert!(
                Instant::now() < until,
                "garage's S3 port {} still open after stop",
                self.s3_port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the stopped server again on the same data and ports and waits
    /// until it serves requests.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "garage is already running");
        self.spawn();
        self.wait_healthy().await;
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("garage.log")
    }

    fn write_config(&self) {
        let d = self.dir.path();
        let text = format!(
            r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
            meta = d.join("meta").display(),
            data = d.join("data").display(),
            rpc = self.rpc_port,
            secret = random_hex(32),
            s3 = self.s3_port,
            admin = self.admin_port,
        );
        let path = self.config_path();
        std::fs::write(&path, text).expect("write garage.toml");
        // Garage refuses a config holding the RPC secret that others may read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod garage.toml");
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("garage log");
        let log2 = log.try_clone().expect("garage log");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(self.config_path())
            .arg("server")
            .env("RUST_LOG", "garage=info")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
    }

    fn check_alive(&mut self) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            self.child = None;
            panic!("garage exited ({status}):\n{}", self.log_tail());
        }
    }

    fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(self.config_path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run garage: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "{}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn cli(&mut self, args: &[&str]) -> String {
        self.check_alive();
        self.try_cli(args).unwrap_or_else(|e| {
            panic!(
                "garage {} failed: {e}\nserver log:\n{}",
                args.join(" "),
                self.log_tail()
            )
        })
    }

    fn wait_for_cli(&mut self, args: &[&str]) -> String {
        let until = Instant::now() + PATIENCE;
        loop {
            self.check_alive();
            match self.try_cli(args) {
                Ok(out) => return out,
                Err(e) if Instant::now() > until => panic!(
                    "garage {} still fails after {PATIENCE:?}: {e}\nserver log:\n{}",
                    args.join(" "),
                    self.log_tail()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Until the admin API's `/health` says 200: the node has its layout and
    /// serves S3 requests.
    async fn wait_healthy(&mut self) {
        let until = Instant::now() + PATIENCE;
        loop {
            self.check_alive();
            let status = health_status(self.admin_port);
            if status == Some(200) {
                return;
            }
            assert!(
                Instant::now() < until,
                "garage is not healthy after {PATIENCE:?} (admin /health: {status:?})\nserver log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The status code of `GET /health` on the admin port, `None` when it does not answer.
fn health_status(port: u16) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(head.get(9..12)?).ok()?.parse().ok()
}

impl Drop for Garage {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
