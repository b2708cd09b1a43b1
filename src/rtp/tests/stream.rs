use super::*;

#[derive(Debug, Clone, PartialEq)]
struct Out {
    ssrc: u32,
    ext_seq: u64,
    ext_ts: u64,
    changed: bool,
    payload: Vec<u8>,
}

struct Harness {
    s: RtpStream,
    out: Vec<Out>,
    now: i64,
}

impl Harness {
    fn new(cfg: StreamConfig) -> Self {
        Harness {
            s: RtpStream::new(cfg),
            out: Vec::new(),
            now: 1_700_000_000_000_000,
        }
    }
    fn push(&mut self, ssrc: u32, seq: u16, ts: u32) {
        self.push_at(ssrc, seq, ts, 0);
    }
    /// `dt_us` advances capture time before the packet.
    fn push_at(&mut self, ssrc: u32, seq: u16, ts: u32, dt_us: i64) {
        self.now += dt_us;
        let payload = seq.to_be_bytes();
        let hdr = RtpRepr {
            pt: PayloadType(0),
            marker: false,
            seq: SeqNum(seq),
            ts,
            ssrc: Ssrc(ssrc),
            payload: &payload,
        };
        let out = &mut self.out;
        self.s
            .push(Timestamp(self.now), &hdr, &mut |o| out.push(own(o)));
    }
    fn flush(&mut self, dt_us: i64, force: bool) {
        self.now += dt_us;
        let out = &mut self.out;
        self.s
            .flush(Timestamp(self.now), force, &mut |o| out.push(own(o)));
    }
    fn seqs(&self) -> Vec<u64> {
        self.out.iter().map(|o| o.ext_seq).collect()
    }
}

fn own(o: Ordered<'_>) -> Out {
    Out {
        ssrc: o.ssrc.0,
        ext_seq: o.ext_seq,
        ext_ts: o.ext_ts,
        changed: o.ssrc_changed,
        payload: o.payload.to_vec(),
    }
}

fn ts(seq: u16) -> u32 {
    u32::from(seq) * 160
}

#[test]
fn in_order_after_probation() {
    let mut h = Harness::new(StreamConfig::default());
    h.push(7, 10, ts(10));
    assert!(h.out.is_empty(), "first packet waits for probation");
    for seq in 11..20 {
        h.push_at(7, seq, ts(seq), 20_000);
    }
    assert_eq!(h.seqs(), (10..20).collect::<Vec<_>>());
    assert!(h.out[0].changed);
    assert!(h.out[1..].iter().all(|o| !o.changed));
    assert_eq!(h.out[3].ext_ts, 13 * 160);
    assert_eq!(h.out[3].payload, 13u16.to_be_bytes());
    let st = h.s.stats();
    assert_eq!((st.received, st.released, st.lost), (10, 10, 0));
    assert_eq!(st.ssrc_changes, 0);
    assert!(st.jitter < 1.0, "steady 20 ms pacing: jitter {}", st.jitter);
}

#[test]
fn reorder_within_window() {
    let mut h = Harness::new(StreamConfig::default());
    for seq in [1, 2, 3, 5, 6, 4, 7, 9, 8, 10] {
        h.push_at(1, seq, ts(seq), 20_000);
    }
    assert_eq!(h.seqs(), (1..=10).collect::<Vec<_>>());
    let st = h.s.stats();
    assert_eq!(st.reordered, 2);
    assert_eq!(st.lost, 0);
    assert_eq!(h.s.buffered(), 0);
}

#[test]
fn loss_leaves_gap_after_delay() {
    let mut h = Harness::new(StreamConfig::default());
    for seq in [1, 2, 3, 6, 7] {
        h.push_at(1, seq, ts(seq), 20_000);
    }
    assert_eq!(h.seqs(), vec![1, 2, 3]);
    // Still inside the 100 ms reorder delay.
    h.flush(50_000, false);
    assert_eq!(h.seqs(), vec![1, 2, 3]);
    h.flush(60_000, false);
    assert_eq!(h.seqs(), vec![1, 2, 3, 6, 7]);
    assert_eq!(h.out[3].ext_ts, 6 * 160, "the gap shows in ext_ts");
    assert_eq!(h.s.stats().lost, 2);
    // The lost packet arriving now is late.
    h.push_at(1, 4, ts(4), 1000);
    assert_eq!(h.s.stats().late_dropped, 1);
    h.push_at(1, 8, ts(8), 1000);
    assert_eq!(h.seqs(), vec![1, 2, 3, 6, 7, 8]);
}

#[test]
fn window_overrun_releases_oldest() {
    let cfg = StreamConfig {
        reorder_window: 4,
        max_reorder_delay: Duration::from_secs(10),
        ..StreamConfig::default()
    };
    let mut h = Harness::new(cfg);
    for seq in [1, 2, 4, 5, 6] {
        h.push(1, seq, ts(seq));
    }
    assert_eq!(h.seqs(), vec![1, 2]);
    h.push(1, 7, ts(7));
    assert_eq!(h.seqs(), vec![1, 2, 4, 5, 6, 7]);
    assert_eq!(h.s.stats().lost, 1);
    // A far jump (< MAX_DROPOUT) flushes everything before it.
    h.push(1, 9, ts(9));
    h.push(1, 100, ts(100));
    assert_eq!(h.seqs(), vec![1, 2, 4, 5, 6, 7, 9]);
    h.flush(0, true);
    assert_eq!(h.seqs(), vec![1, 2, 4, 5, 6, 7, 9, 100]);
    assert_eq!(h.s.stats().lost, 1 + 1 + 90);
}

#[test]
fn duplicates_dropped() {
    let mut h = Harness::new(StreamConfig::default());
    for seq in [1, 2, 2, 3, 5, 5, 3, 1, 4, 4] {
        h.push(1, seq, ts(seq));
    }
    assert_eq!(h.seqs(), vec![1, 2, 3, 4, 5]);
    let st = h.s.stats();
    assert_eq!(st.duplicates, 5);
    assert_eq!(st.late_dropped, 0);
}

#[test]
fn sequence_wrap() {
    let mut h = Harness::new(StreamConfig::default());
    let seqs = [65533u16, 65534, 65535, 1, 0, 2, 3];
    for s in seqs {
        h.push(1, s, u32::from(s.wrapping_sub(65533)) * 160);
    }
    assert_eq!(h.seqs(), (65533..65540).collect::<Vec<_>>());
    assert_eq!(h.out[6].ext_ts, 6 * 160);
    assert_eq!(h.s.stats().reordered, 1);
}

#[test]
fn timestamp_wrap() {
    let mut h = Harness::new(StreamConfig::default());
    let base = u32::MAX - 320 + 1;
    for i in 0..6u16 {
        h.push(1, 100 + i, base.wrapping_add(u32::from(i) * 160));
    }
    let ts: Vec<u64> = h.out.iter().map(|o| o.ext_ts).collect();
    let b = u64::from(base);
    assert_eq!(ts, (0..6).map(|i| b + i * 160).collect::<Vec<_>>());
    assert!(ts[5] > u64::from(u32::MAX));
}

#[test]
fn ssrc_change_goes_through_probation() {
    let mut h = Harness::new(StreamConfig::default());
    for seq in 1..=5 {
        h.push(0xA, seq, ts(seq));
    }
    // Reordered tail of A still in the window when B appears.
    h.push(0xA, 7, ts(7));
    h.push(0xB, 5000, 90_000);
    assert_eq!(h.out.len(), 5);
    h.push(0xB, 5001, 90_160);
    h.push(0xB, 5002, 90_320);
    let got: Vec<(u32, u64, bool)> = h
        .out
        .iter()
        .map(|o| (o.ssrc, o.ext_seq, o.changed))
        .collect();
    assert_eq!(
        got,
        vec![
            (0xA, 1, true),
            (0xA, 2, false),
            (0xA, 3, false),
            (0xA, 4, false),
            (0xA, 5, false),
            (0xA, 7, false),
            (0xB, 5000, true),
            (0xB, 5001, false),
            (0xB, 5002, false),
        ]
    );
    assert_eq!(h.out[6].ext_ts, 90_000);
    assert_eq!(h.s.ssrc(), Some(Ssrc(0xB)));
    let st = h.s.stats();
    assert_eq!(st.ssrc_changes, 1);
    assert_eq!(st.probation_dropped, 0);
    // A's stragglers now look like a new candidate; lone ones never validate.
    h.push(0xA, 8, ts(8));
    h.push(0xB, 5003, 90_480);
    h.flush(0, true);
    assert_eq!(h.s.ssrc(), Some(Ssrc(0xB)));
    assert_eq!(h.s.stats().probation_dropped, 1);
}

#[test]
fn probation_resets_on_gap_and_lone_packets_never_validate() {
    let cfg = StreamConfig {
        probation: 3,
        ..StreamConfig::default()
    };
    let mut h = Harness::new(cfg);
    h.push(9, 10, 0);
    h.push(9, 12, 320);
    h.push(9, 13, 480);
    assert!(h.out.is_empty());
    h.push(9, 14, 640);
    assert_eq!(h.seqs(), vec![12, 13, 14]);
    assert_eq!(h.s.stats().probation_dropped, 1);

    let mut lone = Harness::new(StreamConfig::default());
    lone.push(3, 1, 0);
    lone.push(4, 1, 0);
    lone.push(5, 1, 0);
    lone.flush(0, true);
    assert!(lone.out.is_empty());
    assert_eq!(lone.s.stats().probation_dropped, 3);

    let mut quick = Harness::new(StreamConfig {
        probation: 0,
        ..StreamConfig::default()
    });
    quick.push(3, 1, 0);
    assert_eq!(quick.seqs(), vec![1]);
}

#[test]
fn sequence_jump_is_restart_when_confirmed() {
    let mut h = Harness::new(StreamConfig::default());
    for seq in 1..=3 {
        h.push(1, seq, ts(seq));
    }
    // A lone stray far away is dropped.
    h.push(1, 30_000, 1);
    h.push(1, 4, ts(4));
    assert_eq!(h.seqs(), vec![1, 2, 3, 4]);
    assert_eq!(h.s.stats().jump_dropped, 1);
    // Two in a row far away: the sender restarted; nothing of it is lost.
    h.push(1, 40_000, 8000);
    h.push(1, 40_001, 8160);
    h.push(1, 40_002, 8320);
    let tail: Vec<(u64, bool)> = h.out[4..]
        .iter()
        .map(|o| (o.ext_seq & 0xffff, o.changed))
        .collect();
    assert_eq!(tail, vec![(40_000, true), (40_001, false), (40_002, false)]);
    assert!(h.out[4].ext_seq > h.out[3].ext_seq);
    assert_eq!(h.s.stats().restarts, 1);
    assert_eq!(h.s.stats().lost, 0);
}

#[test]
fn bounded_under_garbage() {
    let cfg = StreamConfig {
        reorder_window: 8,
        ..StreamConfig::default()
    };
    let mut h = Harness::new(cfg);
    let mut x: u32 = 0xdead_beef;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for i in 0..20_000u32 {
        let r = rnd();
        let ssrc = if r % 50 == 0 { r } else { 1 };
        let seq = if r % 7 == 0 {
            (r >> 8) as u16
        } else {
            (i + (r % 5)) as u16
        };
        h.push_at(ssrc, seq, rnd(), i64::from(r % 40_000));
        assert!(h.s.buffered() <= 8);
    }
    h.flush(0, true);
    assert_eq!(h.s.buffered(), 0);
    let st = h.s.stats();
    assert!(st.released > 0 && st.released <= st.received);
    // Within one SSRC run, output is strictly increasing.
    for w in h.out.windows(2) {
        if !w[1].changed {
            assert!(w[1].ext_seq > w[0].ext_seq, "{:?}", w);
        }
    }
}
