//! G.711: a table lookup per byte (the tables live with the core's codec list).

use super::{Codec, DecodeError, Decoder};
use crate::rtp::codec::decode_g711;

pub(super) struct G711(pub Codec);

impl Decoder for G711 {
    fn rate(&self) -> u32 {
        8000
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), DecodeError> {
        if decode_g711(self.0, payload, out) {
            Ok(())
        } else {
            Err(DecodeError::Malformed {
                codec: self.0.name(),
                len: payload.len(),
            })
        }
    }
}
