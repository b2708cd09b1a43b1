//! Any bytes through the SDP parser, then every accessor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxbridge::sip::{sdp, sdp_crypto};

fuzz_target!(|data: &[u8]| {
    // The a=crypto value on its own too: it is where keys are decoded.
    if let Some(c) = sdp_crypto::parse_crypto(data) {
        let (k, s) = c.suite.key_salt_len();
        assert_eq!(c.key.as_bytes().len(), k + s);
        assert!(c
            .mki
            .is_none_or(|(_, len)| (1..=sdp_crypto::MAX_MKI_LEN).contains(&len)));
    }
    let Ok(s) = sdp::parse(data) else { return };
    assert!(s.media.len() <= sdp::MAX_MEDIA);
    let _ = s.audio();
    for m in &s.media {
        assert!(m.formats.len() <= sdp::MAX_FORMATS);
        assert!(m.rtpmaps.len() <= sdp::MAX_RTPMAPS);
        let _ = (m.effective_connection(&s), m.effective_direction(&s));
        for &pt in &m.formats {
            let _ = m.rtpmap(pt);
        }
        assert!(m.crypto.len() <= sdp::MAX_CRYPTO);
        for c in &m.crypto {
            assert!(c.key.as_bytes().len() <= sdp_crypto::MAX_KEY_LEN);
        }
        for r in &m.rtpmaps {
            assert!(r.pt <= 127);
            let _ = (r.encoding.len(), r.clock_rate, r.channels);
        }
    }
});
