//! A call's SRTP (SDES, RFC 4568): which key each side sends with, and the
//! libsrtp session that decrypts it before the packet reaches the leg's stream.
//!
//! Each side's `a=crypto` keys what that side *sends* (RFC 4568 §6.1). The
//! answer carries one attribute whose tag names the offered suite it accepted,
//! so the offerer's key is its attribute with that tag; before the answer, the
//! offerer's first usable attribute. SRTCP is not decrypted: the tracker only
//! counts RTCP packets.

use crate::rtp::srtp::{SrtpError, SrtpSession};
use crate::sip::sdp::{Crypto, Media};

use super::media::SideSdp;
use super::Side;

/// What [`CallSrtp::unprotect`] made of a packet.
pub(crate) enum Unprotect {
    /// The sender's SDP is plain RTP: use the packet as it is.
    Clear,
    /// SRTP without a usable key: the payload stays ciphertext (the call's
    /// recording is then `encrypted`, see [`SideSdp::encrypted`]).
    NoKey,
    /// The plain packet is in the output buffer.
    Decrypted,
    Failed(SrtpError),
}

#[derive(Default)]
struct SideSrtp {
    /// The side's SDP offers RTP/SAVP (or SAVPF).
    savp: bool,
    offered: Vec<Crypto>,
    /// The session and the key it was made from.
    session: Option<(Crypto, SrtpSession)>,
    decrypted: u64,
    failed: u64,
}

#[derive(Default)]
pub(crate) struct CallSrtp {
    sides: [SideSrtp; 2],
    /// Reused for every decrypted packet of the call.
    scratch: Vec<u8>,
}

impl CallSrtp {
    /// `side`'s SDP (offer, answer or re-INVITE) for its audio stream; new keys
    /// replace the sessions. Marks in `sdp` which side stays undecryptable.
    pub fn update(&mut self, side: Side, audio: &Media, sdp: &mut [SideSdp; 2]) {
        let s = &mut self.sides[side.index()];
        s.savp = audio.proto.to_ascii_uppercase().contains("SAVP");
        s.offered.clone_from(&audio.crypto);
        for side in [Side::Caller, Side::Callee] {
            self.rekey(side);
            let s = &self.sides[side.index()];
            sdp[side.index()].encrypted = s.savp && s.session.is_none();
        }
    }

    fn rekey(&mut self, side: Side) {
        let [caller, callee] = &mut self.sides;
        let (me, peer) = match side {
            Side::Caller => (caller, callee),
            Side::Callee => (callee, caller),
        };
        if !me.savp {
            me.session = None;
            return;
        }
        let accepted = |c: &&Crypto| {
            peer.offered
                .iter()
                .any(|p| p.tag == c.tag && p.suite == c.suite)
        };
        let chosen = me
            .offered
            .iter()
            .find(accepted)
            .or_else(|| me.offered.first());
        let Some(chosen) = chosen else {
            me.session = None;
            return;
        };
        if me.session.as_ref().is_some_and(|(k, _)| k == chosen) {
            return;
        }
        me.session = match SrtpSession::new(chosen) {
            Ok(s) => Some((chosen.clone(), s)),
            Err(e) => {
                tracing::debug!(error = %e, "SRTP key not usable");
                None
            }
        };
    }

    /// Decrypts what `sender` sent into `out` when its SDP says SRTP.
    pub fn unprotect(&mut self, sender: Side, packet: &[u8], out: &mut Vec<u8>) -> Unprotect {
        let s = &mut self.sides[sender.index()];
        if !s.savp {
            return Unprotect::Clear;
        }
        let Some((_, session)) = s.session.as_mut() else {
            return Unprotect::NoKey;
        };
        match session.unprotect(packet, out) {
            Ok(()) => {
                s.decrypted += 1;
                Unprotect::Decrypted
            }
            Err(e) => {
                s.failed += 1;
                Unprotect::Failed(e)
            }
        }
    }

    pub fn take_scratch(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.scratch)
    }

    pub fn put_scratch(&mut self, scratch: Vec<u8>) {
        self.scratch = scratch;
    }

    /// A side had keys but none of its packets decrypted (a wrong key): the
    /// recording is as encrypted as one without keys.
    pub fn undecryptable(&self) -> bool {
        self.sides.iter().any(|s| s.failed > 0 && s.decrypted == 0)
    }
}
