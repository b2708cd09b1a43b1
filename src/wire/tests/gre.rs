use super::*;

#[test]
fn gre_header_lengths() {
    let plain = [0u8, 0, 0x08, 0x00, 0x45];
    let g = GrePacket::new_checked(&plain[..]).unwrap();
    assert_eq!(g.protocol(), 0x0800);
    assert_eq!(g.payload(), &[0x45]);

    let keyed_seq = [0x30u8, 0, 0x65, 0x58, 0, 0, 0, 1, 0, 0, 0, 2, 0xaa];
    let g = GrePacket::new_checked(&keyed_seq[..]).unwrap();
    assert!(g.has_key() && g.has_sequence());
    assert_eq!(g.payload(), &[0xaa]);
    assert!(GrePacket::new_checked(&keyed_seq[..11]).is_err());

    let pptp = [
        0x30u8, 0x81, 0x88, 0x0b, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0x21,
    ];
    let g = GrePacket::new_checked(&pptp[..]).unwrap();
    assert_eq!(g.version(), 1);
    assert!(g.has_ack());
    assert_eq!(g.payload(), &[0x21]);

    let v3 = [0u8, 3, 0x08, 0];
    assert_eq!(
        GrePacket::new_checked(&v3[..]).unwrap_err().reason(),
        "unsupported_gre_version"
    );
}

#[test]
fn erspan_types() {
    let mut t2 = vec![0x10u8, 0x05, 0x00, 0x07, 0, 0, 0, 0];
    t2.push(0xee);
    let e = ErspanPacket::new_checked(&t2[..]).unwrap();
    assert_eq!(e.vlan(), 5);
    assert_eq!(e.session_id(), 7);
    assert_eq!(e.inner(), ErspanInner::Ethernet(&[0xee]));

    // type III, frame type 2 (IP), O bit set -> 8-byte sub-header
    let mut t3 = vec![0x20u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0b0000_1000, 0x01];
    t3.extend_from_slice(&[0; 8]);
    t3.push(0x45);
    let e = ErspanPacket::new_checked(&t3[..]).unwrap();
    assert_eq!(e.frame_type(), 2);
    assert_eq!(e.inner(), ErspanInner::Ip(&[0x45]));
    assert!(ErspanPacket::new_checked(&t3[..19]).is_err());
}

#[test]
fn ppp_protocol_compression() {
    let p = PppPacket::new_checked(&[0xffu8, 0x03, 0x00, 0x21, 0x45][..]).unwrap();
    assert_eq!(p.protocol(), 0x21);
    assert_eq!(p.payload(), &[0x45]);
    let p = PppPacket::new_checked(&[0x57u8, 0x60][..]).unwrap();
    assert_eq!(p.protocol(), 0x57);
    assert_eq!(p.payload(), &[0x60]);
    assert!(PppPacket::new_checked(&[0xffu8, 0x03, 0x00][..]).is_err());
}
