//! One leg's audio brought to the recording's rate, when its codec decodes
//! at another (a G.711 leg in a G.722 call, a codec change mid-call).
//!
//! rubato's FFT resampler takes fixed chunks and delays its output by half
//! a chunk; this wrapper feeds it packets of any size and keeps track of
//! where on the timeline each output sample belongs, so the two channels
//! stay sample-aligned.

use rubato::{FftFixedInOut, Resampler as _};

/// Input chunk: 20 ms, one usual packet.
const CHUNK_MS: usize = 20;
/// A gap up to this long (in input samples, at most one second) is fed as
/// silence, so the resampler's state carries over; a longer one (hold, a
/// re-anchor) starts it afresh.
const MAX_PAD_SECS: u64 = 1;

pub(crate) struct Resample {
    inner: FftFixedInOut<f32>,
    in_rate: u32,
    out_rate: u32,
    /// Input samples not yet processed.
    pending: Vec<f32>,
    /// The input position (samples at `in_rate` after the answer) the next
    /// pushed sample should have; `None` before the first push.
    next_in: Option<u64>,
    /// Where on the timeline (samples at `out_rate`) the next output goes.
    out_pos: u64,
    /// Output samples still to discard: the resampler's delay.
    skip: usize,
    chunk_in: usize,
    out_buf: Vec<f32>,
}

impl Resample {
    /// `None` when the rates are equal or unusable.
    pub fn new(in_rate: u32, out_rate: u32) -> Option<Resample> {
        if in_rate == out_rate || in_rate == 0 || out_rate == 0 {
            return None;
        }
        let chunk = (in_rate as usize * CHUNK_MS / 1000).max(1);
        let inner =
            FftFixedInOut::<f32>::new(in_rate as usize, out_rate as usize, chunk, 1).ok()?;
        let chunk_in = inner.input_frames_next();
        let out_buf = vec![0.0; inner.output_frames_max()];
        Some(Resample {
            skip: inner.output_delay(),
            inner,
            in_rate,
            out_rate,
            pending: Vec::with_capacity(chunk_in * 2),
            next_in: None,
            out_pos: 0,
            chunk_in,
            out_buf,
        })
    }

    /// Pushes `samples` whose first one sits at `pos` (samples at the input
    /// rate after the answer); calls `emit(offset, samples)` with resampled
    /// audio and its place (samples at the output rate).
    pub fn push(&mut self, pos: u64, samples: &[i16], emit: &mut impl FnMut(u64, &[i16])) {
        match self.next_in {
            Some(next) if pos >= next && pos - next <= u64::from(self.in_rate) * MAX_PAD_SECS => {
                let gap = (pos - next) as usize;
                self.pending.resize(self.pending.len() + gap, 0.0);
            }
            Some(_) => {
                self.drain(emit);
                self.restart(pos);
            }
            None => self.restart(pos),
        }
        self.pending
            .extend(samples.iter().map(|&s| f32::from(s) / 32768.0));
        self.next_in = Some(pos + samples.len() as u64);
        self.run(emit);
    }

    /// Pushes out what the resampler still holds (at the call's end, or
    /// before a jump), as if silence followed.
    pub fn drain(&mut self, emit: &mut impl FnMut(u64, &[i16])) {
        if self.next_in.is_none() {
            return;
        }
        let held = self.pending.len() + self.skip_equivalent_in();
        let target = held.div_ceil(self.chunk_in) * self.chunk_in;
        self.pending.resize(target.max(self.chunk_in), 0.0);
        self.run(emit);
    }

    /// Input samples the delay still to come out amounts to.
    fn skip_equivalent_in(&self) -> usize {
        let delay = self.inner.output_delay();
        (delay as u64 * u64::from(self.in_rate)).div_ceil(u64::from(self.out_rate)) as usize
    }

    fn restart(&mut self, pos: u64) {
        self.inner.reset();
        self.pending.clear();
        self.skip = self.inner.output_delay();
        self.out_pos = pos * u64::from(self.out_rate) / u64::from(self.in_rate);
        self.next_in = Some(pos);
    }

    fn run(&mut self, emit: &mut impl FnMut(u64, &[i16])) {
        let mut done = 0;
        let mut out = Vec::new();
        while self.pending.len() - done >= self.chunk_in {
            let input = [&self.pending[done..done + self.chunk_in]];
            let mut output = [&mut self.out_buf[..]];
            let Ok((used, made)) = self.inner.process_into_buffer(&input, &mut output, None) else {
                // Buffers are sized by the resampler itself; should it still
                // refuse, lose this chunk rather than the call.
                done += self.chunk_in;
                continue;
            };
            done += used;
            let skip = self.skip.min(made);
            self.skip -= skip;
            out.clear();
            out.extend(
                self.out_buf[skip..made]
                    .iter()
                    .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16),
            );
            if !out.is_empty() {
                emit(self.out_pos, &out);
                self.out_pos += out.len() as u64;
            }
        }
        self.pending.drain(..done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, from: usize, n: usize) -> Vec<i16> {
        (from..from + n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                (8000.0 * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    /// Collects everything emitted into one buffer indexed by offset.
    fn collect(r: &mut Resample, pushes: &[(u64, Vec<i16>)]) -> Vec<i16> {
        let mut out = vec![0i16; 0];
        let mut put = |off: u64, s: &[i16]| {
            let end = off as usize + s.len();
            if out.len() < end {
                out.resize(end, 0);
            }
            out[off as usize..end].copy_from_slice(s);
        };
        for (pos, s) in pushes {
            r.push(*pos, s, &mut put);
        }
        r.drain(&mut put);
        out
    }

    #[test]
    fn upsampling_keeps_place_and_shape() {
        let mut r = Resample::new(8000, 16000).unwrap();
        // 1 s of a 440 Hz tone in 20 ms packets, starting 0.5 s after the answer.
        let pushes: Vec<_> = (0..50)
            .map(|k| (4000 + k * 160, tone(8000, 440.0, k as usize * 160, 160)))
            .collect();
        let out = collect(&mut r, &pushes);
        // Nothing before 0.5 s (8000 output samples), then the tone at 16 kHz.
        assert!(
            out[..7990].iter().all(|&s| s == 0),
            "audio before its place"
        );
        let want = tone(16000, 440.0, 0, 15000);
        let got = &out[8000..23000];
        let err: f64 = want
            .iter()
            .zip(got)
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum::<f64>()
            / want.len() as f64;
        assert!(err.sqrt() < 100.0, "rms error {}", err.sqrt());
        // It ends where the input did: within a chunk of 24000.
        let last = out.iter().rposition(|&s| s.abs() > 1000).unwrap();
        assert!((23600..=24000).contains(&last), "last loud sample {last}");
    }

    #[test]
    fn gaps_are_silence_and_jumps_restart() {
        let mut r = Resample::new(16000, 8000).unwrap();
        let a = tone(16000, 300.0, 0, 320);
        // A 100 ms gap (padded), then a 5 s jump (restart).
        let out = collect(
            &mut r,
            &[
                (0, a.clone()),
                (320, a.clone()),
                (2240, a.clone()),
                (80_000, a.clone()),
            ],
        );
        let loud = |r: std::ops::Range<usize>| out[r].iter().any(|&s| s.abs() > 2000);
        assert!(loud(0..320));
        assert!(!loud(400..1080), "the gap must be silent");
        assert!(loud(1130..1270));
        assert!(!loud(1400..39_990));
        assert!(loud(40_010..40_150), "after the jump, at its own place");
        assert!(Resample::new(8000, 8000).is_none());
    }
}
