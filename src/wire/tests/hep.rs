use super::*;
use std::io::Write;

const SIP: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";

fn ch(vendor: u16, kind: u16, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&vendor.to_be_bytes());
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&((data.len() + 6) as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn msg(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut v = b"HEP3".to_vec();
    v.extend_from_slice(&((body.len() + 6) as u16).to_be_bytes());
    v.extend_from_slice(&body);
    v
}

/// Every generic chunk 1..=17, plus a vendor chunk and an unknown type.
fn full_v4(payload_chunk: Vec<u8>) -> Vec<u8> {
    msg(&[
        ch(0, 1, &[2]),
        ch(0, 2, &[17]),
        ch(0, 3, &[10, 0, 0, 1]),
        ch(0, 4, &[10, 0, 0, 2]),
        ch(0, 7, &5060u16.to_be_bytes()),
        ch(0, 8, &5080u16.to_be_bytes()),
        ch(0, 9, &1_700_000_000u32.to_be_bytes()),
        ch(0, 10, &123_456u32.to_be_bytes()),
        ch(0, 11, &[1]),
        ch(0, 12, &2001u32.to_be_bytes()),
        ch(0, 13, &30u16.to_be_bytes()),
        ch(0, 14, b"s3cret"),
        ch(0x0002, 99, b"kamailio vendor data"),
        ch(0, 0x26, b"tags"),
        ch(0, 17, b"corr-1"),
        payload_chunk,
    ])
}

fn parse(b: &[u8]) -> Result<HepRepr<'_>, HepError> {
    HepRepr::parse(&HepPacket::new_checked(b)?)
}

#[test]
fn v3_every_chunk_type() {
    let b = full_v4(ch(0, 15, SIP));
    let r = parse(&b).unwrap();
    assert_eq!(r.version, 3);
    assert_eq!(r.family, IpFamily::V4);
    assert_eq!(r.transport, HepTransport::Udp);
    assert_eq!(r.src, "10.0.0.1:5060".parse().unwrap());
    assert_eq!(r.dst, "10.0.0.2:5080".parse().unwrap());
    assert_eq!(
        r.timestamp,
        Some(Timestamp::from_micros(1_700_000_000_123_456))
    );
    assert_eq!(r.proto_type, ProtoType::Sip);
    assert_eq!(r.capture_id, Some(2001));
    assert_eq!(r.keepalive, Some(30));
    assert_eq!(r.auth_key, Some(AuthKey(b"s3cret")));
    assert_eq!(r.correlation_id, Some(&b"corr-1"[..]));
    assert_eq!(r.payload, HepPayload::Plain(SIP));
    let mut scratch = Vec::new();
    assert_eq!(r.payload(&mut scratch).unwrap(), SIP);
    // The key never reaches a log line.
    let dbg = format!("{r:?}");
    assert!(!dbg.contains("s3cret"), "{dbg}");
    assert!(dbg.contains("redacted"));
}

#[test]
fn v3_ipv6_tcp_rtp_and_trailing_bytes_ignored() {
    let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let mut b = msg(&[
        ch(0, 1, &[10]),
        ch(0, 2, &[6]),
        ch(0, 5, &src.octets()),
        ch(0, 6, &dst.octets()),
        ch(0, 7, &4000u16.to_be_bytes()),
        ch(0, 8, &6000u16.to_be_bytes()),
        ch(0, 11, &[4]),
        // A two-byte capture id, as early agents sent it.
        ch(0, 12, &7u16.to_be_bytes()),
        ch(0, 15, &[0x80, 0, 0, 1]),
    ]);
    b.extend_from_slice(b"junk after the message");
    let r = parse(&b).unwrap();
    assert_eq!(r.family, IpFamily::V6);
    assert_eq!(r.transport, HepTransport::Tcp);
    assert_eq!(r.src, SocketAddr::new(src.into(), 4000));
    assert_eq!(r.dst, SocketAddr::new(dst.into(), 6000));
    assert_eq!(r.proto_type, ProtoType::Rtp);
    assert_eq!(r.capture_id, Some(7));
    assert_eq!(r.timestamp, None);
    assert_eq!(r.payload, HepPayload::Plain(&[0x80, 0, 0, 1][..]));
}

fn v2(
    version: u8,
    family: u8,
    addrs: &[u8],
    time: Option<(u32, u32, u16)>,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = vec![version, 0, family, 17];
    v.extend_from_slice(&5060u16.to_be_bytes());
    v.extend_from_slice(&5061u16.to_be_bytes());
    v[1] = v.len() as u8;
    v.extend_from_slice(addrs);
    if let Some((s, us, id)) = time {
        v.extend_from_slice(&s.to_le_bytes());
        v.extend_from_slice(&us.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v.extend_from_slice(payload);
    v
}

#[test]
fn v2_ipv4_with_little_endian_time() {
    let b = v2(
        2,
        2,
        &[10, 0, 0, 1, 10, 0, 0, 2],
        Some((1_700_000_000, 5, 42)),
        SIP,
    );
    assert!(looks_like_hep(&b));
    let p = HepPacket::new_checked(&b[..]).unwrap();
    assert_eq!(p.version(), 2);
    assert_eq!(p.chunks().count(), 0);
    let r = HepRepr::parse(&p).unwrap();
    assert_eq!(r.version, 2);
    assert_eq!(r.src, "10.0.0.1:5060".parse().unwrap());
    assert_eq!(r.dst, "10.0.0.2:5061".parse().unwrap());
    assert_eq!(
        r.timestamp,
        Some(Timestamp::from_micros(1_700_000_000_000_005))
    );
    assert_eq!(r.capture_id, Some(42));
    assert_eq!(r.proto_type, ProtoType::Sip);
    assert_eq!(r.payload, HepPayload::Plain(SIP));
}

#[test]
fn v2_ipv6_and_v1() {
    let mut addrs = Ipv6Addr::LOCALHOST.octets().to_vec();
    addrs.extend_from_slice(&"fe80::2".parse::<Ipv6Addr>().unwrap().octets());
    let b = v2(2, 10, &addrs, Some((1, 0, 0)), SIP);
    let r = parse(&b).unwrap();
    assert_eq!(r.family, IpFamily::V6);
    assert_eq!(r.src, "[::1]:5060".parse().unwrap());
    assert_eq!(r.dst, "[fe80::2]:5061".parse().unwrap());

    let b = v2(1, 2, &[1, 2, 3, 4, 5, 6, 7, 8], None, SIP);
    let r = parse(&b).unwrap();
    assert_eq!(r.version, 1);
    assert_eq!(r.timestamp, None);
    assert_eq!(r.capture_id, None);
    assert_eq!(r.dst, "5.6.7.8:5061".parse().unwrap());
    assert_eq!(r.payload, HepPayload::Plain(SIP));
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn compressed_payload_zlib_gzip_and_raw_deflate() {
    for z in [zlib(SIP), gzip(SIP), deflate(SIP)] {
        let b = full_v4(ch(0, 16, &z));
        let r = parse(&b).unwrap();
        assert_eq!(r.payload, HepPayload::Compressed(&z[..]));
        let mut scratch = vec![1, 2, 3];
        assert_eq!(r.payload(&mut scratch).unwrap(), SIP);
    }
}

#[test]
fn decompression_is_capped_and_garbage_refused() {
    let big = vec![b'a'; MAX_DECOMPRESSED + 1];
    let z = zlib(&big);
    assert!(z.len() < 1000, "a bomb is small");
    let b = full_v4(ch(0, 16, &z));
    let r = parse(&b).unwrap();
    let mut scratch = Vec::new();
    let e = r.payload(&mut scratch).unwrap_err();
    assert_eq!(
        e,
        HepError::TooLarge {
            cap: MAX_DECOMPRESSED
        }
    );
    assert_eq!(e.reason(), "hep_too_large");
    assert!(scratch.is_empty());
    // Exactly the cap is fine.
    let mut out = Vec::new();
    decompress(&zlib(&big[1..]), MAX_DECOMPRESSED, &mut out).unwrap();
    assert_eq!(out.len(), MAX_DECOMPRESSED);

    // A valid zlib header with a broken stream behind it.
    let mut bad = zlib(SIP);
    bad.truncate(6);
    bad.extend_from_slice(&[0xff; 8]);
    let e = decompress(&bad, 1024, &mut out).unwrap_err();
    assert_eq!(e.reason(), "hep_decompress");
    let e = decompress(&[0x1f, 0x8b, 8, 0, 0], 1024, &mut out).unwrap_err();
    assert_eq!(e, HepError::Decompress);
}

#[test]
fn emit_round_trips_and_build_hep3_is_parseable() {
    let src: SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
    let dst: SocketAddr = "[2001:db8::2]:5062".parse().unwrap();
    let ts = Timestamp::from_micros(1_700_000_001_999_999);
    let b = build_hep3(src, dst, ts, ProtoType::Sip, SIP).unwrap();
    let r = parse(&b).unwrap();
    assert_eq!((r.src, r.dst, r.timestamp), (src, dst, Some(ts)));
    assert_eq!(r.payload, HepPayload::Plain(SIP));
    assert_eq!(HepPacket::new_checked(&b[..]).unwrap().total_len(), b.len());

    let z = gzip(SIP);
    let repr = HepRepr {
        transport: HepTransport::Tcp,
        capture_id: Some(9),
        keepalive: Some(5),
        auth_key: Some(AuthKey(b"k")),
        correlation_id: Some(b"abc"),
        payload: HepPayload::Compressed(&z),
        proto_type: ProtoType::Other(0x99),
        ..r
    };
    let mut out = vec![0xAA];
    repr.emit_hep3(&mut out).unwrap();
    assert_eq!(parse(&out[1..]).unwrap(), repr);

    let huge = vec![0u8; 70_000];
    assert_eq!(
        build_hep3(src, dst, ts, ProtoType::Sip, &huge)
            .unwrap_err()
            .reason(),
        "hep_too_large"
    );
}

#[test]
fn proto_type_numbers_round_trip() {
    for v in 0..=255u8 {
        assert_eq!(ProtoType::from_u8(v).to_u8(), v);
        assert_eq!(HepTransport::from_u8(v).to_u8(), v);
    }
    assert_eq!(ProtoType::from_u8(1), ProtoType::Sip);
    assert_eq!(ProtoType::from_u8(4), ProtoType::Rtp);
    assert_eq!(ProtoType::from_u8(5), ProtoType::Rtcp);
    assert_eq!(ProtoType::from_u8(100), ProtoType::Log);
}

#[test]
fn truncated_and_bad_headers() {
    let ok = full_v4(ch(0, 15, SIP));
    assert_eq!(
        parse(&[]).unwrap_err(),
        HepError::Truncated { need: 1, have: 0 }
    );
    assert_eq!(parse(b"HE").unwrap_err().reason(), "hep_truncated");
    assert_eq!(parse(b"HEP3\x00").unwrap_err().reason(), "hep_truncated");
    for cut in 0..ok.len() {
        let e = parse(&ok[..cut]).unwrap_err();
        assert_eq!(e.reason(), "hep_truncated", "cut at {cut}");
    }
    assert_eq!(
        parse(b"HEPX\x00\x06").unwrap_err(),
        HepError::BadMagic { first: b'H' }
    );
    let e = parse(b"GET / HTTP/1.1\r\n").unwrap_err();
    assert_eq!(e, HepError::BadMagic { first: b'G' });
    assert_eq!(e.reason(), "hep_bad_magic");
    let e = parse(b"HEP3\x00\x05").unwrap_err();
    assert_eq!(e, HepError::BadLength { len: 5 });
    assert_eq!(e.reason(), "hep_bad_length");
    // v2 with a short address block and one with a bad family.
    let b = v2(2, 2, &[10, 0, 0, 1], None, b"");
    assert_eq!(parse(&b).unwrap_err().reason(), "hep_truncated");
    let b = v2(2, 7, &[0; 8], Some((0, 0, 0)), SIP);
    let e = parse(&b).unwrap_err();
    assert_eq!(e, HepError::UnsupportedFamily { family: 7 });
    assert_eq!(e.reason(), "hep_unsupported_family");
    let b = v2(2, 2, &[0; 8], Some((0, 0, 0)), b"");
    assert_eq!(parse(&b).unwrap_err().reason(), "hep_missing_payload");
}

#[test]
fn bad_chunks() {
    // Chunk length below its own header: would loop forever if trusted.
    let mut zero = ch(0, 15, b"");
    zero[5] = 0;
    let e = parse(&msg(&[zero])).unwrap_err();
    assert_eq!(
        e,
        HepError::BadChunk {
            kind: 15,
            at: 6,
            what: "length_below_header"
        }
    );
    assert_eq!(e.reason(), "hep_bad_chunk");
    // Chunk running past the message's total length.
    let mut over = ch(0, 15, SIP);
    over[5] += 10;
    let e = parse(&msg(&[ch(0, 1, &[2]), over])).unwrap_err();
    assert_eq!(
        e,
        HepError::BadChunk {
            kind: 15,
            at: 13,
            what: "overruns_message"
        }
    );
    // A chunk header cut by the total length.
    let e = parse(&msg(&[ch(0, 1, &[2]), vec![0, 0, 0]])).unwrap_err();
    assert!(matches!(
        e,
        HepError::BadChunk {
            what: "header_overruns_message",
            ..
        }
    ));
    // Wrong value sizes.
    for c in [
        ch(0, 3, &[1, 2, 3]),
        ch(0, 7, &[1]),
        ch(0, 9, &[0; 8]),
        ch(0, 11, &[]),
    ] {
        let e = parse(&msg(&[c])).unwrap_err();
        assert!(
            matches!(
                e,
                HepError::BadChunk {
                    what: "bad_value_length",
                    ..
                }
            ),
            "{e:?}"
        );
    }
    // Vendor chunks are skipped whatever their content.
    let b = msg(&[
        ch(7, 3, &[1, 2, 3]),
        ch(0, 3, &[1, 1, 1, 1]),
        ch(0, 4, &[2, 2, 2, 2]),
        ch(0, 7, &[0, 1]),
        ch(0, 8, &[0, 2]),
        ch(0, 11, &[1]),
        ch(0, 15, SIP),
    ]);
    assert!(parse(&b).is_ok());
}

#[test]
fn missing_and_inconsistent_fields() {
    let base = |skip: u16, extra: Vec<Vec<u8>>| {
        let mut c = vec![
            (3, ch(0, 3, &[1, 1, 1, 1])),
            (4, ch(0, 4, &[2, 2, 2, 2])),
            (7, ch(0, 7, &[0, 1])),
            (8, ch(0, 8, &[0, 2])),
            (11, ch(0, 11, &[1])),
            (15, ch(0, 15, SIP)),
        ];
        c.retain(|(k, _)| *k != skip);
        let mut c: Vec<Vec<u8>> = c.into_iter().map(|(_, v)| v).collect();
        c.extend(extra);
        msg(&c)
    };
    assert!(parse(&base(0, vec![])).is_ok());
    for k in [3, 4, 7, 8] {
        let e = parse(&base(k, vec![])).unwrap_err();
        assert_eq!(e, HepError::MissingAddress, "without chunk {k}");
        assert_eq!(e.reason(), "hep_missing_address");
    }
    let e = parse(&base(11, vec![])).unwrap_err();
    assert_eq!(e, HepError::MissingChunk { kind: 11 });
    assert_eq!(e.reason(), "hep_missing_chunk");
    let e = parse(&base(15, vec![])).unwrap_err();
    assert_eq!(e.reason(), "hep_missing_payload");
    // IPv4 source, IPv6 destination.
    let e = parse(&base(4, vec![ch(0, 6, &[0; 16])])).unwrap_err();
    assert_eq!(e, HepError::AddressMismatch);
    assert_eq!(e.reason(), "hep_address_mismatch");
    // A family chunk that contradicts the addresses, or names no IP family.
    let e = parse(&base(0, vec![ch(0, 1, &[10])])).unwrap_err();
    assert_eq!(e, HepError::AddressMismatch);
    let e = parse(&base(0, vec![ch(0, 1, &[99])])).unwrap_err();
    assert_eq!(e, HepError::UnsupportedFamily { family: 99 });
}

#[test]
fn every_reason_is_distinct_and_prefixed() {
    let all = [
        HepError::Truncated { need: 1, have: 0 },
        HepError::BadMagic { first: 0 },
        HepError::BadLength { len: 0 },
        HepError::BadChunk {
            kind: 0,
            at: 0,
            what: "x",
        },
        HepError::UnsupportedFamily { family: 0 },
        HepError::MissingAddress,
        HepError::AddressMismatch,
        HepError::MissingChunk { kind: 11 },
        HepError::MissingPayload,
        HepError::Decompress,
        HepError::TooLarge { cap: 1 },
    ];
    let mut reasons: Vec<&str> = all.iter().map(|e| e.reason()).collect();
    assert!(reasons.iter().all(|r| r.starts_with("hep_")));
    reasons.sort();
    reasons.dedup();
    assert_eq!(reasons.len(), all.len());
}

#[test]
fn tcp_framing() {
    let m = build_hep3(
        "1.2.3.4:5060".parse().unwrap(),
        "5.6.7.8:5060".parse().unwrap(),
        Timestamp::from_secs(1),
        ProtoType::Sip,
        SIP,
    )
    .unwrap();
    assert_eq!(hep3_frame_len(&[]), Ok(None));
    assert_eq!(hep3_frame_len(b"HE"), Ok(None));
    assert_eq!(hep3_frame_len(&m[..5]), Ok(None));
    assert_eq!(hep3_frame_len(&m[..m.len() - 1]), Ok(None));
    assert_eq!(hep3_frame_len(&m), Ok(Some(m.len())));
    let mut two = m.clone();
    two.extend_from_slice(&m);
    assert_eq!(hep3_frame_len(&two), Ok(Some(m.len())));
    assert_eq!(
        hep3_frame_len(b"HX"),
        Err(HepError::BadMagic { first: b'H' })
    );
    assert_eq!(
        hep3_frame_len(b"HEP3\x00\x01"),
        Err(HepError::BadLength { len: 1 })
    );
}

#[test]
fn looks_like_hep_is_selective() {
    assert!(looks_like_hep(b"HEP3"));
    assert!(!looks_like_hep(SIP));
    assert!(!looks_like_hep(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert!(!looks_like_hep(&[2, 0, 2]));
}
