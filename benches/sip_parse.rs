//! SIP parser throughput: the tracker parses every SIP datagram and sniffs every
//! unknown UDP payload, so both must stay cheap.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pbxbridge::sip;

const INVITE: &[u8] = b"INVITE sip:+4930123456@pbx.example.com;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:+4930123456@pbx.example.com;user=phone>\r\n\
From: \"Alice Example\" <sip:201@pbx.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:201@10.0.0.5:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE, PRACK\r\n\
Supported: replaces, timer, 100rel\r\n\
User-Agent: Yealink SIP-T46S 66.86.0.15\r\n\
P-Asserted-Identity: \"Alice Example\" <sip:201@pbx.example.com>\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 252\r\n\
\r\n\
v=0\r\n\
o=- 20518 0 IN IP4 10.0.0.5\r\n\
s=SDP data\r\n\
c=IN IP4 10.0.0.5\r\n\
t=0 0\r\n\
m=audio 11796 RTP/AVP 8 0 9 18 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n";

const OK_200: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776asdhds;rport=5060;received=10.0.0.5\r\n\
To: <sip:+4930123456@pbx.example.com;user=phone>;tag=as6151ad25\r\n\
From: \"Alice Example\" <sip:201@pbx.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Server: Asterisk PBX 18.10.0\r\n\
Contact: <sip:+4930123456@10.0.0.1:5060>\r\n\
Content-Length: 0\r\n\
\r\n";

const COMPACT: &[u8] = b"BYE sip:201@10.0.0.5:5060 SIP/2.0\n\
v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK7a1b2c3d\n\
f: <sip:+4930123456@pbx.example.com>;tag=as6151ad25\n\
t: \"Alice Example\" <sip:201@pbx.example.com>;tag=1928301774\n\
i: a84b4c76e66710@pc33.example.com\n\
CSeq: 102 BYE\n\
o: refer\n\
l: 0\n\
\n";

const RTP: &[u8] = &[
    0x80, 0x08, 0x1c, 0x2d, 0x00, 0x01, 0xe2, 0x40, 0xde, 0xad, 0xbe, 0xef, 0xd5, 0xd5, 0xd5, 0xd5,
    0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5,
];

/// What the tracker reads from each message.
fn read_all(buf: &[u8]) -> usize {
    let m = sip::parse(buf).expect("bench message parses");
    let mut n = m.len();
    n += m.call_id().map_or(0, <[u8]>::len);
    n += m.from().and_then(|f| f.tag).map_or(0, <[u8]>::len);
    n += m.to().and_then(|t| t.tag).map_or(0, <[u8]>::len);
    n += m.cseq().map_or(0, |c| c.seq as usize);
    n += m.top_via_branch().map_or(0, <[u8]>::len);
    n += m.sdp().map_or(0, <[u8]>::len);
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip_parse");
    for (name, msg) in [
        ("invite_sdp", INVITE),
        ("ok_200", OK_200),
        ("bye_compact", COMPACT),
    ] {
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{name}/parse"), |b| {
            b.iter(|| sip::parse(black_box(msg)).map(|m| m.len()))
        });
        g.bench_function(format!("{name}/parse_and_read"), |b| {
            b.iter(|| read_all(black_box(msg)))
        });
    }
    g.bench_function("invite_sdp/sdp_parse", |b| {
        let body = sip::parse(INVITE)
            .ok()
            .and_then(|m| m.sdp())
            .unwrap_or_default();
        b.iter(|| sip::sdp::parse(black_box(body)).map(|s| s.media.len()))
    });
    g.bench_function("looks_like_sip/rtp", |b| {
        b.iter(|| sip::looks_like_sip(black_box(RTP)))
    });
    g.bench_function("looks_like_sip/invite", |b| {
        b.iter(|| sip::looks_like_sip(black_box(INVITE)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
