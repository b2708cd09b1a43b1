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
mod tests {
    use super::*;

    #[test]
    fn parses_plain_header() {
        let p = build_packet(0, true, 0xBEEF, 0xDEADBEEF, 0x01020304, &[1, 2, 3]);
        let h = parse(&p).unwrap();
        assert_eq!(h.pt, 0);
        assert!(h.marker);
        assert_eq!(h.seq, 0xBEEF);
        assert_eq!(h.ts, 0xDEADBEEF);
        assert_eq!(h.ssrc, 0x01020304);
        assert_eq!(h.payload, &[1, 2, 3]);
        assert!(looks_like_rtp(&p));
    }

    #[test]
    fn skips_csrc_extension_and_padding() {
        let mut p = vec![0x80 | 0x20 | 0x10 | 2, 8];
        p.extend_from_slice(&[0, 1, 0, 0, 0, 160, 0, 0, 0, 7]);
        p.extend_from_slice(&[0xAA; 8]); // two CSRCs
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 9, 9, 9, 9]); // one-word extension
        p.extend_from_slice(&[5, 6, 7]);
        p.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let h = parse(&p).unwrap();
        assert_eq!(h.pt, 8);
        assert_eq!(h.seq, 1);
        assert_eq!(h.ts, 160);
        assert_eq!(h.ssrc, 7);
        assert_eq!(h.payload, &[5, 6, 7]);
    }

    #[test]
    fn rejects_rtcp_and_garbage() {
        let rr = [0x81, 201, 0, 1, 0, 0, 0, 1];
        assert_eq!(parse(&rr), Err(RtpError::Rtcp { packet_type: 201 }));
        assert!(!looks_like_rtp(&rr));
        let mut sr = build_packet(0, false, 1, 1, 1, &[0; 20]);
        sr[1] = 200;
        assert_eq!(parse(&sr).unwrap_err().reason(), "rtcp");
        assert!(!looks_like_rtp(&sr));
        assert_eq!(parse(&[0x80]), Err(RtpError::TooShort { len: 1 }));
        assert_eq!(parse(&[0x80, 0, 0]), Err(RtpError::TooShort { len: 3 }));
        let mut v1 = build_packet(0, false, 1, 1, 1, &[]);
        v1[0] = 0x40;
        assert_eq!(parse(&v1), Err(RtpError::BadVersion { version: 1 }));
        assert!(!looks_like_rtp(&v1));
        // Extension header promised but missing.
        let mut ext = build_packet(0, false, 1, 1, 1, &[]);
        ext[0] |= 0x10;
        assert_eq!(parse(&ext).unwrap_err().reason(), "rtp_headers_truncated");
        // Padding longer than the packet.
        let mut pad = build_packet(0, false, 1, 1, 1, &[1, 2]);
        pad[0] |= 0x20;
        pad.push(200);
        assert_eq!(parse(&pad), Err(RtpError::BadPadding { padding: 200 }));
    }

    #[test]
    fn never_panics_on_short_or_random_input() {
        let mut x: u32 = 0x1234_5678;
        for len in 0..64usize {
            for _ in 0..200 {
                let buf: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        (x >> 3) as u8
                    })
                    .collect();
                let _ = parse(&buf);
                let mut v2 = buf.clone();
                if let Some(b) = v2.first_mut() {
                    *b = 0x80 | (*b & 0x3f);
                }
                let _ = parse(&v2);
                let _ = looks_like_rtp(&v2);
            }
        }
    }
}
