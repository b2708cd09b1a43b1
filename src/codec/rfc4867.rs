//! RFC 4867 AMR and AMR-WB RTP payloads, both modes, read in place.
//!
//! A payload is a CMR, a table of contents (one entry per frame, the F bit
//! saying another follows) and the frames' speech bits. In octet-aligned
//! mode each field is padded to whole bytes; in bandwidth-efficient mode the
//! fields follow each other bit by bit. [`AmrPayload::new_checked`] validates
//! the whole table and the exact length once, so the frame iterator cannot
//! fail. Interleaving and CRCs are not read: a payload using them has a
//! length the table does not explain, and is refused.
//!
//! Each frame is handed on in the storage format (RFC 4867 §5.3: one ToC byte,
//! then the speech bits from the first byte), which opencore decodes.

use thiserror::Error;

/// At most 1 s of 20 ms frames in one packet.
pub const MAX_FRAMES: usize = 50;
/// A storage-format frame: ToC byte plus the largest frame (AMR-WB 23.85
/// kbit/s, 477 bits in 60 bytes).
pub const STORAGE_MAX: usize = 61;

/// Speech bits per frame type, RFC 4867 §3.6 / 3GPP TS 26.101 and 26.201;
/// the last entry is the SID (comfort noise) frame.
const NB_BITS: [u16; 9] = [95, 103, 118, 134, 148, 159, 204, 244, 39];
const WB_BITS: [u16; 10] = [132, 177, 253, 285, 317, 365, 397, 461, 477, 40];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Band {
    /// AMR, 8 kHz.
    Narrow,
    /// AMR-WB, 16 kHz.
    Wide,
}

impl Band {
    /// Speech bits of frame type `ft`; `None` for the types RFC 4867 §4.3.2
    /// says make a receiver discard the packet (reserved, or other systems'
    /// SIDs). NO_DATA (15) and AMR-WB's SPEECH_LOST (14) carry no bits.
    pub fn frame_bits(self, ft: u8) -> Option<u16> {
        match (self, ft) {
            (Band::Narrow, 0..=8) => NB_BITS.get(usize::from(ft)).copied(),
            (Band::Wide, 0..=9) => WB_BITS.get(usize::from(ft)).copied(),
            (Band::Narrow, 15) | (Band::Wide, 14 | 15) => Some(0),
            _ => None,
        }
    }

    /// Samples one frame (20 ms) decodes to.
    pub fn frame_samples(self) -> usize {
        match self {
            Band::Narrow => 160,
            Band::Wide => 320,
        }
    }
}

/// Why a payload is refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    #[error("payload ends at byte {len} inside its header or table of contents")]
    Truncated { len: usize },
    #[error("frame type {ft} is reserved or not for this codec")]
    FrameType { ft: u8 },
    #[error("more than {MAX_FRAMES} frames in one packet")]
    TooManyFrames,
    #[error("payload is {len} bytes but its table of contents describes {expected}")]
    Length { len: usize, expected: usize },
}

/// A validated payload.
#[derive(Clone, Copy, Debug)]
pub struct AmrPayload<'a> {
    data: &'a [u8],
    band: Band,
    octet_aligned: bool,
    frames: usize,
}

impl<'a> AmrPayload<'a> {
    pub fn new_checked(
        data: &'a [u8],
        band: Band,
        octet_aligned: bool,
    ) -> Result<AmrPayload<'a>, PayloadError> {
        let p = AmrPayload {
            data,
            band,
            octet_aligned,
            frames: 0,
        };
        let mut frames = 0;
        let mut speech_bits = 0usize;
        loop {
            if frames == MAX_FRAMES {
                return Err(PayloadError::TooManyFrames);
            }
            let (more, ft, _) = p
                .toc(frames)
                .ok_or(PayloadError::Truncated { len: data.len() })?;
            let bits = band.frame_bits(ft).ok_or(PayloadError::FrameType { ft })?;
            speech_bits += p.frame_span(bits);
            frames += 1;
            if !more {
                break;
            }
        }
        let expected = (p.speech_start(frames) + speech_bits).div_ceil(8);
        if expected != data.len() {
            return Err(PayloadError::Length {
                len: data.len(),
                expected,
            });
        }
        Ok(AmrPayload { frames, ..p })
    }

    /// The codec mode the receiver asks the sender for (15: no request).
    pub fn cmr(&self) -> u8 {
        read_bits(self.data, 0, 4) as u8
    }

    pub fn len(&self) -> usize {
        self.frames
    }

    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    pub fn frames(&self) -> Frames<'a> {
        Frames {
            payload: *self,
            index: 0,
            bit: self.speech_start(self.frames),
        }
    }

    fn toc_bits(&self) -> usize {
        if self.octet_aligned {
            8
        } else {
            6
        }
    }

    /// Bit where ToC entry `i` starts (after the 4- or 8-bit CMR field).
    fn toc_start(&self, i: usize) -> usize {
        let cmr = if self.octet_aligned { 8 } else { 4 };
        cmr + i * self.toc_bits()
    }

    /// (F, FT, Q) of entry `i`, if the payload holds it.
    fn toc(&self, i: usize) -> Option<(bool, u8, bool)> {
        let at = self.toc_start(i);
        if at + 6 > self.data.len() * 8 {
            return None;
        }
        let e = read_bits(self.data, at, 6);
        Some((e & 0x20 != 0, ((e >> 1) & 0x0f) as u8, e & 1 != 0))
    }

    fn speech_start(&self, frames: usize) -> usize {
        self.toc_start(frames)
    }

    /// Bits a frame of `bits` speech bits occupies in the payload.
    fn frame_span(&self, bits: u16) -> usize {
        let bits = usize::from(bits);
        if self.octet_aligned {
            bits.div_ceil(8) * 8
        } else {
            bits
        }
    }
}

/// One frame of a payload.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Frame type: the codec mode, SID, or NO_DATA.
    pub ft: u8,
    /// Q: false when the frame is known to be damaged.
    pub good: bool,
    data: &'a [u8],
    bit: usize,
    bits: u16,
}

impl Frame<'_> {
    /// Writes the frame in storage format into `buf`, returning the bytes used.
    pub fn to_storage<'b>(&self, buf: &'b mut [u8; STORAGE_MAX]) -> &'b [u8] {
        buf[0] = (self.ft << 3) | (u8::from(self.good) << 2);
        let bytes = usize::from(self.bits).div_ceil(8);
        for (j, b) in buf[1..=bytes].iter_mut().enumerate() {
            let take = (usize::from(self.bits) - 8 * j).min(8);
            *b = (read_bits(self.data, self.bit + 8 * j, take) << (8 - take)) as u8;
        }
        &buf[..=bytes]
    }
}

pub struct Frames<'a> {
    payload: AmrPayload<'a>,
    index: usize,
    bit: usize,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if self.index >= self.payload.frames {
            return None;
        }
        let (_, ft, good) = self.payload.toc(self.index)?;
        let bits = self.payload.band.frame_bits(ft)?;
        let frame = Frame {
            ft,
            good,
            data: self.payload.data,
            bit: self.bit,
            bits,
        };
        self.index += 1;
        self.bit += self.payload.frame_span(bits);
        Some(frame)
    }
}

/// `n` (≤ 24) bits from bit `at`, most significant first; bits past the end
/// of `data` read as zero.
fn read_bits(data: &[u8], at: usize, n: usize) -> u32 {
    let mut v = 0u32;
    for k in at..at + n {
        let bit = data.get(k / 8).map_or(0, |b| (b >> (7 - k % 8)) & 1);
        v = (v << 1) | u32::from(bit);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bits appended MSB first, for building bandwidth-efficient payloads.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        fn put(&mut self, v: u32, n: usize) {
            for k in (0..n).rev() {
                if self.bits % 8 == 0 {
                    self.bytes.push(0);
                }
                let last = self.bytes.last_mut().unwrap();
                *last |= (((v >> k) & 1) as u8) << (7 - self.bits % 8);
                self.bits += 1;
            }
        }
    }

    fn speech(bits: u16, seed: u8) -> Vec<u8> {
        let bytes = usize::from(bits).div_ceil(8);
        let mut v: Vec<u8> = (0..bytes)
            .map(|i| {
                seed.wrapping_mul(31)
                    .wrapping_add((i as u8).wrapping_mul(7))
            })
            .collect();
        let spare = bytes * 8 - usize::from(bits);
        if let Some(l) = v.last_mut() {
            *l &= 0xffu8 << spare;
        }
        v
    }

    #[test]
    fn octet_aligned_two_frames_and_no_data() {
        // CMR 7, ToC: MR122 (F=1,Q=1), then NO_DATA (F=0,Q=1).
        let f0 = speech(244, 3);
        let mut p = vec![0x70, 0x80 | (7 << 3) | 0x04, (15 << 3) | 0x04];
        p.extend_from_slice(&f0);
        let a = AmrPayload::new_checked(&p, Band::Narrow, true).unwrap();
        assert_eq!((a.cmr(), a.len()), (7, 2));
        let frames: Vec<_> = a.frames().collect();
        let mut buf = [0; STORAGE_MAX];
        let s = frames[0].to_storage(&mut buf);
        assert_eq!(s[0], 0x3c);
        assert_eq!(&s[1..], &f0[..]);
        assert_eq!(frames[1].to_storage(&mut buf), &[0x7c]);
        // One byte more or less is refused.
        let mut longer = p.clone();
        longer.push(0);
        assert!(matches!(
            AmrPayload::new_checked(&longer, Band::Narrow, true),
            Err(PayloadError::Length { .. })
        ));
        assert!(AmrPayload::new_checked(&p[..p.len() - 1], Band::Narrow, true).is_err());
    }

    #[test]
    fn bandwidth_efficient_matches_octet_aligned() {
        for (band, fts) in [
            (Band::Narrow, vec![0u8, 4, 7, 8, 15]),
            (Band::Wide, vec![0u8, 2, 8, 9, 14, 15]),
        ] {
            let frames: Vec<(u8, Vec<u8>)> = fts
                .iter()
                .map(|&ft| (ft, speech(band.frame_bits(ft).unwrap(), ft)))
                .collect();
            let mut w = BitWriter::default();
            w.put(15, 4);
            for (i, (ft, _)) in frames.iter().enumerate() {
                let f = u32::from(i + 1 < frames.len());
                w.put((f << 5) | (u32::from(*ft) << 1) | 1, 6);
            }
            for (ft, s) in &frames {
                let bits = usize::from(band.frame_bits(*ft).unwrap());
                for k in 0..bits {
                    w.put(u32::from((s[k / 8] >> (7 - k % 8)) & 1), 1);
                }
            }
            let a = AmrPayload::new_checked(&w.bytes, band, false).unwrap();
            assert_eq!(a.cmr(), 15);
            let mut buf = [0; STORAGE_MAX];
            let mut n = 0;
            for (got, (ft, s)) in a.frames().zip(&frames) {
                let st = got.to_storage(&mut buf);
                assert_eq!(st[0], (ft << 3) | 4);
                assert_eq!(&st[1..], &s[..], "{band:?} ft {ft}");
                n += 1;
            }
            assert_eq!(n, frames.len());
        }
    }

    #[test]
    fn refuses_reserved_types_truncation_and_floods() {
        // NB frame type 9 (GSM-EFR SID) and 14 are refused; WB 10 too.
        assert_eq!(
            AmrPayload::new_checked(&[0xf0, 9 << 3], Band::Narrow, true).unwrap_err(),
            PayloadError::FrameType { ft: 9 }
        );
        assert!(AmrPayload::new_checked(&[0xf0, 14 << 3], Band::Narrow, true).is_err());
        assert!(AmrPayload::new_checked(&[0xf0, 10 << 3], Band::Wide, true).is_err());
        assert!(AmrPayload::new_checked(&[0xf0, 14 << 3], Band::Wide, true).is_ok());
        for bad in [&[][..], &[0xf0], &[0xf0, 0x80 | (15 << 3)]] {
            assert!(AmrPayload::new_checked(bad, Band::Narrow, true).is_err());
            assert!(AmrPayload::new_checked(bad, Band::Wide, false).is_err());
        }
        // 51 NO_DATA entries with F=1 then F=0.
        let mut p = vec![0xf0];
        p.extend(std::iter::repeat_n(0x80 | (15 << 3), MAX_FRAMES));
        p.push(15 << 3);
        assert_eq!(
            AmrPayload::new_checked(&p, Band::Narrow, true).unwrap_err(),
            PayloadError::TooManyFrames
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x1234_5678u32;
        for len in 0..200 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            for band in [Band::Narrow, Band::Wide] {
                for oa in [false, true] {
                    if let Ok(p) = AmrPayload::new_checked(&data, band, oa) {
                        let mut buf = [0; STORAGE_MAX];
                        assert_eq!(p.frames().count(), p.len());
                        for f in p.frames() {
                            let _ = f.to_storage(&mut buf);
                        }
                    }
                }
            }
        }
    }
}
