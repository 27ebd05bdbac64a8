//! IPv4/IPv6 addresses with a prefix length (`192.0.2.10/24`, `2001:db8::10/64`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address and its prefix length, as written in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address itself (not the network address).
    pub addr: IpAddr,
    /// Prefix length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub prefix: u8,
}

/// Why a CIDR string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    /// No `/prefix` part.
    MissingPrefix,
    /// The address part is not an IPv4 or IPv6 address.
    BadAddress(String),
    /// The prefix is not a number in range for the family.
    BadPrefix(String),
    /// The address is not usable as a host address (unspecified, loopback, multicast,
    /// the network or broadcast address of its own subnet).
    NotHost(String),
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::MissingPrefix => write!(f, "missing /prefix (write e.g. 192.0.2.10/24)"),
            CidrError::BadAddress(s) => write!(f, "{s:?} is not an IPv4 or IPv6 address"),
            CidrError::BadPrefix(s) => {
                write!(f, "prefix {s:?} is not valid for this address family")
            }
            CidrError::NotHost(s) => write!(f, "{s} cannot be assigned to a host"),
        }
    }
}

impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let (a, p) = s.trim().split_once('/').ok_or(CidrError::MissingPrefix)?;
        let addr: IpAddr = a
            .parse()
            .map_err(|_| CidrError::BadAddress(a.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = match p.parse::<u8>() {
            Ok(n) if n <= max && !p.starts_with('+') && !p.is_empty() => n,
            _ => return Err(CidrError::BadPrefix(p.to_string())),
        };
        let c = Cidr { addr, prefix };
        if addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() {
            return Err(CidrError::NotHost(s.trim().to_string()));
        }
        if let IpAddr::V4(v4) = addr
            && (v4.is_broadcast()
                || (prefix < 31 && (c.network() == addr || c.broadcast() == Some(v4))))
        {
            return Err(CidrError::NotHost(s.trim().to_string()));
        }
        Ok(c)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask4(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

fn mask6(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix.min(128)))
    }
}

impl Cidr {
    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask4(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask6(self.prefix))),
        }
    }

    /// The IPv4 directed broadcast address, for prefixes shorter than /31.
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        match self.addr {
            IpAddr::V4(a) if self.prefix < 31 => {
                Some(Ipv4Addr::from(u32::from(a) | !mask4(self.prefix)))
            }
            _ => None,
        }
    }

    /// Whether `ip` lies in this subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let m = mask4(self.prefix);
                u32::from(a) & m == u32::from(b) & m
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let m = mask6(self.prefix);
                u128::from(a) & m == u128::from(b) & m
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let c: Cidr = "192.0.2.10/24".parse().unwrap();
        assert_eq!(c.network(), "192.0.2.0".parse::<IpAddr>().unwrap());
        assert_eq!(c.broadcast(), Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert!(c.contains("192.0.2.200".parse().unwrap()));
        assert!(!c.contains("192.0.3.1".parse().unwrap()));
        let c6: Cidr = "2001:db8::10/64".parse().unwrap();
        assert!(c6.contains("2001:db8::ffff".parse().unwrap()));
        assert!(!c6.contains("192.0.2.1".parse().unwrap()));
        for bad in [
            "192.0.2.10",
            "192.0.2.10/33",
            "192.0.2.10/",
            "192.0.2.10/-1",
            "192.0.2.10/+8",
            "192.0.2/24",
            "x/24",
            "0.0.0.0/0",
            "127.0.0.1/8",
            "224.0.0.1/4",
            "192.0.2.0/24",
            "192.0.2.255/24",
            "2001:db8::1/129",
            "::/0",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad} accepted");
        }
        assert!("192.0.2.0/31".parse::<Cidr>().is_ok());
    }
}
