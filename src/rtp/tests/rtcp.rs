use super::*;

/// An SR from SSRC 0x11111111 with one report block about 0x22222222,
/// then an RR from 0x33333333 with one block, as one compound datagram.
fn sr_rr() -> Vec<u8> {
    let mut d = vec![
        0x81, 200, 0, 12, // V=2, RC=1, SR, length 12 words (52 bytes)
        0x11, 0x11, 0x11, 0x11, // sender SSRC
        0xe8, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00, // NTP 0xe8000001.80000000
        0x00, 0x00, 0x03, 0x20, // RTP ts 800
        0x00, 0x00, 0x00, 0x32, // 50 packets
        0x00, 0x00, 0x1f, 0x40, // 8000 octets
    ];
    d.extend_from_slice(&[
        0x22, 0x22, 0x22, 0x22, // source
        64, 0x00, 0x00, 0x05, // fraction 64/256, cumulative 5
        0x00, 0x01, 0x00, 0x10, // highest seq
        0x00, 0x00, 0x00, 0x28, // jitter 40
        0x12, 0x34, 0x56, 0x78, // LSR
        0x00, 0x01, 0x00, 0x00, // DLSR 1 s
    ]);
    d.extend_from_slice(&[
        0x81, 201, 0, 7, // RR, 1 block, 32 bytes
        0x33, 0x33, 0x33, 0x33, //
        0x11, 0x11, 0x11, 0x11, // about the SR's sender
        0, 0xff, 0xff, 0xfe, // cumulative -2 (duplicates)
        0, 0, 0, 9, //
        0, 0, 0, 0, //
        0, 0, 0, 0, //
        0, 0, 0, 0,
    ]);
    d
}

#[test]
fn sender_and_receiver_reports() {
    let data = sr_rr();
    let packets: Vec<_> = compound(&data).collect::<Result<_, _>>().unwrap();
    assert_eq!(packets.len(), 2);
    let sr = &packets[0];
    assert_eq!(
        (sr.packet_type(), sr.count(), sr.ssrc()),
        (PT_SR, 1, 0x1111_1111)
    );
    let info = sr.sender_info().unwrap();
    assert_eq!(info.ntp, 0xe800_0001_8000_0000);
    assert_eq!(info.ntp_middle(), 0x0001_8000);
    assert_eq!((info.rtp_ts, info.packets, info.octets), (800, 50, 8000));
    let blocks: Vec<_> = sr.report_blocks().collect();
    assert_eq!(
        blocks,
        vec![ReportBlock {
            ssrc: 0x2222_2222,
            fraction_lost: 64,
            cumulative_lost: 5,
            highest_seq: 0x0001_0010,
            jitter: 40,
            lsr: 0x1234_5678,
            dlsr: 0x0001_0000,
        }]
    );
    let rr = &packets[1];
    assert_eq!(rr.packet_type(), PT_RR);
    assert!(rr.sender_info().is_none());
    let b: Vec<_> = rr.report_blocks().collect();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].cumulative_lost, -2);
    assert_eq!(b[0].ssrc, 0x1111_1111);
}

#[test]
fn xr_voip_metrics() {
    let mut d = vec![
        0x80, 207, 0, 10, // XR, 44 bytes
        0x44, 0x44, 0x44, 0x44, // sender
        7, 0, 0, 8, // VoIP metrics block, 8 words
        0x55, 0x55, 0x55, 0x55, // source
        13, 3, 128, 2, // loss 13/256, discard 3/256, burst 128/256, gap 2/256
        0, 120, 0x03, 0xe8, // burst 120 ms, gap 1000 ms
        0, 80, 0, 40, // RTT 80 ms, end system 40 ms
        0, 0, 0, 0, // signal, noise, RERL, Gmin
        85, 127, 41, 127, // R 85, ext R n/a, MOS-LQ 4.1, MOS-CQ n/a
        0, 0, 0, 60, // rx config, reserved, JB nominal
        0, 100, 0, 200,
    ];
    let p = Packet::new_checked(&d[..]).unwrap();
    let blocks: Vec<_> = p.xr_blocks().collect();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].block_type, XR_VOIP_METRICS);
    let m = VoipMetrics::parse(blocks[0].content).unwrap();
    assert_eq!(m.ssrc, 0x5555_5555);
    assert!((m.loss_rate_pct - 5.078).abs() < 1e-3, "{m:?}");
    assert!((m.burst_density_pct - 50.0).abs() < 1e-9, "{m:?}");
    assert_eq!((m.burst_duration_ms, m.gap_duration_ms), (120, 1000));
    assert_eq!((m.round_trip_ms, m.end_system_delay_ms), (80, 40));
    assert_eq!(m.r_factor, Some(85));
    assert_eq!(m.mos_lq, Some(4.1));
    assert_eq!(m.mos_cq, None);
    // A block whose length runs past the packet is not returned.
    d[11] = 9;
    let p = Packet::new_checked(&d[..]).unwrap();
    assert_eq!(p.xr_blocks().count(), 0);
    assert!(VoipMetrics::parse(&[0; 31]).is_none());
}

#[test]
fn malformed_input_is_an_error() {
    assert_eq!(
        Packet::new_checked(&[0x81u8, 200][..]).unwrap_err(),
        RtcpError::TooShort { len: 2 }
    );
    assert!(matches!(
        Packet::new_checked(&[0x41u8, 200, 0, 0][..]),
        Err(RtcpError::BadVersion { version: 1 })
    ));
    assert!(matches!(
        Packet::new_checked(&[0x80u8, 0, 0, 0][..]),
        Err(RtcpError::NotRtcp { packet_type: 0 })
    ));
    let data = sr_rr();
    assert!(matches!(
        Packet::new_checked(&data[..40]),
        Err(RtcpError::Truncated { declared: 52, .. })
    ));
    // An RR claiming 3 blocks in a 1-block packet.
    let mut rr = data[52..].to_vec();
    rr[0] = 0x83;
    assert!(matches!(
        Packet::new_checked(&rr[..]),
        Err(RtcpError::BlocksTruncated { count: 3, .. })
    ));
    // Padding longer than the packet.
    let bad_pad = [0xa0u8, 201, 0, 1, 0, 0, 0, 9];
    assert!(matches!(
        Packet::new_checked(&bad_pad[..]),
        Err(RtcpError::BadPadding { padding: 9 })
    ));
    // The compound iterator stops at the first error, after the good packet.
    let mut cut = data.clone();
    cut.truncate(60);
    let items: Vec<_> = compound(&cut).collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok() && items[1].is_err());
}

#[test]
fn never_panics_on_any_prefix_or_flip() {
    let data = sr_rr();
    for n in 0..data.len() {
        for p in compound(&data[..n]).flatten() {
            let _ = (
                p.sender_info(),
                p.report_blocks().count(),
                p.xr_blocks().count(),
            );
        }
    }
    for i in 0..data.len() {
        for bit in 0..8 {
            let mut d = data.clone();
            d[i] ^= 1 << bit;
            for p in compound(&d).flatten() {
                let _ = (
                    p.sender_info(),
                    p.report_blocks().count(),
                    p.xr_blocks().count(),
                );
                for b in p.xr_blocks() {
                    let _ = VoipMetrics::parse(b.content);
                }
            }
        }
    }
    assert!(looks_like_rtcp(&data));
    assert!(!looks_like_rtcp(&[0x80, 0x00, 0, 1]));
}
