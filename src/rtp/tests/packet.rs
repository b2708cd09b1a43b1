use super::*;

#[test]
fn parses_plain_header() {
    let p = build_packet(0, true, 0xBEEF, 0xDEADBEEF, 0x01020304, &[1, 2, 3]);
    let h = parse(&p).unwrap();
    assert_eq!(h.pt, PayloadType(0));
    assert!(h.marker);
    assert_eq!(h.seq, SeqNum(0xBEEF));
    assert_eq!(h.ts, 0xDEADBEEF);
    assert_eq!(h.ssrc, Ssrc(0x01020304));
    assert_eq!(h.payload, &[1, 2, 3]);
    assert!(looks_like_rtp(&p));
}

#[test]
fn skips_csrc_extension_and_padding() {
    let mut p = vec![0x80 | 0x20 | 0x10 | 2, 8];
    p.extend_from_slice(&[0, 1, 0, 0, 0, 160, 0, 0, 0, 7]);
    p.extend_from_slice(&[0xAA; 8]); // two CSRCs
    p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 9, 9, 9, 9]); // one-word extension
    p.extend_from_slice(&[5, 6, 7]);
    p.extend_from_slice(&[0, 0, 3]); // three bytes of padding
    let h = parse(&p).unwrap();
    assert_eq!(h.pt, PayloadType(8));
    assert_eq!(h.seq, SeqNum(1));
    assert_eq!(h.ts, 160);
    assert_eq!(h.ssrc, Ssrc(7));
    assert_eq!(h.payload, &[5, 6, 7]);
}

#[test]
fn rejects_rtcp_and_garbage() {
    let rr = [0x81, 201, 0, 1, 0, 0, 0, 1];
    assert_eq!(parse(&rr), Err(RtpError::Rtcp { packet_type: 201 }));
    assert!(!looks_like_rtp(&rr));
    let mut sr = build_packet(0, false, 1, 1, 1, &[0; 20]);
    sr[1] = 200;
    assert_eq!(parse(&sr).unwrap_err().reason(), "rtcp");
    assert!(!looks_like_rtp(&sr));
    assert_eq!(parse(&[0x80]), Err(RtpError::TooShort { len: 1 }));
    assert_eq!(parse(&[0x80, 0, 0]), Err(RtpError::TooShort { len: 3 }));
    let mut v1 = build_packet(0, false, 1, 1, 1, &[]);
    v1[0] = 0x40;
    assert_eq!(parse(&v1), Err(RtpError::BadVersion { version: 1 }));
    assert!(!looks_like_rtp(&v1));
    // Extension header promised but missing.
    let mut ext = build_packet(0, false, 1, 1, 1, &[]);
    ext[0] |= 0x10;
    assert_eq!(parse(&ext).unwrap_err().reason(), "rtp_headers_truncated");
    // Padding longer than the packet.
    let mut pad = build_packet(0, false, 1, 1, 1, &[1, 2]);
    pad[0] |= 0x20;
    pad.push(200);
    assert_eq!(parse(&pad), Err(RtpError::BadPadding { padding: 200 }));
}

#[test]
fn never_panics_on_short_or_random_input() {
    let mut x: u32 = 0x1234_5678;
    for len in 0..64usize {
        for _ in 0..200 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x >> 3) as u8
                })
                .collect();
            let _ = parse(&buf);
            let mut v2 = buf.clone();
            if let Some(b) = v2.first_mut() {
                *b = 0x80 | (*b & 0x3f);
            }
            let _ = parse(&v2);
            let _ = looks_like_rtp(&v2);
            // Even an unchecked view of garbage reads zeros, never panics.
            let v = RtpPacket::new_unchecked(&v2[..]);
            let _ = (v.payload(), v.sequence(), v.ssrc(), v.header_len());
        }
    }
}

#[test]
fn view_reads_the_header_once_checked() {
    let mut p = vec![0x80 | 0x20 | 0x10 | 1, 0x80 | 101];
    p.extend_from_slice(&[0xFF, 0xFE, 0, 0, 1, 0x40, 0, 0, 0, 9]);
    p.extend_from_slice(&[1, 2, 3, 4]); // one CSRC
    p.extend_from_slice(&[0xBE, 0xDE, 0, 0]); // empty extension
    p.extend_from_slice(&[7, 8]);
    p.extend_from_slice(&[0, 2]); // two bytes of padding
    let v = RtpPacket::new_checked(&p[..]).unwrap();
    assert_eq!(v.version(), 2);
    assert_eq!(v.csrc_count(), 1);
    assert!(v.has_extension() && v.has_padding() && v.marker());
    assert_eq!(v.payload_type(), PayloadType(101));
    assert_eq!(v.sequence(), SeqNum(0xFFFE));
    assert_eq!(v.timestamp(), 320);
    assert_eq!(v.ssrc(), Ssrc(9));
    assert_eq!(v.header_len(), 20);
    assert_eq!(v.padding_len(), 2);
    assert_eq!(v.payload(), &[7, 8]);
    let repr = RtpRepr::parse(&v);
    assert_eq!(repr.seq.wrapping_add(3), SeqNum(1));
    assert_eq!(SeqNum(1).wrapping_sub(repr.seq), 3);
    let mut out = Vec::new();
    repr.emit(&mut out);
    assert_eq!(parse(&out).unwrap(), repr);
}

#[test]
fn padding_needs_a_count_byte_after_the_headers() {
    let mut p = build_packet(0, false, 1, 1, 1, &[]);
    p[0] |= 0x20;
    assert_eq!(
        parse(&p),
        Err(RtpError::HeadersTruncated {
            header_len: 12,
            buffer_len: 11
        })
    );
    let mut z = build_packet(0, false, 1, 1, 1, &[5, 0]);
    z[0] |= 0x20;
    assert_eq!(parse(&z), Err(RtpError::BadPadding { padding: 0 }));
}
