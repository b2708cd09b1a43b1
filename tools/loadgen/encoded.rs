//! Real encoded frames for the load generator and the codec benchmarks:
//! the project's own speech (pcap-fixtures/audio) run through ffmpeg's
//! encoders, cut into 20 ms RTP payloads.

use std::io;
use std::path::Path;
use std::process::Command;

use super::EncodedCodec;

/// The codecs ffmpeg can encode for us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfmpegCodec {
    G722,
    Opus,
    /// G.726 at 32 kbit/s, RFC 3551 packing (`g726le`).
    G726,
    Gsm,
    Speex,
}

impl FfmpegCodec {
    pub const ALL: [FfmpegCodec; 5] = [
        FfmpegCodec::G722,
        FfmpegCodec::Opus,
        FfmpegCodec::G726,
        FfmpegCodec::Gsm,
        FfmpegCodec::Speex,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FfmpegCodec::G722 => "G722",
            FfmpegCodec::Opus => "opus",
            FfmpegCodec::G726 => "G726-32",
            FfmpegCodec::Gsm => "GSM",
            FfmpegCodec::Speex => "speex",
        }
    }
}

/// Encodes `pcmu` (raw µ-law, 8 kHz mono) with ffmpeg into 20 ms payloads.
pub fn encode_with_ffmpeg(codec: FfmpegCodec, pcmu: &Path) -> io::Result<EncodedCodec> {
    let input = ["-f", "mulaw", "-ar", "8000", "-ac", "1", "-i"];
    let (args, pt, rtpmap, fmtp, ts): (&[&str], u8, &str, Option<&str>, u32) = match codec {
        FfmpegCodec::G722 => (
            &["-ar", "16000", "-c:a", "g722", "-f", "g722"],
            9,
            "G722/8000",
            None,
            160,
        ),
        FfmpegCodec::Opus => (
            &[
                "-ar",
                "48000",
                "-c:a",
                "libopus",
                "-b:a",
                "24k",
                "-application",
                "voip",
                "-frame_duration",
                "20",
                "-f",
                "ogg",
            ],
            111,
            "opus/48000/2",
            Some("useinbandfec=1"),
            960,
        ),
        FfmpegCodec::G726 => (
            &["-c:a", "g726le", "-b:a", "32k", "-f", "g726le"],
            112,
            "G726-32/8000",
            None,
            160,
        ),
        FfmpegCodec::Gsm => (&["-c:a", "libgsm", "-f", "gsm"], 3, "GSM/8000", None, 160),
        FfmpegCodec::Speex => (
            &["-c:a", "libspeex", "-frames_per_packet", "1", "-f", "ogg"],
            113,
            "speex/8000",
            None,
            160,
        ),
    };
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(input)
        .arg(pcmu)
        .args(args)
        .arg("-")
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ffmpeg could not encode {}: {}",
            codec.name(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let frames = match codec {
        FfmpegCodec::G722 => out.stdout.chunks_exact(160).map(<[u8]>::to_vec).collect(),
        FfmpegCodec::G726 => out.stdout.chunks_exact(80).map(<[u8]>::to_vec).collect(),
        FfmpegCodec::Gsm => out.stdout.chunks_exact(33).map(<[u8]>::to_vec).collect(),
        // The first two Ogg packets are the stream headers.
        FfmpegCodec::Opus | FfmpegCodec::Speex => {
            ogg_packets(&out.stdout).into_iter().skip(2).collect()
        }
    };
    Ok(EncodedCodec {
        pt,
        rtpmap: rtpmap.into(),
        fmtp: fmtp.map(str::to_string),
        ts_per_frame: ts,
        frames,
    })
}

/// The packets of an Ogg stream (RFC 3533): pages of lacing values, a value
/// under 255 ending a packet. Tooling only: input is ffmpeg's own output.
pub fn ogg_packets(data: &[u8]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    let mut at = 0;
    while let Some(page) = data.get(at..) {
        if page.len() < 27 || &page[..4] != b"OggS" {
            break;
        }
        let segments = usize::from(page[26]);
        let Some(lacing) = page.get(27..27 + segments) else {
            break;
        };
        let mut body = 27 + segments;
        for &len in lacing {
            let len = usize::from(len);
            let Some(part) = page.get(body..body + len) else {
                return packets;
            };
            current.extend_from_slice(part);
            body += len;
            if len < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        at += body;
    }
    packets
}
