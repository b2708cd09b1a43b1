//! SDES-SRTP through the tracker: each side's `a=crypto` key decrypts what that
//! side sends (RFC 4568 §6.1), in both directions; a wrong key is an auth
//! failure, counted and dropped, and leaves the call `encrypted`.
//!
//! The SRTP packets were made by pcap-fixtures/srtp-pcap.py `--vectors`, an
//! implementation of RFC 3711 independent of libsrtp. The full-call audio
//! check is the `srtp_*` captures in the golden and WAV tests.

use std::net::Ipv4Addr;

use pbxbridge::call::{CallRecord, Event, Side, Tracker, TrackerConfig};
use pbxbridge::rtp::ulaw_to_linear;
use pbxbridge::time::Timestamp;
use pbxbridge::wire::LinkType;

/// AES_CM_128_HMAC_SHA1_80: (inline key, [(plain, srtp)]), seq 65535 then 0.
const KEY_80: &str = "VvGP0MpUCNbTNHz0WCuOWd0pu0P1iHObne5G7d0Y";
const PKTS_80: [(&str, &str); 2] = [
    ("8000ffff000104d1deadbeef0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728", "8000ffff000104d1deadbeeff8abc8fd44771a54cf13ded03a5b504726006537c1b309f7aeecd3cd23d2ce165b91b1f7740112acb355568ffbc21a617142"),
    ("80000000000004d2deadbeef000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627", "80000000000004d2deadbeef93298186fe5d51005567a1ed6ae253026f062b7ec95975e17ecea2f39449a9524e9d0ca9c43e7fb7bd1bc4ce8116084aa56f"),
];
/// AES_CM_128_HMAC_SHA1_32.
const KEY_32: &str = "qDtoC/u5ZOQF5r+JIgPrcR0nMiXyhnNyw/fgsTn/";
const PKTS_32: [(&str, &str); 2] = [
    ("8000ffff000104d1deadbeef0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728", "8000ffff000104d1deadbeef0f336d0e841ea660e0ab3e8f37a9625d65f178ea77353dc0fa231bac16745220ac8e6f2e699362f15c1a425e"),
    ("80000000000004d2deadbeef000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627", "80000000000004d2deadbeeff650331e037b1f44362dda90b92bdb887701ba9b87da3109b1335be9a354d51185389a55e136aed59233cc95"),
];

const CALLER: ([u8; 4], u16) = ([10, 0, 0, 10], 5060);
const CALLEE: ([u8; 4], u16) = ([10, 0, 0, 20], 5060);
const T0: i64 = 1_700_000_000_000_000;

fn udp(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
        .ipv4(src.0, dst.0, 64)
        .udp(src.1, dst.1);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

fn sdp(ip: Ipv4Addr, port: u16, crypto: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n{crypto}a=sendrecv\r\n"
    )
}

fn sip(start: &str, cid: &str, cseq: &str, to_tag: &str, body: &str) -> String {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{start}\r\nVia: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK{cid}{cseq}\r\nFrom: <sip:2001@10.0.0.10>;tag=a\r\nTo: <sip:2002@10.0.0.20>{to_tag}\r\nCall-ID: {cid}\r\nCSeq: {cseq}\r\nContact: <sip:x@10.0.0.10>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

struct Run {
    t: Tracker,
    events: Vec<Event>,
}

impl Run {
    fn at(&mut self, ms: i64, frame: &[u8]) {
        self.t
            .handle_frame(Timestamp(T0 + ms * 1000), LinkType::Ethernet, frame);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(e) = self.t.poll_event() {
            self.events.push(e);
        }
    }

    fn record(&self) -> &CallRecord {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::CallEnded { record, .. } => Some(&**record),
                _ => None,
            })
            .expect("the call ended")
    }

    fn media(&self, leg: Side) -> Vec<Vec<i16>> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Media {
                    leg: l,
                    format,
                    payload,
                    ..
                } if *l == leg => {
                    // G.711 here: decoded as the recorder would.
                    let mut out = Vec::new();
                    assert!(pbxbridge::rtp::decode_g711(format.codec, payload, &mut out));
                    Some(out)
                }
                _ => None,
            })
            .collect()
    }
}

/// An answered SRTP call: the caller offers `offer`, the callee answers
/// `answer`; then the caller sends `caller_sends` and the callee `callee_sends`.
fn call(offer: &str, answer: &str, caller_sends: &[&str], callee_sends: &[&str]) -> Run {
    let mut r = Run {
        t: Tracker::new(TrackerConfig::default()),
        events: Vec::new(),
    };
    let cid = "srtp-it";
    let a = sdp(Ipv4Addr::new(10, 0, 0, 10), 4000, offer);
    let b = sdp(Ipv4Addr::new(10, 0, 0, 20), 6000, answer);
    let invite = sip("INVITE sip:2002@10.0.0.20 SIP/2.0", cid, "1 INVITE", "", &a);
    r.at(0, &udp(CALLER, CALLEE, invite.as_bytes()));
    let ok = sip("SIP/2.0 200 OK", cid, "1 INVITE", ";tag=b", &b);
    r.at(500, &udp(CALLEE, CALLER, ok.as_bytes()));
    let ack = sip("ACK sip:2002@10.0.0.20 SIP/2.0", cid, "1 ACK", ";tag=b", "");
    r.at(510, &udp(CALLER, CALLEE, ack.as_bytes()));
    for (i, p) in caller_sends.iter().enumerate() {
        let pkt = hex::decode(p).unwrap();
        r.at(
            520 + 20 * i as i64,
            &udp(([10, 0, 0, 10], 4000), ([10, 0, 0, 20], 6000), &pkt),
        );
    }
    for (i, p) in callee_sends.iter().enumerate() {
        let pkt = hex::decode(p).unwrap();
        r.at(
            530 + 20 * i as i64,
            &udp(([10, 0, 0, 20], 6000), ([10, 0, 0, 10], 4000), &pkt),
        );
    }
    let bye = sip("BYE sip:2002@10.0.0.20 SIP/2.0", cid, "2 BYE", ";tag=b", "");
    r.at(2000, &udp(CALLER, CALLEE, bye.as_bytes()));
    r.t.handle_timeout(Timestamp(T0 + 60_000_000));
    while let Some(e) = r.t.poll_event() {
        r.events.push(e);
    }
    r
}

fn ulaw(plain_hex: &str) -> Vec<i16> {
    hex::decode(plain_hex).unwrap()[12..]
        .iter()
        .map(|&b| ulaw_to_linear(b))
        .collect()
}

fn offer_80() -> String {
    format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}\r\n")
}

fn answer_32() -> String {
    format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}\r\n")
}

#[test]
fn each_side_decrypts_with_the_key_in_its_own_sdp() {
    let r = call(
        &offer_80(),
        &answer_32(),
        &PKTS_80.map(|p| p.1),
        &PKTS_32.map(|p| p.1),
    );
    let stats = r.t.stats();
    assert!(
        stats.dropped.keys().all(|k| !k.starts_with("srtp")),
        "{:?}",
        stats.dropped
    );
    let rec = r.record();
    assert!(!rec.encrypted_media);
    assert!(rec.audio_seen);
    assert_eq!((rec.caller_rtp.packets, rec.callee_rtp.packets), (2, 2));
    for (leg, pkts) in [(Side::Caller, PKTS_80), (Side::Callee, PKTS_32)] {
        let plain: Vec<Vec<i16>> = pkts.iter().map(|p| ulaw(p.0)).collect();
        let got = r.media(leg);
        assert!(!got.is_empty(), "{leg:?}: no audio");
        for s in &got {
            assert!(plain.contains(s), "{leg:?}: audio that no packet carried");
        }
    }
}

#[test]
fn keys_used_the_wrong_way_round_fail_authentication() {
    // Each side sends with the other side's key: RFC 4568 says no.
    let r = call(
        &offer_80(),
        &answer_32(),
        &PKTS_32.map(|p| p.1),
        &PKTS_80.map(|p| p.1),
    );
    assert_eq!(r.t.stats().dropped.get("srtp_auth_failed"), Some(&4));
    let rec = r.record();
    assert!(
        rec.encrypted_media,
        "undecryptable SRTP leaves the call encrypted"
    );
    assert!(!rec.audio_seen);
    assert!(r.media(Side::Caller).is_empty() && r.media(Side::Callee).is_empty());
}

#[test]
fn the_offerer_uses_the_tag_the_answer_accepted() {
    // The offer lists a decoy first; the answer accepts tag 2, whose key the
    // caller then sends with.
    let offer = format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}\r\n"
    );
    let answer =
        "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:HHdwh+aqzNJ5D9amdBDVjp7dJHjBrZZlLlpqajYl\r\n";
    let r = call(&offer, answer, &PKTS_80.map(|p| p.1), &[]);
    assert!(
        r.t.stats().dropped.keys().all(|k| !k.starts_with("srtp")),
        "{:?}",
        r.t.stats().dropped
    );
    assert_eq!(r.record().caller_rtp.packets, 2);
    assert!(!r.media(Side::Caller).is_empty());
}

#[test]
fn savp_without_keys_stays_encrypted_and_is_not_decrypted() {
    let r = call("", "", &PKTS_80.map(|p| p.1), &[]);
    let rec = r.record();
    assert!(rec.encrypted_media);
    assert!(r.media(Side::Caller).is_empty());
    assert_eq!(
        rec.caller_rtp.packets, 2,
        "headers are clear: still counted"
    );
}

#[test]
fn a_reinvite_with_new_keys_replaces_the_session() {
    let mut r = Run {
        t: Tracker::new(TrackerConfig::default()),
        events: Vec::new(),
    };
    let cid = "srtp-rekey";
    let (a_ip, b_ip) = (Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 20));
    let (to_b, to_a) = (([10, 0, 0, 10], 4000), ([10, 0, 0, 20], 6000));
    let msg = |start: &str, cseq: &str, tag: &str, body: &str| {
        udp(CALLER, CALLEE, sip(start, cid, cseq, tag, body).as_bytes())
    };
    let reply = |cseq: &str, body: &str| {
        udp(
            CALLEE,
            CALLER,
            sip("SIP/2.0 200 OK", cid, cseq, ";tag=b", body).as_bytes(),
        )
    };
    let invite = "INVITE sip:2002@10.0.0.20 SIP/2.0";
    r.at(
        0,
        &msg(invite, "1 INVITE", "", &sdp(a_ip, 4000, &offer_80())),
    );
    r.at(500, &reply("1 INVITE", &sdp(b_ip, 6000, &answer_32())));
    for (i, p) in PKTS_80.iter().enumerate() {
        r.at(
            520 + 20 * i as i64,
            &udp(to_b, to_a, &hex::decode(p.1).unwrap()),
        );
    }
    // The caller re-keys: from now on it sends with the _32 key.
    let rekey = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}\r\n");
    r.at(
        1000,
        &msg(invite, "2 INVITE", ";tag=b", &sdp(a_ip, 4000, &rekey)),
    );
    r.at(1050, &reply("2 INVITE", &sdp(b_ip, 6000, &answer_32())));
    for (i, p) in PKTS_32.iter().enumerate() {
        r.at(
            1100 + 20 * i as i64,
            &udp(to_b, to_a, &hex::decode(p.1).unwrap()),
        );
    }
    // A packet under the old key is refused (libsrtp checks the replay window,
    // where its index is already taken, before the tag).
    r.at(1200, &udp(to_b, to_a, &hex::decode(PKTS_80[0].1).unwrap()));
    r.at(
        2000,
        &msg("BYE sip:2002@10.0.0.20 SIP/2.0", "3 BYE", ";tag=b", ""),
    );
    r.t.handle_timeout(Timestamp(T0 + 60_000_000));
    r.drain();
    let stats = r.t.stats();
    let srtp_drops: u64 = stats
        .dropped
        .iter()
        .filter(|(k, _)| k.starts_with("srtp"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(srtp_drops, 1, "{stats:?}");
    assert_eq!(r.record().caller_rtp.packets, 4, "two per key");
    assert!(!r.record().encrypted_media);
}
