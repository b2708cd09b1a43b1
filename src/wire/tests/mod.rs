//! Frames built by hand (etherparse's PacketBuilder for the standard parts).

use super::*;
use etherparse::{IpNumber, Ipv4Header, Ipv6Header, PacketBuilder};
use std::net::{Ipv4Addr, Ipv6Addr};

const SIP: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n";
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn udp4(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(5060, 5080)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn udp6(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(
        Ipv6Addr::LOCALHOST.octets(),
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2).octets(),
        64,
    )
    .udp(5060, 5060)
    .write(&mut v, payload)
    .unwrap();
    v
}

fn ip4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .write(&mut v, IpNumber(proto), payload)
        .unwrap();
    v
}

fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&MAC_B);
    v.extend_from_slice(&MAC_A);
    v.extend_from_slice(&ether_type.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn assert_sip_udp(p: &IpPacket<'_>) {
    assert_eq!(p.proto, 17);
    assert!(p.frag.is_none());
    match decode_transport(p.proto, p.payload).unwrap() {
        Transport::Udp { payload, .. } => assert_eq!(payload, SIP),
        other => panic!("{other:?}"),
    }
}

#[test]
fn link_types_from_dlt() {
    assert_eq!(LinkType::from_dlt(1), LinkType::Ethernet);
    assert_eq!(LinkType::from_dlt(108), LinkType::Null);
    assert_eq!(LinkType::from_dlt(0), LinkType::Null);
    for d in [12, 14, 101] {
        assert_eq!(LinkType::from_dlt(d), LinkType::RawIp);
    }
    assert_eq!(LinkType::from_dlt(228), LinkType::Ipv4);
    assert_eq!(LinkType::from_dlt(229), LinkType::Ipv6);
    assert_eq!(LinkType::from_dlt(113), LinkType::LinuxSll);
    assert_eq!(LinkType::from_dlt(276), LinkType::LinuxSll2);
    assert_eq!(LinkType::from_dlt(9999), LinkType::Unknown(9999));
    assert_eq!(
        decode_link(LinkType::Unknown(9999), &[])
            .unwrap_err()
            .reason(),
        "unsupported_link_type"
    );
}

#[test]
fn ethernet_ipv4_udp_with_padding() {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(5060, 5080)
        .write(&mut v, SIP)
        .unwrap();
    v.extend_from_slice(&[0u8; 6]); // Ethernet padding / FCS junk
    let p = decode_link(LinkType::Ethernet, &v).unwrap();
    assert_eq!(p.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(p.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    assert_sip_udp(&p);
    match decode_transport(p.proto, p.payload).unwrap() {
        Transport::Udp {
            src_port, dst_port, ..
        } => assert_eq!((src_port, dst_port), (5060, 5080)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn vlan_and_qinq() {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(etherparse::VlanId::try_new(42).unwrap())
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(5060, 5080)
        .write(&mut v, SIP)
        .unwrap();
    assert_sip_udp(&decode_link(LinkType::Ethernet, &v).unwrap());

    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .double_vlan(
            etherparse::VlanId::try_new(1).unwrap(),
            etherparse::VlanId::try_new(2).unwrap(),
        )
        .ipv6([1; 16], [2; 16], 64)
        .udp(5060, 5060)
        .write(&mut v, SIP)
        .unwrap();
    let p = decode_link(LinkType::Ethernet, &v).unwrap();
    assert!(p.src.is_ipv6());
    assert_sip_udp(&p);

    // A frame of nothing but VLAN tags hits the cap instead of looping.
    let mut tags = Vec::new();
    for _ in 0..20 {
        tags.extend_from_slice(&[0, 1, 0x81, 0x00]);
    }
    let f = eth(0x8100, &tags);
    assert_eq!(
        decode_link(LinkType::Ethernet, &f).unwrap_err().reason(),
        "too_many_encapsulations"
    );
}

#[test]
fn ipv6_udp_and_tcp() {
    let f = eth(0x86dd, &udp6(SIP));
    let p = decode_link(LinkType::Ethernet, &f).unwrap();
    assert_eq!(p.src, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_sip_udp(&p);

    let mut v = Vec::new();
    PacketBuilder::ipv6([1; 16], [2; 16], 64)
        .tcp(40000, 5060, 0xffff_fff0, 1000)
        .syn()
        .write(&mut v, b"")
        .unwrap();
    let p = decode_link(LinkType::RawIp, &v).unwrap();
    assert_eq!(p.proto, 6);
    assert_eq!(
        decode_transport(p.proto, p.payload).unwrap(),
        Transport::Tcp {
            src_port: 40000,
            dst_port: 5060,
            seq: 0xffff_fff0,
            syn: true,
            fin: false,
            rst: false,
            payload: b"",
        }
    );
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    let udp = &udp6(SIP)[40..];
    // hop-by-hop (8 bytes) -> destination options (8 bytes) -> UDP
    let mut exts = vec![60u8, 0, 1, 4, 0, 0, 0, 0];
    exts.extend_from_slice(&[17u8, 0, 1, 4, 0, 0, 0, 0]);
    exts.extend_from_slice(udp);
    let mut hdr = Ipv6Header {
        payload_length: exts.len() as u16,
        next_header: IpNumber(0),
        hop_limit: 64,
        source: [1; 16],
        destination: [2; 16],
        ..Default::default()
    };
    hdr.traffic_class = 0;
    let mut v = Vec::new();
    hdr.write(&mut v).unwrap();
    v.extend_from_slice(&exts);
    assert_sip_udp(&decode_link(LinkType::Ipv6, &v).unwrap());
    assert!(decode_link(LinkType::Ipv4, &v).is_err());
}

#[test]
fn raw_and_null_and_cooked() {
    let ip = udp4(SIP);
    assert_sip_udp(&decode_link(LinkType::RawIp, &ip).unwrap());
    assert_sip_udp(&decode_link(LinkType::Ipv4, &ip).unwrap());

    for hdr in [[2u8, 0, 0, 0], [0, 0, 0, 2]] {
        let mut f = hdr.to_vec();
        f.extend_from_slice(&ip);
        assert_sip_udp(&decode_link(LinkType::Null, &f).unwrap());
    }
    for fam in [10u32, 24, 28, 30] {
        let mut f = fam.to_le_bytes().to_vec();
        f.extend_from_slice(&udp6(SIP));
        assert_sip_udp(&decode_link(LinkType::Null, &f).unwrap());
    }
    let mut f = 7u32.to_le_bytes().to_vec();
    f.extend_from_slice(&ip);
    assert_eq!(
        decode_link(LinkType::Null, &f).unwrap_err(),
        WireError::UnsupportedAddressFamily { family: 7 }
    );

    // SLL v1 from etherparse's builder (ARPHRD_ETHER).
    let mut v = Vec::new();
    PacketBuilder::linux_sll(etherparse::LinuxSllPacketType::OUTGOING, 6, [1; 8])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(5060, 5080)
        .write(&mut v, SIP)
        .unwrap();
    assert_sip_udp(&decode_link(LinkType::LinuxSll, &v).unwrap());

    // SLL v1 on a tun device (ARPHRD_NONE), which etherparse's own slice rejects.
    let mut f = vec![0u8, 0, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
    f.extend_from_slice(&ip);
    assert_sip_udp(&decode_link(LinkType::LinuxSll, &f).unwrap());

    // SLL2
    let mut f = vec![0x08u8, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6];
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&ip);
    assert_sip_udp(&decode_link(LinkType::LinuxSll2, &f).unwrap());
}

fn gre(flags: u16, proto: u16, extra: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut g = flags.to_be_bytes().to_vec();
    g.extend_from_slice(&proto.to_be_bytes());
    g.extend_from_slice(extra);
    g.extend_from_slice(payload);
    g
}

#[test]
fn gre_plain_teb_and_erspan() {
    let inner_ip = udp4(SIP);
    let inner_eth = eth(0x0800, &inner_ip);

    // plain GRE carrying IPv4
    let f = eth(0x0800, &ip4(47, &gre(0, 0x0800, &[], &inner_ip)));
    let p = decode_link(LinkType::Ethernet, &f).unwrap();
    assert_eq!(p.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    assert_sip_udp(&p);

    // transparent Ethernet bridging with a key
    let f = eth(
        0x0800,
        &ip4(47, &gre(0x2000, 0x6558, &[0, 0, 0, 9], &inner_eth)),
    );
    assert_sip_udp(&decode_link(LinkType::Ethernet, &f).unwrap());

    // ERSPAN type II (sequence number present, 8-byte header)
    let mut e2 = vec![0x10u8, 0x01, 0x00, 0x05, 0, 0, 0, 0];
    e2.extend_from_slice(&inner_eth);
    let f = eth(0x0800, &ip4(47, &gre(0x1000, 0x88be, &[0, 0, 0, 1], &e2)));
    assert_sip_udp(&decode_link(LinkType::Ethernet, &f).unwrap());

    // ERSPAN type I (no sequence number, no header)
    let f = eth(0x0800, &ip4(47, &gre(0, 0x88be, &[], &inner_eth)));
    assert_sip_udp(&decode_link(LinkType::Ethernet, &f).unwrap());

    // ERSPAN type III, 12-byte header, Ethernet frame type
    let mut e3 = vec![0x20u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    e3.extend_from_slice(&inner_eth);
    let f = eth(0x0800, &ip4(47, &gre(0x1000, 0x22eb, &[0, 0, 0, 1], &e3)));
    assert_sip_udp(&decode_link(LinkType::Ethernet, &f).unwrap());

    // PPTP enhanced GRE with PPP
    let mut ppp = vec![0xffu8, 0x03, 0x00, 0x21];
    ppp.extend_from_slice(&inner_ip);
    let f = eth(
        0x0800,
        &ip4(
            47,
            &gre(0x3081, 0x880b, &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2], &ppp),
        ),
    );
    assert_sip_udp(&decode_link(LinkType::Ethernet, &f).unwrap());

    // truncated ERSPAN header
    let f = eth(
        0x0800,
        &ip4(47, &gre(0x1000, 0x88be, &[0, 0, 0, 1], &[0x10, 0])),
    );
    assert_eq!(
        decode_link(LinkType::Ethernet, &f).unwrap_err().reason(),
        "truncated_erspan"
    );
}

#[test]
fn ip_in_ip_and_depth_cap() {
    let inner = udp4(SIP);
    let f = ip4(4, &inner);
    assert_sip_udp(&decode_link(LinkType::RawIp, &f).unwrap());

    let mut v = Vec::new();
    PacketBuilder::ipv6([1; 16], [2; 16], 64)
        .write(&mut v, IpNumber(4), &inner)
        .unwrap();
    assert_sip_udp(&decode_link(LinkType::RawIp, &v).unwrap());

    let mut nested = inner.clone();
    for _ in 0..4 {
        nested = ip4(4, &nested);
    }
    assert_sip_udp(&decode_link(LinkType::RawIp, &nested).unwrap());
    let nested = ip4(4, &nested);
    assert_eq!(
        decode_link(LinkType::RawIp, &nested).unwrap_err(),
        WireError::TooDeep {
            max: MAX_TUNNEL_DEPTH
        }
    );
}

#[test]
fn ipv4_fragment_info() {
    let mut h = Ipv4Header::new(16, 64, IpNumber(17), [1, 1, 1, 1], [2, 2, 2, 2]).unwrap();
    h.identification = 0xbeef;
    h.more_fragments = true;
    h.fragment_offset = etherparse::IpFragOffset::try_new(185).unwrap();
    let mut v = Vec::new();
    h.write(&mut v).unwrap();
    v.extend_from_slice(&[7u8; 16]);
    let p = decode_link(LinkType::RawIp, &v).unwrap();
    assert_eq!(
        p.frag,
        Some(Fragment {
            id: 0xbeef,
            offset: 1480,
            more: true
        })
    );
    assert_eq!(p.payload, &[7u8; 16]);
}

#[test]
fn ipv6_fragment_info_stops_at_fragment_header() {
    // non-first fragment whose data would look like a destination options header
    let mut body = vec![60u8, 0, 0x05, 0xc9, 0, 0, 0x12, 0x34];
    body.extend_from_slice(&[0xaa; 24]);
    let hdr = Ipv6Header {
        payload_length: body.len() as u16,
        next_header: IpNumber(44),
        hop_limit: 64,
        source: [1; 16],
        destination: [2; 16],
        ..Default::default()
    };
    let mut v = Vec::new();
    hdr.write(&mut v).unwrap();
    v.extend_from_slice(&body);
    let p = decode_link(LinkType::RawIp, &v).unwrap();
    assert_eq!(p.proto, 60);
    assert_eq!(
        p.frag,
        Some(Fragment {
            id: 0x1234,
            offset: 0x5c8,
            more: true
        })
    );
    assert_eq!(p.payload, &[0xaa; 24]);
}

#[test]
fn truncation_and_garbage_are_errors() {
    let ip = udp4(SIP);
    let err = decode_link(LinkType::RawIp, &ip[..ip.len() - 1]).unwrap_err();
    assert_eq!(err.reason(), "truncated_ipv4");
    assert_eq!(
        decode_link(LinkType::RawIp, &[0x10]).unwrap_err().reason(),
        "unsupported_ip_version"
    );
    assert_eq!(
        decode_link(LinkType::Ethernet, &[0; 10])
            .unwrap_err()
            .reason(),
        "truncated_ethernet"
    );
    assert_eq!(
        decode_link(LinkType::Ethernet, &eth(0x0806, &[0; 28]))
            .unwrap_err()
            .reason(),
        "unsupported_ether_type"
    );
    assert_eq!(
        decode_transport(132, b"x").unwrap_err(),
        WireError::UnsupportedProtocol { proto: 132 }
    );
    assert_eq!(
        decode_transport(17, &[0, 1, 0, 2, 0, 4, 0, 0])
            .unwrap_err()
            .reason(),
        "malformed_udp"
    );
    assert_eq!(
        decode_transport(6, &[0; 19]).unwrap_err().reason(),
        "truncated_tcp"
    );
    // every prefix of a tunnelled frame decodes or errors, never panics
    let f = eth(
        0x0800,
        &ip4(47, &gre(0x3000, 0x6558, &[0; 8], &eth(0x0800, &ip))),
    );
    for n in 0..f.len() {
        let _ = decode_link(LinkType::Ethernet, &f[..n]);
    }
}
