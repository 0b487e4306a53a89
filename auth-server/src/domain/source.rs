//! The source address of a request: the peer, or `X-Forwarded-For` only when the peer is one of
//! `TRUSTED_PROXIES` (then the rightmost address not itself a trusted proxy).

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Comma-separated addresses or CIDR ranges.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("not an address or CIDR range: {s:?}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    pub fn source(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> IpAddr {
        let peer = peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if !self.trusts(peer) {
            return peer;
        }
        forwarded_for
            .into_iter()
            .flat_map(|h| h.rsplit(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .find(|ip| !self.trusts(*ip))
            .unwrap_or(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1").unwrap();
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(t.source(Some(peer), Some("1.2.3.4")), peer);
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            t.source(Some(proxy), Some("1.2.3.4, 10.9.9.9")),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(t.source(Some(proxy), None), proxy);
        assert!(TrustedProxies::parse("nope").is_err());
    }
}
