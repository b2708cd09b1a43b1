//! A finished WAV turned into Ogg/Opus (`recording.format = "opus"`): the
//! spool stays WAV, so a crash mid-call still leaves a playable file, and
//! only the finished recording is compressed.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::codec::ogg_opus::OggOpusWriter;

/// Samples per read from the WAV: one second of stereo 48 kHz.
const CHUNK: usize = 96_000;

/// Writes `wav` as `{stem}.ogg` beside it (through a hidden temp file, so
/// the uploader never sees half a file), removes the WAV, and returns the
/// new path and its size. On error the WAV is left as it was.
pub(super) fn to_ogg_opus(wav: &Path, bitrate: u32, serial: u32) -> Result<(PathBuf, u64), String> {
    let reader = hound::WavReader::new(BufReader::new(
        File::open(wav).map_err(|e| format!("cannot open {}: {e}", wav.display()))?,
    ))
    .map_err(|e| format!("cannot read {}: {e}", wav.display()))?;
    let spec = reader.spec();
    let ogg = wav.with_extension("ogg");
    let name = ogg
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = ogg.with_file_name(format!(".{name}.tmp"));
    let written = (|| {
        let file = File::create(&tmp).map_err(|e| e.to_string())?;
        let mut w = OggOpusWriter::new(
            BufWriter::new(file),
            spec.sample_rate,
            spec.channels as u8,
            bitrate,
            serial,
        )
        .map_err(|e| e.to_string())?;
        let mut buf = Vec::with_capacity(CHUNK);
        for s in reader.into_samples::<i16>() {
            buf.push(s.map_err(|e| e.to_string())?);
            if buf.len() == CHUNK {
                w.write(&buf).map_err(|e| e.to_string())?;
                buf.clear();
            }
        }
        w.write(&buf).map_err(|e| e.to_string())?;
        let mut out = w.finish().map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        let file = out.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &ogg).map_err(|e| e.to_string())?;
        std::fs::metadata(&ogg)
            .map(|m| m.len())
            .map_err(|e| e.to_string())
    })();
    match written {
        Ok(bytes) => {
            // The Ogg file is durable; the WAV is now a duplicate.
            let _ = std::fs::remove_file(wav);
            Ok((ogg, bytes))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(format!("cannot write {} as Ogg/Opus: {e}", wav.display()))
        }
    }
}
