//! `pbxbridge run` capturing live on `lo` while SIPp pairs make three real
//! calls: answered with RTP both ways, busy (486) and cancelled. After SIGTERM
//! the database, the recording and the log must tell what happened.
//!
//! Needs root, sipp (Debian sip-tester) and python3; scripts/e2e-deps.sh installs them.

#[path = "e2e/support.rs"]
mod support;

use std::time::Duration;

use support::*;

const TALK_SECS: f64 = 3.0;

#[test]
fn live_capture_answered_busy_cancelled() {
    require(&["sipp", "python3", "kill"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();

    let answered = Pair::new(root, "answered", 30000..40000);
    let busy = Pair::new(root, "busy", 30000..40000);
    let cancelled = Pair::new(root, "cancelled", 30000..40000);
    answered.rtp(TALK_SECS, 0x1a2b_3c01);

    let env = DaemonEnv::capturing(root, &[&answered, &busy, &cancelled]);
    let mut daemon = env.start("pbxbridge");

    let id_answered = call_id("answered");
    let id_busy = call_id("busy");
    let id_cancelled = call_id("cancelled");
    let caller = ["-key", "caller", "+14155550101", "-s", "2001"];
    let talk_ms = format!("{}", (TALK_SECS * 1000.0) as u64);

    {
        let mut uas = answered.uas("uas_answer.xml", &["-key", "contact", "2001"]);
        let mut uac = answered.uac(
            "uac_caller_bye.xml",
            answered.uas_addr(),
            &id_answered,
            &[&caller[..], &["-d", &talk_ms]].concat(),
        );
        uac.expect_success(Duration::from_secs(30));
        uas.expect_success(Duration::from_secs(10));
    }
    {
        let mut uas = busy.uas(
            "uas_ring_reject_486.xml",
            &["-key", "contact", "2001", "-d", "1200"],
        );
        let mut uac = busy.uac("uac_reject.xml", busy.uas_addr(), &id_busy, &caller);
        uac.expect_success(Duration::from_secs(30));
        uas.expect_success(Duration::from_secs(10));
    }
    {
        let mut uas = cancelled.uas("uas_cancel.xml", &["-key", "contact", "2001"]);
        let mut uac = cancelled.uac(
            "uac_cancel.xml",
            cancelled.uas_addr(),
            &id_cancelled,
            &[&caller[..], &["-d", "1500"]].concat(),
        );
        uac.expect_success(Duration::from_secs(30));
        uas.expect_success(Duration::from_secs(10));
    }

    let all = [
        id_answered.as_str(),
        id_busy.as_str(),
        id_cancelled.as_str(),
    ];
    daemon.wait_events("call ended", &all, Duration::from_secs(20));
    assert!(
        daemon.has_event("call ringing", &id_answered),
        "no \"call ringing\" log line with call_id {id_answered}"
    );
    assert!(
        daemon.has_event("call answered", &id_answered),
        "no \"call answered\" log line with call_id {id_answered}"
    );
    assert!(
        !daemon.has_event("call answered", &id_busy),
        "the busy call was logged as answered"
    );

    let status = daemon.terminate(Duration::from_secs(20));
    assert!(
        status.success(),
        "exit after SIGTERM: {status}; log:\n{}",
        daemon.proc.log_tail()
    );

    let rows = calls(&env.db);
    eprintln!("calls: {rows:#?}");
    assert_eq!(rows.len(), 3, "three calls, rows: {rows:#?}");

    assert_answered_with_audio(&env, &rows, &id_answered, TALK_SECS, "caller_bye");

    let b = row(&rows, &id_busy);
    assert_eq!(b.outcome, "busy", "{b:#?}");
    assert_eq!(b.sip_code, Some(486), "{b:#?}");
    assert_eq!(b.direction, "incoming", "{b:#?}");
    assert_eq!(b.duration, 0.0, "{b:#?}");
    assert_eq!(b.recording_status, "none", "{b:#?}");

    let c = row(&rows, &id_cancelled);
    assert_eq!(c.outcome, "cancelled", "{c:#?}");
    assert_eq!(c.end_reason, "cancel", "{c:#?}");
    assert_eq!(c.direction, "incoming", "{c:#?}");
    assert_eq!(c.duration, 0.0, "{c:#?}");
    assert_eq!(c.recording_status, "none", "{c:#?}");
}
