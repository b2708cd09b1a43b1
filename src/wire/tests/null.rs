use super::*;

#[test]
fn both_byte_orders() {
    let le = [2u8, 0, 0, 0, 0x45];
    let be = [0u8, 0, 0, 30, 0x60];
    let p = NullPacket::new_checked(&le[..]).unwrap();
    assert!(p.is_ipv4());
    assert_eq!(p.payload(), &[0x45]);
    let p = NullPacket::new_checked(&be[..]).unwrap();
    assert!(p.is_ipv6());
    assert_eq!(p.family(), 30);
    assert!(NullPacket::new_checked(&be[..3]).is_err());
}
