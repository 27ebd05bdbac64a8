//! IPv6 neighbour discovery: unsolicited neighbour advertisements (RFC 4861 §7.2.6), the
//! IPv6 counterpart of a gratuitous ARP, and a duplicate address detection probe (RFC 4862
//! §5.4) that, unlike the kernel's own DAD, reports *who* answered.
//!
//! The probe is sent as a whole IPv6 packet over an `AF_PACKET` socket, because its source
//! address must be the unspecified address `::`, which an inet socket will not send from.

use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockProtocol, SockType, setsockopt, sockopt};

use crate::{Error, sock};

/// ICMPv6 neighbour solicitation.
pub const NEIGHBOR_SOLICIT: u8 = 135;
/// ICMPv6 neighbour advertisement.
pub const NEIGHBOR_ADVERT: u8 = 136;
/// `ETH_P_IPV6`.
pub const ETH_P_IPV6: u16 = 0x86dd;
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
    deadline: Instant,
) -> Result<u32, Error> {
    let fd = sock::open(
        AddressFamily::Inet6,
        SockType::Raw,
        Some(SockProtocol::IcmpV6),
    )
    .map_err(|e| Error::io("open a raw ICMPv6 socket", e))?;
    crate::icmp::bind_to_device(fd.as_fd(), ifname)
        .map_err(|e| Error::io("bind the ICMPv6 socket to the interface", e))?;
    // Receivers drop neighbour discovery packets whose hop limit is not 255.
    setsockopt(&fd, sockopt::Ipv6MulticastHops, &255)
        .map_err(|e| Error::io("set the ICMPv6 hop limit", e.into()))?;
    sock::bind(fd.as_fd(), &sock::inet(IpAddr::V6(addr), ifindex))
        .map_err(|e| Error::io("use the new IPv6 address as source", e))?;
    let msg = encode_unsolicited_na(addr, mac);
    let all_nodes = sock::inet(IpAddr::V6(ALL_NODES), ifindex);
    crate::arp::send_paced(count, interval, deadline, || {
        sock::send_to(fd.as_fd(), &msg, &all_nodes)
            .map_err(|e| Error::io("send a neighbour advertisement", e))?;
        Ok(())
    })
}

/// The solicited-node multicast address of `addr` (`ff02::1:ffXX:XXXX`).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet multicast address an IPv6 multicast address maps to (`33:33:` + low 32 bits).
pub fn multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// The ICMPv6 checksum over the IPv6 pseudo-header and `msg`.
pub fn checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut b = Vec::with_capacity(40 + msg.len());
    b.extend_from_slice(&src.octets());
    b.extend_from_slice(&dst.octets());
    b.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 58]);
    b.extend_from_slice(msg);
    crate::icmp::checksum(&b)
}

/// A DAD probe for `target`: an IPv6 packet from `::` to the solicited-node address,
/// hop limit 255, carrying a neighbour solicitation without options (RFC 4862 §5.4.2).
pub fn encode_dad_probe(target: Ipv6Addr) -> [u8; 64] {
    let dst = solicited_node(target);
    let mut ns = [0u8; 24];
    ns[0] = NEIGHBOR_SOLICIT;
    ns[8..24].copy_from_slice(&target.octets());
    let c = checksum(Ipv6Addr::UNSPECIFIED, dst, &ns);
    ns[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = [0u8; 64];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&24u16.to_be_bytes());
    p[6] = 58; // ICMPv6
    p[7] = 255;
    // source :: is already zero
    p[24..40].copy_from_slice(&dst.octets());
    p[40..64].copy_from_slice(&ns);
    p
}

/// Does this IPv6 packet (as received on a packet socket, from link-layer source `from`)
/// show another host using `addr`? Yes for a neighbour advertisement for `addr`, or another
/// node's DAD probe for it. Returns that host's MAC: the advertisement's target link-layer
/// address option if present, else the frame's source.
pub fn dad_conflict(
    pkt: &[u8],
    from: [u8; 6],
    our_mac: [u8; 6],
    addr: Ipv6Addr,
) -> Option<[u8; 6]> {
    if from == our_mac || pkt.len() < 40 + 24 || pkt[0] >> 4 != 6 || pkt[6] != 58 {
        return None;
    }
    let icmp = &pkt[40..];
    let target = Ipv6Addr::from(<[u8; 16]>::try_from(icmp.get(8..24)?).ok()?);
    if target != addr || icmp[1] != 0 {
        return None;
    }
    match icmp[0] {
        NEIGHBOR_ADVERT => {
            let mut opts = icmp.get(24..).unwrap_or(&[]);
            while opts.len() >= 8 {
                let len = usize::from(opts[1]) * 8;
                if len == 0 || len > opts.len() {
                    break;
                }
                if opts[0] == 2 && len >= 8 {
                    return <[u8; 6]>::try_from(&opts[2..8]).ok();
                }
                opts = &opts[len..];
            }
            Some(from)
        }
        NEIGHBOR_SOLICIT if pkt[8..24] == [0u8; 16] => Some(from),
        _ => None,
    }
}

/// RFC 4862 duplicate address detection done by us: send `probes` DAD probes for `addr`,
/// `interval` apart, and listen until `deadline` (or `interval` after the last). Returns the
/// MAC of a host that uses `addr`, if one answers.
pub fn detect_conflict(
    ifindex: u32,
    mac: [u8; 6],
    addr: Ipv6Addr,
    probes: u32,
    interval: Duration,
    deadline: Instant,
) -> Result<Option<[u8; 6]>, Error> {
    let fd = sock::open(AddressFamily::Packet, SockType::Datagram, None)
        .map_err(|e| Error::io("open an IPv6 (AF_PACKET) socket", e))?;
    sock::bind_packet(fd.as_fd(), ifindex, ETH_P_IPV6)
        .map_err(|e| Error::io("bind the IPv6 packet socket to the interface", e))?;
    let probe = encode_dad_probe(addr);
    let dest = multicast_mac(solicited_node(addr));
    let mut buf = [0u8; 2048];
    crate::arp::probe_for_conflict(
        fd.as_fd(),
        probes,
        interval,
        deadline,
        "wait for IPv6 packets",
        || {
            sock::send_packet(fd.as_fd(), ifindex, ETH_P_IPV6, dest, &probe)
                .map_err(|e| Error::io("send a DAD probe", e))?;
            Ok(())
        },
        || loop {
            match sock::recv_packet(fd.as_fd(), &mut buf) {
                Ok((n, from)) => return Ok(Some(dad_conflict(&buf[..n], from, mac, addr))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("receive IPv6 packets", e)),
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_dad_probe() {
        let t: Ipv6Addr = "2001:db8::1234:5678".parse().unwrap();
        assert_eq!(
            solicited_node(t),
            "ff02::1:ff34:5678".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            multicast_mac(solicited_node(t)),
            [0x33, 0x33, 0xff, 0x34, 0x56, 0x78]
        );
        let p = encode_dad_probe(t);
        assert_eq!(&p[..8], &[0x60, 0, 0, 0, 0, 24, 58, 255]);
        assert_eq!(&p[8..24], &[0u8; 16]);
        assert_eq!(p[40], 135);
        assert_eq!(&p[48..64], &t.octets());
        // The checksum verifies: summing with it included gives zero.
        assert_eq!(
            checksum(Ipv6Addr::UNSPECIFIED, solicited_node(t), &p[40..]),
            0
        );
    }

    #[test]
    fn recognises_dad_conflicts() {
        let addr: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let ours = [2, 0, 0, 0, 0, 1];
        let other = [2, 0, 0, 0, 0, 2];
        // The owner's advertisement, with a target link-layer address option.
        let mut na = vec![0x60, 0, 0, 0, 0, 32, 58, 255];
        na.extend("2001:db8::100".parse::<Ipv6Addr>().unwrap().octets());
        na.extend(ALL_NODES.octets());
        na.extend([136, 0, 0, 0, 0x20, 0, 0, 0]);
        na.extend(addr.octets());
        na.extend([2, 1, 2, 0, 0, 0, 0, 9]);
        assert_eq!(
            dad_conflict(&na, other, ours, addr),
            Some([2, 0, 0, 0, 0, 9])
        );
        // Without the option, the frame's source is named.
        assert_eq!(dad_conflict(&na[..64], other, ours, addr), Some(other));
        // Someone else's probe for the same address.
        let probe = encode_dad_probe(addr);
        assert_eq!(dad_conflict(&probe, other, ours, addr), Some(other));
        // Our own probe, or traffic about another address, is no conflict.
        assert_eq!(dad_conflict(&probe, ours, ours, addr), None);
        let elsewhere: Ipv6Addr = "2001:db8::101".parse().unwrap();
        assert_eq!(dad_conflict(&probe, other, ours, elsewhere), None);
        assert_eq!(dad_conflict(&na[..50], other, ours, addr), None);
    }

    #[test]
    fn encodes_na() {
        let b = encode_unsolicited_na("2001:db8::5".parse().unwrap(), [2, 0, 0, 0, 0, 9]);
        assert_eq!(&b[..8], &[136, 0, 0, 0, 0x20, 0, 0, 0]);
        assert_eq!(&b[8..10], &[0x20, 0x01]);
        assert_eq!(b[23], 5);
        assert_eq!(&b[24..], &[2, 1, 2, 0, 0, 0, 0, 9]);
    }
}
