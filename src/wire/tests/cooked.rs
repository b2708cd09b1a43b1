use super::*;

#[test]
fn sll_fields() {
    let mut f = vec![0u8, 4, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0]);
    let p = SllPacket::new_checked(&f[..]).unwrap();
    assert_eq!(p.packet_type(), 4);
    assert_eq!(p.arphrd(), 0xfffe);
    assert_eq!(p.protocol(), 0x0800);
    assert_eq!(p.payload(), &[0x45, 0]);
    assert!(SllPacket::new_checked(&f[..15]).is_err());
}

#[test]
fn sll2_fields() {
    let mut f = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 7, 0, 1, 4, 6];
    f.extend_from_slice(&[0; 8]);
    f.push(0x60);
    let p = Sll2Packet::new_checked(&f[..]).unwrap();
    assert_eq!(p.protocol(), 0x86dd);
    assert_eq!(p.interface_index(), 7);
    assert_eq!(p.arphrd(), 1);
    assert_eq!(p.packet_type(), 4);
    assert_eq!(p.payload(), &[0x60]);
    assert!(Sll2Packet::new_checked(&f[..19]).is_err());
}
