//! L16 (RFC 3551 §4.5.11): big-endian 16-bit samples, interleaved when stereo.
//! Trivial enough that a library would add nothing.

use super::{downmix_stereo, CodecError, DecodeError, Decoder, Format};

pub(super) struct L16 {
    rate: u32,
    channels: u8,
}

impl L16 {
    pub fn new(format: &Format) -> Result<L16, CodecError> {
        if !(1..=2).contains(&format.channels) || !(8000..=48000).contains(&format.clock_rate) {
            return Err(CodecError::BadParameters {
                name: "L16",
                clock_rate: format.clock_rate,
                channels: format.channels,
            });
        }
        Ok(L16 {
            rate: format.clock_rate,
            channels: format.channels,
        })
    }
}

impl Decoder for L16 {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), DecodeError> {
        let frame = 2 * usize::from(self.channels);
        if payload.len() % frame != 0 {
            return Err(DecodeError::Malformed {
                codec: "L16",
                len: payload.len(),
            });
        }
        let start = out.len();
        out.extend(
            payload
                .chunks_exact(2)
                .map(|b| i16::from_be_bytes([b[0], b[1]])),
        );
        if self.channels == 2 {
            downmix_stereo(out, start);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::codec::Codec;

    #[test]
    fn decodes_big_endian_and_mixes_stereo() {
        let mut mono = L16::new(&Format::plain(Codec::L16, 16000)).unwrap();
        let mut out = Vec::new();
        mono.decode(&[0x01, 0x02, 0xff, 0xfe], &mut out).unwrap();
        assert_eq!(out, vec![0x0102, -2]);
        assert!(mono.decode(&[1, 2, 3], &mut out).is_err());
        assert_eq!(out.len(), 2);
        let mut fmt = Format::plain(Codec::L16, 44100);
        fmt.channels = 2;
        let mut stereo = L16::new(&fmt).unwrap();
        let mut out = Vec::new();
        stereo
            .decode(&[0, 100, 0, 50, 0xff, 0x00, 0xff, 0x00], &mut out)
            .unwrap();
        assert_eq!(out, vec![75, -256]);
        assert!(stereo.decode(&[0, 1], &mut out).is_err());
    }
}
