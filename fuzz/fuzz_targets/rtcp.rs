//! Any bytes as a compound RTCP datagram: every packet, its sender info,
//! report blocks and XR blocks (VoIP metrics decoded), and the quality view
//! a report block feeds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxbridge::rtp::quality::RtcpView;
use pbxbridge::rtp::rtcp::{self, VoipMetrics, MAX_PACKETS};

fuzz_target!(|data: &[u8]| {
    let _ = rtcp::looks_like_rtcp(data);
    let mut n = 0;
    for p in rtcp::compound(data) {
        n += 1;
        let Ok(p) = p else { break };
        assert!(p.total_len() <= data.len());
        let _ = (
            p.ssrc(),
            p.body().len(),
            p.sender_info().map(|s| s.ntp_middle()),
        );
        let mut view = RtcpView::default();
        for b in p.report_blocks() {
            view.add_block(&b, 8000);
            assert!(view.fraction_lost_pct < 100.0);
        }
        for b in p.xr_blocks() {
            assert!(b.content.len() + 4 <= p.total_len());
            if let Some(m) = VoipMetrics::parse(b.content) {
                assert!(m.loss_rate_pct < 100.0);
            }
        }
    }
    assert!(n <= MAX_PACKETS);
});
