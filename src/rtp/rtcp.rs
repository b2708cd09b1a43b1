//! RTCP (RFC 3550 §6) as zero-copy views: a compound datagram split into
//! packets, sender and receiver reports with their report blocks, and
//! RTCP-XR (RFC 3611) blocks with the VoIP metrics block (§4.7) decoded.
//!
//! `Packet::new_checked` validates the common header and length once; the
//! accessors never panic, and the iterators stop at the first block that
//! does not fit.

use serde::{Deserialize, Serialize};

use crate::wire::field::{be16, be32, u8_at};

pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_XR: u8 = 207;
/// RFC 3611 block type of the VoIP metrics report block.
pub const XR_VOIP_METRICS: u8 = 7;

const HEADER_LEN: usize = 4;
const SENDER_INFO_LEN: usize = 20;
const REPORT_BLOCK_LEN: usize = 24;
const VOIP_METRICS_LEN: usize = 32;
/// Packets read from one compound datagram; real ones carry two or three.
pub const MAX_PACKETS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("RTCP packet too short: {len} bytes")]
    TooShort { len: usize },
    #[error("unsupported RTCP version {version}")]
    BadVersion { version: u8 },
    #[error("packet type {packet_type} is not RTCP")]
    NotRtcp { packet_type: u8 },
    #[error("RTCP length says {declared} bytes, {available} available")]
    Truncated { declared: usize, available: usize },
    #[error("invalid RTCP padding length {padding}")]
    BadPadding { padding: u8 },
    #[error("RTCP packet type {packet_type} with {count} report blocks does not fit {len} bytes")]
    BlocksTruncated {
        packet_type: u8,
        count: u8,
        len: usize,
    },
}

impl RtcpError {
    pub fn reason(&self) -> &'static str {
        match self {
            RtcpError::TooShort { .. } => "rtcp_too_short",
            RtcpError::BadVersion { .. } => "rtcp_bad_version",
            RtcpError::NotRtcp { .. } => "rtcp_not_rtcp",
            RtcpError::Truncated { .. } => "rtcp_truncated",
            RtcpError::BadPadding { .. } => "rtcp_bad_padding",
            RtcpError::BlocksTruncated { .. } => "rtcp_blocks_truncated",
        }
    }
}

/// A view of one RTCP packet (not the whole compound datagram).
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// A view of the first RTCP packet in `buffer` (which may hold more:
    /// `total_len` says where the next starts).
    pub fn new_checked(buffer: T) -> Result<Self, RtcpError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), RtcpError> {
        let buf = self.buffer.as_ref();
        if buf.len() < HEADER_LEN {
            return Err(RtcpError::TooShort { len: buf.len() });
        }
        if self.version() != 2 {
            return Err(RtcpError::BadVersion {
                version: self.version(),
            });
        }
        let pt = self.packet_type();
        // RFC 5761 §4: RTCP types sit in 192..=223 (200..=207 in use).
        if !(192..=223).contains(&pt) {
            return Err(RtcpError::NotRtcp { packet_type: pt });
        }
        let declared = self.total_len();
        if declared > buf.len() {
            return Err(RtcpError::Truncated {
                declared,
                available: buf.len(),
            });
        }
        if self.padding() {
            let pad = u8_at(buf, declared - 1);
            if pad == 0 || usize::from(pad) > declared - HEADER_LEN {
                return Err(RtcpError::BadPadding { padding: pad });
            }
        }
        let need = match pt {
            PT_SR => 4 + SENDER_INFO_LEN + usize::from(self.count()) * REPORT_BLOCK_LEN,
            PT_RR => 4 + usize::from(self.count()) * REPORT_BLOCK_LEN,
            PT_XR => 4,
            _ => 0,
        };
        if need > self.body().len() {
            return Err(RtcpError::BlocksTruncated {
                packet_type: pt,
                count: self.count(),
                len: self.body().len(),
            });
        }
        Ok(())
    }

    pub fn version(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 0) >> 6
    }

    pub fn padding(&self) -> bool {
        u8_at(self.buffer.as_ref(), 0) & 0x20 != 0
    }

    /// Report count (SR/RR) or subtype (APP, feedback).
    pub fn count(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 0) & 0x1f
    }

    pub fn packet_type(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 1)
    }

    /// Bytes of this packet, header included: (length + 1) * 4.
    pub fn total_len(&self) -> usize {
        (usize::from(be16(self.buffer.as_ref(), 2)) + 1) * 4
    }

    /// After the 4-byte header, up to the end of the packet, padding removed.
    pub fn body(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        let end = self.total_len().min(buf.len());
        let pad = if self.padding() && end > HEADER_LEN {
            usize::from(u8_at(buf, end - 1))
        } else {
            0
        };
        buf.get(HEADER_LEN..end.saturating_sub(pad))
            .unwrap_or_default()
    }

    /// The sender's SSRC (first word of SR, RR, XR, BYE…).
    pub fn ssrc(&self) -> u32 {
        be32(self.body(), 0)
    }
}

/// The packets of a compound datagram, in order; stops after the first error.
pub struct Compound<'a> {
    rest: &'a [u8],
    seen: usize,
}

pub fn compound(data: &[u8]) -> Compound<'_> {
    Compound {
        rest: data,
        seen: 0,
    }
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<Packet<&'a [u8]>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.seen >= MAX_PACKETS {
            return None;
        }
        self.seen += 1;
        match Packet::new_checked(self.rest) {
            Ok(p) => {
                let len = p.total_len();
                let (this, rest) = self.rest.split_at_checked(len)?;
                self.rest = rest;
                Some(Ok(Packet::new_unchecked(this)))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp of the report.
    pub ntp: u64,
    pub rtp_ts: u32,
    pub packets: u32,
    pub octets: u32,
}

impl SenderInfo {
    /// The middle 32 bits of the NTP timestamp: what receivers echo as LSR.
    pub fn ntp_middle(&self) -> u32 {
        (self.ntp >> 16) as u32
    }
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed: duplicates can make it negative).
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received, 0 if none.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> ReportBlock {
        let lost_raw = be32(b, 4) & 0x00ff_ffff;
        // Sign-extend the 24-bit count.
        let cumulative_lost = ((lost_raw << 8) as i32) >> 8;
        ReportBlock {
            ssrc: be32(b, 0),
            fraction_lost: u8_at(b, 4),
            cumulative_lost,
            highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            lsr: be32(b, 16),
            dlsr: be32(b, 20),
        }
    }
}

/// The report blocks of an SR or RR.
pub struct ReportBlocks<'a> {
    rest: &'a [u8],
    left: u8,
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        if self.left == 0 {
            return None;
        }
        let (b, rest) = self.rest.split_at_checked(REPORT_BLOCK_LEN)?;
        self.rest = rest;
        self.left -= 1;
        Some(ReportBlock::parse(b))
    }
}

impl<'a> Packet<&'a [u8]> {
    /// The sender information, for an SR.
    pub fn sender_info(&self) -> Option<SenderInfo> {
        if self.packet_type() != PT_SR {
            return None;
        }
        let b = self.body().get(4..4 + SENDER_INFO_LEN)?;
        Some(SenderInfo {
            ntp: u64::from(be32(b, 0)) << 32 | u64::from(be32(b, 4)),
            rtp_ts: be32(b, 8),
            packets: be32(b, 12),
            octets: be32(b, 16),
        })
    }

    /// The report blocks of an SR or RR (none for other types).
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        let body: &'a [u8] = {
            let buf: &'a [u8] = self.buffer;
            let end = self.total_len().min(buf.len());
            buf.get(HEADER_LEN..end).unwrap_or_default()
        };
        let skip = match self.packet_type() {
            PT_SR => 4 + SENDER_INFO_LEN,
            PT_RR => 4,
            _ => return ReportBlocks { rest: &[], left: 0 },
        };
        ReportBlocks {
            rest: body.get(skip..).unwrap_or_default(),
            left: self.count(),
        }
    }

    /// The blocks of an XR packet as (block type, type-specific byte, content).
    pub fn xr_blocks(&self) -> XrBlocks<'a> {
        let buf: &'a [u8] = self.buffer;
        let end = self.total_len().min(buf.len());
        let rest = if self.packet_type() == PT_XR {
            buf.get(HEADER_LEN + 4..end).unwrap_or_default()
        } else {
            &[]
        };
        XrBlocks { rest }
    }
}

/// One RTCP-XR report block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XrBlock<'a> {
    pub block_type: u8,
    pub type_specific: u8,
    pub content: &'a [u8],
}

pub struct XrBlocks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for XrBlocks<'a> {
    type Item = XrBlock<'a>;

    fn next(&mut self) -> Option<XrBlock<'a>> {
        let rest = self.rest;
        let words = usize::from(be16(rest, 2));
        let (block, tail) = rest.split_at_checked(4 + words * 4)?;
        self.rest = tail;
        Some(XrBlock {
            block_type: u8_at(block, 0),
            type_specific: u8_at(block, 1),
            content: block.get(4..).unwrap_or_default(),
        })
    }
}

/// RFC 3611 §4.7 VoIP metrics, decoded to units. Values the sender marks
/// unavailable (127 for R and MOS) are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VoipMetrics {
    /// Source the metrics are about.
    pub ssrc: u32,
    /// Packets lost in the network, percent.
    pub loss_rate_pct: f64,
    /// Packets discarded by the jitter buffer (late or early), percent.
    pub discard_rate_pct: f64,
    pub burst_density_pct: f64,
    pub gap_density_pct: f64,
    pub burst_duration_ms: u16,
    pub gap_duration_ms: u16,
    pub round_trip_ms: u16,
    pub end_system_delay_ms: u16,
    pub r_factor: Option<u8>,
    pub mos_lq: Option<f64>,
    pub mos_cq: Option<f64>,
}

impl VoipMetrics {
    /// The content of a block of type `XR_VOIP_METRICS`.
    pub fn parse(content: &[u8]) -> Option<VoipMetrics> {
        let b = content.get(..VOIP_METRICS_LEN)?;
        let pct = |at: usize| f64::from(u8_at(b, at)) * 100.0 / 256.0;
        let byte = |at: usize| Some(u8_at(b, at)).filter(|v| *v != 127);
        let mos = |at: usize| byte(at).map(|v| f64::from(v) / 10.0);
        Some(VoipMetrics {
            ssrc: be32(b, 0),
            loss_rate_pct: pct(4),
            discard_rate_pct: pct(5),
            burst_density_pct: pct(6),
            gap_density_pct: pct(7),
            burst_duration_ms: be16(b, 8),
            gap_duration_ms: be16(b, 10),
            round_trip_ms: be16(b, 12),
            end_system_delay_ms: be16(b, 14),
            r_factor: byte(20),
            mos_lq: mos(22),
            mos_cq: mos(23),
        })
    }
}

/// Whether a datagram on a media port is RTCP rather than RTP: version 2 and
/// an RTCP packet type (RFC 5761 §4).
pub fn looks_like_rtcp(data: &[u8]) -> bool {
    matches!(data, [b0, b1, ..] if b0 >> 6 == 2 && (200..=207).contains(b1))
}

#[cfg(test)]
#[path = "tests/rtcp.rs"]
mod tests;
