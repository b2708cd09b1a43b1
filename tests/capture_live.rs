//! Live capture on the loopback interface with real libpcap. Needs root or
//! CAP_NET_RAW + CAP_NET_ADMIN (CI runs as root); without them these tests fail.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pbxbridge::capture::live::{LiveCapture, LiveError};
use pbxbridge::capture::{input_queue, Input, InputReceiver, InputSender};
use pbxbridge::config::CaptureConfig;
use pbxbridge::time::Timestamp;
use pbxbridge::wire::LinkType;

fn cfg(filter: &str) -> CaptureConfig {
    CaptureConfig {
        interfaces: vec!["lo".into()],
        filter: filter.into(),
        promiscuous: false,
        snaplen: 65535,
        buffer_mib: 4,
        ..CaptureConfig::default()
    }
}

fn start_lo(filter: &str, tx: InputSender, stop: Arc<AtomicBool>) -> LiveCapture {
    match LiveCapture::start("lo", &cfg(filter), tx, stop) {
        Ok(c) => c,
        Err(e @ LiveError::PermissionDenied { .. }) => panic!(
            "live capture tests need root or CAP_NET_RAW/CAP_NET_ADMIN \
             (run them as root, as CI does): {e}"
        ),
        Err(e) => panic!("cannot capture on lo: {e}"),
    }
}

/// A bound socket (so nothing answers with ICMP port unreachable) and its port.
fn sink() -> (UdpSocket, u16) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

fn payload(port: u16, i: usize) -> Vec<u8> {
    format!("pbxbridge-live-test port={port} seq={i:05}").into_bytes()
}

fn frames_until(rx: &InputReceiver, want: usize, limit: Duration) -> Vec<(i64, LinkType, Vec<u8>)> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)).unwrap() {
            Some(Input::Frame { ts, link, data }) => got.push((ts.micros(), link, data)),
            Some(other) => panic!("unexpected input {other:?}"),
            None => {}
        }
    }
    got
}

#[test]
fn captures_udp_on_loopback_with_filter() {
    let (sock, port) = sink();
    let (_other, other_port) = sink();
    let (tx, rx) = input_queue(1024);
    let stop = Arc::new(AtomicBool::new(false));
    let cap = start_lo(&format!("udp dst port {port}"), tx, stop.clone());
    assert_eq!(cap.interface(), "lo");
    assert_eq!(cap.link_type(), LinkType::Ethernet);

    let before = Timestamp::now().micros();
    let n = 50;
    for i in 0..n {
        sock.send_to(&payload(port, i), ("127.0.0.1", port))
            .unwrap();
        // Filtered out in the kernel: must never reach the queue.
        sock.send_to(b"other", ("127.0.0.1", other_port)).unwrap();
    }
    let frames = frames_until(&rx, n, Duration::from_secs(10));
    let after = Timestamp::now().micros();
    assert_eq!(frames.len(), n, "frames captured on lo");
    for (i, (ts, link, data)) in frames.iter().enumerate() {
        assert_eq!(*link, LinkType::Ethernet);
        let want = payload(port, i);
        assert!(
            data.ends_with(&want),
            "frame {i} does not end with {:?}: {:?}",
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(data)
        );
        // Ethernet + IPv4 + UDP headers in front of the payload.
        assert_eq!(data.len(), 14 + 20 + 8 + want.len());
        assert!(
            (before - 1_000_000..=after + 1_000_000).contains(ts),
            "timestamp {ts} not between {before} and {after}"
        );
    }
    // Nothing else (the other port) came through.
    assert!(rx
        .recv_timeout(Duration::from_millis(300))
        .unwrap()
        .is_none());

    // The shared stop flag plus join ends the thread promptly, and the final
    // kernel counters are read on the way out.
    let stats = cap.stats().clone();
    stop.store(true, Ordering::Relaxed);
    let t = Instant::now();
    cap.join();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "join took {:?}",
        t.elapsed()
    );
    let s = stats.snapshot();
    assert_eq!(s.received, n as u64, "{s:?}");
    assert_eq!(
        s.bytes,
        frames.iter().map(|f| f.2.len() as u64).sum::<u64>()
    );
    assert_eq!(s.kernel_dropped, 0, "{s:?}");
    assert_eq!(s.queue_full, 0, "{s:?}");
    assert_eq!(s.errors, 0, "{s:?}");
}

#[test]
fn bad_filter_is_named_in_the_error() {
    let (tx, _rx) = input_queue(16);
    let stop = Arc::new(AtomicBool::new(false));
    let err = match LiveCapture::start("lo", &cfg("udp port"), tx, stop) {
        Ok(_) => panic!("\"udp port\" must not compile"),
        Err(e) => e,
    };
    match &err {
        LiveError::Filter {
            interface, filter, ..
        } => {
            assert_eq!(interface, "lo");
            assert_eq!(filter, "udp port");
        }
        LiveError::PermissionDenied { .. } => {
            panic!("live capture tests need root or CAP_NET_RAW: {err}")
        }
        other => panic!("expected a filter error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("capture.filter: cannot compile \"udp port\" on lo: "),
        "{text}"
    );
    assert_eq!(err.reason(), "bad_filter");
}

#[test]
fn missing_interface_is_named_in_the_error() {
    let (tx, _rx) = input_queue(16);
    let stop = Arc::new(AtomicBool::new(false));
    let err = match LiveCapture::start("pbxnosuch0", &cfg(""), tx, stop) {
        Ok(_) => panic!("pbxnosuch0 must not exist"),
        Err(e) => e,
    };
    assert!(
        matches!(err, LiveError::NoSuchDevice { ref interface, .. } if interface == "pbxnosuch0"),
        "{err:?}"
    );
    assert!(err.to_string().contains("pbxnosuch0"), "{err}");
}

#[test]
fn full_queue_drops_and_counts_without_blocking() {
    let (sock, port) = sink();
    let (tx, rx) = input_queue(16);
    let stop = Arc::new(AtomicBool::new(false));
    let cap = start_lo(&format!("udp dst port {port}"), tx, stop);
    let n = 1000u64;
    for i in 0..n as usize {
        sock.send_to(&payload(port, i), ("127.0.0.1", port))
            .unwrap();
    }
    // Nobody reads the queue: the capture thread must keep reading the kernel.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cap.stats().snapshot().received < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = cap.stats().snapshot();
    assert_eq!(s.received, n, "{s:?}");
    assert_eq!(s.queue_full, n - 16, "{s:?}");
    assert_eq!(rx.depth(), 16);
    assert_eq!(rx.counters().dropped_full.load(Ordering::Relaxed), n - 16);
    // The 16 queued are the first 16 sent.
    for i in 0..16 {
        match rx.try_recv() {
            Some(Input::Frame { data, .. }) => assert!(data.ends_with(&payload(port, i))),
            other => panic!("{other:?}"),
        }
    }
    let stats = cap.stats().clone();
    let t = Instant::now();
    cap.stop();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        t.elapsed()
    );
    // A full queue never backs up into the kernel ring.
    assert_eq!(stats.snapshot().kernel_dropped, 0, "{:?}", stats.snapshot());
}

#[test]
fn start_all_opens_every_interface_or_none() {
    let (tx, _rx) = input_queue(16);
    let stop = Arc::new(AtomicBool::new(false));
    let mut c = cfg("udp port 9");
    c.interfaces = vec!["lo".into(), "pbxnosuch1".into()];
    match LiveCapture::start_all(&c, &tx, &stop) {
        Ok(_) => panic!("pbxnosuch1 must not exist"),
        Err(e @ LiveError::PermissionDenied { .. }) => {
            panic!("live capture tests need root or CAP_NET_RAW: {e}")
        }
        Err(e) => assert!(e.to_string().contains("pbxnosuch1"), "{e}"),
    }
    c.interfaces = vec!["lo".into()];
    let caps = LiveCapture::start_all(&c, &tx, &stop).unwrap();
    assert_eq!(caps.len(), 1);
    assert!(caps.iter().all(|c| c.is_running()));
    for c in caps {
        c.stop();
    }
}
