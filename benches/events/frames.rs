//! Synthetic calls as live capture hands them over: Ethernet/IPv4/UDP frames
//! of one incoming call's dialog (INVITE, 100, 180, 200, ACK, a few RTP
//! packets each way, BYE, 200), each due at an offset from the call's start.
//! The layout follows tools/loadgen (PBX at 10.0.0.1, callers behind a
//! router), which only writes whole pcaps; here each frame is made when due.

use std::fmt::Write as _;

const PBX_IP: [u8; 4] = [10, 0, 0, 1];
const SIP_PORT: u16 = 5060;
const ROUTER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];
const PBX_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x02];
const HDR_LEN: usize = 14 + 20 + 8;
/// 20 ms of PCMU.
const RTP_PAYLOAD: usize = 160;
const PTIME_US: u64 = 20_000;

/// One call: who calls whom.
pub struct CallSpec {
    pub idx: usize,
    pub call_id: String,
    /// The caller's number as the INVITE carries it (`+1415…`).
    pub from: String,
    /// The agent's extension.
    pub ext: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Invite,
    Trying,
    Ringing,
    Ok,
    Ack,
    /// RTP packet `k`, the caller's (`false`) then the PBX's (`true`).
    Rtp(u8, bool),
    Bye,
    ByeOk,
}

/// When each step of a call is due.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// From the 180 to the 200.
    pub ring_us: u64,
    /// RTP packets each way.
    pub rtp: u8,
}

impl Timing {
    /// Microseconds after the INVITE. The BYE's 200 is due with the BYE: the
    /// hangup is timed from the BYE, and the call ends at its 200.
    pub fn offset_us(&self, step: Step) -> u64 {
        let ringing = 10_000;
        let ok = ringing + self.ring_us;
        let media = ok + 7_000;
        match step {
            Step::Invite => 0,
            Step::Trying => 2_000,
            Step::Ringing => ringing,
            Step::Ok => ok,
            Step::Ack => ok + 2_000,
            Step::Rtp(k, callee) => {
                media + u64::from(k) * PTIME_US + if callee { 7_000 } else { 0 }
            }
            Step::Bye | Step::ByeOk => media + u64::from(self.rtp) * PTIME_US + 5_000,
        }
    }

    pub fn next(&self, step: Step) -> Option<Step> {
        Some(match step {
            Step::Invite => Step::Trying,
            Step::Trying => Step::Ringing,
            Step::Ringing => Step::Ok,
            Step::Ok => Step::Ack,
            Step::Ack if self.rtp == 0 => Step::Bye,
            Step::Ack => Step::Rtp(0, false),
            Step::Rtp(k, false) => Step::Rtp(k, true),
            Step::Rtp(k, true) if k + 1 < self.rtp => Step::Rtp(k + 1, false),
            Step::Rtp(_, true) => Step::Bye,
            Step::Bye => Step::ByeOk,
            Step::ByeOk => return None,
        })
    }
}

#[derive(Clone, Copy)]
struct Endpoint {
    ip: [u8; 4],
    port: u16,
    mac: [u8; 6],
}

impl CallSpec {
    fn caller(&self, port: u16) -> Endpoint {
        let i = self.idx;
        Endpoint {
            ip: [10, 1, (i / 250 % 250) as u8, (i % 250 + 1) as u8],
            port,
            mac: ROUTER_MAC,
        }
    }

    fn caller_rtp(&self) -> u16 {
        16_384 + 2 * (self.idx % 8_000) as u16
    }

    fn pbx_rtp(&self) -> u16 {
        20_000 + 2 * (self.idx % 20_000) as u16
    }

    /// Fills `out` with the frame of `step`.
    pub fn frame(&self, step: Step, ip_id: u16, out: &mut Vec<u8>) {
        let caller = self.caller(SIP_PORT);
        let pbx = Endpoint {
            ip: PBX_IP,
            port: SIP_PORT,
            mac: PBX_MAC,
        };
        out.clear();
        out.resize(HDR_LEN, 0);
        let (src, dst) = match step {
            Step::Invite | Step::Ack | Step::Bye => (caller, pbx),
            Step::Trying | Step::Ringing | Step::Ok | Step::ByeOk => (pbx, caller),
            Step::Rtp(k, callee) => {
                let me = Endpoint {
                    port: self.caller_rtp(),
                    ..self.caller(0)
                };
                let them = Endpoint {
                    port: self.pbx_rtp(),
                    ..pbx
                };
                let ssrc = (self.idx as u32)
                    .wrapping_mul(2)
                    .wrapping_add(u32::from(callee));
                out.extend_from_slice(&[0x80, if k == 0 { 0x80 } else { 0 }]);
                out.extend_from_slice(&u16::from(k).to_be_bytes());
                out.extend_from_slice(&(u32::from(k) * RTP_PAYLOAD as u32).to_be_bytes());
                out.extend_from_slice(&ssrc.to_be_bytes());
                out.resize(out.len() + RTP_PAYLOAD, 0xff);
                let (src, dst) = if callee { (them, me) } else { (me, them) };
                finish(out, src, dst, ip_id);
                return;
            }
        };
        let mut sip = String::with_capacity(1024);
        // Writing to a String cannot fail.
        let _ = self.sip(step, &mut sip);
        out.extend_from_slice(sip.as_bytes());
        finish(out, src, dst, ip_id);
    }

    fn sip(&self, step: Step, out: &mut String) -> std::fmt::Result {
        let ip = dotted(self.caller(0).ip);
        let pbx = dotted(PBX_IP);
        let (from, ext, call_id) = (&self.from, &self.ext, &self.call_id);
        let from_hdr = format!("From: <sip:{from}@{ip}>;tag=f{:x}", self.idx);
        let to_plain = format!("To: <sip:{ext}@{pbx}>");
        let to_tagged = format!("{to_plain};tag=t{:x}", self.idx);
        let invite_via = format!(
            "Via: SIP/2.0/UDP {ip}:{SIP_PORT};branch=z9hG4bKi{:x};rport",
            self.idx
        );
        let ack_via = format!(
            "Via: SIP/2.0/UDP {ip}:{SIP_PORT};branch=z9hG4bKa{:x};rport",
            self.idx
        );
        let bye_via = format!(
            "Via: SIP/2.0/UDP {ip}:{SIP_PORT};branch=z9hG4bKb{:x};rport",
            self.idx
        );
        let (first, via, to, cseq, body) = match step {
            Step::Invite => (
                format!("INVITE sip:{ext}@{pbx} SIP/2.0"),
                invite_via,
                to_plain,
                "1 INVITE",
                self.sdp(&ip, self.caller_rtp()),
            ),
            Step::Trying => (
                "SIP/2.0 100 Trying".into(),
                invite_via,
                to_plain,
                "1 INVITE",
                String::new(),
            ),
            Step::Ringing => (
                "SIP/2.0 180 Ringing".into(),
                invite_via,
                to_tagged,
                "1 INVITE",
                String::new(),
            ),
            Step::Ok => (
                "SIP/2.0 200 OK".into(),
                invite_via,
                to_tagged,
                "1 INVITE",
                self.sdp(&pbx, self.pbx_rtp()),
            ),
            Step::Ack => (
                format!("ACK sip:{ext}@{pbx}:{SIP_PORT} SIP/2.0"),
                ack_via,
                to_tagged,
                "1 ACK",
                String::new(),
            ),
            Step::Bye => (
                format!("BYE sip:{ext}@{pbx}:{SIP_PORT} SIP/2.0"),
                bye_via,
                to_tagged,
                "2 BYE",
                String::new(),
            ),
            Step::ByeOk => (
                "SIP/2.0 200 OK".into(),
                bye_via,
                to_tagged,
                "2 BYE",
                String::new(),
            ),
            Step::Rtp(..) => return Ok(()),
        };
        write!(
            out,
            "{first}\r\n{via}\r\nMax-Forwards: 70\r\n{from_hdr}\r\n{to}\r\n"
        )?;
        write!(out, "Call-ID: {call_id}\r\nCSeq: {cseq}\r\n")?;
        if matches!(step, Step::Invite) {
            write!(out, "Contact: <sip:{from}@{ip}:{SIP_PORT}>\r\n")?;
        }
        if matches!(step, Step::Ringing | Step::Ok) {
            write!(out, "Contact: <sip:{ext}@{pbx}:{SIP_PORT}>\r\n")?;
        }
        if !body.is_empty() {
            out.push_str("Content-Type: application/sdp\r\n");
        }
        write!(out, "Content-Length: {}\r\n\r\n{body}", body.len())
    }

    fn sdp(&self, ip: &str, port: u16) -> String {
        format!(
            "v=0\r\no=- {i} {i} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
            i = self.idx
        )
    }
}

fn dotted(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

/// Writes the Ethernet, IPv4 and UDP headers in front of the payload.
fn finish(frame: &mut [u8], src: Endpoint, dst: Endpoint, ip_id: u16) {
    let total = frame.len();
    frame[0..6].copy_from_slice(&dst.mac);
    frame[6..12].copy_from_slice(&src.mac);
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut frame[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((total - 14) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.ip);
    ip[16..20].copy_from_slice(&dst.ip);
    let mut sum: u32 = ip
        .chunks_exact(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let udp = &mut frame[34..42];
    udp[0..2].copy_from_slice(&src.port.to_be_bytes());
    udp[2..4].copy_from_slice(&dst.port.to_be_bytes());
    udp[4..6].copy_from_slice(&((total - 34) as u16).to_be_bytes());
}
