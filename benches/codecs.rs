//! Decode cost per codec: ns per 20 ms frame through `codec::decoder`, the
//! recorder's own path, on real frames (the fixtures' speech encoded by
//! ffmpeg; G.729 frames come from its fixture capture when present).
//! Codecs with no decoder in this build, or no ffmpeg here, are skipped
//! with a line saying so.
//!
//! Run: `cargo bench --bench codecs -- --warm-up-time 1 --measurement-time 3`

#[allow(dead_code)]
#[path = "../tools/loadgen/mod.rs"]
mod loadgen;

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use loadgen::encoded::{encode_with_ffmpeg, FfmpegCodec};
use pbxbridge::codec::decoder;
use pbxbridge::rtp::codec::format_for;
use pbxbridge::rtp::PayloadType;

struct Case {
    name: String,
    format: pbxbridge::codec::Format,
    frames: Vec<Vec<u8>>,
}

fn speech() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pcap-fixtures/audio/caller.pcmu"
    ))
}

fn cases() -> Vec<Case> {
    let pcmu = std::fs::read(speech()).expect("fixture speech");
    let mut cases = vec![Case {
        name: "PCMU".into(),
        format: format_for(PayloadType(0), Some("PCMU"), Some(8000), 1, None),
        frames: pcmu.chunks_exact(160).map(<[u8]>::to_vec).collect(),
    }];
    // ffmpeg has no G.729 encoder: the fixtures' bcg729-encoded speech.
    let g729 = speech().with_file_name("caller.g729");
    match std::fs::read(&g729) {
        Ok(bits) => cases.push(Case {
            name: "G729".into(),
            format: format_for(PayloadType(18), Some("G729"), Some(8000), 1, None),
            frames: bits.chunks_exact(20).map(<[u8]>::to_vec).collect(),
        }),
        Err(e) => eprintln!("SKIPPED G729: {}: {e}", g729.display()),
    }
    for c in FfmpegCodec::ALL {
        match encode_with_ffmpeg(c, speech()) {
            Ok(enc) => {
                let (name, rest) = enc.rtpmap.split_once('/').unwrap_or((&enc.rtpmap, "8000"));
                let mut parts = rest.split('/');
                let clock = parts.next().and_then(|r| r.parse().ok());
                let channels = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
                cases.push(Case {
                    name: c.name().into(),
                    format: format_for(
                        PayloadType(enc.pt),
                        Some(name),
                        clock,
                        channels,
                        enc.fmtp.as_deref(),
                    ),
                    frames: enc.frames,
                });
            }
            Err(e) => eprintln!("SKIPPED {}: {e}", c.name()),
        }
    }
    cases
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_20ms");
    g.throughput(Throughput::Elements(1));
    for case in cases() {
        let rate = case.format.recording_rate().unwrap_or(8000);
        let mut dec = match decoder(&case.format, rate) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("SKIPPED {}: {e}", case.name);
                continue;
            }
        };
        if case.frames.is_empty() {
            eprintln!("SKIPPED {}: no frames", case.name);
            continue;
        }
        let mut out = Vec::with_capacity(2048);
        let mut i = 0usize;
        g.bench_function(&case.name, |b| {
            b.iter(|| {
                out.clear();
                let frame = &case.frames[i % case.frames.len()];
                i += 1;
                let _ = dec.decode(black_box(frame), &mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
