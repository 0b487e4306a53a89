//! Which addresses the server's own outbound fetches may reach. A registered `jwks_uri` is
//! fetched when any caller presents an assertion naming its application, so without a check it
//! would let an integrator — or anyone who can register one — make this server call the cloud
//! metadata service (169.254.169.254), a private network, or its own admin and metrics
//! listeners on loopback. Every address is checked after DNS resolution (the resolver below
//! drops refused ones, so a name that resolves to a private address is refused too) and an
//! address written in the URL is checked before connecting; no redirect is followed and no
//! proxy is used, so nothing else decides where the connection goes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Networks an operator allows despite being non-public (`JWKS_URI_ALLOWED_NETWORKS`): an
/// identity provider inside the same private network, or loopback for a local test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedNetworks(Vec<IpNet>);

impl AllowedNetworks {
    /// Comma-separated addresses or CIDR ranges.
    pub fn parse(list: &str) -> Result<Self, String> {
        server_kit::source::parse_networks(list).map(Self)
    }

    /// Whether a fetch may connect to `ip`: a public address, or one the operator allowed.
    pub fn reachable(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        is_public(ip) || self.0.iter().any(|n| n.contains(&ip))
    }
}

/// Not loopback, private, link-local, shared (CGNAT), unspecified, multicast, broadcast,
/// reserved or documentation space, nor an IPv6 form of them (NAT64, 6to4 and Teredo carry an
/// IPv4 address an attacker picks).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || s[0] == 0x2001 && s[1] == 0x0db8
        || s[0] == 0x2002
        || s[0] == 0x2001 && s[1] == 0
        || s[0] == 0x0064 && s[1] == 0xff9b
        || s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0
        || ip.to_ipv4_compatible_v4().is_some())
}

trait Ipv6Ext {
    fn to_ipv4_compatible_v4(&self) -> Option<Ipv4Addr>;
}

impl Ipv6Ext for Ipv6Addr {
    /// `::a.b.c.d` (deprecated IPv4-compatible form), `::` and `::1` excluded.
    fn to_ipv4_compatible_v4(&self) -> Option<Ipv4Addr> {
        let s = self.segments();
        (s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1)).then(|| {
            let [.., a, b, c, d] = self.octets();
            Ipv4Addr::new(a, b, c, d)
        })
    }
}

/// Why a URL may not be fetched.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not a public address (JWKS_URI_ALLOWED_NETWORKS allows others)")]
pub struct Unreachable(pub IpAddr);

/// Checks an address written in a URL's host (the resolver is not asked for those).
pub fn check_literal_host(
    url: &reqwest::Url,
    allowed: &AllowedNetworks,
) -> Result<(), Unreachable> {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) if !allowed.reachable(ip) => Err(Unreachable(ip)),
        _ => Ok(()),
    }
}

/// A DNS resolver that answers only with reachable addresses, and fails when none is.
pub struct GuardedResolver {
    pub allowed: Arc<AllowedNetworks>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = Arc::clone(&self.allowed);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allowed.reachable(a.ip()))
                .collect();
            match (kept.is_empty(), found.first()) {
                (true, Some(first)) => Err(Box::new(Unreachable(first.ip())) as _),
                _ => Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_unless_allowed() {
        let none = AllowedNetworks::default();
        for refused in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
            "ff02::1",
            "192.0.2.1",
            "203.0.113.5",
            "100.127.255.255",
            "192.0.0.1",
            "198.19.255.1",
            "fec0::1",
            "2001:0:4136:e378::1",
            "100::1",
            "::2",
        ] {
            assert!(!none.reachable(ip(refused)), "{refused}");
        }
        // Each matches one half of a refused range's rule, never the whole.
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "100.1.2.3",
            "101.64.0.1",
            "100.128.0.1",
            "192.1.0.1",
            "192.0.1.1",
            "193.0.0.1",
            "198.1.1.1",
            "199.18.0.1",
            "2001:4860::8888",
            "2a00:db8::1",
            "2a00:ff9b::1",
            "2a00::1",
            "100:0:0:1::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(none.reachable(ip(public)), "{public}");
        }
        let lo = AllowedNetworks::parse("127.0.0.0/8, 10.0.0.5").unwrap();
        assert!(lo.reachable(ip("127.0.0.1")));
        assert!(lo.reachable(ip("::ffff:127.0.0.1")));
        assert!(lo.reachable(ip("10.0.0.5")));
        assert!(!lo.reachable(ip("10.0.0.6")));
        assert!(!lo.reachable(ip("169.254.169.254")));
        assert!(AllowedNetworks::parse("nope").is_err());
    }

    #[test]
    fn an_address_in_the_url_is_checked_before_connecting() {
        let none = AllowedNetworks::default();
        for url in [
            "http://127.0.0.1:9091/admin",
            "http://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            assert!(check_literal_host(&url, &none).is_err(), "{url}");
        }
        let named = reqwest::Url::parse("https://idp.example.com/jwks").unwrap();
        assert!(check_literal_host(&named, &none).is_ok());
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_to_refused_addresses_fails() {
        use reqwest::dns::Resolve;
        let resolver = GuardedResolver {
            allowed: Arc::new(AllowedNetworks::default()),
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        assert!(resolver.resolve(name).await.is_err());
        let allowed = GuardedResolver {
            allowed: Arc::new(AllowedNetworks::parse("127.0.0.0/8, ::1").unwrap()),
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        assert!(allowed.resolve(name).await.unwrap().next().is_some());
    }
}
