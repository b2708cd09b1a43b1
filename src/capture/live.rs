//! Live capture from a network interface with libpcap, one thread per interface.
//!
//! The capture thread does nothing but copy each packet out of the kernel ring and
//! `try_send` it to the tracker's bounded input queue. When that queue is full (the
//! tracker, the database or storage fell behind), the packet is dropped at once and
//! counted as `queue_full`; the thread never waits. Waiting would let the kernel
//! ring fill up, and then the kernel drops packets that nobody can attribute to a
//! cause. A `queue_full` count points straight at the slow stage instead.
//!
//! `kernel_dropped` (`ps_drop`) and `if_dropped` (`ps_ifdrop`) come from
//! `pcap_stats`, read once a second inside the capture loop (a pcap handle must
//! not be used from two threads).
//!
//! Waiting: libpcap 1.10's read timeout does not bound a read on a quiet Linux
//! TPACKET_V3 ring, so the handle is non-blocking and the thread waits in its own
//! `poll()` for at most 100 ms. A quiet interface therefore still sees the stop
//! flag within 100 ms and still refreshes its drop counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcap::{Active, Capture};

use crate::backoff::Backoff;
use crate::capture::thread::{SourceThread, StopFlags};
use crate::capture::{Input, InputSender, SendError};
use crate::config::CaptureConfig;
use crate::time::Timestamp;
use crate::wire::LinkType;

/// Not immediate mode: on Linux that switches libpcap to TPACKET_V2, whose ring
/// has one fixed slot of `snaplen` bytes per packet (32 MiB / 64 KiB snaplen =
/// 256 packets), and a short stall then drops packets in the kernel. TPACKET_V3
/// packs packets into blocks, so the same buffer holds tens of thousands; the
/// cost is up to `READ_TIMEOUT_MS` of latency, which a call tracker never notices.
const IMMEDIATE: bool = false;
/// How long the kernel holds a partly filled block (TPACKET_V3) before handing it over.
const READ_TIMEOUT_MS: i32 = 100;
/// How often `pcap_stats` is read.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// Reopen backoff after the interface went away (e.g. a VLAN interface recreated).
const REOPEN_MIN: Duration = Duration::from_secs(1);
const REOPEN_MAX: Duration = Duration::from_secs(30);

/// Why a live capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "capture.interfaces: no permission to capture on {interface} \
         (needs root or the CAP_NET_RAW and CAP_NET_ADMIN capabilities): {message}"
    )]
    PermissionDenied { interface: String, message: String },
    #[error("capture.interfaces: no interface named {interface}: {message}")]
    NoSuchDevice { interface: String, message: String },
    #[error("capture.interfaces: cannot open {interface}: {message}")]
    Open { interface: String, message: String },
    #[error("capture.filter: cannot compile {filter:?} on {interface}: {message}")]
    Filter {
        interface: String,
        filter: String,
        message: String,
    },
    #[error(
        "capture.interfaces: {interface} has link type {name} (DLT {dlt}), \
         which pbxbridge cannot decode"
    )]
    UnsupportedLinkType {
        interface: String,
        dlt: i32,
        name: String,
    },
    #[error("capture.{key}: {value} is out of range (at most {max})")]
    Setting {
        key: &'static str,
        value: u64,
        max: u64,
    },
    #[error("capture: cannot start the capture thread for {interface}: {source}")]
    Thread {
        interface: String,
        #[source]
        source: std::io::Error,
    },
}

impl LiveError {
    /// Stable snake_case key for stats and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            LiveError::PermissionDenied { .. } => "permission_denied",
            LiveError::NoSuchDevice { .. } => "no_such_device",
            LiveError::Open { .. } => "open_failed",
            LiveError::Filter { .. } => "bad_filter",
            LiveError::UnsupportedLinkType { .. } => "unsupported_link_type",
            LiveError::Setting { .. } => "bad_setting",
            LiveError::Thread { .. } => "thread_spawn_failed",
        }
    }
}

/// Counters of one interface, shared with the metrics exporter.
#[derive(Debug, Default)]
pub struct CaptureStats {
    /// Packets read from the kernel.
    pub received: AtomicU64,
    /// Captured bytes of those packets (after the snap length).
    pub bytes: AtomicU64,
    /// Dropped by the kernel because its ring was full (`ps_drop`), since start.
    pub kernel_dropped: AtomicU64,
    /// Dropped by the interface or its driver (`ps_ifdrop`), since start.
    pub if_dropped: AtomicU64,
    /// Read but dropped because the tracker's input queue was full.
    pub queue_full: AtomicU64,
    /// Read errors (the interface went down, ...); each one reopens the interface.
    pub errors: AtomicU64,
    /// Successful reopens after an error.
    pub reopens: AtomicU64,
}

/// A plain copy of [`CaptureStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStatsSnapshot {
    pub received: u64,
    pub bytes: u64,
    pub kernel_dropped: u64,
    pub if_dropped: u64,
    pub queue_full: u64,
    pub errors: u64,
    pub reopens: u64,
}

impl CaptureStats {
    pub fn snapshot(&self) -> CaptureStatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CaptureStatsSnapshot {
            received: l(&self.received),
            bytes: l(&self.bytes),
            kernel_dropped: l(&self.kernel_dropped),
            if_dropped: l(&self.if_dropped),
            queue_full: l(&self.queue_full),
            errors: l(&self.errors),
            reopens: l(&self.reopens),
        }
    }
}

/// The settings of one open, checked once so a reopen cannot fail on them.
#[derive(Debug, Clone)]
struct Settings {
    interface: String,
    filter: String,
    promiscuous: bool,
    snaplen: i32,
    buffer_bytes: i32,
}

impl Settings {
    fn new(interface: &str, cfg: &CaptureConfig) -> Result<Settings, LiveError> {
        let max = i32::MAX as u64;
        let snaplen = i32::try_from(cfg.snaplen).map_err(|_| LiveError::Setting {
            key: "snaplen",
            value: u64::from(cfg.snaplen),
            max,
        })?;
        let buffer_bytes = u64::from(cfg.buffer_mib) * 1024 * 1024;
        let buffer_bytes = i32::try_from(buffer_bytes).map_err(|_| LiveError::Setting {
            key: "buffer_mib",
            value: u64::from(cfg.buffer_mib),
            max: max / (1024 * 1024),
        })?;
        Ok(Settings {
            interface: interface.to_owned(),
            filter: cfg.filter.trim().to_owned(),
            promiscuous: cfg.promiscuous,
            snaplen,
            buffer_bytes,
        })
    }

    fn open(&self) -> Result<(Capture<Active>, LinkType), LiveError> {
        let cap = Capture::from_device(self.interface.as_str())
            .map_err(|e| self.open_error(e))?
            .promisc(self.promiscuous)
            .snaplen(self.snaplen)
            .buffer_size(self.buffer_bytes)
            .immediate_mode(IMMEDIATE)
            .timeout(READ_TIMEOUT_MS)
            .open()
            .map_err(|e| self.open_error(e))?;
        let dlt = cap.get_datalink();
        let link = match u32::try_from(dlt.0).map(LinkType::from_dlt) {
            Ok(LinkType::Unknown(_)) | Err(_) => {
                return Err(LiveError::UnsupportedLinkType {
                    interface: self.interface.clone(),
                    dlt: dlt.0,
                    name: dlt.get_name().unwrap_or_else(|_| "unknown".into()),
                })
            }
            Ok(link) => link,
        };
        // libpcap's read timeout does not bound a read on a quiet Linux
        // TPACKET_V3 ring: pcap_next_ex can block until a packet comes, and a
        // quiet interface would then never see the stop flag. So the handle is
        // non-blocking and the thread waits in its own poll() with a timeout.
        let mut cap = cap.setnonblock().map_err(|e| self.open_error(e))?;
        if !self.filter.is_empty() {
            cap.filter(&self.filter, true)
                .map_err(|e| LiveError::Filter {
                    interface: self.interface.clone(),
                    filter: self.filter.clone(),
                    message: pcap_message(e),
                })?;
        }
        Ok((cap, link))
    }

    fn open_error(&self, e: pcap::Error) -> LiveError {
        let message = pcap_message(e);
        let interface = self.interface.clone();
        // libpcap reports PCAP_ERROR_PERM_DENIED / PCAP_ERROR_NO_SUCH_DEVICE only
        // through its message text once the pcap crate has wrapped them.
        let lower = message.to_ascii_lowercase();
        if lower.contains("permission") || lower.contains("operation not permitted") {
            LiveError::PermissionDenied { interface, message }
        } else if lower.contains("no such device") {
            LiveError::NoSuchDevice { interface, message }
        } else {
            LiveError::Open { interface, message }
        }
    }
}

fn pcap_message(e: pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m,
        other => other.to_string(),
    }
}

/// A running capture on one interface.
pub struct LiveCapture {
    interface: String,
    link: LinkType,
    stats: Arc<CaptureStats>,
    thread: SourceThread,
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("interface", &self.interface)
            .field("link", &self.link)
            .field("stats", &self.stats)
            .finish()
    }
}

impl LiveCapture {
    /// Opens `interface` now (so every configuration error is returned here) and
    /// starts its capture thread, named `capture-<interface>`. The thread ends when
    /// `stop` is set, [`LiveCapture::stop`] is called, or the queue is closed.
    pub fn start(
        interface: &str,
        cfg: &CaptureConfig,
        tx: InputSender,
        stop: Arc<AtomicBool>,
    ) -> Result<LiveCapture, LiveError> {
        let settings = Settings::new(interface, cfg)?;
        let (cap, link) = settings.open()?;
        let stats = Arc::new(CaptureStats::default());
        let stop = StopFlags::new(stop);
        let worker = Worker {
            settings,
            tx,
            stats: stats.clone(),
            stop: stop.clone(),
            dropped_base: (0, 0),
        };
        let thread = SourceThread::spawn(
            format!("capture-{interface}"),
            format!("capture on {interface}"),
            &stop,
            move || worker.run(cap, link),
        )
        .map_err(|source| LiveError::Thread {
            interface: interface.to_owned(),
            source,
        })?;
        tracing::info!(
            interface,
            ?link,
            filter = %cfg.filter,
            promiscuous = cfg.promiscuous,
            snaplen = cfg.snaplen,
            buffer_mib = cfg.buffer_mib,
            "live capture started"
        );
        Ok(LiveCapture {
            interface: interface.to_owned(),
            link,
            stats,
            thread,
        })
    }

    /// Starts one capture per configured interface. If one fails, the ones
    /// already started are stopped and the error is returned.
    pub fn start_all(
        cfg: &CaptureConfig,
        tx: &InputSender,
        stop: &Arc<AtomicBool>,
    ) -> Result<Vec<LiveCapture>, LiveError> {
        let mut started = Vec::with_capacity(cfg.interfaces.len());
        for interface in &cfg.interfaces {
            match LiveCapture::start(interface, cfg, tx.clone(), stop.clone()) {
                Ok(c) => started.push(c),
                Err(e) => {
                    for c in started {
                        c.stop();
                    }
                    return Err(e);
                }
            }
        }
        Ok(started)
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The link type of the interface, as found at start.
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    pub fn stats(&self) -> &Arc<CaptureStats> {
        &self.stats
    }

    /// Whether the capture thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.is_running()
    }

    /// Stops this capture only and waits for its thread.
    pub fn stop(mut self) {
        self.thread.stop();
    }

    /// Waits for the thread to end after the shared stop flag was set (it looks
    /// at the flag at least every 100 ms).
    pub fn join(mut self) {
        self.thread.join();
    }
}

struct Worker {
    settings: Settings,
    tx: InputSender,
    stats: Arc<CaptureStats>,
    stop: StopFlags,
    /// Drop counts of handles closed after an error: a new handle starts from 0.
    dropped_base: (u64, u64),
}

enum Ended {
    Stopped,
    QueueClosed,
    Error(String),
}

impl Worker {
    fn stopping(&self) -> bool {
        self.stop.is_set()
    }

    fn run(mut self, cap: Capture<Active>, link: LinkType) {
        let interface = self.settings.interface.clone();
        let mut current = Some((cap, link));
        let mut backoff = Backoff::new(REOPEN_MIN, REOPEN_MAX);
        while let Some((mut cap, link)) = current.take() {
            let ended = self.capture(&mut cap, link);
            let last = read_stats(&mut cap);
            self.publish_drops(last);
            if let Some((d, i)) = last {
                self.dropped_base.0 += u64::from(d);
                self.dropped_base.1 += u64::from(i);
            }
            drop(cap);
            match ended {
                Ended::Stopped => break,
                Ended::QueueClosed => {
                    tracing::info!(interface, "input queue closed; live capture ends");
                    break;
                }
                Ended::Error(message) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(interface, error = %message, "live capture failed; reopening");
                }
            }
            // Reopen until it works or we are told to stop.
            while !self.stopping() {
                self.sleep(backoff.next_wait());
                if self.stopping() {
                    break;
                }
                match self.settings.open() {
                    Ok(opened) => {
                        self.stats.reopens.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(interface, "live capture reopened");
                        backoff.reset();
                        current = Some(opened);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(interface, error = %e, "cannot reopen live capture");
                    }
                }
            }
        }
        tracing::info!(interface, "live capture stopped");
    }

    fn sleep(&self, total: Duration) {
        let deadline = Instant::now() + total;
        while !self.stopping() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    fn capture(&mut self, cap: &mut Capture<Active>, link: LinkType) -> Ended {
        let mut next_stats = Instant::now() + STATS_EVERY;
        loop {
            if self.stopping() {
                return Ended::Stopped;
            }
            // A vDSO clock read per packet costs less than the copy that follows.
            if Instant::now() >= next_stats {
                self.publish_drops(read_stats(cap));
                next_stats = Instant::now() + STATS_EVERY;
            }
            match cap.next_packet() {
                Ok(packet) => {
                    let h = packet.header;
                    let ts = header_ts(h.ts.tv_sec, h.ts.tv_usec);
                    self.stats.received.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .bytes
                        .fetch_add(packet.data.len() as u64, Ordering::Relaxed);
                    let input = Input::Frame {
                        ts,
                        link,
                        data: packet.data.to_vec(),
                    };
                    match self.tx.try_send(input) {
                        Ok(()) => {}
                        Err(SendError::Full) => {
                            self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(SendError::Closed) => return Ended::QueueClosed,
                    }
                }
                // The non-blocking handle has no packet ready.
                Err(pcap::Error::TimeoutExpired) => {
                    wait_readable(cap, READ_TIMEOUT_MS);
                }
                Err(e) => return Ended::Error(pcap_message(e)),
            }
        }
    }

    fn publish_drops(&self, stat: Option<(u32, u32)>) {
        if let Some((dropped, if_dropped)) = stat {
            self.stats
                .kernel_dropped
                .store(self.dropped_base.0 + u64::from(dropped), Ordering::Relaxed);
            self.stats.if_dropped.store(
                self.dropped_base.1 + u64::from(if_dropped),
                Ordering::Relaxed,
            );
        }
    }
}

/// Waits until the capture handle has packets or `timeout_ms` passes.
fn wait_readable(cap: &Capture<Active>, timeout_ms: i32) {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: cap.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and the fd stays open for the call (we hold `cap`).
    // An error or EINTR just means one more turn of the loop.
    unsafe {
        libc::poll(&mut pfd, 1, timeout_ms);
    }
}

/// The pcap header's time (microsecond precision, the default) as a [`Timestamp`].
/// Generic because time_t and suseconds_t are i64 on 64-bit Linux, narrower elsewhere.
fn header_ts(sec: impl Into<i64>, usec: impl Into<i64>) -> Timestamp {
    Timestamp::from_micros(
        sec.into()
            .saturating_mul(1_000_000)
            .saturating_add(usec.into()),
    )
}

/// `(ps_drop, ps_ifdrop)`, or `None` when libpcap cannot tell (then the last values stay).
fn read_stats(cap: &mut Capture<Active>) -> Option<(u32, u32)> {
    cap.stats().ok().map(|s| (s.dropped, s.if_dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::new("eth7", &CaptureConfig::default()).unwrap()
    }

    #[test]
    fn open_errors_are_classified_by_libpcap_message() {
        let s = settings();
        let e = s.open_error(pcap::Error::PcapError(
            "eth7: You don't have permission to perform this capture on that device \
             (socket: Operation not permitted)"
                .into(),
        ));
        assert_eq!(e.reason(), "permission_denied");
        let text = e.to_string();
        assert!(
            text.contains("CAP_NET_RAW") && text.contains("eth7"),
            "{text}"
        );

        let e = s.open_error(pcap::Error::PcapError(
            "eth7: No such device exists (No such device)".into(),
        ));
        assert_eq!(e.reason(), "no_such_device");
        assert!(e.to_string().contains("eth7"));

        let e = s.open_error(pcap::Error::PcapError("something else".into()));
        assert_eq!(e.reason(), "open_failed");
    }

    #[test]
    fn settings_out_of_range_are_named() {
        let cfg = CaptureConfig {
            buffer_mib: 4096,
            ..CaptureConfig::default()
        };
        let e = Settings::new("lo", &cfg).unwrap_err();
        assert_eq!(e.reason(), "bad_setting");
        assert!(e.to_string().contains("capture.buffer_mib: 4096"), "{e}");
        let cfg = CaptureConfig {
            snaplen: u32::MAX,
            ..CaptureConfig::default()
        };
        assert!(Settings::new("lo", &cfg)
            .unwrap_err()
            .to_string()
            .contains("capture.snaplen"));
    }
}
