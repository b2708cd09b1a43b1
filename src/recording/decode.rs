//! The recorder thread's first stage: each call leg's RTP payloads decoded,
//! lost packets concealed, and the audio brought to the call's rate and
//! placed on its timeline.
//!
//! Decoding here rather than in the tracker keeps the packet path cheap and
//! the same for every codec, and gives each leg one decoder that sees its
//! packets in order, which stateful codecs (ADPCM, G.722, Opus) need.

use std::collections::HashMap;

use crate::call::{CallHandle, Side};
use crate::codec::{self, Decoder, Format};
use crate::rtp::codec::MediaTime;

use super::resample::Resample;

/// More lost packets than this in a row are left as silence: concealment
/// past ~100 ms only smears the last sound.
const MAX_CONCEALED_PACKETS: u16 = 5;
/// At most this much audio is synthesised for one loss.
const MAX_CONCEALED_MS: u64 = 120;
/// Open calls tracked; the tracker caps calls well below this.
const MAX_CALLS: usize = 200_000;

/// One RTP payload on its way to the recording.
pub(crate) struct Payload<'a> {
    pub at: MediaTime,
    pub format: Format,
    pub lost: u16,
    /// The rate the tracker suggests for the call, from its SDP.
    pub rate: u32,
    pub bytes: &'a [u8],
}

struct LegDecoder {
    format: Format,
    decoder: Box<dyn Decoder>,
    resample: Option<Resample>,
    /// Where the audio decoded so far ends, in media time.
    end: Option<MediaTime>,
}

#[derive(Default)]
struct CallAudio {
    /// The recording's rate, fixed by the first payload.
    rate: Option<u32>,
    legs: [Option<LegDecoder>; 2],
    /// The first codec no decoder could be made for.
    unsupported: Option<String>,
    errors: u64,
    /// The first decode error, for the record.
    first_error: Option<String>,
}

/// What became of a call's audio, for its recording report.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct DecodeSummary {
    pub unsupported: Option<String>,
    pub errors: u64,
    pub first_error: Option<String>,
}

#[derive(Default)]
pub(crate) struct Decoding {
    calls: HashMap<CallHandle, CallAudio>,
    scratch: Vec<i16>,
}

impl Decoding {
    /// Decodes one payload of `leg` and hands the audio to `write(offset,
    /// rate, samples)`, offset in samples at `rate` after the answer.
    pub fn payload(
        &mut self,
        call: CallHandle,
        leg: Side,
        p: Payload<'_>,
        write: &mut impl FnMut(u64, u32, &[i16]),
    ) {
        let full = self.calls.len() >= MAX_CALLS;
        let audio = match self.calls.entry(call) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(_) if full => return,
            std::collections::hash_map::Entry::Vacant(e) => e.insert(CallAudio::default()),
        };
        let rate = *audio
            .rate
            .get_or_insert_with(|| file_rate(p.rate, &p.format));
        let slot = &mut audio.legs[leg.index()];
        if slot.as_ref().is_none_or(|l| l.format != p.format) {
            // A codec change: what the old resampler holds goes out first.
            if let Some(r) = slot.as_mut().and_then(|l| l.resample.as_mut()) {
                r.drain(&mut |off, s| write(off, rate, s));
            }
            match codec::decoder(&p.format, rate) {
                Ok(decoder) => {
                    *slot = Some(LegDecoder {
                        resample: Resample::new(decoder.rate(), rate),
                        format: p.format,
                        decoder,
                        end: None,
                    });
                }
                Err(e) => {
                    audio.unsupported.get_or_insert_with(|| e.to_string());
                    return;
                }
            }
        }
        let Some(leg) = slot.as_mut() else { return };
        let dec_rate = leg.decoder.rate();
        let out = &mut self.scratch;
        out.clear();
        // Audio for lost packets starts where the last payload's audio ended.
        let mut start = p.at;
        if let Some(end) = leg
            .end
            .filter(|e| p.lost > 0 && p.lost <= MAX_CONCEALED_PACKETS && *e < p.at)
        {
            let gap = (p.at.0 - end.0).min(MediaTime::RATE as u64 * MAX_CONCEALED_MS / 1000);
            let samples = MediaTime(gap).samples(dec_rate) as usize;
            if p.lost == 1 {
                leg.decoder.recover(p.bytes, samples, out);
            } else {
                leg.decoder.conceal(samples, out);
            }
            start = MediaTime(p.at.0 - gap);
        }
        let concealed = out.len();
        if let Err(e) = leg.decoder.decode(p.bytes, out) {
            audio.errors += 1;
            audio.first_error.get_or_insert_with(|| e.to_string());
        }
        if out.is_empty() {
            return;
        }
        let decoded = out.len() - concealed;
        leg.end = Some(MediaTime(
            p.at.0 + MediaTime::from_samples(decoded as u64, dec_rate).0,
        ));
        match &mut leg.resample {
            None => write(start.samples(rate), rate, out),
            Some(r) => r.push(start.samples(dec_rate), out, &mut |off, s| {
                write(off, rate, s)
            }),
        }
    }

    /// The call is over: pushes out what resamplers hold and says what
    /// went wrong, if anything.
    pub fn ended(
        &mut self,
        call: CallHandle,
        write: &mut impl FnMut(Side, u64, u32, &[i16]),
    ) -> DecodeSummary {
        let Some(mut audio) = self.calls.remove(&call) else {
            return DecodeSummary::default();
        };
        if let Some(rate) = audio.rate {
            for (side, leg) in [Side::Caller, Side::Callee]
                .into_iter()
                .zip(&mut audio.legs)
            {
                if let Some(r) = leg.as_mut().and_then(|l| l.resample.as_mut()) {
                    r.drain(&mut |off, s| write(side, off, rate, s));
                }
            }
        }
        DecodeSummary {
            unsupported: audio.unsupported,
            errors: audio.errors,
            first_error: audio.first_error,
        }
    }
}

/// The recording's rate: what the SDP suggests, or the first payload's own
/// rate if that is higher; 8 kHz when neither says.
fn file_rate(suggested: u32, format: &Format) -> u32 {
    suggested
        .max(format.recording_rate().unwrap_or(8000))
        .clamp(8000, 48000)
}
