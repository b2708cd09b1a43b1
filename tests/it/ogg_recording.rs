//! `recording.format = "opus"`: a captured G.722 call kept as Ogg/Opus. The
//! file replaces the WAV, is much smaller, lasts the talk time, and decodes
//! (by ffmpeg, an independent decoder of Ogg/Opus) to the same audio as the
//! WAV the same call gives with `format = "wav"`, channel by channel.

use std::path::{Path, PathBuf};
use std::process::Command;

use pbxbridge::call::EndReason;
use pbxbridge::capture::pcapfile::PcapFileReader;
use pbxbridge::config::{Config, RecordingFormat};
use pbxbridge::pipeline::Pipeline;
use pbxbridge::report::{CallReport, RecordingStatus};
use pbxbridge::time::Timestamp;

fn replay(pcap: &Path, dir: &Path, format: RecordingFormat) -> CallReport {
    let mut cfg = Config::default();
    cfg.recording.dir = dir.to_path_buf();
    cfg.recording.format = format;
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut p = Pipeline::new(&cfg, tx).unwrap();
    let mut r = PcapFileReader::open(pcap).unwrap();
    let mut last = Timestamp::default();
    while let Ok(Some(pkt)) = r.next_packet() {
        last = last.max(pkt.ts);
        p.handle_frame(pkt.ts, pkt.link, pkt.data);
    }
    p.close_all(last, EndReason::CaptureEnd);
    drop(p.finish());
    let mut calls: Vec<CallReport> = rx.into_iter().flatten().collect();
    assert_eq!(calls.len(), 1);
    calls.remove(0)
}

/// Interleaved stereo s16 at `rate`, by ffmpeg.
fn ffmpeg_pcm(path: &Path, rate: u32) -> Vec<i16> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-f", "s16le", "-ac", "2", "-ar", &rate.to_string(), "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn channel(pcm: &[i16], ch: usize) -> Vec<f64> {
    pcm.iter()
        .skip(ch)
        .step_by(2)
        .map(|&s| f64::from(s))
        .collect()
}

/// The best normalised correlation of `a` against `b` shifted by up to
/// ±`lag` samples.
fn best_correlation(a: &[f64], b: &[f64], lag: i64) -> f64 {
    (-lag..=lag)
        .map(|l| {
            let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
            for (i, x) in a.iter().enumerate() {
                let j = i as i64 + l;
                if let Some(y) = usize::try_from(j).ok().and_then(|j| b.get(j)) {
                    ab += x * y;
                    aa += x * x;
                    bb += y * y;
                }
            }
            ab / (aa.sqrt() * bb.sqrt()).max(1.0)
        })
        .fold(f64::MIN, f64::max)
}

#[test]
fn an_opus_recording_replaces_the_wav_and_holds_the_same_audio() {
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        eprintln!("SKIPPED: ffmpeg not found");
        return;
    }
    let pcap = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pcap-fixtures/g722.pcap"
    ));
    let wav_dir = tempfile::tempdir().unwrap();
    let ogg_dir = tempfile::tempdir().unwrap();
    let wav = replay(&pcap, wav_dir.path(), RecordingFormat::Wav);
    let ogg = replay(&pcap, ogg_dir.path(), RecordingFormat::Opus);

    assert_eq!(ogg.recording.status, RecordingStatus::Stored);
    let ogg_path = PathBuf::from(ogg.recording.path.clone().unwrap());
    assert_eq!(ogg_path.extension().unwrap(), "ogg");
    assert!(ogg_path.is_file());
    assert!(
        !ogg_path.with_extension("wav").exists(),
        "the WAV is removed"
    );
    let wav_path = PathBuf::from(wav.recording.path.clone().unwrap());
    let (ogg_bytes, wav_bytes) = (ogg.recording.bytes.unwrap(), wav.recording.bytes.unwrap());
    assert_eq!(ogg_bytes, std::fs::metadata(&ogg_path).unwrap().len());
    eprintln!("ogg_recording: {wav_bytes} bytes as WAV, {ogg_bytes} as Ogg/Opus");
    assert!(ogg_bytes * 5 < wav_bytes, "{ogg_bytes} vs {wav_bytes}");

    let rate = wav.recording.sample_rate.unwrap();
    assert_eq!(rate, 16_000);
    let from_wav = ffmpeg_pcm(&wav_path, rate);
    let from_ogg = ffmpeg_pcm(&ogg_path, rate);
    // The same length, to a 20 ms frame.
    let (a, b) = (from_wav.len() / 2, from_ogg.len() / 2);
    assert!(a.abs_diff(b) <= rate as usize / 50, "{a} vs {b} frames");
    for ch in 0..2 {
        let c = best_correlation(&channel(&from_wav, ch), &channel(&from_ogg, ch), 8);
        eprintln!("ogg_recording: channel {ch} correlation {c:.4}");
        assert!(c >= 0.9, "channel {ch}: correlation {c}");
    }
    // Left and right are not swapped: each channel is unlike the other side.
    let cross = best_correlation(&channel(&from_wav, 0), &channel(&from_ogg, 1), 8);
    assert!(cross < 0.5, "cross-channel correlation {cross}");
}
