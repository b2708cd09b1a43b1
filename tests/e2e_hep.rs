//! SIP only through HEP: a SIPp caller calls a SIPp callee through Kamailio,
//! whose siptrace module mirrors every message it receives as HEPv3 to the
//! daemon. The daemon's live capture sees only the RTP port range and its SIP
//! ports are none of the ones in use, so the call can only be known from HEP
//! and its audio only from the capture.
//!
//! Needs root (capture, SIPp play_pcap_audio), sipp, kamailio and python3;
//! scripts/e2e-deps.sh installs them.

#[path = "e2e/support.rs"]
mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const TALK_SECS: f64 = 4.0;
/// The only UDP ports the daemon captures: the media ports of the SIPp pair.
const RTP_RANGE: std::ops::Range<u16> = 16000..17000;

fn kamailio_modules() -> PathBuf {
    let mut candidates = vec![
        PathBuf::from("/usr/lib/kamailio/modules"),
        PathBuf::from("/usr/lib64/kamailio/modules"),
        PathBuf::from("/usr/local/lib64/kamailio/modules"),
    ];
    if let Ok(dir) = std::fs::read_dir("/usr/lib") {
        for e in dir.flatten() {
            candidates.insert(0, e.path().join("kamailio/modules"));
        }
    }
    candidates
        .into_iter()
        .find(|p| p.join("siptrace.so").is_file())
        .expect("Kamailio's siptrace.so not found under /usr/lib*/kamailio/modules")
}

/// Kamailio on 127.0.0.1:`port` forwarding to `callee`, HEPv3 copies to `hep`.
fn start_kamailio(dir: &std::path::Path, port: u16, callee: SocketAddr, hep: SocketAddr) -> Proc {
    let template = std::fs::read_to_string(repo().join("tests/e2e/kamailio.cfg.in"))
        .expect("tests/e2e/kamailio.cfg.in");
    let cfg = template
        .replace("@SIP_PORT@", &port.to_string())
        .replace("@MODULES@", &format!("{}/", kamailio_modules().display()))
        .replace("@HEP@", &hep.to_string())
        .replace("@CALLEE@", &callee.to_string());
    let path = dir.join("kamailio.cfg");
    std::fs::write(&path, cfg).expect("write kamailio.cfg");

    let check = Command::new("kamailio")
        .args(["-c", "-f"])
        .arg(&path)
        .output()
        .expect("run kamailio -c");
    assert!(
        check.status.success(),
        "kamailio rejects the generated config:\n{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let mut cmd = Command::new("kamailio");
    cmd.args(["-DD", "-E", "-m", "64", "-M", "8", "-f"])
        .arg(&path);
    let mut k = Proc::spawn_group("kamailio", dir, &mut cmd);
    // Ready once its UDP socket is bound (requests queue there until the workers run).
    let deadline = Instant::now() + Duration::from_secs(15);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        if let Some(s) = k.try_status() {
            panic!("kamailio exited ({s}); log:\n{}", k.log_tail());
        }
        assert!(
            Instant::now() < deadline,
            "kamailio did not bind 127.0.0.1:{port}; log:\n{}",
            k.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    k
}

#[test]
fn hep_signalling_with_captured_rtp() {
    require(&["sipp", "kamailio", "python3", "kill"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();

    let pair = Pair::new(root, "call", RTP_RANGE);
    pair.rtp(TALK_SECS, 0x4e9a_0001);
    let kam_port = free_port();
    let hep = SocketAddr::from(([127, 0, 0, 1], free_port()));
    for p in [pair.uac_port, pair.uas_port, kam_port, hep.port()] {
        assert!(
            !RTP_RANGE.contains(&p),
            "SIP port {p} inside the captured range"
        );
    }

    let env = DaemonEnv::new(
        root,
        &DaemonSpec {
            // 5060 is not used by anyone here: the daemon must not see SIP on the wire.
            sip_ports: vec![5060],
            detect_any_port: false,
            interface: "lo".into(),
            filter: format!("udp portrange {}-{}", RTP_RANGE.start, RTP_RANGE.end - 1),
            hep: Some(hep),
            extra: String::new(),
        },
    );
    let mut daemon = env.start("pbxbridge");
    let _kamailio = start_kamailio(root, kam_port, pair.uas_addr(), hep);

    let id = call_id("hep");
    let talk_ms = format!("{}", (TALK_SECS * 1000.0) as u64);
    {
        let mut uas = pair.uas("uas_answer.xml", &["-key", "contact", "2001"]);
        let mut uac = pair.uac(
            "uac_caller_bye.xml",
            SocketAddr::from(([127, 0, 0, 1], kam_port)),
            &id,
            &[
                "-key",
                "caller",
                "+14155550101",
                "-s",
                "2001",
                "-d",
                &talk_ms,
            ],
        );
        uac.expect_success(Duration::from_secs(30));
        uas.expect_success(Duration::from_secs(10));
    }

    daemon.wait_events("call ended", &[&id], Duration::from_secs(20));
    assert!(
        daemon.has_event("call answered", &id),
        "no \"call answered\" log line with call_id {id}"
    );
    let status = daemon.terminate(Duration::from_secs(20));
    assert!(
        status.success(),
        "exit after SIGTERM: {status}; log:\n{}",
        daemon.proc.log_tail()
    );

    let rows = calls(&env.db);
    eprintln!("calls: {rows:#?}");
    assert_eq!(rows.len(), 1, "one call, rows: {rows:#?}");
    assert_answered_with_audio(&env, &rows, &id, TALK_SECS, "caller_bye");
}
