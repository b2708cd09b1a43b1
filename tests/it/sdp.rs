//! Lenient SDP parser checks.

use pbxbridge::sip::sdp::*;
use std::net::IpAddr;
use std::net::Ipv4Addr;

const OFFER: &[u8] = b"v=0\r\n\
o=- 1 1 IN IP4 10.0.0.1\r\n\
s=-\r\n\
c=IN IP4 10.0.0.1\r\n\
t=0 0\r\n\
a=sendrecv\r\n\
m=audio 4000 RTP/AVP 8 0 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
m=video 0 RTP/AVP 96\r\n\
c=IN IP6 2001:db8::5\r\n\
a=rtpmap:96 H264/90000\r\n\
a=inactive\r\n";

#[test]
fn offer() {
    let sdp = parse(OFFER).unwrap();
    assert_eq!(sdp.connection, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    assert_eq!(sdp.media.len(), 2);
    let a = sdp.audio().unwrap();
    assert_eq!(a.port, 4000);
    assert_eq!(a.proto, "RTP/AVP");
    assert_eq!(a.formats, vec![8, 0, 101]);
    assert_eq!(a.rtpmap(8).unwrap().encoding, "PCMA");
    assert_eq!(a.rtpmap(0).unwrap().clock_rate, 8000);
    assert_eq!(a.rtpmap(101).unwrap().encoding, "telephone-event");
    assert_eq!(a.effective_connection(&sdp), sdp.connection);
    assert_eq!(a.effective_direction(&sdp), Direction::SendRecv);
    let v = &sdp.media[1];
    assert_eq!(v.kind, MediaKind::Video);
    assert_eq!(v.connection, Some("2001:db8::5".parse().unwrap()));
    assert_eq!(v.direction, Direction::Inactive);
    assert_eq!(v.effective_direction(&sdp), Direction::Inactive);
}

#[test]
fn hold_lf_only_and_missing_fields() {
    let sdp = parse(b"c=IN IP4 0.0.0.0\nm=audio 5004 RTP/AVP 0\na=sendonly\nx-junk\n\xff=\xfe\n")
        .unwrap();
    assert_eq!(sdp.connection, Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    let a = sdp.audio().unwrap();
    assert_eq!(a.direction, Direction::SendOnly);
    assert_eq!(a.rtpmap(0).unwrap().encoding, "PCMU");
}

#[test]
fn session_direction_inherited() {
    let sdp =
        parse(b"v=0\na=recvonly\nm=audio 1 RTP/AVP 0\nm=audio 2 RTP/AVP 0\na=sendrecv\n").unwrap();
    assert_eq!(sdp.direction, Direction::RecvOnly);
    assert_eq!(sdp.media[0].direction, Direction::RecvOnly);
    assert_eq!(sdp.media[1].direction, Direction::SendRecv);
}

#[test]
fn malformed_lines_skipped() {
    let sdp = parse(b"v=0\nm=audio notaport RTP/AVP x 300 0\na=rtpmap:zz PCMU/8000\na=rtpmap:97 opus\nc=IN IP4 not-an-ip\n")
        .unwrap();
    let m = &sdp.media[0];
    assert_eq!(m.port, 0);
    assert_eq!(m.formats, vec![0]);
    assert_eq!(m.rtpmaps.len(), 1);
    assert_eq!(m.connection, None);
    assert!(sdp.audio().is_none());
    assert_eq!(parse(b"garbage\r\nmore"), Err(SdpError::NotSdp));
    assert_eq!(parse(b""), Err(SdpError::NotSdp));
}

#[test]
fn caps() {
    let many: Vec<u8> = b"m=audio 1 RTP/AVP 0\n".repeat(MAX_MEDIA + 1);
    assert_eq!(parse(&many), Err(SdpError::TooManyMedia { max: MAX_MEDIA }));
    let mut maps = b"m=audio 1 RTP/AVP 0\n".to_vec();
    for i in 0..=MAX_RTPMAPS {
        maps.extend_from_slice(format!("a=rtpmap:{} X/8000\n", i % 128).as_bytes());
    }
    // Duplicate payload types are ignored, distinct ones are bounded by 128.
    assert!(parse(&maps).is_ok());
}
