//! Tracker settings: pure data, built by the driver from the TOML config.

use std::time::Duration;

use ipnet::IpNet;
use regex::Regex;

use crate::reasm::ReasmLimits;

#[derive(Debug, Clone)]
pub struct TrackerConfig {
    pub sip_ports: Vec<u16>,
    pub detect_any_port: bool,
    /// `None` means the built-in rule: 2 to 6 digits.
    pub extension_pattern: Option<Regex>,
    pub internal_networks: Vec<IpNet>,
    pub max_calls: usize,
    /// Caps the media addresses one call may register (re-INVITEs, forks, NAT learning).
    pub max_media_addrs_per_call: usize,
    /// INVITE with no response at all.
    pub no_response: Duration,
    /// Ringing (or trying) with no final response.
    pub ring_timeout: Duration,
    /// No RTP after the answer.
    pub rtp_timeout: Duration,
    /// Answered calls are closed this long after the answer, whatever happens.
    pub max_duration: Duration,
    /// A BYE whose 200 was not seen.
    pub bye_timeout: Duration,
    /// The fallback wait before closing a call whose end was seen but not
    /// confirmed: a failure whose ACK the capture missed, one another fork
    /// may still beat, or one a UAC often retries. A confirmed end (the BYE's
    /// response, the ACK, the 487 to a CANCEL) closes the call at once.
    pub linger: Duration,
    /// How long an ended Call-ID is remembered so stray retransmissions (and
    /// late responses) are counted, not taken for a new call.
    pub ended_memory: Duration,
    pub max_ended_memory: usize,
    pub reasm: ReasmLimits,
    /// A HEP capture time further than this from the receive time is not trusted:
    /// a sender with a wrong clock would otherwise fire every timer early or late.
    pub hep_max_skew: Duration,
    /// UDP ports whose datagrams in a capture are decoded as HEP.
    pub hep_ports: Vec<u16>,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            sip_ports: vec![5060, 5080],
            detect_any_port: true,
            extension_pattern: None,
            internal_networks: Vec::new(),
            max_calls: 100_000,
            max_media_addrs_per_call: 16,
            no_response: Duration::from_secs(32),
            ring_timeout: Duration::from_secs(300),
            rtp_timeout: Duration::from_secs(300),
            max_duration: Duration::from_secs(4 * 3600),
            bye_timeout: Duration::from_secs(32),
            linger: Duration::from_secs(2),
            ended_memory: Duration::from_secs(64),
            max_ended_memory: 100_000,
            reasm: ReasmLimits::default(),
            hep_max_skew: Duration::from_secs(10),
            hep_ports: vec![crate::wire::hep::DEFAULT_PORT],
        }
    }
}

impl TrackerConfig {
    pub fn is_extension(&self, user: &str) -> bool {
        match &self.extension_pattern {
            Some(re) => re.is_match(user),
            None => (2..=6).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_digit()),
        }
    }

    pub fn is_internal_ip(&self, ip: std::net::IpAddr) -> bool {
        self.internal_networks.iter().any(|n| n.contains(&ip))
    }
}
