//! Unit-level checks of the public SIP parser API (compact forms, folding, LF-only,
//! name-addr / addr-spec, URIs, caps, rejections).

use pbxbridge::sip::*;

const INVITE: &[u8] = b"INVITE sip:+4930123456@pbx.example.com;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776asdhds;rport, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKother\r\n\
Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKlower\r\n\
Max-Forwards: 70\r\n\
To: <sip:+4930123456@pbx.example.com>\r\n\
From: \"Alice \\\"A\\\" M\xfcller\" <sip:alice@10.0.0.5>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@[2001:db8::1]:5070;transport=udp>;expires=60, <sip:b@h>\r\n\
P-Asserted-Identity: \"Alice\" <sip:+4930999@pbx.example.com>, <tel:+4930999>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 29\r\n\
\r\n\
v=0\r\nm=audio 4000 RTP/AVP 0\r\n";

#[test]
fn full_invite() {
    let m = parse(INVITE).unwrap();
    assert_eq!(m.len(), INVITE.len());
    match *m.start() {
        StartLine::Request { method, uri } => {
            assert_eq!(method, Method::Invite);
            assert_eq!(uri, b"sip:+4930123456@pbx.example.com;user=phone");
        }
        StartLine::Response { .. } => panic!("not a request"),
    }
    assert_eq!(m.call_id(), Some(&b"a84b4c76e66710@pc33.example.com"[..]));
    let from = m.from().unwrap();
    assert_eq!(from.display, Some(&b"Alice \\\"A\\\" M\xfcller"[..]));
    assert_eq!(from.tag, Some(&b"1928301774"[..]));
    assert_eq!(from.uri.user, Some(&b"alice"[..]));
    let to = m.to().unwrap();
    assert_eq!(to.tag, None);
    assert_eq!(to.uri.user, Some(&b"+4930123456"[..]));
    let c = m.contact().unwrap();
    assert_eq!(c.uri.host, b"2001:db8::1");
    assert_eq!(c.uri.port, Some(5070));
    assert_eq!(
        m.cseq(),
        Some(CSeq {
            seq: 314159,
            method: Method::Invite
        })
    );
    assert_eq!(m.top_via_branch(), Some(&b"z9hG4bK776asdhds"[..]));
    assert_eq!(m.headers("via").count(), 2);
    assert_eq!(m.content_type(), Some(&b"application/sdp"[..]));
    assert_eq!(m.body(), b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n");
    assert_eq!(m.sdp(), Some(m.body()));
    let pai = m.p_asserted_identity().unwrap();
    assert_eq!(pai.uri.user, Some(&b"+4930999"[..]));
    assert_eq!(m.header("MAX-FORWARDS"), Some(&b"70"[..]));
    assert_eq!(m.header("x-nope"), None);
}

#[test]
fn compact_lf_only_and_folding() {
    let raw = b"BYE sip:bob@h SIP/2.0\n\
v: SIP/2.0/TCP h;\n branch=z9hG4bKfold\n\
i: abc@h\n\
f: sip:alice@h;tag=a1\n\
t: Bob <sip:bob@h>;tag=b2\n\
cseq:\n 2\n BYE\n\
l: 0\n\
\n";
    let m = parse(raw).unwrap();
    assert_eq!(m.method(), Some(Method::Bye));
    assert_eq!(m.header("Call-ID"), Some(&b"abc@h"[..]));
    assert_eq!(m.header("i"), Some(&b"abc@h"[..]));
    assert_eq!(m.call_id(), Some(&b"abc@h"[..]));
    assert_eq!(m.from().unwrap().tag, Some(&b"a1"[..]));
    assert_eq!(m.to().unwrap().display, Some(&b"Bob"[..]));
    assert_eq!(m.top_via_branch(), Some(&b"z9hG4bKfold"[..]));
    // Folded values keep their raw span.
    assert_eq!(
        m.header("via"),
        Some(&b"SIP/2.0/TCP h;\n branch=z9hG4bKfold"[..])
    );
    assert_eq!(m.cseq().unwrap().seq, 2);
    assert_eq!(m.body(), b"");
    assert_eq!(m.len(), raw.len());
}

#[test]
fn response_and_reason() {
    let raw = b"SIP/2.0 487 Request Terminated\r\n\
Call-ID: x\r\n\
CSeq: 1 INVITE\r\n\
Reason: Q.850;text=\"a;b\" , SIP ;cause=200 ;text=\"Call completed elsewhere\"\r\n\
Content-Length: 0\r\n\r\n";
    let m = parse(raw).unwrap();
    assert_eq!(m.status_code(), Some(487));
    assert_eq!(
        *m.start(),
        StartLine::Response {
            code: 487,
            reason: b"Request Terminated"
        }
    );
    assert_eq!(m.reason_cause(), Some((&b"SIP"[..], 200)));
    assert_eq!(m.cseq().unwrap().method, Method::Invite);
}

#[test]
fn remote_party_id_fallback_and_star_contact() {
    let raw = b"REGISTER sip:h SIP/2.0\r\nContact: *\r\n\
Remote-Party-ID: \"x\" <sip:100@h>;party=calling\r\nl: 0\r\n\r\n";
    let m = parse(raw).unwrap();
    assert!(m.contact().is_none());
    assert_eq!(m.p_asserted_identity().unwrap().uri.user, Some(&b"100"[..]));
}

#[test]
fn refer_to_full_and_compact() {
    let raw = b"REFER sip:h SIP/2.0\r\nRefer-To: \"Q\" <sip:2002@h?Replaces=a%40b%3Bto-tag%3Dx>\r\nl: 0\r\n\r\n";
    let m = parse(raw).unwrap();
    let to = m.refer_to().unwrap();
    assert_eq!(to.uri.user, Some(&b"2002"[..]));
    assert_eq!(to.uri.host, b"h");
    let compact = parse(b"REFER sip:h SIP/2.0\r\nr: sip:desk.example.com\r\nl: 0\r\n\r\n").unwrap();
    let to = compact.refer_to().unwrap();
    assert_eq!(
        (to.uri.user, to.uri.raw),
        (None, &b"sip:desk.example.com"[..])
    );
    assert!(parse(b"REFER sip:h SIP/2.0\r\nl: 0\r\n\r\n")
        .unwrap()
        .refer_to()
        .is_none());
}

#[test]
fn body_without_content_length_and_trailing_bytes() {
    let raw = b"SIP/2.0 200 OK\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n";
    let m = parse(raw).unwrap();
    assert_eq!(m.body(), b"v=0\r\n");
    let mut two =
        b"\r\n\r\nOPTIONS sip:h SIP/2.0\r\nContent-Length: 3\r\n\r\nabcSIP/2.0 200 OK\r\n\r\n"
            .to_vec();
    let m = parse(&two).unwrap();
    assert_eq!(m.body(), b"abc");
    let used = m.len();
    assert_eq!(&two[used..], b"SIP/2.0 200 OK\r\n\r\n");
    assert!(parse(&two[used..]).is_ok());
    two.truncate(used - 1);
    assert_eq!(
        parse(&two).unwrap_err(),
        SipError::BodyTruncated {
            declared: 3,
            available: 2
        }
    );
}

#[test]
fn sdp_detection() {
    let raw = b"SIP/2.0 200 OK\r\n\r\nv=0\r\n";
    assert!(parse(raw).unwrap().sdp().is_some());
    let raw = b"SIP/2.0 200 OK\r\nc: text/plain\r\n\r\nv=0\r\n";
    assert!(parse(raw).unwrap().sdp().is_none());
    let raw = b"SIP/2.0 200 OK\r\nContent-Type: Application/SDP ; x=1\r\n\r\nv=0\r\n";
    assert!(parse(raw).unwrap().sdp().is_some());
}

#[test]
fn rejections() {
    let cases: &[(&[u8], SipError)] = &[
        (b"", SipError::Empty),
        (b"\r\n\r\n", SipError::Empty),
        (b"INVITE sip:a@b SIP/2.0\r\nTo: x\r\n", SipError::Incomplete),
        (b"INVITE sip:a@b SIP/2.0", SipError::Incomplete),
        (b"SIP/2.0 20 OK\r\n\r\n", SipError::BadStatusCode),
        (b"SIP/2.0 700 X\r\n\r\n", SipError::BadStatusCode),
        (b"SIP/3.0 200 OK\r\n\r\n", SipError::BadVersion),
        (b"INVITE sip:a@b HTTP/1.1\r\n\r\n", SipError::BadStartLine),
        (b"GET / HTTP/1.1\r\n\r\n", SipError::BadStartLine),
        (b"INV\xffITE sip:a@b SIP/2.0\r\n\r\n", SipError::BadMethod),
        (b"INVITE <sip:a@b> SIP/2.0\r\n\r\n", SipError::BadRequestUri),
        (b"INVITE  sip:a@b SIP/2.0\r\n\r\n", SipError::BadRequestUri),
        (
            b"INVITE sip:a@b SIP/2.0\r\nno colon\r\n\r\n",
            SipError::BadHeaderLine { offset: 24 },
        ),
        (
            b"INVITE sip:a@b SIP/2.0\r\n folded: x\r\n\r\n",
            SipError::BadHeaderLine { offset: 24 },
        ),
        (
            b"INVITE sip:a@b SIP/2.0\r\nl: -1\r\n\r\n",
            SipError::BadContentLength,
        ),
        (
            b"INVITE sip:a@b SIP/2.0\r\nCSeq: 1 BYE\r\n\r\n",
            SipError::CSeqMismatch,
        ),
        (
            b"INVITE sip:a@b SIP/2.0\r\nCSeq: 99999999999 INVITE\r\n\r\n",
            SipError::BadCSeq,
        ),
        (
            b"INVITE sip:a@b SIP/2.0\r\nCSeq: INVITE\r\n\r\n",
            SipError::BadCSeq,
        ),
        (
            b"INVITE sip:a@b SIP/2.0\r\nt: \"x <sip:a@b>\r\n\r\n",
            SipError::UnterminatedQuote,
        ),
        (
            b"INVITE sip:a@b SIP/2.0\r\nf: <sip:a@b\r\n\r\n",
            SipError::UnterminatedAngle,
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(
            parse(raw).unwrap_err(),
            *want,
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn header_caps() {
    let mut raw = b"OPTIONS sip:h SIP/2.0\r\n".to_vec();
    for _ in 0..=MAX_HEADERS {
        raw.extend_from_slice(b"X: y\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    assert_eq!(
        parse(&raw).unwrap_err(),
        SipError::TooManyHeaders { max: MAX_HEADERS }
    );
    let mut raw = b"OPTIONS sip:h SIP/2.0\r\nX: ".to_vec();
    raw.resize(MAX_HEADER_BYTES + 10, b'a');
    raw.extend_from_slice(b"\r\n\r\n");
    assert!(matches!(parse(&raw), Err(SipError::HeadersTooLarge { .. })));
}

#[test]
fn error_reasons_are_snake_case() {
    for e in [
        SipError::Empty,
        SipError::BodyTruncated {
            declared: 1,
            available: 0,
        },
        SipError::BadUri,
    ] {
        assert!(e
            .reason()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_'));
    }
    assert!(SipError::Incomplete.is_incomplete());
    assert!(!SipError::BadUri.is_incomplete());
}

#[test]
fn method_display() {
    assert_eq!(Method::from_bytes(b"PRACK"), Method::Prack);
    assert_eq!(Method::from_bytes(b"invite"), Method::Other(b"invite"));
    assert_eq!(Method::Invite.to_string(), "INVITE");
    assert_eq!(Method::Other(b"FOO").as_bytes(), b"FOO");
}

// --- name-addr

#[test]
fn name_addr_with_quoted_display() {
    let n = NameAddr::parse(br#" "Bob \"B\"" <sip:bob@h>;tag=x;foo"#).unwrap();
    assert_eq!(n.display, Some(&br#"Bob \"B\""#[..]));
    assert_eq!(n.uri.user, Some(&b"bob"[..]));
    assert_eq!(n.tag, Some(&b"x"[..]));
    assert_eq!(n.params, b";tag=x;foo");
}

#[test]
fn addr_spec_params_belong_to_header() {
    let n = NameAddr::parse(b"sip:bob@h;tag=x").unwrap();
    assert_eq!(n.display, None);
    assert_eq!(n.uri.raw, b"sip:bob@h");
    assert_eq!(n.tag, Some(&b"x"[..]));
    let n = NameAddr::parse(b"tel:+4930123;tag=9").unwrap();
    assert_eq!(n.uri.scheme, Scheme::Tel);
    assert_eq!(n.uri.user, Some(&b"+4930123"[..]));
    assert_eq!(n.tag, Some(&b"9"[..]));
}

#[test]
fn unquoted_and_non_utf8_display() {
    let n = NameAddr::parse(b"caller<sip:caller@example.com>;tag=323").unwrap();
    assert_eq!(n.display, Some(&b"caller"[..]));
    let n = NameAddr::parse(b"\"M\xfcller \xff\" <sip:1@h>").unwrap();
    assert_eq!(n.display, Some(&b"M\xfcller \xff"[..]));
    assert_eq!(n.tag, None);
}

#[test]
fn broken() {
    assert_eq!(
        NameAddr::parse(b"\"Mr. J. User <sip:j.user@example.com>"),
        Err(SipError::UnterminatedQuote)
    );
    assert_eq!(
        NameAddr::parse(b"<sip:j.user@example.com"),
        Err(SipError::UnterminatedAngle)
    );
    assert_eq!(NameAddr::parse(b"  "), Err(SipError::BadNameAddr));
    assert_eq!(NameAddr::parse(b"<>"), Err(SipError::BadNameAddr));
}

// --- URI

#[test]
fn sip_user_host_port() {
    let u = Uri::parse(b"sip:bob@example.com:5070;transport=tcp").unwrap();
    assert_eq!(u.scheme, Scheme::Sip);
    assert_eq!(u.user, Some(&b"bob"[..]));
    assert_eq!(u.host, b"example.com");
    assert_eq!(u.port, Some(5070));
}

#[test]
fn ipv6_host() {
    let u = Uri::parse(b"sips:[2001:db8::1]:5061").unwrap();
    assert_eq!(u.scheme, Scheme::Sips);
    assert_eq!(u.user, None);
    assert_eq!(u.host, b"2001:db8::1");
    assert_eq!(u.port, Some(5061));
    let u = Uri::parse(b"sip:alice@[2001:db8::1];lr").unwrap();
    assert_eq!(u.host, b"2001:db8::1");
    assert_eq!(u.port, None);
}

#[test]
fn tel() {
    let u = Uri::parse(b"tel:+1-201-555-0123;phone-context=x").unwrap();
    assert_eq!(u.scheme, Scheme::Tel);
    assert_eq!(u.user, Some(&b"+1-201-555-0123"[..]));
    assert_eq!(u.host, b"");
}

#[test]
fn raw_user_with_semicolon_and_escapes() {
    let u = Uri::parse(b"sip:user;par=u%40example.net@example.com").unwrap();
    assert_eq!(u.user, Some(&b"user;par=u%40example.net"[..]));
    assert_eq!(u.host, b"example.com");
    let u = Uri::parse(b"SIP:pw:secret@h").unwrap();
    assert_eq!(u.user, Some(&b"pw"[..]));
}

#[test]
fn rejects() {
    assert!(Uri::parse(b"sip:").is_err());
    assert!(Uri::parse(b"sip:a@h:99999").is_err());
    assert!(Uri::parse(b"sip:a@h:x").is_err());
    assert!(Uri::parse(b"nocolon").is_err());
    assert!(Uri::parse(b"sip:a@[::1").is_err());
    assert!(Uri::parse(b"sip:a@ho st").is_err());
    assert_eq!(
        Uri::parse(b"urn:service:sos").unwrap().scheme,
        Scheme::Other
    );
}
