//! Private database servers a test may stop and start again: PostgreSQL 15 and
//! MariaDB, each in its own temporary folder on a free port, never the shared
//! servers of `PBXBRIDGE_TEST_POSTGRES`/`PBXBRIDGE_TEST_MYSQL`. Dropping one
//! kills the server and removes its folder.
//!
//! We run as root: PostgreSQL refuses that, so it runs as the `postgres` user
//! (setpriv, which execs, so the child we hold is the server itself).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pbxbridge::db::Backend;

/// Debian's layout; the newest installed major version wins (15 here).
fn pg_bin() -> PathBuf {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| {
                let e = e.ok()?;
                let major = e.file_name().to_str()?.parse().ok()?;
                Some((major, e.path().join("bin")))
            })
            .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.pop()
        .map(|(_, d)| d)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}
const MARIADBD: &str = "/usr/sbin/mariadbd";
const PG_USER: &str = "postgres";
/// Starting, stopping or answering takes longer than this only when broken.
const PATIENCE: Duration = Duration::from_secs(60);

pub struct PrivateServer {
    pub backend: Backend,
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn as_postgres(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={PG_USER}"),
        &format!("--regid={PG_USER}"),
        "--init-groups",
        "--",
    ]);
    c.arg(program);
    c
}

impl PrivateServer {
    /// A fresh PostgreSQL 15 cluster (user postgres, trust), running.
    pub async fn postgres() -> PrivateServer {
        let dir = tempfile::tempdir().expect("temp dir");
        run(
            Command::new("chown").arg(PG_USER).arg(dir.path()),
            "chown the server folder",
        );
        run(
            as_postgres(&pg_bin().join("initdb"))
                .arg("-D")
                .arg(dir.path().join("data"))
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
            "initdb",
        );
        let mut s = PrivateServer {
            backend: Backend::Postgres,
            port: free_port(),
            dir,
            child: None,
        };
        s.start().await;
        s
    }

    /// A fresh MariaDB data folder (root, no password), running.
    pub async fn mariadb() -> PrivateServer {
        let dir = tempfile::tempdir().expect("temp dir");
        // Temporary tables of two servers bootstrapping at once collide in /tmp.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("server tmp dir");
        run(
            Command::new("mariadb-install-db")
                .env("TMPDIR", &tmp)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", dir.path().join("data").display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .args([
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ]),
            "mariadb-install-db",
        );
        let mut s = PrivateServer {
            backend: Backend::MySql,
            port: free_port(),
            dir,
            child: None,
        };
        s.start().await;
        s
    }

    pub async fn new(backend: Backend) -> PrivateServer {
        match backend {
            Backend::Postgres => PrivateServer::postgres().await,
            Backend::MySql => PrivateServer::mariadb().await,
            Backend::Sqlite => panic!("SQLite has no server"),
        }
    }

    pub fn admin_url(&self) -> String {
        match self.backend {
            Backend::Postgres => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
            _ => format!("mysql://root@127.0.0.1:{}/mysql", self.port),
        }
    }

    pub fn url(&self, database: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("postgres://postgres@127.0.0.1:{}/{database}", self.port),
            _ => format!("mysql://root@127.0.0.1:{}/{database}", self.port),
        }
    }

    /// An empty database on this server; its URL.
    pub async fn create_database(&self, name: &str) -> String {
        super::try_admin(&self.admin_url(), &format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}\n{}", self.log_tail()));
        self.url(name)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The end of the server's own log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the server on its data folder and port and waits until it
    /// answers queries.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("server log");
        let log2 = log.try_clone().expect("server log");
        let dir = self.dir.path();
        let mut cmd = match self.backend {
            Backend::Postgres => {
                let sock = dir.join("sock");
                std::fs::create_dir_all(&sock).expect("socket dir");
                run(
                    Command::new("chown").arg(PG_USER).arg(&sock),
                    "chown the socket folder",
                );
                let mut c = as_postgres(&pg_bin().join("postgres"));
                c.arg("-D").arg(dir.join("data")).args([
                    "-p",
                    &self.port.to_string(),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    &format!("unix_socket_directories={}", sock.display()),
                    // A test server: speed over crash safety.
                    "-c",
                    "fsync=off",
                ]);
                c
            }
            _ => {
                let mut c = Command::new(MARIADBD);
                c.arg("--no-defaults")
                    .arg(format!("--datadir={}", dir.join("data").display()))
                    .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
                    .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
                    .arg(format!("--tmpdir={}", dir.join("tmp").display()))
                    .arg(format!("--port={}", self.port))
                    .args([
                        "--user=root",
                        "--bind-address=127.0.0.1",
                        "--skip-name-resolve",
                        "--skip-grant-tables",
                        "--skip-log-bin",
                        "--innodb-buffer-pool-size=64M",
                        "--innodb-flush-log-at-trx-commit=0",
                    ]);
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.backend));
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let admin = self.admin_url();
        let until = std::time::Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "{:?} server exited at start ({status}):\n{}",
                    self.backend,
                    self.log_tail()
                );
            }
            match super::try_admin(&admin, "SELECT 1").await {
                Ok(()) => return,
                Err(e) if std::time::Instant::now() > until => panic!(
                    "{:?} server on port {} does not answer after {PATIENCE:?}: {e}\n{}",
                    self.backend,
                    self.port,
                    self.log_tail()
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Shuts the server down the way an operator would (clients are cut off,
    /// open transactions roll back) and waits until it is gone.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let sig = match self.backend {
            // "Fast" shutdown: the default "smart" one waits for clients to leave.
            Backend::Postgres => libc::SIGINT,
            _ => libc::SIGTERM,
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: signals our own child, which has not been reaped yet.
        unsafe {
            libc::kill(pid, sig);
        }
        let backend = self.backend;
        let status =
            tokio::time::timeout(PATIENCE, tokio::task::spawn_blocking(move || child.wait()))
                .await
                .unwrap_or_else(|_| panic!("{backend:?} server did not stop within {PATIENCE:?}"));
        status.expect("wait task").expect("wait for the server");
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.backend == Backend::Postgres {
                // Immediate shutdown: the postmaster takes its backends along,
                // which SIGKILL would leave behind for a moment.
                // SAFETY: signals our own child, which has not been reaped yet.
                unsafe {
                    libc::kill(child.id() as libc::pid_t, libc::SIGQUIT);
                }
            } else {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        // The folder (TempDir) goes with the value.
    }
}
