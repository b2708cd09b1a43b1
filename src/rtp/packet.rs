//! RTP fixed header (RFC 3550 §5.1) via `rtp-rs`, with RTCP told apart (RFC 5761 §4).

use rtp_rs::{RtpReader, RtpReaderError};

/// The fields of one RTP packet the rest of the pipeline needs, borrowing the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    pub pt: u8,
    pub marker: bool,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    /// After CSRCs and the header extension, without trailing padding.
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("RTP packet too short: {len} bytes")]
    TooShort { len: usize },
    #[error("unsupported RTP version {version}")]
    BadVersion { version: u8 },
    /// Muxed RTCP (packet type 200..=204) on the RTP port; not an error for the
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

/// RTCP SR, RR, SDES, BYE, APP share the second byte with RTP's marker+pt.
fn is_rtcp_type(b1: u8) -> bool {
    (200..=204).contains(&b1)
}

/// Parses an RTP packet. RTCP multiplexed on the same port is reported as
/// [`RtpError::Rtcp`] so callers can count it apart from garbage.
pub fn parse(buf: &[u8]) -> Result<RtpHeader<'_>, RtpError> {
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
    let reader = RtpReader::new(buf).map_err(|e| match e {
        RtpReaderError::BufferTooShort(len) => RtpError::TooShort { len },
        RtpReaderError::UnsupportedVersion(version) => RtpError::BadVersion { version },
        RtpReaderError::HeadersTruncated {
            header_len,
            buffer_len,
        } => RtpError::HeadersTruncated {
            header_len,
            buffer_len,
        },
        RtpReaderError::PaddingLengthInvalid(padding) => RtpError::BadPadding { padding },
    })?;
    Ok(RtpHeader {
        pt: reader.payload_type(),
        marker: reader.mark(),
        seq: reader.sequence_number().into(),
        ts: reader.timestamp(),
        ssrc: reader.ssrc(),
        payload: reader.payload(),
    })
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
    let mut v = Vec::with_capacity(MIN_HEADER_LEN + payload.len());
    v.push(0x80);
    v.push((pt & 0x7f) | if marker { 0x80 } else { 0 });
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
#[path = "tests/packet.rs"]
mod tests;
