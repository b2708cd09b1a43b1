//! A call's RTP legs turned into audio placed on the recording timeline.
//!
//! The hot path: one call per RTP packet, no allocation but the decoded samples
//! the `Media` event carries.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::rtp::codec::{Codec, MediaTime};
use crate::rtp::dtmf::{parse_event, DtmfDetector};
use crate::rtp::stream::{Ordered, RtpStream};
use crate::rtp::{RtpPacket, RtpRepr};
use crate::time::Timestamp;

use super::dialog::{push_digit, Call};
use super::events::{Ctx, EventQueue};
use super::media::{format_of, Anchor, CallMedia, Leg, SideSdp, REANCHOR_TICKS};
use super::srtp::Unprotect;
use super::{CallHandle, Event, Side, Stats};

/// Why a call did not take an RTP packet.
pub(crate) enum RtpRefused {
    /// After the BYE: not part of the recording.
    AfterEnd,
    /// A second source for a leg whose first one still talks.
    IgnoredSource,
    /// SRTP that did not authenticate or decrypt (counted as a drop reason).
    Srtp,
}

impl Call {
    /// One RTP packet `sender` sent from `src` (`packet` is the whole datagram,
    /// `repr` its header read as plain RTP). `Ok(true)` when `src` is a new
    /// source for the leg, which the tracker may learn as where the sender
    /// receives (symmetric RTP).
    pub fn on_rtp(
        &mut self,
        now: Timestamp,
        sender: Side,
        src: SocketAddr,
        packet: &[u8],
        repr: &RtpRepr<'_>,
        ctx: &mut Ctx<'_>,
    ) -> Result<bool, RtpRefused> {
        // SRTP authenticates the whole packet: decrypt before anything reads
        // it, into the call's scratch buffer, and read the header again.
        let mut clear = self.media.srtp.take_scratch();
        let result = match self.media.srtp.unprotect(sender, packet, &mut clear) {
            Unprotect::Clear | Unprotect::NoKey => self.on_clear_rtp(now, sender, src, repr, ctx),
            Unprotect::Decrypted => match RtpPacket::new_checked(&clear[..]) {
                Ok(p) => self.on_clear_rtp(now, sender, src, &RtpRepr::parse(&p), ctx),
                Err(e) => {
                    ctx.stats.drop_reason(e.reason());
                    Err(RtpRefused::Srtp)
                }
            },
            Unprotect::Failed(e) => {
                ctx.stats.drop_reason(e.reason());
                Err(RtpRefused::Srtp)
            }
        };
        self.media.srtp.put_scratch(clear);
        result
    }

    fn on_clear_rtp(
        &mut self,
        now: Timestamp,
        sender: Side,
        src: SocketAddr,
        repr: &RtpRepr<'_>,
        ctx: &mut Ctx<'_>,
    ) -> Result<bool, RtpRefused> {
        if self.media_end().is_some_and(|end| now >= end) {
            return Err(RtpRefused::AfterEnd);
        }
        let leg = self.media.leg_mut(sender);
        let new_source = leg.src != Some(src);
        if !leg.accepts(src, now) {
            return Err(RtpRefused::IgnoredSource);
        }
        leg.last_seen = Some(now);
        leg.packets += 1;
        self.last_activity = self.last_activity.max(now);
        if self.answered_at.is_some_and(|a| now >= a) {
            self.media.last_rtp = Some(now);
        }
        let counting = self.quality_counting(now);
        self.media.before_rtp(sender, repr.pt, counting);
        self.with_leg(ctx, sender, |stream, sink| {
            stream.push(now, repr, &mut |o| sink.deliver(&o));
        });
        self.media.after_rtp(sender, now, counting);
        Ok(new_source)
    }

    /// Releases audio the reorder buffers held back; `force` at the call's end.
    pub fn flush_media(&mut self, now: Timestamp, force: bool, ctx: &mut Ctx<'_>) {
        for sender in [Side::Caller, Side::Callee] {
            self.with_leg(ctx, sender, |stream, sink| {
                stream.flush(now, force, &mut |o| sink.deliver(&o));
            });
        }
    }

    /// Runs `f` with the sender's stream and a sink for what it releases.
    fn with_leg<R>(
        &mut self,
        ctx: &mut Ctx<'_>,
        sender: Side,
        f: impl FnOnce(&mut RtpStream, &mut MediaSink<'_>) -> R,
    ) -> R {
        let answered_at = self.answered_at;
        let media_end = self.media_end();
        let CallMedia {
            sdp,
            legs,
            codec,
            unsupported,
            encrypted,
            audio_seen,
            rate,
            ..
        } = &mut self.media;
        let [caller, callee] = legs;
        let leg = match sender {
            Side::Caller => caller,
            Side::Callee => callee,
        };
        let Leg {
            stream,
            anchor,
            last_seq,
            dtmf: detector,
            ..
        } = leg;
        let mut sink = MediaSink {
            handle: self.handle,
            call_id: &self.id,
            sender,
            answered_at,
            media_end,
            events: &mut *ctx.events,
            stats: &mut *ctx.stats,
            dtmf: &mut self.dtmf,
            sdp,
            anchor,
            last_seq,
            detector,
            codec,
            unsupported,
            encrypted,
            audio_seen,
            rate: *rate,
        };
        f(stream, &mut sink)
    }
}

/// Everything an ordered RTP packet may touch, borrowed apart from the call
/// and the leg's stream so the stream can hand packets out without copying.
struct MediaSink<'a> {
    handle: CallHandle,
    call_id: &'a Arc<str>,
    sender: Side,
    answered_at: Option<Timestamp>,
    media_end: Option<Timestamp>,
    events: &'a mut EventQueue,
    stats: &'a mut Stats,
    dtmf: &'a mut String,
    sdp: &'a [SideSdp; 2],
    anchor: &'a mut Option<Anchor>,
    last_seq: &'a mut Option<u64>,
    detector: &'a mut DtmfDetector,
    codec: &'a mut Option<&'static str>,
    unsupported: &'a mut Option<String>,
    encrypted: &'a mut bool,
    audio_seen: &'a mut bool,
    rate: u32,
}

impl MediaSink<'_> {
    fn deliver(&mut self, o: &Ordered<'_>) {
        let (format, name) = format_of(self.sdp, self.sender, o.pt);
        let codec = format.codec;
        match codec {
            Codec::TelephoneEvent => {
                let Some(ev) = parse_event(o.payload) else {
                    return self.stats.drop_reason("rtp_bad_telephone_event");
                };
                if let Some(d) = self.detector.push(o.ext_ts, o.ext_seq, &ev) {
                    push_digit(self.dtmf, d.digit);
                }
                return;
            }
            Codec::Comfort => return,
            _ => {}
        }
        let Some(answered) = self.answered_at else {
            return; // early media is not recorded
        };
        if o.arrival < answered || self.media_end.is_some_and(|e| o.arrival >= e) {
            return;
        }
        // Decoding ciphertext as G.711 would record noise: say so instead.
        if self.sdp.iter().any(|s| s.encrypted) {
            *self.encrypted = true;
            return;
        }
        if !codec.is_audio() {
            if self.unsupported.is_none() {
                *self.unsupported = Some(name.to_string());
            }
            return;
        }
        if self.codec.is_none() {
            *self.codec = Some(codec.name());
        }
        let per_sec = i128::from(MediaTime::RATE);
        let by_arrival =
            (i128::from(o.arrival.micros_since(answered)) * per_sec / 1_000_000) as i64;
        let clock = i128::from(format.clock_rate.max(1));
        let placed = self
            .anchor
            .filter(|a| !o.ssrc_changed && a.clock_rate == format.clock_rate)
            .map(|a| {
                let ts = i128::from((o.ext_ts as i64).wrapping_sub(a.ext_ts as i64));
                a.offset + (ts * per_sec / clock) as i64
            });
        let offset = match placed {
            Some(p) if (p - by_arrival).abs() <= REANCHOR_TICKS => p,
            _ => {
                *self.anchor = Some(Anchor {
                    ext_ts: o.ext_ts,
                    offset: by_arrival,
                    clock_rate: format.clock_rate,
                });
                by_arrival
            }
        };
        let lost = match *self.last_seq {
            Some(prev) if !o.ssrc_changed && o.ext_seq > prev => o.ext_seq - prev - 1,
            _ => 0,
        };
        *self.last_seq = Some(o.ext_seq);
        let Ok(offset) = u64::try_from(offset) else {
            return;
        };
        *self.audio_seen = true;
        if !self.events.media_room() {
            return self.stats.drop_reason("media_queue_full");
        }
        self.events.push_media(Event::Media {
            call: self.handle,
            call_id: Arc::clone(self.call_id),
            leg: self.sender,
            at: MediaTime(offset),
            format,
            lost: u16::try_from(lost).unwrap_or(u16::MAX),
            rate: self.rate.max(format.recording_rate().unwrap_or(8000)),
            payload: o.payload.to_vec(),
        });
    }
}
