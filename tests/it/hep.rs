//! HEP input end to end: HEP-carried SIP combined with RTP from a capture into one
//! call, HEP found inside a capture, bad HEP counted, and the UDP/TCP listener.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pbxbridge::call::{CallRecord, EndReason, Event, Outcome, Side, Tracker, TrackerConfig};
use pbxbridge::capture::hep::HepListener;
use pbxbridge::capture::{input_queue, Input, InputReceiver};
use pbxbridge::time::Timestamp;
use pbxbridge::wire::hep::{build_hep3, HepPayload, HepRepr, ProtoType};
use pbxbridge::wire::LinkType;

const T0: i64 = 1_700_000_000_000_000;
/// How late HEP messages reach us after their capture.
const LATENCY_US: i64 = 30_000;

fn ms(ms: i64) -> Timestamp {
    Timestamp(T0 + ms * 1000)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn caller() -> SocketAddr {
    addr("10.0.0.10:5060")
}
fn pbx() -> SocketAddr {
    addr("10.0.0.1:5060")
}

fn udp_frame(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        panic!("IPv4 only here")
    };
    let b = etherparse::PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
        .ipv4(s.ip().octets(), d.ip().octets(), 64)
        .udp(s.port(), d.port());
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

fn sdp(ip: &str, port: u16) -> String {
    crlf(&format!(
        "v=0\no=- 1 1 IN IP4 {ip}\ns=-\nc=IN IP4 {ip}\nt=0 0\nm=audio {port} RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=sendrecv\n"
    ))
}

fn invite(cid: &str) -> String {
    let body = sdp("10.0.0.10", 4000);
    crlf(&format!(
        "INVITE sip:2001@10.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK1\nFrom: <sip:+14155550101@10.0.0.10>;tag=a1\nTo: <sip:2001@10.0.0.1>\nCall-ID: {cid}\nCSeq: 1 INVITE\nContact: <sip:alice@10.0.0.10>\nContent-Type: application/sdp\nContent-Length: {}\n\n",
        body.len()
    )) + &body
}

fn response(code: u16, cid: &str, cseq: u32, method: &str, body: &str) -> String {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\n"
    };
    crlf(&format!(
        "SIP/2.0 {code} X\nVia: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK{cseq}\nFrom: <sip:+14155550101@10.0.0.10>;tag=a1\nTo: <sip:2001@10.0.0.1>;tag=b1\nCall-ID: {cid}\nCSeq: {cseq} {method}\nContact: <sip:2001@10.0.0.1>\n{ct}Content-Length: {}\n\n",
        body.len()
    )) + body
}

fn request(method: &str, cid: &str, cseq: u32) -> String {
    crlf(&format!(
        "{method} sip:2001@10.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK{method}\nFrom: <sip:+14155550101@10.0.0.10>;tag=a1\nTo: <sip:2001@10.0.0.1>;tag=b1\nCall-ID: {cid}\nCSeq: {cseq} {method}\nContent-Length: 0\n\n"
    ))
}

fn rtp(seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0, (seq >> 8) as u8, seq as u8];
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

struct Harness {
    t: Tracker,
    events: Vec<Event>,
}

impl Harness {
    fn new() -> Self {
        Harness {
            t: Tracker::new(TrackerConfig::default()),
            events: Vec::new(),
        }
    }
    fn run_until(&mut self, at: Timestamp) {
        self.t.handle_timeout(at);
        self.drain();
    }
    fn drain(&mut self) {
        while let Some(e) = self.t.poll_event() {
            self.events.push(e);
        }
    }
    /// A HEP3 message captured at `at_ms`, arriving `LATENCY_US` later.
    fn hep(&mut self, at_ms: i64, src: SocketAddr, dst: SocketAddr, pt: ProtoType, data: &[u8]) {
        let m = build_hep3(src, dst, ms(at_ms), pt, data).unwrap();
        let now = ms(at_ms).saturating_add_micros(LATENCY_US);
        self.t.handle_hep(now, &m);
        self.drain();
    }
    fn sip(&mut self, at_ms: i64, src: SocketAddr, dst: SocketAddr, msg: &str) {
        self.hep(at_ms, src, dst, ProtoType::Sip, msg.as_bytes());
    }
    fn frame(&mut self, at: Timestamp, frame: &[u8]) {
        self.t.handle_frame(at, LinkType::Ethernet, frame);
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
    fn media(&self, leg: Side) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Media { leg: l, at, .. } if *l == leg => Some(at.samples(8000)),
                _ => None,
            })
            .collect()
    }
}

/// INVITE/180/200 over HEP; the answer is at 1000 ms.
fn hep_answered(h: &mut Harness, cid: &str) {
    h.sip(0, caller(), pbx(), &invite(cid));
    h.sip(50, pbx(), caller(), &response(180, cid, 1, "INVITE", ""));
    h.sip(
        1000,
        pbx(),
        caller(),
        &response(200, cid, 1, "INVITE", &sdp("10.0.0.1", 6000)),
    );
    h.sip(1010, caller(), pbx(), &request("ACK", cid, 1));
}

#[test]
fn sip_from_hep_and_rtp_from_the_wire_make_one_call() {
    let mut h = Harness::new();
    hep_answered(&mut h, "hep-1");
    for i in 0..25u16 {
        let at = 1020 + i64::from(i) * 20;
        h.frame(
            ms(at),
            &udp_frame(
                addr("10.0.0.10:4000"),
                addr("10.0.0.1:6000"),
                &rtp(100 + i, 1000 + u32::from(i) * 160, 7, &[0xFF; 160]),
            ),
        );
        h.frame(
            ms(at + 1),
            &udp_frame(
                addr("10.0.0.1:6000"),
                addr("10.0.0.10:4000"),
                &rtp(500 + i, 9000 + u32::from(i) * 160, 9, &[0x7F; 160]),
            ),
        );
    }
    h.sip(3000, caller(), pbx(), &request("BYE", "hep-1", 2));
    h.sip(3010, pbx(), caller(), &response(200, "hep-1", 2, "BYE", ""));
    h.run_until(ms(20_000));
    h.t.close_all(ms(20_000), EndReason::CaptureEnd);
    h.drain();

    let ended = h.ended();
    assert_eq!(ended.len(), 1, "{ended:#?}");
    let c = ended[0];
    assert_eq!(c.call_id, "hep-1");
    assert_eq!(c.outcome, Outcome::Answered);
    assert_eq!(c.end_reason, EndReason::CallerBye);
    // Times are the agent's capture times, not when HEP reached us.
    assert_eq!(c.started_at, ms(0));
    assert_eq!(c.answered_at, Some(ms(1000)));
    assert_eq!(c.ended_at, ms(3000));
    assert_eq!(c.codec, Some("PCMU"));
    let caller_media = h.media(Side::Caller);
    let callee_media = h.media(Side::Callee);
    assert_eq!(caller_media.len(), 25);
    assert_eq!(callee_media.len(), 25);
    assert_eq!(caller_media[0], 160, "20 ms after the answer");
    let s = h.t.stats();
    assert_eq!(s.hep_messages, 6);
    assert_eq!(s.hep_sip, 6);
    assert_eq!(s.hep_clock_skew, 0);
    assert_eq!(s.rtp_packets, 50);
    assert_eq!(s.dropped_total(), 0, "{:?}", s.dropped);
}

#[test]
fn rtp_carried_in_hep_is_media_and_rtcp_is_counted() {
    let mut h = Harness::new();
    hep_answered(&mut h, "hep-rtp");
    for i in 0..10u16 {
        let at = 1020 + i64::from(i) * 20;
        h.hep(
            at,
            addr("10.0.0.10:4000"),
            addr("10.0.0.1:6000"),
            ProtoType::Rtp,
            &rtp(i, u32::from(i) * 160, 7, &[0xFF; 160]),
        );
    }
    h.hep(
        1300,
        addr("10.0.0.10:4001"),
        addr("10.0.0.1:6001"),
        ProtoType::Rtcp,
        br#"{"type":200}"#,
    );
    h.sip(2000, caller(), pbx(), &request("BYE", "hep-rtp", 2));
    h.run_until(ms(60_000));
    let c = h.ended();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].end_reason, EndReason::CallerBye);
    assert_eq!(h.media(Side::Caller).len(), 10);
    let s = h.t.stats();
    assert_eq!(s.hep_rtp, 10);
    assert_eq!(s.hep_other, 1);
    assert_eq!(s.rtp_packets, 10);
}

#[test]
fn far_clock_falls_back_to_arrival_time() {
    let mut h = Harness::new();
    let now = ms(500);
    // An agent whose clock is an hour ahead.
    let m = build_hep3(
        caller(),
        pbx(),
        ms(3_600_000),
        ProtoType::Sip,
        invite("skew").as_bytes(),
    )
    .unwrap();
    h.t.handle_hep(now, &m);
    h.drain();
    assert_eq!(h.t.stats().hep_clock_skew, 1);
    match h.events.first() {
        Some(Event::CallStarted { at, .. }) => assert_eq!(*at, now),
        other => panic!("expected CallStarted, got {other:?}"),
    }
    // No timer was pushed an hour out by the wrong clock: no response ends it
    // 32 s after arrival.
    h.run_until(ms(40_000));
    let c = h.ended();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].end_reason, EndReason::NoResponse);
    assert_eq!(c[0].started_at, now);
}

#[test]
fn compressed_sip_over_hep() {
    use std::io::Write as _;
    let mut h = Harness::new();
    let sip = invite("zip");
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(sip.as_bytes()).unwrap();
    let z = e.finish().unwrap();
    let plain = build_hep3(caller(), pbx(), ms(0), ProtoType::Sip, b"x").unwrap();
    let repr =
        HepRepr::parse(&pbxbridge::wire::hep::HepPacket::new_checked(&plain[..]).unwrap()).unwrap();
    let mut m = Vec::new();
    HepRepr {
        payload: HepPayload::Compressed(&z),
        ..repr
    }
    .emit_hep3(&mut m)
    .unwrap();
    h.t.handle_hep(ms(10), &m);
    h.drain();
    assert!(
        matches!(h.events.first(), Some(Event::CallStarted { call_id, at, .. }) if &**call_id == "zip" && *at == ms(0))
    );
}

#[test]
fn hep_inside_a_capture_goes_the_same_way() {
    let mut h = Harness::new();
    let m = build_hep3(
        caller(),
        pbx(),
        ms(-5),
        ProtoType::Sip,
        invite("pcap-hep").as_bytes(),
    )
    .unwrap();
    // Agent 192.0.2.1 sends HEP to the collector at 192.0.2.9:9060.
    h.frame(
        ms(0),
        &udp_frame(addr("192.0.2.1:40000"), addr("192.0.2.9:9060"), &m),
    );
    // Not HEP, though on the HEP port: left to the usual UDP path.
    h.frame(
        ms(1),
        &udp_frame(
            addr("192.0.2.1:40000"),
            addr("192.0.2.9:9060"),
            b"hello there",
        ),
    );
    let s = h.t.stats();
    assert_eq!(s.hep_messages, 1);
    assert_eq!(s.hep_sip, 1);
    assert_eq!(s.other_packets, 1);
    match h.events.first() {
        Some(Event::CallStarted { call_id, at, .. }) => {
            assert_eq!(&**call_id, "pcap-hep");
            assert_eq!(
                *at,
                ms(-5),
                "the HEP capture time, within the skew of the frame's"
            );
        }
        other => panic!("expected CallStarted, got {other:?}"),
    }
}

#[test]
fn bad_hep_is_counted_and_dropped() {
    let mut h = Harness::new();
    let good = build_hep3(caller(), pbx(), ms(0), ProtoType::Sip, b"x").unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "hep_bad_magic"),
        (good[..good.len() - 3].to_vec(), "hep_truncated"),
        (b"HEP3\x00\x02".to_vec(), "hep_bad_length"),
        (
            b"HEP3\x00\x0b\x00\x00\x00\x0f\x00\x02\x00".to_vec(),
            "hep_bad_chunk",
        ),
    ];
    for (m, _) in &cases {
        h.t.handle_hep(ms(0), m);
    }
    h.drain();
    assert!(h.events.is_empty());
    let s = h.t.stats();
    assert_eq!(s.hep_messages, cases.len() as u64);
    for (_, reason) in &cases {
        assert_eq!(s.dropped.get(reason), Some(&1), "{reason}: {:?}", s.dropped);
    }
}

// ---- the listener ----

fn recv_hep(rx: &InputReceiver) -> Vec<u8> {
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Some(Input::Hep { data, ts })) => {
            assert!(ts.micros() > T0, "stamped with the wall clock");
            data
        }
        other => panic!("expected a HEP input, got {other:?}"),
    }
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sample(cid: &str) -> Vec<u8> {
    build_hep3(
        caller(),
        pbx(),
        ms(0),
        ProtoType::Sip,
        invite(cid).as_bytes(),
    )
    .unwrap()
}

#[test]
fn listener_receives_udp_and_tcp() {
    let (tx, rx) = input_queue(64);
    let stop = Arc::new(AtomicBool::new(false));
    let l = HepListener::spawn(addr("127.0.0.1:0"), 4, tx, stop.clone()).unwrap();
    assert_ne!(l.udp_addr().port(), 0);
    assert_ne!(l.tcp_addr().port(), 0);
    let stats = l.stats();

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = sample("udp-1");
    udp.send_to(&a, l.udp_addr()).unwrap();
    assert_eq!(recv_hep(&rx), a);

    // Two messages over TCP, split at awkward places.
    let (b, c) = (sample("tcp-1"), sample("tcp-2"));
    let mut stream = b.clone();
    stream.extend_from_slice(&c);
    let mut s = TcpStream::connect(l.tcp_addr()).unwrap();
    for piece in [
        &stream[..3],
        &stream[3..b.len() + 2],
        &stream[b.len() + 2..],
    ] {
        s.write_all(piece).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(recv_hep(&rx), b);
    assert_eq!(recv_hep(&rx), c);

    // What arrived is what the tracker understands.
    let mut t = Tracker::new(TrackerConfig::default());
    t.handle_hep(ms(0), &a);
    assert_eq!(t.stats().hep_sip, 1);

    assert_eq!(stats.datagrams.load(Ordering::Relaxed), 1);
    assert_eq!(stats.tcp_messages.load(Ordering::Relaxed), 2);
    assert_eq!(stats.tcp_connections.load(Ordering::Relaxed), 1);
    assert_eq!(stats.bad_frames.load(Ordering::Relaxed), 0);

    stop.store(true, Ordering::Relaxed);
    let start = Instant::now();
    l.join();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "threads see the stop flag"
    );
}

#[test]
fn listener_counts_bad_frames_and_refused_connections() {
    let (tx, rx) = input_queue(64);
    let stop = Arc::new(AtomicBool::new(false));
    let l = HepListener::spawn(addr("127.0.0.1:0"), 1, tx, stop).unwrap();
    let stats = l.stats();

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"not hep at all", l.udp_addr()).unwrap();
    wait_for("the UDP bad frame", || {
        stats.bad_frames.load(Ordering::Relaxed) == 1
    });
    assert_eq!(stats.datagrams.load(Ordering::Relaxed), 1);

    // One good message, then garbage: the connection is closed.
    let mut s = TcpStream::connect(l.tcp_addr()).unwrap();
    s.write_all(&sample("ok")).unwrap();
    s.write_all(b"XXXXXXXXXXXX").unwrap();
    assert_eq!(recv_hep(&rx), sample("ok"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed by the listener");
    wait_for("the TCP bad frame", || {
        stats.bad_frames.load(Ordering::Relaxed) == 2
    });

    // With max_connections = 1, a second concurrent connection is refused.
    let _first = TcpStream::connect(l.tcp_addr()).unwrap();
    wait_for("the first connection", || {
        stats.tcp_connections.load(Ordering::Relaxed) == 2
    });
    let mut second = TcpStream::connect(l.tcp_addr()).unwrap();
    wait_for("the refusal", || {
        stats.tcp_refused.load(Ordering::Relaxed) == 1
    });
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(second.read(&mut buf).unwrap_or(0), 0);
    assert_eq!(stats.tcp_connections.load(Ordering::Relaxed), 2);
    assert!(rx.try_recv().is_none(), "nothing bad was forwarded");

    // Dropping the listener stops its threads even though the shared flag is unset.
    let start = Instant::now();
    drop(l);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn tcp_segment_with_two_sip_messages() {
    let mut h = Harness::new();
    let mut both = invite("tcp-two").into_bytes();
    both.extend_from_slice(response(180, "tcp-two", 1, "INVITE", "").as_bytes());
    let plain = build_hep3(caller(), pbx(), ms(0), ProtoType::Sip, &both).unwrap();
    let repr =
        HepRepr::parse(&pbxbridge::wire::hep::HepPacket::new_checked(&plain[..]).unwrap()).unwrap();
    let mut m = Vec::new();
    HepRepr {
        transport: pbxbridge::wire::hep::HepTransport::Tcp,
        ..repr
    }
    .emit_hep3(&mut m)
    .unwrap();
    h.t.handle_hep(ms(10), &m);
    h.drain();
    assert!(matches!(h.events.first(), Some(Event::CallStarted { .. })));
    assert!(
        matches!(h.events.get(1), Some(Event::CallRinging { at, .. }) if *at == ms(0)),
        "{:?}",
        h.events
    );
    assert_eq!(h.t.stats().sip_messages, 2);
}

#[test]
fn every_single_byte_corruption_is_survived() {
    let mut t = Tracker::new(TrackerConfig::default());
    let good = sample("mutant");
    let mut n = 0u64;
    for i in 0..good.len() {
        for v in [0u8, 1, 2, 6, 10, 15, 16, 0x7f, 0xff] {
            let mut m = good.clone();
            m[i] = v;
            t.handle_hep(ms(0), &m);
            n += 1;
        }
    }
    while t.poll_event().is_some() {}
    let s = t.stats();
    assert_eq!(s.hep_messages, n);
    // Each message was used or dropped with a reason; none vanished.
    assert_eq!(
        s.hep_sip
            + s.hep_rtp
            + s.hep_other
            + s.dropped
                .iter()
                .filter(|(k, _)| k.starts_with("hep_"))
                .map(|(_, v)| v)
                .sum::<u64>(),
        n,
        "{:?}",
        s.dropped
    );
}
