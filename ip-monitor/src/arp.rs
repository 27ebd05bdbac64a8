//! ARP over an `AF_PACKET` socket (RFC 826): requests to a neighbour, RFC 5227 probes for
//! duplicate detection, and gratuitous announcements after adding an address.
//!
//! The socket is `SOCK_DGRAM`, so the kernel writes the Ethernet header; we build and parse
//! only the 28-byte ARP payload (Ethernet/IPv4).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockType};

use crate::{Error, MAX_DRAIN, expired, remaining, sock};

/// `ETH_P_ARP`.
pub const ETH_P_ARP: u16 = 0x0806;
/// ARP request.
pub const OP_REQUEST: u16 = 1;
/// ARP reply.
pub const OP_REPLY: u16 = 2;
/// The Ethernet broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Operation: [`OP_REQUEST`] or [`OP_REPLY`].
    pub op: u16,
    /// Sender hardware address.
    pub sha: [u8; 6],
    /// Sender protocol address (0.0.0.0 in an RFC 5227 probe).
    pub spa: Ipv4Addr,
    /// Target hardware address (zero in requests).
    pub tha: [u8; 6],
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

impl Packet {
    /// A request from `sha`/`spa` asking who has `tpa`.
    pub fn request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Self {
        Packet {
            op: OP_REQUEST,
            sha,
            spa,
            tha: [0; 6],
            tpa,
        }
    }

    /// RFC 5227 probe: a request for `addr` with sender address 0.0.0.0, so that nobody's
    /// cache learns anything from it and the owner of `addr`, if any, answers.
    pub fn probe(sha: [u8; 6], addr: Ipv4Addr) -> Self {
        Self::request(sha, Ipv4Addr::UNSPECIFIED, addr)
    }

    /// RFC 5227 announcement (gratuitous ARP): a request with sender and target both `addr`.
    pub fn announcement(sha: [u8; 6], addr: Ipv4Addr) -> Self {
        Self::request(sha, addr, addr)
    }

    /// The 28 wire bytes.
    pub fn encode(&self) -> [u8; 28] {
        let mut b = [0u8; 28];
        b[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
        b[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sha);
        b[14..18].copy_from_slice(&self.spa.octets());
        b[18..24].copy_from_slice(&self.tha);
        b[24..28].copy_from_slice(&self.tpa.octets());
        b
    }

    /// Parse an Ethernet/IPv4 ARP payload; anything else is `None`.
    pub fn decode(b: &[u8]) -> Option<Packet> {
        if b.len() < 28 || b[0..2] != [0, 1] || b[2..4] != [8, 0] || b[4] != 6 || b[5] != 4 {
            return None;
        }
        let mac = |r: std::ops::Range<usize>| <[u8; 6]>::try_from(&b[r]).ok();
        let ip = |r: std::ops::Range<usize>| <[u8; 4]>::try_from(&b[r]).ok().map(Ipv4Addr::from);
        Some(Packet {
            op: u16::from_be_bytes([b[6], b[7]]),
            sha: mac(8..14)?,
            spa: ip(14..18)?,
            tha: mac(18..24)?,
            tpa: ip(24..28)?,
        })
    }
}

/// An `AF_PACKET`/`SOCK_DGRAM` socket bound to one interface and to ARP frames only.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    ifindex: u32,
    mac: [u8; 6],
}

impl Socket {
    /// Open the socket on interface `ifindex` whose hardware address is `mac`.
    pub fn open(ifindex: u32, mac: [u8; 6]) -> Result<Self, Error> {
        let fd = sock::open(
            AddressFamily::Packet,
            SockType::Datagram,
            // Protocol 0 here and ETH_P_ARP at bind: binding a socket that already receives
            // waits for an RCU grace period; one that does not yet receive is bound at once.
            None,
        )
        .map_err(|e| Error::io("open an ARP (AF_PACKET) socket", e))?;
        sock::bind_packet(fd.as_fd(), ifindex, ETH_P_ARP)
            .map_err(|e| Error::io("bind the ARP socket to the interface", e))?;
        Ok(Socket { fd, ifindex, mac })
    }

    /// Our hardware address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The descriptor, for polling together with other sockets.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Send `pkt` to `dest` (usually [`BROADCAST`]).
    pub fn send(&self, pkt: &Packet, dest: [u8; 6]) -> Result<(), Error> {
        sock::send_packet(
            self.fd.as_fd(),
            self.ifindex,
            ETH_P_ARP,
            dest,
            &pkt.encode(),
        )
        .map_err(|e| Error::io("send an ARP packet", e))?;
        Ok(())
    }

    /// Read one pending packet without waiting; `None` when nothing is queued (or only
    /// frames that are not Ethernet/IPv4 ARP, at most [`MAX_DRAIN`] of which are skipped per
    /// call). Returns the ARP packet and the frame's link-layer source address.
    pub fn try_recv(&self) -> Result<Option<(Packet, [u8; 6])>, Error> {
        let mut buf = [0u8; 128];
        for _ in 0..MAX_DRAIN {
            match sock::recv_packet(self.fd.as_fd(), &mut buf) {
                Ok((n, from)) => {
                    if let Some(p) = Packet::decode(&buf[..n]) {
                        return Ok(Some((p, from)));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("receive an ARP packet", e)),
            }
        }
        Ok(None)
    }
}

/// Does `pkt`, received while we probe for `addr`, show another host using `addr`?
/// Yes when another MAC claims `addr` as sender, or probes for `addr` itself (RFC 5227 §2.1.1).
pub fn conflicts(pkt: &Packet, from: [u8; 6], our_mac: [u8; 6], addr: Ipv4Addr) -> Option<[u8; 6]> {
    if pkt.sha == our_mac || from == our_mac {
        return None;
    }
    if pkt.spa == addr {
        return Some(pkt.sha);
    }
    if pkt.op == OP_REQUEST && pkt.spa.is_unspecified() && pkt.tpa == addr {
        return Some(pkt.sha);
    }
    None
}

/// RFC 5227 duplicate detection: send `probes` probes for `addr`, `interval` apart, and
/// listen until `deadline` (or `interval` after the last probe, whichever comes first).
/// Returns the MAC of a host that uses `addr`, if one answers.
pub fn detect_conflict(
    sock: &Socket,
    addr: Ipv4Addr,
    probes: u32,
    interval: Duration,
    deadline: Instant,
) -> Result<Option<[u8; 6]>, Error> {
    let probe = Packet::probe(sock.mac(), addr);
    probe_for_conflict(
        sock.fd(),
        probes,
        interval,
        deadline,
        "wait for ARP packets",
        || sock.send(&probe, BROADCAST),
        || {
            Ok(sock
                .try_recv()?
                .map(|(pkt, from)| conflicts(&pkt, from, sock.mac(), addr)))
        },
    )
}

/// The duplicate-detection loop shared by [`detect_conflict`] and
/// [`crate::ndp::detect_conflict`]: call `send` `probes` times, `interval` apart, and until
/// `deadline` (or `interval` after the last probe) wait on `fd` and `read` what is queued on
/// it. `read` returns `None` when nothing is queued, else `Some` of the MAC of a host that
/// uses the address, if the packet shows one.
pub(crate) fn probe_for_conflict(
    fd: BorrowedFd<'_>,
    probes: u32,
    interval: Duration,
    deadline: Instant,
    waiting: &'static str,
    mut send: impl FnMut() -> Result<(), Error>,
    mut read: impl FnMut() -> Result<Option<Option<[u8; 6]>>, Error>,
) -> Result<Option<[u8; 6]>, Error> {
    let start = Instant::now();
    let end = deadline.min(start + interval * probes.max(1));
    let mut sent = 0;
    loop {
        if sent < probes && Instant::now() >= start + interval * sent {
            send()?;
            sent += 1;
        }
        for _ in 0..MAX_DRAIN {
            match read()? {
                None => break,
                Some(Some(mac)) => return Ok(Some(mac)),
                Some(None) => {}
            }
        }
        if expired(end) {
            return Ok(None);
        }
        let wake = if sent < probes {
            (start + interval * sent).min(end)
        } else {
            end
        };
        sock::poll_readable([Some(fd)], remaining(wake)).map_err(|e| Error::io(waiting, e))?;
    }
}

/// Send `count` gratuitous ARP announcements for `addr`, `interval` apart, never past
/// `deadline`. Returns how many were sent.
pub fn announce(
    sock: &Socket,
    addr: Ipv4Addr,
    count: u32,
    interval: Duration,
    deadline: Instant,
) -> Result<u32, Error> {
    let pkt = Packet::announcement(sock.mac(), addr);
    send_paced(count, interval, deadline, || sock.send(&pkt, BROADCAST))
}

/// Call `send` `count` times, `interval` apart, stopping early rather than sleeping past
/// `deadline`; returns how many were sent. Announcements of IPv4 and IPv6 addresses share it.
pub(crate) fn send_paced(
    count: u32,
    interval: Duration,
    deadline: Instant,
    mut send: impl FnMut() -> Result<(), Error>,
) -> Result<u32, Error> {
    let mut sent = 0;
    while sent < count {
        send()?;
        sent += 1;
        if sent < count {
            if remaining(deadline) < interval {
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

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    const OTHER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

    #[test]
    fn encodes_probe_and_announcement() {
        let p = Packet::probe(MAC, Ipv4Addr::new(192, 0, 2, 10)).encode();
        let want: [u8; 28] = [
            0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 10,
        ];
        assert_eq!(p, want);
        let a = Packet::announcement(MAC, Ipv4Addr::new(192, 0, 2, 10)).encode();
        assert_eq!(&a[14..18], &[192, 0, 2, 10]);
        assert_eq!(&a[24..28], &[192, 0, 2, 10]);
    }

    #[test]
    fn decodes_reply_fixture() {
        // A reply from 192.0.2.1 (02:00:00:00:00:0b) to 192.0.2.5 (02:00:00:00:00:0a), as
        // captured, with Ethernet padding after the 28 bytes.
        let mut b = vec![0, 1, 8, 0, 6, 4, 0, 2];
        b.extend(OTHER);
        b.extend([192, 0, 2, 1]);
        b.extend(MAC);
        b.extend([192, 0, 2, 5]);
        b.extend([0; 18]);
        let p = Packet::decode(&b).unwrap();
        assert_eq!(p.op, OP_REPLY);
        assert_eq!(p.sha, OTHER);
        assert_eq!(p.spa, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.tpa, Ipv4Addr::new(192, 0, 2, 5));
        assert!(Packet::decode(&b[..27]).is_none());
        b[2] = 0x86; // not IPv4
        assert!(Packet::decode(&b).is_none());
    }

    #[test]
    fn recognises_conflicts() {
        let addr = Ipv4Addr::new(192, 0, 2, 10);
        // The owner answers our probe.
        let reply = Packet {
            op: OP_REPLY,
            sha: OTHER,
            spa: addr,
            tha: MAC,
            tpa: Ipv4Addr::UNSPECIFIED,
        };
        assert_eq!(conflicts(&reply, OTHER, MAC, addr), Some(OTHER));
        // Someone else probes for the same address at the same time.
        assert_eq!(
            conflicts(&Packet::probe(OTHER, addr), OTHER, MAC, addr),
            Some(OTHER)
        );
        // Our own probe, looped back, is not a conflict.
        assert_eq!(conflicts(&Packet::probe(MAC, addr), MAC, MAC, addr), None);
        // Unrelated traffic is not a conflict.
        let other = Packet::request(
            OTHER,
            Ipv4Addr::new(192, 0, 2, 7),
            Ipv4Addr::new(192, 0, 2, 1),
        );
        assert_eq!(conflicts(&other, OTHER, MAC, addr), None);
    }
}
