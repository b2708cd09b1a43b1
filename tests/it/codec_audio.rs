//! Codec audio test: for every fixture call whose expected record carries
//! `_codec_audio` (G.722, Opus, G.729, a mid-call codec change, mixed codecs),
//! each WAV channel must hold what an independent decoder, ffmpeg, makes of
//! the RTP payloads that side sent after the answer: left = caller, right =
//! callee, found by cross-correlation within ±1 s of where the packets
//! arrived, then compared over the whole stretch by normalised correlation.
//!
//! The reference is taken from the capture itself (this file reads the pcap),
//! not from the encoder's input, so it checks our decoding, not the codec's
//! fidelity. The `lossy` fixture is checked against `tshark -z rtp,streams`.

use crate::fixture_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use fixture_support::*;
use serde_json::Value;

/// Where the channel may sit relative to the packets' arrival: ±1 s.
const SEARCH_SECS: f64 = 1.0;
/// The alignment window, a quarter of a second of the loudest reference audio.
const WINDOW_SECS: f64 = 0.25;
/// The other side's audio must not be found in a channel: its best window
/// correlation stays below this (two different voices and sentences).
const MAX_CROSS_TALK: f64 = 0.5;

/// The least normalised correlation accepted between a channel and ffmpeg's
/// decoding of the same payloads, per codec and whether the stretch was
/// resampled to the file's rate (by rubato here, by libswresample for the
/// reference, which are not sample-identical).
fn threshold(codec: &str, resampled: bool) -> f64 {
    match (codec, resampled) {
        // Both sides resample the decoded audio to the file's rate, with
        // different resamplers (rubato here, libswresample for the
        // reference): measured 0.9991 (PCMU to 16 kHz) to 0.9998 (G.722 to 8 kHz).
        (_, true) => 0.99,
        // G.711 is a table, and SpanDSP's and ffmpeg's G.722 decoders
        // implement the same ITU-T reference arithmetic: bit-exact (every
        // sample identical).
        ("PCMU" | "PCMA" | "G722", false) => 0.9999,
        // libopus on both sides, but not at the same rate: ffmpeg's libopus
        // decoder runs at 48 kHz only (libswresample then brings it to
        // 16 kHz), ours asks libopus for 16 kHz, whose SILK and CELT paths
        // band-limit differently, and the 48 kHz path lands a fraction of a
        // sample later: measured 0.977 and 0.987. (opusdec --rate 16000
        // resamples too and measures the same.) Each Opus stretch is also
        // compared with libopus called at the file's rate (`libopus`), which
        // must match sample for sample.
        ("opus", false) => 0.97,
        // bcg729 and ffmpeg's own G.729 decoder are different fixed-point
        // implementations of the standard, not bit-exact: measured 0.997.
        ("G729", false) => 0.99,
        _ => 0.99,
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One RTP packet of the capture.
struct Rtp {
    at_us: i64,
    src_port: u16,
    pt: u8,
    seq: u16,
    payload: Vec<u8>,
}

/// The RTP packets sent from `ports`, parsed by hand from Ethernet/IPv4/UDP
/// (tcpdump on `lo` writes Ethernet frames).
fn read_rtp(pcap: &Path, ports: &[u16]) -> Result<Vec<Rtp>, String> {
    let file = std::fs::File::open(pcap).map_err(|e| format!("{}: {e}", pcap.display()))?;
    let mut reader =
        pcap_file::pcap::PcapReader::new(file).map_err(|e| format!("{}: {e}", pcap.display()))?;
    let mut out = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.map_err(|e| format!("{}: {e}", pcap.display()))?;
        let d = &pkt.data;
        if d.len() < 14 + 20 + 8 || d[12..14] != [0x08, 0x00] || d[14] >> 4 != 4 || d[23] != 17 {
            continue;
        }
        let udp = 14 + usize::from(d[14] & 0x0f) * 4;
        if d.len() < udp + 8 + 12 {
            continue;
        }
        let src_port = u16::from_be_bytes([d[udp], d[udp + 1]]);
        if !ports.contains(&src_port) {
            continue;
        }
        let r = &d[udp + 8..];
        if r[0] >> 6 != 2 {
            continue;
        }
        let mut start = 12 + usize::from(r[0] & 0x0f) * 4;
        if r[0] & 0x10 != 0 && r.len() >= start + 4 {
            start += 4 + usize::from(u16::from_be_bytes([r[start + 2], r[start + 3]])) * 4;
        }
        let mut end = r.len();
        if r[0] & 0x20 != 0 {
            end = end.saturating_sub(usize::from(r[end - 1]));
        }
        if start > end {
            return Err(format!("{}: malformed RTP packet", pcap.display()));
        }
        out.push(Rtp {
            at_us: pkt.timestamp.as_micros() as i64,
            src_port,
            pt: r[1] & 0x7f,
            seq: u16::from_be_bytes([r[2], r[3]]),
            payload: r[start..end].to_vec(),
        });
    }
    Ok(out)
}

/// An Ogg Opus file (RFC 7845) around `packets`: one packet per page, mono
/// head, no pre-skip and no gain, so ffmpeg decodes every packet as sent.
fn ogg_opus(packets: &[&[u8]]) -> Vec<u8> {
    fn crc(data: &[u8]) -> u32 {
        let mut c = 0u32;
        for &b in data {
            c ^= u32::from(b) << 24;
            for _ in 0..8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04c1_1db7
                } else {
                    c << 1
                };
            }
        }
        c
    }
    fn page(out: &mut Vec<u8>, flags: u8, granule: u64, seq: u32, packet: &[u8]) {
        let mut p = Vec::with_capacity(packet.len() + 64);
        p.extend_from_slice(b"OggS\0");
        p.push(flags);
        p.extend_from_slice(&granule.to_le_bytes());
        p.extend_from_slice(&0x7062_7862u32.to_le_bytes()); // serial
        p.extend_from_slice(&seq.to_le_bytes());
        p.extend_from_slice(&[0; 4]); // checksum, filled below
        let mut lacing = vec![255u8; packet.len() / 255];
        lacing.push((packet.len() % 255) as u8);
        p.push(lacing.len() as u8);
        p.extend_from_slice(&lacing);
        p.extend_from_slice(packet);
        let c = crc(&p);
        p[22..26].copy_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&p);
    }
    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, 1, 0, 0]); // version, 1 channel, pre-skip 0
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&[0, 0, 0]); // gain, mapping family 0
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&4u32.to_le_bytes());
    tags.extend_from_slice(b"test");
    tags.extend_from_slice(&0u32.to_le_bytes());
    let mut out = Vec::new();
    page(&mut out, 0x02, 0, 0, &head);
    page(&mut out, 0, 0, 1, &tags);
    for (i, p) in packets.iter().enumerate() {
        let last = i + 1 == packets.len();
        let granule = 960 * (i as u64 + 1);
        page(
            &mut out,
            if last { 0x04 } else { 0 },
            granule,
            i as u32 + 2,
            p,
        );
    }
    out
}

/// ffmpeg's decoding of `payloads` (one codec, in order) as mono s16 at `rate`.
fn ffmpeg_decode(
    codec: &str,
    payloads: &[&[u8]],
    rate: u32,
    dir: &Path,
) -> Result<Vec<i16>, String> {
    let input = dir.join(format!("ref.{codec}"));
    let (data, fmt): (Vec<u8>, &[&str]) = match codec {
        "PCMU" => (
            payloads.concat(),
            &["-f", "mulaw", "-ar", "8000", "-ac", "1"],
        ),
        "PCMA" => (
            payloads.concat(),
            &["-f", "alaw", "-ar", "8000", "-ac", "1"],
        ),
        "G722" => (payloads.concat(), &["-f", "g722"]),
        "G729" => (payloads.concat(), &["-f", "g729"]),
        "opus" => (ogg_opus(payloads), &["-f", "ogg", "-c:a", "libopus"]),
        other => return Err(format!("no reference decoding for {other}")),
    };
    std::fs::write(&input, data).map_err(|e| e.to_string())?;
    let output = dir.join(format!("ref.{codec}.s16"));
    let run = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(fmt)
        .arg("-i")
        .arg(&input)
        .args(["-f", "s16le", "-ac", "1", "-ar", &rate.to_string()])
        .arg(&output)
        .output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    if !run.status.success() {
        return Err(format!(
            "ffmpeg failed on {codec}: {}",
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    let bytes = std::fs::read(&output).map_err(|e| e.to_string())?;
    Ok(bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

/// libopus itself, called at the file's rate as our decoder calls it: not an
/// independent decoder, but it shows the recording path (depacketising,
/// placement on the timeline, the WAV) adds nothing to what the library
/// decodes, where ffmpeg's 48 kHz-only libopus decoder cannot.
mod libopus {
    use std::ffi::c_int;

    #[repr(C)]
    struct OpusDecoder {
        _opaque: [u8; 0],
    }

    #[link(name = "opus")]
    extern "C" {
        fn opus_decoder_create(fs: i32, channels: c_int, error: *mut c_int) -> *mut OpusDecoder;
        fn opus_decode(
            st: *mut OpusDecoder,
            data: *const u8,
            len: i32,
            pcm: *mut i16,
            frame_size: c_int,
            decode_fec: c_int,
        ) -> c_int;
        fn opus_decoder_destroy(st: *mut OpusDecoder);
    }

    /// Mono decoding of `packets` at `rate`.
    pub fn decode(packets: &[&[u8]], rate: u32) -> Result<Vec<i16>, String> {
        let mut error = 0;
        // SAFETY: a rate libopus accepts or an error code back; `error` outlives the call.
        let st = unsafe { opus_decoder_create(rate as i32, 1, &mut error) };
        if st.is_null() || error != 0 {
            return Err(format!("opus_decoder_create({rate}) failed: {error}"));
        }
        let mut pcm = vec![0i16; rate as usize * 120 / 1000];
        let mut out = Vec::new();
        for p in packets {
            // SAFETY: `p` and `pcm` are live slices of the lengths given.
            let n = unsafe {
                opus_decode(
                    st,
                    p.as_ptr(),
                    p.len() as i32,
                    pcm.as_mut_ptr(),
                    pcm.len() as c_int,
                    0,
                )
            };
            if n < 0 {
                // SAFETY: created above, freed once.
                unsafe { opus_decoder_destroy(st) };
                return Err(format!("opus_decode failed: {n}"));
            }
            out.extend_from_slice(&pcm[..n as usize]);
        }
        // SAFETY: created above, freed once.
        unsafe { opus_decoder_destroy(st) };
        Ok(out)
    }
}

/// Normalised correlation of `a` with `b` (same length).
fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}

/// Where in `chan` the reference `r` starts: the lag (channel index of r[0])
/// within `search` of `expect` whose window correlation is highest.
fn align(chan: &[i16], r: &[i16], expect: i64, search: i64, win: usize) -> (i64, f64) {
    let win = win.min(r.len());
    // the loudest window of the reference, on a 10 ms grid
    let step = (win / 25).max(1);
    let energy = |s: usize| {
        r[s..s + win]
            .iter()
            .map(|&x| i64::from(x).pow(2))
            .sum::<i64>()
    };
    let w0 = (0..=r.len() - win)
        .step_by(step)
        .max_by_key(|&s| energy(s))
        .unwrap_or(0);
    let window = &r[w0..w0 + win];
    let mut best = (expect, f64::MIN);
    for lag in expect - search..=expect + search {
        let at = lag + w0 as i64;
        if at < 0 || at as usize + win > chan.len() {
            continue;
        }
        let c = correlation(window, &chan[at as usize..at as usize + win]);
        if c > best.1 {
            best = (lag, c);
        }
    }
    best
}

/// The correlation of `r` placed at `lag` in `chan` over their overlap, its
/// length, and how many of its samples are identical.
fn overlap_correlation(chan: &[i16], r: &[i16], lag: i64) -> (f64, usize, usize) {
    let from = (-lag).max(0) as usize;
    let to = r.len().min((chan.len() as i64 - lag).max(0) as usize);
    if from >= to {
        return (0.0, 0, 0);
    }
    let c0 = (lag + from as i64) as usize;
    let (a, b) = (&r[from..to], &chan[c0..c0 + (to - from)]);
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    (correlation(a, b), to - from, same)
}

fn epoch_us(v: &Value) -> Result<i64, String> {
    let s = v.as_str().ok_or("time is not a string")?;
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_micros())
        .map_err(|e| format!("{s}: {e}"))
}

/// One stretch of a side's stream in one codec.
struct Stretch<'a> {
    codec: String,
    first_us: i64,
    payloads: Vec<&'a [u8]>,
}

fn stretches<'a>(
    pkts: &'a [Rtp],
    port: u16,
    pts: &BTreeMap<u8, String>,
    from: i64,
    to: i64,
) -> Vec<Stretch<'a>> {
    let mut out: Vec<Stretch<'a>> = Vec::new();
    let mut last_seq: Option<u16> = None;
    for p in pkts
        .iter()
        .filter(|p| p.src_port == port && from <= p.at_us && p.at_us < to)
    {
        let Some(codec) = pts.get(&p.pt) else {
            continue;
        };
        if last_seq == Some(p.seq) {
            continue; // a duplicate is decoded once
        }
        last_seq = Some(p.seq);
        match out.last_mut() {
            Some(s) if &s.codec == codec => s.payloads.push(&p.payload),
            _ => out.push(Stretch {
                codec: codec.clone(),
                first_us: p.at_us,
                payloads: vec![&p.payload],
            }),
        }
    }
    out
}

fn native_rate(codec: &str) -> u32 {
    match codec {
        "G722" | "opus" => 16_000,
        _ => 8_000,
    }
}

/// Checks one call; returns a line per stretch with the measured figures.
fn check_call(
    name: &str,
    pcap: &Path,
    exp: &Value,
    act: &Value,
    dir: &Path,
) -> Result<Vec<String>, String> {
    let meta = &exp["_codec_audio"];
    let ports = [
        meta["caller_port"]
            .as_u64()
            .ok_or("_codec_audio.caller_port")? as u16,
        meta["callee_port"]
            .as_u64()
            .ok_or("_codec_audio.callee_port")? as u16,
    ];
    let pts: BTreeMap<u8, String> = meta["payload_types"]
        .as_object()
        .ok_or("_codec_audio.payload_types")?
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string())))
        .collect();
    let rec = &act["recording"];
    if rec["status"] != "stored" {
        return Err(format!("{name}: recording not stored: {rec}"));
    }
    let path = rec["path"]
        .as_str()
        .ok_or_else(|| format!("{name}: recording has no path"))?;
    let mut reader = hound::WavReader::open(path).map_err(|e| format!("{name}: {path}: {e}"))?;
    let spec = reader.spec();
    let want_rate = exp["recording"]["sample_rate"]
        .as_u64()
        .ok_or("expected sample_rate")? as u32;
    if spec.channels != 2 || spec.bits_per_sample != 16 || spec.sample_rate != want_rate {
        return Err(format!(
            "{name}: WAV is {} ch, {} Hz, {} bit; want 2 ch, {want_rate} Hz, 16 bit",
            spec.channels, spec.sample_rate, spec.bits_per_sample
        ));
    }
    let rate = spec.sample_rate;
    let frames = reader.duration() as i64;
    let answered = epoch_us(&exp["answered_at"])?;
    let ended = epoch_us(&exp["ended_at"])?;
    let talk = (ended - answered) * i64::from(rate) / 1_000_000;
    if (frames - talk).abs() > i64::from(rate) / 50 {
        return Err(format!(
            "{name}: WAV has {frames} frames, the talk time is {talk} samples (±20 ms)"
        ));
    }
    let all: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{name}: {e}"))?;
    let chans = [
        all.iter().step_by(2).copied().collect::<Vec<i16>>(),
        all.iter().skip(1).step_by(2).copied().collect::<Vec<i16>>(),
    ];

    let pkts = read_rtp(pcap, &ports)?;
    let search = (SEARCH_SECS * f64::from(rate)) as i64;
    let win = (WINDOW_SECS * f64::from(rate)) as usize;
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (i, side) in ["left (caller)", "right (callee)"].into_iter().enumerate() {
        let parts = stretches(&pkts, ports[i], &pts, answered, ended);
        if parts.is_empty() {
            errors.push(format!(
                "{name} {side}: no RTP in the capture after the answer"
            ));
        }
        for (n, part) in parts.iter().enumerate() {
            let reference = ffmpeg_decode(&part.codec, &part.payloads, rate, dir)?;
            let expect = (part.first_us - answered) * i64::from(rate) / 1_000_000;
            let (lag, _) = align(&chans[i], &reference, expect, search, win);
            let (corr, len, same) = overlap_correlation(&chans[i], &reference, lag);
            let (_, cross) = align(&chans[1 - i], &reference, expect, search, win);
            let resampled = native_rate(&part.codec) != rate;
            let min = threshold(&part.codec, resampled);
            let line = format!(
                "{name} {side} stretch {n} {} ({} packets{}): correlation {corr:.6} over {len} samples ({same} identical) at {lag} (arrival at {expect}); other channel {cross:.3}",
                part.codec,
                part.payloads.len(),
                if resampled { ", resampled" } else { "" }
            );
            eprintln!("  {line}");
            if corr < min {
                errors.push(format!("{line}: below {min}"));
            }
            if len < reference.len() * 9 / 10 {
                errors.push(format!(
                    "{line}: only {len} of {} reference samples in the file",
                    reference.len()
                ));
            }
            if part.codec == "opus" && !resampled {
                let same_lib = libopus::decode(&part.payloads, rate)?;
                let (at, _) = align(&chans[i], &same_lib, expect, search, win);
                let (c, l, identical) = overlap_correlation(&chans[i], &same_lib, at);
                let line = format!(
                    "{name} {side} stretch {n} opus against libopus at {rate} Hz: correlation {c:.6}, {identical} of {l} samples identical at {at}"
                );
                eprintln!("  {line}");
                if identical != l || l != same_lib.len() {
                    errors.push(format!(
                        "{line}: the recording path changed the library's output"
                    ));
                }
            }
            if cross > MAX_CROSS_TALK {
                errors.push(format!(
                    "{line}: the other channel holds this side's audio (channels swapped or mixed)"
                ));
            }
            lines.push(line);
        }
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors.join("\n"))
    }
}

#[test]
fn codec_channels_match_an_ffmpeg_decoding() {
    if !have("ffmpeg") {
        eprintln!("SKIPPED: ffmpeg not found");
        return;
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for pcap in fixture_files() {
        let name = fixture_name(&pcap);
        let wanted = expected_calls(&pcap)
            .map(|calls| calls.iter().any(|c| c.get("_codec_audio").is_some()))
            .unwrap_or(false);
        if !wanted {
            continue;
        }
        eprintln!("codec_audio: checking {name}");
        let dir = tempfile::tempdir().expect("tempdir");
        match replay_and_pair(&pcap, dir.path()) {
            Ok(pairs) => {
                for (exp, act) in pairs
                    .iter()
                    .filter(|(e, _)| e.get("_codec_audio").is_some())
                {
                    checked += 1;
                    if let Err(e) = check_call(&name, &pcap, exp, act, dir.path()) {
                        failures.push(e);
                    }
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        checked >= 5,
        "only {checked} fixture calls with _codec_audio"
    );
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One row of `tshark -q -z rtp,streams`.
#[derive(Debug)]
struct TsharkStream {
    src_port: u16,
    packets: u64,
    lost: i64,
    max_delta_ms: f64,
    min_jitter_ms: f64,
    mean_jitter_ms: f64,
    max_jitter_ms: f64,
}

/// Parses the table from the right: the payload column may hold spaces
/// ("g711U, g722") and the last column ("X" for problems) may be empty.
fn tshark_streams(pcap: &Path, ports: [u16; 2]) -> Result<Vec<TsharkStream>, String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-n", "-q", "-z", "rtp,streams"])
        .args(["-d", &format!("udp.port=={},rtp", ports[0])])
        .args(["-d", &format!("udp.port=={},rtp", ports[1])])
        .output()
        .map_err(|e| format!("tshark: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 16 || t[0].parse::<f64>().is_err() {
            continue;
        }
        if t.last() == Some(&"X") {
            t.pop();
        }
        let n = t.len();
        let f = |i: usize| {
            t[i].parse::<f64>()
                .map_err(|e| format!("tshark column {:?}: {e}", t[i]))
        };
        rows.push(TsharkStream {
            src_port: t[3]
                .parse()
                .map_err(|e| format!("tshark port {:?}: {e}", t[3]))?,
            packets: t[n - 9]
                .parse()
                .map_err(|e| format!("tshark packets {:?}: {e}", t[n - 9]))?,
            lost: t[n - 8]
                .parse()
                .map_err(|e| format!("tshark lost {:?}: {e}", t[n - 8]))?,
            max_delta_ms: f(n - 4)?,
            min_jitter_ms: f(n - 3)?,
            mean_jitter_ms: f(n - 2)?,
            max_jitter_ms: f(n - 1)?,
        });
    }
    Ok(rows)
}

/// The `lossy` fixture's quality figures against tshark's RTP analysis of the
/// same capture, and tshark's against what the generator did.
#[test]
fn lossy_quality_matches_tshark() {
    if !have("tshark") {
        eprintln!("SKIPPED: tshark not found");
        return;
    }
    let pcap = fixtures_dir().join("lossy.pcap");
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = replay_and_pair(&pcap, dir.path()).expect("replay lossy.pcap");
    let (exp, act) = &pairs[0];
    let ports = [6000, 6100];
    let streams = tshark_streams(&pcap, ports).expect("tshark");
    assert_eq!(streams.len(), 2, "tshark streams: {streams:?}");
    let mut errors = Vec::new();
    for (side, port) in ["caller", "callee"].into_iter().zip(ports) {
        let ts = streams
            .iter()
            .find(|s| s.src_port == port)
            .expect("stream per side");
        let facts = &exp["_quality"][side];
        let count = |k: &str| facts[k].as_array().map_or(0, Vec::len) as i64;
        let (dropped, duplicated, reordered) =
            (count("dropped"), count("duplicated"), count("reordered"));
        assert!(
            dropped > 0 && duplicated > 0 && reordered > 0,
            "{side}: the fixture must impair: {facts}"
        );
        // tshark's Lost is RFC 3550's: expected minus received, duplicates counted as received
        assert_eq!(
            ts.lost,
            dropped - duplicated,
            "{side}: tshark {ts:?} vs the generator {facts}"
        );
        assert_eq!(
            ts.packets,
            facts["packets"].as_u64().unwrap_or(0),
            "{side}: tshark {ts:?}"
        );
        let q = &act["rtp"][side];
        eprintln!("lossy {side}: record {q}; tshark {ts:?}; generator dropped {dropped}, duplicated {duplicated}, reordered {reordered}");
        let num = |k: &str| q.get(k).and_then(Value::as_f64);
        // Every packet was sent after the answer, so the call saw them all:
        // `packets` counts them as tshark does (duplicates included) or
        // without the duplicates. `lost` is either RFC 3550's cumulative
        // count (tshark's: expected minus received, so a duplicate makes up
        // for a loss) or the packets that never came (what the record holds
        // on main today: 4 and 3 where tshark says 3 and 1).
        match num("packets") {
            Some(p) if p as u64 == ts.packets || p as i64 == ts.packets as i64 - duplicated => {}
            other => errors.push(format!(
                "{side}: packets {other:?}, tshark {} ({duplicated} duplicates)",
                ts.packets
            )),
        }
        match num("lost") {
            Some(l) if l as i64 == ts.lost || l as i64 == dropped => {}
            other => errors.push(format!(
                "{side}: lost {other:?}, tshark {} (dropped {dropped})",
                ts.lost
            )),
        }
        // jitter_ms is the running RFC 3550 estimate at the end of the call:
        // within tshark's range, to its 3 decimals.
        match num("jitter_ms") {
            Some(j) if j >= ts.min_jitter_ms - 0.0005 && j <= ts.max_jitter_ms + 0.0005 => {}
            other => errors.push(format!(
                "{side}: jitter_ms {other:?} outside tshark's {}..{} (mean {})",
                ts.min_jitter_ms, ts.max_jitter_ms, ts.mean_jitter_ms
            )),
        }
        // The per-direction quality block: what the generator did, and
        // tshark's maxima (printed to 3 decimals; our capture-time arithmetic
        // differs from its by a few microseconds).
        let qual = &q["quality"];
        let qnum = |k: &str| qual.get(k).and_then(Value::as_f64);
        for (key, want) in [
            ("duplicated", duplicated as f64),
            ("out_of_order", reordered as f64),
            (
                "expected",
                facts["packets"].as_f64().unwrap_or(0.0) - duplicated as f64 + dropped as f64,
            ),
        ] {
            match qnum(key) {
                Some(got) if got == want => {}
                got => errors.push(format!(
                    "{side}: quality.{key} {got:?}, the generator {want}"
                )),
            }
        }
        for (key, want) in [
            ("max_jitter_ms", ts.max_jitter_ms),
            ("max_gap_ms", ts.max_delta_ms),
        ] {
            match qnum(key) {
                Some(got) if (got - want).abs() <= 0.01 => {}
                got => errors.push(format!("{side}: quality.{key} {got:?}, tshark {want}")),
            }
        }
        // The E-model by hand (ITU-T G.107 with its defaults, G.711 with
        // packet-loss concealment: Ie 0, Bpl 25.1 from G.113 Appendix I; a
        // one-way delay under 100 ms costs nothing): Ie_eff = 95 Ppl /
        // (Ppl / BurstR + 25.1), R = 93.2 - Ie_eff, MOS = 1 + 0.035 R +
        // 7e-6 R (R - 60) (100 - R).
        let ppl = 100.0 * dropped as f64
            / (facts["packets"].as_f64().unwrap_or(0.0) - duplicated as f64 + dropped as f64);
        let burst_r = qnum("burst_ratio").unwrap_or(f64::NAN);
        let ie_eff = 95.0 * ppl / (ppl / burst_r + 25.1);
        let r = 93.2 - ie_eff;
        let mos = 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r);
        match (qnum("r_factor"), qnum("mos")) {
            (Some(gr), Some(gm)) if (gr - r).abs() <= 0.01 && (gm - mos).abs() <= 0.002 => {}
            got => errors.push(format!(
                "{side}: (r_factor, mos) {got:?}, by hand ({r:.3}, {mos:.3}) for {ppl:.2}% loss, BurstR {burst_r}"
            )),
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
