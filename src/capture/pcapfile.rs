//! Streaming reader for pcap (every magic: µs/ns, either byte order, modified) and
//! pcapng (sections, several interfaces with their own link type and timestamp
//! resolution) files, on top of pcap-parser's circular-buffer readers.
//!
//! Memory stays bounded: the buffer starts at `INITIAL_BUFFER` and grows only to hold
//! one record, up to `MAX_BUFFER`.

use std::fs::File;
use std::path::{Path, PathBuf};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};

use crate::time::Timestamp;
use crate::wire::LinkType;

const INITIAL_BUFFER: usize = 256 * 1024;
/// Largest record accepted. Real packets are < 256 KiB; a bigger length field is far
/// more likely corruption, which must not make the reader allocate gigabytes.
const MAX_BUFFER: usize = 8 * 1024 * 1024;
/// Interfaces remembered per pcapng section.
const MAX_INTERFACES: usize = 4096;

/// Why a capture file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{}: cannot open: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: is a directory, not a capture file", path.display())]
    IsDirectory { path: PathBuf },
    #[error("{}: empty file", path.display())]
    Empty { path: PathBuf },
    #[error("{}: not a pcap or pcapng file", path.display())]
    NotPcap { path: PathBuf },
    #[error("{}: read error near byte {offset}", path.display())]
    Read { path: PathBuf, offset: u64 },
    #[error("{}: corrupt record at byte {offset}: {detail}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    #[error("{}: record at byte {offset} larger than {max} bytes", path.display())]
    RecordTooLarge {
        path: PathBuf,
        offset: u64,
        max: usize,
    },
}

impl CaptureError {
    /// Stable snake_case key for stats and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            CaptureError::Open { .. } => "open_failed",
            CaptureError::IsDirectory { .. } => "is_directory",
            CaptureError::Empty { .. } => "empty_file",
            CaptureError::NotPcap { .. } => "not_pcap",
            CaptureError::Read { .. } => "read_failed",
            CaptureError::Corrupt { .. } => "corrupt_record",
            CaptureError::RecordTooLarge { .. } => "record_too_large",
        }
    }
}

/// One captured frame, borrowed from the reader until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPacket<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    pub data: &'a [u8],
}

/// What was seen besides packets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcapFileStats {
    pub packets: u64,
    /// pcapng blocks that carry no packet (statistics, name resolution, custom, ...).
    pub skipped_blocks: u64,
    /// Packets naming an interface that no IDB described.
    pub unknown_interface: u64,
    /// Interface descriptions beyond `MAX_INTERFACES` or with an unusable resolution.
    pub bad_interfaces: u64,
    /// The file ended inside a record (a capture cut short, e.g. by a crash).
    pub truncated_tail: bool,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second.
    units_per_sec: u64,
    offset_secs: i64,
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Legacy { link: LinkType, nanos: bool },
    Ng,
}

/// Where a packet's bytes sit in the reader's buffer, found while the block borrow
/// is alive and used after it ends (the buffer does not move in between).
struct Located {
    ts: Timestamp,
    link: LinkType,
    addr: usize,
    len: usize,
}

enum Step {
    Packet(usize, Located),
    Skip(usize),
    Refill,
    Grow,
    Eof,
    TruncatedTail,
    Corrupt(String),
    ReadError,
}

/// Reads packets from a pcap or pcapng file, one at a time.
pub struct PcapFileReader {
    path: PathBuf,
    reader: Box<dyn PcapReaderIterator + Send>,
    format: Format,
    interfaces: Vec<Interface>,
    /// Bytes of the packet last returned, consumed on the next call.
    pending: usize,
    offset: u64,
    capacity: usize,
    last_ts: Timestamp,
    done: bool,
    stats: PcapFileStats,
}

impl std::fmt::Debug for PcapFileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapFileReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("offset", &self.offset)
            .field("stats", &self.stats)
            .finish()
    }
}

impl PcapFileReader {
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // Linux opens a directory for reading; only the first read fails, and
        // "read error near byte 0" would not say why.
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(CaptureError::IsDirectory {
                path: path.to_path_buf(),
            });
        }
        let reader = create_reader(INITIAL_BUFFER, file).map_err(|e| match e {
            PcapError::Eof => CaptureError::Empty {
                path: path.to_path_buf(),
            },
            PcapError::ReadError => CaptureError::Read {
                path: path.to_path_buf(),
                offset: 0,
            },
            _ => CaptureError::NotPcap {
                path: path.to_path_buf(),
            },
        })?;
        Ok(PcapFileReader {
            path: path.to_path_buf(),
            reader,
            // Replaced by the first block (pcap header or section header).
            format: Format::Ng,
            interfaces: Vec::new(),
            pending: 0,
            offset: 0,
            capacity: INITIAL_BUFFER,
            last_ts: Timestamp(0),
            done: false,
            stats: PcapFileStats::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> &PcapFileStats {
        &self.stats
    }

    /// The next packet, `Ok(None)` at the end of the file. A record cut off by the end
    /// of the file ends it quietly (see `stats().truncated_tail`).
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if self.pending > 0 {
            self.reader.consume(self.pending);
            self.offset += self.pending as u64;
            self.pending = 0;
        }
        if self.done {
            return Ok(None);
        }
        let (loc, start) = loop {
            let step = match self.reader.next() {
                Ok((len, block)) => {
                    match classify(
                        &mut self.format,
                        &mut self.interfaces,
                        &mut self.stats,
                        block,
                    ) {
                        Some(mut loc) => {
                            if loc.ts == Timestamp(i64::MIN) {
                                loc.ts = self.last_ts;
                            }
                            Step::Packet(len, loc)
                        }
                        None => Step::Skip(len),
                    }
                }
                Err(PcapError::Eof) => Step::Eof,
                Err(PcapError::Incomplete(_)) => Step::Refill,
                Err(PcapError::UnexpectedEof) => Step::TruncatedTail,
                Err(PcapError::BufferTooSmall) => Step::Grow,
                Err(PcapError::ReadError) => Step::ReadError,
                Err(PcapError::HeaderNotRecognized) => {
                    Step::Corrupt("header not recognized".into())
                }
                Err(PcapError::NomError(_, kind)) => Step::Corrupt(format!("{kind:?}")),
                Err(PcapError::OwnedNomError(_, kind)) => Step::Corrupt(format!("{kind:?}")),
            };
            match step {
                Step::Packet(len, loc) => {
                    let (base, avail) = {
                        let buf = self.reader.data();
                        (buf.as_ptr() as usize, buf.len())
                    };
                    let start = loc.addr.wrapping_sub(base);
                    if start.checked_add(loc.len).is_some_and(|end| end <= avail) {
                        self.pending = len;
                        self.last_ts = loc.ts;
                        break (loc, start);
                    }
                    // Cannot happen: the block was parsed from this buffer.
                    self.stats.skipped_blocks += 1;
                    self.reader.consume(len);
                    self.offset += len as u64;
                }
                Step::Skip(len) => {
                    self.reader.consume(len);
                    self.offset += len as u64;
                }
                Step::Refill => {
                    let before = self.reader.data().len();
                    if self.reader.refill().is_err() {
                        self.done = true;
                        return Err(self.read_error());
                    }
                    if self.reader.data().len() == before && !self.reader.reader_exhausted() {
                        self.grow()?;
                    }
                }
                Step::Grow => self.grow()?,
                Step::Eof => {
                    self.done = true;
                    return Ok(None);
                }
                Step::TruncatedTail => {
                    self.done = true;
                    self.stats.truncated_tail = true;
                    tracing::warn!(
                        path = %self.path.display(),
                        offset = self.offset,
                        "capture ends inside a record; packets before it were read"
                    );
                    return Ok(None);
                }
                Step::ReadError => {
                    self.done = true;
                    return Err(self.read_error());
                }
                Step::Corrupt(detail) => {
                    self.done = true;
                    return Err(CaptureError::Corrupt {
                        path: self.path.clone(),
                        offset: self.offset,
                        detail,
                    });
                }
            }
        };
        self.stats.packets += 1;
        let data = self
            .reader
            .data()
            .get(start..start + loc.len)
            .unwrap_or_default();
        Ok(Some(RawPacket {
            ts: loc.ts,
            link: loc.link,
            data,
        }))
    }

    fn read_error(&self) -> CaptureError {
        CaptureError::Read {
            path: self.path.clone(),
            offset: self.offset,
        }
    }

    fn grow(&mut self) -> Result<(), CaptureError> {
        let next = self.capacity.saturating_mul(2);
        if next > MAX_BUFFER || !self.reader.grow(next) {
            self.done = true;
            return Err(CaptureError::RecordTooLarge {
                path: self.path.clone(),
                offset: self.offset,
                max: MAX_BUFFER,
            });
        }
        self.capacity = next;
        Ok(())
    }
}

/// Updates per-file state from a block; returns where a packet's bytes are.
/// A timestamp of `i64::MIN` means "none in this block" (simple packet blocks).
fn classify(
    format: &mut Format,
    interfaces: &mut Vec<Interface>,
    stats: &mut PcapFileStats,
    block: PcapBlockOwned<'_>,
) -> Option<Located> {
    match block {
        PcapBlockOwned::LegacyHeader(h) => {
            // Upper bits of the link type field may carry FCS information.
            let dlt = (h.network.0 as u32) & 0xffff;
            *format = Format::Legacy {
                link: LinkType::from_dlt(dlt),
                nanos: h.is_nanosecond_precision(),
            };
            None
        }
        PcapBlockOwned::Legacy(b) => {
            let Format::Legacy { link, nanos } = *format else {
                return None;
            };
            let frac = i64::from(b.ts_usec);
            let micros = if nanos { frac / 1000 } else { frac };
            let ts = Timestamp(i64::from(b.ts_sec) * 1_000_000 + micros);
            let len = (b.caplen as usize).min(b.data.len());
            Some(Located {
                ts,
                link,
                addr: b.data.as_ptr() as usize,
                len,
            })
        }
        PcapBlockOwned::NG(block) => match block {
            Block::SectionHeader(_) => {
                *format = Format::Ng;
                interfaces.clear();
                None
            }
            Block::InterfaceDescription(idb) => {
                let units_per_sec = match idb.ts_resolution() {
                    Some(u) if u > 0 => u,
                    _ => {
                        stats.bad_interfaces += 1;
                        1_000_000
                    }
                };
                if interfaces.len() < MAX_INTERFACES {
                    interfaces.push(Interface {
                        link: LinkType::from_dlt(idb.linktype.0 as u32 & 0xffff),
                        units_per_sec,
                        offset_secs: idb.if_tsoffset,
                    });
                } else {
                    stats.bad_interfaces += 1;
                }
                None
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = interfaces.get(epb.if_id as usize).copied() else {
                    stats.unknown_interface += 1;
                    return None;
                };
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let micros = u128::from(units) * 1_000_000 / u128::from(iface.units_per_sec);
                let micros = i64::try_from(micros).unwrap_or(i64::MAX);
                let ts =
                    Timestamp(micros.saturating_add(iface.offset_secs.saturating_mul(1_000_000)));
                let len = (epb.caplen as usize).min(epb.data.len());
                Some(Located {
                    ts,
                    link: iface.link,
                    addr: epb.data.as_ptr() as usize,
                    len,
                })
            }
            Block::SimplePacket(spb) => {
                let Some(iface) = interfaces.first().copied() else {
                    stats.unknown_interface += 1;
                    return None;
                };
                // SPB has no caplen: origlen bounded by the block's data.
                let len = (spb.origlen as usize).min(spb.data.len());
                Some(Located {
                    ts: Timestamp(i64::MIN),
                    link: iface.link,
                    addr: spb.data.as_ptr() as usize,
                    len,
                })
            }
            _ => {
                stats.skipped_blocks += 1;
                None
            }
        },
    }
}

#[cfg(test)]
mod tests;
