//! `pbxbridge run` as an operator drives it: SIGHUP applies what it can and
//! names what needs a restart, a broken file on reload changes nothing, a bad
//! config at start is exit 2 with the key named, HEP-only input works and the
//! operator endpoint answers.
//!
//! Needs root for the `lo` capture; scripts/e2e-deps.sh installs the tools.

#[path = "e2e/support.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

fn wait_for(daemon: &Daemon, message: &str, limit: Duration) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        if let Some((_, v)) = daemon.events(message).into_iter().last() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no {message:?} log line after {limit:?}; log:\n{}",
            daemon.proc.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sighup_reloads_what_it_can_and_says_what_needs_a_restart() {
    require(&["kill"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let hep = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let env = DaemonEnv::new(
        tmp.path(),
        &DaemonSpec {
            sip_ports: vec![free_port()],
            detect_any_port: false,
            interface: "lo".into(),
            filter: "udp port 9".into(),
            hep: Some(hep),
            extra: String::new(),
        },
    );
    let mut daemon = env.start("pbxbridge");
    let metrics = daemon.metrics();
    assert!(
        metrics.contains("pbxbridge_calls_active{state=\"answered\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pbxbridge_kernel_drops_total{interface=\"lo\",kind=\"kernel\"} 0"),
        "{metrics}"
    );

    // A valid change: one key that applies at once, one that needs a restart.
    let original = std::fs::read_to_string(&env.config).unwrap();
    let changed = original
        .replace("level = \"info\"", "level = \"debug\"")
        .replace("filter = \"udp port 9\"", "filter = \"udp port 7\"")
        + "\n[tracker]\nrtp_timeout_secs = 90\n";
    std::fs::write(&env.config, &changed).unwrap();
    daemon.proc.signal("HUP");
    let reloaded = wait_for(&daemon, "SIGHUP: config reloaded", Duration::from_secs(10));
    let applied = reloaded["fields"]["applied"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        applied.contains("log.level") && applied.contains("tracker timers"),
        "{reloaded}"
    );
    let restart = wait_for(
        &daemon,
        "SIGHUP: these changes need a restart to take effect",
        Duration::from_secs(5),
    );
    assert!(restart.to_string().contains("capture"), "{restart}");

    // A broken file: logged, nothing changes, the daemon keeps running.
    std::fs::write(&env.config, changed.replace("[tracker]", "[trackerr]")).unwrap();
    daemon.proc.signal("HUP");
    let refused = wait_for(
        &daemon,
        "SIGHUP: config not reloaded; still running on the previous one",
        Duration::from_secs(10),
    );
    assert!(refused.to_string().contains("trackerr"), "{refused}");
    assert!(
        daemon.proc.try_status().is_none(),
        "daemon died on a bad reload"
    );
    assert_eq!(http_get(daemon.admin, "/readyz").map(|r| r.0), Some(200));

    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let log = daemon.proc.log_text();
    assert!(log.contains("pbxbridge stopped"), "{log}");
}

#[test]
fn a_bad_config_is_exit_2_naming_file_and_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("pbxbridge.toml");
    let cases = [
        (
            "[capture]\ninterfaces = [\"eht0\"]\n".to_string(),
            "pbxbridge.toml: capture.interfaces[0]: no such interface \"eht0\"",
        ),
        // Nothing to capture from is a clear error too, not a daemon that
        // idles: a config problem, found by check-config as well, before the
        // state folder is made.
        (
            format!("[daemon]\nstate_dir = {:?}\n", tmp.path().join("s")),
            "pbxbridge.toml: capture: nothing to capture from",
        ),
    ];
    for (text, needle) in cases {
        std::fs::write(&cfg, text).unwrap();
        for args in [
            vec!["run", "--config", cfg.to_str().unwrap()],
            vec!["check-config", cfg.to_str().unwrap()],
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
                .args(&args)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
    assert!(!tmp.path().join("s").exists());
}
