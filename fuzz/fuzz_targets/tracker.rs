//! The whole tracker fed an arbitrary sequence of packets: each record is
//! [time delta u16][link u8][len u16][frame], with timer ticks between them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxbridge::call::{EndReason, Tracker, TrackerConfig};
use pbxbridge::time::Timestamp;
use pbxbridge::wire::LinkType;

const LINKS: [u32; 7] = [1, 0, 101, 113, 276, 228, 229];

fuzz_target!(|data: &[u8]| {
    let mut t = Tracker::new(TrackerConfig {
        max_calls: 64,
        ..TrackerConfig::default()
    });
    let mut now = 1_700_000_000_000_000i64;
    let mut rest = data;
    while rest.len() >= 5 {
        let delta = u16::from_be_bytes([rest[0], rest[1]]) as i64;
        let link = LinkType::from_dlt(LINKS[rest[2] as usize % LINKS.len()]);
        let len = (u16::from_be_bytes([rest[3], rest[4]]) as usize).min(rest.len() - 5);
        let frame = &rest[5..5 + len];
        rest = &rest[5 + len..];
        // Deltas scale up to ~65 s so timers fire within one input.
        now += delta * delta * 16;
        t.handle_frame(Timestamp(now), link, frame);
        while t.poll_event().is_some() {}
    }
    t.close_all(Timestamp(now), EndReason::CaptureEnd);
    while t.poll_event().is_some() {}
    assert_eq!(t.active_calls(), 0);
});
