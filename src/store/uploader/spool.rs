//! The spool side of uploads: finding finished recordings oldest first,
//! hashing one, and putting it into storage.

use super::*;

/// S3 gets a content type so browsers play presigned links; the share
/// backend refuses attributes.
pub(super) fn attributes(storage: &Storage, key: &Key) -> Attributes {
    let mut a = Attributes::new();
    if storage.kind() == StorageBackend::S3 {
        let kind = if key.as_ref().ends_with(".ogg") {
            "audio/ogg"
        } else {
            "audio/wav"
        };
        a.insert(Attribute::ContentType, kind.into());
    }
    a
}
/// Puts one spooled file under `key`: one PUT up to `threshold` bytes, parts
/// above it; `audio/wav` on S3. The caller checks the size afterwards.
pub async fn upload(
    storage: &Storage,
    key: &Key,
    path: &Path,
    size: u64,
    threshold: u64,
) -> Result<(), UploadError> {
    let local = |source| UploadError::Local {
        path: path.to_path_buf(),
        source,
    };
    let store = storage.object_store();
    if size <= threshold {
        let data = tokio::fs::read(path).await.map_err(local)?;
        let opts = PutOptions {
            attributes: attributes(storage, key),
            ..PutOptions::default()
        };
        store
            .put_opts(key, PutPayload::from(data), opts)
            .await
            .map_err(|e| op_err(storage, "uploading", key, e))?;
        return Ok(());
    }
    let opts = PutMultipartOptions {
        attributes: attributes(storage, key),
        ..PutMultipartOptions::default()
    };
    let up = store
        .put_multipart_opts(key, opts)
        .await
        .map_err(|e| op_err(storage, "starting the upload of", key, e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(up, MULTIPART_CHUNK);
    let result = async {
        let mut file = tokio::fs::File::open(path).await.map_err(local)?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = file.read(&mut buf).await.map_err(local)?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| op_err(storage, "uploading", key, e))?;
            writer.write(buf.get(..n).unwrap_or_default());
        }
        Ok::<_, UploadError>(())
    }
    .await;
    match result {
        Ok(()) => writer
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| op_err(storage, "completing the upload of", key, e)),
        Err(e) => {
            // Parts already sent would otherwise linger (and cost) on S3.
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

/// Size and hex SHA-256, read in chunks (called off the async threads).
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        size += n as u64;
    }
    let hex = hex::encode(hasher.finalize());
    Ok((size, hex))
}

/// A finished recording waiting for storage.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Waiting {
    pub modified: SystemTime,
    pub path: PathBuf,
    /// `{yyyy}/{mm}/{dd}/{call id}.wav`
    pub relative: PathBuf,
    pub size: u64,
}

#[derive(Debug, Default)]
pub struct Scan {
    /// Oldest first, at most the batch size.
    pub files: Vec<Waiting>,
    /// All finished recordings waiting.
    pub total_files: u64,
    /// Their bytes, plus what open calls have in `.spool`.
    pub total_bytes: u64,
}

/// Lists finished recordings under `dir` (`{yyyy}/{mm}/{dd}/*.wav`), leaving
/// out the open calls' `.spool`, `recovered` and anything half-written.
pub fn scan(dir: &Path, batch: usize) -> Scan {
    let mut out = Scan::default();
    let mut oldest: BinaryHeap<Waiting> = BinaryHeap::new();
    walk(dir, dir, 0, &mut out, &mut oldest, batch);
    if let Ok(rd) = std::fs::read_dir(dir.join(".spool")) {
        out.total_bytes += rd
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum::<u64>();
    }
    out.files = oldest.into_sorted_vec();
    out
}

pub(super) fn walk(
    root: &Path,
    dir: &Path,
    depth: u32,
    out: &mut Scan,
    oldest: &mut BinaryHeap<Waiting>,
    batch: usize,
) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || (depth == 0 && name == "recovered") {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let path = entry.path();
        if meta.is_dir() {
            if depth < 3 {
                walk(root, &path, depth + 1, out, oldest, batch);
            }
            continue;
        }
        if depth != 3 || !meta.is_file() || !(name.ends_with(".wav") || name.ends_with(".ogg")) {
            continue;
        }
        let Ok(relative) = path.strip_prefix(root).map(Path::to_path_buf) else {
            continue;
        };
        out.total_files += 1;
        out.total_bytes += meta.len();
        oldest.push(Waiting {
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            path,
            relative,
            size: meta.len(),
        });
        if oldest.len() > batch {
            oldest.pop();
        }
    }
}
