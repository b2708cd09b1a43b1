//! Any bytes through the HEP parser (chunks, repr, decompression, TCP framing, a
//! re-emit round trip), then a tracker fed the input as a run of HEP messages:
//! each record is [time delta u8][len u16][message].
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxbridge::call::{EndReason, Tracker, TrackerConfig};
use pbxbridge::time::Timestamp;
use pbxbridge::wire::hep::{self, HepPacket, HepRepr, MAX_DECOMPRESSED};

fuzz_target!(|data: &[u8]| {
    let _ = hep::looks_like_hep(data);
    if let Ok(Some(len)) = hep::hep3_frame_len(data) {
        assert!(len >= hep::HEP3_HEADER_LEN && len <= data.len());
    }
    if let Ok(p) = HepPacket::new_checked(data) {
        assert!(p.total_len() <= data.len());
        for c in p.chunks().flatten() {
            assert!(c.data.len() + hep::CHUNK_HEADER_LEN <= p.total_len());
        }
        if let Ok(r) = HepRepr::parse(&p) {
            let mut scratch = Vec::new();
            if let Ok(payload) = r.payload(&mut scratch) {
                assert!(payload.len() <= MAX_DECOMPRESSED.max(data.len()));
            }
            let _ = format!("{r:?}");
            let mut out = Vec::new();
            if r.emit_hep3(&mut out).is_ok() {
                let again = HepPacket::new_checked(&out[..])
                    .and_then(|p| HepRepr::parse(&p))
                    .expect("an emitted message parses");
                assert_eq!((again.src, again.dst), (r.src, r.dst));
                assert_eq!(again.proto_type, r.proto_type);
                assert_eq!(again.payload, r.payload);
                assert_eq!(again.correlation_id, r.correlation_id);
            }
        }
    }

    let mut t = Tracker::new(TrackerConfig {
        max_calls: 64,
        ..TrackerConfig::default()
    });
    let mut now = 1_700_000_000_000_000i64;
    let mut rest = data;
    while rest.len() >= 3 {
        let delta = i64::from(rest[0]);
        let len = (u16::from_be_bytes([rest[1], rest[2]]) as usize).min(rest.len() - 3);
        let msg = &rest[3..3 + len];
        rest = &rest[3 + len..];
        now += delta * delta * 1_000;
        t.handle_hep(Timestamp(now), msg);
        while t.poll_event().is_some() {}
    }
    t.close_all(Timestamp(now), EndReason::CaptureEnd);
    while t.poll_event().is_some() {}
    assert_eq!(t.active_calls(), 0);
});
