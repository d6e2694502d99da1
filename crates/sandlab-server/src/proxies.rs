//! Trusted reverse proxies (`server.trusted_proxies`): behind TLS termination every
//! connection comes from the proxy, so the login limits would count the whole site as one
//! client. For a connection from a trusted proxy the client is the right-most address of
//! `X-Forwarded-For` that is not itself a trusted proxy; from anyone else the header is
//! ignored (it is the client's to forge).

use std::net::IpAddr;

/// A list of networks (`10.0.0.0/8`, `::1/128`, or a bare address for one host).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrustedProxies {
    nets: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses `items`; the error names the first that is not an address or network.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in items {
            let text = item.as_ref().trim();
            let bad = || format!("{text:?} is not an address or a network like 10.0.0.0/8");
            let (addr, len) = match text.split_once('/') {
                Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
                None => (text, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len = len.unwrap_or(max);
            if len > max {
                return Err(bad());
            }
            nets.push((addr, len));
        }
        Ok(TrustedProxies { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|(net, len)| in_net(ip, *net, *len))
    }

    /// The client behind a connection from `peer` carrying `forwarded_for` (the values of
    /// every `X-Forwarded-For` header, in order).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = forwarded_for
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        hops.into_iter()
            .rev()
            .find(|ip| !self.contains(*ip))
            .unwrap_or(peer)
    }
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_peer_may_name_the_client() {
        let t = TrustedProxies::parse(&["10.0.0.0/8", "::1"]).unwrap();
        // From the proxy: the right-most untrusted hop.
        assert_eq!(
            t.client(ip("10.1.2.3"), &["198.51.100.7, 10.9.9.9"]),
            ip("198.51.100.7")
        );
        // A client-forged left-most entry does not win over the real one the proxy added.
        assert_eq!(
            t.client(ip("10.1.2.3"), &["1.2.3.4", "203.0.113.5"]),
            ip("203.0.113.5")
        );
        // From anyone else: the header is ignored.
        assert_eq!(t.client(ip("203.0.113.9"), &["1.2.3.4"]), ip("203.0.113.9"));
        // From the proxy without a usable header: the proxy.
        assert_eq!(t.client(ip("::1"), &["junk"]), ip("::1"));
        assert!(t.contains(ip("::ffff:10.0.0.1")));
    }

    #[test]
    fn bad_entries_are_named() {
        assert_eq!(
            TrustedProxies::parse(&["10.0.0.0/33"]).unwrap_err(),
            "\"10.0.0.0/33\" is not an address or a network like 10.0.0.0/8"
        );
        assert!(TrustedProxies::parse(&["proxy.example"]).is_err());
        assert!(TrustedProxies::parse(&["0.0.0.0/0"])
            .unwrap()
            .contains(ip("8.8.8.8")));
    }
}
