//! The source address of a request: the peer, or `X-Forwarded-For` only when the peer is one of
//! `TRUSTED_PROXIES` (then the rightmost address not itself a trusted proxy). Both services sit
//! behind the same proxies: the auth-server counts failures per source, and each listener gives
//! every source a share of its connections (`timeouts.rs`), proxies excepted.
//!
//! Every `X-Forwarded-For` line counts, in order, as one list (RFC 9110 §5.3): a trusted proxy
//! that appends a line of its own instead of extending the client's must not leave the client's
//! first line as the answer. An entry that is not an address stops the walk at the last trusted
//! hop: what lies left of it was written by someone we can't vouch for.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Comma-separated addresses or CIDR ranges.
    pub fn parse(list: &str) -> Result<Self, String> {
        parse_networks(list).map(Self)
    }

    /// `ip` is one of the listed proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// `forwarded_for`: every `X-Forwarded-For` line, in the order received.
    pub fn source<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if !self.trusts(peer) {
            return peer;
        }
        let entries: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        let mut nearest = peer;
        for entry in entries.iter().rev() {
            match entry.parse::<IpAddr>() {
                Ok(ip) if self.trusts(ip) => nearest = ip,
                Ok(ip) => return ip,
                Err(_) => return nearest,
            }
        }
        nearest
    }
}

/// A comma-separated list of addresses or CIDR ranges (`TRUSTED_PROXIES`, and the auth-server's
/// `JWKS_URI_ALLOWED_NETWORKS`); the error names the entry that is neither.
pub fn parse_networks(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("not an address or CIDR range: {s:?}"))
        })
        .collect()
}

/// What a per-source limit counts by: an IPv4 address (IPv4-mapped IPv6 included) alone, an
/// IPv6 address by its /64, the block one subscriber gets.
pub fn source_key(source: IpAddr) -> IpAddr {
    match source {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1").unwrap();
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(t.source(Some(peer), ["1.2.3.4"]), peer);
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            t.source(Some(proxy), ["1.2.3.4, 10.9.9.9"]),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(t.source(Some(proxy), []), proxy);
        assert!(TrustedProxies::parse("nope").is_err());
    }

    #[test]
    fn every_header_line_counts_and_garbage_stops_the_walk() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        // The client sent "6.6.6.6"; the proxy appended the real peer on a line of its own.
        assert_eq!(
            t.source(Some(proxy), ["6.6.6.6", "203.0.113.5"]),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            t.source(Some(proxy), ["6.6.6.6", "203.0.113.5, 10.0.0.7"]),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        // Not an address where the client should be: the last trusted hop answers.
        assert_eq!(
            t.source(Some(proxy), ["6.6.6.6, junk, 10.0.0.7"]),
            "10.0.0.7".parse::<IpAddr>().unwrap()
        );
    }
}
