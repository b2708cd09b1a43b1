//! The MOS histogram: one observation per finished answered call that
//! carried RTP, its worse direction's E-model MOS-CQ.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Upper bounds: the ITU-T G.107 Annex B satisfaction bands (R 50/60/70/80/90
/// ≈ MOS 2.6/3.1/3.6/4.0/4.3) plus the finer steps near the top, where VoIP
/// calls are.
pub const BOUNDS: [f64; 9] = [2.6, 3.1, 3.6, 3.8, 4.0, 4.1, 4.2, 4.3, 4.4];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MosHistogram {
    /// Per bucket of `BOUNDS`, then the +Inf one; not cumulative.
    pub counts: [u64; BOUNDS.len() + 1],
    pub sum: f64,
    pub count: u64,
}

impl MosHistogram {
    pub fn observe(&mut self, mos: f64) {
        if !mos.is_finite() {
            return;
        }
        let i = BOUNDS
            .iter()
            .position(|b| mos <= *b)
            .unwrap_or(BOUNDS.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += mos;
        self.count += 1;
    }
}

pub(super) fn encode_mos(
    enc: &mut DescriptorEncoder<'_>,
    h: &MosHistogram,
) -> Result<(), fmt::Error> {
    let buckets: Vec<(f64, u64)> = BOUNDS
        .iter()
        .copied()
        .chain([f64::INFINITY])
        .zip(h.counts.iter().copied())
        .collect();
    enc.encode_descriptor(
        "call_mos",
        "Finished answered calls with RTP by MOS-CQ (ITU-T G.107 E-model, worse direction).",
        None,
        MetricType::Histogram,
    )?
    .encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_buckets() {
        let mut h = MosHistogram::default();
        for m in [4.409, 4.41, 1.0, 3.6, 3.61, f64::NAN] {
            h.observe(m);
        }
        assert_eq!(h.count, 5);
        assert_eq!(h.counts[0], 1); // 1.0 ≤ 2.6
        assert_eq!(h.counts[2], 1); // 3.6 ≤ 3.6
        assert_eq!(h.counts[3], 1); // 3.61 ≤ 3.8
        assert_eq!(h.counts[8], 0);
        assert_eq!(h.counts[9], 2); // 4.409 and 4.41: +Inf
        assert!((h.sum - (4.409 + 4.41 + 1.0 + 3.6 + 3.61)).abs() < 1e-9);
    }
}
