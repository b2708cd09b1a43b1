//! Any bytes through the SDP parser, then every accessor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxbridge::sip::sdp;

fuzz_target!(|data: &[u8]| {
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
        for r in &m.rtpmaps {
            assert!(r.pt <= 127);
            let _ = (r.encoding.len(), r.clock_rate, r.channels);
        }
    }
});
