//! The stereo spool writer.
//!
//! Each channel's audio arrives on its own schedule (one side may be silent
//! for minutes), placed by absolute sample offset. Samples past the committed
//! frontier wait in a per-channel buffer; committing interleaves both channels
//! (silence where nothing arrived) into the file. The WAV header is rewritten
//! at least once per second of audio, so the spool is playable at any moment.
//!
//! hound writes the header (fmt chunk from a `WavSpec`); the sample data and
//! the size fields are written here, because hound's per-sample writer costs
//! ~250 ns per 20 ms packet and side while a block interleave costs ~20.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{RecordError, RecordingInfo};

/// Left = caller, right = callee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Left,
    Right,
}

const CHANNELS: u16 = 2;
const BYTES_PER_FRAME: u64 = 4;
/// The RIFF size (data + 36 header bytes) must fit in u32; hound counts data
/// bytes in a u32 too.
const MAX_WAV_FRAMES: u64 = (u32::MAX as u64 - 36) / BYTES_PER_FRAME;
/// hound writes the 44-byte PCMWAVEFORMAT header for up to 2 channels of
/// 16-bit PCM; the data size is its last field.
const HEADER_LEN: u64 = 44;
/// Frames interleaved per batch.
const BLOCK_FRAMES: usize = 4096;
/// Consumed pending samples are compacted away once at least this many.
const COMPACT_AT: usize = 4096;

#[derive(Clone, Debug)]
pub struct RecorderConfig {
    /// How far (in seconds) one channel may run ahead of the committed
    /// frontier before the recorder commits on its own. This is also how late
    /// the other channel's audio may arrive and still be placed.
    pub max_ahead_secs: u32,
    /// Rewrite the header after this many frames (0 = every sample_rate frames, 1 s).
    pub flush_every_frames: u64,
    /// Hard cap on the file's length in frames (never above the WAV limit).
    pub max_frames: u64,
    /// File write buffer.
    pub buffer_bytes: usize,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            max_ahead_secs: 2,
            flush_every_frames: 0,
            max_frames: MAX_WAV_FRAMES,
            buffer_bytes: 64 * 1024,
        }
    }
}

#[derive(Default, Clone, Debug, Serialize)]
pub struct RecorderStats {
    /// Samples that arrived for offsets already committed.
    pub late_samples: u64,
    /// Samples past `max_frames`.
    pub overflow_samples: u64,
    /// Samples written after the recorder had failed.
    pub failed_samples: u64,
    /// Commits forced by a channel running `max_ahead_secs` ahead.
    pub auto_commits: u64,
    pub header_flushes: u64,
}

/// Samples of one channel from the committed frontier on.
#[derive(Default)]
struct Pending {
    /// `data[head..]` is sample `frontier..`; unset samples are 0.
    data: Vec<i16>,
    head: usize,
}

impl Pending {
    fn len(&self) -> usize {
        self.data.len().saturating_sub(self.head)
    }

    fn place(&mut self, rel: usize, samples: &[i16]) {
        let start = self.head + rel;
        if start == self.data.len() {
            self.data.extend_from_slice(samples);
            return;
        }
        let end = start + samples.len();
        if end > self.data.len() {
            self.data.resize(end, 0);
        }
        if let Some(dst) = self.data.get_mut(start..end) {
            dst.copy_from_slice(samples);
        }
    }

    fn available(&self, n: usize) -> &[i16] {
        let end = self.data.len().min(self.head + n);
        self.data.get(self.head..end).unwrap_or_default()
    }

    fn consume(&mut self, n: usize) {
        self.head = self.head.saturating_add(n);
        if self.head >= self.data.len() {
            self.data.clear();
            self.head = 0;
        } else if self.head >= COMPACT_AT && self.head * 2 >= self.data.len() {
            // Amortised: the move is never longer than what was consumed.
            self.data.drain(..self.head);
            self.head = 0;
        }
    }
}

pub struct StereoRecorder {
    path: PathBuf,
    sample_rate: u32,
    file: File,
    /// Interleaved little-endian frames not yet in the file.
    buf: Vec<u8>,
    buf_cap: usize,
    left: Pending,
    right: Pending,
    /// Every frame before this is in the file.
    frontier: u64,
    ahead: u64,
    flush_every: u64,
    since_flush: u64,
    max_frames: u64,
    error: Option<RecordError>,
    failed: bool,
    finished: bool,
    stats: RecorderStats,
}

impl Drop for StereoRecorder {
    /// Dropped without `finish` (an error path, a panic): keep what was
    /// committed, with a header that says so. Pending samples are not committed.
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.write_out();
            let _ = self.write_sizes(self.frontier);
        }
    }
}

impl StereoRecorder {
    /// Creates (truncating) a 16-bit stereo PCM spool file.
    pub fn create(path: &Path, sample_rate: u32) -> Result<Self, RecordError> {
        Self::create_with(path, sample_rate, RecorderConfig::default())
    }

    pub fn create_with(
        path: &Path,
        sample_rate: u32,
        cfg: RecorderConfig,
    ) -> Result<Self, RecordError> {
        let create_err = |source| RecordError::Create {
            path: path.to_path_buf(),
            source,
        };
        // Readable too: finish() re-reads the header when it truncates.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(create_err)?;
        let mut file = file;
        let spec = hound::WavSpec {
            channels: CHANNELS,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        // A valid (empty) file from the first moment.
        hound::WavWriter::new(&mut file, spec)
            .and_then(|w| w.finalize())
            .map_err(|e| RecordError::from_hound(path, e))?;
        let buf_cap = cfg.buffer_bytes.max(4096);
        let rate = u64::from(sample_rate.max(1));
        Ok(StereoRecorder {
            path: path.to_path_buf(),
            sample_rate,
            file,
            buf: Vec::with_capacity(buf_cap),
            buf_cap,
            left: Pending::default(),
            right: Pending::default(),
            frontier: 0,
            ahead: u64::from(cfg.max_ahead_secs.max(1)) * rate,
            flush_every: if cfg.flush_every_frames == 0 {
                rate
            } else {
                cfg.flush_every_frames
            },
            since_flush: 0,
            max_frames: cfg.max_frames.min(MAX_WAV_FRAMES),
            error: None,
            failed: false,
            finished: false,
            stats: RecorderStats::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> &RecorderStats {
        &self.stats
    }

    /// Frames already in the file.
    pub fn committed(&self) -> u64 {
        self.frontier
    }

    /// Samples held in memory, both channels.
    pub fn pending_samples(&self) -> usize {
        self.left.len() + self.right.len()
    }

    /// Places `samples` for one channel starting at absolute sample `offset`
    /// (sample 0 = the answer instant). Overlapping writes: the later wins.
    /// Parts before the committed frontier are dropped (counted late).
    pub fn write(&mut self, ch: Channel, offset: u64, samples: &[i16]) {
        if self.failed {
            self.stats.failed_samples += samples.len() as u64;
            return;
        }
        // Chunks no longer than the ahead limit keep the pending buffer bounded
        // whatever the caller hands in.
        let chunk = usize::try_from(self.ahead).unwrap_or(usize::MAX);
        let mut off = offset;
        for part in samples.chunks(chunk.max(1)) {
            self.write_part(ch, off, part);
            off = off.saturating_add(part.len() as u64);
        }
    }

    fn write_part(&mut self, ch: Channel, offset: u64, samples: &[i16]) {
        let mut samples = samples;
        let mut offset = offset;
        let end = offset.saturating_add(samples.len() as u64);
        if end > self.max_frames {
            let keep = self
                .max_frames
                .saturating_sub(offset)
                .min(samples.len() as u64) as usize;
            self.stats.overflow_samples += (samples.len() - keep) as u64;
            samples = samples.get(..keep).unwrap_or_default();
        }
        if offset < self.frontier {
            let skip = (self.frontier - offset).min(samples.len() as u64) as usize;
            self.stats.late_samples += skip as u64;
            samples = samples.get(skip..).unwrap_or_default();
            offset = self.frontier;
        }
        if samples.is_empty() {
            return;
        }
        let end = offset + samples.len() as u64;
        if end - self.frontier > self.ahead {
            self.stats.auto_commits += 1;
            if let Err(e) = self.commit_frames(end - self.ahead) {
                self.fail(e);
                self.stats.failed_samples += samples.len() as u64;
                return;
            }
        }
        // end - frontier <= ahead now, which bounds the pending buffer.
        let rel = (offset - self.frontier) as usize;
        match ch {
            Channel::Left => self.left.place(rel, samples),
            Channel::Right => self.right.place(rel, samples),
        }
    }

    fn fail(&mut self, e: RecordError) {
        self.failed = true;
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn take_error(&mut self) -> Result<(), RecordError> {
        match self.error.take() {
            Some(e) => Err(e),
            None if self.failed => Err(RecordError::Failed {
                path: self.path.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Everything before frame `upto` is final: writes it (silence where no
    /// channel had audio). Also reports a write error from an auto-commit.
    pub fn commit(&mut self, upto: u64) -> Result<(), RecordError> {
        self.take_error()?;
        let r = self.commit_frames(upto);
        if let Err(e) = r {
            self.failed = true;
            return Err(e);
        }
        Ok(())
    }

    fn commit_frames(&mut self, upto: u64) -> Result<(), RecordError> {
        let upto = upto.min(self.max_frames);
        while self.frontier < upto {
            let n = (upto - self.frontier).min(BLOCK_FRAMES as u64) as usize;
            self.write_block(n)?;
            self.left.consume(n);
            self.right.consume(n);
            self.frontier += n as u64;
            self.since_flush += n as u64;
        }
        if self.since_flush >= self.flush_every {
            self.flush_header()?;
        }
        Ok(())
    }

    /// Interleaves the next `n` frames into the write buffer.
    fn write_block(&mut self, n: usize) -> Result<(), RecordError> {
        let start = self.buf.len();
        self.buf.resize(start + n * BYTES_PER_FRAME as usize, 0);
        let frames = self.buf.get_mut(start..).unwrap_or_default();
        let (l, r) = (self.left.available(n), self.right.available(n));
        if l.len() == n && r.len() == n {
            // Both sides present (the common case): one pass.
            for (f, (a, b)) in frames.chunks_exact_mut(4).zip(l.iter().zip(r)) {
                let v = u32::from(*a as u16) | u32::from(*b as u16) << 16;
                f.copy_from_slice(&v.to_le_bytes());
            }
            return self.write_out_if_full();
        }
        // Two passes over fixed-size chunks vectorise; silence is the resize's zeros.
        for (f, s) in frames.chunks_exact_mut(4).zip(l) {
            if let Some(d) = f.get_mut(..2) {
                d.copy_from_slice(&s.to_le_bytes());
            }
        }
        for (f, s) in frames.chunks_exact_mut(4).zip(r) {
            if let Some(d) = f.get_mut(2..) {
                d.copy_from_slice(&s.to_le_bytes());
            }
        }
        self.write_out_if_full()
    }

    fn write_out_if_full(&mut self) -> Result<(), RecordError> {
        if self.buf.len() >= self.buf_cap {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<(), RecordError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(&self.buf);
        self.buf.clear();
        r.map_err(|e| RecordError::io(&self.path, e))
    }

    /// Writes out buffered frames, then sizes that cover exactly them: the
    /// header never claims data that is not on disk.
    fn flush_header(&mut self) -> Result<(), RecordError> {
        self.since_flush = 0;
        self.stats.header_flushes += 1;
        self.write_out()?;
        self.write_sizes(self.frontier)
    }

    fn write_sizes(&mut self, frames: u64) -> Result<(), RecordError> {
        let data = frames * BYTES_PER_FRAME;
        let riff = (HEADER_LEN - 8 + data).min(u64::from(u32::MAX)) as u32;
        let data32 = data.min(u64::from(u32::MAX)) as u32;
        write_at(&mut self.file, 4, &riff.to_le_bytes())
            .and_then(|_| write_at(&mut self.file, HEADER_LEN - 4, &data32.to_le_bytes()))
            .map_err(|e| RecordError::io(&self.path, e))
    }

    /// Pads with silence (or truncates) to exactly `total` frames, finalises
    /// the header, fsyncs and closes.
    pub fn finish(mut self, total: u64) -> Result<RecordingInfo, RecordError> {
        self.take_error()?;
        let total = total.min(self.max_frames);
        if total > self.frontier {
            if let Err(e) = self.commit_frames(total) {
                self.failed = true;
                return Err(e);
            }
        }
        self.write_out()?;
        let frames = self.frontier.min(total);
        if self.frontier > total {
            let end = HEADER_LEN + total * BYTES_PER_FRAME;
            self.file
                .set_len(end)
                .map_err(|e| RecordError::io(&self.path, e))?;
        }
        self.write_sizes(frames)?;
        self.finished = true;
        let path = &self.path;
        self.file.sync_all().map_err(|e| RecordError::io(path, e))?;
        let bytes = self
            .file
            .metadata()
            .map_err(|e| RecordError::io(path, e))?
            .len();
        Ok(RecordingInfo {
            path: path.clone(),
            frames,
            bytes,
            sample_rate: self.sample_rate,
            channels: CHANNELS,
        })
    }
}

/// Positioned write that leaves the append position alone.
#[cfg(unix)]
fn write_at(f: &mut File, at: u64, bytes: &[u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, bytes, at)
}

#[cfg(not(unix))]
fn write_at(f: &mut File, at: u64, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let end = f.stream_position()?;
    f.seek(SeekFrom::Start(at))?;
    f.write_all(bytes)?;
    f.seek(SeekFrom::Start(end))?;
    Ok(())
}
