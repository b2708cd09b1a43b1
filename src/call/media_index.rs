//! The media index: which calls receive audio at an address.
//!
//! One address may belong to several open calls: a B2BUA (an Asterisk or
//! FreeSWITCH bridging two legs, an SBC) often gives both of its dialogs the
//! same RTP port, one leg facing phone A, the other phone B. A packet is then
//! given to the call whose SDP names both of its ends (source and
//! destination), else to the call whose leg already carries its SSRC, else to
//! the newest call (a port reused by a later call).

use std::collections::HashMap;
use std::net::SocketAddr;

use smallvec::SmallVec;

use super::{CallHandle, Side};

/// Calls one address may serve at once; more are stale calls on a reused port.
pub(super) const MAX_CALLS_PER_ADDR: usize = 8;

type Entries = SmallVec<[(CallHandle, Side); 2]>;

#[derive(Default)]
pub(super) struct MediaIndex {
    map: HashMap<SocketAddr, Entries>,
}

/// A candidate's facts for [`MediaIndex::route`], in order of weight.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Fit {
    /// The call's SDP has the packet's other end too.
    pub both_ends: bool,
    /// The sender's leg already carries the packet's SSRC.
    pub same_ssrc: bool,
    /// The call is still open (not lingering after its end).
    pub open: bool,
}

/// Where a media packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Route {
    pub call: CallHandle,
    pub sender: Side,
    /// Found by its destination (a known receiving address).
    pub to_known_address: bool,
}

impl MediaIndex {
    /// Addresses held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn contains(&self, addr: &SocketAddr, call: CallHandle) -> bool {
        self.map
            .get(addr)
            .is_some_and(|e| e.iter().any(|(h, _)| *h == call))
    }

    /// The calls that receive at `addr`, oldest first.
    pub fn calls_at(&self, addr: &SocketAddr) -> impl Iterator<Item = CallHandle> + '_ {
        self.map.get(addr).into_iter().flatten().map(|(h, _)| *h)
    }

    /// `side` of `call` receives at `addr`. Returns the call pushed out when
    /// the address already serves [`MAX_CALLS_PER_ADDR`] calls (the oldest).
    pub fn insert(&mut self, addr: SocketAddr, call: CallHandle, side: Side) -> Option<CallHandle> {
        let entries = self.map.entry(addr).or_default();
        if let Some(e) = entries.iter_mut().find(|(h, _)| *h == call) {
            e.1 = side;
            return None;
        }
        let evicted = (entries.len() >= MAX_CALLS_PER_ADDR).then(|| entries.remove(0).0);
        entries.push((call, side));
        evicted
    }

    pub fn remove(&mut self, addr: &SocketAddr, call: CallHandle) {
        if let Some(entries) = self.map.get_mut(addr) {
            entries.retain(|(h, _)| *h != call);
            if entries.is_empty() {
                self.map.remove(addr);
            }
        }
    }

    /// The call a packet from `src` to `dst` belongs to. `fit` rates a
    /// candidate: `(call, sender, the packet's other end)`.
    pub fn route(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        fit: impl Fn(CallHandle, Side, SocketAddr) -> Fit,
    ) -> Option<Route> {
        let by_dst = self
            .map
            .get(&dst)
            .into_iter()
            .flatten()
            .map(|&(call, receiver)| Route {
                call,
                sender: receiver.other(),
                to_known_address: true,
            });
        let by_src = self
            .map
            .get(&src)
            .into_iter()
            .flatten()
            .map(|&(call, sender)| Route {
                call,
                sender,
                to_known_address: false,
            });
        let mut all = by_dst.chain(by_src);
        let first = all.next()?;
        // The common case, one call at the address(es): no need to rate it.
        let Some(second) = all.next() else {
            return Some(first);
        };
        [first, second].into_iter().chain(all).max_by_key(|r| {
            let other_end = if r.to_known_address { src } else { dst };
            // Ties: a known receiving address first (as before), then the newest call.
            (fit(r.call, r.sender, other_end), r.to_known_address, r.call)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn one_address_serves_several_calls_capped() {
        let mut m = MediaIndex::default();
        for i in 0..MAX_CALLS_PER_ADDR as u64 {
            assert_eq!(m.insert(a(1), CallHandle(i), Side::Caller), None);
        }
        assert_eq!(m.insert(a(1), CallHandle(0), Side::Callee), None, "update");
        assert_eq!(
            m.insert(a(1), CallHandle(99), Side::Caller),
            Some(CallHandle(0)),
            "the oldest gives way"
        );
        assert_eq!(m.calls_at(&a(1)).count(), MAX_CALLS_PER_ADDR);
        for i in 1..MAX_CALLS_PER_ADDR as u64 {
            m.remove(&a(1), CallHandle(i));
        }
        assert!(m.contains(&a(1), CallHandle(99)));
        m.remove(&a(1), CallHandle(99));
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn route_prefers_both_ends_then_ssrc_then_newest() {
        let mut m = MediaIndex::default();
        let (pbx, phone_a, phone_b) = (a(1), a(2), a(3));
        let (leg_a, leg_b) = (CallHandle(1), CallHandle(2));
        m.insert(phone_a, leg_a, Side::Caller);
        m.insert(pbx, leg_a, Side::Callee);
        m.insert(pbx, leg_b, Side::Caller);
        m.insert(phone_b, leg_b, Side::Callee);
        let sdp = |call: CallHandle, _: Side, other: SocketAddr| Fit {
            both_ends: m.contains(&other, call),
            same_ssrc: false,
            open: true,
        };
        let r = m.route(phone_a, pbx, sdp).unwrap();
        assert_eq!((r.call, r.sender), (leg_a, Side::Caller));
        let r = m.route(phone_b, pbx, sdp).unwrap();
        assert_eq!((r.call, r.sender), (leg_b, Side::Callee));
        let r = m.route(pbx, phone_b, sdp).unwrap();
        assert_eq!((r.call, r.sender), (leg_b, Side::Caller));
        // Nothing tells them apart: the newest call.
        let blind = |_: CallHandle, _: Side, _: SocketAddr| Fit {
            both_ends: false,
            same_ssrc: false,
            open: true,
        };
        assert_eq!(m.route(a(9), pbx, blind).unwrap().call, leg_b);
        // The SSRC a leg already carries.
        let ssrc = |call: CallHandle, _: Side, _: SocketAddr| Fit {
            both_ends: false,
            same_ssrc: call == leg_a,
            open: true,
        };
        assert_eq!(m.route(a(9), pbx, ssrc).unwrap().call, leg_a);
        assert_eq!(m.route(a(8), a(9), blind), None);
    }
}
