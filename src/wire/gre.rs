//! GRE (RFC 2784/2890, and PPTP's enhanced GRE v1), ERSPAN type II/III and the PPP
//! framing carried by enhanced GRE: the encapsulations port mirrors and SBC taps use.

use super::error::{Layer, WireError};
use super::field::{be16, tail, u8_at};

pub const PROTO_TEB: u16 = 0x6558;
pub const PROTO_ERSPAN2: u16 = 0x88be;
pub const PROTO_ERSPAN3: u16 = 0x22eb;
pub const PROTO_PPP: u16 = 0x880b;

const FLAG_C: u8 = 0x80;
const FLAG_R: u8 = 0x40;
const FLAG_K: u8 = 0x20;
const FLAG_S: u8 = 0x10;
const FLAG_A: u8 = 0x80;

/// GRE header view; its length depends on the flags, so `check_len` reads them.
#[derive(Debug, Clone, Copy)]
pub struct GrePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GrePacket<T> {
    pub const MIN_LEN: usize = 4;

    pub const fn new_unchecked(buffer: T) -> Self {
        GrePacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let have = self.buffer.as_ref().len();
        if have < Self::MIN_LEN {
            return Err(WireError::truncated(Layer::Gre, Self::MIN_LEN, have));
        }
        match self.version() {
            0 => {
                if self.flags() & FLAG_R != 0 {
                    // RFC 1701 source routing: deprecated and never seen from mirrors.
                    return Err(WireError::Malformed {
                        layer: Layer::Gre,
                        what: "source_routing_unsupported",
                    });
                }
            }
            1 => {}
            version => return Err(WireError::UnsupportedGreVersion { version }),
        }
        let need = self.header_len();
        if have < need {
            return Err(WireError::truncated(Layer::Gre, need, have));
        }
        Ok(())
    }

    fn flags(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 0)
    }

    pub fn version(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 1) & 0x07
    }

    pub fn protocol(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    pub fn has_checksum(&self) -> bool {
        self.flags() & FLAG_C != 0
    }

    pub fn has_key(&self) -> bool {
        self.flags() & FLAG_K != 0
    }

    pub fn has_sequence(&self) -> bool {
        self.flags() & FLAG_S != 0
    }

    /// Enhanced GRE (v1) only: an acknowledgment number follows.
    pub fn has_ack(&self) -> bool {
        self.version() == 1 && u8_at(self.buffer.as_ref(), 1) & FLAG_A != 0
    }

    pub fn header_len(&self) -> usize {
        let f = self.flags();
        let mut len = 4;
        if f & (FLAG_C | FLAG_R) != 0 {
            len += 4;
        }
        if f & FLAG_K != 0 {
            len += 4;
        }
        if f & FLAG_S != 0 {
            len += 4;
        }
        if self.has_ack() {
            len += 4;
        }
        len
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<'a> GrePacket<&'a [u8]> {
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buffer, self.header_len())
    }
}

/// What an ERSPAN header wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErspanInner<'a> {
    Ethernet(&'a [u8]),
    Ip(&'a [u8]),
}

/// ERSPAN type II (8-byte header, version 1) or type III (12 bytes, version 2, plus an
/// optional 8-byte platform sub-header when the O bit is set).
#[derive(Debug, Clone, Copy)]
pub struct ErspanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ErspanPacket<T> {
    pub const TYPE2_LEN: usize = 8;
    pub const TYPE3_LEN: usize = 12;

    pub const fn new_unchecked(buffer: T) -> Self {
        ErspanPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let have = self.buffer.as_ref().len();
        if have < 1 {
            return Err(WireError::truncated(Layer::Erspan, 1, have));
        }
        let version = self.version();
        if version != 1 && version != 2 {
            return Err(WireError::UnsupportedErspan {
                version,
                frame_type: 0,
            });
        }
        // Length first: the O bit and frame type live in the type III header itself.
        let fixed = if version == 1 {
            Self::TYPE2_LEN
        } else {
            Self::TYPE3_LEN
        };
        if have < fixed {
            return Err(WireError::truncated(Layer::Erspan, fixed, have));
        }
        let need = self.header_len();
        if have < need {
            return Err(WireError::truncated(Layer::Erspan, need, have));
        }
        let frame_type = self.frame_type();
        if frame_type != 0 && frame_type != 2 {
            return Err(WireError::UnsupportedErspan {
                version,
                frame_type,
            });
        }
        Ok(())
    }

    /// 1 = type II, 2 = type III.
    pub fn version(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 0) >> 4
    }

    pub fn vlan(&self) -> u16 {
        be16(self.buffer.as_ref(), 0) & 0x0fff
    }

    pub fn session_id(&self) -> u16 {
        be16(self.buffer.as_ref(), 2) & 0x03ff
    }

    fn type3_word(&self) -> u16 {
        be16(self.buffer.as_ref(), 10)
    }

    /// Type III frame type: 0 Ethernet, 2 IP. Type II always carries Ethernet.
    pub fn frame_type(&self) -> u8 {
        if self.version() == 2 {
            ((self.type3_word() >> 10) & 0x1f) as u8
        } else {
            0
        }
    }

    pub fn header_len(&self) -> usize {
        match self.version() {
            2 if self.type3_word() & 1 != 0 => Self::TYPE3_LEN + 8,
            2 => Self::TYPE3_LEN,
            _ => Self::TYPE2_LEN,
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<'a> ErspanPacket<&'a [u8]> {
    pub fn inner(&self) -> ErspanInner<'a> {
        let payload = tail(self.buffer, self.header_len());
        if self.frame_type() == 2 {
            ErspanInner::Ip(payload)
        } else {
            ErspanInner::Ethernet(payload)
        }
    }
}

/// PPP as carried in enhanced GRE: optional 0xff 0x03 address/control, then a 1-byte
/// (compressed, odd) or 2-byte protocol.
#[derive(Debug, Clone, Copy)]
pub struct PppPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> PppPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        PppPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let have = self.buffer.as_ref().len();
        let need = self.header_len();
        if have < need {
            return Err(WireError::truncated(Layer::Ppp, need, have));
        }
        Ok(())
    }

    fn addr_len(&self) -> usize {
        let b = self.buffer.as_ref();
        if b.get(..2) == Some(&[0xff, 0x03]) {
            2
        } else {
            0
        }
    }

    pub fn protocol(&self) -> u16 {
        let b = self.buffer.as_ref();
        let at = self.addr_len();
        let first = u8_at(b, at);
        if first & 1 == 1 {
            u16::from(first)
        } else {
            be16(b, at)
        }
    }

    pub fn header_len(&self) -> usize {
        let at = self.addr_len();
        if u8_at(self.buffer.as_ref(), at) & 1 == 1 {
            at + 1
        } else {
            at + 2
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<'a> PppPacket<&'a [u8]> {
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buffer, self.header_len())
    }
}

#[cfg(test)]
#[path = "tests/gre.rs"]
mod tests;
