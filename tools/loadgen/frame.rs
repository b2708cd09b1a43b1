//! Ethernet/IPv4/UDP framing, G.711 tables, the synthetic voice and the seeded RNG.

use super::*;

#[derive(Clone, Copy)]
pub(super) struct Endpoint {
    pub(super) ip: [u8; 4],
    pub(super) port: u16,
    pub(super) mac: [u8; 6],
}

/// Fills the first `HDR_LEN` bytes of `frame` (whose tail is the UDP payload).
pub(super) fn finish_frame(frame: &mut [u8], src: Endpoint, dst: Endpoint, ip_id: u16) {
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

pub fn ipv4_checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = hdr
        .chunks_exact(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub(super) const SINE_BITS: u32 = 12;
pub(super) const NOISE_LEN: usize = 8192;

/// Shared lookup tables, so a sample costs two loads and no serial recurrence.
pub(super) struct Tables {
    pub(super) sine: Box<[f32; 1 << SINE_BITS]>,
    /// White noise in about ±256.
    pub(super) noise: Box<[f32; NOISE_LEN]>,
    /// G.711 code for every i16 (indexed by its bits as u16): a load is much
    /// cheaper than the leading-zeros arithmetic in the sample loop.
    pub(super) ulaw: Box<[u8; 1 << 16]>,
    pub(super) alaw: Box<[u8; 1 << 16]>,
}

impl Tables {
    pub(super) fn new() -> Self {
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
pub(super) struct Voice {
    pub(super) ssrc: u32,
    pub(super) seq0: u16,
    pub(super) ts0: u32,
    pub(super) phase: u32,
    /// Phase step per sample, 2^32 = one cycle.
    pub(super) step: u32,
    pub(super) level: f32,
    pub(super) env_seed: u64,
}

impl Voice {
    pub(super) fn new(seed: u64, base_hz: f64, spread_hz: f64) -> Self {
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

    pub(super) fn write_rtp(
        &mut self,
        spec: &LoadSpec,
        tables: &Tables,
        k: u64,
        frame: &mut Vec<u8>,
    ) {
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

    /// Packet `k` of a pre-encoded stream: the frames are looped, each voice
    /// starting at its own place in them.
    pub(super) fn write_encoded(&mut self, enc: &EncodedCodec, k: u64, frame: &mut Vec<u8>) {
        let marker = if k == 0 { 0x80 } else { 0 };
        let seq = self.seq0.wrapping_add(k as u16);
        let ts = self
            .ts0
            .wrapping_add((k as u32).wrapping_mul(enc.ts_per_frame));
        let mut hdr = [0u8; RTP_HDR_LEN];
        hdr[0] = 0x80;
        hdr[1] = marker | (enc.pt & 0x7f);
        hdr[2..4].copy_from_slice(&seq.to_be_bytes());
        hdr[4..8].copy_from_slice(&ts.to_be_bytes());
        hdr[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        frame.extend_from_slice(&hdr);
        if let Some(n) = std::num::NonZeroUsize::new(enc.frames.len()) {
            let i = (self.env_seed as usize).wrapping_add(k as usize) % n;
            frame.extend_from_slice(&enc.frames[i]);
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn synth(
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

pub(super) fn call_seed(index: usize) -> u64 {
    splitmix(SEED ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

pub(super) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix(self.0)
    }
}
