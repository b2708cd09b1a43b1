//! A call's media: SDP endpoints and codecs per side, and one RTP leg per sender.

use std::net::SocketAddr;
use std::time::Duration;

use crate::rtp::codec::{format_for, Format};
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

/// G.711 and telephone-event run at 8 kHz; the recording timeline is in these samples.
pub(crate) const SAMPLE_RATE: u32 = 8000;
const MAX_PAYLOAD_TYPES: usize = 32;
/// If RTP timestamps and capture time disagree by more than this, the sender
/// paused its clock (hold) or jumped: re-place the stream by capture time.
pub(crate) const REANCHOR_SAMPLES: i64 = 4000;
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
    pub offset: i64,
}

pub(crate) struct Leg {
    pub src: Option<SocketAddr>,
    pub last_seen: Option<Timestamp>,
    pub stream: RtpStream,
    pub anchor: Option<Anchor>,
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
        let audio = parsed.audio()?;
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
