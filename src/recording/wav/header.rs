//! Just enough RIFF/WAVE header walking to repair a spool file left by a crash.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::{RecordError, RecordingInfo};

/// A spool file is ours and has fmt then data right after the RIFF header;
/// the limits only keep a foreign file from sending us walking.
const MAX_CHUNKS: usize = 32;
/// RIFF sizes are u32 and count everything after the first 8 bytes.
const MAX_RIFF_PAYLOAD: u64 = u32::MAX as u64;

struct DataChunk {
    /// Byte offset of the first sample.
    pub offset: u64,
    pub channels: u16,
    pub sample_rate: u32,
    pub block_align: u16,
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Finds the data chunk and the PCM format of a WAV file.
fn find_data(path: &Path, f: &mut File) -> Result<DataChunk, RecordError> {
    let not_wav = |detail| RecordError::NotWav {
        path: path.to_path_buf(),
        detail,
    };
    f.seek(SeekFrom::Start(0))
        .map_err(|e| RecordError::io(path, e))?;
    hound::read_wave_header(f).map_err(|_| not_wav("no RIFF/WAVE header"))?;
    let mut pos: u64 = 12;
    let mut fmt: Option<(u16, u32, u16)> = None;
    for _ in 0..MAX_CHUNKS {
        let mut hdr = [0u8; 8];
        f.read_exact(&mut hdr)
            .map_err(|_| not_wav("no data chunk"))?;
        let size = u64::from(read_u32(&hdr, 4).unwrap_or(0));
        pos += 8;
        match hdr.get(..4) {
            Some(b"fmt ") => {
                let mut body = [0u8; 16];
                if size < 16 {
                    return Err(not_wav("short fmt chunk"));
                }
                f.read_exact(&mut body)
                    .map_err(|_| not_wav("short fmt chunk"))?;
                let tag = read_u16(&body, 0).unwrap_or(0);
                let channels = read_u16(&body, 2).unwrap_or(0);
                let rate = read_u32(&body, 4).unwrap_or(0);
                let align = read_u16(&body, 12).unwrap_or(0);
                // 1 = PCM, 0xFFFE = WAVE_FORMAT_EXTENSIBLE (PCM subformat assumed).
                if (tag != 1 && tag != 0xfffe) || channels == 0 || align == 0 {
                    return Err(not_wav("not integer PCM"));
                }
                fmt = Some((channels, rate, align));
            }
            Some(b"data") => {
                let (channels, sample_rate, block_align) = fmt.ok_or(not_wav("data before fmt"))?;
                return Ok(DataChunk {
                    offset: pos,
                    channels,
                    sample_rate,
                    block_align,
                });
            }
            _ => {}
        }
        // Chunks are word aligned.
        pos += size + (size & 1);
        f.seek(SeekFrom::Start(pos))
            .map_err(|e| RecordError::io(path, e))?;
    }
    Err(not_wav("no data chunk"))
}

/// Truncates the data to `data_bytes` and writes the RIFF and data sizes.
fn set_data_len(
    path: &Path,
    f: &mut File,
    chunk: &DataChunk,
    data_bytes: u64,
) -> Result<(), RecordError> {
    let io = |e| RecordError::io(path, e);
    f.set_len(chunk.offset + data_bytes).map_err(io)?;
    let riff = (chunk.offset - 8 + data_bytes).min(MAX_RIFF_PAYLOAD) as u32;
    f.seek(SeekFrom::Start(4)).map_err(io)?;
    f.write_all(&riff.to_le_bytes()).map_err(io)?;
    f.seek(SeekFrom::Start(chunk.offset - 4)).map_err(io)?;
    f.write_all(&(data_bytes.min(MAX_RIFF_PAYLOAD) as u32).to_le_bytes())
        .map_err(io)?;
    Ok(())
}

/// Repairs a spool file left by a crash: the header sizes are set from what is
/// actually on disk, cut to whole sample frames, and the file is fsynced.
/// Idempotent; a finished file comes back unchanged.
pub fn recover(path: &Path) -> Result<RecordingInfo, RecordError> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| RecordError::io(path, e))?;
    let chunk = find_data(path, &mut f)?;
    let len = f.metadata().map_err(|e| RecordError::io(path, e))?.len();
    let align = u64::from(chunk.block_align);
    let max_data = MAX_RIFF_PAYLOAD - (chunk.offset - 8);
    let data_bytes = len.saturating_sub(chunk.offset).min(max_data) / align * align;
    set_data_len(path, &mut f, &chunk, data_bytes)?;
    f.sync_all().map_err(|e| RecordError::io(path, e))?;
    Ok(RecordingInfo {
        path: path.to_path_buf(),
        frames: data_bytes / align,
        bytes: chunk.offset + data_bytes,
        sample_rate: chunk.sample_rate,
        channels: chunk.channels,
    })
}
