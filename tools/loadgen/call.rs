//! One call of the synthetic capture: its SIP messages and RTP packets, in order.

use super::*;
use std::fmt::Write as _;

use super::frame::{call_seed, finish_frame, splitmix, Endpoint, Rng, Tables, Voice};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
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

pub(super) struct Call {
    pub(super) seed: u64,
    pub(super) id: CallIdentity,
    pub(super) caller_ip: [u8; 4],
    pub(super) caller_rtp: u16,
    pub(super) pbx_rtp: u16,
    pub(super) from_tag: u64,
    pub(super) to_tag: u64,
    pub(super) cseq: u32,
    pub(super) t0: i64,
    pub(super) t_ok: i64,
    pub(super) rtp_base: i64,
    pub(super) callee_offset: i64,
    pub(super) step: Step,
    pub(super) next_at: i64,
    pub(super) caller: Voice,
    pub(super) callee: Voice,
    /// Pre-encoded frames instead of synthesised G.711.
    pub(super) encoded: Option<std::sync::Arc<EncodedCodec>>,
}

impl Call {
    pub(super) fn new(spec: &LoadSpec, index: usize, slot: usize, t0: i64) -> Self {
        let seed = call_seed(index);
        let mut r = Rng(seed);
        let ring_us = 300_000 + (r.next() % 2_700_000) as i64;
        let ptime_us = i64::from(spec.ptime_ms) * 1000;
        let t_ok = t0 + ring_us;
        let caller_ip = [10, 1, (slot / 250) as u8, (slot % 250 + 1) as u8];
        Call {
            encoded: spec.encoded(index).cloned(),
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

    pub(super) fn caller_sip(&self) -> Endpoint {
        Endpoint {
            ip: self.caller_ip,
            port: SIP_PORT,
            mac: ROUTER_MAC,
        }
    }

    pub(super) fn pbx_sip(&self) -> Endpoint {
        Endpoint {
            ip: PBX_IP,
            port: SIP_PORT,
            mac: PBX_MAC,
        }
    }

    pub(super) fn time_of(&self, spec: &LoadSpec, step: Step) -> i64 {
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
    pub(super) fn advance(&mut self, spec: &LoadSpec) -> bool {
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

    pub(super) fn emit(
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
                match &self.encoded {
                    Some(enc) => voice.write_encoded(enc, k, frame),
                    None => voice.write_rtp(spec, tables, k, frame),
                }
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

    pub(super) fn write_sip(&self, spec: &LoadSpec, out: &mut String) -> std::fmt::Result {
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

    pub(super) fn sdp_offer(&self, spec: &LoadSpec, ip: &str) -> String {
        let sess = self.seed >> 33;
        format!(
            "v=0\r\no=- {sess} {sess} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {} RTP/AVP {}0 8 101\r\n{}a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:{}\r\na=sendrecv\r\n",
            self.caller_rtp,
            self.encoded_pt(),
            self.encoded_rtpmap(),
            spec.ptime_ms
        )
    }

    pub(super) fn sdp_answer(&self, spec: &LoadSpec, pbx: &str) -> String {
        let sess = self.seed & 0x7fff_ffff;
        let (pt, map) = match &self.encoded {
            Some(enc) => (enc.pt, self.encoded_rtpmap()),
            None if spec.codec_pcma => (8, "a=rtpmap:8 PCMA/8000\r\n".to_string()),
            None => (0, "a=rtpmap:0 PCMU/8000\r\n".to_string()),
        };
        format!(
            "v=0\r\no=pbx {sess} {sess} IN IP4 {pbx}\r\ns=pbx\r\nc=IN IP4 {pbx}\r\nt=0 0\r\n\
             m=audio {} RTP/AVP {pt} 101\r\n{map}\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:{}\r\na=sendrecv\r\n",
            self.pbx_rtp, spec.ptime_ms
        )
    }
}

impl Call {
    fn encoded_pt(&self) -> String {
        self.encoded
            .as_ref()
            .map(|e| format!("{} ", e.pt))
            .unwrap_or_default()
    }

    fn encoded_rtpmap(&self) -> String {
        let Some(e) = &self.encoded else {
            return String::new();
        };
        let fmtp = e
            .fmtp
            .as_ref()
            .map(|f| format!("a=fmtp:{} {f}\r\n", e.pt))
            .unwrap_or_default();
        format!("a=rtpmap:{} {}\r\n{fmtp}", e.pt, e.rtpmap)
    }
}

pub(super) fn writeln_crlf(out: &mut String, args: std::fmt::Arguments<'_>) -> std::fmt::Result {
    out.write_fmt(args)?;
    out.write_str("\r\n")
}

pub(super) fn write_body(out: &mut String, content_type: &str, body: &str) -> std::fmt::Result {
    if !content_type.is_empty() {
        writeln_crlf(out, format_args!("Content-Type: {content_type}"))?;
    }
    writeln_crlf(out, format_args!("Content-Length: {}", body.len()))?;
    out.write_str("\r\n")?;
    out.write_str(body)
}

pub(super) fn fmt_ip(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}
