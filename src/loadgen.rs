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
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use pcap_file::PcapError;

use crate::rtp::codec::{linear_to_alaw, linear_to_ulaw};
use crate::time::Timestamp;

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

const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const UDP_LEN: usize = 8;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Invite,
    Trying,
    Ringing,
    Ok,
    Ack,
    /// RTP packet `k`, caller's (`false`) then callee's (`true`).
    Rtp(u64, bool),
    Bye,
    ByeOk,
    Done,
}

struct Call {
    seed: u64,
    id: CallIdentity,
    caller_ip: [u8; 4],
    caller_rtp: u16,
    pbx_rtp: u16,
    from_tag: u64,
    to_tag: u64,
    cseq: u32,
    t0: i64,
    t_ok: i64,
    rtp_base: i64,
    callee_offset: i64,
    step: Step,
    next_at: i64,
    caller: Voice,
    callee: Voice,
}

impl Call {
    fn new(spec: &LoadSpec, index: usize, slot: usize, t0: i64) -> Self {
        let seed = call_seed(index);
        let mut r = Rng(seed);
        let ring_us = 300_000 + (r.next() % 2_700_000) as i64;
        let ptime_us = i64::from(spec.ptime_ms) * 1000;
        let t_ok = t0 + ring_us;
        let caller_ip = [10, 1, (slot / 250) as u8, (slot % 250 + 1) as u8];
        Call {
            seed,
            id: call_identity(index),
            caller_ip,
            caller_rtp: 16384 + 2 * (index % 8000) as u16,
            pbx_rtp: PBX_RTP_BASE + 2 * slot as u16,
            from_tag: r.next(),
            to_tag: r.next(),
            cseq: 1 + (r.next() % 900) as u32,
            t0,
            t_ok,
            // After the ACK (at most 4 ms after the 200 OK) so the call's own packets stay ordered.
            rtp_base: t_ok + 5_000,
            callee_offset: ptime_us / 4 + (r.next() % (ptime_us as u64 / 4 + 1)) as i64,
            step: Step::Invite,
            next_at: t0,
            caller: Voice::new(r.next(), 180.0, 260.0),
            callee: Voice::new(r.next(), 420.0, 380.0),
        }
    }

    fn caller_sip(&self) -> Endpoint {
        Endpoint {
            ip: self.caller_ip,
            port: SIP_PORT,
            mac: ROUTER_MAC,
        }
    }

    fn pbx_sip(&self) -> Endpoint {
        Endpoint {
            ip: PBX_IP,
            port: SIP_PORT,
            mac: PBX_MAC,
        }
    }

    fn time_of(&self, spec: &LoadSpec, step: Step) -> i64 {
        let ptime_us = i64::from(spec.ptime_ms) * 1000;
        let n = spec.rtp_per_direction() as i64;
        let jitter = |k: u64, callee: bool| {
            let h = splitmix(self.seed ^ k.wrapping_mul(0x9e37) ^ u64::from(callee));
            (h % (ptime_us as u64 / 4).max(1)) as i64
        };
        match step {
            Step::Invite => self.t0,
            Step::Trying => self.t0 + 3_000 + (self.seed % 7_000) as i64,
            Step::Ringing => self.t0 + 30_000 + (self.seed >> 8) as i64 % 90_000,
            Step::Ok => self.t_ok,
            Step::Ack => self.t_ok + 1_000 + (self.seed >> 16) as i64 % 3_000,
            Step::Rtp(k, callee) => {
                // callee_offset is in [P/4, P/2] and jitter < P/4, so caller k <
                // callee k < caller k+1: the call's packets stay in order.
                let slot = self.rtp_base + k as i64 * ptime_us + jitter(k, callee);
                if callee {
                    slot + self.callee_offset
                } else {
                    slot
                }
            }
            Step::Bye => self.rtp_base + n * ptime_us + 1_000,
            Step::ByeOk => self.rtp_base + n * ptime_us + 3_500,
            Step::Done => i64::MAX,
        }
    }

    /// Moves to the next step; false when the call is over.
    fn advance(&mut self, spec: &LoadSpec) -> bool {
        let n = spec.rtp_per_direction();
        self.step = match self.step {
            Step::Invite => Step::Trying,
            Step::Trying => Step::Ringing,
            Step::Ringing => Step::Ok,
            Step::Ok => Step::Ack,
            Step::Ack if n == 0 => Step::Bye,
            Step::Ack => Step::Rtp(0, false),
            Step::Rtp(k, false) => Step::Rtp(k, true),
            Step::Rtp(k, true) if k + 1 < n => Step::Rtp(k + 1, false),
            Step::Rtp(_, true) => Step::Bye,
            Step::Bye => Step::ByeOk,
            Step::ByeOk | Step::Done => Step::Done,
        };
        self.next_at = self.time_of(spec, self.step);
        self.step != Step::Done
    }

    fn emit(
        &mut self,
        spec: &LoadSpec,
        tables: &Tables,
        frame: &mut Vec<u8>,
        sip: &mut String,
        ip_id: u16,
    ) -> io::Result<Kind> {
        let caller = self.caller_sip();
        let pbx = self.pbx_sip();
        let (src, dst) = match self.step {
            Step::Invite | Step::Ack => (caller, pbx),
            Step::Trying | Step::Ringing | Step::Ok => (pbx, caller),
            Step::Bye if self.id.caller_hangs_up => (caller, pbx),
            Step::Bye => (pbx, caller),
            Step::ByeOk if self.id.caller_hangs_up => (pbx, caller),
            Step::ByeOk => (caller, pbx),
            Step::Rtp(k, callee) => {
                let (src, dst) = if callee {
                    (
                        Endpoint {
                            port: self.pbx_rtp,
                            ..pbx
                        },
                        Endpoint {
                            port: self.caller_rtp,
                            ..caller
                        },
                    )
                } else {
                    (
                        Endpoint {
                            port: self.caller_rtp,
                            ..caller
                        },
                        Endpoint {
                            port: self.pbx_rtp,
                            ..pbx
                        },
                    )
                };
                frame.clear();
                frame.resize(HDR_LEN, 0);
                let voice = if callee {
                    &mut self.callee
                } else {
                    &mut self.caller
                };
                voice.write_rtp(spec, tables, k, frame);
                finish_frame(frame, src, dst, ip_id);
                return Ok(Kind::Rtp);
            }
            Step::Done => {
                return Err(io::Error::other("loadgen: emit after call end"));
            }
        };
        sip.clear();
        self.write_sip(spec, sip)
            .map_err(|_| io::Error::other("loadgen: formatting SIP failed"))?;
        frame.clear();
        frame.resize(HDR_LEN, 0);
        frame.extend_from_slice(sip.as_bytes());
        finish_frame(frame, src, dst, ip_id);
        Ok(Kind::Sip)
    }

    fn write_sip(&self, spec: &LoadSpec, out: &mut String) -> std::fmt::Result {
        let ip = fmt_ip(self.caller_ip);
        let pbx = fmt_ip(PBX_IP);
        let from = &self.id.from_number;
        let ext = &self.id.to_extension;
        let call_id = &self.id.call_id;
        let invite_branch = splitmix(self.seed ^ 1);
        let caller_via = |out: &mut String, branch: u64| {
            writeln_crlf(
                out,
                format_args!("Via: SIP/2.0/UDP {ip}:{SIP_PORT};branch=z9hG4bK{branch:012x};rport"),
            )
        };
        let from_hdr = format!("From: <sip:{from}@{ip}>;tag={:08x}", self.from_tag as u32);
        let to_plain = format!("To: <sip:{ext}@{pbx}>");
        let to_tagged = format!("{to_plain};tag={:08x}", self.to_tag as u32);
        let common_tail = |out: &mut String, cseq: u32, method: &str| -> std::fmt::Result {
            writeln_crlf(out, format_args!("Call-ID: {call_id}"))?;
            writeln_crlf(out, format_args!("CSeq: {cseq} {method}"))
        };
        match self.step {
            Step::Invite => {
                let body = self.sdp_offer(spec, &ip);
                writeln_crlf(out, format_args!("INVITE sip:{ext}@{pbx} SIP/2.0"))?;
                caller_via(out, invite_branch)?;
                writeln_crlf(out, format_args!("Max-Forwards: 70"))?;
                writeln_crlf(out, format_args!("{from_hdr}"))?;
                writeln_crlf(out, format_args!("{to_plain}"))?;
                common_tail(out, self.cseq, "INVITE")?;
                writeln_crlf(out, format_args!("Contact: <sip:{from}@{ip}:{SIP_PORT}>"))?;
                writeln_crlf(out, format_args!("User-Agent: pbxbridge-loadgen"))?;
                writeln_crlf(
                    out,
                    format_args!("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"),
                )?;
                write_body(out, "application/sdp", &body)
            }
            Step::Trying | Step::Ringing | Step::Ok => {
                let status = match self.step {
                    Step::Trying => "100 Trying",
                    Step::Ringing => "180 Ringing",
                    _ => "200 OK",
                };
                writeln_crlf(out, format_args!("SIP/2.0 {status}"))?;
                writeln_crlf(
                    out,
                    format_args!(
                        "Via: SIP/2.0/UDP {ip}:{SIP_PORT};branch=z9hG4bK{invite_branch:012x};rport={SIP_PORT};received={ip}"
                    ),
                )?;
                writeln_crlf(out, format_args!("{from_hdr}"))?;
                if self.step == Step::Trying {
                    writeln_crlf(out, format_args!("{to_plain}"))?;
                } else {
                    writeln_crlf(out, format_args!("{to_tagged}"))?;
                }
                common_tail(out, self.cseq, "INVITE")?;
                if self.step == Step::Trying {
                    return write_body(out, "", "");
                }
                writeln_crlf(out, format_args!("Contact: <sip:{ext}@{pbx}:{SIP_PORT}>"))?;
                writeln_crlf(out, format_args!("Server: pbxbridge-loadgen-pbx"))?;
                if self.step == Step::Ok {
                    let body = self.sdp_answer(spec, &pbx);
                    write_body(out, "application/sdp", &body)
                } else {
                    write_body(out, "", "")
                }
            }
            Step::Ack => {
                writeln_crlf(out, format_args!("ACK sip:{ext}@{pbx}:{SIP_PORT} SIP/2.0"))?;
                caller_via(out, splitmix(self.seed ^ 2))?;
                writeln_crlf(out, format_args!("Max-Forwards: 70"))?;
                writeln_crlf(out, format_args!("{from_hdr}"))?;
                writeln_crlf(out, format_args!("{to_tagged}"))?;
                common_tail(out, self.cseq, "ACK")?;
                write_body(out, "", "")
            }
            Step::Bye | Step::ByeOk if self.id.caller_hangs_up => {
                let branch = splitmix(self.seed ^ 3);
                if self.step == Step::Bye {
                    writeln_crlf(out, format_args!("BYE sip:{ext}@{pbx}:{SIP_PORT} SIP/2.0"))?;
                    caller_via(out, branch)?;
                    writeln_crlf(out, format_args!("Max-Forwards: 70"))?;
                } else {
                    writeln_crlf(out, format_args!("SIP/2.0 200 OK"))?;
                    writeln_crlf(
                        out,
                        format_args!(
                            "Via: SIP/2.0/UDP {ip}:{SIP_PORT};branch=z9hG4bK{branch:012x};rport={SIP_PORT};received={ip}"
                        ),
                    )?;
                }
                writeln_crlf(out, format_args!("{from_hdr}"))?;
                writeln_crlf(out, format_args!("{to_tagged}"))?;
                common_tail(out, self.cseq + 1, "BYE")?;
                write_body(out, "", "")
            }
            Step::Bye | Step::ByeOk => {
                // The callee hangs up: the PBX sends the BYE in its own dialog direction.
                let branch = splitmix(self.seed ^ 4);
                if self.step == Step::Bye {
                    writeln_crlf(out, format_args!("BYE sip:{from}@{ip}:{SIP_PORT} SIP/2.0"))?;
                    writeln_crlf(
                        out,
                        format_args!(
                            "Via: SIP/2.0/UDP {pbx}:{SIP_PORT};branch=z9hG4bK{branch:012x}"
                        ),
                    )?;
                    writeln_crlf(out, format_args!("Max-Forwards: 70"))?;
                } else {
                    writeln_crlf(out, format_args!("SIP/2.0 200 OK"))?;
                    writeln_crlf(
                        out,
                        format_args!(
                            "Via: SIP/2.0/UDP {pbx}:{SIP_PORT};branch=z9hG4bK{branch:012x}"
                        ),
                    )?;
                }
                writeln_crlf(
                    out,
                    format_args!("From: <sip:{ext}@{pbx}>;tag={:08x}", self.to_tag as u32),
                )?;
                writeln_crlf(
                    out,
                    format_args!("To: <sip:{from}@{ip}>;tag={:08x}", self.from_tag as u32),
                )?;
                common_tail(out, 1 + (self.seed >> 40) as u32 % 100, "BYE")?;
                write_body(out, "", "")
            }
            Step::Rtp(..) | Step::Done => Ok(()),
        }
    }

    fn sdp_offer(&self, spec: &LoadSpec, ip: &str) -> String {
        let sess = self.seed >> 33;
        format!(
            "v=0\r\no=- {sess} {sess} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:{}\r\na=sendrecv\r\n",
            self.caller_rtp, spec.ptime_ms
        )
    }

    fn sdp_answer(&self, spec: &LoadSpec, pbx: &str) -> String {
        let sess = self.seed & 0x7fff_ffff;
        let (pt, name) = if spec.codec_pcma {
            (8, "PCMA")
        } else {
            (0, "PCMU")
        };
        format!(
            "v=0\r\no=pbx {sess} {sess} IN IP4 {pbx}\r\ns=pbx\r\nc=IN IP4 {pbx}\r\nt=0 0\r\n\
             m=audio {} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:{}\r\na=sendrecv\r\n",
            self.pbx_rtp, spec.ptime_ms
        )
    }
}

fn writeln_crlf(out: &mut String, args: std::fmt::Arguments<'_>) -> std::fmt::Result {
    out.write_fmt(args)?;
    out.write_str("\r\n")
}

fn write_body(out: &mut String, content_type: &str, body: &str) -> std::fmt::Result {
    if !content_type.is_empty() {
        writeln_crlf(out, format_args!("Content-Type: {content_type}"))?;
    }
    writeln_crlf(out, format_args!("Content-Length: {}", body.len()))?;
    out.write_str("\r\n")?;
    out.write_str(body)
}

fn fmt_ip(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

#[derive(Clone, Copy)]
struct Endpoint {
    ip: [u8; 4],
    port: u16,
    mac: [u8; 6],
}

/// Fills the first `HDR_LEN` bytes of `frame` (whose tail is the UDP payload).
fn finish_frame(frame: &mut [u8], src: Endpoint, dst: Endpoint, ip_id: u16) {
    let total = frame.len();
    let ip_total = (total - ETH_LEN) as u16;
    let udp_total = (total - ETH_LEN - IP_LEN) as u16;
    let Some((hdr, _)) = frame.split_at_mut_checked(HDR_LEN) else {
        return;
    };
    let mut h = [0u8; HDR_LEN];
    h[0..6].copy_from_slice(&dst.mac);
    h[6..12].copy_from_slice(&src.mac);
    h[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut h[ETH_LEN..ETH_LEN + IP_LEN];
    ip[0] = 0x45;
    ip[1] = 0xb8; // DSCP EF, as PBXs mark voice
    ip[2..4].copy_from_slice(&ip_total.to_be_bytes());
    ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.ip);
    ip[16..20].copy_from_slice(&dst.ip);
    let sum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut h[ETH_LEN + IP_LEN..];
    udp[0..2].copy_from_slice(&src.port.to_be_bytes());
    udp[2..4].copy_from_slice(&dst.port.to_be_bytes());
    udp[4..6].copy_from_slice(&udp_total.to_be_bytes());
    // UDP checksum 0 = not computed, legal for IPv4.
    hdr.copy_from_slice(&h);
}

fn ipv4_checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = hdr
        .chunks_exact(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

const SINE_BITS: u32 = 12;
const NOISE_LEN: usize = 8192;

/// Shared lookup tables, so a sample costs two loads and no serial recurrence.
struct Tables {
    sine: Box<[f32; 1 << SINE_BITS]>,
    /// White noise in about ±256.
    noise: Box<[f32; NOISE_LEN]>,
    /// G.711 code for every i16 (indexed by its bits as u16): a load is much
    /// cheaper than the leading-zeros arithmetic in the sample loop.
    ulaw: Box<[u8; 1 << 16]>,
    alaw: Box<[u8; 1 << 16]>,
}

impl Tables {
    fn new() -> Self {
        let mut sine = Box::new([0f32; 1 << SINE_BITS]);
        for (i, v) in sine.iter_mut().enumerate() {
            *v =
                (2.0 * std::f64::consts::PI * i as f64 / f64::from(1u32 << SINE_BITS)).sin() as f32;
        }
        let mut noise = Box::new([0f32; NOISE_LEN]);
        let mut r = Rng(SEED);
        for v in noise.iter_mut() {
            *v = ((r.next() >> 48) as i32 - 32768) as f32 / 128.0;
        }
        let mut ulaw = Box::new([0u8; 1 << 16]);
        let mut alaw = Box::new([0u8; 1 << 16]);
        for (bits, (u, a)) in ulaw.iter_mut().zip(alaw.iter_mut()).enumerate() {
            let pcm = bits as u16 as i16;
            *u = linear_to_ulaw(pcm);
            *a = linear_to_alaw(pcm);
        }
        Tables {
            sine,
            noise,
            ulaw,
            alaw,
        }
    }
}

/// One direction's audio: a tone with a speech-like on/off envelope over noise.
struct Voice {
    ssrc: u32,
    seq0: u16,
    ts0: u32,
    phase: u32,
    /// Phase step per sample, 2^32 = one cycle.
    step: u32,
    level: f32,
    env_seed: u64,
}

impl Voice {
    fn new(seed: u64, base_hz: f64, spread_hz: f64) -> Self {
        let mut r = Rng(seed);
        let hz = base_hz + (r.next() % 1000) as f64 / 1000.0 * spread_hz;
        Voice {
            ssrc: r.next() as u32,
            seq0: r.next() as u16,
            ts0: r.next() as u32,
            phase: r.next() as u32,
            step: (hz / 8000.0 * 4_294_967_296.0) as u32,
            level: 0.0,
            env_seed: r.next(),
        }
    }

    fn write_rtp(&mut self, spec: &LoadSpec, tables: &Tables, k: u64, frame: &mut Vec<u8>) {
        let samples = spec.ptime_ms as usize * 8;
        let pt: u8 = if spec.codec_pcma { 8 } else { 0 };
        let marker = if k == 0 { 0x80 } else { 0 };
        let seq = self.seq0.wrapping_add(k as u16);
        let ts = self
            .ts0
            .wrapping_add((k as u32).wrapping_mul(samples as u32));
        let mut hdr = [0u8; RTP_HDR_LEN];
        hdr[0] = 0x80;
        hdr[1] = marker | pt;
        hdr[2..4].copy_from_slice(&seq.to_be_bytes());
        hdr[4..8].copy_from_slice(&ts.to_be_bytes());
        hdr[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        frame.extend_from_slice(&hdr);

        // Talk spurts: a new target loudness every 200 ms, glided towards (time
        // constant ~60 ms) with a linear ramp inside the frame to avoid clicks.
        let spurt = splitmix(self.env_seed ^ (k * u64::from(spec.ptime_ms) / 200));
        let target = match spurt % 5 {
            0 | 1 => 0.0,
            2 => 2500.0,
            3 => 7000.0,
            _ => 13000.0,
        };
        let l0 = self.level;
        let l1 = target + (l0 - target) * 0.998f32.powi(samples as i32);
        self.level = l1;
        let dl = (l1 - l0) / samples as f32;
        let noise_gain = 1.0 + (l0 + l1) / 8000.0;
        let noise_at = splitmix(self.env_seed ^ k.rotate_left(32)) as usize;

        let start = frame.len();
        frame.resize(start + samples, 0);
        let Some(payload) = frame.get_mut(start..) else {
            return;
        };
        let encode = if spec.codec_pcma {
            &tables.alaw
        } else {
            &tables.ulaw
        };
        self.synth(tables, l0, dl, noise_gain, noise_at, payload, encode);
        self.phase = self
            .phase
            .wrapping_add(self.step.wrapping_mul(samples as u32));
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn synth(
        &self,
        tables: &Tables,
        l0: f32,
        dl: f32,
        noise_gain: f32,
        noise_at: usize,
        out: &mut [u8],
        encode: &[u8; 1 << 16],
    ) {
        for (i, b) in out.iter_mut().enumerate() {
            let phase = self.phase.wrapping_add(self.step.wrapping_mul(i as u32));
            let tone = tables.sine[(phase >> (32 - SINE_BITS)) as usize];
            let noise = tables.noise[noise_at.wrapping_add(i) % NOISE_LEN];
            let s = tone * (l0 + dl * i as f32) + noise * noise_gain;
            // `as` saturates, which is the clipping we want.
            *b = encode[usize::from(s as i16 as u16)];
        }
    }
}

fn call_seed(index: usize) -> u64 {
    splitmix(SEED ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap, HashSet};

    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use pcap_file::pcap::PcapReader;

    type Addr = ([u8; 4], u16);

    struct Pkt {
        ts: i64,
        src: Addr,
        dst: Addr,
        payload: Vec<u8>,
    }

    fn generate(spec: &LoadSpec) -> (LoadSummary, Vec<u8>) {
        let mut buf = Vec::new();
        let summary = write_capture(spec, &mut buf).unwrap();
        (summary, buf)
    }

    fn read_back(buf: &[u8]) -> Vec<Pkt> {
        let mut reader = PcapReader::new(buf).unwrap();
        let mut out = Vec::new();
        while let Some(p) = reader.next_packet() {
            let p = p.unwrap();
            assert_eq!(p.orig_len as usize, p.data.len());
            let sliced = SlicedPacket::from_ethernet(&p.data).unwrap();
            let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
                panic!("not ipv4")
            };
            let hdr = ip.header();
            assert_eq!(hdr.total_len() as usize, p.data.len() - ETH_LEN);
            let sum = ipv4_checksum(hdr.slice());
            assert_eq!(sum, 0, "ipv4 header checksum must verify");
            let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
                panic!("not udp")
            };
            assert_eq!(udp.length() as usize, p.data.len() - ETH_LEN - IP_LEN);
            out.push(Pkt {
                ts: p.timestamp.as_micros() as i64,
                src: (hdr.source(), udp.source_port()),
                dst: (hdr.destination(), udp.destination_port()),
                payload: udp.payload().to_vec(),
            });
        }
        out
    }

    fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
        let head = msg.split("\r\n\r\n").next()?;
        head.split("\r\n").find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    #[test]
    fn small_spec_reads_back_in_order_with_expected_counts() {
        let spec = LoadSpec::new(3, 2, 1);
        let (summary, buf) = generate(&spec);
        let per_dir = 50; // 1 s / 20 ms
        let expected = 3 * (7 + 2 * per_dir);
        assert_eq!(spec.expected_packets(), expected);
        assert_eq!(summary.packets, expected);
        assert_eq!(summary.sip_messages, 21);
        assert_eq!(summary.rtp_packets, 3 * 2 * per_dir);
        assert_eq!(summary.calls, 3);
        assert_eq!(summary.bytes, buf.len() as u64);

        let pkts = read_back(&buf);
        assert_eq!(pkts.len() as u64, expected);
        assert!(pkts.windows(2).all(|w| w[0].ts <= w[1].ts));
        assert_eq!(pkts[0].ts, spec.start.micros());

        // SIP: 7 messages per Call-ID, in dialog order, with consistent Content-Length.
        let mut dialogs: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
        for p in pkts.iter().filter(|p| p.src.1 == SIP_PORT) {
            let text = std::str::from_utf8(&p.payload).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let clen: usize = header(text, "Content-Length").unwrap().parse().unwrap();
            assert_eq!(clen, body.len());
            if clen > 0 {
                assert_eq!(header(text, "Content-Type"), Some("application/sdp"));
                assert!(body.contains("m=audio "));
            }
            let start = head.lines().next().unwrap().to_owned();
            let cid = header(text, "Call-ID").unwrap().to_owned();
            dialogs.entry(cid).or_default().push((p.ts, start));
        }
        let want: BTreeMap<String, usize> = (0..3).map(|i| (call_identity(i).call_id, i)).collect();
        assert_eq!(
            dialogs.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        let mut intervals = Vec::new();
        for (cid, msgs) in &dialogs {
            let id = call_identity(want[cid]);
            let starts: Vec<&str> = msgs
                .iter()
                .map(|(_, s)| s.split(' ').next().unwrap())
                .collect();
            let codes: Vec<&str> = msgs
                .iter()
                .map(|(_, s)| s.split(' ').nth(1).unwrap())
                .collect();
            assert_eq!(
                starts,
                ["INVITE", "SIP/2.0", "SIP/2.0", "SIP/2.0", "ACK", "BYE", "SIP/2.0"]
            );
            assert_eq!(&codes[1..4], ["100", "180", "200"]);
            assert_eq!(codes[6], "200");
            assert_eq!(
                msgs[0].1,
                format!("INVITE sip:{}@10.0.0.1 SIP/2.0", id.to_extension)
            );
            intervals.push((msgs[0].0, msgs[6].0));
        }
        // Never more than `concurrent` calls up at once, and the limit is reached.
        let peak = intervals
            .iter()
            .map(|&(s, _)| intervals.iter().filter(|&&(a, b)| a <= s && s <= b).count())
            .max()
            .unwrap();
        assert_eq!(peak, 2);

        // RTP: six streams of 50, seq +1, ts +160, constant SSRC, PCMU, 160-byte payloads.
        let mut streams: HashMap<(Addr, Addr), Vec<&Pkt>> = HashMap::new();
        for p in pkts.iter().filter(|p| p.src.1 != SIP_PORT) {
            streams.entry((p.src, p.dst)).or_default().push(p);
        }
        assert_eq!(streams.len(), 6);
        let mut payloads = HashSet::new();
        for s in streams.values() {
            assert_eq!(s.len(), per_dir as usize);
            let first = rtp_rs::RtpReader::new(&s[0].payload).unwrap();
            assert!(first.mark());
            for (k, p) in s.iter().enumerate() {
                let r = rtp_rs::RtpReader::new(&p.payload).unwrap();
                assert_eq!(r.version(), 2);
                assert_eq!(r.payload_type(), 0);
                assert_eq!(r.ssrc(), first.ssrc());
                assert_eq!(
                    u16::from(r.sequence_number()),
                    u16::from(first.sequence_number()).wrapping_add(k as u16)
                );
                assert_eq!(
                    r.timestamp(),
                    first.timestamp().wrapping_add(160 * k as u32)
                );
                assert_eq!(r.payload().len(), 160);
                payloads.insert(r.payload().to_vec());
            }
        }
        // Real-looking audio: frames differ from each other (and per direction).
        assert!(
            payloads.len() > 250,
            "only {} distinct frames",
            payloads.len()
        );
    }

    #[test]
    fn output_is_deterministic() {
        let spec = LoadSpec::new(5, 3, 1);
        assert_eq!(generate(&spec).1, generate(&spec).1);
    }

    #[test]
    fn pcma_answer_and_payload_type() {
        let spec = LoadSpec {
            codec_pcma: true,
            ..LoadSpec::new(1, 1, 1)
        };
        let (_, buf) = generate(&spec);
        let pkts = read_back(&buf);
        let ok = pkts
            .iter()
            .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
            .find(|t| {
                t.starts_with("SIP/2.0 200 OK") && t.contains("CSeq: ") && t.contains("INVITE\r\n")
            })
            .unwrap();
        assert!(ok.contains("m=audio 20000 RTP/AVP 8 101"));
        assert!(ok.contains("c=IN IP4 10.0.0.1"));
        let rtp = pkts.iter().find(|p| p.src.1 != SIP_PORT).unwrap();
        assert_eq!(
            rtp_rs::RtpReader::new(&rtp.payload).unwrap().payload_type(),
            8
        );
    }

    #[test]
    fn zero_talk_time_still_completes_calls() {
        let spec = LoadSpec::new(4, 4, 0);
        let (summary, buf) = generate(&spec);
        assert_eq!(summary.packets, 28);
        assert_eq!(read_back(&buf).len(), 28);
    }

    #[test]
    fn rejects_bad_specs() {
        let bad = [
            LoadSpec::new(1, 0, 1),
            LoadSpec::new(1, MAX_CONCURRENT + 1, 1),
            LoadSpec {
                ptime_ms: 0,
                ..LoadSpec::new(1, 1, 1)
            },
            LoadSpec {
                start: Timestamp(-1),
                ..LoadSpec::new(1, 1, 1)
            },
        ];
        for spec in bad {
            let err = write_capture(&spec, Vec::new()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }

    fn ulaw_to_linear(u: u8) -> i32 {
        i32::from(crate::rtp::codec::ulaw_to_linear(u))
    }

    fn alaw_to_linear(a: u8) -> i32 {
        i32::from(crate::rtp::codec::alaw_to_linear(a))
    }

    #[test]
    fn g711_encoders_round_trip_within_quantisation_error() {
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        for pcm in (i16::MIN..=i16::MAX).step_by(7) {
            let x = i32::from(pcm);
            // Segment step is at most 1/16 of the value's magnitude (+ small floor).
            let tol = x.abs() / 16 + 40;
            let u = ulaw_to_linear(linear_to_ulaw(pcm));
            assert!(
                (u - x).abs() <= tol.max(x.abs() - 32124),
                "ulaw {pcm} -> {u}"
            );
            let a = alaw_to_linear(linear_to_alaw(pcm));
            assert!((a - x).abs() <= tol, "alaw {pcm} -> {a}");
        }
    }
}
