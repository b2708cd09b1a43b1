//! Synthetic SIP + RTP capture for the replay benchmark.
//!
//! Not part of the sans-IO core: this writes a pcap to any `io::Write`. It streams —
//! memory is O(`concurrent`), never O(capture) — by keeping one pending event per
//! active call in a min-heap and emitting the earliest, so packets come out in
//! timestamp order without sorting.
//!
//! Every value that varies per call comes from a hash of the call index, so the same
//! `LoadSpec` always yields byte-identical output.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, BufWriter, Write};
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use pcap_file::PcapError;

use pbxbridge::rtp::codec::{linear_to_alaw, linear_to_ulaw};
use pbxbridge::time::Timestamp;

/// PBX signalling and media address; every call goes through it.
pub const PBX_IP: [u8; 4] = [10, 0, 0, 1];
pub const SIP_PORT: u16 = 5060;

/// The PBX media port is `PBX_RTP_BASE + 2 * slot`; slots are unique among the
/// calls up at the same time, so this bounds `concurrent`.
const PBX_RTP_BASE: u16 = 20000;
pub const MAX_CONCURRENT: usize = 20000;
/// Keeps the largest RTP payload (8 bytes per ms) inside an Ethernet MTU.
pub const MAX_PTIME_MS: u32 = 150;

const RAMP_US: i64 = 1_000_000;
const SEED: u64 = 0x7062_7862_7269_6467; // "pbxbridg"

pub const ETH_LEN: usize = 14;
pub const IP_LEN: usize = 20;
pub const UDP_LEN: usize = 8;
const HDR_LEN: usize = ETH_LEN + IP_LEN + UDP_LEN;
const RTP_HDR_LEN: usize = 12;
const PCAP_GLOBAL_HDR: u64 = 24;
const PCAP_REC_HDR: u64 = 16;

/// MACs: the caller side sits behind a router, so its frames carry the router's MAC.
const ROUTER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];
const PBX_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x02];

const SIP_PER_CALL: u64 = 7; // INVITE 100 180 200 ACK BYE 200

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadSpec {
    pub calls: usize,
    pub concurrent: usize,
    pub talk_secs: u32,
    /// RTP packetisation interval; 20 is the usual value.
    pub ptime_ms: u32,
    /// Capture time of the first INVITE.
    pub start: Timestamp,
    /// Answer with PCMA (payload type 8) instead of PCMU (0).
    pub codec_pcma: bool,
    /// Codecs the calls cycle through by call index: `None` is the G.711 of
    /// `codec_pcma`, synthesised; `Some` sends pre-encoded frames. Empty is
    /// all G.711.
    pub mix: Vec<Option<std::sync::Arc<EncodedCodec>>>,
}

/// A codec's encoded 20 ms frames (from a real encoder), sent in a loop.
#[derive(Debug, PartialEq, Eq)]
pub struct EncodedCodec {
    pub pt: u8,
    /// The rtpmap value, e.g. `G722/8000` or `opus/48000/2`.
    pub rtpmap: String,
    pub fmtp: Option<String>,
    /// RTP timestamp units per 20 ms frame (160 for G.722, 960 for Opus).
    pub ts_per_frame: u32,
    pub frames: Vec<Vec<u8>>,
}

impl LoadSpec {
    /// 20 ms PCMU starting at 2026-11-21T10:00:00Z.
    pub fn new(calls: usize, concurrent: usize, talk_secs: u32) -> Self {
        LoadSpec {
            calls,
            concurrent,
            talk_secs,
            ptime_ms: 20,
            start: Timestamp::from_secs(1_795_255_200),
            codec_pcma: false,
            mix: Vec::new(),
        }
    }

    /// The pre-encoded codec call `index` uses, if any.
    pub(crate) fn encoded(&self, index: usize) -> Option<&std::sync::Arc<EncodedCodec>> {
        match self.mix.len() {
            0 => None,
            n => self.mix[index % n].as_ref(),
        }
    }

    /// RTP packets per direction of one call.
    pub fn rtp_per_direction(&self) -> u64 {
        if self.ptime_ms == 0 {
            return 0;
        }
        u64::from(self.talk_secs) * 1000 / u64::from(self.ptime_ms)
    }

    /// Packets `write_capture` will emit for this spec.
    pub fn expected_packets(&self) -> u64 {
        (self.calls as u64) * (SIP_PER_CALL + 2 * self.rtp_per_direction())
    }

    fn validate(&self) -> io::Result<()> {
        let bad = |what: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, what.to_owned()));
        if self.calls > 0 && self.concurrent == 0 {
            return bad("concurrent must be at least 1");
        }
        if self.concurrent > MAX_CONCURRENT {
            return bad("concurrent exceeds MAX_CONCURRENT (PBX media ports would collide)");
        }
        if self.ptime_ms == 0 || self.ptime_ms > MAX_PTIME_MS {
            return bad("ptime_ms must be in 1..=150");
        }
        if self.start.micros() < 0 {
            return bad("start must not be before the Unix epoch");
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadSummary {
    pub packets: u64,
    pub sip_messages: u64,
    pub rtp_packets: u64,
    pub calls: usize,
    /// Bytes of the whole pcap file, headers included.
    pub bytes: u64,
}

/// What a replay of the capture should report for call `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallIdentity {
    pub call_id: String,
    /// `+1415555xxxx`
    pub from_number: String,
    /// `2xxx`
    pub to_extension: String,
    /// false when the callee (PBX side) sends the BYE.
    pub caller_hangs_up: bool,
}

pub fn call_identity(index: usize) -> CallIdentity {
    let h = call_seed(index);
    CallIdentity {
        call_id: format!("{:016x}-{index}@loadgen.invalid", h),
        from_number: format!("+1415555{:04}", index % 10_000),
        to_extension: format!("{}", 2000 + index % 1000),
        caller_hangs_up: h % 4 != 0,
    }
}

/// Writes a pcap (Ethernet, microsecond timestamps) of `spec.calls` complete calls.
/// `out` is buffered internally.
pub fn write_capture<W: Write>(spec: &LoadSpec, out: W) -> io::Result<LoadSummary> {
    spec.validate()?;
    let mut writer = PcapWriter::new(BufWriter::with_capacity(1 << 18, out)).map_err(pcap_err)?;
    let mut summary = LoadSummary {
        bytes: PCAP_GLOBAL_HDR,
        ..LoadSummary::default()
    };
    let mut gen = Generator::new(spec);
    let mut frame = Vec::with_capacity(2048);
    while let Some((at, kind)) = gen.next_packet(&mut frame)? {
        let ts = Duration::from_micros(u64::try_from(at).unwrap_or(0));
        let len = u32::try_from(frame.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "frame too long"))?;
        writer
            .write_packet(&PcapPacket::new(ts, len, &frame))
            .map_err(pcap_err)?;
        summary.packets += 1;
        summary.bytes += PCAP_REC_HDR + frame.len() as u64;
        match kind {
            Kind::Sip => summary.sip_messages += 1,
            Kind::Rtp => summary.rtp_packets += 1,
        }
    }
    summary.calls = gen.finished;
    writer.into_writer().flush()?;
    Ok(summary)
}

fn pcap_err(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => e,
        // Only a timestamp beyond 2106 can get here.
        other => io::Error::new(io::ErrorKind::InvalidInput, other),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sip,
    Rtp,
}

struct Generator<'a> {
    spec: &'a LoadSpec,
    /// One entry per busy slot: (time of its call's next packet, slot).
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    slots: Vec<Option<Call>>,
    next_index: usize,
    finished: usize,
    ip_id: u16,
    sip: String,
    tables: Tables,
}

impl<'a> Generator<'a> {
    fn new(spec: &'a LoadSpec) -> Self {
        let active = spec.concurrent.min(spec.calls);
        let mut g = Generator {
            spec,
            heap: BinaryHeap::with_capacity(active),
            slots: Vec::with_capacity(active),
            next_index: 0,
            finished: 0,
            ip_id: 0,
            sip: String::with_capacity(2048),
            tables: Tables::new(),
        };
        // Spread the first `active` calls over RAMP_US so they don't all INVITE at once.
        for slot in 0..active {
            let t0 = spec.start.micros() + RAMP_US * slot as i64 / active as i64;
            g.slots.push(None);
            g.start_call(slot, t0);
        }
        g
    }

    fn start_call(&mut self, slot: usize, t0: i64) {
        if self.next_index >= self.spec.calls {
            return;
        }
        let call = Call::new(self.spec, self.next_index, slot, t0);
        self.next_index += 1;
        self.heap.push(Reverse((call.next_at, slot)));
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Some(call);
        }
    }

    /// Fills `frame` with the next packet in capture order.
    fn next_packet(&mut self, frame: &mut Vec<u8>) -> io::Result<Option<(i64, Kind)>> {
        let Some(Reverse((at, slot))) = self.heap.pop() else {
            return Ok(None);
        };
        let Some(call) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(None);
        };
        self.ip_id = self.ip_id.wrapping_add(1);
        let kind = call.emit(self.spec, &self.tables, frame, &mut self.sip, self.ip_id)?;
        if call.advance(self.spec) {
            self.heap.push(Reverse((call.next_at, slot)));
        } else {
            self.finished += 1;
            // Keep the slot busy: the next call starts shortly after this one ends.
            let gap = 1_000 + (call.seed >> 20) as i64 % 20_000;
            self.start_call(slot, at + gap);
        }
        Ok(Some((at, kind)))
    }
}

mod call;
pub mod encoded;
mod frame;

use call::Call;
#[allow(unused_imports)] // for the generator's tests (tests/loadgen.rs)
pub use frame::ipv4_checksum;
use frame::{call_seed, Tables};
