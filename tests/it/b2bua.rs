//! A B2BUA bridging two dialogs (phone A ↔ PBX, PBX ↔ phone B) with one PBX
//! media address for both legs: each leg's recording must get both sides, each
//! with the right audio.

use pbxbridge::call::{CallRecord, Event, Side, Tracker, TrackerConfig};
use pbxbridge::rtp::ulaw_to_linear;
use pbxbridge::time::Timestamp;
use pbxbridge::wire::LinkType;

type Addr = ([u8; 4], u16);
const PHONE_A: [u8; 4] = [10, 0, 0, 10];
const PHONE_B: [u8; 4] = [10, 0, 0, 20];
const PBX: [u8; 4] = [10, 0, 0, 1];
/// The PBX's one RTP port, in both legs' SDP.
const PBX_RTP: Addr = (PBX, 10_000);
const A_RTP: Addr = (PHONE_A, 4000);
const B_RTP: Addr = (PHONE_B, 4002);
const T0: i64 = 1_700_000_000_000_000;

fn udp(src: Addr, dst: Addr, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
        .ipv4(src.0, dst.0, 64)
        .udp(src.1, dst.1);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

fn ip(a: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}

fn sdp((addr, port): Addr) -> String {
    let ip = ip(addr);
    format!("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")
}

/// A SIP message of dialog `cid` from `from` (caller URI user) to `to`.
fn sip(
    start: &str,
    cid: &str,
    cseq: &str,
    users: (&str, &str),
    to_tag: &str,
    body: &str,
) -> Vec<u8> {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{cid}{}\r\nFrom: <sip:{}@pbx>;tag=f{cid}\r\nTo: <sip:{}@pbx>{to_tag}\r\nCall-ID: {cid}\r\nCSeq: {cseq}\r\nContact: <sip:x@pbx>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        cseq.replace(' ', ""),
        users.0,
        users.1,
        body.len()
    )
    .into_bytes()
}

fn rtp(seq: u16, ts: u32, ssrc: u32, byte: u8) -> Vec<u8> {
    let mut p = vec![0x80, 0, (seq >> 8) as u8, seq as u8];
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[byte; 160]);
    p
}

struct Run {
    t: Tracker,
    events: Vec<Event>,
}

impl Run {
    fn at(&mut self, ms: i64, src: Addr, dst: Addr, payload: &[u8]) {
        let frame = udp(src, dst, payload);
        self.t
            .handle_frame(Timestamp(T0 + ms * 1000), LinkType::Ethernet, &frame);
        self.drain();
    }
    fn drain(&mut self) {
        while let Some(e) = self.t.poll_event() {
            self.events.push(e);
        }
    }
    /// Every sample placed for `leg` of the call `cid`.
    fn audio(&self, cid: &str, leg: Side) -> Vec<i16> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Media {
                    call_id,
                    leg: l,
                    format,
                    payload,
                    ..
                } if &**call_id == cid && *l == leg => Some(g711(format.codec, payload)),
                _ => None,
            })
            .flatten()
            .collect()
    }
    fn record(&self, cid: &str) -> &CallRecord {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::CallEnded { record, .. } if record.call_id == cid => Some(&**record),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{cid} ended"))
    }
}

/// Dialog `cid` from `caller` (SIP address, RTP address) to `callee`.
fn answer(
    r: &mut Run,
    at: i64,
    cid: &str,
    users: (&str, &str),
    caller: (Addr, Addr),
    callee: (Addr, Addr),
) {
    let invite = sip(
        "INVITE sip:x@pbx SIP/2.0",
        cid,
        "1 INVITE",
        users,
        "",
        &sdp(caller.1),
    );
    r.at(at, caller.0, callee.0, &invite);
    let ok = sip(
        "SIP/2.0 200 OK",
        cid,
        "1 INVITE",
        users,
        ";tag=t",
        &sdp(callee.1),
    );
    r.at(at + 100, callee.0, caller.0, &ok);
    let ack = sip("ACK sip:x@pbx SIP/2.0", cid, "1 ACK", users, ";tag=t", "");
    r.at(at + 110, caller.0, callee.0, &ack);
}

#[test]
fn both_legs_of_a_b2bua_sharing_one_media_address_record_both_sides() {
    let mut r = Run {
        t: Tracker::new(TrackerConfig::default()),
        events: Vec::new(),
    };
    let sip_a = (PHONE_A, 5060);
    let sip_b = (PHONE_B, 5060);
    let sip_pbx = (PBX, 5060);
    // Leg A: phone A calls the PBX; leg B: the PBX calls phone B, offering the
    // same media address it answered leg A with.
    answer(
        &mut r,
        0,
        "legA",
        ("2001", "2002"),
        (sip_a, A_RTP),
        (sip_pbx, PBX_RTP),
    );
    answer(
        &mut r,
        50,
        "legB",
        ("2001", "2002"),
        (sip_pbx, PBX_RTP),
        (sip_b, B_RTP),
    );

    // (from, to, ssrc, payload byte): A talks, the PBX relays it to B, B
    // talks, the PBX relays it to A (each relay with its own SSRC).
    let flows: [(Addr, Addr, u32, u8); 4] = [
        (A_RTP, PBX_RTP, 0xA, 0x11),
        (PBX_RTP, B_RTP, 0xB, 0x22),
        (B_RTP, PBX_RTP, 0xC, 0x33),
        (PBX_RTP, A_RTP, 0xD, 0x44),
    ];
    for i in 0..50u16 {
        for (k, &(src, dst, ssrc, byte)) in flows.iter().enumerate() {
            let pkt = rtp(100 + i, 8000 + u32::from(i) * 160, ssrc, byte);
            r.at(300 + i64::from(i) * 20 + k as i64, src, dst, &pkt);
        }
    }
    let bye_a = sip(
        "BYE sip:x@pbx SIP/2.0",
        "legA",
        "2 BYE",
        ("2001", "2002"),
        ";tag=t",
        "",
    );
    r.at(1400, sip_a, sip_pbx, &bye_a);
    let bye_b = sip(
        "BYE sip:x@pbx SIP/2.0",
        "legB",
        "2 BYE",
        ("2001", "2002"),
        ";tag=t",
        "",
    );
    r.at(1401, sip_pbx, sip_b, &bye_b);
    r.t.handle_timeout(Timestamp(T0 + 60_000_000));
    r.drain();

    let want = |byte: u8| ulaw_to_linear(byte);
    for (cid, leg, byte) in [
        ("legA", Side::Caller, 0x11),
        ("legA", Side::Callee, 0x44),
        ("legB", Side::Caller, 0x22),
        ("legB", Side::Callee, 0x33),
    ] {
        let got = r.audio(cid, leg);
        assert_eq!(
            got.len(),
            50 * 160,
            "{cid} {leg:?}: every packet placed once"
        );
        assert!(
            got.iter().all(|&s| s == want(byte)),
            "{cid} {leg:?}: audio of another flow"
        );
        let rec = r.record(cid);
        let q = match leg {
            Side::Caller => &rec.caller_rtp,
            Side::Callee => &rec.callee_rtp,
        };
        assert_eq!(q.packets, 50, "{cid} {leg:?}");
    }
    assert_eq!(r.t.stats().rtp_ignored_source, 0);
    assert_eq!(r.t.stats().rtp_unmatched, 0);
}

/// The captures carry G.711: decoded as the recorder would.
fn g711(codec: pbxbridge::rtp::Codec, payload: &[u8]) -> Vec<i16> {
    let mut out = Vec::new();
    assert!(pbxbridge::rtp::decode_g711(codec, payload, &mut out));
    out
}
