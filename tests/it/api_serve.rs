//! The API as a new user runs it: `pbxbridge keys create` prints a token,
//! `pbxbridge serve` (plain and TLS) and `pbxbridge run` with `[api]` answer
//! with it, and SIGTERM stops them cleanly.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn pbxbridge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .args(args)
        .output()
        .expect("run pbxbridge")
}

fn write_config(dir: &Path, port: u16, extra: &str) -> String {
    let cfg = dir.join("pbxbridge.toml");
    std::fs::create_dir_all(dir.join("spool")).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"sqlite://{db}\"\n\n[recording]\ndir = \"{rec}\"\n\n\
             [daemon]\nstate_dir = \"{state}\"\n\n[admin]\nenabled = false\n\n\
             [capture]\nfolder = \"{spool}\"\n\n[api]\nlisten = \"127.0.0.1:{port}\"\n{extra}",
            db = dir.join("calls.db").display(),
            rec = dir.join("recordings").display(),
            state = dir.join("state").display(),
            spool = dir.join("spool").display(),
        ),
    )
    .unwrap();
    cfg.display().to_string()
}

/// `pbxbridge ARGS`, once it listens on `port`.
fn start(args: &[&str], port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pbxbridge");
    wait_listening(&mut child, port);
    child
}

/// Waits until the port takes connections, or the child exits.
fn wait_listening(child: &mut Child, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("pbxbridge exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port} after 30 s");
}

fn stop(mut child: Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "stopped with {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create_key(cfg: &str, role: &str) -> String {
    let out = pbxbridge(&[
        "keys", "create", "--config", cfg, "--name", "crm", "--role", role,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("pbxb_"), "{token}");
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_with_a_key_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port, "");
    let token = create_key(&cfg, "integration");

    // The list shows the prefix, never the token; a bad role names --role.
    let out = pbxbridge(&["keys", "list", "--config", &cfg]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("integration") && !listed.contains(&token),
        "{listed}"
    );
    let out = pbxbridge(&[
        "keys", "create", "--config", &cfg, "--name", "x", "--role", "root",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--role"));
    let out = pbxbridge(&[
        "keys",
        "create",
        "--config",
        &cfg,
        "--name",
        "x",
        "--role",
        "admin",
        "--expires",
        "soon",
    ]);
    assert_eq!(out.status.code(), Some(2));

    let child = start(&["serve", "--config", &cfg], port);
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/openapi.json");
    let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);

    // Revoked from the CLI while serving: refused at once.
    let prefix = &token[5..21];
    let out = pbxbridge(&["keys", "revoke", "--config", &cfg, prefix]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_speaks_tls_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = free_port();
    let cfg = write_config(
        dir.path(),
        port,
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    let token = create_key(&cfg, "admin");
    let child = start(&["serve", "--config", &cfg], port);
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let resp = http
        .get(format!("https://localhost:{port}/v1/keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/keys"))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_the_api_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port, "");
    let token = create_key(&cfg, "admin");
    let child = start(&["run", "--config", &cfg], port);
    let resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    stop(child);
}
