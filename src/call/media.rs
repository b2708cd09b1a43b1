//! A call's media: SDP endpoints and codecs per side, and one RTP leg per sender.

use std::net::SocketAddr;
use std::time::Duration;

use crate::rtp::codec::{format_for, Format, MediaTime};
use crate::rtp::dtmf::DtmfDetector;
use crate::rtp::quality::QualityAcc;
use crate::rtp::stream::{RtpStream, StreamConfig};
use crate::rtp::PayloadType;
use crate::sip::sdp::{self, Direction as SdpDirection, Sdp};
use crate::time::Timestamp;

use super::dialog::{Call, MediaAddr};
use super::events::Ctx;
use super::rtcp::CallRtcp;
use super::{Side, Update};

/// The RTP clock the stream statistics assume until a codec says otherwise.
pub(crate) const SAMPLE_RATE: u32 = 8000;
const MAX_PAYLOAD_TYPES: usize = 32;
/// If RTP timestamps and capture time disagree by more than this, the sender
/// paused its clock (hold) or jumped: re-place the stream by capture time.
pub(crate) const REANCHOR_TICKS: i64 = MediaTime::RATE as i64 / 2;
/// A second source for the same leg (a relay copy, a second capture point) is
/// ignored while the first one is still talking.
pub(crate) const SOURCE_SWITCH: Duration = Duration::from_millis(500);

/// What one side's SDP said: the payload types it uses.
#[derive(Debug, Default)]
pub(crate) struct SideSdp {
    pub payload_types: Vec<(PayloadType, Format, String)>,
    pub direction: Option<SdpDirection>,
    /// SRTP (RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVPF): payloads are ciphertext.
    pub encrypted: bool,
    /// `a=rtcp:` port, when RTCP is not on the RTP port + 1.
    pub rtcp_port: Option<u16>,
}

impl SideSdp {
    pub fn update(&mut self, sdp: &Sdp) {
        let Some(audio) = sdp.audio() else { return };
        self.payload_types.clear();
        for &pt in audio.formats.iter().take(MAX_PAYLOAD_TYPES) {
            let pt = PayloadType(pt);
            let map = audio.rtpmap(pt.0);
            let format = format_for(
                pt,
                map.map(|m| m.encoding.as_str()),
                map.map(|m| m.clock_rate),
                map.map_or(1, |m| m.channels),
                map.and_then(|m| m.fmtp.as_deref()),
            );
            let name = match map {
                Some(m) => m.encoding.clone(),
                None => static_name(pt).to_string(),
            };
            self.payload_types.push((pt, format, name));
        }
        self.direction = Some(audio.effective_direction(sdp));
        self.encrypted = audio.proto.to_ascii_uppercase().contains("SAVP");
        self.rtcp_port = audio.rtcp_port;
    }

    /// The recording rate of the audio codec this side will send: the first
    /// the other side listed that this side lists too (RFC 3264: each side
    /// sends what the other prefers); its own first when the other's SDP is
    /// not known.
    fn sending_rate(&self, other: &SideSdp) -> Option<u32> {
        let audio = |l: &SideSdp| {
            l.payload_types
                .iter()
                .map(|(_, f, _)| *f)
                .filter(|f| f.recording_rate().is_some())
                .collect::<Vec<_>>()
        };
        let (mine, theirs) = (audio(self), audio(other));
        let same = |a: &Format, b: &Format| a.codec == b.codec && a.clock_rate == b.clock_rate;
        let chosen = if theirs.is_empty() {
            mine.first()
        } else {
            theirs.iter().find(|t| mine.iter().any(|m| same(m, t)))
        };
        chosen.and_then(Format::recording_rate)
    }

    pub fn lookup(&self, pt: PayloadType) -> Option<(Format, &str)> {
        self.payload_types
            .iter()
            .find(|(p, _, _)| *p == pt)
            .map(|(_, c, n)| (*c, n.as_str()))
    }
}

fn static_name(pt: PayloadType) -> &'static str {
    match pt.0 {
        0 => "PCMU",
        3 => "GSM",
        4 => "G723",
        8 => "PCMA",
        9 => "G722",
        13 => "CN",
        18 => "G729",
        _ => "unknown",
    }
}

/// Where a leg's audio sits on the recording timeline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anchor {
    pub ext_ts: u64,
    /// Media-time ticks after the answer.
    pub offset: i64,
    /// The RTP clock `ext_ts` counts in: a codec change re-anchors.
    pub clock_rate: u32,
}

pub(crate) struct Leg {
    pub src: Option<SocketAddr>,
    pub last_seen: Option<Timestamp>,
    pub stream: RtpStream,
    pub anchor: Option<Anchor>,
    /// The last audio packet's extended sequence number: gaps are losses.
    pub last_seq: Option<u64>,
    pub dtmf: DtmfDetector,
    pub packets: u64,
    pub quality: QualityAcc,
}

impl Default for Leg {
    fn default() -> Self {
        Leg {
            src: None,
            last_seen: None,
            stream: RtpStream::new(stream_config()),
            anchor: None,
            last_seq: None,
            dtmf: DtmfDetector::new(),
            packets: 0,
            quality: QualityAcc::default(),
        }
    }
}

pub(crate) fn stream_config() -> StreamConfig {
    StreamConfig {
        reorder_window: 16,
        max_reorder_delay: Duration::from_millis(100),
        probation: 2,
        clock_rate: SAMPLE_RATE,
        ..StreamConfig::default()
    }
}

impl Leg {
    pub fn jitter_ms(&self) -> f64 {
        self.stream.stats().jitter_ms()
    }

    /// Whether a packet from `src` may feed this leg; a new source takes over
    /// only once the current one has gone quiet.
    pub fn accepts(&mut self, src: SocketAddr, now: Timestamp) -> bool {
        match (self.src, self.last_seen) {
            (Some(cur), _) if cur == src => true,
            (Some(_), Some(last)) if now.duration_since(last) < SOURCE_SWITCH => false,
            _ => {
                self.src = Some(src);
                self.stream = RtpStream::new(stream_config());
                self.anchor = None;
                self.last_seq = None;
                true
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct CallMedia {
    /// Addresses registered in the tracker's media index, with the side that receives there.
    pub addrs: Vec<(SocketAddr, Side)>,
    pub sdp: [SideSdp; 2],
    pub legs: [Leg; 2],
    /// Last RTP packet after the answer: feeds the RTP timeout.
    pub last_rtp: Option<Timestamp>,
    pub codec: Option<&'static str>,
    pub unsupported: Option<String>,
    pub encrypted: bool,
    pub audio_seen: bool,
    /// The rate the recording should have: the highest of the codecs both
    /// sides' SDP put first.
    pub rate: u32,
    pub srtp: super::srtp::CallSrtp,
    pub rtcp: CallRtcp,
}

impl CallMedia {
    pub fn leg(&self, side: Side) -> &Leg {
        match side {
            Side::Caller => &self.legs[0],
            Side::Callee => &self.legs[1],
        }
    }

    pub fn leg_mut(&mut self, side: Side) -> &mut Leg {
        let [caller, callee] = &mut self.legs;
        match side {
            Side::Caller => caller,
            Side::Callee => callee,
        }
    }
}

/// The rate a call is best recorded at: the higher of the two rates the
/// sides will send at, by their SDP; 0 when neither has said.
fn recording_rate(sdp: &[SideSdp; 2]) -> u32 {
    let [caller, callee] = sdp;
    caller
        .sending_rate(callee)
        .max(callee.sending_rate(caller))
        .unwrap_or(0)
}

/// The format of a payload type sent by `sender`: the receiver's SDP defines the
/// numbers it expects, the sender's is the fallback, static types the last resort.
pub(crate) fn format_of(sdp: &[SideSdp; 2], sender: Side, pt: PayloadType) -> (Format, &str) {
    let [caller, callee] = sdp;
    let (recv, send) = match sender {
        Side::Caller => (callee, caller),
        Side::Callee => (caller, callee),
    };
    recv.lookup(pt)
        .or_else(|| send.lookup(pt))
        .unwrap_or_else(|| (format_for(pt, None, None, 1, None), static_name(pt)))
}

impl Call {
    /// What `side`'s SDP says: its codecs, whether it holds the call, and the
    /// address it receives audio on, returned for the tracker's media index.
    pub(super) fn apply_sdp(
        &mut self,
        now: Timestamp,
        side: Side,
        body: &[u8],
        ctx: &mut Ctx<'_>,
    ) -> Option<MediaAddr> {
        let parsed = match sdp::parse(body) {
            Ok(s) => s,
            Err(e) => {
                ctx.stats.drop_reason(e.reason());
                return None;
            }
        };
        self.media.sdp[side.index()].update(&parsed);
        self.media.rate = recording_rate(&self.media.sdp);
        let audio = parsed.audio()?;
        let CallMedia { srtp, sdp, .. } = &mut self.media;
        srtp.update(side, audio, sdp);
        let addr = audio.effective_connection(&parsed);
        let dir = audio.effective_direction(&parsed);
        let held = matches!(addr, Some(a) if a.is_unspecified())
            || matches!(dir, SdpDirection::SendOnly | SdpDirection::Inactive);
        if self.answered_at.is_some() && held != self.on_hold[side.index()] {
            self.on_hold[side.index()] = held;
            self.ever_held |= held;
            self.media.pause_quality();
            let update = if held {
                Update::Hold { by: side }
            } else {
                Update::Resume { by: side }
            };
            self.updated(now, update, ctx);
        }
        let ip = addr.filter(|a| !a.is_unspecified())?;
        (audio.port != 0).then(|| (SocketAddr::new(ip, audio.port), side))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(formats: &str, maps: &str) -> SideSdp {
        let body = format!("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP {formats}\r\n{maps}");
        let mut s = SideSdp::default();
        s.update(&sdp::parse(body.as_bytes()).unwrap());
        s
    }

    #[test]
    fn the_rate_follows_what_each_side_will_send() {
        let opus_first = side(
            "111 8 101",
            "a=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n",
        );
        let pcma_only = side("8", "");
        // Offered Opus first, answered with PCMA only: both send PCMA.
        assert_eq!(recording_rate(&[opus_first, pcma_only]), 8000);
        // Each side prefers the other's codec: the caller sends G.722.
        assert_eq!(recording_rate(&[side("0 9", ""), side("9 0", "")]), 16000);
        // Only the offer is known yet: its first codec.
        assert_eq!(
            recording_rate(&[side("9 0", ""), SideSdp::default()]),
            16000
        );
        assert_eq!(recording_rate(&[SideSdp::default(), SideSdp::default()]), 0);
    }
}
