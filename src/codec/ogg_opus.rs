//! Ogg/Opus files (RFC 7845) from 16-bit PCM, for recordings kept as Opus.
//!
//! libopus encodes 20 ms packets; the `ogg` crate frames them. What players
//! need to seek and to play the exact length: the ID header's pre-skip (the
//! encoder's lookahead, at 48 kHz), every page's granule position (48 kHz
//! samples up to the end of its last packet, pre-skip included), a page per
//! second so a seek lands near, and a last granule position that cuts the
//! padding of the final packet (RFC 7845 §4.4).

use std::io::Write;
use std::ptr::NonNull;

use ogg::writing::{PacketWriteEndInfo, PacketWriter};
use thiserror::Error;

mod ffi {
    use std::ffi::c_int;

    #[repr(C)]
    pub struct OpusEncoder {
        _private: [u8; 0],
    }

    #[link(name = "opus")]
    extern "C" {
        pub fn opus_encoder_create(
            fs: i32,
            channels: c_int,
            application: c_int,
            error: *mut c_int,
        ) -> *mut OpusEncoder;
        pub fn opus_encode(
            st: *mut OpusEncoder,
            pcm: *const i16,
            frame_size: c_int,
            data: *mut u8,
            max_data_bytes: i32,
        ) -> i32;
        pub fn opus_encoder_ctl(st: *mut OpusEncoder, request: c_int, ...) -> c_int;
        pub fn opus_encoder_destroy(st: *mut OpusEncoder);
    }

    pub const OPUS_APPLICATION_AUDIO: c_int = 2049;
    pub const OPUS_SET_BITRATE_REQUEST: c_int = 4002;
    pub const OPUS_SET_SIGNAL_REQUEST: c_int = 4024;
    pub const OPUS_GET_LOOKAHEAD_REQUEST: c_int = 4027;
    pub const OPUS_SIGNAL_VOICE: c_int = 3001;
}

/// Packets per Ogg page: one second of 20 ms packets.
const PACKETS_PER_PAGE: usize = 50;
/// RFC 6716 §3.4 R2 bounds a 20 ms frame's packet at 1275 bytes.
const MAX_PACKET: usize = 1275;

#[derive(Debug, Error)]
pub enum OggOpusError {
    #[error("Opus cannot encode at {rate} Hz (8, 12, 16, 24 or 48 kHz)")]
    Rate { rate: u32 },
    #[error("Opus files here are mono or stereo, not {channels} channels")]
    Channels { channels: u8 },
    #[error("the Opus encoder failed with code {code}")]
    Library { code: i32 },
    #[error("writing the Ogg/Opus file: {0}")]
    Io(#[from] std::io::Error),
}

/// The libopus encoder state, freed on drop.
struct Encoder(NonNull<ffi::OpusEncoder>);

// SAFETY: heap memory owned by this value alone; libopus keeps no global
// state for it.
unsafe impl Send for Encoder {}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_encoder_create, freed once.
        unsafe { ffi::opus_encoder_destroy(self.0.as_ptr()) }
    }
}

/// Writes one Ogg/Opus stream to `W`; [`OggOpusWriter::finish`] ends it.
pub struct OggOpusWriter<W: Write> {
    enc: Encoder,
    ogg: PacketWriter<'static, W>,
    serial: u32,
    rate: u32,
    channels: usize,
    /// Samples per channel in a 20 ms packet at `rate`.
    frame: usize,
    /// Interleaved samples waiting for a whole packet.
    pending: Vec<i16>,
    pre_skip: u64,
    /// Samples per channel given to `write`.
    total: u64,
    /// Samples per channel encoded (a multiple of `frame`).
    encoded: u64,
    packets_in_page: usize,
    /// The last encoded packet, held back so the stream's end can be marked on it.
    held: Option<Vec<u8>>,
}

impl<W: Write> OggOpusWriter<W> {
    /// `serial` names the logical stream (any value; a random one lets the
    /// file be chained with others). `bitrate` is for all channels together.
    pub fn new(
        w: W,
        rate: u32,
        channels: u8,
        bitrate: u32,
        serial: u32,
    ) -> Result<Self, OggOpusError> {
        if ![8000, 12000, 16000, 24000, 48000].contains(&rate) {
            return Err(OggOpusError::Rate { rate });
        }
        if !(1..=2).contains(&channels) {
            return Err(OggOpusError::Channels { channels });
        }
        let mut error = 0;
        // SAFETY: valid rate, channels and application; `error` outlives the call.
        let enc = unsafe {
            ffi::opus_encoder_create(
                rate as i32,
                i32::from(channels),
                ffi::OPUS_APPLICATION_AUDIO,
                &mut error,
            )
        };
        let enc = Encoder(NonNull::new(enc).ok_or(OggOpusError::Library { code: error })?);
        let mut lookahead: i32 = 0;
        // SAFETY: each request takes one int (SET) or one int pointer (GET).
        let codes = unsafe {
            [
                ffi::opus_encoder_ctl(
                    enc.0.as_ptr(),
                    ffi::OPUS_SET_BITRATE_REQUEST,
                    bitrate.clamp(6000, 510_000) as i32,
                ),
                ffi::opus_encoder_ctl(
                    enc.0.as_ptr(),
                    ffi::OPUS_SET_SIGNAL_REQUEST,
                    ffi::OPUS_SIGNAL_VOICE,
                ),
                ffi::opus_encoder_ctl(
                    enc.0.as_ptr(),
                    ffi::OPUS_GET_LOOKAHEAD_REQUEST,
                    &mut lookahead as *mut i32,
                ),
            ]
        };
        let mut me = OggOpusWriter {
            enc,
            ogg: PacketWriter::new(w),
            serial,
            rate,
            channels: usize::from(channels),
            frame: rate as usize / 50,
            pending: Vec::new(),
            pre_skip: u64::from(lookahead.max(0) as u32) * 48000 / u64::from(rate),
            total: 0,
            encoded: 0,
            packets_in_page: 0,
            held: None,
        };
        if let Some(&code) = codes.iter().find(|&&c| c != 0) {
            return Err(OggOpusError::Library { code });
        }
        me.write_headers(channels)?;
        Ok(me)
    }

    fn write_headers(&mut self, channels: u8) -> Result<(), OggOpusError> {
        // ID header, RFC 7845 §5.1: version 1, mapping family 0.
        let mut head = b"OpusHead".to_vec();
        head.push(1);
        head.push(channels);
        head.extend_from_slice(&(self.pre_skip as u16).to_le_bytes());
        head.extend_from_slice(&self.rate.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes());
        head.push(0);
        self.ogg
            .write_packet(head, self.serial, PacketWriteEndInfo::EndPage, 0)?;
        // Comment header, §5.2: vendor string, no comments.
        let vendor = concat!("pbxbridge ", env!("CARGO_PKG_VERSION")).as_bytes();
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes());
        self.ogg
            .write_packet(tags, self.serial, PacketWriteEndInfo::EndPage, 0)?;
        Ok(())
    }

    /// Appends interleaved samples (`channels` per frame).
    pub fn write(&mut self, interleaved: &[i16]) -> Result<(), OggOpusError> {
        self.total += (interleaved.len() / self.channels) as u64;
        self.pending.extend_from_slice(interleaved);
        let packet = self.frame * self.channels;
        let whole = self.pending.len() / packet * packet;
        let pending = std::mem::take(&mut self.pending);
        for chunk in pending[..whole].chunks_exact(packet) {
            self.encode(chunk)?;
        }
        self.pending = pending[whole..].to_vec();
        Ok(())
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<(), OggOpusError> {
        let mut buf = vec![0u8; MAX_PACKET];
        // SAFETY: `pcm` holds one 20 ms frame for every channel; `buf` has
        // room for the largest packet of that frame.
        let n = unsafe {
            ffi::opus_encode(
                self.enc.0.as_ptr(),
                pcm.as_ptr(),
                self.frame as i32,
                buf.as_mut_ptr(),
                buf.len() as i32,
            )
        };
        if n < 0 {
            return Err(OggOpusError::Library { code: n });
        }
        buf.truncate(n as usize);
        self.flush_held(false)?;
        self.encoded += self.frame as u64;
        self.held = Some(buf);
        Ok(())
    }

    /// Writes the held packet. Its granule position counts the samples
    /// decoded up to its end, pre-skip included (RFC 7845 §4); on the last
    /// one it is the pre-skip plus the input's length, which trims the
    /// padding. That is at most one packet's worth below the count, as
    /// `finish` sends no more packets than that needs.
    fn flush_held(&mut self, last: bool) -> Result<(), OggOpusError> {
        let Some(packet) = self.held.take() else {
            return Ok(());
        };
        let to48 = |n: u64| n * 48000 / u64::from(self.rate);
        let granule = if last {
            self.pre_skip + to48(self.total)
        } else {
            // `encode` adds the next packet only after flushing this one.
            to48(self.encoded)
        };
        self.packets_in_page += 1;
        let info = if last {
            PacketWriteEndInfo::EndStream
        } else if self.packets_in_page == PACKETS_PER_PAGE {
            self.packets_in_page = 0;
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        self.ogg.write_packet(packet, self.serial, info, granule)?;
        Ok(())
    }

    /// Encodes what is left (zero-padded to a packet, plus one more packet
    /// so the lookahead's worth of audio comes out), ends the stream and
    /// returns the writer.
    pub fn finish(mut self) -> Result<W, OggOpusError> {
        let packet = self.frame * self.channels;
        let mut tail = std::mem::take(&mut self.pending);
        // Enough zeros to flush the encoder's lookahead through.
        let lookahead = (self.pre_skip * u64::from(self.rate) / 48000) as usize * self.channels;
        tail.resize((tail.len() + lookahead).div_ceil(packet).max(1) * packet, 0);
        for chunk in tail.chunks_exact(packet) {
            self.encode(chunk)?;
        }
        self.flush_held(true)?;
        let mut w = self.ogg.into_inner();
        w.flush()?;
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pages' granule positions and the header fields, read back with
    /// the `ogg` crate's reader (ffmpeg and opusinfo check the rest in
    /// tests/codec_reference.rs).
    #[test]
    fn headers_and_granule_positions() {
        let mut w = OggOpusWriter::new(Vec::new(), 16000, 1, 24000, 7).unwrap();
        // 2.5 s and 5 samples: 125 packets plus the tail.
        w.write(&vec![1000i16; 40005]).unwrap();
        let file = w.finish().unwrap();
        let mut r = ogg::PacketReader::new(std::io::Cursor::new(file));
        let head = r.read_packet().unwrap().unwrap();
        assert_eq!(&head.data[..8], b"OpusHead");
        assert_eq!((head.data[8], head.data[9]), (1, 1));
        let pre_skip = u64::from(u16::from_le_bytes([head.data[10], head.data[11]]));
        assert!(pre_skip > 0 && pre_skip < 48000 / 50);
        assert_eq!(head.data[12..16], 16000u32.to_le_bytes());
        let tags = r.read_packet().unwrap().unwrap();
        assert_eq!(&tags.data[..8], b"OpusTags");
        let mut packets = 0u64;
        let mut last = (0, false);
        while let Some(p) = r.read_packet().unwrap() {
            packets += 1;
            if p.last_in_page() && !p.last_in_stream() {
                // Granule = 48 kHz samples decoded to the end of this packet.
                assert_eq!(p.absgp_page(), packets * 960);
            }
            last = (p.absgp_page(), p.last_in_stream());
        }
        assert!(last.1, "the stream is ended");
        assert_eq!(last.0, pre_skip + 40005 * 3);
        // No more packets than the input and the lookahead need.
        assert_eq!(packets, (40005 * 3 + pre_skip).div_ceil(960));
    }

    #[test]
    fn refuses_rates_and_channels_opus_has_not() {
        assert!(matches!(
            OggOpusWriter::new(Vec::new(), 44100, 2, 32000, 1),
            Err(OggOpusError::Rate { rate: 44100 })
        ));
        assert!(matches!(
            OggOpusWriter::new(Vec::new(), 48000, 3, 32000, 1),
            Err(OggOpusError::Channels { channels: 3 })
        ));
    }
}
