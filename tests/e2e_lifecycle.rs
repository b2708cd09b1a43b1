//! The daemon's life with calls in flight: SIGTERM ends them as "shutdown"
//! with finished recordings; kill -9 and a restart recover them as
//! "crash_recovered" without writing an already finished call twice.
//!
//! Needs root (capture on lo, SIPp play_pcap_audio), sipp and python3;
//! scripts/e2e-deps.sh installs them.

#[path = "e2e/support.rs"]
mod support;

use std::time::Duration;

use support::*;

/// Long enough that nothing ends by itself while the test runs.
const LONG_TALK_SECS: f64 = 40.0;

/// Starts a long answered call on `pair`; returns (uas, uac) still running.
fn long_call(pair: &Pair, id: &str) -> (Proc, Proc) {
    let uas = pair.uas("uas_answer.xml", &["-key", "contact", "2001"]);
    let talk_ms = format!("{}", (LONG_TALK_SECS * 1000.0) as u64);
    let uac = pair.uac(
        "uac_caller_bye.xml",
        pair.uas_addr(),
        id,
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
    (uas, uac)
}

fn answered_at(r: &Row) -> f64 {
    epoch_secs(
        r.answered_at
            .as_deref()
            .unwrap_or_else(|| panic!("answered call without answered_at: {r:#?}")),
    )
}

#[test]
fn sigterm_ends_calls_in_flight_as_shutdown() {
    require(&["sipp", "python3", "kill"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    // The fourth call's RTP is not captured: an answered call the daemon sees
    // no audio for must still last until SIGTERM (issue 10), not end at its ACK.
    let pairs: Vec<Pair> = (0..4)
        .map(|i| Pair::new(root, &format!("call{i}"), 30000..40000))
        .collect();
    for (i, p) in pairs.iter().enumerate() {
        p.rtp(LONG_TALK_SECS, 0x7e40_0000 + i as u32);
    }
    let env = DaemonEnv::capturing_media_of(root, &pairs.iter().collect::<Vec<_>>(), 3);
    let mut daemon = env.start("pbxbridge");

    let ids: Vec<String> = (0..4).map(|i| call_id(&format!("term{i}"))).collect();
    let mut running: Vec<(Proc, Proc)> = pairs
        .iter()
        .zip(&ids)
        .map(|(p, id)| long_call(p, id))
        .collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    daemon.wait_events("call answered", &id_refs, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(4));
    for (uas, uac) in running.iter_mut() {
        assert!(
            uac.try_status().is_none(),
            "caller ended early:\n{}",
            uac.log_tail()
        );
        assert!(
            uas.try_status().is_none(),
            "callee ended early:\n{}",
            uas.log_tail()
        );
    }

    let term_at = now_secs();
    let status = daemon.terminate(Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM; log:\n{}",
        daemon.proc.log_tail()
    );
    drop(running);

    let rows = calls(&env.db);
    eprintln!("calls: {rows:#?}");
    assert_eq!(rows.len(), 4, "four calls in flight, rows: {rows:#?}");
    for (i, id) in ids.iter().enumerate() {
        let r = row(&rows, id);
        assert_eq!(r.outcome, "answered", "{r:#?}");
        assert_eq!(r.end_reason, "shutdown", "{r:#?}");
        let until_term = term_at - answered_at(r);
        assert!(
            until_term > 3.0 && (r.duration - until_term).abs() < 1.0,
            "talk time {} s, answer to SIGTERM {until_term:.2} s: {r:#?}",
            r.duration
        );
        if i == 3 {
            continue; // no audio captured: nothing to play
        }
        let wav = check_recording(&env.recordings, r);
        eprintln!("{}: {wav:?}", r.call_id);
        assert!(
            (wav.secs() - until_term).abs() < 1.0,
            "WAV lasts {} s, answer to SIGTERM {until_term:.2} s",
            wav.secs()
        );
        assert!(
            wav.left_active > 0.7 && wav.right_active > 0.7,
            "both channels carry audio: {wav:?}"
        );
    }
    assert!(
        daemon.has_event("call ended", &ids[0]),
        "no \"call ended\" log line for {}",
        ids[0]
    );
}

#[test]
fn kill9_then_restart_recovers_calls_in_flight() {
    require(&["sipp", "python3", "kill"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let done = Pair::new(root, "done", 30000..40000);
    let inflight: Vec<Pair> = (0..2)
        .map(|i| Pair::new(root, &format!("inflight{i}"), 30000..40000))
        .collect();
    done.rtp(2.0, 0x9c00_0001);
    for (i, p) in inflight.iter().enumerate() {
        p.rtp(LONG_TALK_SECS, 0x9c10_0000 + i as u32);
    }
    let mut all: Vec<&Pair> = inflight.iter().collect();
    all.push(&done);
    let env = DaemonEnv::capturing(root, &all);
    let mut daemon = env.start("pbxbridge-1");

    // One call that ends before the crash.
    let id_done = call_id("done");
    {
        let mut uas = done.uas("uas_answer.xml", &["-key", "contact", "2001"]);
        let mut uac = done.uac(
            "uac_caller_bye.xml",
            done.uas_addr(),
            &id_done,
            &["-key", "caller", "+14155550101", "-s", "2001", "-d", "2000"],
        );
        uac.expect_success(Duration::from_secs(30));
        uas.expect_success(Duration::from_secs(10));
    }
    daemon.wait_events("call ended", &[&id_done], Duration::from_secs(20));

    // Two calls up when the daemon dies.
    let ids: Vec<String> = (0..2).map(|i| call_id(&format!("crash{i}"))).collect();
    let running: Vec<(Proc, Proc)> = inflight
        .iter()
        .zip(&ids)
        .map(|(p, id)| long_call(p, id))
        .collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    daemon.wait_events("call answered", &id_refs, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(4));
    let kill_at = now_secs();
    daemon.proc.kill9();
    // The calls must not end on the wire before the restart: that would let a
    // new daemon see their BYE instead of recovering them.
    drop(running);

    let mut daemon = env.start("pbxbridge-2");
    let status = daemon.terminate(Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM of the restarted daemon; log:\n{}",
        daemon.proc.log_tail()
    );

    let rows = calls(&env.db);
    eprintln!("calls: {rows:#?}");
    assert_eq!(
        rows.iter().filter(|r| r.call_id == id_done).count(),
        1,
        "the call finished before the crash is written exactly once: {rows:#?}"
    );
    let d = row(&rows, &id_done);
    assert_eq!(d.outcome, "answered", "{d:#?}");
    assert_eq!(d.end_reason, "caller_bye", "{d:#?}");
    assert!((d.duration - 2.0).abs() < 0.5, "{d:#?}");
    assert_eq!(
        rows.len(),
        3,
        "one finished and two recovered calls: {rows:#?}"
    );

    for id in &ids {
        let r = row(&rows, id);
        assert_eq!(r.outcome, "answered", "{r:#?}");
        assert_eq!(r.end_reason, "crash_recovered", "{r:#?}");
        let until_kill = kill_at - answered_at(r);
        let wav = check_recording(&env.recordings, r);
        eprintln!("{}: {wav:?}", r.call_id);
        // The spool keeps a valid header as it grows; what was still buffered
        // in the killed process is lost, so the file may be a little short.
        assert!(
            wav.secs() > until_kill - 2.0 && wav.secs() < until_kill + 0.5,
            "partial WAV lasts {} s, answer to kill -9 {until_kill:.2} s",
            wav.secs()
        );
        assert!(
            wav.secs() <= r.duration + 0.25,
            "partial WAV ({} s) longer than the recovered talk time: {r:#?}",
            wav.secs()
        );
        assert!(
            wav.left_active > 0.6 && wav.right_active > 0.6,
            "both channels carry audio: {wav:?}"
        );
    }
}
