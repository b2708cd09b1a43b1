//! HEP listener: UDP datagrams and HEP3-over-TCP streams from capture agents
//! (Asterisk res_hep, FreeSWITCH, Kamailio/OpenSIPS siptrace, heplify).
//!
//! Plain threads and blocking sockets with short timeouts: the work per message is a
//! copy into the input queue, and the stop flag must be seen within a tick. The
//! tracker decodes the messages; here we only frame them and drop what cannot be HEP.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{Input, InputSender, SendError};
use crate::time::Timestamp;
use crate::wire::hep::{hep3_frame_len, looks_like_hep};

/// How often blocked threads look at the stop flag.
const TICK: Duration = Duration::from_millis(100);
/// Largest UDP datagram.
const UDP_BUF: usize = 65_535;
/// A HEP3 message is at most 65535 bytes (16-bit length), so a connection never
/// needs to hold more than one message plus one read.
const TCP_READ: usize = 16 * 1024;
const MAX_TCP_BUFFER: usize = 65_535 + TCP_READ;

/// Counters for metrics; shared with the threads.
#[derive(Debug, Default)]
pub struct HepListenerStats {
    pub datagrams: AtomicU64,
    pub tcp_messages: AtomicU64,
    /// TCP connections accepted (all time).
    pub tcp_connections: AtomicU64,
    /// TCP connections closed at once because `max_connections` were open.
    pub tcp_refused: AtomicU64,
    /// UDP datagrams that are not HEP, and TCP streams broken mid-way (each closes
    /// its connection).
    pub bad_frames: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum HepListenError {
    #[error("cannot bind HEP UDP socket on {addr}: {source}")]
    BindUdp { addr: SocketAddr, source: io::Error },
    #[error("cannot bind HEP TCP listener on {addr}: {source}")]
    BindTcp { addr: SocketAddr, source: io::Error },
    #[error("cannot configure HEP socket: {source}")]
    Configure { source: io::Error },
    #[error("cannot start HEP listener thread: {source}")]
    Spawn { source: io::Error },
}

/// A running listener. Its threads end once `stop` is set; dropping it stops and
/// waits for this listener alone.
pub struct HepListener {
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    stats: Arc<HepListenerStats>,
    /// Set on drop, so dropping one listener does not stop the other sources.
    closing: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// The stop flag the daemon shares plus this listener's own.
#[derive(Clone)]
struct Stop {
    shared: Arc<AtomicBool>,
    own: Arc<AtomicBool>,
}

impl Stop {
    fn is_set(&self) -> bool {
        self.shared.load(Ordering::Relaxed) || self.own.load(Ordering::Relaxed)
    }
}

impl HepListener {
    /// Binds UDP and TCP on `listen` (with port 0, TCP takes the port UDP got when
    /// it is free) and starts the threads.
    pub fn spawn(
        listen: SocketAddr,
        max_connections: usize,
        tx: InputSender,
        stop: Arc<AtomicBool>,
    ) -> Result<HepListener, HepListenError> {
        let udp = UdpSocket::bind(listen).map_err(|source| HepListenError::BindUdp {
            addr: listen,
            source,
        })?;
        let udp_addr = udp
            .local_addr()
            .map_err(|source| HepListenError::Configure { source })?;
        let tcp = match TcpListener::bind(SocketAddr::new(listen.ip(), udp_addr.port())) {
            Ok(l) => Ok(l),
            Err(_) if listen.port() == 0 => TcpListener::bind(listen),
            Err(e) => Err(e),
        }
        .map_err(|source| HepListenError::BindTcp {
            addr: listen,
            source,
        })?;
        let tcp_addr = tcp
            .local_addr()
            .map_err(|source| HepListenError::Configure { source })?;
        udp.set_read_timeout(Some(TICK))
            .and_then(|()| tcp.set_nonblocking(true))
            .map_err(|source| HepListenError::Configure { source })?;

        let stats = Arc::new(HepListenerStats::default());
        let closing = Arc::new(AtomicBool::new(false));
        let stop = Stop {
            shared: stop,
            own: closing.clone(),
        };
        let mut listener = HepListener {
            udp_addr,
            tcp_addr,
            stats: stats.clone(),
            closing,
            threads: Vec::new(),
        };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            thread::Builder::new()
                .name(name.to_string())
                .spawn(f)
                .map_err(|source| HepListenError::Spawn { source })
        };
        let (s, t, st) = (stats.clone(), tx.clone(), stop.clone());
        listener
            .threads
            .push(spawn("hep-udp", Box::new(move || udp_loop(udp, t, s, st)))?);
        listener.threads.push(spawn(
            "hep-tcp",
            Box::new(move || accept_loop(tcp, max_connections.max(1), tx, stats, stop)),
        )?);
        tracing::info!(%udp_addr, %tcp_addr, "HEP listener started");
        Ok(listener)
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    pub fn stats(&self) -> Arc<HepListenerStats> {
        self.stats.clone()
    }

    /// Waits for the threads; they end once the shared stop flag is set.
    pub fn join(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for HepListener {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Hands one message to the tracker; false once the queue is closed.
fn forward(tx: &InputSender, data: &[u8]) -> bool {
    let input = Input::Hep {
        ts: Timestamp::now(),
        data: data.to_vec(),
    };
    // A full queue is counted by the queue itself.
    !matches!(tx.try_send(input), Err(SendError::Closed))
}

fn udp_loop(sock: UdpSocket, tx: InputSender, stats: Arc<HepListenerStats>, stop: Stop) {
    let mut buf = vec![0u8; UDP_BUF];
    while !stop.is_set() {
        let n = match sock.recv_from(&mut buf) {
            Ok((n, _)) => n,
            Err(e) if would_block(&e) => continue,
            Err(e) => {
                // ICMP errors surface here on some systems; the socket stays usable.
                tracing::debug!(error = %e, "HEP UDP receive failed");
                thread::sleep(TICK);
                continue;
            }
        };
        let data = buf.get(..n).unwrap_or_default();
        stats.datagrams.fetch_add(1, Ordering::Relaxed);
        if !looks_like_hep(data) {
            stats.bad_frames.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if !forward(&tx, data) {
            break;
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    max_connections: usize,
    tx: InputSender,
    stats: Arc<HepListenerStats>,
    stop: Stop,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !stop.is_set() {
        conns.retain(|h| !h.is_finished());
        let (stream, peer) = match listener.accept() {
            Ok(s) => s,
            Err(e) if would_block(&e) => {
                thread::sleep(TICK / 2);
                continue;
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, don't spin.
                tracing::warn!(error = %e, "HEP TCP accept failed");
                thread::sleep(TICK);
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= max_connections {
            stats.tcp_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, max_connections, "HEP TCP connection refused");
            drop(stream);
            continue;
        }
        stats.tcp_connections.fetch_add(1, Ordering::Relaxed);
        open.fetch_add(1, Ordering::Relaxed);
        let slot = Slot(open.clone());
        let (tx, stats, stop) = (tx.clone(), stats.clone(), stop.clone());
        let spawned = thread::Builder::new()
            .name("hep-tcp-conn".into())
            .spawn(move || {
                let ended = serve_connection(stream, peer, &tx, &stats, &stop);
                // Free the slot first: whoever sees the counter may connect again.
                drop(slot);
                if ended == Ended::Broken {
                    stats.bad_frames.fetch_add(1, Ordering::Relaxed);
                }
            });
        match spawned {
            Ok(h) => conns.push(h),
            // The closure (and its slot) was dropped with the error.
            Err(e) => tracing::warn!(error = %e, "cannot start HEP connection thread"),
        }
    }
    for h in conns {
        let _ = h.join();
    }
}

/// Gives the connection slot back however the connection thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Clean,
    /// Not HEP3, or cut mid-message: counted as a bad frame.
    Broken,
}

fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    tx: &InputSender,
    stats: &HepListenerStats,
    stop: &Stop,
) -> Ended {
    if let Err(e) = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(TICK)))
    {
        tracing::debug!(%peer, error = %e, "HEP TCP connection setup failed");
        return Ended::Clean;
    }
    let mut buf: Vec<u8> = Vec::with_capacity(TCP_READ);
    let mut chunk = vec![0u8; TCP_READ];
    while !stop.is_set() {
        let n = match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if would_block(&e) => continue,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "HEP TCP read failed");
                return Ended::Clean;
            }
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        loop {
            match hep3_frame_len(&buf) {
                Ok(Some(len)) => {
                    stats.tcp_messages.fetch_add(1, Ordering::Relaxed);
                    if !forward(tx, buf.get(..len).unwrap_or_default()) {
                        return Ended::Clean;
                    }
                    buf.drain(..len);
                }
                Ok(None) => break,
                Err(e) => {
                    // No resync point in a HEP stream: the rest of it is garbage.
                    tracing::debug!(%peer, reason = e.reason(), "HEP TCP stream broken, closing");
                    return Ended::Broken;
                }
            }
        }
        if buf.len() > MAX_TCP_BUFFER {
            return Ended::Broken;
        }
    }
    if buf.is_empty() {
        Ended::Clean
    } else {
        // The peer closed mid-message.
        Ended::Broken
    }
}
