//! Where webhooks may go (`events.webhook_allow`): host names (`*.` for
//! every name under one), addresses and networks. A webhook URL is an
//! address an API key holder chooses, so nothing outside the list is ever
//! called: a name resolves to addresses that must each be listed, or be
//! public ones when the name itself is listed. A listed name that resolves
//! to a loopback or private address (a DNS answer turned against the
//! inside) is refused unless that address is listed too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;

/// Addresses one name may resolve to, at most (more are ignored).
const MAX_ADDRS: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{entry:?} is not a host name, an IP address or a network (e.g. crm.example.com, *.example.com, 10.0.0.0/8)")]
pub struct BadEntry {
    pub entry: String,
}

/// Why a destination is not called.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("not a URL: {reason}")]
    Url { reason: String },
    #[error("scheme {scheme:?}: only http and https")]
    Scheme { scheme: String },
    #[error("user names and passwords do not belong in the URL (the signature authenticates)")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
    #[error("{host} is not in events.webhook_allow")]
    NotListed { host: String },
    #[error("{host} resolves to {addr}, which events.webhook_allow does not list")]
    Address { host: String, addr: IpAddr },
    #[error("{host} does not resolve: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NameRule {
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com`.
    Under(String),
}

#[derive(Debug, Clone, Default)]
pub struct AllowList {
    names: Vec<NameRule>,
    nets: Vec<IpNet>,
}

/// A URL's host: a name to resolve or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Addr(IpAddr),
}

impl AllowList {
    pub fn parse(entries: &[String]) -> Result<AllowList, BadEntry> {
        let mut list = AllowList::default();
        for e in entries {
            list.add(e)?;
        }
        Ok(list)
    }

    fn add(&mut self, entry: &str) -> Result<(), BadEntry> {
        let bad = || BadEntry {
            entry: entry.chars().take(100).collect(),
        };
        let e = entry.trim().to_ascii_lowercase();
        if let Ok(net) = e.parse::<IpNet>() {
            self.nets.push(net.trunc());
        } else if let Ok(ip) = e.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
            self.nets.push(IpNet::from(ip));
        } else if let Some(base) = e.strip_prefix("*.") {
            if !is_host_name(base) {
                return Err(bad());
            }
            self.names
                .push(NameRule::Under(base.trim_end_matches('.').to_owned()));
        } else if is_host_name(&e) {
            self.names
                .push(NameRule::Exact(e.trim_end_matches('.').to_owned()));
        } else {
            return Err(bad());
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.nets.is_empty()
    }

    fn name_listed(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|r| match r {
            NameRule::Exact(n) => *n == name,
            NameRule::Under(base) => name
                .strip_suffix(base.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        })
    }

    fn net_listed(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// `addr` may be called for a host whose name is (or is not) listed.
    pub fn addr_allowed(&self, name_listed: bool, addr: IpAddr) -> bool {
        self.net_listed(addr) || (name_listed && is_public(canonical(addr)))
    }

    /// What can be known without DNS: an http(s) URL without credentials
    /// whose address is listed, or whose name is listed or may resolve into
    /// a listed network.
    pub fn check_url(&self, url: &str) -> Result<(Url, Host), Refused> {
        let parsed = Url::parse(url).map_err(|e| Refused::Url {
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Refused::Scheme {
                scheme: parsed.scheme().chars().take(20).collect(),
            });
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Refused::Credentials);
        }
        let host_str = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(Refused::NoHost)?;
        let host = match host_str
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => Host::Addr(ip),
            Err(_) => Host::Name(host_str.to_ascii_lowercase()),
        };
        let ok = match &host {
            Host::Addr(ip) => self.net_listed(*ip),
            Host::Name(n) => self.name_listed(n) || !self.nets.is_empty(),
        };
        if !ok {
            return Err(Refused::NotListed {
                host: host_str.to_owned(),
            });
        }
        Ok((parsed, host))
    }

    /// Every address `name` resolves to, each one allowed; one that is not
    /// refuses them all (a later connection might pick it).
    pub async fn resolve(&self, name: &str) -> Result<Vec<SocketAddr>, Refused> {
        let listed = self.name_listed(name);
        if !listed && self.nets.is_empty() {
            return Err(Refused::NotListed {
                host: name.to_owned(),
            });
        }
        let found =
            tokio::net::lookup_host((name, 0))
                .await
                .map_err(|source| Refused::Resolve {
                    host: name.to_owned(),
                    source,
                })?;
        let addrs: Vec<SocketAddr> = found.take(MAX_ADDRS).collect();
        if addrs.is_empty() {
            return Err(Refused::NoAddress {
                host: name.to_owned(),
            });
        }
        if let Some(bad) = addrs.iter().find(|a| !self.addr_allowed(listed, a.ip())) {
            return Err(Refused::Address {
                host: name.to_owned(),
                addr: bad.ip(),
            });
        }
        Ok(addrs)
    }

    /// `check_url` and, for a name, `resolve`: a URL given through the API
    /// is refused at once rather than at its first delivery.
    pub async fn check_reachable(&self, url: &str) -> Result<Url, Refused> {
        let (parsed, host) = self.check_url(url)?;
        if let Host::Name(n) = &host {
            self.resolve(n).await?;
        }
        Ok(parsed)
    }
}

/// The resolver the webhook client connects through: names go through the
/// allow-list on every connection, so a DNS answer that changed since the
/// URL was checked cannot lead elsewhere.
pub(super) struct Guard(pub Arc<AllowList>);

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.0.clone();
        Box::pin(async move {
            let addrs = allow.resolve(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Reachable across the internet: not loopback, private, link-local,
/// shared, documentation, reserved or multicast.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || o[0] >= 240)
}

/// Global unicast only (2000::/3), less documentation, 6to4 and Teredo,
/// which carry IPv4 addresses of any kind.
fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    (s[0] & 0xe000) == 0x2000
        && !(s[0] == 0x2001 && s[1] == 0x0db8)
        && s[0] != 0x2002
        && !(s[0] == 0x2001 && s[1] == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn host_of(l: &AllowList, url: &str) -> Result<Host, String> {
        l.check_url(url).map(|(_, h)| h).map_err(|e| e.to_string())
    }

    #[test]
    fn entries_are_names_addresses_or_networks() {
        let l = list(&[
            "CRM.example.com.",
            "*.hooks.example.org",
            "10.0.0.0/8",
            "::1",
            "192.0.2.7",
        ]);
        assert_eq!(l.names.len(), 2);
        assert_eq!(l.nets.len(), 3);
        for bad in [
            "https://crm.example.com",
            "crm example",
            "10.0.0.0/33",
            "*.",
            "",
            "a..b",
            "-a.b",
        ] {
            assert!(
                AllowList::parse(&[bad.to_string()]).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn urls_must_be_http_to_a_listed_host() {
        let l = list(&[
            "crm.example.com",
            "*.hooks.example.org",
            "10.1.0.0/16",
            "::1",
        ]);
        assert_eq!(
            host_of(&l, "https://CRM.example.com/hook").unwrap(),
            Host::Name("crm.example.com".into())
        );
        assert!(host_of(&l, "http://a.hooks.example.org:8080/x").is_ok());
        assert!(host_of(&l, "http://10.1.2.3/x").is_ok());
        assert!(host_of(&l, "http://[::1]:9000/x").is_ok());
        // With a network listed, an unlisted name may resolve into it: DNS decides.
        assert!(host_of(&l, "http://other.example.com/").is_ok());
        let names_only = list(&["crm.example.com"]);
        assert!(host_of(&names_only, "http://other.example.com/").is_err());
        assert!(host_of(&names_only, "http://hooks.example.org/").is_err());
        assert!(host_of(&list(&["*.hooks.example.org"]), "http://hooks.example.org/").is_err());
        for (url, why) in [
            ("ftp://crm.example.com/", "scheme"),
            ("file:///etc/passwd", "scheme"),
            ("http://u:p@crm.example.com/", "passwords"),
            ("http://10.2.0.1/", "not in events.webhook_allow"),
            ("http://127.0.0.1/", "not in events.webhook_allow"),
            // The URL parser reads this as 127.0.0.1, and so does the check.
            ("http://0x7f.1/", "not in events.webhook_allow"),
            ("http://[::ffff:127.0.0.1]/", "not in events.webhook_allow"),
            ("crm.example.com/hook", "not a URL"),
        ] {
            let e = host_of(&l, url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
        // An IPv4 address written as IPv6 is checked as IPv4.
        assert!(host_of(&list(&["127.0.0.1"]), "http://[::ffff:127.0.0.1]/").is_ok());
    }

    #[test]
    fn listed_names_reach_public_addresses_only() {
        let l = list(&["crm.example.com", "192.168.1.0/24"]);
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let private: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.addr_allowed(true, public));
        assert!(!l.addr_allowed(false, public));
        assert!(!l.addr_allowed(true, private));
        assert!(l.addr_allowed(false, "192.168.1.9".parse().unwrap()));
        for inside in [
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_public(canonical(inside.parse().unwrap())), "{inside}");
        }
        assert!(is_public("2a00:1450::1".parse().unwrap()));
    }

    #[tokio::test]
    async fn every_resolved_address_is_checked() {
        // localhost resolves to 127.0.0.1 (and ::1 on most systems).
        let both = list(&["127.0.0.0/8", "::1"]);
        let addrs = both.resolve("localhost").await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
        // Listed by name, yet loopback: refused.
        let e = list(&["localhost"]).resolve("localhost").await.unwrap_err();
        assert!(matches!(e, Refused::Address { .. }), "{e}");
        let e = list(&["10.0.0.0/8"])
            .resolve("localhost")
            .await
            .unwrap_err();
        assert!(matches!(e, Refused::Address { .. }), "{e}");
        let e = list(&["10.0.0.0/8"])
            .check_reachable("http://nothing.invalid/")
            .await
            .unwrap_err();
        assert!(
            matches!(e, Refused::Resolve { .. } | Refused::NoAddress { .. }),
            "{e}"
        );
        assert!(both.check_reachable("http://127.0.0.1:1/").await.is_ok());
    }
}
