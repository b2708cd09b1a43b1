//! The per-packet media path: RTP parse, stream ordering, G.711 decode and the
//! stereo recorder, for 20 ms PCMU packets (160 bytes).
//!
//! Run: `cargo bench --bench rtp_path -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pbxbridge::recording::wav::{Channel, StereoRecorder};
use pbxbridge::rtp::packet::build_packet;
use pbxbridge::rtp::{decode_g711, parse, Codec, RtpStream, StreamConfig};
use pbxbridge::time::Timestamp;

const SAMPLES: u64 = 160;
/// A recorder is finished and replaced after this many frames (one minute),
/// outside the timed section, so the bench never fills the disk.
const ROTATE_FRAMES: u64 = 60 * 8000;

fn payload() -> Vec<u8> {
    (0..SAMPLES as usize).map(|i| (i * 7 % 256) as u8).collect()
}

/// Rewrites seq and timestamp in place, as the next packet of the stream.
fn advance(pkt: &mut [u8], n: u64) {
    let seq = (n as u16).to_be_bytes();
    let ts = ((n * SAMPLES) as u32).to_be_bytes();
    pkt[2..4].copy_from_slice(&seq);
    pkt[4..8].copy_from_slice(&ts);
}

fn recorder(dir: &Path, i: u64) -> StereoRecorder {
    StereoRecorder::create(&dir.join(format!("bench-{i}.wav")), 8000).unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("rtp_path");
    g.throughput(Throughput::Elements(1));

    let pkt = build_packet(0, false, 1, 160, 0x1234, &payload());
    g.bench_function("parse", |b| b.iter(|| parse(black_box(&pkt)).unwrap().seq));

    g.bench_function("decode_pcmu", |b| {
        let p = payload();
        let mut out = Vec::with_capacity(160);
        b.iter(|| {
            out.clear();
            decode_g711(Codec::Pcmu, black_box(&p), &mut out);
            out.len()
        })
    });

    g.bench_function("parse_and_stream_push", |b| {
        let mut stream = RtpStream::new(StreamConfig::default());
        let mut pkt = pkt.clone();
        let mut n = 0u64;
        let mut released = 0u64;
        b.iter(|| {
            n += 1;
            advance(&mut pkt, n);
            let hdr = parse(&pkt).unwrap();
            let now = Timestamp(1_700_000_000_000_000 + n as i64 * 20_000);
            stream.push(now, &hdr, &mut |o| released += o.payload.len() as u64);
        });
        black_box(released);
    });

    // Recorder alone, one 160-sample packet per iteration, sides alternating,
    // committed after each right-side packet as a caller would. `file` is a
    // real spool file (page cache included); `devnull` is the user-space cost.
    for sink in ["file", "devnull"] {
        g.bench_function(format!("record_write_per_side/{sink}"), |b| {
            let samples: Vec<i16> = (0..SAMPLES as i16).collect();
            let open = || {
                if sink == "devnull" {
                    StereoRecorder::create(Path::new("/dev/null"), 8000).unwrap()
                } else {
                    recorder(dir.path(), 0)
                }
            };
            let close = |rec: StereoRecorder| {
                if sink == "devnull" {
                    drop(rec);
                } else {
                    rec.finish(ROTATE_FRAMES).unwrap();
                }
            };
            b.iter_custom(|iters| {
                let mut rec = open();
                let mut total = Duration::ZERO;
                let mut start = Instant::now();
                for i in 0..iters {
                    let frame = (i / 2) * SAMPLES % ROTATE_FRAMES;
                    if i % 2 == 0 {
                        if frame == 0 && i > 0 {
                            total += start.elapsed();
                            close(rec);
                            rec = open();
                            start = Instant::now();
                        }
                        rec.write(Channel::Left, frame, black_box(&samples));
                    } else {
                        rec.write(Channel::Right, frame, black_box(&samples));
                        rec.commit(frame + SAMPLES).unwrap();
                    }
                }
                total += start.elapsed();
                close(rec);
                total
            })
        });
    }

    // Everything a packet goes through, both call legs.
    g.bench_function("full_per_packet", |b| {
        let p = payload();
        b.iter_custom(|iters| {
            let mut pkts = [
                build_packet(0, false, 0, 0, 0xAAAA, &p),
                build_packet(0, false, 0, 0, 0xBBBB, &p),
            ];
            let mut streams = [
                RtpStream::new(StreamConfig::default()),
                RtpStream::new(StreamConfig::default()),
            ];
            let mut pcm = Vec::with_capacity(160);
            let mut rec = recorder(dir.path(), 1);
            let mut anchor = [None::<u64>; 2];
            let mut total = Duration::ZERO;
            let mut start = Instant::now();
            for i in 0..iters {
                let side = (i % 2) as usize;
                let n = i / 2;
                if side == 0 && n > 0 && n * SAMPLES % ROTATE_FRAMES == 0 {
                    total += start.elapsed();
                    rec.finish(ROTATE_FRAMES).unwrap();
                    rec = recorder(dir.path(), 1);
                    streams = [
                        RtpStream::new(StreamConfig::default()),
                        RtpStream::new(StreamConfig::default()),
                    ];
                    anchor = [None; 2];
                    start = Instant::now();
                }
                let pkt = &mut pkts[side];
                advance(pkt, n);
                let now = Timestamp(1_700_000_000_000_000 + n as i64 * 20_000);
                let Ok(hdr) = parse(pkt) else { continue };
                let ch = if side == 0 {
                    Channel::Left
                } else {
                    Channel::Right
                };
                let a = &mut anchor[side];
                streams[side].push(now, &hdr, &mut |o| {
                    let base = *a.get_or_insert(o.ext_ts);
                    pcm.clear();
                    if decode_g711(Codec::Pcmu, o.payload, &mut pcm) {
                        let off = (o.ext_ts - base) % ROTATE_FRAMES;
                        rec.write(ch, off, &pcm);
                    }
                });
                if side == 1 {
                    let upto = (n * SAMPLES) % ROTATE_FRAMES;
                    rec.commit(upto).unwrap();
                }
            }
            total += start.elapsed();
            rec.finish(0).unwrap();
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
