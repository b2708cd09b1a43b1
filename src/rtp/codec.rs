//! Payload types to codecs, and ITU-T G.711 µ-law / A-law.
//!
//! Decoding is a lookup in 256-entry tables built at compile time, so the
//! per-sample cost on the recording path is one load.

use serde::Serialize;

use super::packet::PayloadType;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    Pcmu,
    Pcma,
    /// RFC 4733 DTMF/tones.
    TelephoneEvent,
    /// RFC 3389 comfort noise (static pt 13 or `CN`): carries no samples we record.
    Comfort,
    /// Anything else, with its payload type.
    Unsupported(PayloadType),
}

impl Codec {
    /// Stable name, as used in SDP rtpmap where one exists.
    pub fn name(&self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::TelephoneEvent => "telephone-event",
            Codec::Comfort => "CN",
            Codec::Unsupported(_) => "unsupported",
        }
    }

    /// Audio sample rate for the codecs we decode.
    pub fn sample_rate(&self) -> Option<u32> {
        match self {
            Codec::Pcmu | Codec::Pcma => Some(8000),
            _ => None,
        }
    }

    pub fn is_g711(&self) -> bool {
        matches!(self, Codec::Pcmu | Codec::Pcma)
    }
}

/// Resolves a payload type, using the SDP `a=rtpmap` name and clock rate when
/// known (they win over the static table, as RFC 3551 allows remapping) and
/// the RFC 3551 static assignments otherwise.
pub fn codec_for(pt: PayloadType, encoding_name: Option<&str>, clock_rate: Option<u32>) -> Codec {
    let rate_ok = |want: u32| clock_rate.is_none_or(|r| r == want);
    match encoding_name {
        Some(name) => {
            if name.eq_ignore_ascii_case("PCMU") && rate_ok(8000) {
                Codec::Pcmu
            } else if name.eq_ignore_ascii_case("PCMA") && rate_ok(8000) {
                Codec::Pcma
            } else if name.eq_ignore_ascii_case("telephone-event") {
                Codec::TelephoneEvent
            } else if name.eq_ignore_ascii_case("CN") {
                Codec::Comfort
            } else {
                Codec::Unsupported(pt)
            }
        }
        None => match pt.0 {
            0 if rate_ok(8000) => Codec::Pcmu,
            8 if rate_ok(8000) => Codec::Pcma,
            13 => Codec::Comfort,
            _ => Codec::Unsupported(pt),
        },
    }
}

const fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let t = ((((u & 0x0f) as i32) << 3) + 0x84) << ((u & 0x70) >> 4);
    if u & 0x80 != 0 {
        (0x84 - t) as i16
    } else {
        (t - 0x84) as i16
    }
}

const fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = ((a & 0x0f) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => t = (t + 0x108) << (seg - 1),
    }
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_decode(i as u8)
        } else {
            ulaw_decode(i as u8)
        };
        i += 1;
    }
    table
}

static ULAW_TABLE: [i16; 256] = build_table(false);
static ALAW_TABLE: [i16; 256] = build_table(true);

#[inline]
pub fn ulaw_to_linear(b: u8) -> i16 {
    ULAW_TABLE[b as usize]
}

#[inline]
pub fn alaw_to_linear(b: u8) -> i16 {
    ALAW_TABLE[b as usize]
}

/// Appends the decoded samples of a G.711 payload to `out`.
/// Returns false (appending nothing) if `codec` is not G.711.
pub fn decode_g711(codec: Codec, payload: &[u8], out: &mut Vec<i16>) -> bool {
    let table = match codec {
        Codec::Pcmu => &ULAW_TABLE,
        Codec::Pcma => &ALAW_TABLE,
        _ => return false,
    };
    out.extend(payload.iter().map(|&b| table[b as usize]));
    true
}

/// G.711 µ-law encoder (the classic Sun reference algorithm on 16-bit input).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let x = sample as i32;
    let sign: u8 = if x < 0 { 0x80 } else { 0 };
    let magnitude = x.abs().min(CLIP) + BIAS;
    // magnitude is in 132..=32767, so the segment is the top set bit above bit 7.
    let exponent = (31 - ((magnitude >> 7) as u32).leading_zeros()).min(7) as u8;
    let mantissa = ((magnitude >> (exponent + 3)) & 0x0f) as u8;
    !(sign | (exponent << 4) | mantissa)
}

/// G.711 A-law encoder (Sun reference algorithm, 13-bit magnitude).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut pcm = (sample as i32) >> 3;
    let mask: u8 = if pcm >= 0 {
        0xd5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    // Segment ends 0x1f, 0x3f, 0x7f, …, 0xfff: the segment is how far past 5 bits the value reaches.
    let seg = (32 - (pcm as u32 >> 5).leading_zeros()) as i32;
    if seg >= 8 {
        return 0x7f ^ mask;
    }
    let mantissa = (if seg < 2 { pcm >> 1 } else { pcm >> seg }) & 0x0f;
    (((seg << 4) | mantissa) as u8) ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0xfe), 8);
        assert_eq!(ulaw_to_linear(0x7e), -8);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
    }

    #[test]
    fn tables_match_const_fns_and_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(ulaw_to_linear(b), ulaw_decode(b));
            assert_eq!(alaw_to_linear(b), alaw_decode(b));
            // µ-law has two zeros (0x7f and 0xff); the encoder picks 0xff.
            if b != 0x7f {
                assert_eq!(linear_to_ulaw(ulaw_to_linear(b)), b, "ulaw {b:#x}");
            }
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "alaw {b:#x}");
        }
    }

    #[test]
    fn encoders_are_monotonic_and_close() {
        let mut prev_u = i16::MIN;
        let mut prev_a = i16::MIN;
        for x in i16::MIN..=i16::MAX {
            let u = ulaw_to_linear(linear_to_ulaw(x));
            let a = alaw_to_linear(linear_to_alaw(x));
            assert!(u >= prev_u && a >= prev_a, "not monotonic at {x}");
            prev_u = u;
            prev_a = a;
            // Quantisation error stays within half the largest step (1024 for µ-law, A-law).
            assert!((u as i32 - x as i32).abs() <= 1024 + 132, "ulaw {x} -> {u}");
            assert!((a as i32 - x as i32).abs() <= 1024, "alaw {x} -> {a}");
        }
    }

    #[test]
    fn resolves_codecs() {
        assert_eq!(codec_for(PayloadType(0), None, None), Codec::Pcmu);
        assert_eq!(codec_for(PayloadType(8), None, Some(8000)), Codec::Pcma);
        assert_eq!(codec_for(PayloadType(13), None, None), Codec::Comfort);
        assert_eq!(
            codec_for(PayloadType(9), None, None),
            Codec::Unsupported(PayloadType(9))
        );
        assert_eq!(
            codec_for(PayloadType(101), Some("telephone-event"), Some(8000)),
            Codec::TelephoneEvent
        );
        assert_eq!(
            codec_for(PayloadType(96), Some("TELEPHONE-EVENT"), Some(48000)),
            Codec::TelephoneEvent
        );
        assert_eq!(
            codec_for(PayloadType(97), Some("pcmu"), Some(8000)),
            Codec::Pcmu
        );
        assert_eq!(codec_for(PayloadType(98), Some("PCMA"), None), Codec::Pcma);
        assert_eq!(
            codec_for(PayloadType(0), Some("PCMU"), Some(16000)),
            Codec::Unsupported(PayloadType(0))
        );
        assert_eq!(
            codec_for(PayloadType(111), Some("opus"), Some(48000)),
            Codec::Unsupported(PayloadType(111))
        );
        assert_eq!(
            codec_for(PayloadType(0), Some("G722"), Some(8000)),
            Codec::Unsupported(PayloadType(0))
        );
    }

    #[test]
    fn decodes_payloads() {
        let mut out = vec![1];
        assert!(decode_g711(Codec::Pcmu, &[0xff, 0x00], &mut out));
        assert!(decode_g711(Codec::Pcma, &[0xd5], &mut out));
        assert_eq!(out, vec![1, 0, -32124, 8]);
        assert!(!decode_g711(Codec::Comfort, &[1, 2], &mut out));
        assert_eq!(out.len(), 4);
    }
}
