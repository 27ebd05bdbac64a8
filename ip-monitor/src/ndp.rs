//! IPv6 unsolicited neighbour advertisements (RFC 4861 §7.2.6), the IPv6 counterpart of a
//! gratuitous ARP: tell every node on the link that an address now lives at our MAC.

use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::AsFd;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::{Error, sys};

/// ICMPv6 neighbour advertisement.
pub const NEIGHBOR_ADVERT: u8 = 136;
/// The "override" flag: replace cached link-layer addresses.
pub const FLAG_OVERRIDE: u32 = 0x2000_0000;
/// All-nodes multicast address.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Build an unsolicited advertisement for `target` at `mac` (checksum left to the kernel).
pub fn encode_unsolicited_na(target: Ipv6Addr, mac: [u8; 6]) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = NEIGHBOR_ADVERT;
    b[4..8].copy_from_slice(&FLAG_OVERRIDE.to_be_bytes());
    b[8..24].copy_from_slice(&target.octets());
    b[24] = 2; // option: target link-layer address
    b[25] = 1; // length in units of 8 bytes
    b[26..32].copy_from_slice(&mac);
    b
}

/// Send `count` unsolicited advertisements for `addr` (which must already be assigned and
/// no longer tentative) out of interface `ifname`/`ifindex`, `interval` apart.
pub fn announce(
    ifname: &str,
    ifindex: u32,
    addr: Ipv6Addr,
    mac: [u8; 6],
    count: u32,
    interval: Duration,
    deadline: Deadline,
) -> Result<u32, Error> {
    let fd = sys::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6)
        .map_err(|e| Error::io("open a raw ICMPv6 socket", e))?;
    sys::bind_to_device(fd.as_fd(), ifname)
        .map_err(|e| Error::io("bind the ICMPv6 socket to the interface", e))?;
    // Receivers drop neighbour discovery packets whose hop limit is not 255.
    sys::set_int_option(
        fd.as_fd(),
        libc::IPPROTO_IPV6,
        libc::IPV6_MULTICAST_HOPS,
        255,
    )
    .map_err(|e| Error::io("set the ICMPv6 hop limit", e))?;
    sys::bind_inet(fd.as_fd(), IpAddr::V6(addr), ifindex)
        .map_err(|e| Error::io("use the new IPv6 address as source", e))?;
    let msg = encode_unsolicited_na(addr, mac);
    let mut sent = 0;
    while sent < count {
        sys::send_inet(fd.as_fd(), &msg, IpAddr::V6(ALL_NODES), ifindex)
            .map_err(|e| Error::io("send a neighbour advertisement", e))?;
        sent += 1;
        if sent < count {
            if deadline.remaining() < interval {
                break;
            }
            std::thread::sleep(interval);
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_na() {
        let b = encode_unsolicited_na("2001:db8::5".parse().unwrap(), [2, 0, 0, 0, 0, 9]);
        assert_eq!(&b[..8], &[136, 0, 0, 0, 0x20, 0, 0, 0]);
        assert_eq!(&b[8..10], &[0x20, 0x01]);
        assert_eq!(b[23], 5);
        assert_eq!(&b[24..], &[2, 1, 2, 0, 0, 0, 0, 9]);
    }
}
