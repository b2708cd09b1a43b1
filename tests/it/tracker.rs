#![allow(clippy::too_many_arguments)]
//! The tracker driven deterministically with hand-built frames and timestamps.

use std::net::{Ipv4Addr, SocketAddr};

use pbxbridge::call::{
    CallRecord, EndReason, Event, Outcome, Side, Tracker, TrackerConfig, Update,
};
use pbxbridge::time::Timestamp;
use pbxbridge::wire::LinkType;

const CALLER: ([u8; 4], u16) = ([10, 0, 0, 10], 5060);
const PBX: ([u8; 4], u16) = ([10, 0, 0, 1], 5060);
const T0: i64 = 1_700_000_000_000_000;

fn udp(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
        .ipv4(src.0, dst.0, 64)
        .udp(src.1, dst.1);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

fn ms(ms: i64) -> Timestamp {
    Timestamp(T0 + ms * 1000)
}

struct Harness {
    t: Tracker,
    events: Vec<Event>,
}

impl Harness {
    fn new() -> Self {
        let cfg = TrackerConfig {
            extension_pattern: Some(regex::Regex::new("^[0-9]{3,5}$").unwrap()),
            ..TrackerConfig::default()
        };
        Harness {
            t: Tracker::new(cfg),
            events: Vec::new(),
        }
    }
    fn drain(&mut self) {
        while let Some(e) = self.t.poll_event() {
            self.events.push(e);
        }
    }
    fn frame(&mut self, at: Timestamp, frame: &[u8]) {
        self.t.handle_frame(at, LinkType::Ethernet, frame);
        self.drain();
    }
    fn sip(&mut self, at_ms: i64, src: ([u8; 4], u16), dst: ([u8; 4], u16), msg: &str) {
        let msg = msg.replace('\n', "\r\n");
        self.frame(ms(at_ms), &udp(src, dst, msg.as_bytes()));
    }
    fn run_until(&mut self, at: Timestamp) {
        self.t.handle_timeout(at);
        self.drain();
    }
    fn ended(&self) -> Vec<&CallRecord> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::CallEnded { record, .. } => Some(&**record),
                _ => None,
            })
            .collect()
    }
    fn only_call(&self) -> &CallRecord {
        let e = self.ended();
        assert_eq!(e.len(), 1, "expected exactly one call, got {e:#?}");
        e[0]
    }
}

fn sdp(ip: &str, port: u16, dir: &str) -> String {
    format!(
        "v=0\no=- 1 1 IN IP4 {ip}\ns=-\nc=IN IP4 {ip}\nt=0 0\nm=audio {port} RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\na={dir}\n"
    )
}

fn invite(cid: &str, cseq: u32, branch: &str, body: &str, extra: &str) -> String {
    format!(
        "INVITE sip:2001@10.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK{branch}\nFrom: \"Alice\" <sip:+14155550101@10.0.0.10>;tag=a1\nTo: <sip:2001@10.0.0.1>\nCall-ID: {cid}\nCSeq: {cseq} INVITE\nContact: <sip:alice@10.0.0.10>\n{extra}Content-Type: application/sdp\nContent-Length: {}\n\n{body}",
        body.replace('\n', "\r\n").len()
    )
}

fn response(
    code: u16,
    reason: &str,
    cid: &str,
    cseq: u32,
    method: &str,
    to_tag: &str,
    contact: &str,
    body: &str,
) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\n".into()
    };
    format!(
        "SIP/2.0 {code} {reason}\nVia: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bKx\nFrom: \"Alice\" <sip:+14155550101@10.0.0.10>;tag=a1\nTo: <sip:2001@10.0.0.1>{to_tag}\nCall-ID: {cid}\nCSeq: {cseq} {method}\nContact: <sip:{contact}@10.0.0.1>\n{ct}Content-Length: {}\n\n{body}",
        body.replace('\n', "\r\n").len()
    )
}

fn request(method: &str, cid: &str, cseq: u32, from_caller: bool, extra: &str) -> String {
    let (from, to) = if from_caller {
        (
            "<sip:+14155550101@10.0.0.10>;tag=a1",
            "<sip:2001@10.0.0.1>;tag=b1",
        )
    } else {
        (
            "<sip:2001@10.0.0.1>;tag=b1",
            "<sip:+14155550101@10.0.0.10>;tag=a1",
        )
    };
    format!(
        "{method} sip:x@10.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK{method}{cseq}\nFrom: {from}\nTo: {to}\nCall-ID: {cid}\nCSeq: {cseq} {method}\n{extra}Content-Length: 0\n\n"
    )
}

fn rtp(seq: u16, ts: u32, ssrc: u32, pt: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt, (seq >> 8) as u8, seq as u8];
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// INVITE, 180, 200 with SDP on both sides; returns the answer time in ms.
fn answered_call(h: &mut Harness, cid: &str) -> i64 {
    h.sip(
        0,
        CALLER,
        PBX,
        &invite(cid, 1, "1", &sdp("10.0.0.10", 4000, "sendrecv"), ""),
    );
    h.sip(
        50,
        PBX,
        CALLER,
        &response(180, "Ringing", cid, 1, "INVITE", ";tag=b1", "2001", ""),
    );
    h.sip(
        1000,
        PBX,
        CALLER,
        &response(
            200,
            "OK",
            cid,
            1,
            "INVITE",
            ";tag=b1",
            "2001",
            &sdp("10.0.0.1", 6000, "sendrecv"),
        ),
    );
    h.sip(1010, CALLER, PBX, &request("ACK", cid, 1, true, ""));
    1000
}

fn media_of(h: &Harness, leg: Side) -> Vec<(u64, usize)> {
    h.events
        .iter()
        .filter_map(|e| match e {
            // The fixtures send G.711: one byte per 8 kHz sample.
            Event::Media {
                leg: l,
                at,
                payload,
                ..
            } if *l == leg => Some((at.samples(8000), payload.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn answered_call_with_audio_both_ways_and_caller_bye() {
    let mut h = Harness::new();
    let answer = answered_call(&mut h, "c1");
    // 1 s of audio each way starting 20 ms after answer; a packet before the
    // answer is early media and must not be placed.
    for i in 0..50u16 {
        let at = answer + 20 + i as i64 * 20;
        h.frame(
            ms(at),
            &udp(
                ([10, 0, 0, 10], 4000),
                ([10, 0, 0, 1], 6000),
                &rtp(100 + i, 1000 + i as u32 * 160, 7, 0, &[0xFF; 160]),
            ),
        );
        h.frame(
            ms(at + 1),
            &udp(
                ([10, 0, 0, 1], 6000),
                ([10, 0, 0, 10], 4000),
                &rtp(500 + i, 9000 + i as u32 * 160, 9, 0, &[0x7F; 160]),
            ),
        );
    }
    h.sip(3000, CALLER, PBX, &request("BYE", "c1", 2, true, ""));
    h.sip(
        3010,
        PBX,
        CALLER,
        &response(200, "OK", "c1", 2, "BYE", ";tag=b1", "2001", ""),
    );
    // RTP after the BYE is not the call's any more.
    h.frame(
        ms(3020),
        &udp(
            ([10, 0, 0, 10], 4000),
            ([10, 0, 0, 1], 6000),
            &rtp(150, 1000 + 50 * 160, 7, 0, &[0xFF; 160]),
        ),
    );
    h.run_until(ms(10_000));

    let c = h.only_call();
    assert_eq!(c.outcome, Outcome::Answered);
    assert_eq!(c.end_reason, EndReason::CallerBye);
    assert_eq!(c.sip_code, Some(200));
    assert_eq!(c.started_at, ms(0));
    assert_eq!(c.answered_at, Some(ms(1000)));
    assert_eq!(c.ended_at, ms(3000));
    assert_eq!(c.direction.as_str(), "incoming");
    assert_eq!(c.agent.as_deref(), Some("2001"));
    assert_eq!(c.from_raw.as_deref(), Some("+14155550101"));
    assert_eq!(c.codec, Some("PCMU"));

    let caller = media_of(&h, Side::Caller);
    let callee = media_of(&h, Side::Callee);
    assert_eq!(caller.len(), 50, "every caller packet placed once");
    assert_eq!(callee.len(), 50);
    assert_eq!(caller[0], (160, 160), "20 ms after answer is sample 160");
    for w in caller.windows(2) {
        assert_eq!(
            w[1].0,
            w[0].0 + 160,
            "RTP timestamps drive contiguous placement"
        );
    }
    assert_eq!(h.t.stats().rtp_after_end, 1);
}

#[test]
fn callee_bye_and_proxy_duplicates_count_once() {
    let mut h = Harness::new();
    answered_call(&mut h, "c2");
    // The same INVITE seen again through a proxy (an extra Via) is a duplicate.
    let dup = invite("c2", 1, "proxy", &sdp("10.0.0.10", 4000, "sendrecv"), "");
    let dup = dup.replacen(
        "Via:",
        "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKp\nVia:",
        1,
    );
    h.sip(1020, PBX, CALLER, &dup);
    h.sip(2000, PBX, CALLER, &request("BYE", "c2", 1, false, ""));
    h.sip(2000, PBX, CALLER, &request("BYE", "c2", 1, false, ""));
    h.run_until(ms(60_000));
    let c = h.only_call();
    assert_eq!(c.end_reason, EndReason::CalleeBye);
    assert_eq!(c.ended_at, ms(2000));
    assert_eq!(h.t.stats().sip_duplicates, 2);
}

#[test]
fn proxy_auth_then_answer_is_one_call() {
    let mut h = Harness::new();
    h.sip(
        0,
        CALLER,
        PBX,
        &invite("c3", 1, "1", &sdp("10.0.0.10", 4000, "sendrecv"), ""),
    );
    h.sip(
        10,
        PBX,
        CALLER,
        &response(
            407,
            "Proxy Authentication Required",
            "c3",
            1,
            "INVITE",
            ";tag=p1",
            "2001",
            "",
        ),
    );
    h.sip(20, CALLER, PBX, &request("ACK", "c3", 1, true, ""));
    h.sip(
        30,
        CALLER,
        PBX,
        &invite(
            "c3",
            2,
            "2",
            &sdp("10.0.0.10", 4000, "sendrecv"),
            "Proxy-Authorization: Digest username=\"a\"\n",
        ),
    );
    h.sip(
        900,
        PBX,
        CALLER,
        &response(
            200,
            "OK",
            "c3",
            2,
            "INVITE",
            ";tag=b1",
            "2001",
            &sdp("10.0.0.1", 6000, "sendrecv"),
        ),
    );
    h.sip(2900, CALLER, PBX, &request("BYE", "c3", 3, true, ""));
    h.run_until(ms(60_000));
    let c = h.only_call();
    assert_eq!(c.outcome, Outcome::Answered);
    assert_eq!(c.started_at, ms(0));
    assert_eq!(c.answered_at, Some(ms(900)));
}

#[test]
fn forked_call_takes_the_answering_branch_as_agent() {
    let mut h = Harness::new();
    h.sip(
        0,
        CALLER,
        PBX,
        &invite("c4", 1, "1", &sdp("10.0.0.10", 4000, "sendrecv"), ""),
    );
    let counts = |h: &Harness| h.t.calls_by_state().map(|(s, n)| (s.as_str(), n));
    assert_eq!(counts(&h), [("trying", 1), ("ringing", 0), ("answered", 0)]);
    h.sip(
        10,
        PBX,
        CALLER,
        &response(180, "Ringing", "c4", 1, "INVITE", ";tag=A", "2002", ""),
    );
    h.sip(
        20,
        PBX,
        CALLER,
        &response(180, "Ringing", "c4", 1, "INVITE", ";tag=B", "2003", ""),
    );
    assert_eq!(counts(&h), [("trying", 0), ("ringing", 1), ("answered", 0)]);
    let ringing = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::CallRinging { .. }))
        .count();
    assert_eq!(ringing, 1, "a second fork's 180 is not a second ringing");
    h.sip(
        800,
        PBX,
        CALLER,
        &response(
            200,
            "OK",
            "c4",
            1,
            "INVITE",
            ";tag=B",
            "2003",
            &sdp("10.0.0.1", 6000, "sendrecv"),
        ),
    );
    // The other branch's late 200 does not change the answer.
    h.sip(
        810,
        PBX,
        CALLER,
        &response(
            200,
            "OK",
            "c4",
            1,
            "INVITE",
            ";tag=A",
            "2002",
            &sdp("10.0.0.1", 6100, "sendrecv"),
        ),
    );
    h.sip(1800, CALLER, PBX, &request("BYE", "c4", 2, true, ""));
    h.run_until(ms(60_000));
    let c = h.only_call();
    assert_eq!(c.agent.as_deref(), Some("2003"));
    assert_eq!(c.answered_at, Some(ms(800)));
}

#[test]
fn cancel_completed_elsewhere() {
    let mut h = Harness::new();
    h.sip(
        0,
        CALLER,
        PBX,
        &invite("c5", 1, "1", &sdp("10.0.0.10", 4000, "sendrecv"), ""),
    );
    h.sip(
        10,
        PBX,
        CALLER,
        &response(180, "Ringing", "c5", 1, "INVITE", ";tag=b1", "2001", ""),
    );
    let cancel = "CANCEL sip:2001@10.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK1\nFrom: <sip:+14155550101@10.0.0.10>;tag=a1\nTo: <sip:2001@10.0.0.1>\nCall-ID: c5\nCSeq: 1 CANCEL\nReason: SIP ;cause=200 ;text=\"Call completed elsewhere\"\nContent-Length: 0\n\n";
    h.sip(5000, CALLER, PBX, cancel);
    h.sip(
        5010,
        PBX,
        CALLER,
        &response(
            487,
            "Request Terminated",
            "c5",
            1,
            "INVITE",
            ";tag=b1",
            "2001",
            "",
        ),
    );
    h.run_until(ms(60_000));
    let c = h.only_call();
    assert_eq!(c.outcome, Outcome::Cancelled);
    assert!(c.answered_elsewhere);
    assert_eq!(c.end_reason, EndReason::Cancel);
    assert_eq!(c.ended_at, ms(5000));
    assert_eq!(c.sip_code, Some(487));
}

#[test]
fn final_failures_map_to_outcomes() {
    for (code, outcome) in [
        (486, Outcome::Busy),
        (600, Outcome::Busy),
        (603, Outcome::Declined),
        (480, Outcome::NoAnswer),
        (408, Outcome::NoAnswer),
        (404, Outcome::Failed),
        (503, Outcome::Failed),
    ] {
        let mut h = Harness::new();
        h.sip(0, CALLER, PBX, &invite("f", 1, "1", "", ""));
        h.sip(
            300,
            PBX,
            CALLER,
            &response(code, "X", "f", 1, "INVITE", ";tag=b1", "2001", ""),
        );
        h.run_until(ms(60_000));
        let c = h.only_call();
        assert_eq!(c.outcome, outcome, "{code}");
        assert_eq!(c.sip_code, Some(code));
        assert_eq!(c.end_reason, EndReason::Rejected);
        assert_eq!(c.ended_at, ms(300));
        assert_eq!(c.talk_micros(), 0);
    }
}

#[test]
fn timers_close_calls_that_never_end() {
    // No response at all.
    let mut h = Harness::new();
    h.sip(0, CALLER, PBX, &invite("t1", 1, "1", "", ""));
    h.run_until(ms(31_000));
    assert!(h.ended().is_empty(), "not before the timer");
    h.run_until(ms(33_000));
    let c = h.only_call();
    assert_eq!(
        (c.outcome, c.end_reason),
        (Outcome::Failed, EndReason::NoResponse)
    );

    // Ringing forever.
    let mut h = Harness::new();
    h.sip(0, CALLER, PBX, &invite("t2", 1, "1", "", ""));
    h.sip(
        10,
        PBX,
        CALLER,
        &response(180, "Ringing", "t2", 1, "INVITE", ";tag=b1", "2001", ""),
    );
    h.run_until(ms(301_000));
    let c = h.only_call();
    assert_eq!(
        (c.outcome, c.end_reason),
        (Outcome::NoAnswer, EndReason::RingTimeout)
    );

    // Answered, RTP stops, no BYE: ends at the last RTP packet.
    let mut h = Harness::new();
    answered_call(&mut h, "t3");
    for i in 0..10u16 {
        h.frame(
            ms(1020 + i as i64 * 20),
            &udp(
                ([10, 0, 0, 10], 4000),
                ([10, 0, 0, 1], 6000),
                &rtp(i, i as u32 * 160, 1, 0, &[0xFF; 160]),
            ),
        );
    }
    h.run_until(ms(400_000));
    let c = h.only_call();
    assert_eq!(c.end_reason, EndReason::RtpTimeout);
    assert_eq!(c.ended_at, ms(1020 + 9 * 20));

    // BYE never confirmed still ends at the BYE.
    let mut h = Harness::new();
    answered_call(&mut h, "t4");
    h.sip(5000, CALLER, PBX, &request("BYE", "t4", 2, true, ""));
    h.run_until(ms(36_000));
    assert!(h.ended().is_empty(), "the BYE timer runs 32 s");
    h.run_until(ms(37_001));
    let c = h.only_call();
    assert_eq!((c.end_reason, c.ended_at), (EndReason::CallerBye, ms(5000)));
}

#[test]
fn timers_due_before_a_packet_fire_inside_handle_frame_first() {
    // No driver loop: the next packet alone runs the timer that fell due
    // before it, and the call it closes ends before the packet's call starts.
    let mut h = Harness::new();
    h.sip(0, CALLER, PBX, &invite("d1", 1, "1", "", ""));
    h.sip(
        40_000,
        CALLER,
        PBX,
        &invite("d2", 1, "2", &sdp("10.0.0.10", 4100, "sendrecv"), ""),
    );
    let order: Vec<(&str, &str)> = h
        .events
        .iter()
        .map(|e| {
            let kind = match e {
                Event::CallStarted { .. } => "started",
                Event::CallHungUp { .. } => "hungup",
                Event::CallEnded { .. } => "ended",
                _ => "other",
            };
            (e.call_id(), kind)
        })
        .collect();
    assert_eq!(
        order,
        [
            ("d1", "started"),
            ("d1", "hungup"),
            ("d1", "ended"),
            ("d2", "started")
        ]
    );
    let c = h.only_call();
    assert_eq!(c.end_reason, EndReason::NoResponse);
    assert_eq!(c.ended_at, ms(32_000), "at the timer's own instant");
    assert_eq!(
        h.t.poll_timeout(),
        Some(ms(72_000)),
        "d2's no-response timer"
    );
}

#[test]
fn lifecycle_events_carry_call_id_and_snapshot() {
    let mut h = Harness::new();
    answered_call(&mut h, "ev1");
    h.sip(2000, CALLER, PBX, &request("BYE", "ev1", 2, true, ""));
    h.run_until(ms(60_000));
    let mut kinds = Vec::new();
    for e in &h.events {
        assert_eq!(e.call_id(), "ev1", "{e:?}");
        assert_eq!(e.call(), h.events[0].call());
        match e {
            Event::CallStarted { snapshot, at, .. } => {
                kinds.push("started");
                assert_eq!(snapshot.started_at, *at);
                assert_eq!(snapshot.answered_at, None);
                assert_eq!(snapshot.end_reason, EndReason::CrashRecovered);
                assert_eq!(snapshot.from_raw.as_deref(), Some("+14155550101"));
            }
            Event::CallRinging { snapshot, .. } => {
                kinds.push("ringing");
                assert_eq!(snapshot.outcome, Outcome::NoAnswer);
            }
            Event::CallAnswered { snapshot, at, .. } => {
                kinds.push("answered");
                assert_eq!(*at, ms(1000));
                assert_eq!(snapshot.outcome, Outcome::Answered);
                assert_eq!(snapshot.answered_at, Some(ms(1000)));
                assert_eq!(snapshot.end_reason, EndReason::CrashRecovered);
            }
            Event::CallHungUp { snapshot, at, .. } => {
                kinds.push("hungup");
                assert_eq!(*at, ms(2000));
                assert_eq!(snapshot.end_reason, EndReason::CallerBye);
                assert_eq!(snapshot.ended_at, ms(2000));
            }
            Event::CallEnded { record, .. } => {
                kinds.push("ended");
                assert_eq!(record.end_reason, EndReason::CallerBye);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds, ["started", "ringing", "answered", "hungup", "ended"]);
}

#[test]
fn capture_end_closes_open_calls_at_last_activity() {
    let mut h = Harness::new();
    answered_call(&mut h, "e1");
    h.t.close_all(ms(2000), EndReason::CaptureEnd);
    h.drain();
    let c = h.only_call();
    assert_eq!(c.end_reason, EndReason::CaptureEnd);
    assert_eq!(c.ended_at, ms(1010));
}

#[test]
fn capture_end_ignores_unrelated_traffic_after_the_call() {
    // The call's record must not depend on where the capture stops: a second
    // call's packets an hour later do not stretch the first one.
    let mut h = Harness::new();
    answered_call(&mut h, "e2");
    h.sip(
        3_600_000,
        CALLER,
        PBX,
        &invite("e3", 1, "9", &sdp("10.0.0.10", 4100, "sendrecv"), ""),
    );
    h.t.close_all(ms(3_600_500), EndReason::CaptureEnd);
    h.drain();
    let e = h.ended();
    let c = e.iter().find(|c| c.call_id == "e2").expect("call e2 ended");
    assert_eq!(c.end_reason, EndReason::CaptureEnd);
    assert_eq!(c.ended_at, ms(1010));
    assert_eq!(c.talk_micros(), 10_000);
}

#[test]
fn shutdown_ends_an_answered_call_without_rtp_at_the_stop() {
    // Issue 10: SIGTERM with a call up and no RTP recorded a talk time of 0 s
    // because the call ended at its last packet (the ACK).
    let mut h = Harness::new();
    let answer = answered_call(&mut h, "s1");
    let stop = ms(95_000);
    h.t.close_all(stop, EndReason::Shutdown);
    h.drain();
    let c = h.only_call();
    assert_eq!(c.end_reason, EndReason::Shutdown);
    assert_eq!(c.outcome, Outcome::Answered);
    assert_eq!(c.answered_at, Some(ms(answer)));
    assert_eq!(c.ended_at, stop);
    assert_eq!(c.talk_micros(), stop.micros_since(ms(answer)));
    assert_eq!(c.talk_micros(), 94_000_000);
}

#[test]
fn shutdown_keeps_the_end_of_calls_signalling_already_ended() {
    // A BYE seen before the stop is the call's end; the stop only cuts the
    // wait for its 200.
    let mut h = Harness::new();
    answered_call(&mut h, "s2");
    h.sip(5000, CALLER, PBX, &request("BYE", "s2", 2, true, ""));
    h.t.close_all(ms(6000), EndReason::Shutdown);
    h.drain();
    let c = h.only_call();
    assert_eq!((c.end_reason, c.ended_at), (EndReason::CallerBye, ms(5000)));
    assert_eq!(c.talk_micros(), 4_000_000);
}

#[test]
fn hold_and_resume_stay_one_call() {
    let mut h = Harness::new();
    answered_call(&mut h, "h1");
    let reinvite = |cseq: u32, dir: &str| {
        let body = sdp("10.0.0.10", 4000, dir);
        invite("h1", cseq, &format!("r{cseq}"), &body, "")
            .replace("To: <sip:2001@10.0.0.1>", "To: <sip:2001@10.0.0.1>;tag=b1")
    };
    h.sip(2000, CALLER, PBX, &reinvite(2, "sendonly"));
    h.sip(
        2010,
        PBX,
        CALLER,
        &response(
            200,
            "OK",
            "h1",
            2,
            "INVITE",
            ";tag=b1",
            "2001",
            &sdp("10.0.0.1", 6000, "recvonly"),
        ),
    );
    h.sip(4000, CALLER, PBX, &reinvite(3, "sendrecv"));
    h.sip(
        4010,
        PBX,
        CALLER,
        &response(
            200,
            "OK",
            "h1",
            3,
            "INVITE",
            ";tag=b1",
            "2001",
            &sdp("10.0.0.1", 6000, "sendrecv"),
        ),
    );
    h.sip(6000, CALLER, PBX, &request("BYE", "h1", 4, true, ""));
    h.run_until(ms(60_000));
    let c = h.only_call();
    assert!(c.held);
    assert_eq!(c.answered_at, Some(ms(1000)));
    let updates: Vec<&Update> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::CallUpdated { update, .. } => Some(update),
            _ => None,
        })
        .collect();
    assert_eq!(
        updates,
        vec![
            &Update::Hold { by: Side::Caller },
            &Update::Resume { by: Side::Caller }
        ]
    );
}

#[test]
fn rfc4733_digits_and_nat_learning() {
    let mut h = Harness::new();
    // The caller's SDP names a private address; its RTP really comes from a NAT.
    h.sip(
        0,
        CALLER,
        PBX,
        &invite("d1", 1, "1", &sdp("192.168.1.10", 4000, "sendrecv"), ""),
    );
    h.sip(
        500,
        PBX,
        CALLER,
        &response(
            200,
            "OK",
            "d1",
            1,
            "INVITE",
            ";tag=b1",
            "2001",
            &sdp("10.0.0.1", 6000, "sendrecv"),
        ),
    );
    let nat = ([203, 0, 113, 5], 30000);
    let media = ([10, 0, 0, 1], 6000);
    let mut seq = 0u16;
    for (i, digit) in [1u8, 2, 11].iter().enumerate() {
        let ts = 8000 * (i as u32 + 1);
        for k in 0..6u16 {
            let end = k >= 3;
            let dur = 160 * (k + 1);
            let payload = [
                *digit,
                if end { 0x80 | 10 } else { 10 },
                (dur >> 8) as u8,
                dur as u8,
            ];
            h.frame(
                ms(600 + i as i64 * 500 + k as i64 * 20),
                &udp(nat, media, &rtp(seq, ts, 42, 101, &payload)),
            );
            seq += 1;
        }
    }
    // The callee answers to where the caller really is: matched through NAT learning.
    h.frame(ms(2500), &udp(media, nat, &rtp(1, 0, 77, 0, &[0xFF; 160])));
    h.frame(
        ms(2520),
        &udp(media, nat, &rtp(2, 160, 77, 0, &[0xFF; 160])),
    );
    h.frame(
        ms(2540),
        &udp(media, nat, &rtp(3, 320, 77, 0, &[0xFF; 160])),
    );
    h.sip(3000, PBX, CALLER, &request("BYE", "d1", 1, false, ""));
    h.run_until(ms(60_000));
    let c = h.only_call();
    assert_eq!(c.dtmf, "12#");
    assert!(c.callee_rtp.packets >= 3, "{:?}", c.callee_rtp);
    assert!(!media_of(&h, Side::Callee).is_empty());
    let _ = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
}

#[test]
fn garbage_is_counted_not_fatal() {
    let mut h = Harness::new();
    h.frame(ms(0), &[0u8; 3]);
    h.frame(ms(1), &udp(CALLER, PBX, b"INVITE garbage\r\n\r\n"));
    h.frame(ms(2), &udp(CALLER, PBX, b"\r\n\r\n"));
    assert!(h.t.stats().dropped_total() >= 2, "{:?}", h.t.stats());
    assert_eq!(h.t.stats().sip_keepalives, 1);
    assert!(h.ended().is_empty());
}

#[test]
fn request_terminated_without_a_captured_cancel_is_cancelled() {
    let mut h = Harness::new();
    h.sip(0, CALLER, PBX, &invite("r487", 1, "1", "", ""));
    h.sip(
        10,
        PBX,
        CALLER,
        &response(180, "Ringing", "r487", 1, "INVITE", ";tag=b1", "2001", ""),
    );
    h.sip(
        4000,
        PBX,
        CALLER,
        &response(
            487,
            "Request Terminated",
            "r487",
            1,
            "INVITE",
            ";tag=b1",
            "2001",
            "",
        ),
    );
    h.run_until(ms(60_000));
    let c = h.only_call();
    assert_eq!(
        (c.outcome, c.end_reason, c.sip_code),
        (Outcome::Cancelled, EndReason::Cancel, Some(487))
    );
    assert_eq!(c.ended_at, ms(4000));
}

#[test]
fn nat_keepalives_and_stun_are_not_malformed() {
    let mut h = Harness::new();
    h.frame(ms(0), &udp(CALLER, PBX, b"jaK\0"));
    answered_call(&mut h, "k1");
    // A STUN binding request to the callee's media port.
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    h.frame(
        ms(1100),
        &udp(([10, 0, 0, 10], 4000), ([10, 0, 0, 1], 6000), &stun),
    );
    assert_eq!(h.t.stats().sip_keepalives, 1);
    assert_eq!(h.t.stats().media_control_packets, 1);
    assert_eq!(h.t.stats().dropped_total(), 0, "{:?}", h.t.stats().dropped);
}

#[test]
fn srtp_audio_is_not_decoded_as_g711() {
    let mut h = Harness::new();
    let savp = |ip: &str, port| sdp(ip, port, "sendrecv").replace("RTP/AVP", "RTP/SAVP");
    h.sip(
        0,
        CALLER,
        PBX,
        &invite("s1", 1, "1", &savp("10.0.0.10", 4000), ""),
    );
    h.sip(
        500,
        PBX,
        CALLER,
        &response(
            200,
            "OK",
            "s1",
            1,
            "INVITE",
            ";tag=b1",
            "2001",
            &savp("10.0.0.1", 6000),
        ),
    );
    for i in 0..20u16 {
        h.frame(
            ms(520 + i as i64 * 20),
            &udp(
                ([10, 0, 0, 10], 4000),
                ([10, 0, 0, 1], 6000),
                &rtp(i, i as u32 * 160, 5, 0, &[0x5A; 170]),
            ),
        );
    }
    h.sip(1500, CALLER, PBX, &request("BYE", "s1", 2, true, ""));
    h.run_until(ms(60_000));
    let c = h.only_call();
    assert!(c.encrypted_media);
    assert!(!c.audio_seen);
    assert!(
        media_of(&h, Side::Caller).is_empty(),
        "ciphertext is never placed as audio"
    );
    assert_eq!(
        c.caller_rtp.packets, 20,
        "the packets still count for quality"
    );
}

/// The lifecycle events in order, media left out.
fn lifecycle(h: &Harness) -> Vec<&'static str> {
    h.events
        .iter()
        .filter_map(|e| match e {
            Event::CallStarted { .. } => Some("started"),
            Event::CallRinging { .. } => Some("ringing"),
            Event::CallAnswered { .. } => Some("answered"),
            Event::CallUpdated { .. } => Some("updated"),
            Event::CallHungUp { .. } => Some("hungup"),
            Event::CallEnded { .. } => Some("ended"),
            Event::Media { .. } => None,
        })
        .collect()
}

fn hungups(h: &Harness) -> Vec<(Timestamp, &CallRecord)> {
    h.events
        .iter()
        .filter_map(|e| match e {
            Event::CallHungUp { at, snapshot, .. } => Some((*at, &**snapshot)),
            _ => None,
        })
        .collect()
}

fn transfers(h: &Harness) -> Vec<(Side, Option<&str>)> {
    h.events
        .iter()
        .filter_map(|e| match e {
            Event::CallUpdated {
                update: Update::Transfer { by, to },
                ..
            } => Some((*by, to.as_deref())),
            _ => None,
        })
        .collect()
}

/// The caller's ACK of a failure sent by the branch with To tag `to_tag`.
fn ack_of(cid: &str, cseq: u32, to_tag: &str) -> String {
    request("ACK", cid, cseq, true, "").replace("tag=b1", &format!("tag={to_tag}"))
}

#[test]
fn hungup_once_at_the_bye_and_ended_at_its_200() {
    let mut h = Harness::new();
    answered_call(&mut h, "hb1");
    h.sip(3000, CALLER, PBX, &request("BYE", "hb1", 2, true, ""));
    // Both hang up at once (BYE glare): still one hangup, the first BYE's.
    h.sip(3005, PBX, CALLER, &request("BYE", "hb1", 7, false, ""));
    let hung = hungups(&h);
    assert_eq!(hung.len(), 1, "{:?}", lifecycle(&h));
    let (at, snap) = (hung[0].0, hung[0].1.clone());
    assert_eq!(at, ms(3000));
    assert_eq!(snap.end_reason, EndReason::CallerBye);
    assert_eq!(snap.outcome, Outcome::Answered);
    assert_eq!(snap.ended_at, ms(3000));
    assert_eq!(snap.talk_micros(), 2_000_000);
    assert!(h.ended().is_empty(), "not before the BYE's response");

    // The 200 makes the end certain: the call is closed while handling it,
    // not 2 s later.
    h.sip(
        3010,
        PBX,
        CALLER,
        &response(200, "OK", "hb1", 2, "BYE", ";tag=b1", "2001", ""),
    );
    assert_eq!(h.t.active_calls(), 0);
    assert_eq!(
        lifecycle(&h),
        ["started", "ringing", "answered", "hungup", "ended"]
    );
    let c = h.only_call();
    assert_eq!((c.end_reason, c.ended_at), (EndReason::CallerBye, ms(3000)));
    assert_eq!(*c, snap, "the hangup's snapshot is the final record");
}

#[test]
fn retransmissions_after_the_end_are_absorbed() {
    let mut h = Harness::new();
    answered_call(&mut h, "hb2");
    h.sip(3000, PBX, CALLER, &request("BYE", "hb2", 1, false, ""));
    h.sip(
        3010,
        CALLER,
        PBX,
        &response(200, "OK", "hb2", 1, "BYE", ";tag=b1", "2001", ""),
    );
    assert_eq!(h.ended().len(), 1);
    // The BYE again (its 200 was lost), the 200 again, the INVITE again,
    // and RTP still in flight: none of it is a new call.
    h.sip(3500, PBX, CALLER, &request("BYE", "hb2", 1, false, ""));
    h.sip(
        3510,
        CALLER,
        PBX,
        &response(200, "OK", "hb2", 1, "BYE", ";tag=b1", "2001", ""),
    );
    h.sip(
        3600,
        CALLER,
        PBX,
        &invite("hb2", 1, "1", &sdp("10.0.0.10", 4000, "sendrecv"), ""),
    );
    h.frame(
        ms(3700),
        &udp(
            ([10, 0, 0, 10], 4000),
            ([10, 0, 0, 1], 6000),
            &rtp(1, 160, 7, 0, &[0xFF; 160]),
        ),
    );
    h.run_until(ms(120_000));
    let s = h.t.stats();
    assert_eq!(s.calls_started, 1);
    assert_eq!(s.sip_after_end, 3);
    assert_eq!(
        s.rtp_after_end, 1,
        "RTP just after the close is late, not unknown"
    );
    assert_eq!(s.rtp_unmatched, 0);
    assert_eq!(
        lifecycle(&h),
        ["started", "ringing", "answered", "hungup", "ended"]
    );
    assert_eq!(h.only_call().end_reason, EndReason::CalleeBye);
}

#[test]
fn hungup_comes_just_before_ended_when_a_timer_closes_the_call() {
    let ended_pair = |h: &Harness| {
        let n = h.events.len();
        assert!(n >= 2);
        match (&h.events[n - 2], &h.events[n - 1]) {
            (Event::CallHungUp { at, snapshot, .. }, Event::CallEnded { record, .. }) => {
                assert_eq!(snapshot, record);
                assert_eq!(*at, record.ended_at);
                (**record).clone()
            }
            other => panic!("expected hungup then ended, got {other:?}"),
        }
    };

    // No response: the timer.
    let mut h = Harness::new();
    h.sip(0, CALLER, PBX, &invite("ht1", 1, "1", "", ""));
    h.run_until(ms(31_000));
    assert!(hungups(&h).is_empty(), "nothing hung up before the timer");
    h.run_until(ms(40_000));
    let c = ended_pair(&h);
    assert_eq!(
        (c.end_reason, c.ended_at),
        (EndReason::NoResponse, ms(32_000))
    );
    assert_eq!(hungups(&h).len(), 1);

    // RTP stops: ends at the last packet, 300 s before the timer fires.
    let mut h = Harness::new();
    answered_call(&mut h, "ht2");
    h.frame(
        ms(1500),
        &udp(
            ([10, 0, 0, 10], 4000),
            ([10, 0, 0, 1], 6000),
            &rtp(1, 160, 7, 0, &[0xFF; 160]),
        ),
    );
    h.run_until(ms(400_000));
    let c = ended_pair(&h);
    assert_eq!(
        (c.end_reason, c.ended_at),
        (EndReason::RtpTimeout, ms(1500))
    );

    // The daemon stops with the call up.
    let mut h = Harness::new();
    answered_call(&mut h, "ht3");
    h.t.close_all(ms(9000), EndReason::Shutdown);
    h.drain();
    let c = ended_pair(&h);
    assert_eq!((c.end_reason, c.ended_at), (EndReason::Shutdown, ms(9000)));
    assert_eq!(c.talk_micros(), 8_000_000);
    assert_eq!(hungups(&h).len(), 1);
}

#[test]
fn failure_is_hungup_at_once_and_ended_at_its_ack() {
    let mut h = Harness::new();
    h.sip(0, CALLER, PBX, &invite("fa1", 1, "1", "", ""));
    h.sip(
        10,
        PBX,
        CALLER,
        &response(180, "Ringing", "fa1", 1, "INVITE", ";tag=b1", "2001", ""),
    );
    h.sip(
        300,
        PBX,
        CALLER,
        &response(486, "Busy Here", "fa1", 1, "INVITE", ";tag=b1", "2001", ""),
    );
    let hung = hungups(&h);
    assert_eq!(hung.len(), 1);
    assert_eq!(hung[0].0, ms(300));
    assert_eq!(
        (hung[0].1.outcome, hung[0].1.end_reason),
        (Outcome::Busy, EndReason::Rejected)
    );
    assert!(h.ended().is_empty(), "waits for the ACK");
    h.sip(310, CALLER, PBX, &ack_of("fa1", 1, "b1"));
    let c = h.only_call();
    assert_eq!((c.outcome, c.ended_at), (Outcome::Busy, ms(300)));
    assert_eq!(h.t.active_calls(), 0);

    // No ACK in the capture: the linger is the fallback.
    let mut h = Harness::new();
    h.sip(0, CALLER, PBX, &invite("fa2", 1, "1", "", ""));
    h.sip(
        300,
        PBX,
        CALLER,
        &response(603, "Decline", "fa2", 1, "INVITE", ";tag=b1", "2001", ""),
    );
    h.run_until(ms(2299));
    assert!(h.ended().is_empty());
    h.run_until(ms(2300));
    assert_eq!(h.only_call().outcome, Outcome::Declined);
    assert_eq!(lifecycle(&h), ["started", "hungup", "ended"]);
}

#[test]
fn cancel_is_hungup_at_once_and_ended_at_the_487() {
    let mut h = Harness::new();
    h.sip(0, CALLER, PBX, &invite("ca1", 1, "1", "", ""));
    h.sip(
        10,
        PBX,
        CALLER,
        &response(180, "Ringing", "ca1", 1, "INVITE", ";tag=b1", "2001", ""),
    );
    let cancel = invite("ca1", 1, "1", "", "")
        .replace("INVITE sip", "CANCEL sip")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    h.sip(4000, CALLER, PBX, &cancel);
    let hung = hungups(&h);
    assert_eq!(hung.len(), 1);
    assert_eq!(hung[0].0, ms(4000));
    assert_eq!(hung[0].1.outcome, Outcome::Cancelled);
    assert!(h.ended().is_empty());
    h.sip(
        4010,
        PBX,
        CALLER,
        &response(
            487,
            "Request Terminated",
            "ca1",
            1,
            "INVITE",
            ";tag=b1",
            "2001",
            "",
        ),
    );
    let c = h.only_call();
    assert_eq!((c.end_reason, c.ended_at), (EndReason::Cancel, ms(4000)));
    // The ACK of the 487 comes after the close.
    h.sip(4020, CALLER, PBX, &ack_of("ca1", 1, "b1"));
    assert_eq!(h.t.stats().sip_after_end, 1);
}

#[test]
fn a_fork_that_fails_while_another_rings_does_not_end_the_call() {
    let mut h = Harness::new();
    h.sip(0, CALLER, PBX, &invite("fk1", 1, "1", "", ""));
    for (at, tag, ext) in [(10, ";tag=A", "2002"), (20, ";tag=B", "2003")] {
        h.sip(
            at,
            PBX,
            CALLER,
            &response(180, "Ringing", "fk1", 1, "INVITE", tag, ext, ""),
        );
    }
    h.sip(
        300,
        PBX,
        CALLER,
        &response(486, "Busy Here", "fk1", 1, "INVITE", ";tag=A", "2002", ""),
    );
    h.sip(310, CALLER, PBX, &ack_of("fk1", 1, "A"));
    assert!(hungups(&h).is_empty(), "branch B may still answer");
    assert!(h.ended().is_empty());
    h.sip(
        1500,
        PBX,
        CALLER,
        &response(
            200,
            "OK",
            "fk1",
            1,
            "INVITE",
            ";tag=B",
            "2003",
            &sdp("10.0.0.1", 6000, "sendrecv"),
        ),
    );
    h.sip(4000, CALLER, PBX, &request("BYE", "fk1", 2, true, ""));
    h.run_until(ms(60_000));
    let c = h.only_call();
    assert_eq!(c.outcome, Outcome::Answered);
    assert_eq!(c.agent.as_deref(), Some("2003"));
    assert_eq!(hungups(&h).len(), 1);
    assert_eq!(hungups(&h)[0].0, ms(4000));

    // Both branches fail: the last failure is the hangup, its ACK the end.
    let mut h = Harness::new();
    h.sip(0, CALLER, PBX, &invite("fk2", 1, "1", "", ""));
    for (at, tag) in [(10, ";tag=A"), (20, ";tag=B")] {
        h.sip(
            at,
            PBX,
            CALLER,
            &response(180, "Ringing", "fk2", 1, "INVITE", tag, "2002", ""),
        );
    }
    h.sip(
        300,
        PBX,
        CALLER,
        &response(486, "Busy Here", "fk2", 1, "INVITE", ";tag=A", "2002", ""),
    );
    h.sip(310, CALLER, PBX, &ack_of("fk2", 1, "A"));
    h.sip(
        500,
        PBX,
        CALLER,
        &response(480, "Unavailable", "fk2", 1, "INVITE", ";tag=B", "2002", ""),
    );
    assert_eq!(
        hungups(&h).iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [ms(500)]
    );
    assert!(h.ended().is_empty(), "the ACK seen was branch A's");
    h.sip(510, CALLER, PBX, &ack_of("fk2", 1, "B"));
    let c = h.only_call();
    assert_eq!(
        (c.outcome, c.ended_at, c.sip_code),
        (Outcome::Busy, ms(300), Some(486))
    );
}

#[test]
fn a_failure_the_caller_retries_is_not_the_end() {
    // 422 Session Interval Too Small: the UAC sends the INVITE again with a
    // higher CSeq, after the ACK.
    let mut h = Harness::new();
    h.sip(0, CALLER, PBX, &invite("rt1", 1, "1", "", ""));
    h.sip(
        100,
        PBX,
        CALLER,
        &response(
            422,
            "Session Interval Too Small",
            "rt1",
            1,
            "INVITE",
            ";tag=b1",
            "2001",
            "",
        ),
    );
    h.sip(110, CALLER, PBX, &ack_of("rt1", 1, "b1"));
    assert!(hungups(&h).is_empty());
    assert!(h.ended().is_empty());
    h.sip(
        200,
        CALLER,
        PBX,
        &invite("rt1", 2, "2", &sdp("10.0.0.10", 4000, "sendrecv"), ""),
    );
    h.sip(
        900,
        PBX,
        CALLER,
        &response(
            200,
            "OK",
            "rt1",
            2,
            "INVITE",
            ";tag=b2",
            "2001",
            &sdp("10.0.0.1", 6000, "sendrecv"),
        ),
    );
    h.sip(3000, CALLER, PBX, &request("BYE", "rt1", 3, true, ""));
    h.run_until(ms(60_000));
    let c = h.only_call();
    assert_eq!((c.outcome, c.started_at), (Outcome::Answered, ms(0)));
    assert_eq!(hungups(&h).len(), 1);

    // Not retried: the linger closes it, the hangup just before.
    let mut h = Harness::new();
    h.sip(0, CALLER, PBX, &invite("rt2", 1, "1", "", ""));
    h.sip(
        100,
        PBX,
        CALLER,
        &response(
            422,
            "Session Interval Too Small",
            "rt2",
            1,
            "INVITE",
            ";tag=b1",
            "2001",
            "",
        ),
    );
    h.sip(110, CALLER, PBX, &ack_of("rt2", 1, "b1"));
    h.run_until(ms(60_000));
    assert_eq!(lifecycle(&h), ["started", "hungup", "ended"]);
    assert_eq!(hungups(&h)[0].0, ms(100));
    assert_eq!(h.only_call().sip_code, Some(422));
}

#[test]
fn refer_is_a_transfer_update_once_per_cseq() {
    let mut h = Harness::new();
    answered_call(&mut h, "x1");
    let refer = |cseq: u32, from_caller: bool, refer_to: &str| {
        request("REFER", "x1", cseq, from_caller, &format!("{refer_to}\n"))
    };
    let attended =
        "Refer-To: <sip:2002@10.0.0.1?Replaces=abc%4010.0.0.1%3Bto-tag%3Dz%3Bfrom-tag%3Dy>";
    h.sip(2000, PBX, CALLER, &refer(5, false, attended));
    h.sip(
        2010,
        CALLER,
        PBX,
        &response(202, "Accepted", "x1", 5, "REFER", ";tag=b1", "2001", ""),
    );
    // Enough other messages to push the REFER out of the duplicate filter,
    // then the REFER again: still one transfer.
    for i in 0..40u32 {
        h.sip(
            2100 + i as i64,
            CALLER,
            PBX,
            &request("INFO", "x1", 10 + i, true, ""),
        );
    }
    h.sip(2500, PBX, CALLER, &refer(5, false, attended));
    // A blind transfer by the caller, in the compact form, to a tel: URI.
    h.sip(3000, CALLER, PBX, &refer(60, true, "r: <tel:+14155550199>"));
    // No user part: the whole URI.
    h.sip(
        3100,
        CALLER,
        PBX,
        &refer(61, true, "Refer-To: sip:queue.example.com"),
    );
    let long = "9".repeat(300);
    h.sip(
        3200,
        CALLER,
        PBX,
        &refer(62, true, &format!("Refer-To: <sip:{long}@10.0.0.1>")),
    );
    let got = transfers(&h);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], (Side::Callee, Some("2002")));
    assert_eq!(got[1], (Side::Caller, Some("+14155550199")));
    assert_eq!(got[2], (Side::Caller, Some("sip:queue.example.com")));
    assert_eq!(got[3], (Side::Caller, Some(&long[..128])));

    // After the hangup a REFER is no transfer.
    h.sip(4000, PBX, CALLER, &request("BYE", "x1", 70, false, ""));
    h.sip(
        4001,
        CALLER,
        PBX,
        &refer(63, true, "Refer-To: <sip:2003@10.0.0.1>"),
    );
    assert_eq!(transfers(&h).len(), 4);
    let at = h.events.iter().find_map(|e| match e {
        Event::CallUpdated {
            at,
            update: Update::Transfer { .. },
            snapshot,
            ..
        } => Some((*at, snapshot.outcome)),
        _ => None,
    });
    assert_eq!(at, Some((ms(2000), Outcome::Answered)));
    // A REFER of no call we know counts as before.
    let before = h.t.stats().sip_non_call;
    h.sip(
        5000,
        CALLER,
        PBX,
        &request("REFER", "nobody", 1, true, &format!("{attended}\n")),
    );
    assert_eq!(h.t.stats().sip_non_call, before + 1);
}

/// RTCP SR (with one report block) or RR from `ssrc` about `about`.
fn rtcp_report(
    sr_ntp: Option<u64>,
    ssrc: u32,
    about: u32,
    fraction: u8,
    cum: u32,
    jitter: u32,
    lsr: u32,
    dlsr: u32,
) -> Vec<u8> {
    let words: u16 = if sr_ntp.is_some() { 12 } else { 7 };
    let mut p = vec![0x81, if sr_ntp.is_some() { 200 } else { 201 }];
    p.extend_from_slice(&words.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(ntp) = sr_ntp {
        p.extend_from_slice(&ntp.to_be_bytes());
        p.extend_from_slice(&[0; 12]); // RTP ts, packet and octet counts
    }
    p.extend_from_slice(&about.to_be_bytes());
    p.extend_from_slice(&((u32::from(fraction) << 24) | cum).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 99]);
    for v in [jitter, lsr, dlsr] {
        p.extend_from_slice(&v.to_be_bytes());
    }
    p
}

/// Quality per direction from the RTP after the answer, with RTCP on port + 1
/// (SR/RR, a round trip from LSR/DLSR) and RTCP-XR muxed on the RTP port.
#[test]
fn call_quality_from_rtp_and_rtcp() {
    let mut h = Harness::new();
    let answer = answered_call(&mut h, "q1");
    let caller_rtp = ([10, 0, 0, 10], 4000);
    let callee_rtp = ([10, 0, 0, 1], 6000);
    // Caller: 100 packets, 10 and 20..=22 lost, 30 and 31 swapped.
    for slot in 0..100u16 {
        let seq = match slot {
            30 => 31,
            31 => 30,
            s => s,
        };
        let at = answer + 20 + i64::from(slot) * 20;
        if !(seq == 10 || (20..=22).contains(&seq)) {
            let p = rtp(1000 + seq, u32::from(seq) * 160, 7, 0, &[0xFF; 160]);
            h.frame(ms(at), &udp(caller_rtp, callee_rtp, &p));
        }
        let p = rtp(500 + slot, u32::from(slot) * 160, 9, 0, &[0x7F; 160]);
        h.frame(ms(at + 1), &udp(callee_rtp, caller_rtp, &p));
    }
    // The callee's SR (NTP middle 0x12345678) says it lost 10/256 of the
    // caller's packets, 4 in all, jitter 40 units (5 ms at 8 kHz).
    let sr = rtcp_report(Some(0x0000_1234_5678_0000), 9, 7, 10, 4, 40, 0, 0);
    h.frame(
        ms(1500),
        &udp(([10, 0, 0, 1], 6001), ([10, 0, 0, 10], 4001), &sr),
    );
    // The caller's RR echoes that SR 560 ms later after holding it 500 ms:
    // the loop capture point → caller → capture point took 60 ms.
    let rr = rtcp_report(None, 7, 9, 0, 0, 16, 0x1234_5678, 0x8000);
    h.frame(
        ms(2060),
        &udp(([10, 0, 0, 10], 4001), ([10, 0, 0, 1], 6001), &rr),
    );
    // RTCP-XR VoIP metrics about the callee's stream, muxed on the RTP port.
    let mut xr = vec![0x80, 207, 0, 10, 0, 0, 0, 7, 7, 0, 0, 8, 0, 0, 0, 9];
    xr.extend_from_slice(&[13, 0, 0, 0, 0, 0, 0, 0, 0, 60, 0, 20, 0, 0, 0, 0]);
    xr.extend_from_slice(&[88, 127, 42, 41, 0, 0, 0, 40, 0, 80, 0, 120]);
    h.frame(ms(2100), &udp(caller_rtp, callee_rtp, &xr));
    h.sip(3500, CALLER, PBX, &request("BYE", "q1", 2, true, ""));
    h.sip(
        3510,
        PBX,
        CALLER,
        &response(200, "OK", "q1", 2, "BYE", ";tag=b1", "2001", ""),
    );
    h.run_until(ms(10_000));

    let c = h.only_call();
    assert_eq!(h.t.stats().rtcp_packets, 3);
    let q = c.caller_rtp.quality.as_ref().expect("caller quality");
    assert_eq!((q.expected, q.received, q.lost), (100, 96, 4));
    assert_eq!((q.out_of_order, q.duplicated, q.late), (1, 0, 0));
    assert_eq!(q.max_burst, 3);
    assert_eq!((q.loss_runs.len_1, q.loss_runs.len_3_5), (1, 1));
    assert_eq!(q.loss_pct, 4.0);
    assert_eq!(q.max_gap_ms, 80.0, "three lost packets leave an 80 ms gap");
    let rtcp = q.rtcp.as_ref().expect("the callee's reports");
    assert_eq!(rtcp.reports, 1);
    assert_eq!(rtcp.fraction_lost_pct, 3.90625);
    assert_eq!(rtcp.cumulative_lost, 4);
    assert_eq!(rtcp.jitter_ms, 5.0);
    assert_eq!(rtcp.rtt_ms, Some(60.0));
    // BurstR = 1 / (2/96 + 2/4) = 1.92; Ie_eff = 95*4 / (4/1.92 + 25.1) =
    // 13.979; one-way delay 60 + 60/2 ms < 100 ms: R = 93.2 - 13.979 = 79.221.
    assert_eq!(q.burst_ratio, 1.92);
    let r = q.r_factor.unwrap();
    assert!((r - 79.221).abs() < 0.002, "{r}");
    let mos = q.mos.unwrap();
    assert!((mos - 3.99).abs() < 0.01, "{mos}");

    let b = c.callee_rtp.quality.as_ref().expect("callee quality");
    assert_eq!((b.expected, b.lost, b.jitter_ms), (100, 0, 0.0));
    assert_eq!((b.r_factor, b.mos), (Some(93.2), Some(4.409)));
    let rtcp = b.rtcp.as_ref().expect("the caller's reports");
    assert_eq!((rtcp.reports, rtcp.jitter_ms), (1, 2.0));
    assert_eq!(rtcp.rtt_ms, Some(60.0));
    let xr = rtcp.xr.expect("XR VoIP metrics");
    assert_eq!((xr.round_trip_ms, xr.end_system_delay_ms), (60, 20));
    assert_eq!(
        (xr.r_factor, xr.mos_lq, xr.mos_cq),
        (Some(88), Some(4.2), Some(4.1))
    );
}

/// A call that was never answered has no quality figures at all.
#[test]
fn unanswered_calls_carry_no_quality() {
    let mut h = Harness::new();
    h.sip(
        0,
        CALLER,
        PBX,
        &invite("nq", 1, "1", &sdp("10.0.0.10", 4000, "sendrecv"), ""),
    );
    h.sip(
        500,
        PBX,
        CALLER,
        &response(486, "Busy Here", "nq", 1, "INVITE", ";tag=b1", "2001", ""),
    );
    h.run_until(ms(60_000));
    let c = h.only_call();
    assert_eq!(c.outcome, Outcome::Busy);
    assert!(c.caller_rtp.quality.is_none() && c.callee_rtp.quality.is_none());
}
