//! The shipped systemd unit and the daemon's side of the systemd protocol.
//!
//! The notify test changes process-wide environment variables; it is the only
//! test here that touches the environment, and it is one function, so no other
//! test can observe its variables half set.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use pbxbridge::ops::Notifier;

const MAX_EXPOSURE: f64 = 2.5;

fn unit_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("systemd/pbxbridge.service")
}

fn systemd_analyze(args: &[&str]) -> Output {
    match Command::new("systemd-analyze")
        .args(args)
        // The notify test may have these set meanwhile; systemd-analyze must not see them.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("systemd-analyze not found: install the systemd package (scripts/test.sh does)")
        }
        Err(e) => panic!("running systemd-analyze {args:?}: {e}"),
    }
}

/// `(section, key, value, line number)` of every assignment, in file order.
fn directives() -> Vec<(String, String, String, usize)> {
    let text = std::fs::read_to_string(unit_path()).expect("read unit");
    let mut section = String::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not key=value: {line}", n + 1));
        out.push((
            section.clone(),
            key.trim().to_owned(),
            value.trim().to_owned(),
            n + 1,
        ));
    }
    out
}

fn service_values(key: &str) -> Vec<String> {
    directives()
        .into_iter()
        .filter(|(s, k, _, _)| s == "Service" && k == key)
        .map(|(_, _, v, _)| v)
        .collect()
}

fn service_value(key: &str) -> String {
    let values = service_values(key);
    assert_eq!(
        values.len(),
        1,
        "[Service] {key}= should be set once: {values:?}"
    );
    values.into_iter().next().expect("one value")
}

fn words(value: &str) -> BTreeSet<&str> {
    value.split_whitespace().collect()
}

#[test]
fn exposure_is_at_most_2_5() {
    let path = unit_path();
    let path = path.to_str().expect("utf-8 path");
    let out = systemd_analyze(&["security", "--offline=true", "--no-pager", path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let marker = "Overall exposure level for pbxbridge.service:";
    let line = stdout
        .lines()
        .chain(stderr.lines())
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no exposure line in\n{stdout}\n{stderr}"));
    let score: f64 = line
        .split_once(marker)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unparsable exposure line: {line}"));
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{stdout}"
    );
    // Parse warnings go to stderr prefixed with the file name; the score of a unit
    // whose lines were ignored would be a lie.
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains(path)).collect();
    assert!(complaints.is_empty(), "unit has problems: {complaints:#?}");
}

#[test]
fn verify_finds_nothing_wrong_but_the_missing_binary() {
    // The binary is not installed on a build machine, so verify always exits
    // non-zero here. What must not appear is any complaint about a line of the
    // file (unknown key, bad value), which verify prefixes with the path.
    let path = unit_path();
    let path = path.to_str().expect("utf-8 path");
    let out = systemd_analyze(&["verify", "--man=no", path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains(path)).collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify: {complaints:#?}"
    );
}

#[test]
fn service_is_notify_with_watchdog_as_pbxbridge() {
    assert_eq!(service_value("Type"), "notify");
    assert_eq!(service_value("NotifyAccess"), "main");
    let watchdog: u64 = service_value("WatchdogSec")
        .parse()
        .expect("WatchdogSec in plain seconds");
    assert!((10..=120).contains(&watchdog), "WatchdogSec={watchdog}");
    let stop: u64 = service_value("TimeoutStopSec")
        .parse()
        .expect("TimeoutStopSec in plain seconds");
    assert!(
        stop >= 60,
        "calls need time to be finalised on stop: {stop}"
    );
    assert_eq!(service_value("User"), "pbxbridge");
    assert_eq!(service_value("Group"), "pbxbridge");
    assert_eq!(service_value("Restart"), "on-failure");
    assert_eq!(
        service_value("ExecStart"),
        "/usr/bin/pbxbridge run --config /etc/pbxbridge/pbxbridge.toml"
    );
    assert_eq!(service_value("ExecReload"), "/bin/kill -HUP $MAINPID");
}

#[test]
fn capture_gets_exactly_raw_and_admin_network_capabilities() {
    let want: BTreeSet<&str> = ["CAP_NET_RAW", "CAP_NET_ADMIN"].into();
    let ambient = service_value("AmbientCapabilities");
    assert_eq!(words(&ambient), want);
    let bounding = service_value("CapabilityBoundingSet");
    assert_eq!(words(&bounding), want);

    let families = service_value("RestrictAddressFamilies");
    for family in ["AF_PACKET", "AF_NETLINK", "AF_INET", "AF_INET6", "AF_UNIX"] {
        assert!(
            words(&families).contains(family),
            "{family} missing: {families}"
        );
    }
    // Either of these would cut capture off from the host's interfaces.
    for key in ["PrivateNetwork", "PrivateUsers", "IPAddressDeny"] {
        assert!(service_values(key).is_empty(), "{key}= must not be set");
    }
}

#[test]
fn every_directive_has_a_comment_saying_why() {
    let text = std::fs::read_to_string(unit_path()).expect("read unit");
    let lines: Vec<&str> = text.lines().collect();
    for (_, key, _, n) in directives() {
        // `n` is 1-based, so the line above is at index n - 2.
        let above = n.checked_sub(2).and_then(|i| lines.get(i)).copied();
        assert!(
            above.is_some_and(|l| l.trim_start().starts_with('#')),
            "line {n} ({key}=) has no comment directly above it"
        );
    }
}

#[test]
fn notifier_speaks_the_sd_notify_protocol() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let recv = || {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a datagram from the notifier");
        String::from_utf8(buf.get(..n).expect("within buffer").to_vec()).expect("utf-8")
    };

    // Outside systemd: nothing to talk to, and no error either.
    std::env::remove_var("NOTIFY_SOCKET");
    std::env::remove_var("WATCHDOG_USEC");
    std::env::remove_var("WATCHDOG_PID");
    let off = Notifier::from_env();
    assert!(!off.is_enabled());
    assert_eq!(off.watchdog_interval(), None);
    off.ready().expect("no-op");
    off.watchdog().expect("no-op");

    std::env::set_var("NOTIFY_SOCKET", &socket_path);
    std::env::set_var("WATCHDOG_USEC", "30000000");
    std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
    let notifier = Notifier::from_env();
    assert!(notifier.is_enabled());
    assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(15)));

    notifier.ready().expect("send READY");
    assert_eq!(recv(), "READY=1\n");
    notifier.status("tracking 3 calls").expect("send STATUS");
    assert_eq!(recv(), "STATUS=tracking 3 calls\n");
    // A newline would start a new assignment and could smuggle in READY=1.
    notifier.status("two\nREADY=1").expect("send STATUS");
    assert_eq!(recv(), "STATUS=two READY=1\n");
    notifier.watchdog().expect("send WATCHDOG");
    assert_eq!(recv(), "WATCHDOG=1\n");
    notifier.stopping().expect("send STOPPING");
    assert_eq!(recv(), "STOPPING=1\n");

    // A watchdog meant for another process (inherited env) is not ours to ping.
    std::env::set_var("WATCHDOG_PID", "1");
    assert_eq!(Notifier::from_env().watchdog_interval(), None);

    // The disabled notifier really sends nothing, even with a socket configured.
    Notifier::disabled().ready().expect("no-op");
    socket.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 64];
    let err = socket.recv(&mut buf).expect_err("no stray datagram");
    assert_eq!(err.kind(), ErrorKind::WouldBlock);

    std::env::remove_var("NOTIFY_SOCKET");
    std::env::remove_var("WATCHDOG_USEC");
    std::env::remove_var("WATCHDOG_PID");
}
