//! RTP media: header parsing, per-source streams (sequence/timestamp unwrap,
//! reorder window, loss and jitter statistics), G.711 codecs and RFC 4733 DTMF.
//!
//! Sans-IO like the rest of the core: time is the capture timestamp handed in.

pub mod codec;
pub mod dtmf;
pub mod emodel;
pub mod packet;
pub mod quality;
mod reorder;
pub mod rtcp;
pub mod srtp;
pub mod stream;

pub use codec::{
    alaw_to_linear, codec_for, decode_g711, linear_to_alaw, linear_to_ulaw, ulaw_to_linear, Codec,
};
pub use dtmf::{event_char, parse_event, DtmfDetector, DtmfDigit, ToneEvent};
pub use packet::{looks_like_rtp, parse, PayloadType, RtpError, RtpPacket, RtpRepr, SeqNum, Ssrc};
pub use stream::{LossRuns, Ordered, RtpStream, StreamConfig, StreamStats};
