//! RTP fixed header (RFC 3550 §5.1) as a zero-copy view, with RTCP told apart
//! (RFC 5761 §4). Same shape as the `wire` views: `RtpPacket::new_checked`
//! validates once, after which no accessor can panic; `RtpRepr` holds the
//! fields the streams need, borrowing the payload.

use std::fmt;

use crate::wire::field::{be16, be32, u8_at};

/// Synchronisation source: one sender's timeline (RFC 3550 §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

/// The 7-bit payload type: a static codec number or one an SDP `rtpmap` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct PayloadType(pub u8);

/// The 16-bit sequence number as sent; streams extend it with a wrap count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeqNum(pub u16);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

impl fmt::Display for PayloadType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl SeqNum {
    pub const fn wrapping_add(self, n: u16) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }
    /// How far `self` is ahead of `earlier`, modulo 2^16.
    pub const fn wrapping_sub(self, earlier: SeqNum) -> u16 {
        self.0.wrapping_sub(earlier.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("RTP packet too short: {len} bytes")]
    TooShort { len: usize },
    #[error("unsupported RTP version {version}")]
    BadVersion { version: u8 },
    /// Muxed RTCP (packet type 200..=207) on the RTP port; not an error for the
    /// caller so much as a different protocol.
    #[error("RTCP packet type {packet_type}")]
    Rtcp { packet_type: u8 },
    #[error("RTP headers truncated: need {header_len} bytes, have {buffer_len}")]
    HeadersTruncated {
        header_len: usize,
        buffer_len: usize,
    },
    #[error("invalid RTP padding length {padding}")]
    BadPadding { padding: u8 },
}

impl RtpError {
    pub fn reason(&self) -> &'static str {
        match self {
            RtpError::TooShort { .. } => "rtp_too_short",
            RtpError::BadVersion { .. } => "rtp_bad_version",
            RtpError::Rtcp { .. } => "rtcp",
            RtpError::HeadersTruncated { .. } => "rtp_headers_truncated",
            RtpError::BadPadding { .. } => "rtp_bad_padding",
        }
    }
}

const MIN_HEADER_LEN: usize = 12;
const FLAG_PADDING: u8 = 0x20;
const FLAG_EXTENSION: u8 = 0x10;

/// RTCP SR, RR, SDES, BYE, APP, the feedback types and XR (200..=207)
/// share the second byte with RTP's marker+pt (RFC 5761 §4).
fn is_rtcp_type(b1: u8) -> bool {
    (200..=207).contains(&b1)
}

/// A view of one RTP packet. The header's length depends on the CSRC count
/// and the extension, so `check_len` reads them; padding is checked too.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RtpPacket<T> {
    pub const MIN_HEADER_LEN: usize = MIN_HEADER_LEN;

    pub const fn new_unchecked(buffer: T) -> Self {
        RtpPacket { buffer }
    }

    /// A view of `buffer` once it is a whole RTP packet. RTCP multiplexed on
    /// the same port is reported as [`RtpError::Rtcp`] so callers can count it
    /// apart from garbage.
    pub fn new_checked(buffer: T) -> Result<Self, RtpError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), RtpError> {
        let buf = self.buffer.as_ref();
        let (b0, b1) = match buf {
            [b0, b1, ..] => (*b0, *b1),
            _ => return Err(RtpError::TooShort { len: buf.len() }),
        };
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion { version });
        }
        // Checked before the length: RTCP packets may be shorter than an RTP header.
        if is_rtcp_type(b1) {
            return Err(RtpError::Rtcp { packet_type: b1 });
        }
        if buf.len() < MIN_HEADER_LEN {
            return Err(RtpError::TooShort { len: buf.len() });
        }
        let header_len = self.header_len();
        if buf.len() < header_len {
            return Err(RtpError::HeadersTruncated {
                header_len,
                buffer_len: buf.len(),
            });
        }
        if self.has_padding() {
            let room = buf.len() - header_len;
            // The count itself needs a byte after the headers.
            if room == 0 {
                return Err(RtpError::HeadersTruncated {
                    header_len,
                    buffer_len: buf.len() - 1,
                });
            }
            let padding = self.padding_len();
            if padding == 0 || usize::from(padding) > room {
                return Err(RtpError::BadPadding { padding });
            }
        }
        Ok(())
    }

    fn first(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 0)
    }

    pub fn version(&self) -> u8 {
        self.first() >> 6
    }

    pub fn has_padding(&self) -> bool {
        self.first() & FLAG_PADDING != 0
    }

    pub fn has_extension(&self) -> bool {
        self.first() & FLAG_EXTENSION != 0
    }

    pub fn csrc_count(&self) -> u8 {
        self.first() & 0x0f
    }

    pub fn marker(&self) -> bool {
        u8_at(self.buffer.as_ref(), 1) & 0x80 != 0
    }

    pub fn payload_type(&self) -> PayloadType {
        PayloadType(u8_at(self.buffer.as_ref(), 1) & 0x7f)
    }

    pub fn sequence(&self) -> SeqNum {
        SeqNum(be16(self.buffer.as_ref(), 2))
    }

    pub fn timestamp(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    pub fn ssrc(&self) -> Ssrc {
        Ssrc(be32(self.buffer.as_ref(), 8))
    }

    /// Fixed header, CSRCs and the header extension (RFC 3550 §5.3.1).
    pub fn header_len(&self) -> usize {
        let mut len = MIN_HEADER_LEN + 4 * usize::from(self.csrc_count());
        if self.has_extension() {
            let words = be16(self.buffer.as_ref(), len + 2);
            len += 4 + 4 * usize::from(words);
        }
        len
    }

    /// The count in the last byte when the padding bit is set, 0 otherwise.
    pub fn padding_len(&self) -> u8 {
        if !self.has_padding() {
            return 0;
        }
        let buf = self.buffer.as_ref();
        buf.last().copied().unwrap_or(0)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<'a> RtpPacket<&'a [u8]> {
    /// After CSRCs and the header extension, without trailing padding.
    pub fn payload(&self) -> &'a [u8] {
        let end = self
            .buffer
            .len()
            .saturating_sub(usize::from(self.padding_len()));
        self.buffer.get(self.header_len()..end).unwrap_or_default()
    }
}

/// The fields of one RTP packet the rest of the pipeline needs, borrowing the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpRepr<'a> {
    pub pt: PayloadType,
    pub marker: bool,
    pub seq: SeqNum,
    pub ts: u32,
    pub ssrc: Ssrc,
    /// After CSRCs and the header extension, without trailing padding.
    pub payload: &'a [u8],
}

impl<'a> RtpRepr<'a> {
    /// Infallible: the packet was checked when the view was made.
    pub fn parse(p: &RtpPacket<&'a [u8]>) -> RtpRepr<'a> {
        RtpRepr {
            pt: p.payload_type(),
            marker: p.marker(),
            seq: p.sequence(),
            ts: p.timestamp(),
            ssrc: p.ssrc(),
            payload: p.payload(),
        }
    }

    /// Writes a minimal packet (no CSRC, extension or padding) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.reserve(MIN_HEADER_LEN + self.payload.len());
        out.push(0x80);
        out.push((self.pt.0 & 0x7f) | if self.marker { 0x80 } else { 0 });
        out.extend_from_slice(&self.seq.0.to_be_bytes());
        out.extend_from_slice(&self.ts.to_be_bytes());
        out.extend_from_slice(&self.ssrc.0.to_be_bytes());
        out.extend_from_slice(self.payload);
    }
}

/// Checks and reads `buf` in one step: [`RtpPacket::new_checked`] then [`RtpRepr::parse`].
pub fn parse(buf: &[u8]) -> Result<RtpRepr<'_>, RtpError> {
    RtpPacket::new_checked(buf).map(|p| RtpRepr::parse(&p))
}

/// Cheap pre-filter for unmatched UDP: version 2, long enough, not RTCP.
/// STUN, DTLS and ZRTP all fail the version test (RFC 7983 demultiplexing).
pub fn looks_like_rtp(buf: &[u8]) -> bool {
    match buf {
        [b0, b1, ..] => buf.len() >= MIN_HEADER_LEN && b0 >> 6 == 2 && !is_rtcp_type(*b1),
        _ => false,
    }
}

/// Test/bench helper: a minimal RTP packet (no CSRC, extension or padding).
pub fn build_packet(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    RtpRepr {
        pt: PayloadType(pt),
        marker,
        seq: SeqNum(seq),
        ts,
        ssrc: Ssrc(ssrc),
        payload,
    }
    .emit(&mut v);
    v
}

#[cfg(test)]
#[path = "tests/packet.rs"]
mod tests;
