//! WAV audio test: for every answered fixture call, the stereo recording must
//! hold exactly the audio each side sent, sample for sample.
//!
//! The reference is the sender's G.711 file decoded by sox (committed beside it
//! as 16-bit little-endian `.s16`), so our decoder is checked against an
//! independent one. Each channel is aligned by finding its first audio window in
//! the source (which SIPp's stream may loop); from there the channel must equal
//! the source, with silence allowed only where the fixture says the side was
//! quiet (hold), and only audio sent after the 200 OK.

use crate::fixture_support;

use std::path::Path;

use fixture_support::*;
use serde_json::Value;

/// One 20 ms packet at 8 kHz.
const WIN: usize = 160;
/// Silence may spill this far around a declared gap (packet timing on the wire).
const GAP_MARGIN: usize = 800;
/// After a gap, audio must resume within this distance of where the sender's
/// clock says it should (RTP timestamp vs arrival time).
const RESUME_TOLERANCE: usize = 1600;
/// The first recorded sample may lie this far past the expected source offset
/// (a leading source sample of value 0, or the first packet's partial window).
const START_TOLERANCE: usize = 320;
/// At least this much audio must match per channel.
const MIN_MATCHED: usize = 8000;
/// Matched audio must reach this close to the end of the file: both senders
/// play until the BYE.
const END_TOLERANCE: usize = 2000;

fn read_s16(path: &Path) -> Result<Vec<i16>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

fn cyclic_distance(a: usize, b: usize, n: usize) -> usize {
    let d = (a + n - b) % n;
    d.min(n - d)
}

/// Where in `src` (cyclically) the window `chan[at..at + WIN]` comes from. With
/// `near = Some((pos, tol))` only positions within `tol` of `pos` count.
fn locate(
    chan: &[i16],
    at: usize,
    src: &[i16],
    near: Option<(usize, usize)>,
) -> Result<usize, String> {
    let n = src.len();
    let window = &chan[at..(at + WIN).min(chan.len())];
    if window.len() < WIN / 4 {
        return Err(format!(
            "only {} samples left at sample {at} to locate in the source",
            window.len()
        ));
    }
    let mut best: Option<(usize, usize)> = None; // (position, samples equal)
    let mut found: Option<usize> = None;
    for p in 0..n {
        if let Some((pos, tol)) = near {
            if cyclic_distance(p, pos, n) > tol {
                continue;
            }
        }
        let equal = window
            .iter()
            .enumerate()
            .filter(|&(k, &s)| src[(p + k) % n] == s)
            .count();
        if equal == window.len() {
            let better = match (found, near) {
                (None, _) => true,
                (Some(f), Some((pos, _))) => {
                    cyclic_distance(p, pos, n) < cyclic_distance(f, pos, n)
                }
                (Some(_), None) => false,
            };
            if better {
                found = Some(p);
            }
        }
        if best.is_none_or(|(_, e)| equal > e) {
            best = Some((p, equal));
        }
    }
    found.ok_or_else(|| {
        let (p, e) = best.unwrap_or((0, 0));
        let hint = near
            .map(|(pos, tol)| format!(" within {tol} of source offset {pos}"))
            .unwrap_or_default();
        format!(
            "the audio at sample {at} ({:.3} s) is not in the source{hint}; best candidate: source offset {p} with {e}/{} samples equal; first samples recorded {:?}, source there {:?}",
            at as f64 / 8000.0,
            window.len(),
            &window[..8.min(window.len())],
            (0..8).map(|k| src[(p + k) % n]).collect::<Vec<_>>()
        )
    })
}

struct Side<'a> {
    label: String,
    src: &'a [i16],
    /// Source offset the channel must start at (audio sent before answer excluded).
    start: Option<usize>,
    /// [from, to) sample ranges where this side sent nothing.
    gaps: Vec<(usize, usize)>,
}

/// Checks one channel; returns the number of samples that matched the source.
fn check_channel(chan: &[i16], side: &Side<'_>) -> Result<usize, String> {
    let label = &side.label;
    let src = side.src;
    let n = src.len();
    if n < WIN {
        return Err(format!("{label}: source has only {n} samples"));
    }
    let secs = |i: usize| i as f64 / 8000.0;
    let Some(first) = chan.iter().position(|&s| s != 0) else {
        return Err(format!(
            "{label}: channel is all silence ({} samples)",
            chan.len()
        ));
    };
    let last = chan.iter().rposition(|&s| s != 0).unwrap_or(first);
    let start_pos = locate(chan, first, src, None).map_err(|e| format!("{label}: {e}"))?;
    if let Some(start) = side.start {
        if (start_pos + n - start % n) % n > START_TOLERANCE {
            return Err(format!(
                "{label}: audio at sample {first} is source offset {start_pos}, expected {start}..{} (the source position reached at answer; early media must not be recorded)",
                start + START_TOLERANCE
            ));
        }
    }
    let (mut base_i, mut base_pos) = (first, start_pos);
    let mut matched = 0usize;
    let mut i = first;
    while i <= last {
        let pos = (base_pos + (i - base_i)) % n;
        let want = src[pos];
        let got = chan[i];
        if got == want {
            matched += 1;
            i += 1;
            continue;
        }
        if got != 0 {
            return Err(format!(
                "{label}: sample {i} ({:.4} s): expected {want} (source offset {pos}), got {got}; {matched} samples matched before",
                secs(i)
            ));
        }
        let end = (i..=last).find(|&j| chan[j] != 0).unwrap_or(last + 1);
        let declared = side
            .gaps
            .iter()
            .any(|&(a, b)| i + GAP_MARGIN >= a && end <= b + GAP_MARGIN);
        if !declared {
            return Err(format!(
                "{label}: silence at samples {i}..{end} ({:.3}-{:.3} s) where source offset {pos} has {want}; allowed silent ranges {:?}",
                secs(i),
                secs(end),
                side.gaps
            ));
        }
        let resume = (base_pos + (end - base_i)) % n;
        let p = locate(chan, end, src, Some((resume, RESUME_TOLERANCE)))
            .map_err(|e| format!("{label}: after the silence at {i}..{end}: {e}"))?;
        base_i = end;
        base_pos = p;
        i = end;
    }
    if matched < MIN_MATCHED {
        return Err(format!(
            "{label}: only {matched} samples of audio matched (need {MIN_MATCHED})"
        ));
    }
    if chan.len() - 1 - last > END_TOLERANCE {
        return Err(format!(
            "{label}: audio stops at sample {last} ({:.3} s) but the file runs to {} ({:.3} s)",
            secs(last),
            chan.len(),
            secs(chan.len())
        ));
    }
    eprintln!(
        "  {label}: {matched} samples match the source from offset {start_pos} (channel sample {first})"
    );
    Ok(matched)
}

fn gaps(audio: &Value, key: &str) -> Vec<(usize, usize)> {
    audio
        .get(key)
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|g| {
                    let a = g.get(0)?.as_u64()?;
                    let b = g.get(1)?.as_u64()?;
                    Some((a as usize, b as usize))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn check_call(fixture: &str, exp: &Value, act: &Value) -> Result<(), String> {
    let id = call_id(exp);
    let audio = &exp["_audio"];
    let rec = &act["recording"];
    let path = rec
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{fixture} [{id}]: recording has no path: {rec}"))?;
    let mut reader = hound::WavReader::open(path)
        .map_err(|e| format!("{fixture} [{id}]: cannot open WAV {path}: {e}"))?;
    let spec = reader.spec();
    if spec.channels != 2 || spec.sample_rate != 8000 || spec.bits_per_sample != 16 {
        return Err(format!(
            "{fixture} [{id}]: WAV is {} ch, {} Hz, {} bit; want 2 ch, 8000 Hz, 16 bit",
            spec.channels, spec.sample_rate, spec.bits_per_sample
        ));
    }
    let frames = reader.duration() as usize;
    if let Some(samples) = rec.get("samples").and_then(Value::as_u64) {
        if samples as usize != frames {
            return Err(format!(
                "{fixture} [{id}]: WAV has {frames} frames, the record says {samples}"
            ));
        }
    }
    let all: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{fixture} [{id}]: bad WAV data: {e}"))?;
    let left: Vec<i16> = all.iter().step_by(2).copied().collect();
    let right: Vec<i16> = all.iter().skip(1).step_by(2).copied().collect();

    let mut errors = Vec::new();
    for (name, chan) in [("left", &left), ("right", &right)] {
        let Some(src_rel) = audio.get(name).and_then(Value::as_str) else {
            errors.push(format!("{fixture} [{id}]: _audio.{name} missing"));
            continue;
        };
        let src = read_s16(&fixtures_dir().join(src_rel))?;
        let side = Side {
            label: format!("{fixture} {name} channel ({src_rel})"),
            src: &src,
            start: audio
                .get(format!("{name}_start"))
                .and_then(Value::as_u64)
                .map(|s| s as usize),
            gaps: gaps(audio, &format!("{name}_gaps")),
        };
        if let Err(e) = check_channel(chan, &side) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

#[test]
fn recorded_audio_matches_what_was_sent() {
    let files = fixture_files();
    assert!(!files.is_empty(), "no captures in pcap-fixtures/");
    let mut failures = Vec::new();
    let mut checked = 0;
    for pcap in &files {
        let name = fixture_name(pcap);
        let wants_audio = expected_calls(pcap)
            .map(|calls| calls.iter().any(|c| c.get("_audio").is_some()))
            .unwrap_or(false);
        if !wants_audio {
            eprintln!("wav: {name}: no answered call with audio, skipped");
            continue;
        }
        eprintln!("wav: checking {name}");
        let dir = tempfile::tempdir().expect("tempdir");
        match replay_and_pair(pcap, dir.path()) {
            Ok(pairs) => {
                for (exp, act) in pairs.iter().filter(|(e, _)| e.get("_audio").is_some()) {
                    checked += 1;
                    if let Err(e) = check_call(&name, exp, act) {
                        failures.push(e);
                    }
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 0, "no fixture call with _audio was checked");
}

#[cfg(test)]
mod self_check {
    //! The checker itself, on synthetic channels, so a pass means something.
    use super::*;

    fn source() -> Vec<i16> {
        // deterministic, non-repeating, never zero
        let mut x: u32 = 12345;
        (0..3000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((x >> 16) as i16 % 2000) | 1
            })
            .collect()
    }

    fn side(src: &[i16], start: Option<usize>, gaps: Vec<(usize, usize)>) -> Side<'_> {
        Side {
            label: "synthetic".into(),
            src,
            start,
            gaps,
        }
    }

    #[test]
    fn accepts_looping_audio_after_leading_silence() {
        let src = source();
        let mut chan = vec![0i16; 40];
        chan.extend((0..10_000).map(|k| src[(500 + k) % src.len()]));
        assert_eq!(
            check_channel(&chan, &side(&src, Some(500), vec![])),
            Ok(10_000)
        );
    }

    #[test]
    fn rejects_a_wrong_sample_and_early_media() {
        let src = source();
        let mut chan: Vec<i16> = (0..10_000).map(|k| src[k % src.len()]).collect();
        assert!(check_channel(&chan, &side(&src, Some(1000), vec![])).is_err());
        chan[5000] = chan[5000].wrapping_add(1);
        let err = check_channel(&chan, &side(&src, Some(0), vec![])).unwrap_err();
        assert!(err.contains("sample 5000"), "{err}");
    }

    #[test]
    fn silence_only_where_declared() {
        let src = source();
        let mut chan: Vec<i16> = (0..12_000).map(|k| src[k % src.len()]).collect();
        chan[4000..6000].iter_mut().for_each(|s| *s = 0);
        assert!(check_channel(&chan, &side(&src, Some(0), vec![])).is_err());
        assert!(check_channel(&chan, &side(&src, Some(0), vec![(4000, 6000)])).is_ok());
        // resumed audio shifted by 40 samples is accepted (arrival vs RTP clock)
        let mut shifted = chan.clone();
        for (k, s) in shifted.iter_mut().enumerate().skip(6000) {
            *s = src[(k + 40) % src.len()];
        }
        assert!(check_channel(&shifted, &side(&src, Some(0), vec![(4000, 6000)])).is_ok());
    }
}
