//! Test helpers for the codec modules: the project's own speech, ffmpeg as
//! the independent reference, and the comparison.

use std::path::PathBuf;
use std::process::Command;

use super::{decoder, Codec, Decoder, Format};

/// The caller's side of the project's fixtures: espeak-ng speech with a
/// little noise, 8 kHz mono (`pcap-fixtures/make-fixtures.sh --audio`),
/// stored as µ-law decoded to s16le.
pub fn speech_8k() -> Vec<i16> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcap-fixtures/audio/caller.pcmu.s16");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Whether ffmpeg runs here; prints the skip line when it does not.
pub fn have_ffmpeg(test: &str) -> bool {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("{test}: SKIPPED: ffmpeg not found");
    }
    ok
}

/// Runs ffmpeg on `input` (written to a temp file) with `args` between the
/// input and output, returning the output file's bytes.
pub fn ffmpeg(input_fmt: &[&str], input: &[u8], output_args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in");
    let out = dir.path().join("out");
    std::fs::write(&inp, input).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(input_fmt)
        .arg("-i")
        .arg(&inp)
        .args(output_args)
        .arg(&out)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "ffmpeg {input_fmt:?} {output_args:?} failed"
    );
    std::fs::read(&out).unwrap()
}

pub fn s16le(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

pub fn from_s16le(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Normalised correlation of the first `n` samples of both, sample-aligned.
pub fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let n = a.len().min(b.len());
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a[..n].iter().zip(&b[..n]) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1.0)
}

/// The correlation of our decoding with the reference, printed with the
/// figures a reader of the test log wants (`label`: what was compared).
pub fn compare(label: &str, ours: &[i16], reference: &[i16]) -> f64 {
    let c = correlation(ours, reference);
    let n = ours.len().min(reference.len());
    eprintln!(
        "{label}: {} samples, correlation {c:.6}, max diff {}, rms {:.0} / {:.0}",
        ours.len(),
        max_diff(ours, reference),
        rms(ours),
        rms(&reference[..n])
    );
    c
}

pub fn rms(a: &[i16]) -> f64 {
    let sum: f64 = a.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (sum / a.len().max(1) as f64).sqrt()
}

/// The largest absolute sample difference over the common length.
pub fn max_diff(a: &[i16], b: &[i16]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (i32::from(x) - i32::from(y)).abs())
        .max()
        .unwrap_or(0)
}

pub fn make(codec: Codec, clock_rate: u32) -> Box<dyn Decoder> {
    decoder(&Format::plain(codec, clock_rate), clock_rate).unwrap()
}

/// Decodes `packets` in order with a fresh decoder, asserting each is accepted.
pub fn decode_all(dec: &mut dyn Decoder, packets: &[&[u8]]) -> Vec<i16> {
    let mut out = Vec::new();
    for p in packets {
        dec.decode(p, &mut out).unwrap();
    }
    out
}

/// Garbage and truncated payloads: each must be an error that appends
/// nothing, or be decoded without a panic (the fuzz target goes further).
pub fn assert_rejects(dec: &mut dyn Decoder, bad: &[&[u8]]) {
    for p in bad {
        let mut out = vec![7i16; 3];
        assert!(
            dec.decode(p, &mut out).is_err(),
            "{} bytes accepted",
            p.len()
        );
        assert_eq!(out, vec![7i16; 3], "an error appended samples");
    }
}

/// Checks concealment after `good` audio: `n` samples come out, the first
/// 10 ms are not silent (the PLC continues the signal) and the end of a long
/// gap is quieter than its start (it fades).
pub fn assert_conceals(dec: &mut dyn Decoder, rate: usize) {
    let mut out = vec![1i16];
    let n = rate / 5;
    dec.conceal(n, &mut out);
    assert_eq!(out.len(), 1 + n);
    let first = rms(&out[1..1 + rate / 100]);
    let last = rms(&out[out.len() - rate / 100..]);
    assert!(first > 100.0, "concealment starts silent: rms {first}");
    assert!(
        last < first / 2.0,
        "concealment does not fade: {first} -> {last}"
    );
}

/// The index of the loudest `size`-byte packet of `bits` (decoding the
/// whole stream with `decode`, then measuring each packet's share).
pub fn loudest_packet(bits: &[u8], size: usize, decode: impl Fn(&[u8]) -> Vec<i16>) -> usize {
    let pcm = decode(bits);
    let packets = bits.len() / size;
    let per = pcm.len() / packets.max(1);
    (0..packets)
        .max_by(|&a, &b| {
            rms(&pcm[a * per..(a + 1) * per]).total_cmp(&rms(&pcm[b * per..(b + 1) * per]))
        })
        .unwrap_or(0)
}
