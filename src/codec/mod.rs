//! Audio decoders: RTP payloads to 16-bit mono PCM, one decoder per RTP leg.
//!
//! The core ([`crate::rtp::codec`]) names each payload's [`Format`]; the
//! recorder thread asks [`decoder`] for a decoder and keeps it for the leg, so
//! stateful codecs (ADPCM, G.722, Opus) see every packet of their stream in
//! order. Decoders come from mature libraries (libopus, SpanDSP, bcg729,
//! opencore-amr, libspeex) except where the format is a table or a byte swap
//! (G.711, L16).

mod amr;
mod dvi4;
mod g711;
mod g722;
mod g726;
mod g729;
mod gsm;
mod l16;
pub mod ogg_opus;
mod opus;
pub mod rfc4867;
mod spandsp;
mod speex;
#[cfg(test)]
mod testutil;

use thiserror::Error;

pub use crate::rtp::codec::{Codec, Format};

/// Why a payload gave no audio.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The payload's length or framing is not one the codec allows.
    #[error("{codec} payload of {len} bytes is malformed")]
    Malformed { codec: &'static str, len: usize },
    /// The library refused the payload.
    #[error("{codec} decoder failed with code {code}")]
    Library { codec: &'static str, code: i32 },
}

impl DecodeError {
    /// Label for the drop counter.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Malformed { .. } => "codec_malformed_payload",
            DecodeError::Library { .. } => "codec_decoder_error",
        }
    }
}

/// Why no decoder could be made for a format.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    #[error("audio codec {name} is not supported for recording")]
    Unsupported { name: &'static str },
    #[error("audio codec {name} at {clock_rate} Hz with {channels} channels is not supported")]
    BadParameters {
        name: &'static str,
        clock_rate: u32,
        channels: u8,
    },
    #[error("the {name} decoder could not be created (code {code})")]
    Library { name: &'static str, code: i32 },
}

/// One leg's decoder. Output is mono at [`Decoder::rate`]; stereo streams are
/// mixed down, since each leg is one channel of the recording.
pub trait Decoder: Send {
    /// Output sample rate in Hz.
    fn rate(&self) -> u32;

    /// Decodes one RTP payload, appending its samples to `out`. On error
    /// nothing is appended.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), DecodeError>;

    /// Appends `samples` samples standing in for lost packets: the codec's
    /// packet-loss concealment where it has one, silence otherwise.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        out.resize(out.len() + samples, 0);
    }

    /// Appends `samples` samples for the packet lost just before `next`,
    /// using redundancy `next` carries (Opus in-band FEC); concealment by default.
    fn recover(&mut self, next: &[u8], samples: usize, out: &mut Vec<i16>) {
        let _ = next;
        self.conceal(samples, out);
    }
}

/// A decoder for `format`, producing audio at `rate` when the codec can
/// (Opus decodes at 8, 12, 16, 24 or 48 kHz) and at its own rate otherwise.
pub fn decoder(format: &Format, rate: u32) -> Result<Box<dyn Decoder>, CodecError> {
    fn boxed<D: Decoder + 'static>(d: D) -> Box<dyn Decoder> {
        Box::new(d)
    }
    match format.codec {
        Codec::Pcmu | Codec::Pcma => Ok(Box::new(g711::G711(format.codec))),
        Codec::L16 => l16::L16::new(format).map(boxed),
        Codec::G722 => g722::new(format),
        Codec::G726 { .. } => g726::new(format),
        Codec::Gsm => gsm::new(format),
        Codec::Dvi4 => dvi4::new(format),
        Codec::G729 => g729::G729::new(format).map(boxed),
        Codec::Opus => opus::Opus::new(format, rate).map(boxed),
        Codec::Amr => amr::Amr::new(format, rfc4867::Band::Narrow).map(boxed),
        Codec::AmrWb => amr::Amr::new(format, rfc4867::Band::Wide).map(boxed),
        Codec::Speex => speex::Speex::new(format).map(boxed),
        // No maintained iLBC library or crate exists for Debian 12 (README).
        other => Err(CodecError::Unsupported { name: other.name() }),
    }
}

/// Mixes interleaved stereo down to mono, in place of the samples appended
/// to `out` after `start`.
pub(crate) fn downmix_stereo(out: &mut Vec<i16>, start: usize) {
    let Some(tail) = out.get(start..) else {
        return;
    };
    let mono: Vec<i16> = tail
        .chunks_exact(2)
        .map(|p| ((i32::from(p[0]) + i32::from(p[1])) / 2) as i16)
        .collect();
    out.truncate(start);
    out.extend_from_slice(&mono);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every format of SpanDSP and bcg729 with its decoded rate.
    const FORMATS: &[(Codec, u32, u32)] = &[
        (Codec::G722, 8000, 16000),
        (
            Codec::G726 {
                kbps: 16,
                aal2: false,
            },
            8000,
            8000,
        ),
        (
            Codec::G726 {
                kbps: 24,
                aal2: true,
            },
            8000,
            8000,
        ),
        (
            Codec::G726 {
                kbps: 32,
                aal2: false,
            },
            8000,
            8000,
        ),
        (
            Codec::G726 {
                kbps: 40,
                aal2: true,
            },
            8000,
            8000,
        ),
        (Codec::Gsm, 8000, 8000),
        (Codec::Dvi4, 8000, 8000),
        (Codec::Dvi4, 11025, 11025),
        (Codec::G729, 8000, 8000),
    ];

    /// Pseudo-random payloads of every length up to 300 bytes, and losses
    /// between them, through each decoder (what the `codec_payload` fuzz
    /// target does without end): decoded or refused, and a refusal appends
    /// nothing. Payloads from the static table's wrong codec (stereo, a
    /// clock the codec does not have) make no decoder.
    #[test]
    fn garbage_is_decoded_or_refused() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        for &(codec, clock, rate) in FORMATS {
            let mut dec = decoder(&Format::plain(codec, clock), 48000).unwrap();
            assert_eq!(dec.rate(), rate, "{codec:?}");
            let mut out = Vec::new();
            let (mut ok, mut refused) = (0, 0);
            for len in 0..300 {
                let payload: Vec<u8> = (0..len).map(|_| next()).collect();
                let before = out.len();
                match dec.decode(&payload, &mut out) {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        assert_eq!(out.len(), before, "{codec:?}: {e}");
                        assert_eq!(e.reason(), "codec_malformed_payload");
                        refused += 1;
                    }
                }
                if len % 50 == 0 {
                    let before = out.len();
                    dec.conceal(160, &mut out);
                    assert_eq!(out.len(), before + 160, "{codec:?} concealment");
                }
            }
            assert!(ok > 0, "{codec:?} decoded nothing");
            // G.722 and G.726 at 16 and 32 kbit/s take any whole bytes.
            let framed = !matches!(codec, Codec::G722 | Codec::G726 { kbps: 16 | 32, .. });
            assert_eq!(refused > 0, framed, "{codec:?} refused {refused}");
            let mut stereo = Format::plain(codec, clock);
            stereo.channels = 2;
            assert!(decoder(&stereo, 8000).is_err(), "{codec:?} stereo");
        }
        assert!(decoder(&Format::plain(Codec::G729, 16000), 16000).is_err());
        assert!(decoder(&Format::plain(Codec::Gsm, 16000), 16000).is_err());
    }
}
