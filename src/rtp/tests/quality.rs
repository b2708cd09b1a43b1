use super::*;
use crate::rtp::packet::{PayloadType, RtpRepr, SeqNum, Ssrc};
use crate::rtp::stream::{RtpStream, StreamConfig};

const T0: i64 = 1_700_000_000_000_000;

/// A stream and its accumulator, fed one packet at a time.
struct Leg {
    s: RtpStream,
    q: QualityAcc,
    released: Vec<u64>,
}

impl Leg {
    fn new(clock_rate: u32) -> Self {
        Leg {
            s: RtpStream::new(StreamConfig {
                clock_rate,
                ..StreamConfig::default()
            }),
            q: QualityAcc::default(),
            released: Vec::new(),
        }
    }

    /// Packet `seq` with RTP timestamp `ts`, arriving at `at_us` after T0.
    fn push(&mut self, seq: u16, ts: u32, at_us: i64, counting: bool) {
        if self.q.resumes(counting) {
            self.s.reset_transit();
        }
        let payload = [0u8; 160];
        let hdr = RtpRepr {
            pt: PayloadType(0),
            marker: false,
            seq: SeqNum(seq),
            ts,
            ssrc: Ssrc(7),
            payload: &payload,
        };
        let now = Timestamp(T0 + at_us);
        let out = &mut self.released;
        self.s.push(now, &hdr, &mut |o| out.push(o.ext_seq));
        self.q.observe(self.s.stats(), Some(now), counting);
    }

    /// 20 ms G.711 packets `seqs` in the order given, each arriving on its
    /// own 20 ms tick (so reordered packets arrive late by their delay).
    fn send(&mut self, seqs: &[u16], counting: bool) {
        for (i, &seq) in seqs.iter().enumerate() {
            self.push(seq, u32::from(seq) * 160, i as i64 * 20_000, counting);
        }
    }

    fn report(&mut self) -> DirQuality {
        let out = &mut self.released;
        self.s.flush(Timestamp(T0 + 3_600_000_000), true, &mut |o| {
            out.push(o.ext_seq)
        });
        self.q.report(self.s.stats(), None)
    }
}

#[test]
fn clean_g711_stream() {
    let mut leg = Leg::new(8000);
    let seqs: Vec<u16> = (0..100).collect();
    leg.send(&seqs, true);
    let q = leg.report();
    assert_eq!((q.expected, q.received, q.lost), (100, 100, 0));
    assert_eq!(
        (q.duplicated, q.out_of_order, q.late, q.max_burst),
        (0, 0, 0, 0)
    );
    assert_eq!(q.jitter_ms, 0.0);
    assert_eq!(q.max_gap_ms, 20.0);
    assert_eq!(q.r_factor, Some(93.2));
    assert_eq!(q.mos, Some(4.409));
}

#[test]
fn seeded_loss_runs() {
    // Runs of 1, 2, 3 and 7 missing out of 0..200.
    let dropped: Vec<u16> = [10]
        .into_iter()
        .chain(20..22)
        .chain(30..33)
        .chain(40..47)
        .collect();
    let seqs: Vec<u16> = (0..200).filter(|s| !dropped.contains(s)).collect();
    let mut leg = Leg::new(8000);
    leg.send(&seqs, true);
    let q = leg.report();
    assert_eq!(q.expected, 200);
    assert_eq!(q.received, 187);
    assert_eq!(q.lost, 13);
    assert_eq!(q.loss_pct, 6.5);
    assert_eq!(q.max_burst, 7);
    assert_eq!(
        q.loss_runs,
        LossRunCounts {
            len_1: 1,
            len_2: 1,
            len_3_5: 1,
            len_6_plus: 1,
        }
    );
    // p = 4/187, q = 4/13: BurstR = 1 / (0.02139 + 0.30769) = 3.039.
    assert_eq!(q.burst_ratio, 3.039);
    // Ie_eff = 95 * 6.5 / (6.5/3.0387 + 25.1) = 22.667; R = 70.533.
    let r = q.r_factor.unwrap();
    assert!((r - 70.533).abs() < 0.01, "{r}");
}

#[test]
fn duplicates_reordering_and_late_packets() {
    // 5 twice; 12 after 13; 40 after 60 (beyond the 16-packet window).
    let mut seqs: Vec<u16> = (0..100).filter(|s| *s != 12 && *s != 40).collect();
    let at5 = seqs.iter().position(|s| *s == 5).unwrap();
    seqs.insert(at5 + 1, 5);
    let at13 = seqs.iter().position(|s| *s == 13).unwrap();
    seqs.insert(at13 + 1, 12);
    let at60 = seqs.iter().position(|s| *s == 60).unwrap();
    seqs.insert(at60 + 1, 40);
    let mut leg = Leg::new(8000);
    leg.send(&seqs, true);
    let q = leg.report();
    assert_eq!(q.received, 101);
    assert_eq!(q.duplicated, 1);
    assert_eq!(q.out_of_order, 1);
    assert_eq!(q.late, 1);
    // The late packet was given up: one sequence number never played.
    assert_eq!((q.expected, q.lost, q.max_burst), (100, 1, 1));
}

#[test]
fn only_packets_after_the_answer_count() {
    let mut leg = Leg::new(8000);
    // Early media with a loss, then the answer.
    let early: Vec<u16> = (0..50).filter(|s| *s != 10).collect();
    for (i, &s) in early.iter().enumerate() {
        leg.push(s, u32::from(s) * 160, i as i64 * 20_000, false);
    }
    for s in 50..100u16 {
        leg.push(
            s,
            u32::from(s) * 160,
            5_000_000 + i64::from(s) * 20_000,
            true,
        );
    }
    let q = leg.report();
    assert_eq!((q.expected, q.received, q.lost), (50, 50, 0));
    // The pause before the answer is not a gap of the call.
    assert_eq!(q.max_gap_ms, 20.0);
}

#[test]
fn hold_is_not_a_gap_nor_jitter() {
    let mut leg = Leg::new(8000);
    for s in 0..50u16 {
        leg.push(s, u32::from(s) * 160, i64::from(s) * 20_000, true);
    }
    // Held: the other side's re-INVITE stops counting (see `pause`).
    leg.q.pause();
    // Resumed 10 s later; the sender's clock paused too (timestamps continue).
    for s in 50..100u16 {
        leg.push(
            s,
            u32::from(s) * 160,
            10_000_000 + i64::from(s) * 20_000,
            true,
        );
    }
    let q = leg.report();
    assert_eq!((q.expected, q.lost), (100, 0));
    assert_eq!(q.max_gap_ms, 20.0);
    assert_eq!(q.max_jitter_ms, 0.0);
}

#[test]
fn dtx_silence_is_not_loss() {
    let mut leg = Leg::new(8000);
    for s in 0..50u16 {
        leg.push(s, u32::from(s) * 160, i64::from(s) * 20_000, true);
    }
    // One second of silence: contiguous sequence numbers, the timestamp and
    // the arrival both jump by 8000 samples.
    for s in 50..100u16 {
        let t = u32::from(s) * 160 + 8000;
        leg.push(s, t, 1_000_000 + i64::from(s) * 20_000, true);
    }
    let q = leg.report();
    assert_eq!((q.expected, q.lost, q.max_burst), (100, 0, 0));
    assert_eq!(q.max_gap_ms, 1020.0);
    assert_eq!(q.max_jitter_ms, 0.0);
}

/// Arrivals 20 ms apart with every other packet 4 ms late.
fn jittered(leg: &mut Leg, ts_step: u32) -> f64 {
    for s in 0..200u16 {
        let late = if s % 2 == 1 { 4_000 } else { 0 };
        leg.push(
            s,
            u32::from(s) * ts_step,
            i64::from(s) * 20_000 + late,
            true,
        );
    }
    leg.report().jitter_ms
}

#[test]
fn jitter_is_in_the_payload_clock() {
    let narrow = jittered(&mut Leg::new(8000), 160);
    let mut opus = Leg::new(8000);
    opus.s.set_clock_rate(48_000);
    let wide = jittered(&mut opus, 960);
    // |D| = 4 ms every packet: J converges to 4 ms whatever the clock.
    assert!((narrow - 4.0).abs() < 0.01, "{narrow}");
    assert!((wide - narrow).abs() < 1e-6, "{wide} vs {narrow}");
    // Read with the wrong clock (8 kHz for 48 kHz timestamps) it is nonsense.
    let wrong = jittered(&mut Leg::new(8000), 960);
    assert!(wrong > 50.0, "{wrong}");
}

#[test]
fn a_new_source_keeps_the_counts() {
    let mut leg = Leg::new(8000);
    leg.send(&(0..50).collect::<Vec<_>>(), true);
    // The call's leg replaces its stream for a new source address.
    leg.s = RtpStream::new(StreamConfig::default());
    for s in 1000..1050u16 {
        leg.push(
            s,
            u32::from(s) * 160,
            1_000_000 + i64::from(s - 1000) * 20_000,
            true,
        );
    }
    let q = leg.report();
    assert_eq!((q.expected, q.received, q.lost), (100, 100, 0));
}
