//! The parts of an SDP body (RFC 8866) the tracker needs: where each media stream
//! goes (`c=` + `m=` port), which codecs (`m=` formats + `a=rtpmap`), and the
//! direction attributes that signal hold.
//!
//! Why not `sdp-types`: its `Session::parse` is a faithful RFC parser, which is the
//! wrong trade for captured traffic. It fails the whole SDP on one malformed
//! `b=`/`t=`/`r=`/`z=`/`o=` line, on duplicate session-level `c=`/`i=`/`k=` lines and
//! on non-UTF-8 fields, requires `v=`, allocates a `String` for every field and
//! attribute, and has no bound on the number of media sections or attributes. This
//! parser reads five line types, skips everything else (including malformed lines),
//! works on LF-only and CRLF bodies, and caps every list.

use std::net::IpAddr;

pub use super::sdp_crypto::{Crypto, CryptoSuite, MAX_CRYPTO};

/// More `m=` lines than this is hostile; real offers have 1-4.
pub const MAX_MEDIA: usize = 16;
/// Payload types are 7 bits, so more distinct formats than this cannot exist.
pub const MAX_FORMATS: usize = 128;
/// `a=rtpmap` lines per media section.
pub const MAX_RTPMAPS: usize = 128;

#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpError {
    #[error("body has no SDP `x=value` lines")]
    NotSdp,
    #[error("more than {max} media sections")]
    TooManyMedia { max: usize },
    #[error("more than {max} formats on one m= line")]
    TooManyFormats { max: usize },
    #[error("more than {max} rtpmap attributes in one media section")]
    TooManyRtpmaps { max: usize },
}

impl SdpError {
    pub fn reason(&self) -> &'static str {
        match self {
            SdpError::NotSdp => "sdp_not_sdp",
            SdpError::TooManyMedia { .. } => "sdp_too_many_media",
            SdpError::TooManyFormats { .. } => "sdp_too_many_formats",
            SdpError::TooManyRtpmaps { .. } => "sdp_too_many_rtpmaps",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
    Image,
    Application,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpMap {
    pub pt: u8,
    /// As written (`PCMU`, `opus`, `telephone-event`).
    pub encoding: String,
    pub clock_rate: u32,
    /// 1 when not given.
    pub channels: u8,
    /// The `a=fmtp` parameters for this payload type, as written (capped).
    pub fmtp: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    pub kind: MediaKind,
    /// 0 for a rejected/disabled stream, and for an unreadable port.
    pub port: u16,
    /// As written, e.g. `RTP/AVP`, `RTP/SAVP`, `udptl`.
    pub proto: String,
    /// Numeric formats (payload types 0..=127) in m-line order; others are skipped.
    pub formats: Vec<u8>,
    /// This section's own `c=` (the first parseable one).
    pub connection: Option<IpAddr>,
    /// Explicit `a=rtpmap` lines, plus the RFC 3551 static payload types listed in
    /// `formats` that have no rtpmap line (synthesised so `rtpmap(0)` finds PCMU).
    pub rtpmaps: Vec<RtpMap>,
    /// This section's direction attribute, or the session-level one when the section
    /// has none (already resolved; see [`Media::effective_direction`]).
    pub direction: Direction,
    /// Usable `a=crypto` SDES keys in order (capped at [`MAX_CRYPTO`]); see
    /// [`sdp_crypto`](super::sdp_crypto).
    pub crypto: Vec<Crypto>,
    /// `a=rtcp:` (RFC 3605): the RTCP port when it is not the RTP port + 1.
    pub rtcp_port: Option<u16>,
    /// `a=rtcp-mux` (RFC 5761): RTCP shares the RTP port.
    pub rtcp_mux: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sdp {
    /// Session-level `c=`. `c=IN IP4 0.0.0.0` parses to `0.0.0.0` (RFC 2543 hold).
    pub connection: Option<IpAddr>,
    pub media: Vec<Media>,
    /// Session-level direction attribute (`sendrecv` when absent).
    pub direction: Direction,
}

impl Sdp {
    /// The first audio stream that is not disabled (port 0).
    pub fn audio(&self) -> Option<&Media> {
        self.media
            .iter()
            .find(|m| m.kind == MediaKind::Audio && m.port != 0)
    }
}

impl Media {
    /// The media-level `c=`, else the session-level one.
    pub fn effective_connection(&self, sdp: &Sdp) -> Option<IpAddr> {
        self.connection.or(sdp.connection)
    }

    /// The direction attribute in force for this stream; a disabled stream (port 0)
    /// is `Inactive`. `c=0.0.0.0` hold is left to the caller (see
    /// [`Media::effective_connection`]) because it is not a direction attribute.
    pub fn effective_direction(&self, _sdp: &Sdp) -> Direction {
        if self.port == 0 {
            Direction::Inactive
        } else {
            self.direction
        }
    }

    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|r| r.pt == pt)
    }
}

/// Parses an SDP body. Lenient: unknown and malformed lines are skipped, `v=`/`o=`/
/// `s=`/`t=` may be missing, CRLF or LF line ends, any bytes in fields.
pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
    let mut sdp = Sdp::default();
    let mut session_dir: Option<Direction> = None;
    // Per media section: its explicit direction attribute, resolved at the end
    // because session attributes only count if they come before the first m=.
    let mut media_dirs: Vec<Option<Direction>> = Vec::new();
    let mut saw_line = false;
    // fmtp lines may come before their rtpmap: kept per media until the end.
    let mut fmtps: Vec<(usize, u8, String)> = Vec::new();

    for line in body.split(|&b| b == b'\n') {
        let line = line.trim_ascii_end();
        let (key, value) = match line {
            [k, b'=', value @ ..] if k.is_ascii_lowercase() => (*k, value),
            _ => continue,
        };
        saw_line = true;
        match key {
            b'c' => {
                if let Some(ip) = parse_connection(value) {
                    match sdp.media.last_mut() {
                        Some(m) => {
                            m.connection.get_or_insert(ip);
                        }
                        None => {
                            sdp.connection.get_or_insert(ip);
                        }
                    }
                }
            }
            b'm' => {
                if sdp.media.len() >= MAX_MEDIA {
                    return Err(SdpError::TooManyMedia { max: MAX_MEDIA });
                }
                sdp.media.push(parse_m_line(value)?);
                media_dirs.push(None);
            }
            b'a' => {
                let (name, attr_value) = match value.iter().position(|&b| b == b':') {
                    Some(i) => (
                        value.get(..i).unwrap_or_default(),
                        value.get(i + 1..).unwrap_or_default(),
                    ),
                    None => (value, &[][..]),
                };
                if let Some(dir) = parse_direction(name) {
                    match media_dirs.last_mut() {
                        Some(d) => *d = Some(dir),
                        None => session_dir = Some(dir),
                    }
                } else if name == b"fmtp" {
                    if let Some(index) = sdp.media.len().checked_sub(1) {
                        pending_fmtp(index, attr_value, &mut fmtps);
                    }
                } else if name == b"crypto" {
                    // Unusable keys and those past the cap are skipped like other
                    // malformed lines: the stream then stays `encrypted`.
                    if let Some(m) = sdp.media.last_mut().filter(|m| m.crypto.len() < MAX_CRYPTO) {
                        m.crypto.extend(super::sdp_crypto::parse_crypto(attr_value));
                    }
                } else if name == b"rtcp" {
                    // `a=rtcp:53020 IN IP4 126.16.64.4`: the port is what we use.
                    let port = attr_value.split(|&b| b == b' ').next().unwrap_or_default();
                    if let (Some(m), Some(p)) = (sdp.media.last_mut(), parse_num::<u16>(port)) {
                        m.rtcp_port = Some(p).filter(|p| *p != 0);
                    }
                } else if name == b"rtcp-mux" {
                    if let Some(m) = sdp.media.last_mut() {
                        m.rtcp_mux = true;
                    }
                } else if name == b"rtpmap" {
                    if let (Some(m), Some(map)) = (sdp.media.last_mut(), parse_rtpmap(attr_value)) {
                        if m.rtpmap(map.pt).is_none() {
                            if m.rtpmaps.len() >= MAX_RTPMAPS {
                                return Err(SdpError::TooManyRtpmaps { max: MAX_RTPMAPS });
                            }
                            m.rtpmaps.push(map);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !saw_line {
        return Err(SdpError::NotSdp);
    }
    sdp.direction = session_dir.unwrap_or_default();
    for (m, dir) in sdp.media.iter_mut().zip(media_dirs) {
        m.direction = dir.unwrap_or(sdp.direction);
        add_static_rtpmaps(m);
    }
    for (index, pt, params) in fmtps {
        let map = sdp
            .media
            .get_mut(index)
            .and_then(|m| m.rtpmaps.iter_mut().find(|r| r.pt == pt));
        if let Some(map) = map {
            map.fmtp.get_or_insert(params);
        }
    }
    Ok(sdp)
}

fn fields(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|f| !f.is_empty())
}

fn parse_num<T: TryFrom<u64>>(s: &[u8]) -> Option<T> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = s.iter().fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
    T::try_from(n).ok()
}

/// `IN IP4 192.0.2.1[/ttl[/n]]`; a hostname (allowed by the RFC, unseen in PBX
/// traffic) gives `None`.
fn parse_connection(value: &[u8]) -> Option<IpAddr> {
    let mut f = fields(value);
    let _nettype = f.next()?;
    let _addrtype = f.next()?;
    let addr = f.next()?;
    let addr = addr.split(|&b| b == b'/').next()?;
    std::str::from_utf8(addr).ok()?.parse().ok()
}

fn parse_m_line(value: &[u8]) -> Result<Media, SdpError> {
    let mut f = fields(value);
    let kind = match f.next() {
        Some(k) if k.eq_ignore_ascii_case(b"audio") => MediaKind::Audio,
        Some(k) if k.eq_ignore_ascii_case(b"video") => MediaKind::Video,
        Some(k) if k.eq_ignore_ascii_case(b"image") => MediaKind::Image,
        Some(k) if k.eq_ignore_ascii_case(b"application") => MediaKind::Application,
        _ => MediaKind::Other,
    };
    let port = f
        .next()
        .and_then(|p| p.split(|&b| b == b'/').next())
        .and_then(parse_num::<u16>)
        .unwrap_or(0);
    let proto = f
        .next()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let mut formats = Vec::new();
    for fmt in f {
        if let Some(pt) = parse_num::<u8>(fmt).filter(|&pt| pt <= 127) {
            if formats.len() >= MAX_FORMATS {
                return Err(SdpError::TooManyFormats { max: MAX_FORMATS });
            }
            formats.push(pt);
        }
    }
    Ok(Media {
        kind,
        port,
        proto,
        formats,
        connection: None,
        rtpmaps: Vec::new(),
        direction: Direction::SendRecv,
        crypto: Vec::new(),
        rtcp_port: None,
        rtcp_mux: false,
    })
}

fn parse_direction(name: &[u8]) -> Option<Direction> {
    Some(match name {
        b"sendrecv" => Direction::SendRecv,
        b"sendonly" => Direction::SendOnly,
        b"recvonly" => Direction::RecvOnly,
        b"inactive" => Direction::Inactive,
        _ => return None,
    })
}

/// Longest `a=fmtp` parameter string kept; real ones are under 200 bytes.
const MAX_FMTP_LEN: usize = 512;

/// `96 octet-align=1; mode-set=0,2`: remembered for the media section being read.
fn pending_fmtp(index: usize, value: &[u8], fmtps: &mut Vec<(usize, u8, String)>) {
    let mut f = value.splitn(2, |&b| b == b' ' || b == b'\t');
    let Some(pt) = f.next().and_then(parse_num::<u8>).filter(|&pt| pt <= 127) else {
        return;
    };
    let params = f.next().unwrap_or_default().trim_ascii();
    if params.len() > MAX_FMTP_LEN || fmtps.len() >= MAX_RTPMAPS * MAX_MEDIA {
        return;
    }
    fmtps.push((index, pt, String::from_utf8_lossy(params).into_owned()));
}

/// `0 PCMU/8000`, `101 telephone-event/8000/1`, `96 opus/48000/2`.
fn parse_rtpmap(value: &[u8]) -> Option<RtpMap> {
    let mut f = fields(value);
    let pt = parse_num::<u8>(f.next()?).filter(|&pt| pt <= 127)?;
    let mut parts = f.next()?.split(|&b| b == b'/');
    let encoding = parts.next().filter(|e| !e.is_empty())?;
    let clock_rate = parse_num::<u32>(parts.next()?)?;
    let channels = parts
        .next()
        .and_then(parse_num::<u8>)
        .filter(|&c| c > 0)
        .unwrap_or(1);
    Some(RtpMap {
        pt,
        encoding: String::from_utf8_lossy(encoding).into_owned(),
        clock_rate,
        channels,
        fmtp: None,
    })
}

/// RFC 3551 static audio/video payload types.
fn static_rtpmap(pt: u8) -> Option<(&'static str, u32, u8)> {
    Some(match pt {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        5 => ("DVI4", 8000, 1),
        6 => ("DVI4", 16000, 1),
        7 => ("LPC", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        12 => ("QCELP", 8000, 1),
        13 => ("CN", 8000, 1),
        14 => ("MPA", 90000, 1),
        15 => ("G728", 8000, 1),
        16 => ("DVI4", 11025, 1),
        17 => ("DVI4", 22050, 1),
        18 => ("G729", 8000, 1),
        25 => ("CelB", 90000, 1),
        26 => ("JPEG", 90000, 1),
        28 => ("nv", 90000, 1),
        31 => ("H261", 90000, 1),
        32 => ("MPV", 90000, 1),
        33 => ("MP2T", 90000, 1),
        34 => ("H263", 90000, 1),
        _ => return None,
    })
}

fn add_static_rtpmaps(m: &mut Media) {
    for &pt in &m.formats {
        if m.rtpmaps.len() >= MAX_RTPMAPS {
            break;
        }
        if m.rtpmaps.iter().any(|r| r.pt == pt) {
            continue;
        }
        if let Some((encoding, clock_rate, channels)) = static_rtpmap(pt) {
            m.rtpmaps.push(RtpMap {
                pt,
                encoding: encoding.to_owned(),
                clock_rate,
                channels,
                fmtp: None,
            });
        }
    }
}
