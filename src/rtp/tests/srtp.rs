//! libsrtp against SRTP made by an independent implementation: the packets
//! below were encrypted by pcap-fixtures/srtp-pcap.py (Python `cryptography`
//! AES-CM and `hmac` SHA-1 per RFC 3711, checked against RFC 3711 B.3)
//! with `--vectors`.

use super::*;
use crate::sip::sdp_crypto::parse_crypto;

/// (suite, inline key, MKI hex or "-", plain RTP hex, SRTP hex); per key the
/// second packet follows a sequence wrap (ROC 1).
const VECTORS: &[(&str, &str, &str, &str, &str)] = &[
    ("AES_CM_128_HMAC_SHA1_80", "VvGP0MpUCNbTNHz0WCuOWd0pu0P1iHObne5G7d0Y", "-", "8000ffff000104d1deadbeef0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728", "8000ffff000104d1deadbeeff8abc8fd44771a54cf13ded03a5b504726006537c1b309f7aeecd3cd23d2ce165b91b1f7740112acb355568ffbc21a617142"),
    ("AES_CM_128_HMAC_SHA1_80", "VvGP0MpUCNbTNHz0WCuOWd0pu0P1iHObne5G7d0Y", "-", "80000000000004d2deadbeef000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627", "80000000000004d2deadbeef93298186fe5d51005567a1ed6ae253026f062b7ec95975e17ecea2f39449a9524e9d0ca9c43e7fb7bd1bc4ce8116084aa56f"),
    ("AES_CM_128_HMAC_SHA1_32", "qDtoC/u5ZOQF5r+JIgPrcR0nMiXyhnNyw/fgsTn/", "-", "8000ffff000104d1deadbeef0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728", "8000ffff000104d1deadbeef0f336d0e841ea660e0ab3e8f37a9625d65f178ea77353dc0fa231bac16745220ac8e6f2e699362f15c1a425e"),
    ("AES_CM_128_HMAC_SHA1_32", "qDtoC/u5ZOQF5r+JIgPrcR0nMiXyhnNyw/fgsTn/", "-", "80000000000004d2deadbeef000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627", "80000000000004d2deadbeeff650331e037b1f44362dda90b92bdb887701ba9b87da3109b1335be9a354d51185389a55e136aed59233cc95"),
    ("AES_CM_128_HMAC_SHA1_80", "HHdwh+aqzNJ5D9amdBDVjp7dJHjBrZZlLlpqajYl", "0007", "8000ffff000104d1deadbeef0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728", "8000ffff000104d1deadbeefd75bd5681e99079ca01a68c7e807058f9fcb2d99e5e847e84396dd9cb70f7b0307f72deaed67381900071e70e6cbb9745548d6e4"),
    ("AES_CM_128_HMAC_SHA1_80", "HHdwh+aqzNJ5D9amdBDVjp7dJHjBrZZlLlpqajYl", "0007", "80000000000004d2deadbeef000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627", "80000000000004d2deadbeef67f9e9f31fb46e04d40e500b84c40cac1ece032358d09dabe127eff14127a5c017c402efe81a1c2a00077abd24496df7e6ca089c"),
];

fn crypto_for(suite: &str, key: &str, mki: &str) -> Crypto {
    let mki = if mki == "-" {
        String::new()
    } else {
        format!(
            "|{}:{}",
            u32::from_str_radix(mki, 16).unwrap(),
            mki.len() / 2
        )
    };
    parse_crypto(format!("1 {suite} inline:{key}{mki}").as_bytes()).expect("vector key parses")
}

#[test]
fn decrypts_independently_made_srtp_across_a_wrap() {
    let mut out = Vec::new();
    let mut checked = 0;
    for chunk in VECTORS.chunks(2) {
        let (suite, key, mki, ..) = chunk[0];
        let mut s = SrtpSession::new(&crypto_for(suite, key, mki)).expect("session");
        for &(_, _, _, plain, srtp) in chunk {
            s.unprotect(&hex::decode(srtp).unwrap(), &mut out)
                .unwrap_or_else(|e| panic!("{suite} mki={mki}: {e}"));
            assert_eq!(hex::encode(&out), plain, "{suite} mki={mki}");
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

#[test]
fn wrong_key_tampering_replay_and_garbage_are_errors() {
    let (suite, key, mki, _, srtp) = VECTORS[0];
    let packet = hex::decode(srtp).unwrap();
    let mut out = Vec::new();

    // Another vector's key: authentication fails.
    let (s2, k2, m2, ..) = VECTORS[2];
    let mut wrong = SrtpSession::new(&crypto_for(s2, k2, m2)).unwrap();
    assert_eq!(
        wrong.unprotect(&packet, &mut out),
        Err(SrtpError::AuthFailed)
    );
    assert!(out.is_empty() || out.len() == packet.len());

    let mut s = SrtpSession::new(&crypto_for(suite, key, mki)).unwrap();
    let mut tampered = packet.clone();
    tampered[20] ^= 1;
    assert_eq!(s.unprotect(&tampered, &mut out), Err(SrtpError::AuthFailed));
    s.unprotect(&packet, &mut out)
        .expect("the real packet still passes");
    assert_eq!(s.unprotect(&packet, &mut out), Err(SrtpError::Replay));

    for len in [0, 1, 11, 12, 13, 21, packet.len() - 1] {
        let r = s.unprotect(&packet[..len], &mut out);
        assert!(r.is_err(), "{len} bytes: {r:?}");
    }
    assert!(s.unprotect(&vec![0x80; 70_000], &mut out).is_err());
}

#[test]
fn every_parsed_suite_makes_a_session() {
    use base64::Engine as _;
    for suite in [
        "AES_CM_128_HMAC_SHA1_80",
        "AES_CM_128_HMAC_SHA1_32",
        "AES_192_CM_HMAC_SHA1_80",
        "AES_192_CM_HMAC_SHA1_32",
        "AES_256_CM_HMAC_SHA1_80",
        "AES_256_CM_HMAC_SHA1_32",
        "AEAD_AES_128_GCM",
        "AEAD_AES_256_GCM",
    ] {
        let s = CryptoSuite::from_name(suite.as_bytes()).unwrap();
        let (k, salt) = s.key_salt_len();
        let key = base64::engine::general_purpose::STANDARD.encode(vec![3u8; k + salt]);
        let c = parse_crypto(format!("1 {suite} inline:{key}").as_bytes()).unwrap();
        let mut session = SrtpSession::new(&c).unwrap_or_else(|e| panic!("{suite}: {e}"));
        let mut out = Vec::new();
        // Not made with this key: refused, never passed through.
        let r = session.unprotect(&hex::decode(VECTORS[0].4).unwrap(), &mut out);
        assert!(r.is_err(), "{suite}: {r:?}");
    }
}
