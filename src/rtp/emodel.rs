//! MOS-CQ from the ITU-T G.107 E-model, reduced to what a passive observer
//! of RTP can know: the codec, the packet loss (rate and burstiness) and the
//! one-way delay. Everything else keeps G.107's default values (Table 2),
//! under which R = 93.2 for a G.711 call with no loss and no delay.
//!
//! R = 93.2 - Id - Ie_eff, with
//! Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)  (G.107 §7.6, eq. 7-29)
//! and MOS from R by G.107 Annex B (eq. B-4).

use super::codec::Codec;

/// R with G.107's default values and no delay: Ro - Is - Id(0) - A.
pub const R_DEFAULT: f64 = 93.2;

/// A codec's equipment impairment factor and its packet-loss robustness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    pub ie: f64,
    pub bpl: f64,
    /// False where a value is not from ITU-T G.113 Appendix I but assumed
    /// (see `impairment`); the record does not carry this, the comments do.
    pub from_g113: bool,
}

/// G.113 Appendix I values (Table I.1 for Ie, Table I.3 for Bpl), where it
/// gives them. Where it does not, the assumption is written beside the value.
///
/// Packet-loss concealment: G.113 gives G.711 Bpl = 4.3 without PLC and 25.1
/// with the G.711 Appendix I PLC. Every phone and gateway we record does
/// concealment (and so does our own recorder), so the PLC value is used.
pub fn impairment(codec: Codec) -> Impairment {
    let g113 = |ie, bpl| Impairment {
        ie,
        bpl,
        from_g113: true,
    };
    let assumed = |ie, bpl| Impairment {
        ie,
        bpl,
        from_g113: false,
    };
    match codec {
        // G.113 I.1: Ie 0; I.3: Bpl 25.1 with PLC (4.3 without).
        Codec::Pcmu | Codec::Pcma | Codec::L16 => g113(0.0, 25.1),
        // G.113 I.1: G.729A(+VAD) Ie 11; I.3: Bpl 19.0 (G.729A + VAD). Plain
        // G.729 is Ie 10 but the two cannot be told apart on the wire.
        Codec::G729 => g113(11.0, 19.0),
        // G.113 I.1: 40/32/24/16 kbit/s ADPCM Ie 2/7/25/50. No Bpl: the
        // G.711-without-PLC value 4.3 is assumed (RFC 3551 G.726 has no PLC).
        Codec::G726 { kbps, .. } => assumed(
            match kbps {
                40 => 2.0,
                32 => 7.0,
                24 => 25.0,
                _ => 50.0,
            },
            4.3,
        ),
        // DVI4 is 32 kbit/s IMA ADPCM: the G.726-32 Ie 7 is assumed.
        Codec::Dvi4 => assumed(7.0, 4.3),
        // G.113 I.1: GSM 06.10 full rate Ie 20; no Bpl: assumed like G.729A.
        Codec::Gsm => assumed(20.0, 19.0),
        // G.113 I.1: GSM-EFR / AMR 12.2 Ie 5; Bpl assumed like G.729A.
        Codec::Amr => assumed(5.0, 19.0),
        // Wideband codecs: the narrowband E-model cannot credit the extra
        // band (G.107.1 does, on another scale: G.722-64 has Ie,wb 13, about
        // Ie -2 here); they are scored as at least G.711, with PLC.
        Codec::G722 | Codec::AmrWb | Codec::Opus => assumed(0.0, 25.1),
        // iLBC (RFC 3951) and Speex are not in G.113: assumed like G.729A,
        // a low-rate CELP codec with PLC.
        Codec::Ilbc | Codec::Speex => assumed(11.0, 19.0),
        // G.723.1 6.3 kbit/s (+VAD): G.113 I.1 Ie 15, I.3 Bpl 16.1; also the
        // fallback for other codecs we cannot name.
        Codec::Unsupported(_) | Codec::TelephoneEvent | Codec::Comfort => g113(15.0, 16.1),
    }
}

/// What the E-model is fed for one direction of a call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EModelInput {
    pub impairment: Impairment,
    /// Packet loss probability in percent (0..=100), late discards included.
    pub ppl: f64,
    /// Burst ratio: 1 for random loss, above 1 for bursty loss.
    pub burst_r: f64,
    /// Mouth-to-ear one-way delay Ta in milliseconds.
    pub delay_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EModelScore {
    pub r: f64,
    pub mos: f64,
}

/// G.107 §7.6 eq. 7-29.
pub fn ie_eff(imp: Impairment, ppl: f64, burst_r: f64) -> f64 {
    let ppl = ppl.clamp(0.0, 100.0);
    let burst_r = if burst_r.is_finite() {
        burst_r.max(1.0)
    } else {
        1.0
    };
    if ppl == 0.0 {
        return imp.ie;
    }
    imp.ie + (95.0 - imp.ie) * ppl / (ppl / burst_r + imp.bpl)
}

/// The delay impairment Id for a one-way delay `ta` (ms), with G.107's
/// defaults and echo perfectly cancelled (TELR 65 dB), so that only the
/// "too late" term Idd (G.107 §7.3, eq. 7-27) moves: zero up to 100 ms.
pub fn id_delay(ta: f64) -> f64 {
    if !ta.is_finite() || ta <= 100.0 {
        return 0.0;
    }
    let x = (ta / 100.0).log2();
    let sixth = |v: f64| (1.0 + v.powi(6)).powf(1.0 / 6.0);
    25.0 * (sixth(x) - 3.0 * sixth(x / 3.0) + 2.0)
}

/// G.107 Annex B eq. B-4. The cubic dips just under 1 for 0 < R < 6.5;
/// held at 1 there, the scale's floor.
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6).max(1.0)
    }
}

pub fn score(input: &EModelInput) -> EModelScore {
    let r =
        R_DEFAULT - id_delay(input.delay_ms) - ie_eff(input.impairment, input.ppl, input.burst_r);
    EModelScore {
        r,
        mos: mos_from_r(r),
    }
}

/// G.107 Annex A: BurstR of a two-state Markov loss model, estimated from
/// the counts seen: p = P(loss | last packet arrived) ≈ loss runs / packets
/// received, q = P(arrival | last packet lost) ≈ 1 / mean run length, and
/// BurstR = 1 / (p + q). Random loss gives about 1 (never less: G.107 takes
/// BurstR = 1 for random loss), bursts more.
pub fn burst_ratio(lost: u64, runs: u64, received: u64) -> f64 {
    if lost == 0 || runs == 0 || received == 0 {
        return 1.0;
    }
    let p = runs as f64 / received as f64;
    let q = runs as f64 / lost as f64;
    (1.0 / (p + q)).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn g711_without_loss_is_the_g107_default() {
        let s = score(&EModelInput {
            impairment: impairment(Codec::Pcmu),
            ppl: 0.0,
            burst_r: 1.0,
            delay_ms: 40.0,
        });
        assert!(close(s.r, 93.2, 1e-9), "{s:?}");
        // 1 + 0.035*93.2 + 93.2*33.2*6.8*7e-6 = 4.4093
        assert!(close(s.mos, 4.4093, 1e-4), "{s:?}");
    }

    #[test]
    fn g711_one_percent_random_loss() {
        // With PLC: Ie_eff = 95 * 1 / (1 + 25.1) = 3.6398, R = 89.560,
        // MOS = 1 + 3.1346 + 89.56*29.56*10.44*7e-6 = 4.3281.
        let plc = score(&EModelInput {
            impairment: impairment(Codec::Pcma),
            ppl: 1.0,
            burst_r: 1.0,
            delay_ms: 0.0,
        });
        assert!(close(plc.r, 89.5602, 1e-3), "{plc:?}");
        assert!(close(plc.mos, 4.3281, 1e-3), "{plc:?}");
        // Without PLC (Bpl 4.3): Ie_eff = 95/5.3 = 17.9245, R = 75.2755, MOS 3.8337.
        let bare = Impairment {
            ie: 0.0,
            bpl: 4.3,
            from_g113: true,
        };
        let r = R_DEFAULT - ie_eff(bare, 1.0, 1.0);
        assert!(close(r, 75.2755, 1e-3), "{r}");
        assert!(close(mos_from_r(r), 3.8337, 1e-3), "{}", mos_from_r(r));
    }

    #[test]
    fn g729a_without_and_with_loss() {
        let clean = score(&EModelInput {
            impairment: impairment(Codec::G729),
            ppl: 0.0,
            burst_r: 1.0,
            delay_ms: 0.0,
        });
        // R = 93.2 - 11 = 82.2; MOS = 1 + 2.877 + 82.2*22.2*17.8*7e-6 = 4.1044.
        assert!(close(clean.r, 82.2, 1e-9), "{clean:?}");
        assert!(close(clean.mos, 4.1044, 1e-3), "{clean:?}");
        // 2% random: Ie_eff = 11 + 84 * 2 / (2 + 19) = 19.0, R = 74.2.
        let lossy = score(&EModelInput {
            impairment: impairment(Codec::G729),
            ppl: 2.0,
            burst_r: 1.0,
            delay_ms: 0.0,
        });
        assert!(close(lossy.r, 74.2, 1e-9), "{lossy:?}");
        // 1 + 2.597 + 74.2*14.2*25.8*7e-6 = 3.7873
        assert!(close(lossy.mos, 3.7873, 1e-3), "{lossy:?}");
    }

    #[test]
    fn bursty_loss_hurts_more_than_random() {
        let imp = impairment(Codec::Pcmu);
        let random = ie_eff(imp, 5.0, 1.0);
        let bursty = ie_eff(imp, 5.0, 2.0);
        // 95*5/(5+25.1) = 15.781; 95*5/(2.5+25.1) = 17.210
        assert!(close(random, 15.781, 1e-3), "{random}");
        assert!(close(bursty, 17.210, 1e-3), "{bursty}");
    }

    #[test]
    fn delay_impairment_from_g107() {
        assert_eq!(id_delay(100.0), 0.0);
        // Ta = 200 ms: X = 1; Idd = 25 * (2^(1/6) - 3*(1+3^-6)^(1/6) + 2) = 3.0444.
        assert!(close(id_delay(200.0), 3.0444, 1e-3), "{}", id_delay(200.0));
        // Ta = 400 ms: X = 2; Idd = 25 * (65^(1/6) - 3*(1+(2/3)^6)^(1/6) + 2) = 24.070.
        assert!(close(id_delay(400.0), 24.070, 1e-3), "{}", id_delay(400.0));
    }

    #[test]
    fn mos_is_clamped_and_monotonic() {
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(120.0), 4.5);
        let mut last = 0.0;
        for r in 0..=100 {
            let m = mos_from_r(f64::from(r));
            assert!(m >= last, "R {r}");
            last = m;
        }
    }

    #[test]
    fn burst_ratio_from_runs() {
        // 1% random: 10 runs of 1 in 990 received: p = 0.0101, q = 1 → 0.99 → 1.
        assert_eq!(burst_ratio(10, 10, 990), 1.0);
        // 20 lost in 4 runs of 5, 980 received: p = 4/980, q = 0.2 → 4.90.
        let b = burst_ratio(20, 4, 980);
        assert!(close(b, 1.0 / (4.0 / 980.0 + 0.2), 1e-9) && b > 4.8, "{b}");
        assert_eq!(burst_ratio(0, 0, 100), 1.0);
    }
}
