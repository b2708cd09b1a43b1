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
    /// G.722: 16 kHz audio on an 8 kHz RTP clock (RFC 3551 §4.5.2).
    G722,
    /// G.726 at `kbps` (16, 24, 32, 40). `aal2`: ITU-T I.366.2 bit packing
    /// (`AAL2-G726-*`); otherwise the RFC 3551 packing (`G726-*`).
    G726 {
        kbps: u8,
        aal2: bool,
    },
    /// IMA ADPCM (RFC 3551 §4.5.1), at its RTP clock rate.
    Dvi4,
    /// Linear 16-bit big-endian PCM.
    L16,
    /// GSM 06.10 full rate.
    Gsm,
    /// G.729 / G.729A (with annex B silence frames).
    G729,
    Ilbc,
    Speex,
    /// AMR narrowband (RFC 4867).
    Amr,
    /// AMR wideband (RFC 4867).
    AmrWb,
    /// RFC 7587.
    Opus,
    /// RFC 4733 DTMF/tones.
    TelephoneEvent,
    /// RFC 3389 comfort noise (static pt 13 or `CN`): carries no samples we record.
    Comfort,
    /// A codec we know by name but cannot record (G.723.1, LPC, …), or an
    /// unknown one, with its payload type.
    Unsupported(PayloadType),
}

impl Codec {
    /// Stable name, as used in SDP rtpmap where one exists.
    pub fn name(&self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::G726 { kbps, aal2 } => match (kbps, aal2) {
                (16, false) => "G726-16",
                (24, false) => "G726-24",
                (32, false) => "G726-32",
                (40, false) => "G726-40",
                (16, true) => "AAL2-G726-16",
                (24, true) => "AAL2-G726-24",
                (32, true) => "AAL2-G726-32",
                _ => "AAL2-G726-40",
            },
            Codec::Dvi4 => "DVI4",
            Codec::L16 => "L16",
            Codec::Gsm => "GSM",
            Codec::G729 => "G729",
            Codec::Ilbc => "iLBC",
            Codec::Speex => "speex",
            Codec::Amr => "AMR",
            Codec::AmrWb => "AMR-WB",
            Codec::Opus => "opus",
            Codec::TelephoneEvent => "telephone-event",
            Codec::Comfort => "CN",
            Codec::Unsupported(_) => "unsupported",
        }
    }

    /// Whether this codec carries audio we decode.
    pub fn is_audio(&self) -> bool {
        !matches!(
            self,
            Codec::TelephoneEvent | Codec::Comfort | Codec::Unsupported(_)
        )
    }

    pub fn is_g711(&self) -> bool {
        matches!(self, Codec::Pcmu | Codec::Pcma)
    }
}

/// A payload type's full description: what the decoder needs besides the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Format {
    pub codec: Codec,
    /// The RTP clock rate (48000 for Opus, 8000 for G.722).
    pub clock_rate: u32,
    /// Channels in the RTP stream (L16 and Opus may be stereo).
    pub channels: u8,
    /// AMR/AMR-WB `octet-align=1`; the default is bandwidth-efficient.
    pub octet_aligned: bool,
    /// iLBC `mode=` (20 or 30 ms frames); 0 when not given.
    pub frame_ms: u8,
}

impl Format {
    /// The format of a static payload type or a bare codec: no fmtp.
    pub fn plain(codec: Codec, clock_rate: u32) -> Format {
        Format {
            codec,
            clock_rate,
            channels: 1,
            octet_aligned: false,
            frame_ms: 0,
        }
    }

    /// The audio rate this format is best recorded at: wideband codecs at
    /// 16 kHz. Opus is decoded at 16 kHz too: VoIP Opus carries speech, whose
    /// energy above 8 kHz a CRM listener does not miss, and 48 kHz would triple
    /// every file. L16 and DVI4 keep their own rate, up to 48 kHz.
    pub fn recording_rate(&self) -> Option<u32> {
        Some(match self.codec {
            Codec::G722 | Codec::AmrWb | Codec::Opus => 16000,
            Codec::Speex => self.clock_rate.clamp(8000, 32000),
            Codec::L16 | Codec::Dvi4 => self.clock_rate.clamp(8000, 48000),
            c if c.is_audio() => 8000,
            _ => return None,
        })
    }
}

/// A point on a recording's timeline: ticks of 48 kHz after the answer.
/// 48 kHz is a multiple of every usual VoIP rate (8, 12, 16, 24 kHz), so
/// converting a packet's place to any of them is exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MediaTime(pub u64);

impl MediaTime {
    pub const RATE: u32 = 48_000;

    /// `samples` at `rate` after the answer (rounded to the nearest tick).
    pub fn from_samples(samples: u64, rate: u32) -> MediaTime {
        let rate = u128::from(rate.max(1));
        MediaTime(((u128::from(samples) * u128::from(Self::RATE) + rate / 2) / rate) as u64)
    }

    /// This point as a sample index at `rate` (rounded to the nearest sample).
    pub fn samples(self, rate: u32) -> u64 {
        let r = u128::from(Self::RATE);
        ((u128::from(self.0) * u128::from(rate) + r / 2) / r) as u64
    }
}

/// Resolves a payload type, using the SDP `a=rtpmap` name and clock rate when
/// known (they win over the static table, as RFC 3551 allows remapping) and
/// the RFC 3551 static assignments otherwise.
pub fn codec_for(pt: PayloadType, encoding_name: Option<&str>, clock_rate: Option<u32>) -> Codec {
    let rate_ok = |want: u32| clock_rate.is_none_or(|r| r == want);
    match encoding_name {
        Some(name) => match codec_by_name(name) {
            Some(c @ (Codec::Pcmu | Codec::Pcma | Codec::G722 | Codec::G729 | Codec::Gsm))
                if rate_ok(8000) =>
            {
                c
            }
            Some(c @ Codec::G726 { .. }) if rate_ok(8000) => c,
            Some(Codec::Opus) if rate_ok(48000) => Codec::Opus,
            Some(Codec::Amr) if rate_ok(8000) => Codec::Amr,
            Some(Codec::AmrWb) if rate_ok(16000) => Codec::AmrWb,
            Some(Codec::Ilbc) if rate_ok(8000) => Codec::Ilbc,
            Some(c @ (Codec::L16 | Codec::Dvi4 | Codec::Speex)) => c,
            Some(c @ (Codec::TelephoneEvent | Codec::Comfort)) => c,
            _ => Codec::Unsupported(pt),
        },
        None => match pt.0 {
            0 if rate_ok(8000) => Codec::Pcmu,
            2 if rate_ok(8000) => Codec::G726 {
                kbps: 32,
                aal2: false,
            },
            3 if rate_ok(8000) => Codec::Gsm,
            5 | 6 | 16 | 17 => Codec::Dvi4,
            8 if rate_ok(8000) => Codec::Pcma,
            9 if rate_ok(8000) => Codec::G722,
            10 | 11 => Codec::L16,
            13 => Codec::Comfort,
            18 if rate_ok(8000) => Codec::G729,
            _ => Codec::Unsupported(pt),
        },
    }
}

/// The codec an rtpmap encoding name stands for, when it is one we know.
fn codec_by_name(name: &str) -> Option<Codec> {
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    Some(if is("PCMU") {
        Codec::Pcmu
    } else if is("PCMA") {
        Codec::Pcma
    } else if is("G722") {
        Codec::G722
    } else if is("G729") || is("G729A") {
        Codec::G729
    } else if is("GSM") {
        Codec::Gsm
    } else if is("DVI4") {
        Codec::Dvi4
    } else if is("L16") {
        Codec::L16
    } else if is("iLBC") {
        Codec::Ilbc
    } else if is("speex") {
        Codec::Speex
    } else if is("AMR") {
        Codec::Amr
    } else if is("AMR-WB") {
        Codec::AmrWb
    } else if is("opus") {
        Codec::Opus
    } else if is("telephone-event") {
        Codec::TelephoneEvent
    } else if is("CN") {
        Codec::Comfort
    } else if is("G721") {
        Codec::G726 {
            kbps: 32,
            aal2: false,
        }
    } else {
        let (rest, aal2) = match name.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("AAL2-") => (name.get(5..)?, true),
            _ => (name, false),
        };
        let kbps = rest
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("G726-"))
            .and(rest.get(5..))?;
        let kbps = match kbps {
            "16" => 16,
            "24" => 24,
            "32" => 32,
            "40" => 40,
            _ => return None,
        };
        Codec::G726 { kbps, aal2 }
    })
}

/// The full format of a payload type from its rtpmap (name, clock, channels)
/// and fmtp; without an rtpmap, the RFC 3551 static assignment.
pub fn format_for(
    pt: PayloadType,
    encoding_name: Option<&str>,
    clock_rate: Option<u32>,
    channels: u8,
    fmtp: Option<&str>,
) -> Format {
    let codec = codec_for(pt, encoding_name, clock_rate);
    let clock_rate = clock_rate.unwrap_or(match (codec, pt.0) {
        (Codec::Opus, _) => 48000,
        (Codec::AmrWb, _) => 16000,
        (_, 6) => 16000,
        (_, 10 | 11) => 44100,
        (_, 16) => 11025,
        (_, 17) => 22050,
        _ => 8000,
    });
    let channels = match (encoding_name, pt.0) {
        (None, 10) => 2,
        _ => channels.max(1),
    };
    let param = |key: &str| {
        fmtp.into_iter()
            .flat_map(|f| f.split(';'))
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim())
    };
    Format {
        codec,
        clock_rate,
        channels,
        octet_aligned: param("octet-align") == Some("1"),
        frame_ms: match param("mode") {
            Some("20") => 20,
            Some("30") => 30,
            _ => 0,
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
        assert_eq!(codec_for(PayloadType(9), None, None), Codec::G722);
        assert_eq!(
            codec_for(PayloadType(4), None, None),
            Codec::Unsupported(PayloadType(4))
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
            Codec::Opus
        );
        assert_eq!(
            codec_for(PayloadType(111), Some("opus"), Some(8000)),
            Codec::Unsupported(PayloadType(111))
        );
        assert_eq!(
            codec_for(PayloadType(0), Some("G722"), Some(8000)),
            Codec::G722
        );
        assert_eq!(
            codec_for(PayloadType(97), Some("AAL2-G726-32"), Some(8000)),
            Codec::G726 {
                kbps: 32,
                aal2: true
            }
        );
        assert_eq!(
            codec_for(PayloadType(97), Some("G726-16"), None),
            Codec::G726 {
                kbps: 16,
                aal2: false
            }
        );
        assert_eq!(
            codec_for(PayloadType(97), Some("G726-17"), None),
            Codec::Unsupported(PayloadType(97))
        );
        assert_eq!(
            codec_for(PayloadType(97), Some("G723"), None),
            Codec::Unsupported(PayloadType(97))
        );
    }

    #[test]
    fn formats_from_rtpmap_and_fmtp() {
        let amr = format_for(
            PayloadType(96),
            Some("AMR"),
            Some(8000),
            1,
            Some("octet-align=1; mode-set=0,2,5,7"),
        );
        assert_eq!(amr.codec, Codec::Amr);
        assert!(amr.octet_aligned);
        let ilbc = format_for(
            PayloadType(97),
            Some("iLBC"),
            Some(8000),
            1,
            Some("mode=30"),
        );
        assert_eq!(ilbc.frame_ms, 30);
        let l16 = format_for(PayloadType(10), None, None, 1, None);
        assert_eq!(
            (l16.codec, l16.clock_rate, l16.channels),
            (Codec::L16, 44100, 2)
        );
        let dvi = format_for(PayloadType(6), None, None, 1, None);
        assert_eq!((dvi.codec, dvi.clock_rate), (Codec::Dvi4, 16000));
        assert_eq!(dvi.recording_rate(), Some(16000));
        let opus = format_for(PayloadType(111), Some("opus"), Some(48000), 2, None);
        assert_eq!((opus.channels, opus.recording_rate()), (2, Some(16000)));
        assert_eq!(
            Format::plain(Codec::G722, 8000).recording_rate(),
            Some(16000)
        );
        assert_eq!(Format::plain(Codec::Comfort, 8000).recording_rate(), None);
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
