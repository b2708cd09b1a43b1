//! A private nats-server with JetStream per test, on a free port with its own
//! store folder, so a test can stop it and start it again where it was.
//! The binary is `PBXBRIDGE_NATS_SERVER`, else Debian's /usr/sbin/nats-server
//! (`scripts/test.sh` installs it); without it the test fails, it does not
//! skip.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn binary() -> PathBuf {
    std::env::var_os("PBXBRIDGE_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct NatsServer {
    pub port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        NatsServer::start_with(&[])
    }

    /// With more command-line options (`--user`, `--pass`, ...).
    pub fn start_with(args: &[&str]) -> NatsServer {
        let mut s = NatsServer {
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            args: args.iter().map(|a| a.to_string()).collect(),
            child: None,
        };
        s.resume();
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port and store (after `stop`).
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let bin = binary();
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let child = Command::new(&bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.dir.path().join("store"))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): install Debian's nats-server or set PBXBRIDGE_NATS_SERVER",
                    bin.display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        // The port may still be held by the previous run for a moment.
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("nats-server exited: {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "nats-server not listening after 20 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, and waits until it is gone.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
